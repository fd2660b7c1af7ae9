"""Demo data of the hotel plugin (``servq serve --demo``): Lakeview Hotel & Conference
Centre (湖景酒店会议中心), four months of history and the current month so far.

Deterministic (one seeded generator). Everything goes through core's functions
(``create_record``, ``transition``, ``update_record``) at the instants of the past, so the
scores, clocks, corrective actions, repairs and survey answers are real:

Volumes are scaled down from INDUSTRIES.md §1.5 (25 turnovers, 8 check-outs, 2 meetings
and 3 offices a day) so that ``servq serve --demo`` has every example tenant ready in
under 30 s on SQLite; the shares (8 % first-inspection failures, 10 % late refills, 5 %
late offices…) are as given there.

* **room turnovers** (``TURNOVERS_PER_DAY``): about 8 % fail their
  first inspection, one attendant (the first) 20 %; some find a maintenance defect (a
  repair opens) or wait behind a DND sign;
* **check-outs** (``CHECKOUTS_PER_DAY``), most clear; **the seed's own case** verbatim:
  room 1606, Mr Wu (吴先生), three carpet burns at 50 = 150 CNY, witness 小王 who
  brought three extra ashtrays (the bonus item), taken to a corner of the lobby, charge
  accepted; two more charges, one waived by the duty manager; 30 % of the guests answer
  the guest comment form;
* **meetings**: one a working day, 10 % with a refill gap of 20-25 minutes, one with the
  air-conditioning left on;
* **offices**: two leaders' offices daily, 5 % finished 08:35-08:50;
* **kitchen pass**: a dish check a day, 1-2 rejections a week;
* **housekeeping tasks** per meeting room: teaware disinfection weekly (one week missed:
  ``schedule.missed``), deep clean weekly;
* **mystery etiquette checks** monthly, one catching ``问别人去`` (critical: a corrective
  action).
"""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from servq import (
    Record,
    Schedule,
    Site,
    Staff,
    create_invitation,
    create_record,
    enabled_plugin_ids,
    get_plugins,
    item_columns,
    item_scale,
    scan_schedules,
    schedule_zone,
    score_answers,
    store_response,
    transition,
    update_record,
    update_schedule,
    utcnow,
)
from servq.plugins.hotel.onboarding import surveys
from servq.plugins.hotel.settings import plugin_configuration

SEED = 1606
MONTHS = 4
TURNOVERS_PER_DAY = 2
CHECKOUTS_PER_DAY = 1
MEETINGS_PER_WORKING_DAY = 1
OFFICES = ("局长办公室 501", "副局长办公室 502")
CHECKLIST = ("surfaces_clean", "fixtures_wiped", "plants_bins_floor", "bathroom_clean", "toilet_paper",
             "facilities_working", "no_dead_corners", "bed_made", "amenities", "no_previous_guest_traces")
FAIL_REASONS = ("Hair in the bathtub 浴缸有头发", "Stain on the pillowcase 枕套有污渍",
                "Minibar not restocked 迷你吧未补充", "Dust under the bed 床底有灰尘")
DISHES = ("清蒸鲈鱼", "宫保鸡丁", "东坡肉", "麻婆豆腐", "白灼菜心", "扬州炒饭")
SURNAMES = "王李张刘陈杨黄赵周徐孙马朱胡郭何高林罗"


def load(session, tenant) -> None:
    if session.scalar(select(Record.id).where(Record.kind == "hotel.room_turnover").limit(1)):
        return
    Demo(session, tenant).run()


class Demo:
    def __init__(self, session, tenant):
        self.session, self.tenant = session, tenant
        self.rng = random.Random(SEED)
        self.zone = schedule_zone(session)
        self.now = utcnow()
        today = self.now.astimezone(self.zone).date()
        first = date(today.year, today.month, 1)
        for _ in range(MONTHS):
            first = date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
        self.first = first
        self.kinds = get_plugins().kinds_for(enabled_plugin_ids(session))
        self.config = plugin_configuration(session)
        self.site = session.scalar(select(Site).where(Site.active.is_(True)).order_by(Site.code))
        staff = list(session.scalars(select(Staff).where(Staff.active.is_(True)).order_by(Staff.code)))
        self.staff = {w: [s for s in staff if w in (s.title or "").lower()]
                      for w in ("attendant", "inspector", "meeting", "duty", "kitchen")}
        self.surveys = surveys(session, tenant, self.config)
        self.last_inspected: dict[str, Record] = {}

    # -- helpers --------------------------------------------------------------------------

    def at(self, day: date, hour: int, minute: float = 0) -> datetime:
        return datetime.combine(day, time(), tzinfo=self.zone) + timedelta(hours=hour, minutes=minute)

    def days(self):
        day = self.first
        while self.at(day, 0) < self.now:
            yield day
            day += timedelta(days=1)

    def person(self, word: str, index: int | None = None) -> Staff | None:
        people = self.staff.get(word) or []
        if not people:
            return None
        return people[index % len(people)] if index is not None else self.rng.choice(people)

    def create(self, kind: str, at: datetime, data: dict, staff: Staff | None = None) -> Record:
        return create_record(self.session, self.kinds, {
            "kind": kind, "site_id": self.site.id if self.site else None,
            "staff_id": staff.id if staff else None, "occurred_at": at, "data": data}, None, now=at)

    def steps(self, record: Record, steps: list) -> bool:
        """Take each (instant, action or function) while its instant has come."""
        for at, action in steps:
            if at >= self.now:
                return False
            if callable(action):
                action(record, at)
            else:
                reason = "Guest asked not to be disturbed 请勿打扰" if action == "dnd" else None
                transition(self.session, self.kinds, record, action, at=at, reason=reason, now=at)
        return True

    def change(self, **values):
        def apply(record: Record, at: datetime) -> None:
            update_record(self.session, self.kinds, record, {"data": {**record.data, **values}}, None, now=at)
        return apply

    # -- the history -----------------------------------------------------------------------

    def run(self) -> None:
        if self.site is None:
            return
        for schedule in self.session.scalars(select(Schedule).where(Schedule.key.like("hotel.%"))
                                             .order_by(Schedule.key)):
            start = self.at(self.first, 0)
            if schedule.dtstart > start:
                update_schedule(self.session, schedule, {"dtstart": start}, now=start)
        case_day = self.first + timedelta(days=40)
        for number, day in enumerate(self.days()):
            for i in range(TURNOVERS_PER_DAY):
                self.turnover(day, i)
            for i in range(CHECKOUTS_PER_DAY):
                self.checkout(day, i)
            if day == case_day - timedelta(days=3):
                self.turnover(day, 1, room="1606")  # inspected before Mr Wu's stay
            if day == case_day:
                self.room_1606(day)
            if day in (self.first + timedelta(days=20), self.first + timedelta(days=75)):
                self.other_charge(day, waived=day != case_day and number > 60)
            if day.weekday() < 5:
                for i in range(MEETINGS_PER_WORKING_DAY):
                    self.meeting(day, i, ac_left_on=number == 30 and i == 0)
            for i, office in enumerate(OFFICES):
                self.office(day, office, i)
            self.dishes(day)
            self.housekeeping(day, number)
            if day.day == 15:
                self.mystery_check(day, catch=number // 28 == 2)
            if day.day == 20 and self.at(day, 15) < self.now:
                self.create("hotel.housekeeping_task", self.at(day, 15), {
                    "area": "省局领导", "task": "follow_up_visit", "result": "ok",
                    "findings": "Leaders satisfied with meeting and office service 领导对会议及办公室服务满意"},
                    self.person("duty"))
        scan_schedules(self.session, self.now)

    def turnover(self, day: date, i: int, room: str | None = None) -> None:
        rng = self.rng
        attendant = self.person("attendant", i)
        inspector = self.person("inspector", i)
        floor = rng.randint(10, 16)
        room = room or f"{floor}{rng.randint(1, 20):02d}"
        floor = int(room[:-2])
        dirty = self.at(day, 9, rng.uniform(0, 240))
        arrival = self.at(day, 14, rng.uniform(0, 180)) if rng.random() < 0.4 else None
        defects = []
        if rng.random() < 0.04:
            defects.append({"area": "bathroom", "kind": "maintenance",
                            "description": rng.choice(("Tap dripping 水龙头滴水", "Lamp out 灯不亮",
                                                       "Cistern running 马桶水箱漏水"))})
        data = {"room": room, "floor": floor, "clean_type": rng.choice(("departure", "departure", "stayover")),
                "priority": "arrival" if arrival else "normal",
                "inspector_id": str(inspector.id) if inspector else None,
                "checklist": {c: "pass" for c in CHECKLIST}, "defects": defects}
        if arrival:
            data["guest_arrival_at"] = arrival.isoformat()
        record = self.create("hotel.room_turnover", dirty, data, attendant)
        fail_share = 0.2 if attendant is self.person("attendant", 0) else 0.06
        t = dirty + timedelta(minutes=rng.uniform(5, 40))
        steps: list = []
        if rng.random() < 0.03:
            steps += [(t, "dnd"), (t + timedelta(minutes=90), "resume")]
            t += timedelta(minutes=100)
        finish = t + timedelta(minutes=rng.uniform(25, 40))
        steps += [(t, "start"), (finish, "finish")]
        inspected = finish + timedelta(minutes=rng.uniform(5, 25) if rng.random() < 0.9 else rng.uniform(35, 70))
        if rng.random() < fail_share:
            steps += [(inspected - timedelta(seconds=30), self.change(fail_reason=rng.choice(FAIL_REASONS))),
                      (inspected, "fail"),
                      (inspected + timedelta(minutes=2), "start"),
                      (inspected + timedelta(minutes=15), "finish"),
                      (inspected + timedelta(minutes=25), "pass")]
        else:
            steps += [(inspected, "pass")]
        if self.steps(record, steps):
            self.last_inspected[room] = record
        for repair_id in record.data.get("repair_ids") or []:
            self.repair(repair_id, dirty + timedelta(minutes=50))

    def repair(self, repair_id: str, reported: datetime) -> None:
        """The engineers take a repair through: dispatched, on site, fixed, verified."""
        repair = self.session.get(Record, (self.session.tenant_id, uuid.UUID(repair_id)))
        if repair is None:
            return
        rng = self.rng
        dispatched = max(reported, repair.occurred_at) + timedelta(minutes=rng.uniform(5, 300 if rng.random() < 0.8 else 400))
        on_site = dispatched + timedelta(minutes=rng.uniform(10, 60))
        fixed = on_site + timedelta(minutes=rng.uniform(20, 90))
        self.steps(repair, [(dispatched, "dispatch"), (on_site, "arrive"), (fixed, "fix"),
                            (fixed + timedelta(hours=2), "verify")])

    def checkout(self, day: date, i: int) -> None:
        rng = self.rng
        requested = self.at(day, 11, rng.uniform(-120, 60))
        rooms = sorted(self.last_inspected)
        room = rng.choice(rooms) if rooms and rng.random() < 0.95 else f"{rng.randint(10, 16)}{rng.randint(1, 20):02d}"
        prior = self.last_inspected.get(room)
        customer = {"name": rng.choice(SURNAMES) + "先生", "phone": f"139{rng.randrange(10**8):08d}"}
        record = self.create("hotel.checkout_inspection", requested, {
            "room": room, "customer": customer, "prior_inspection_id": str(prior.id) if prior else None},
            self.person("attendant"))
        done = requested + timedelta(minutes=rng.uniform(2, 4.8) if rng.random() < 0.9 else rng.uniform(6, 12))
        self.comment(record, done, rng.random() < 0.3)
        self.steps(record, [(done, "pass")])

    def comment(self, record: Record, at: datetime, answers: bool) -> None:
        """30 % of guests fill in the comment form (the trigger invites the others)."""
        if not answers or at >= self.now:
            return
        survey = self.surveys["guest_comment"]
        invitation, _ = create_invitation(self.session, survey, customer=record.data["customer"],
                                          record_id=record.id, expires_at=at + timedelta(days=14),
                                          send=False)
        invitation.created_at = invitation.updated_at = at
        doc = survey.instrument
        answers_given: dict[str, Any] = {}
        for item in doc["items"]:
            scale = item_scale(doc, item)
            columns = item_columns(survey.form, item)
            level = min(1.0, max(0.0, 0.8 + self.rng.gauss(0, 0.15)))
            value = round(scale["min"] + level * (scale["max"] - scale["min"]))
            answers_given[item["code"]] = value if len(columns) == 1 else {c: value for c in columns}
        scored = score_answers(doc, survey.form, survey.importance, answers_given, None)
        submitted = at + timedelta(minutes=self.rng.uniform(5, 120))
        if submitted < self.now:
            invitation.responded_at = submitted
            store_response(self.session, survey, invitation, scored, answers=answers_given,
                           submitted_at=submitted)

    def room_1606(self, day: date) -> None:
        """The seed's case (000 服务过程管理, 引例:一个烟洞要罚赔50元), as it happened."""
        requested = self.at(day, 11, 5)
        attendant = self.person("attendant", 1)
        prior = self.last_inspected.get("1606")
        record = self.create("hotel.checkout_inspection", requested, {
            "room": "1606", "stay_ref": "LV-1606-吴", "customer": {"name": "吴先生"},
            "prior_inspection_id": str(prior.id) if prior else None,
            "damages": [{"code": "carpet_burn", "quantity": 3,
                         "description": "Three cigarette burns in the carpet 地毯上三个烟洞",
                         "evidence": ["https://demo.servq.test/hotel/1606-carpet.jpg"],
                         "witness_id": "小王 (attendant 服务员)"}],
            "preventive_service": True}, attendant)
        manager = self.person("duty")
        self.steps(record, [
            (requested + timedelta(minutes=4), "find_damage"),
            (requested + timedelta(minutes=6), self.change(
                handled_privately=True, explained=True, room_out_of_order=True,
                repair_id=str(self.create("hotel.repair", requested + timedelta(minutes=6), {
                    "room_or_area": "1606", "facility": "other",
                    "description": "Carpet burns: patch the carpet 地毯烟洞修补",
                    "source_record_id": str(record.id)}, manager).id))),
            (requested + timedelta(minutes=8), "propose"),
            (requested + timedelta(minutes=20), "accept"),
        ])

    def other_charge(self, day: date, waived: bool) -> None:
        requested = self.at(day, 12, 10)
        record = self.create("hotel.checkout_inspection", requested, {
            "room": "1412", "customer": {"name": "陈女士"},
            "damages": [{"code": "carpet_burn", "quantity": 1, "description": "One burn by the desk 书桌旁一个烟洞",
                         "evidence": ["https://demo.servq.test/hotel/1412.jpg"]}],
            "handled_privately": True, "explained": True, "room_out_of_order": False}, self.person("attendant"))
        manager = self.person("duty")
        steps: list = [(requested + timedelta(minutes=4), "find_damage"),
                       (requested + timedelta(minutes=7), "propose")]
        if waived:
            steps += [(requested + timedelta(minutes=15), "dispute"),
                      (requested + timedelta(minutes=25), self.change(waiver={
                          "amount": 50, "reason": "Long-standing corporate guest, burn may predate the stay 老客户,烟洞可能早于入住",
                          "approved_by": manager.name if manager else "duty manager"})),
                      (requested + timedelta(minutes=26), "waive")]
        else:
            steps += [(requested + timedelta(minutes=15), "accept")]
        self.steps(record, steps)

    def meeting(self, day: date, i: int, ac_left_on: bool) -> None:
        rng = self.rng
        start = self.at(day, 9 if i == 0 else 14, 0)
        minutes = rng.choice((60, 90, 120))
        end = start + timedelta(minutes=minutes)
        refills, t = [], start
        gap_late = rng.random() < 0.1
        late_at = rng.randint(1, max(1, minutes // 15 - 2))
        n = 0
        while True:
            n += 1
            step = rng.uniform(20, 25) if gap_late and n == late_at else rng.uniform(11, 15)
            t += timedelta(minutes=step)
            if t >= end:
                break
            refills.append(t.isoformat())
        room = ("多功能厅", "3号会议室", "贵宾室")[(day.toordinal() + i) % 3]
        # Entered by the supervisor as the meeting is booked and filled in as it runs; the
        # demo writes the finished sheet at once (fewer writes: the 30 s demo budget).
        record = self.create("hotel.meeting_service", start - timedelta(days=2), {
            "meeting_room": room, "title": "Provincial bureau work meeting 省局工作会议",
            "host_unit": "省局办公室", "start_at": start.isoformat(), "end_at": end.isoformat(),
            "attendees": rng.randint(8, 40), "head_table": True, "refills": refills,
            "tea_order_followed": True, "served_from_right": True, "appearance_ok": True,
            "smile_polite": True, "unmet_requests": 0,
            "closedown": {"teaware_cleared": True, "tables_tidied": True, "lights_off": True,
                          "ac_off": not ac_left_on}}, self.person("meeting", i))
        self.steps(record, [
            (start - timedelta(minutes=rng.uniform(20, 60)), "prepare"), (start, "start"), (end, "end"),
            (end + timedelta(minutes=20), "close_down")])

    def office(self, day: date, office: str, i: int) -> None:
        rng = self.rng
        tasks = {k: True for k in ("surfaces", "fixtures", "plants_bins", "basin_counter", "toilet",
                                   "floor_mopped", "toilet_paper", "facilities_checked")}
        tasks["floor_vacuumed"] = True if day.weekday() == 0 else None
        record = self.create("hotel.office_service", self.at(day, 0, 1), {
            "room": office, "service_date": day.isoformat(), "tasks": tasks}, self.person("attendant", i + 2))
        done = self.at(day, 8, rng.uniform(35, 50) if rng.random() < 0.05 else rng.uniform(0, 28))
        self.steps(record, [(done, "complete")])

    def dishes(self, day: date) -> None:
        rng = self.rng
        for _ in range(1):
            at = self.at(day, 12, rng.uniform(0, 90))
            reject = rng.random() < 0.2
            record = self.create("hotel.dish_check", at, {
                "outlet": "restaurant", "dish": rng.choice(DISHES), "hygiene_ok": True, "served_hot": not reject,
                "presentation_ok": True, "result": "reject" if reject else "pass",
                "reject_reason": "Not hot enough, back to the wok 温度不够,退回重做" if reject else None},
                self.person("kitchen"))
            self.steps(record, [(at + timedelta(minutes=1), "reject" if reject else "serve")])

    def housekeeping(self, day: date, number: int) -> None:
        for room in self.config["meeting_rooms"]:
            at = self.at(day, 17, 30)
            if at >= self.now:
                return
            if day.weekday() == 4 and not (number // 7 == 5 and room == self.config["meeting_rooms"][0]):
                self.create("hotel.housekeeping_task", at, {"area": room, "task": "teaware_disinfection",
                                                           "result": "ok"}, self.person("meeting"))
            if day.weekday() == 5:
                self.create("hotel.housekeeping_task", at, {"area": room, "task": "deep_clean", "result": "ok",
                                                           "no_dead_corners": True}, self.person("meeting"))

    def mystery_check(self, day: date, catch: bool) -> None:
        at = self.at(day, 19, 30)
        if at >= self.now:
            return
        said = "不好意思,这个我不清楚,你问别人去吧。" if catch else "您好,请稍等,我帮您确认一下。"
        answers = {c: {"outcome": "pass"} for c in ("smile", "attitude", "dress", "civil_conduct", "taboo_reviewed")}
        answers["no_taboo_language"] = {"text": said}
        self.create("inspection", at, {"standard": "hotel.service_etiquette", "mode": "surprise",
                                       "visibility": "mystery", "answers": answers}, self.person("duty"))
