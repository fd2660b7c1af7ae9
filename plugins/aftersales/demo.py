"""Demo data of the after-sales plugin (``servq serve --demo``, ``servq tenants onboard FILE
--demo``): two months of two service centres of Nanchang Huaxin Equipment (INDUSTRIES.md §3.5).

:func:`load` runs once, after :func:`plugins.aftersales.onboarding.onboard`, and writes the
two months before the current one and the current month so far, for every active site:

* **tickets** (about 3 a working day per centre; 40 % phone, 30 % web, 20 % e-mail, 10 %
  WeChat; water-treatment controllers with serial numbers), taken through acknowledge,
  diagnose, plan, start, resolve and the customer's confirmation; 7 % rejected and
  re-diagnosed, 5 % escalated with a promised date, some waiting for parts, a few repeat
  contacts; the latest still open;
* **visits** for a quarter of the tickets, confirmed by phone before leaving, except by one
  engineer who often calls only after the appointment has begun; three completions refused
  by the guard (no signature), signed and completed the next day;
* **installations**, two a month, one accepted and handed over on day 6 (a breach);
* **daily reviews** every working day at each centre listing the open tickets; one day
  missed, one review leaving out two open tickets;
* **knowledge-base articles**, one published per kind of fault (``knowledge.py``); half
  the tickets name theirs, linked when resolved;
* **calls**, 20 a working day per centre, a fifth with transcripts scored automatically;
  8 % of those change the closing phrase, one says the red-line ``我就这态度``; manual
  reviews (inspections of ``aftersales.call_qa`` naming the call) by the QA reviewer.

Everything goes through core's functions (``create_record``, ``transition``,
``update_record``) with the instants of the past, so scores, clocks and actions are real.
Deterministic: one seeded random generator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from servq import (
    Record,
    Schedule,
    Site,
    Staff,
    TransitionBlocked,
    create_record,
    enabled_plugin_ids,
    evaluate_record,
    get_plugins,
    scan_schedules,
    schedule_zone,
    transition,
    update_record,
    update_schedule,
    utcnow,
)
from servq.plugins.aftersales.hooks import configuration
from servq.plugins.aftersales.knowledge import seed_articles

SEED = 2026
MONTHS = 2
TICKETS_PER_DAY = 1
CALLS_PER_DAY = 6
TRANSCRIPT_SHARE = 0.2
REVIEWS_PER_AGENT_MONTH = 15
PRODUCTS = (("WTC-200", "Water-treatment controller 水处理控制器"), ("WTC-350", "Dosing controller 加药控制器"),
            ("RO-PLC-1", "RO plant PLC 反渗透控制柜"))
FAULTS = (("Controller shows E3, pump stops 控制器报E3，水泵停机", "hardware", "relay K2 burnt out 继电器K2烧毁"),
          ("Conductivity reading drifts 电导率读数漂移", "sensor", "probe fouled 探头结垢"),
          ("Dosing pump does not start 加药泵不启动", "wiring", "loose terminal 端子松动"),
          ("Touch screen frozen 触摸屏死机", "software", "firmware 2.1 bug 固件缺陷"),
          ("How to set the backwash timer 如何设置反洗定时", "usage", "operator not trained 操作不熟"))
CHANNELS = (("phone", 40), ("web", 30), ("email", 20), ("wechat", 10))
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
OPENING = "您好，很高兴为您服务，请问有什么可以帮您？"
CLOSING = "感谢您的来电，再见。"
CHANGED_CLOSINGS = ("谢谢，拜拜。", "好的就这样，再见。", "感谢来电。")


@dataclass
class Context:
    session: Any
    kinds: dict
    rng: random.Random
    zone: Any
    now: datetime
    start: datetime
    sites: list[Site]
    staff: dict[Any, list[Staff]]
    open_tickets: dict[Any, list[Record]] = field(default_factory=dict)
    refused_left: int = 3
    late_installation_done: bool = False
    red_line_done: bool = False

    def local(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=self.zone)

    def working_days(self):
        day = self.start.date()
        while self.local(day, time()) < self.now:
            if day.weekday() < 5:
                yield day
            day += timedelta(days=1)

    def people(self, site: Site, word: str) -> list[Staff]:
        return [s for s in self.staff.get(site.id, []) if word in (s.title or "").lower()]


def load(session, tenant) -> None:
    """Write the demo history of ``tenant`` (the session's tenant); once."""
    if session.scalar(select(Record.id).where(Record.kind == "aftersales.ticket").limit(1)):
        return
    configuration(session)
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
    for schedule in session.scalars(select(Schedule).where(Schedule.key.like("aftersales.%")).order_by(Schedule.key)):
        if schedule.dtstart > start:
            update_schedule(session, schedule, {"dtstart": start}, now=start)
    seed_articles(session, start)  # the KB-<fault> articles the tickets name
    days = list(ctx.working_days())
    missed_day = days[len(days) // 3] if days else None
    partial_day = days[len(days) // 2] if days else None
    for day in days:
        for site in sites:
            for _ in range(ctx.rng.choice((2, 3, 3, 4))):
                _ticket(ctx, site, day)
            for _ in range(CALLS_PER_DAY):
                _call(ctx, site, day)
            if day.day in (3, 17):
                _installation(ctx, site, day)
            if not (site is sites[0] and day == missed_day):
                _daily_review(ctx, site, day, omit=2 if (site is sites[0] and day == partial_day) else 0)
    scan_schedules(session, now)


def _create(ctx: Context, kind: str, site: Site, staff: Staff | None, at: datetime, data: dict) -> Record:
    return create_record(ctx.session, ctx.kinds, {
        "kind": kind, "site_id": site.id, "staff_id": staff.id if staff else None,
        "occurred_at": at, "data": data}, None, now=at)


def _change(ctx: Context, record: Record, at: datetime, **values) -> None:
    update_record(ctx.session, ctx.kinds, record, {"data": {**record.data, **values}}, None, now=at)


def _run(ctx: Context, record: Record, steps: list) -> bool:
    """Take ``(instant, action or callable)`` steps in order while their time has come;
    ``False`` when stopped by the present."""
    for at, action in sorted(steps, key=lambda step: step[0]):
        if at >= ctx.now:
            evaluate_record(ctx.session, record, now=ctx.now)
            return False
        if callable(action):
            action(at)
        elif action.startswith("wait_for"):
            transition(ctx.session, ctx.kinds, record, action, at=at, now=at,
                       reason="Parts ordered, customer told 配件已订购，已告知客户")
        else:
            transition(ctx.session, ctx.kinds, record, action, at=at, now=at)
    return True


def _iso(at: datetime) -> str:
    return at.isoformat()


def _ticket(ctx: Context, site: Site, day: date) -> None:
    rng = ctx.rng
    received = ctx.local(day, time(8, 30)) + timedelta(minutes=rng.uniform(0, 540))
    if received >= ctx.now:
        return
    product = rng.choice(PRODUCTS)
    fault = rng.choice(FAULTS)
    name = rng.choice(SURNAMES) + rng.choice(("先生", "女士", "工"))
    serial = f"{product[0]}-{rng.randint(1000, 1400)}"
    engineers = ctx.people(site, "engineer")
    engineer = rng.choice(engineers) if engineers else None
    data = {"channel": rng.choices(*zip(*CHANNELS))[0], "request_type": "consultation" if fault[1] == "usage"
            else rng.choice(("repair", "repair", "repair", "replacement", "complaint")),
            "importance": rng.choices(("high", "normal", "low"), (2, 6, 2))[0],
            "urgency": rng.choices(("high", "normal", "low"), (2, 6, 2))[0],
            "description": fault[0], "warranty_status": rng.choice(("under_warranty", "out_of_warranty")),
            "customer": {"name": name, "phone": f"139{rng.randint(10_000_000, 99_999_999)}"},
            "product": {"item_code": product[0], "name": product[1], "serial_no": serial}}
    record = _create(ctx, "aftersales.ticket", site, engineer, received, data)
    at = received + timedelta(minutes=rng.uniform(5, 150))
    steps: list = [(at, "acknowledge")]
    at += timedelta(minutes=rng.uniform(30, 240))
    steps.append((at, lambda when: _change(ctx, record, when, diagnosis={"nature": fault[1], "cause": fault[2]},
                                           plan={"planned_at": _iso(when + timedelta(days=1)),
                                                 "steps": "Replace / adjust on site 现场更换或调整",
                                                 "resources": "1 engineer 工程师1名"})))
    steps += [(at + timedelta(seconds=1), "diagnose"), (at + timedelta(seconds=2), "plan"),
              (at + timedelta(minutes=30), "start")]
    at += timedelta(hours=rng.uniform(2, 70))
    if rng.random() < 0.15:
        steps.append((at - timedelta(hours=1), "wait_for_parts"))
        steps.append((at + timedelta(hours=rng.uniform(4, 30)), "resume"))
        at += timedelta(hours=32)
    if rng.random() < 0.05:
        steps.append((at - timedelta(minutes=40), lambda when: _change(
            ctx, record, when, escalation={"to": "国内市场部", "reason": "Needs a factory part",
                                           "promised_at": _iso(when + timedelta(days=5))})))
        steps.append((at - timedelta(minutes=39), "escalate"))
    if at - received > timedelta(hours=24):
        steps.append((received + timedelta(hours=20), "report_progress"))
    resolution = {"summary": fault[0], "steps": fault[2], "duration_minutes": int(rng.uniform(20, 180))}
    steps.append((at - timedelta(minutes=5), lambda when: _change(ctx, record, when, resolution=resolution,
                                                                  kb_articles=["KB-" + fault[1]] if rng.random() < 0.5 else [])))
    steps.append((at, "resolve"))
    if rng.random() < 0.07:
        steps.append((at + timedelta(hours=3), lambda when: _change(
            ctx, record, when, confirmation={"satisfied": False, "rating": 2, "comment": "问题依旧"})))
        steps.append((at + timedelta(hours=3, seconds=1), "reject"))
        at += timedelta(hours=rng.uniform(20, 48))
        steps += [(at - timedelta(hours=2), "plan"), (at - timedelta(hours=1), "start"), (at, "resolve")]
    at += timedelta(hours=rng.uniform(2, 30))
    steps.append((at, lambda when: _change(ctx, record, when, confirmation={
        "satisfied": True, "rating": rng.choice((3, 4, 4, 5, 5)), "comment": "", "signed": True})))
    steps.append((at + timedelta(seconds=1), "confirm"))
    if rng.random() < 0.25 and engineer is not None:
        _visit(ctx, site, engineer, record, received + timedelta(hours=rng.uniform(3, 20)))
    _run(ctx, record, steps)


def _visit(ctx: Context, site: Site, engineer: Staff, ticket: Record, booked: datetime) -> None:
    rng = ctx.rng
    if booked >= ctx.now:
        return
    slot = (booked + timedelta(days=1)).replace(hour=14, minute=0, second=0, microsecond=0)
    record = _create(ctx, "aftersales.visit", site, engineer, booked, {
        "ticket_id": str(ticket.id), "appointment": {"from": _iso(slot), "to": _iso(slot + timedelta(hours=2)),
                                                     "agreed_at": _iso(booked)}})
    skipper = engineer.code.endswith("ENG-03")
    confirm = slot + timedelta(minutes=10) if skipper and rng.random() < 0.6 else slot - timedelta(hours=2)
    arrive = max(confirm, slot) + timedelta(minutes=rng.uniform(5, 100))
    steps: list = [(confirm, "confirm"), (arrive, "arrive"),
                   (arrive + timedelta(hours=1), lambda when: _change(ctx, record, when, work_done="Repaired 已维修"))]
    if ctx.refused_left and rng.random() < 0.1:
        ctx.refused_left -= 1

        def refused(when):
            try:
                transition(ctx.session, ctx.kinds, record, "complete", at=when, now=when)
            except TransitionBlocked:
                pass   # no signature: the guard refuses; signed and completed the next day

        steps.append((arrive + timedelta(hours=1, minutes=1), refused))
        arrive += timedelta(days=1)
    steps.append((arrive + timedelta(hours=1, minutes=2), lambda when: _change(
        ctx, record, when, service_sheet={"signed": True, "signed_by": "Customer 客户"})))
    steps.append((arrive + timedelta(hours=1, minutes=3), "complete"))
    _run(ctx, record, steps)


def _installation(ctx: Context, site: Site, day: date) -> None:
    rng = ctx.rng
    contracted = ctx.local(day, time(10))
    if contracted >= ctx.now:
        return
    engineers = ctx.people(site, "engineer")
    arrived = contracted + timedelta(days=7)
    record = _create(ctx, "aftersales.installation", site, engineers[0] if engineers else None, contracted, {
        "contract_ref": f"HX-{day:%Y%m%d}-{site.code}", "customer": {"name": "江西某水厂", "phone": "0791-86543210"},
        "contract_due_at": _iso(contracted + timedelta(days=30)),
        "plans": {"schedule": True, "materials_list": True, "cost_sheet": rng.random() < 0.9},
        "training": {"requested": True, "topics": ["usage", "software"]}})
    commissioned = contracted + timedelta(days=rng.uniform(14, 20))
    late = not ctx.late_installation_done
    ctx.late_installation_done = True
    accepted = commissioned + (timedelta(days=6, hours=1) if late else timedelta(days=rng.uniform(1, 4)))
    _run(ctx, record, [
        (arrived, lambda when: _change(ctx, record, when, delivery={
            "arrived_city_at": _iso(when), "customer_called_at": _iso(when + timedelta(hours=1)),
            "address_confirmed": True, "quantity_confirmed": True, "signed": True})),
        (arrived + timedelta(hours=2), "deliver"), (arrived + timedelta(days=1), "start"),
        (commissioned, "commission"),
        (commissioned + timedelta(hours=3), lambda when: _change(
            ctx, record, when, training={"requested": True, "topics": ["usage", "software"],
                                         "delivered_at": _iso(when)})),
        (accepted, "accept"), (accepted + timedelta(hours=1), "hand_over")])


def _daily_review(ctx: Context, site: Site, day: date, omit: int) -> None:
    at = ctx.local(day, time(18, 15))
    if at >= ctx.now:
        return
    open_ids = [str(i) for i in ctx.session.scalars(
        select(Record.id).where(Record.kind == "aftersales.ticket", Record.site_id == site.id,
                                Record.status.not_in(("resolved", "closed")), Record.occurred_at < at)
        .order_by(Record.occurred_at))]
    _create(ctx, "aftersales.daily_review", site, None, at, {
        "date": day.isoformat(), "open_ticket_ids": open_ids[omit:], "next_day_plan": "Visits and call-backs 明日上门及回访",
        "attendees": [s.name for s in ctx.people(site, "engineer")]})


def _call(ctx: Context, site: Site, day: date) -> None:
    rng = ctx.rng
    started = ctx.local(day, time(8, 30)) + timedelta(minutes=rng.uniform(0, 540))
    if started >= ctx.now:
        return
    agents = ctx.people(site, "agent")
    agent = rng.choice(agents) if agents else None
    data: dict[str, Any] = {"call_id": f"{site.code}-{started:%Y%m%d%H%M%S}-{rng.randint(0, 999):03d}",
                            "direction": "in", "purpose": rng.choice(("service", "service", "callback")),
                            "started_at": _iso(started), "duration_s": int(rng.uniform(60, 420)),
                            "customer": {"phone": f"138{rng.randint(10_000_000, 99_999_999)}"}}
    if rng.random() < TRANSCRIPT_SHARE:
        closing = rng.choice(CHANGED_CLOSINGS) if rng.random() < 0.08 else CLOSING
        middle = "好的，我帮您登记，工程师明天下午两点上门。"
        if not ctx.red_line_done and day.day >= 10:
            ctx.red_line_done, middle = True, "你爱投诉就投诉，我就这态度。"
        turns = [("agent", OPENING), ("customer", f"我的控制器坏了，我电话{data['customer']['phone']}"),
                 ("agent", middle), ("customer", "好的"), ("agent", closing)]
        transcript, t = [], 0.0
        for speaker, text in turns:
            length = len(text) * 60 / rng.uniform(170, 250)
            transcript.append({"speaker": speaker, "text": text, "start_s": round(t, 1), "end_s": round(t + length, 1)})
            t += length + 1
        data.update(transcript=transcript, colloquialisms=rng.choices((0, 1, 2), (7, 2, 1))[0])
    record = _create(ctx, "aftersales.call", site, agent, started, data)
    if agent is not None and rng.random() < REVIEWS_PER_AGENT_MONTH / (CALLS_PER_DAY / max(1, len(agents)) * 21):
        reviewed = started + timedelta(hours=rng.uniform(2, 20))
        if reviewed >= ctx.now:
            return
        _create(ctx, "inspection", site, agent, reviewed, {
            "standard": "aftersales.call_qa", "subject_record_id": str(record.id), "mode": "routine",
            "inspector_id": None,
            "answers": {"opening_phrase": {"text": OPENING},
                        "closing_phrase": {"text": CLOSING if rng.random() > 0.08 else "谢谢，拜拜"},
                        "standard_wording": {"count": rng.choices((0, 1, 2), (6, 3, 1))[0]},
                        "speech_rate_tone": {"value": rng.choice((180, 200, 230, 270))},
                        "attentive_patient": {"text": "好的，您别着急"},
                        "answer_accurate": {"outcome": "pass" if rng.random() > 0.1 else "fail"},
                        "no_taboo_language": {"text": "好的"}}})
