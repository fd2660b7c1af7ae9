"""The after-sales plugin's KPIs (``register_kpis``), each one SQL query over the period.

Shares of tickets received in the period (placed by ``occurred_at``), in percent:

* ``aftersales.resolution_rate`` resolved (or closed) ÷ received (S 问题解决率);
* ``aftersales.closure_rate`` closed ÷ received (S 问题关闭率);
* ``aftersales.rediagnosis_rate`` re-diagnosed at least once ÷ received;
* ``aftersales.escalation_rate`` escalated ÷ received;
* ``aftersales.repeat_contact_rate`` marked ``repeat_contact`` ÷ received; ``by=product``
  keys it by the product's item code (repeat faults by product);
* ``aftersales.satisfaction`` mean confirmation rating (1-5) of the tickets rated.

Visits: ``aftersales.visit_confirmed_rate`` (confirmed before arriving ÷ visits that
arrived), ``aftersales.sheet_signed_rate`` (signed ÷ completed). Installations:
``aftersales.acceptance_in_5_days`` (clocks of ``accepted_within_5_days`` met ÷ decided).
``aftersales.backlog_age``: the tickets open at the end of the period, by age band
(``0-1d``, ``1-3d``, ``3-7d``, ``7d+``). ``aftersales.pain_index`` (INDUSTRIES.md §6,
[P]): 100 × Σ weights ÷ tickets received, weights re-diagnosis 2, repeat contact 1,
complaint 3, breached clock 1. ``aftersales.call_deductions``: the points call QA took off
per item, largest first (``source=manual`` reviews, default, or ``auto``); group by staff
for the Pareto per agent.

Core's metrics give the rest: ``deadline_attainment`` (SLA by priority: group by item),
``response_time``/``resolution_time``, ``first_time_fix``, ``score`` (call QA mean:
``kind=aftersales.call`` automatic, ``kind=inspection`` manual) and ``failed_items``
(``standard=aftersales.call_qa`` grouped by item: the deduction Pareto and the red-line
incidents, item ``no_taboo_language``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, or_, select, true

from servq import (
    Clock,
    Evaluation,
    KpiError,
    KpiQuery,
    Metric,
    Record,
    evaluation_items,
    utcnow,
)

TICKET = "aftersales.ticket"
VISIT = "aftersales.visit"
INSTALLATION = "aftersales.installation"
GROUPINGS = frozenset({"day", "week", "month", "site", "staff"})
OPEN = ("received", "acknowledged", "diagnosed", "planned", "in_progress", "waiting_for_customer",
        "waiting_for_parts")


def _t(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


def _stamped(name: str):
    return Record.timestamps[name].as_string().is_not(None)


def _keys(q: KpiQuery) -> list:
    return q.keys(time=Record.occurred_at, site=Record.site_id, staff=Record.staff_id)


def _share(kind: str, part, whole=None):
    """A metric: percent of records of ``kind`` in the period meeting ``part`` among those
    meeting ``whole`` (all by default)."""

    def compute(q: KpiQuery) -> dict[tuple, Any]:
        keys = _keys(q)
        base = [Record.kind == kind, q.in_period(Record.occurred_at), *q.record_filters()]
        if whole is not None:
            base.append(whole())
        stmt = (select(*keys, func.count().label("n"),
                       func.sum(case((part(), 1), else_=0)).label("hit"))
                .where(*base).group_by(*keys))
        out = {key: round(100.0 * row.hit / row.n, 2) if row.n else None
               for key, row in q.grouped(stmt).items()}
        return out if q.group_by else {(): out.get(())}

    return compute


def repeat_rate(q: KpiQuery) -> dict[tuple, Any]:
    by = q.params.get("by") or "none"
    if by not in ("none", "product"):
        raise KpiError("The KPI request names something that does not exist.",
                       {"by": ["Use product or none."]})
    if by == "none":
        return _share(TICKET, lambda: Record.data["repeat_contact"].as_boolean().is_(True))(q)
    keys = _keys(q)
    product = Record.data["product"]["item_code"].as_string()
    stmt = (select(*keys, product.label("product"), func.count().label("n"),
                   func.sum(case((Record.data["repeat_contact"].as_boolean().is_(True), 1), else_=0)).label("hit"))
            .where(Record.kind == TICKET, q.in_period(Record.occurred_at), *q.record_filters())
            .group_by(*keys, product))
    out: dict[tuple, dict] = {}
    width = len(q.group_by)
    for row in q.session.execute(stmt):
        key = tuple(None if v is None else str(v) for v in row[:width])
        out.setdefault(key, {})[row.product or "unknown"] = round(100.0 * row.hit / row.n, 2)
    return out if q.group_by else {(): out.get((), {})}


def satisfaction(q: KpiQuery) -> dict[tuple, Any]:
    keys = _keys(q)
    rating = Record.data["confirmation"]["rating"].as_float()
    stmt = (select(*keys, func.avg(rating).label("mean"))
            .where(Record.kind == TICKET, rating.is_not(None), q.in_period(Record.occurred_at),
                   *q.record_filters()).group_by(*keys))
    out = {key: None if row.mean is None else round(float(row.mean), 2) for key, row in q.grouped(stmt).items()}
    return out if q.group_by else {(): out.get(())}


def acceptance(q: KpiQuery) -> dict[tuple, Any]:
    keys = _keys(q)
    decided = Clock.state.in_(("met", "breached"))
    stmt = (select(*keys, func.count().label("n"),
                   func.sum(case((Clock.state == "met", 1), else_=0)).label("hit"))
            .select_from(Clock).join(Record, and_(Record.tenant_id == Clock.tenant_id, Record.id == Clock.record_id))
            .where(Clock.item_code == "accepted_within_5_days", Record.kind == INSTALLATION, decided,
                   q.in_period(Record.occurred_at), *q.record_filters()).group_by(*keys))
    out = {key: round(100.0 * row.hit / row.n, 2) if row.n else None for key, row in q.grouped(stmt).items()}
    return out if q.group_by else {(): out.get(())}


BANDS = (("0-1d", 0, 1), ("1-3d", 1, 3), ("3-7d", 3, 7), ("7d+", 7, None))


def backlog_age(q: KpiQuery) -> dict[tuple, Any]:
    """Tickets open now and received before the end of the period, by age at that end."""
    end = min(q.until, q.now or utcnow())
    keys = q.keys(site=Record.site_id, staff=Record.staff_id)
    band = case(*((and_(Record.occurred_at <= end - timedelta(days=lo),
                        *(() if hi is None else (Record.occurred_at > end - timedelta(days=hi),))), name)
                  for name, lo, hi in BANDS), else_="0-1d")
    stmt = (select(*keys, band.label("band"), func.count().label("n"))
            .where(Record.kind == TICKET, Record.status.in_(OPEN), Record.occurred_at < end,
                   *q.record_filters()).group_by(*keys, band))
    out: dict[tuple, dict] = {}
    width = len(q.group_by)
    for row in q.session.execute(stmt):
        key = tuple(None if v is None else str(v) for v in row[:width])
        out.setdefault(key, {name: 0 for name, _, _ in BANDS})[row.band] = row.n
    return out if q.group_by else {(): out.get((), {name: 0 for name, _, _ in BANDS})}


def pain_index(q: KpiQuery) -> dict[tuple, Any]:
    keys = _keys(q)
    breached = (select(func.count()).select_from(Clock)
                .where(Clock.tenant_id == Record.tenant_id, Clock.record_id == Record.id,
                       Clock.state == "breached").correlate(Record).scalar_subquery())
    weight = (case((_stamped("rediagnosed_at"), 2), else_=0)
              + case((Record.data["repeat_contact"].as_boolean().is_(True), 1), else_=0)
              + case((Record.data["request_type"].as_string() == "complaint", 3), else_=0)
              + case((breached > 0, 1), else_=0))
    stmt = (select(*keys, func.count().label("n"), func.sum(cast(weight, Float)).label("w"))
            .where(Record.kind == TICKET, q.in_period(Record.occurred_at), *q.record_filters())
            .group_by(*keys))
    out = {key: round(100.0 * row.w / row.n, 2) if row.n else None for key, row in q.grouped(stmt).items()}
    return out if q.group_by else {(): out.get(())}


CALL_QA = "aftersales.call_qa"


def call_deductions(q: KpiQuery) -> dict[tuple, Any]:
    """Points call QA took off, per item (a Pareto: largest first), of the automatic scores
    (``source=auto``: the calls' own evaluations) or the manual reviews (``source=manual``,
    default: inspections against ``aftersales.call_qa``)."""
    source = q.params.get("source") or "manual"
    if source not in ("auto", "manual"):
        raise KpiError("The KPI request names something that does not exist.",
                       {"source": ["Use auto or manual."]})
    element = evaluation_items(q)
    code = element.c.value["code"].as_string()
    lost = element.c.value["max_points"].as_float() - element.c.value["points"].as_float()
    keys = _keys(q)
    stmt = (select(*keys, code.label("item"), func.sum(lost).label("lost"))
            .select_from(Evaluation)
            .join(Record, and_(Record.tenant_id == Evaluation.tenant_id, Record.id == Evaluation.record_id))
            .join(element, true())
            .where(Evaluation.standard_code == CALL_QA,
                   Record.kind == ("aftersales.call" if source == "auto" else "inspection"),
                   element.c.value["outcome"].as_string().in_(("fail", "pass")),
                   q.in_period(Record.occurred_at), *q.record_filters())
            .group_by(*keys, code))
    width = len(q.group_by)
    raw: dict[tuple, dict[str, float]] = {}
    for row in q.session.execute(stmt):
        key = tuple(None if v is None else str(v) for v in row[:width])
        if row.lost:
            raw.setdefault(key, {})[row.item] = round(float(row.lost), 2)
    out = {key: dict(sorted(items.items(), key=lambda kv: (-kv[1], kv[0]))) for key, items in raw.items()}
    return out if q.group_by else {(): out.get((), {})}


def _m(name, en, zh, compute, unit="percent", better="higher", description="", params=None, groupings=GROUPINGS):
    return Metric(f"aftersales.{name}", _t(en, zh), unit, groupings, compute, description,
                  params or {}, better)


METRICS = [
    _m("resolution_rate", "Resolution rate", "问题解决率",
       _share(TICKET, lambda: or_(_stamped("resolved_at"), Record.status == "closed"))),
    _m("closure_rate", "Closure rate", "问题关闭率", _share(TICKET, lambda: Record.status == "closed")),
    _m("rediagnosis_rate", "Re-diagnosis rate", "重新诊断率", _share(TICKET, lambda: _stamped("rediagnosed_at")),
       better="lower"),
    _m("escalation_rate", "Escalation rate", "上报率", _share(TICKET, lambda: _stamped("escalated_at")),
       better="lower"),
    _m("repeat_contact_rate", "Repeat contacts", "重复报修率", repeat_rate, better="lower",
       params={"by": "none (default) or product: keyed by the product's item code"}),
    _m("satisfaction", "Customer rating (1-5)", "客户评分", satisfaction, unit="score"),
    _m("visit_confirmed_rate", "Visits confirmed before arriving", "上门前电话确认率",
       _share(VISIT, lambda: _stamped("confirmed_at"), lambda: _stamped("arrived_at"))),
    _m("sheet_signed_rate", "Service sheets signed", "维修单签字率",
       _share(VISIT, lambda: Record.data["service_sheet"]["signed"].as_boolean().is_(True),
              lambda: Record.status == "completed")),
    _m("acceptance_in_5_days", "Accepted within 5 days of commissioning", "五天内验收移交率", acceptance),
    _m("backlog_age", "Open tickets by age", "未结问题账龄", backlog_age, unit="count", better="lower",
       groupings=frozenset({"site", "staff"})),
    _m("call_deductions", "Call QA points lost per item (Pareto)", "电话质检扣分分布", call_deductions,
       unit="points", better="lower",
       params={"source": "manual (default: reviews) or auto (scores of the transcripts)"}),
    _m("pain_index", "Customer pain index", "客户痛点指数", pain_index, unit="points", better="lower"),
]
