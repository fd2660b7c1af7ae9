"""Demo data of the property plugin (``servq serve --demo``): six months of an estate's life.

:func:`load` (the ``register_demo_data`` loader) runs once, when a tenant with the plugin
is onboarded with demo data, right after :func:`plugins.property.onboarding.onboard`. It
writes the history of the six months before the current one and of the current month so
far, for every active site:

* **work orders** (about one a day per estate): every category and channel, urgent and
  normal, taken through their workflow (respond, report back, arrive, wait for parts,
  complete, the owner's sign-off and close, now and then a reopening): most on time,
  some answered, reached or fixed late;
* **complaints** (general and serious), acknowledged, investigated on site, resolved and
  confirmed: some late, a few still open;
* **facility checks**: monthly fire-equipment patrols, drainage checks, lighting and fire
  water inspections and elevator patrols; the half-yearly water tank cleaning (with its
  test report), the yearly fire-equipment test and septic tank emptying. One month of
  fire-equipment patrols is missed at the first estate; some checks find faults;
* **the owner satisfaction survey**: a round in every survey month of the window (the
  plugin's ``survey_months``): the round filed as an observation at each estate, owners
  invited, most of them answering.

Everything goes through core's functions (``create_record``, workflow ``transition``,
``update_record``, the survey scoring and rollups) with the instants of the past, so the
scores, deadline clocks, corrective actions and survey results are real. The property
schedules are moved to start with the window (their watch starting there too), and the
recurring obligations are scanned once at the end, so the missed patrol is reported as
it would have been. A step whose time has not come yet is left undone: the latest work
orders are still in progress.

Deterministic: one seeded random generator; the same day gives the same demo.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Callable

from sqlalchemy import select

from servq import (Record, Schedule, Site, Staff, create_invitation, create_record, enabled_plugin_ids,
                          evaluate_record, get_plugins, item_columns, item_scale, scan_schedules,
                          schedule_zone, score_answers, store_response, transition, update_record,
                          update_schedule, utcnow)
from servq.plugins.property.onboarding import SURVEY_ROUND_TITLE, plugin_configuration, satisfaction_survey

SEED = 2026
#: Full months of history before the current month.
MONTHS = 4
WORK_ORDERS_PER_DAY = 0.5
COMPLAINTS_PER_DAY = 0.1
#: Owners invited per estate and survey round.
INVITED = 12

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
         "明", "超", "秀英", "华", "慧", "建国", "志强", "海燕", "晓东")
PLACES = ("Block {b} lobby 大堂", "Underground car park B1 地下车库", "Main gate 南大门",
          "Garden path 花园步道", "Block {b} stairwell 楼梯间", "Clubhouse 会所", "Road by block {b} 道路")

CATEGORY_WEIGHTS = {"water": 18, "drainage": 12, "power": 12, "elevator": 10, "lighting": 14,
                    "security": 6, "cleaning": 12, "fire": 4, "other": 12}
URGENT_SHARE = {"elevator": 0.5, "power": 0.4, "water": 0.35, "fire": 0.6, "drainage": 0.2,
                "security": 0.3}
CHANNELS = (("hotline", 35), ("wechat", 25), ("app", 20), ("walk_in", 8), ("email", 2), ("patrol", 10))
DESCRIPTIONS = {
    "elevator": ("Elevator stuck between floors 电梯困人", "Elevator door does not close 电梯门关不上",
                 "Elevator makes a grinding noise 电梯异响"),
    "power": ("No power in the flat 家中停电", "Corridor sockets dead 走廊插座无电",
              "Breaker trips repeatedly 空开反复跳闸"),
    "water": ("No water supply 家中停水", "Burst pipe in the kitchen 厨房水管爆裂", "Low water pressure 水压低"),
    "drainage": ("Floor drain blocked 地漏堵塞", "Sewage backing up in the bathroom 卫生间污水倒灌",
                 "Rainwater pipe leaking 雨水管漏水"),
    "lighting": ("Street lamp out 路灯不亮", "Stairwell lights flicker 楼道灯闪烁",
                 "Car park lights out in a row 车库一排灯不亮"),
    "fire": ("Fire extinguisher missing 灭火器缺失", "Smoke detector beeping 烟感报警器鸣叫",
             "Fire door held open 防火门被堵"),
    "security": ("Entrance gate card reader broken 门禁失灵", "Stranger loitering 可疑人员逗留",
                 "Camera not recording 监控无画面"),
    "cleaning": ("Rubbish not collected 垃圾未清运", "Lobby floor dirty 大堂地面脏污",
                 "Leaves blocking the path 落叶堵塞步道"),
    "other": ("Noise from renovation 装修噪音", "Parking space taken 车位被占", "Mailbox broken 信报箱损坏"),
}
COMPLAINT_CATEGORIES = (("noise", 20), ("hygiene", 18), ("parking", 14), ("repair_delay", 16),
                        ("security", 10), ("staff_attitude", 8), ("fees", 6), ("pets", 8))
COMPLAINT_TEXTS = {
    "noise": "Neighbour renovating at night 邻居夜间装修扰民",
    "hygiene": "Rubbish room smells, not cleaned for days 垃圾房多日未清理有异味",
    "parking": "Outside cars parked in residents' spaces 外来车辆占用业主车位",
    "repair_delay": "Repair promised yesterday, nobody came 报修后承诺昨日上门无人来",
    "security": "Gate guard let a stranger in 门岗放陌生人进入",
    "staff_attitude": "Customer service was rude on the phone 客服电话态度恶劣",
    "fees": "Charged twice for the management fee 物业费重复收取",
    "pets": "Dogs off the lead in the garden 花园内遛狗不牵绳",
}
COMPLAINT_CHANNELS = (("hotline", 40), ("phone", 15), ("in_person", 20), ("web", 10), ("social", 10),
                      ("email", 5))


@dataclass
class Context:
    """What every generator needs: the session, kinds, clock, randomness and the estates."""

    session: Any
    kinds: dict
    rng: random.Random
    zone: Any
    now: datetime
    start: datetime
    sites: list[Site]
    staff: dict[Any, list[Staff]]
    work_orders: dict[Any, list[Record]] = field(default_factory=dict)

    def local(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=self.zone)

    def days(self):
        day = self.start.date()
        while self.local(day, time()) < self.now:
            yield day
            day += timedelta(days=1)

    def months(self) -> list[date]:
        out, day = [], self.start.date()
        while self.local(day, time()) < self.now:
            out.append(day)
            day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        return out

    def pick(self, pairs) -> str:
        names, weights = zip(*pairs)
        return self.rng.choices(names, weights=weights)[0]

    def member(self, site: Site, *words: str) -> Staff | None:
        """A member of staff of ``site`` whose title has one of ``words`` (any, else None)."""
        people = self.staff.get(site.id, [])
        matching = [s for s in people if any(w in (s.title or "").lower() for w in words)]
        pool = matching or people
        return self.rng.choice(pool) if pool else None


def load(session, tenant) -> None:
    """Write the demo history of ``tenant`` (the session's tenant); once."""
    if session.scalar(select(Record.id).where(Record.kind == "property.work_order").limit(1)):
        return
    config = plugin_configuration(session)
    zone = schedule_zone(session)
    now = utcnow()
    today = now.astimezone(zone)
    first = date(today.year, today.month, 1)
    for _ in range(MONTHS):
        first = date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
    start = datetime.combine(first, time(), tzinfo=zone)
    sites = list(session.scalars(select(Site).where(Site.active.is_(True)).order_by(Site.code)))
    staff: dict[Any, list[Staff]] = {}
    for member in session.scalars(select(Staff).where(Staff.active.is_(True)).order_by(Staff.code)):
        staff.setdefault(member.site_id, []).append(member)
    ctx = Context(session, get_plugins().kinds_for(enabled_plugin_ids(session)), random.Random(SEED),
                  zone, now, start, sites, staff)
    _start_schedules(session, start)
    for site in sites:
        _facility_checks(ctx, site, first_site=site is sites[0])
    for day in ctx.days():
        for site in sites:
            for _ in range(_count(ctx.rng, WORK_ORDERS_PER_DAY)):
                _work_order(ctx, site, day)
            for _ in range(_count(ctx.rng, COMPLAINTS_PER_DAY)):
                _complaint(ctx, site, day)
    _survey_rounds(ctx, tenant, config)
    scan_schedules(session, now)


def _count(rng: random.Random, mean: float) -> int:
    """How many events a day brings: 0, 1 or 2 around ``mean``."""
    roll = rng.random()
    return 2 if roll < mean * 0.15 else (1 if roll < mean * 0.85 else 0)


def _start_schedules(session, start: datetime) -> None:
    """The property obligations run from the start of the history, their watch too."""
    for schedule in session.scalars(select(Schedule).where(Schedule.key.like("property.%"))
                                    .order_by(Schedule.key)):
        if schedule.dtstart > start:
            update_schedule(session, schedule, {"dtstart": start}, now=start)


# -- stepping a workflow record through its past ---------------------------------------------


def _create(ctx: Context, kind: str, site: Site, staff: Staff | None, at: datetime,
            data: dict) -> Record:
    return create_record(ctx.session, ctx.kinds, {
        "kind": kind, "site_id": site.id, "staff_id": staff.id if staff else None,
        "occurred_at": at, "data": data}, None, now=at)


def _steps(ctx: Context, record: Record, steps: list[tuple[datetime, str | Callable]]) -> None:
    """Take each ``(instant, action)`` in order while the instant has come, the record
    scored as of that instant; an action may be a function ``(record, instant)`` (a change
    of its data). A record whose next step has not come yet is scored as of now at the end
    (its deadlines may have passed since)."""
    for at, action in sorted(steps, key=lambda step: step[0]):
        if at >= ctx.now:
            evaluate_record(ctx.session, record, now=ctx.now)
            return
        if callable(action):
            action(record, at)
        elif action == "wait_for_parts":
            transition(ctx.session, ctx.kinds, record, action, at=at,
                       reason="Parts ordered, owner told 配件已订购，已告知业主", now=at)
        else:
            transition(ctx.session, ctx.kinds, record, action, at=at, now=at)


def _change(ctx: Context, **values) -> Callable[[Record, datetime], None]:
    def apply(record: Record, at: datetime) -> None:
        update_record(ctx.session, ctx.kinds, record, {"data": {**record.data, **values}}, None, now=at)
    return apply


def _minutes(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(minutes=rng.uniform(low, high))


def _reported_at(ctx: Context, day: date) -> datetime:
    """A time of day: mostly 07:00-22:00, sometimes at night (the hotline runs 24 hours)."""
    rng = ctx.rng
    if rng.random() < 0.12:
        minutes = rng.choice((rng.uniform(0, 420), rng.uniform(1320, 1439)))
    else:
        minutes = rng.uniform(420, 1320)
    return ctx.local(day, time()) + timedelta(minutes=minutes)


def _person(rng: random.Random) -> dict[str, str]:
    return {"name": rng.choice(SURNAMES) + rng.choice(GIVEN),
            "phone": f"1{rng.choice((3, 5, 8))}{rng.randrange(10**9):09d}"}


def _unit(rng: random.Random, category: str) -> str:
    block = rng.randint(1, 12)
    if category in ("lighting", "cleaning", "security") and rng.random() < 0.7:
        return rng.choice(PLACES).format(b=block)
    return f"{block}-{rng.randint(1, 3)}-{rng.randint(1, 28):02d}{rng.randint(1, 4):02d}"


# -- work orders -------------------------------------------------------------------------------


def _work_order(ctx: Context, site: Site, day: date) -> None:
    rng = ctx.rng
    reported = _reported_at(ctx, day)
    if reported >= ctx.now:
        return
    category = ctx.pick(sorted(CATEGORY_WEIGHTS.items()))
    priority = "urgent" if rng.random() < URGENT_SHARE.get(category, 0.08) else "normal"
    channel = ctx.pick(CHANNELS)
    data: dict[str, Any] = {
        "channel": channel, "unit": _unit(rng, category), "category": category,
        "priority": priority, "description": rng.choice(DESCRIPTIONS[category]),
        "owner": {} if channel == "patrol" else _person(rng),
    }
    if category == "lighting":
        data["complexity"] = "complex" if rng.random() < 0.3 else "simple"
    handler = ctx.member(site, "housekeep") if category == "cleaning" else \
        ctx.member(site, "security", "customer") if category == "security" else ctx.member(site, "engineer")
    record = _create(ctx, "property.work_order", site, handler, reported, data)
    ctx.work_orders.setdefault(site.id, []).append(record)
    _steps(ctx, record, _work_order_steps(ctx, reported, data))


def _work_order_steps(ctx: Context, reported: datetime, data: dict) -> list:
    """The instants of a work order's life: mostly within the standard, now and then not."""
    rng = ctx.rng
    fast = data["priority"] == "urgent" or data["category"] in ("elevator", "power", "water")
    if fast:  # on site within 30 minutes, unless late
        on_site = reported + (_minutes(rng, 35, 110) if rng.random() < 0.12 else _minutes(rng, 6, 28))
        responded = reported + _minutes(rng, 1, 5)
    else:
        late = rng.random() < 0.1
        responded = reported + (_minutes(rng, 250, 600) if late else _minutes(rng, 5, 200))
        on_site = responded + (_minutes(rng, 10, 120) if data["category"] == "lighting"
                               else _minutes(rng, 30, 1200))
    feedback = responded + (_minutes(rng, 240, 500) if rng.random() < 0.07 else _minutes(rng, 2, 30))
    if data["category"] == "lighting":
        target = 8 * 60 if data["complexity"] == "simple" else 48 * 60
        late = rng.random() < 0.15
        share = rng.uniform(1.1, 1.8) if late else rng.uniform(0.2, 0.9)
        completed = reported + timedelta(minutes=target * share)
        completed = max(completed, on_site + _minutes(rng, 15, 60))
    else:
        completed = on_site + _minutes(rng, 20, 150)
    steps: list = [(responded, "respond"), (on_site, "arrive")]
    if not fast and data["category"] != "lighting" and rng.random() < 0.08:
        waiting = on_site + _minutes(rng, 10, 40)
        resumed = waiting + _minutes(rng, 1440, 4320)
        steps += [(waiting, "wait_for_parts"), (resumed, "resume")]
        completed = resumed + _minutes(rng, 30, 180)
    feedback = min(feedback, completed - timedelta(minutes=1))
    steps.append((max(feedback, responded + timedelta(seconds=30)), "report_back"))
    steps.append((completed, "complete"))
    closed = completed + _minutes(rng, 60, 2880)
    late_anything = on_site - reported > timedelta(minutes=30) and fast
    rating = rng.choice((1, 2, 3)) if late_anything else rng.choice((3, 4, 4, 5, 5, 5))
    if rng.random() < 0.05:  # not fixed: reopened after the sign-off
        reopened = closed + _minutes(rng, 1440, 5760)
        back = reopened + _minutes(rng, 60, 600)
        done = back + _minutes(rng, 30, 180)
        steps += [(closed - timedelta(seconds=1), _change(ctx, sign_off={"signed": True, "rating": 3},
                                                          fixed_first_time=True)),
                  (closed, "close"), (reopened, "reopen"),
                  (reopened + timedelta(seconds=1), _change(ctx, fixed_first_time=False)),
                  (back, "arrive"), (done, "complete"),
                  (done + _minutes(rng, 60, 1440), _change(ctx, sign_off={
                      "signed": True, "rating": 2, "comment": "Fixed at the second visit 第二次才修好"})),
                  (done + _minutes(rng, 1441, 1500), "close")]
    else:
        signed = rng.random() < 0.95
        steps += [(closed - timedelta(seconds=1), _change(ctx, fixed_first_time=True, sign_off={
                      "signed": signed, "rating": rating if signed else None,
                      "comment": "" if signed else "Owner not at home 业主不在家"})),
                  (closed, "close")]
    return steps


# -- complaints --------------------------------------------------------------------------------


def _complaint(ctx: Context, site: Site, day: date) -> None:
    rng = ctx.rng
    received = _reported_at(ctx, day)
    if received >= ctx.now:
        return
    category = ctx.pick(COMPLAINT_CATEGORIES)
    severity = "serious" if rng.random() < 0.25 else "general"
    data: dict[str, Any] = {
        "channel": ctx.pick(COMPLAINT_CHANNELS), "severity": severity, "category": category,
        "description": COMPLAINT_TEXTS[category], "customer": _person(rng),
    }
    earlier = ctx.work_orders.get(site.id) or []
    if category == "repair_delay" and earlier:
        data["record_id"] = str(rng.choice(earlier[-10:]).id)
    record = _create(ctx, "complaint", site, ctx.member(site, "customer"), received, data)
    acknowledged = received + (_minutes(rng, 250, 480) if rng.random() < 0.08 else _minutes(rng, 5, 25))
    investigating = acknowledged + (_minutes(rng, 50, 150) if rng.random() < 0.12 else _minutes(rng, 5, 30))
    if severity == "general":
        late = rng.random() < 0.2
        resolved = received + (_minutes(rng, 560, 1800) if late else _minutes(rng, 120, 450))
    else:
        late = rng.random() < 0.25
        resolved = received + (timedelta(days=rng.uniform(14, 20)) if late
                               else timedelta(days=rng.uniform(0.3, 3.5)))
    resolved = max(resolved, investigating + _minutes(rng, 10, 60))
    resolved_by = _change(ctx, root_cause="Handled with the owner 已与业主沟通处理")
    _steps(ctx, record, [(acknowledged, "acknowledge"), (investigating, "investigate"),
                         (resolved - timedelta(seconds=1), resolved_by), (resolved, "resolve"),
                         (resolved + _minutes(rng, 60, 1440), "confirm")])


# -- facility checks ---------------------------------------------------------------------------


def _facility_checks(ctx: Context, site: Site, first_site: bool) -> None:
    rng = ctx.rng
    lights = rng.randint(160, 260)
    points = rng.randint(24, 40)
    for number, month in enumerate(ctx.months()):
        def on(low: int, high: int) -> datetime:
            day = month + timedelta(days=rng.randint(low, high))
            return ctx.local(day, time(rng.randint(9, 16), rng.choice((0, 15, 30, 45))))

        engineer = ctx.member(site, "engineer")
        if not (first_site and number == 2):  # one month of fire patrols missed at the first estate
            _check(ctx, site, engineer, on(3, 20), "fire_equipment", "patrol", "ok")
        _check(ctx, site, engineer, on(5, 24), "drainage", "inspection",
               "fault" if rng.random() < 0.1 else "ok",
               findings="Silt in the main drain, cleared 主管淤泥已清理")
        broken = rng.choice((0, 0, 1, 1, 2)) if number % 3 else rng.randint(3, 7)
        _check(ctx, site, engineer, on(1, 26), "lighting", "patrol",
               "fault" if broken * 100 > lights else "ok", lights_total=lights,
               lights_working=lights - broken, findings=f"{broken} lamps out 路灯损坏" if broken else "")
        dry = 1 if (not first_site and number == 3) else 0
        _check(ctx, site, ctx.member(site, "fire", "engineer"), on(6, 22), "fire_water", "inspection",
               "fault" if dry else "ok", points_total=points, points_working=points - dry,
               findings="Hydrant valve seized 消火栓阀门锈死" if dry else "")
        _check(ctx, site, engineer, on(2, 25), "elevator", "patrol",
               "fault" if rng.random() < 0.08 else "ok")
        if number == 1:
            _check(ctx, site, engineer, on(10, 20), "water_tank", "cleaning", "ok",
                   test_report_ref=f"SH-CDC-{month.year}-{month.month:02d}-{site.code}")
        if number == 3:
            _check(ctx, site, ctx.member(site, "housekeep"), on(8, 18), "septic_tank", "emptying", "ok")
        if number == 4:
            _check(ctx, site, ctx.member(site, "fire", "engineer"), on(12, 20), "fire_equipment", "test",
                   "ok", findings="Annual test by the certified contractor 年度检测")


def _check(ctx: Context, site: Site, staff: Staff | None, at: datetime, facility: str, check: str,
           result: str, **extra) -> None:
    if at >= ctx.now:
        return
    data = {"facility": facility, "check": check, "result": result,
            **{k: v for k, v in extra.items() if v not in (None, "")}}
    _create(ctx, "property.facility_check", site, staff, at, data)


# -- the owner satisfaction survey -----------------------------------------------------------


def _survey_rounds(ctx: Context, tenant, config: dict) -> None:
    """A round in every survey month of the history, at every estate."""
    survey = satisfaction_survey(ctx.session, tenant, config["satisfaction_survey"])
    rounds = [month for month in ctx.months() if month.month in config["survey_months"]]
    for month in rounds:
        for number, site in enumerate(ctx.sites):
            sent = ctx.local(month + timedelta(days=2), time(10))
            if sent >= ctx.now:
                continue
            _create(ctx, "observation", site, ctx.member(site, "customer"), sent, {
                "title": SURVEY_ROUND_TITLE, "tags": ["survey"],
                "description": f"{INVITED} owners invited 邀请{INVITED}位业主参与满意度调查"})
            mood = 0.78 - 0.12 * number
            for _ in range(INVITED):
                _survey_answer(ctx, survey, sent, mood)


def _survey_answer(ctx: Context, survey, sent: datetime, mood: float) -> None:
    rng = ctx.rng
    invitation, _token = create_invitation(ctx.session, survey, customer=_person(rng),
                                           expires_at=sent + timedelta(days=survey.link_lifetime_days),
                                           send=False)
    invitation.created_at = invitation.updated_at = sent
    submitted = sent + _minutes(rng, 30, 14 * 1440)
    if rng.random() > 0.75 or submitted >= ctx.now:
        return
    doc = survey.instrument
    answers: dict[str, Any] = {}
    for item in doc["items"]:
        scale = item_scale(doc, item)
        columns = item_columns(survey.form, item)

        def point(level: float) -> int:
            level = min(1.0, max(0.0, level + rng.gauss(0, 0.12)))
            value = round(scale["min"] + level * (scale["max"] - scale["min"]))
            return scale["min"] + scale["max"] - value if item.get("reverse") else value

        if len(columns) == 1:
            answers[item["code"]] = point(mood)
        else:
            levels = {"expectation": 0.88, "desired": 0.92, "adequate": 0.55, "perception": mood}
            answers[item["code"]] = {column: point(levels[column]) for column in columns}
            if "adequate" in answers[item["code"]]:
                given = answers[item["code"]]
                given["adequate"], given["desired"] = sorted((given["adequate"], given["desired"]))
    scored = score_answers(doc, survey.form, survey.importance, answers, None)
    invitation.responded_at = submitted
    store_response(ctx.session, survey, invitation, scored, answers=answers, submitted_at=submitted)
