"""The courier plugin's KPIs (``register_kpis``): each a constant number of SQL queries
over the period, grouped by core's groupings (day, week, month, site = station, staff =
courier). Records are placed in periods by ``occurred_at``.

* ``courier.first_attempt_success``: percent of decided deliveries
  (``delivered_first_attempt`` true or false) delivered at the first attempt.
* ``courier.failure_reasons``: failed attempts by ``failure_reason`` (a Pareto: ``{reason:
  count}``), by station or courier with the grouping.
* ``courier.prohibited_conduct``: prohibited acts per 10,000 deliveries, by act
  (``{item: rate}``): the corrective actions the critical items opened (one per delivery
  and act) over the deliveries of the group.
* ``courier.appointment_attainment``: percent of the settled deliveries with an
  appointment (the attempt over: not ``received``/``out_for_delivery``) that kept it or
  told the customer in time, i.e. opened no ``appointment_kept_or_notified`` action.
* ``courier.time_limit_attainment``: percent of deliveries whose service time-limit clock
  was met among those decided (met, breached, or running past due), by ``service``.
* ``courier.complaints_per_10k``: ``complaint`` records linked to a delivery
  (``data.record_id``) per 10,000 deliveries of the group (the complaint's own period).

Script compliance by phrase is core's ``failed_items`` (``standard=courier.delivery``):
each line of the script is its own item, so the Pareto names the skipped line.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, or_, select

from servq import Action, Clock, KpiQuery, Metric, Record, key_text, utcnow

DELIVERY = "courier.delivery"
STANDARDS = ("courier.delivery", "courier.pickup")
PROHIBITED = ("appointment_kept_or_notified", "no_private_rush_fee", "no_gift_withheld", "waited_for_check")
TIME_ITEMS = ("time_limit_same_city", "time_limit_intra_province", "time_limit_domestic",
              "time_limit_international")
GROUPINGS = frozenset({"day", "week", "month", "site", "staff"})
OPEN = ("received", "out_for_delivery")


def _t(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


def _keys(q: KpiQuery, table=Record):
    return q.keys(time=table.occurred_at, site=table.site_id, staff=table.staff_id)


def _key(q: KpiQuery, row) -> tuple:
    return tuple(key_text(value) for value in row[:len(q.group_by)])


def _percent(part, whole) -> float | None:
    return 100.0 * int(part or 0) / int(whole) if whole else None


def _finish(q: KpiQuery, out: dict, empty: Any) -> dict:
    if not q.group_by:
        out.setdefault((), empty)
    return out


def _deliveries(q: KpiQuery, *where):
    return (Record.kind == DELIVERY, Record.deleted_at.is_(None), q.in_period(Record.occurred_at),
            *q.record_filters(), *where)


def first_attempt_success(q: KpiQuery) -> dict[tuple, Any]:
    first = Record.data["delivered_first_attempt"].as_boolean()
    keys = _keys(q)
    stmt = (select(*keys, func.sum(case((first.is_(True), 1), else_=0)).label("yes"),
                   func.count().label("n"))
            .where(*_deliveries(q, first.is_not(None))).group_by(*keys))
    return _finish(q, {_key(q, row): _percent(row.yes, row.n) for row in q.session.execute(stmt)}, None)


def failure_reasons(q: KpiQuery) -> dict[tuple, Any]:
    reason = Record.data["failure_reason"].as_string()
    keys = _keys(q)
    stmt = (select(*keys, reason.label("reason"), func.count().label("n"))
            .where(*_deliveries(q, reason.is_not(None))).group_by(*keys, reason))
    out: dict[tuple, dict] = {}
    for row in q.session.execute(stmt):
        out.setdefault(_key(q, row), {})[row.reason] = int(row.n)
    for key, counts in out.items():
        out[key] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return _finish(q, out, {})


def _counts(q: KpiQuery, *where) -> dict[tuple, int]:
    keys = _keys(q)
    stmt = select(*keys, func.count().label("n")).where(*_deliveries(q, *where)).group_by(*keys)
    return {_key(q, row): int(row.n) for row in q.session.execute(stmt)}


def prohibited_conduct(q: KpiQuery) -> dict[tuple, Any]:
    totals = _counts(q)
    keys = _keys(q)
    stmt = (select(*keys, Action.item_code.label("act"), func.count(func.distinct(Record.id)).label("n"))
            .select_from(Action)
            .join(Record, and_(Record.tenant_id == Action.tenant_id, Record.id == Action.record_id))
            .where(*_deliveries(q), Action.standard_code.in_(STANDARDS), Action.source == "critical",
                   Action.item_code.in_(PROHIBITED))
            .group_by(*keys, Action.item_code))
    out: dict[tuple, dict] = {key: dict.fromkeys(PROHIBITED, 0.0) for key in totals}
    for row in q.session.execute(stmt):
        key = _key(q, row)
        if totals.get(key):
            out.setdefault(key, dict.fromkeys(PROHIBITED, 0.0))[row.act] = 10_000.0 * int(row.n) / totals[key]
    return _finish(q, out, {})


def appointment_attainment(q: KpiQuery) -> dict[tuple, Any]:
    missed = (select(Action.record_id).where(Action.standard_code == "courier.delivery",
                                             Action.item_code == "appointment_kept_or_notified",
                                             Action.source == "critical").scalar_subquery())
    keys = _keys(q)
    stmt = (select(*keys, func.sum(case((Record.id.in_(missed), 0), else_=1)).label("kept"),
                   func.count().label("n"))
            .where(*_deliveries(q, Record.data["appointment"]["from"].as_string().is_not(None),
                                Record.status.not_in(OPEN)))
            .group_by(*keys))
    return _finish(q, {_key(q, row): _percent(row.kept, row.n) for row in q.session.execute(stmt)}, None)


def time_limit_attainment(q: KpiQuery) -> dict[tuple, Any]:
    now = q.now or utcnow()
    service = Record.data["service"].as_string()
    late = or_(Clock.state == "breached", and_(Clock.state == "running", Clock.due_at <= now))
    keys = _keys(q)
    stmt = (select(*keys, service.label("service"),
                   func.sum(case((Clock.state == "met", 1), else_=0)).label("met"),
                   func.sum(case((late, 1), else_=0)).label("late"))
            .select_from(Clock)
            .join(Record, and_(Record.tenant_id == Clock.tenant_id, Record.id == Clock.record_id))
            .where(*_deliveries(q), Clock.standard_code == "courier.delivery", Clock.item_code.in_(TIME_ITEMS))
            .group_by(*keys, service))
    out: dict[tuple, dict] = {}
    for row in q.session.execute(stmt):
        value = _percent(row.met, int(row.met or 0) + int(row.late or 0))
        if value is not None:
            out.setdefault(_key(q, row), {})[row.service] = value
    return _finish(q, out, {})


def complaints_per_10k(q: KpiQuery) -> dict[tuple, Any]:
    totals = _counts(q)
    keys = _keys(q)
    linked = Record.data["record_id"].as_string()
    stmt = (select(*keys, func.count().label("n"))
            .where(Record.kind == "complaint", Record.deleted_at.is_(None), q.in_period(Record.occurred_at),
                   *q.record_filters(), linked.is_not(None))
            .group_by(*keys))
    complaints = {_key(q, row): int(row.n) for row in q.session.execute(stmt)}
    out = {key: (10_000.0 * complaints.get(key, 0) / n) for key, n in totals.items() if n}
    return _finish(q, out, None)


METRICS = [
    Metric("courier.first_attempt_success", _t("First-attempt delivery success", "首次投递成功率"), "percent",
           GROUPINGS, first_attempt_success, "Percent of decided deliveries delivered at the first attempt.",
           better="higher"),
    Metric("courier.failure_reasons", _t("Failed attempts by reason", "未妥投原因"), "count", GROUPINGS,
           failure_reasons, "Failed attempts by failure_reason, most frequent first (a Pareto).",
           better="lower"),
    Metric("courier.prohibited_conduct", _t("Prohibited acts per 10,000 deliveries", "违规行为(每万件)"),
           "per_10000", GROUPINGS, prohibited_conduct,
           "The four prohibited acts per 10,000 deliveries, by act.", better="lower"),
    Metric("courier.appointment_attainment", _t("Appointments kept or notified", "按约送达或及时告知率"),
           "percent", GROUPINGS, appointment_attainment,
           "Percent of settled deliveries with an appointment that kept it or told the customer in time.",
           better="higher"),
    Metric("courier.time_limit_attainment", _t("Delivered within the time limit", "时限达成率"), "percent",
           GROUPINGS, time_limit_attainment, "Percent of decided time-limit clocks met, by service.",
           better="higher"),
    Metric("courier.complaints_per_10k", _t("Complaints per 10,000 deliveries", "每万件投诉数"), "per_10000",
           GROUPINGS, complaints_per_10k, "Complaints linked to a delivery per 10,000 deliveries.",
           better="lower"),
]
