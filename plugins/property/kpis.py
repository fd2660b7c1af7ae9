"""The property plugin's KPIs (``register_kpis``), each one SQL query over the period.

* ``property.response_attainment``: percent of work orders answered within their
  response target (item ``responded_in_time`` of ``property.work_order``: 4 hours);
* ``property.on_site_attainment``: percent of the work orders with an on-site target
  (urgent repairs and facility faults: 30 minutes) where someone was on site in time;
* ``property.complaint_resolution``: percent of complaints resolved within their target
  (``property.complaint``: general 8 hours, serious 5 working days);
* ``property.schedule_compliance``: percent of the recurring obligations' periods that
  were met (core's schedules, e.g. the monthly fire equipment patrol);
* ``property.lighting_availability``: percent of lights working, from the latest
  lighting check of each site in the period.

KPI groupings are core's (period, site, staff, …); the property's own dimensions are a
metric parameter, ``by``: the value is then a dict keyed by the work order's
``priority`` or ``category``, the complaint's ``severity`` or the obligation
(``fire_equipment/patrol``), e.g. ``{"urgent": 92.5, "normal": 97.0}``; ``by=none`` gives
one number. A key missing from the dict had nothing decided in the group.

Deadline attainment counts *decided* clocks, as core's ``deadline_attainment`` does: met,
breached, or still running past their due time (the breach watch may not have marked it
yet); paused clocks and clocks still in time are left out. A work order counts once: on
site in time when each of its on-site clocks was met (an urgent elevator fault has two,
with the same target). Records are placed in periods by ``occurred_at``.

Schedule compliance: a period belongs to the KPI period (and to its day, week or month)
by its last instant (the end − 1 second: March's monthly patrol belongs to March); it
counts once it is decided, i.e. met (a matching record lies in it) or missed (it ended
more than the grace ago without one). The periods of all the tenant's active schedules
are cut in Python from their recurrence and matched in one statement (core's
:func:`core.deadlines.schedules.matches_statement`, ``UNION ALL``).

Lighting availability: Σ lights_working / Σ lights_total × 100 over the latest lighting
check (``facility = "lighting"``) of each site in each group (a window function picks
it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

from sqlalchemy import (Integer, String, Uuid, and_, case, column, func, literal_column, or_,
                        select, union_all, values)
from sqlalchemy.sql import ColumnElement

from servq import (MAX_PERIODS, Clock, KpiError, KpiQuery, Metric, Record, Recurrence, Schedule,
                          TooManyPeriods, UTCDateTime, key_text, matches_statement, schedule_zone, utcnow)

WORK_ORDER = "property.work_order"
FACILITY_CHECK = "property.facility_check"
COMPLAINT = "complaint"
WORK_ORDER_STANDARD = "property.work_order"
COMPLAINT_STANDARD = "property.complaint"
RESPONSE_ITEMS = ("responded_in_time",)
ON_SITE_ITEMS = ("urgent_on_site_in_time", "facility_fault_on_site_in_time")
RESOLUTION_ITEMS = ("general_resolved_in_time", "serious_resolved_in_time")
#: Groupings of the record-based metrics.
RECORD_GROUPINGS = frozenset({"day", "week", "month", "site", "staff"})
#: Groupings of schedule compliance and lighting availability.
SITE_GROUPINGS = frozenset({"day", "week", "month", "site"})
NONE = "none"


def _t(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


def _by(q: KpiQuery, default: str, choices: tuple[str, ...]) -> str:
    """The ``by`` parameter, checked (422 listing the choices otherwise)."""
    value = q.params.get("by") or default
    if value not in (*choices, NONE):
        raise KpiError("The KPI request names something that does not exist.", {
            "by": [f"Unknown value {value!r}; use one of: {', '.join((*choices, NONE))}."]})
    return value


def _results(q: KpiQuery, rows, compute: Callable[[Any], float | None], by: str) -> dict[tuple, Any]:
    """``{group key: value}`` from rows ``(g0…gn, by key, …)``: a number per key, or with
    ``by`` a dict ``{by key: number}``. Ungrouped, there is always a row."""
    width = len(q.group_by)
    out: dict[tuple, Any] = {}
    for row in rows:
        key = tuple(key_text(value) for value in row[:width])
        value = compute(row)
        if by == NONE:
            out[key] = value
        elif value is not None:
            out.setdefault(key, {})[key_text(row[width])] = value
    if not q.group_by:
        out.setdefault((), None if by == NONE else {})
    return out


# -- deadline attainment of work orders and complaints -----------------------------------------


def _attainment(q: KpiQuery, kind: str, standard: str, items: tuple[str, ...],
                by_column: ColumnElement | None) -> dict[tuple, Any]:
    """Percent of the period's records of ``kind`` whose clocks of ``items`` were all met,
    among those with every such clock decided or one breached (one query)."""
    now = q.now or utcnow()
    breached = or_(Clock.state == "breached", and_(Clock.state == "running", Clock.due_at <= now))
    by_values = [] if by_column is None else [by_column.label("by")]
    per_record = (
        select(Record.occurred_at, Record.site_id, Record.staff_id, *by_values,
               func.sum(case((breached, 1), else_=0)).label("late"),
               func.sum(case((Clock.state == "met", 1), else_=0)).label("met"),
               func.count().label("clocks"))
        .select_from(Clock)
        .join(Record, and_(Record.tenant_id == Clock.tenant_id, Record.id == Clock.record_id))
        .where(Record.kind == kind, Clock.standard_code == standard, Clock.item_code.in_(items),
               q.in_period(Record.occurred_at), *q.record_filters())
        .group_by(Record.id, Record.occurred_at, Record.site_id, Record.staff_id, *by_values)
        .subquery("per_record"))
    keys = q.keys(time=per_record.c.occurred_at, site=per_record.c.site_id,
                  staff=per_record.c.staff_id)
    by = [] if by_column is None else [per_record.c.by]
    decided_on_time = and_(per_record.c.late == 0, per_record.c.met == per_record.c.clocks)
    stmt = (select(*keys, *(by or [literal_column("NULL").label("by")]),
                   func.sum(case((decided_on_time, 1), else_=0)).label("on_time"),
                   func.sum(case((per_record.c.late > 0, 1), else_=0)).label("late"))
            .group_by(*keys, *by))
    rows = list(q.session.execute(stmt))
    return _results(q, rows, lambda row: _percent(int(row.on_time or 0),
                                                  int(row.on_time or 0) + int(row.late or 0)),
                    "by" if by else NONE)


def _percent(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def _data(name: str) -> ColumnElement:
    return Record.data[name].as_string()


def response_attainment(q: KpiQuery) -> dict[tuple, Any]:
    by = _by(q, "priority", ("priority", "category"))
    return _attainment(q, WORK_ORDER, WORK_ORDER_STANDARD, RESPONSE_ITEMS,
                       None if by == NONE else _data(by))


def on_site_attainment(q: KpiQuery) -> dict[tuple, Any]:
    by = _by(q, "priority", ("priority", "category"))
    return _attainment(q, WORK_ORDER, WORK_ORDER_STANDARD, ON_SITE_ITEMS,
                       None if by == NONE else _data(by))


def complaint_resolution(q: KpiQuery) -> dict[tuple, Any]:
    by = _by(q, "severity", ("severity",))
    return _attainment(q, COMPLAINT, COMPLAINT_STANDARD, RESOLUTION_ITEMS,
                       None if by == NONE else _data("severity"))


# -- schedule compliance ---------------------------------------------------------------------


def obligation_key(schedule: Schedule) -> str:
    """How ``by=obligation`` names a schedule: ``facility/check`` of its match, else its title."""
    match = schedule.match or {}
    if "facility" in match and "check" in match:
        return f"{match['facility']}/{match['check']}"
    return schedule.title


def schedule_compliance(q: KpiQuery) -> dict[tuple, Any]:
    by = _by(q, NONE, ("obligation",))
    empty = {} if q.group_by else {(): None if by == NONE else {}}
    if q.staff_id is not None:  # obligations belong to sites, not to people
        return empty
    now = q.now or utcnow()
    stmt = select(Schedule).where(Schedule.active.is_(True)).order_by(Schedule.id)
    if q.site_id is not None:
        stmt = stmt.where(Schedule.site_id == q.site_id)
    if q.kind is not None:
        stmt = stmt.where(Schedule.kind == q.kind)
    schedules = list(q.session.scalars(stmt))
    zone = schedule_zone(q.session) if schedules else None
    last = timedelta(seconds=1)
    meta, branches, total = [], [], 0
    for tag, schedule in enumerate(schedules):
        try:
            periods = Recurrence(schedule, zone).periods(q.since, q.until)
        except TooManyPeriods:
            raise KpiError("The KPI request covers too many periods.", {
                "since": [f"More than {MAX_PERIODS} periods of schedule {schedule.title!r}: "
                          "narrow the period."]}) from None
        periods = [p for p in periods if q.since <= p.end - last < q.until]
        total += len(periods)
        if total > 20 * MAX_PERIODS:
            raise KpiError("The KPI request covers too many periods.", {
                "since": ["Too many schedule periods: narrow the period."]})
        if not periods:
            continue
        branches.append(matches_statement(q.session, schedule, periods, tag))
        meta.extend((tag, p.index, p.end - last, p.deadline, schedule.site_id,
                     obligation_key(schedule)) for p in periods)
    if not branches:
        return empty
    found = union_all(*branches).subquery("found")
    info = values(column("tag", Integer), column("n", Integer), column("placed_at", UTCDateTime()),
                  column("deadline", UTCDateTime()), column("site_id", Uuid()),
                  column("obligation", String()), name="period_info").data(meta).cte("period_info")
    keys = q.keys(time=info.c.placed_at, site=info.c.site_id)
    met = found.c.record_id.is_not(None)
    decided = or_(met, info.c.deadline <= now)
    grouped_by = [info.c.obligation] if by != NONE else []
    statement = (select(*keys, (info.c.obligation if grouped_by else literal_column("NULL")).label("by"),
                        func.sum(case((met, 1), else_=0)).label("met"),
                        func.count().label("due"))
                 .select_from(info)
                 .join(found, and_(found.c.tag == info.c.tag, found.c.n == info.c.n))
                 .where(decided)
                 .group_by(*keys, *grouped_by))
    rows = list(q.session.execute(statement))
    return _results(q, rows, lambda row: _percent(int(row.met), int(row.due)), by)


# -- lighting availability --------------------------------------------------------------------


def lighting_availability(q: KpiQuery) -> dict[tuple, Any]:
    partition = [Record.site_id]
    if any(name in ("day", "week", "month") for name in q.group_by):
        partition.append(q.period(Record.occurred_at))
    latest = (
        select(Record.site_id, Record.occurred_at,
               Record.data["lights_total"].as_integer().label("total"),
               Record.data["lights_working"].as_integer().label("working"),
               func.row_number().over(partition_by=partition,
                                      order_by=(Record.occurred_at.desc(), Record.id.desc()))
               .label("rank"))
        .where(Record.kind == FACILITY_CHECK, _data("facility") == "lighting",
               q.in_period(Record.occurred_at), *q.record_filters())
        .subquery("latest"))
    keys = q.keys(time=latest.c.occurred_at, site=latest.c.site_id)
    stmt = (select(*keys, func.sum(latest.c.working).label("working"),
                   func.sum(latest.c.total).label("total"))
            .where(latest.c.rank == 1)
            .group_by(*keys))
    out = {key: _percent(int(row.working or 0), int(row.total or 0))
           for key, row in q.grouped(stmt).items()}
    if not q.group_by:
        out.setdefault((), None)
    return out


BY_WORK_ORDER = {"by": "priority (default), category or none: the dict the value is keyed by"}

METRICS: list[Metric] = [
    Metric("property.response_attainment", _t("Repairs answered in time", "报修及时响应率"),
           "percent", RECORD_GROUPINGS, response_attainment,
           description="Percent of the period's work orders answered within the response target "
                       "(responded_in_time, 4 hours), among those decided; by priority or category.",
           params=BY_WORK_ORDER),
    Metric("property.on_site_attainment", _t("On site in time", "及时到场率"),
           "percent", RECORD_GROUPINGS, on_site_attainment,
           description="Percent of the period's urgent repairs and facility faults with someone on "
                       "site within 30 minutes, among those decided; by priority or category.",
           params=BY_WORK_ORDER),
    Metric("property.complaint_resolution", _t("Complaints resolved in time", "投诉按时解决率"),
           "percent", RECORD_GROUPINGS, complaint_resolution,
           description="Percent of the period's complaints resolved within their target "
                       "(general 8 hours, serious 5 working days), among those decided; by severity.",
           params={"by": "severity (default) or none"}),
    Metric("property.schedule_compliance", _t("Recurring checks done", "定期巡检完成率"),
           "percent", SITE_GROUPINGS, schedule_compliance,
           description="Percent of the decided periods of the recurring obligations (met, or "
                       "missed once over) that were met, placed by the period's last instant.",
           params={"by": "none (default) or obligation (keyed facility/check)"}),
    Metric("property.lighting_availability", _t("Lighting availability", "照明完好率"),
           "percent", SITE_GROUPINGS, lighting_availability,
           description="Percent of lights working in the latest lighting check of each site "
                       "in the period (or in each day, week or month)."),
]
