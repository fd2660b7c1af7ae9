"""Demo data of the courier plugin (``servq serve --demo``): Xunda Express 迅达快递, four
months of two stations.

:func:`load` (the ``register_demo_data`` loader) runs once, when a tenant with the plugin is
onboarded with demo data, after :func:`plugins.courier.onboarding.onboard`. For each active
station (site) with its couriers (staff titled ``Courier``) and manager (``Station manager``),
over the four months before the current one and the current month so far:

* **deliveries** (``DELIVERIES_PER_DAY`` a station a day: the seed's ~30 scaled down so the
  demo loads in seconds; ``bench/courier_import.py`` shows the full volume): every service,
  60 % with an appointment; 4 % of first attempts fail (absent 50 %, unreachable 20 %,
  rescheduled 15 %, address 10 %, refused 5 %; a photo where the tenant requires one) and
  are delivered at a second attempt the next day; 6 % of appointments missed, half of them
  notified before the window ended (pass), half not (the critical item fails);
  transcripts of the call for 20 %, one in ten without 再见, some with 请仔细查收你的快件;
* **the seed rule exercised**: courier 王强 charges a private rush fee three times in the
  second month (three criticals, three corrective actions, one repeat flag for the
  station manager); one gift withheld found by a complaint; 12 deliveries where spot checks
  found the courier left before the customer had checked the parcel;
* **the daily line-up** (one courier inspected per station a day, 2 % without uniform) and
  **monthly vehicle checks** (one vehicle each; one with expired insurance: critical);
* **the quarterly manager survey**: every courier rates the station manager (an
  ``observation`` of the manager per rating, so the answers go to the manager's file); the
  manager of the second station scores low on 公正廉洁.

Everything goes through core's functions (``create_record``, ``transition``,
``update_record``, survey scoring) with the instants of the past. Deterministic: one seeded
random generator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from servq import (Record, Schedule, Site, Staff, create_invitation, create_record, enabled_plugin_ids,
                   get_plugins, scan_schedules, schedule_zone, score_answers, store_response, transition,
                   update_record, update_schedule, utcnow)
from servq.plugins.courier.onboarding import manager_survey

SEED = 2027
MONTHS = 4
DELIVERIES_PER_DAY = 4
REASONS = (("recipient_absent", 50), ("unreachable", 20), ("rescheduled_by_recipient", 15),
           ("address_wrong", 10), ("refused", 5))
SERVICES = (("same_city", 50), ("intra_province", 30), ("domestic", 20))
RUSH_FEE_COURIER = "王强"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
STREETS = ("漕溪北路", "肇嘉浜路", "天钥桥路", "世纪大道", "张杨路", "陆家嘴环路", "浦东南路", "衡山路")


def script(company: str, hotline: str, *, second_person: bool, farewell: bool) -> list[dict]:
    you = "你" if second_person else "您"
    turns = [
        {"speaker": "courier", "text": f"您好。我是{company}快递公司的,您的快件已到,请问今天有时间接收吗?"},
        {"speaker": "customer", "text": "有的,下午在家。"},
        {"speaker": "courier", "text": "请问什么时候上门方便?"},
        {"speaker": "customer", "text": "三点以后吧。"},
        {"speaker": "courier", "text": f"好的。到时请仔细查收{you}的快件,对快件有疑问请拨打{hotline}。"},
    ]
    if farewell:
        turns.append({"speaker": "courier", "text": "再见!"})
    else:
        turns.append({"speaker": "customer", "text": "好,再见。"})
    return turns


@dataclass
class Context:
    session: Any
    kinds: dict
    rng: random.Random
    zone: Any
    now: datetime
    start: datetime
    company: str
    hotline: str
    waybills: int = 0

    def local(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=self.zone)

    def days(self):
        day = self.start.date()
        while self.local(day, time()) < self.now:
            yield day
            day += timedelta(days=1)

    def pick(self, pairs) -> str:
        names, weights = zip(*pairs)
        return self.rng.choices(names, weights=weights)[0]

    def create(self, kind: str, site: Site, staff: Staff | None, at: datetime, data: dict) -> Record:
        return create_record(self.session, self.kinds, {
            "kind": kind, "site_id": site.id, "staff_id": staff.id if staff else None,
            "occurred_at": at, "data": data}, None, now=at)

    def steps(self, record: Record, steps: list) -> None:
        """Take each ``(instant, action[, reason])`` whose instant has come; an action may be
        a dict: a change of the record's data."""
        for at, action, *reason in sorted(steps, key=lambda step: step[0]):
            if at >= self.now:
                return
            if isinstance(action, dict):
                update_record(self.session, self.kinds, record, {"data": {**_inputs(record.data), **action}},
                              None, now=at)
            else:
                transition(self.session, self.kinds, record, action, at=at, now=at,
                           reason=reason[0] if reason else None)


DERIVED = ("no_rush_fee", "no_gift_withheld", "waited_for_check", "failure_evidenced", "delivered_first_attempt")


def _inputs(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in DERIVED}


def load(session, tenant) -> None:
    """Write the demo history of ``tenant`` (the session's tenant); once."""
    if session.scalar(select(Record.id).where(Record.kind == "courier.delivery").limit(1)):
        return
    from servq.plugins.courier.conduct import configuration
    config = configuration(session)
    zone = schedule_zone(session)
    now = utcnow()
    today = now.astimezone(zone)
    first = date(today.year, today.month, 1)
    for _ in range(MONTHS):
        first = date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
    start = datetime.combine(first, time(), tzinfo=zone)
    ctx = Context(session, get_plugins().kinds_for(enabled_plugin_ids(session)), random.Random(SEED), zone, now,
                  start, config.get("company_name") or "迅达", config.get("hotline") or "400-820-8888")
    for schedule in session.scalars(select(Schedule).where(Schedule.key.like("courier.%")).order_by(Schedule.key)):
        if schedule.dtstart > start:
            update_schedule(session, schedule, {"dtstart": start}, now=start)
    sites = list(session.scalars(select(Site).where(Site.active.is_(True)).order_by(Site.code)))
    people = list(session.scalars(select(Staff).where(Staff.active.is_(True)).order_by(Staff.code)))
    couriers = {site.id: [p for p in people if p.site_id == site.id and "courier" in (p.title or "").lower()]
                for site in sites}
    managers = {site.id: next((p for p in people if p.site_id == site.id and "manager" in (p.title or "").lower()),
                              None) for site in sites}
    sites = [site for site in sites if couriers[site.id]]
    if not sites:
        return
    days = list(ctx.days())
    everyone = [c for site in sites for c in couriers[site.id]]
    rusher = next((c for c in everyone if c.name.startswith(RUSH_FEE_COURIER)), everyone[0])
    rush_days = _rush_days(ctx, days)
    conduct_days = set(ctx.rng.sample(days[:-2], min(12, len(days) - 2)))
    gift_day = days[len(days) // 3]
    for day in days:
        for number, site in enumerate(sites):
            for n in range(DELIVERIES_PER_DAY):
                courier = ctx.rng.choice(couriers[site.id])
                conduct: dict = {}
                if site.id == rusher.site_id and n == 0 and day in rush_days:
                    courier = rusher
                    conduct = {"rush_fee_charged": True, "source": "complaint"}
                elif number == len(sites) - 1 and n == 1 and day in conduct_days:
                    conduct = {"left_before_check": True, "source": "spot_check"}
                record = _delivery(ctx, site, courier, day, conduct)
                if number == 0 and n == 2 and day == gift_day:
                    _gift_complaint(ctx, site, courier, record, day)
            _lineup(ctx, site, ctx.rng.choice(couriers[site.id]), day)
    for month_start in _month_starts(ctx):
        for number, site in enumerate(sites):
            for index, courier in enumerate(couriers[site.id]):
                _vehicle_check(ctx, site, courier, month_start, expired=(number == 1 and index == 0
                                                                         and month_start == _month_starts(ctx)[1]))
    _manager_survey(ctx, tenant, sites, couriers, managers)
    scan_schedules(session, now)


def _month_starts(ctx: Context) -> list[date]:
    out, day = [], ctx.start.date()
    while ctx.local(day, time()) < ctx.now:
        out.append(day)
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return out


def _rush_days(ctx: Context, days: list[date]) -> set[date]:
    """Three days of the second month: the courier's three rush fees."""
    month = _month_starts(ctx)[1] if len(_month_starts(ctx)) > 1 else days[0]
    return {month + timedelta(days=d) for d in (3, 11, 19)}


def _delivery(ctx: Context, site: Site, courier: Staff, day: date, conduct: dict) -> Record:
    rng = ctx.rng
    ctx.waybills += 1
    received = ctx.local(day, time(7, 0)) + timedelta(minutes=rng.randint(0, 90))
    service = ctx.pick(SERVICES)
    shipped = received - timedelta(hours=rng.randint(4, {"same_city": 12, "intra_province": 30,
                                                          "domestic": 60}[service]))
    data: dict[str, Any] = {
        "waybill_no": f"XD{day:%y%m%d}{ctx.waybills:06d}", "service": service, "shipped_at": shipped.isoformat(),
        "recipient": {"name": rng.choice(SURNAMES) + rng.choice(("先生", "女士")),
                      "phone": f"13{rng.randint(100000000, 999999999)}",
                      "address": f"{rng.choice(STREETS)} {rng.randint(1, 999)} 号"},
        "parcel": {"weight_kg": round(rng.uniform(0.2, 12), 1)}, "conduct": conduct,
    }
    out_at = ctx.local(day, time(8, 30)) + timedelta(minutes=rng.randint(0, 30))
    window = None
    if rng.random() < 0.6:
        begin = ctx.local(day, time(rng.randint(9, 17)))
        window = (begin, begin + timedelta(hours=2))
        data["appointment"] = {"from": begin.isoformat(), "to": window[1].isoformat(), "agreed_via": "phone",
                               "agreed_at": (received + timedelta(minutes=20)).isoformat()}
    if rng.random() < 0.2:
        data["call_transcript"] = script(ctx.company, ctx.hotline, second_person=rng.random() < 0.15,
                                         farewell=rng.random() >= 0.1)
    record = ctx.create("courier.delivery", site, courier, received, data)
    steps: list = [(out_at, "dispatch")]
    missed = window is not None and rng.random() < 0.06
    if window is None:
        arrive = out_at + timedelta(minutes=rng.randint(30, 400))
    elif missed:
        if rng.random() < 0.5:
            steps.append((window[1] - timedelta(minutes=rng.randint(10, 60)), "notify_delay"))
        arrive = window[1] + timedelta(minutes=rng.randint(15, 90))
    else:
        arrive = window[0] + timedelta(minutes=rng.randint(0, 100))
    arrive = max(arrive, out_at + timedelta(minutes=10))
    steps.append((arrive, "arrive"))
    if rng.random() < 0.04 and not conduct:
        reason = ctx.pick(REASONS)
        failed = arrive + timedelta(minutes=5)
        change: dict = {"failure_reason": reason}
        if reason in ("recipient_absent", "damaged", "address_inaccessible"):
            change["failure_evidence"] = [f"photos/{data['waybill_no']}-door.jpg"]
        steps += [(failed - timedelta(minutes=1), change), (failed, "fail")]
        if reason in ("recipient_absent", "rescheduled_by_recipient", "unreachable"):
            again = ctx.local(day + timedelta(days=1), time(10)) + timedelta(minutes=rng.randint(0, 240))
            steps += [(failed + timedelta(minutes=10), "reschedule", "收件人改约 Recipient asked for another day"),
                      (again - timedelta(minutes=2), {"attempt_no": 2,
                                                      "handover": {"mode": "in_person",
                                                                   "checked_by_recipient": True}}),
                      (again, "redeliver"), (again + timedelta(minutes=40), "arrive"),
                      (again + timedelta(minutes=45), "hand_over")]
        else:
            steps.append((failed + timedelta(hours=2), "return"))
    else:
        mode = ctx.pick((("in_person", 70), ("locker", 20), ("station", 10)))
        handover = {"mode": mode, "signed_by": data["recipient"]["name"] if mode == "in_person" else None}
        if mode == "in_person":
            handover["checked_by_recipient"] = not conduct.get("left_before_check")
        steps += [(arrive + timedelta(minutes=1), {"handover": handover}), (arrive + timedelta(minutes=3), "hand_over")]
    ctx.steps(record, steps)
    return record


def _gift_complaint(ctx: Context, site: Site, courier: Staff, record: Record, day: date) -> None:
    at = ctx.local(day + timedelta(days=2), time(10))
    if at >= ctx.now:
        return
    ctx.create("complaint", site, courier, at, {
        "channel": "phone", "severity": "serious", "category": "prohibited_conduct",
        "description": "商家赠送的礼品未收到,快递员承认私自留下 (free gift kept by the courier)",
        "record_id": str(record.id)})
    ctx.steps(record, [(at + timedelta(hours=1), {"conduct": {"gift_withheld": True, "source": "complaint"}})])


def _lineup(ctx: Context, site: Site, courier: Staff, day: date) -> None:
    at = ctx.local(day, time(8, 0))
    if at >= ctx.now:
        return
    answer = {code: {"outcome": "pass"} for code in ("manner", "clean_clothes", "plain_hair", "uniform", "kind_tone")}
    answer["hair_tied"] = {"outcome": "na"}
    if ctx.rng.random() < 0.02:
        answer["uniform"] = {"outcome": "fail", "note": "未穿工装 no uniform"}
    ctx.create("inspection", site, courier, at, {"standard": "courier.appearance", "answers": answer})


def _vehicle_check(ctx: Context, site: Site, courier: Staff, month: date, *, expired: bool) -> None:
    at = ctx.local(month + timedelta(days=4), time(16))
    if at >= ctx.now:
        return
    ctx.create("courier.vehicle_check", site, courier, at, {
        "vehicle_id": f"{site.code}-{courier.code}", "body_clean_branded": ctx.rng.random() > 0.05,
        "cargo_secured": True, "lights_tyres_brakes_ok": True, "documents_valid": not expired,
        "no_passengers": True, "findings": "交强险已过期 insurance expired" if expired else ""})


def _manager_survey(ctx: Context, tenant, sites, couriers, managers) -> None:
    survey = manager_survey(ctx.session, tenant)
    doc = survey.instrument
    quarters = [m for m in _month_starts(ctx) if m.month in (1, 4, 7, 10)] or _month_starts(ctx)[:1]
    for quarter in quarters:
        sent = ctx.local(quarter + timedelta(days=7), time(10))
        if sent >= ctx.now:
            continue
        for number, site in enumerate(sites):
            manager = managers[site.id]
            if manager is None:
                continue
            for courier in couriers[site.id]:
                rating = ctx.create("observation", site, manager, sent, {
                    "title": "Manager service survey 管理人员服务评价", "tags": ["internal_survey"],
                    "description": f"{courier.name} rates the station manager"})
                invitation, _ = create_invitation(ctx.session, survey, customer={"name": courier.name},
                                                  record_id=rating.id, send=False,
                                                  expires_at=sent + timedelta(days=30))
                invitation.created_at = invitation.updated_at = sent
                answers = {item["code"]: max(1, min(5, round(ctx.rng.gauss(4.3, 0.5)))) for item in doc["items"]}
                if number == 1:
                    answers["fair_honest"] = max(1, min(5, round(ctx.rng.gauss(2.2, 0.5))))
                submitted = sent + timedelta(hours=ctx.rng.randint(1, 72))
                if submitted >= ctx.now:
                    continue
                scored = score_answers(doc, survey.form, survey.importance, answers, None)
                invitation.responded_at = submitted
                store_response(ctx.session, survey, invitation, scored, answers=answers, submitted_at=submitted)
