"""KPIs of failed items and deadlines: what fails most, how often deadlines are met, and
how long responses and resolutions take.

* ``failed_items`` counts the item outcomes ``fail`` and ``breached`` stored in the
  evaluations (``evaluations.items``, a JSON array), expanded in SQL with
  ``jsonb_array_elements`` on PostgreSQL and ``json_each`` on SQLite: one query whatever
  the number of items. Grouped by ``item`` it is the Pareto of failures.
* ``deadline_attainment`` and ``breaches`` read the deadline clocks (one per record and
  deadline item): a clock is *decided* once it is met, breached, or still running past its
  due time (the breach watch may not have marked it yet); attainment is the share of
  decided clocks that were met.
* ``response_time`` / ``resolution_time`` (wall seconds) and their ``_working`` twins
  (working seconds of the tenant's business calendar) aggregate the stopped clocks'
  ``elapsed_seconds`` / ``working_seconds`` (set by :func:`core.deadlines.clocks.measure`) over the
  deadline items tagged ``kpi = "response"`` / ``"resolution"`` in the tenant's standards
  in force: ``{mean, median, p90, n}``.

Every metric places a row in its period by the record's ``occurred_at`` and filters on
the record's site, staff and kind (clocks and evaluations join their record on
``(tenant_id, record_id)``).
"""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import and_, case, column, false, func, literal_column, or_, select, true
from sqlalchemy.sql import ColumnElement

from servq.core.db import JSONType, utcnow
from servq.core.kpis import GROUPINGS, KpiQuery, Metric
from servq.core.models import Clock, Evaluation, Record

#: The item outcomes ``failed_items`` counts.
FAILED = ("fail", "breached")
#: Every grouping (clock and evaluation metrics can do them all).
ALL = frozenset(GROUPINGS)
#: The parameter that limits ``failed_items`` and ``breaches`` to one standard.
STANDARD_PARAM = {"standard": "Only the items of this standard (its code)."}
SLASH = literal_column("'/'")


def _t(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


def _joined_record(model) -> ColumnElement:
    return and_(Record.tenant_id == model.tenant_id, Record.id == model.record_id)


def _keys(q: KpiQuery, standard: ColumnElement, item: ColumnElement) -> list[ColumnElement]:
    return q.keys(time=Record.occurred_at, site=Record.site_id, staff=Record.staff_id,
                  kind=Record.kind, standard=standard, item=item)


def _only_standard(q: KpiQuery, code_column) -> list[ColumnElement]:
    code = q.params.get("standard")
    return [code_column == code] if code else []


# -- failed items ------------------------------------------------------------------------


def item_elements(q: KpiQuery):
    """The evaluation's items as rows (``value``: one item's JSON), for the dialect."""
    name = "jsonb_array_elements" if q.dialect == "postgresql" else "json_each"
    return getattr(func, name)(Evaluation.items).table_valued(
        column("value", JSONType), name="item")


def failed_item_counts(q: KpiQuery) -> dict[tuple, int]:
    """``{key: count}`` of failed or breached item outcomes of the period's evaluations."""
    element = item_elements(q)
    outcome = element.c.value["outcome"].as_string()
    code = element.c.value["code"].as_string()
    keys = _keys(q, Evaluation.standard_code, Evaluation.standard_code.concat(SLASH).concat(code))
    stmt = (select(*keys, func.count().label("n"))
            .select_from(Evaluation)
            .join(Record, _joined_record(Evaluation))
            .join(element, true())
            .where(outcome.in_(FAILED), q.in_period(Record.occurred_at), *q.record_filters(),
                   *_only_standard(q, Evaluation.standard_code))
            .group_by(*keys))
    return {key: row.n for key, row in q.grouped(stmt).items()}


def failed_items(q: KpiQuery) -> dict[tuple, Any]:
    counts = failed_item_counts(q)
    if not q.group_by:
        return {(): counts.get((), 0)}
    return counts


# -- deadline clocks ---------------------------------------------------------------------


def _clock_keys(q: KpiQuery) -> list[ColumnElement]:
    return _keys(q, Clock.standard_code, Clock.standard_code.concat(SLASH).concat(Clock.item_code))


def _clocks(q: KpiQuery, keys: list[ColumnElement], *columns: ColumnElement):
    return (select(*keys, *columns)
            .select_from(Clock)
            .join(Record, _joined_record(Clock))
            .where(q.in_period(Record.occurred_at), *q.record_filters())
            .group_by(*keys))


def _breached(now) -> ColumnElement:
    """A clock that missed its deadline: marked breached, or running past its due time."""
    return or_(Clock.state == "breached", and_(Clock.state == "running", Clock.due_at <= now))


def deadline_attainment(q: KpiQuery) -> dict[tuple, Any]:
    now = q.now or utcnow()
    keys = _clock_keys(q)
    met = func.sum(case((Clock.state == "met", 1), else_=0)).label("met")
    stmt = _clocks(q, keys, met, func.count().label("n")).where(
        or_(Clock.state == "met", _breached(now)))
    out = {key: (100.0 * row.met / row.n if row.n else None) for key, row in q.grouped(stmt).items()}
    if not q.group_by:
        out.setdefault((), None)
    return out


def breaches(q: KpiQuery) -> dict[tuple, Any]:
    now = q.now or utcnow()
    keys = _clock_keys(q)
    stmt = _clocks(q, keys, func.count().label("n")).where(
        _breached(now), *_only_standard(q, Clock.standard_code))
    out = {key: row.n for key, row in q.grouped(stmt).items()}
    if not q.group_by:
        out.setdefault((), 0)
    return out


# -- response and resolution times -------------------------------------------------------


def tagged_items(session, tag: str) -> dict[str, tuple[str, ...]]:
    """``{standard code: (item code, ...)}`` of the deadline items tagged ``kpi = tag`` in
    the tenant's standards in force that it sees (its own, core's, enabled plugins').

    Read from the process cache of standards (no query when it is warm)."""
    from servq.core.standards.store import standard_in_force, tenant_state

    out: dict[str, tuple[str, ...]] = {}
    for code in sorted(tenant_state(session).in_force):
        found = standard_in_force(session, code)
        if found is None:
            continue
        items = tuple(item.code for item in found[1].standard.items
                      if getattr(item, "kpi", None) == tag and item.rule.type == "deadline")
        if items:
            out[code] = items
    return out


def _tagged(pairs: dict[str, Iterable[str]]) -> ColumnElement:
    if not pairs:
        return false()
    return or_(*(and_(Clock.standard_code == code, Clock.item_code.in_(sorted(items)))
                 for code, items in sorted(pairs.items())))


def duration_stats(q: KpiQuery, tag: str, seconds) -> dict[tuple, Any]:
    """``{key: {mean, median, p90, n}}`` of ``seconds`` (a clock column) over the stopped
    clocks of the items tagged ``tag``."""
    keys = _clock_keys(q)
    stmt = _clocks(q, keys, func.avg(seconds).label("mean"),
                   q.percentile(seconds, 0.5).label("median"),
                   q.percentile(seconds, 0.9).label("p90"),
                   func.count(seconds).label("n")).where(
        Clock.stop_at.is_not(None), seconds.is_not(None), _tagged(tagged_items(q.session, tag)))
    out = {key: _stats(row) for key, row in q.grouped(stmt).items()}
    if not q.group_by:
        out.setdefault((), _stats(None))
    return out


def _stats(row) -> dict[str, Any]:
    if row is None or not row.n:
        return {"mean": None, "median": None, "p90": None, "n": 0}
    return {"mean": float(row.mean), "median": float(row.median), "p90": float(row.p90),
            "n": int(row.n)}


def _times(tag: str, working: bool):
    def compute(q: KpiQuery) -> dict[tuple, Any]:
        return duration_stats(q, tag, Clock.working_seconds if working else Clock.elapsed_seconds)

    compute.__name__ = f"{tag}_time{'_working' if working else ''}"
    return compute


_TIMES = "{mean, median, p90, n}"

METRICS: list[Metric] = [
    Metric("failed_items", _t("Failed items", "不合格项"), "count", ALL, failed_items,
           description="Item outcomes 'fail' and 'breached' in the latest evaluations of the "
                       "period's records; grouped by item it is the Pareto of failures.",
           params=STANDARD_PARAM, better="lower"),
    Metric("deadline_attainment", _t("Deadline attainment", "时限达成率"), "percent", ALL,
           deadline_attainment,
           description="Percent of the decided deadline clocks (met, breached, or running past "
                       "due) that were met, for the period's records."),
    Metric("breaches", _t("Deadline breaches", "超时次数"), "count", ALL, breaches,
           description="Deadline clocks breached (marked, or still running past their due "
                       "time), for the period's records.",
           params=STANDARD_PARAM, better="lower"),
    Metric("response_time", _t("Response time", "响应时间"), "seconds", ALL,
           _times("response", False),
           description=f"Wall-clock seconds from start to stop, pauses excluded, of the stopped "
                       f"clocks of items tagged kpi = \"response\": {_TIMES}.", better="lower"),
    Metric("resolution_time", _t("Resolution time", "解决时间"), "seconds", ALL,
           _times("resolution", False),
           description=f"Wall-clock seconds from start to stop, pauses excluded, of the stopped "
                       f"clocks of items tagged kpi = \"resolution\": {_TIMES}.", better="lower"),
    Metric("response_time_working", _t("Response time (working)", "响应时间（工作时间）"),
           "seconds", ALL, _times("response", True),
           description=f"Working seconds on the tenant's business calendar from start to stop, "
                       f"pauses excluded, of items tagged kpi = \"response\": {_TIMES}.",
           better="lower"),
    Metric("resolution_time_working", _t("Resolution time (working)", "解决时间（工作时间）"),
           "seconds", ALL, _times("resolution", True),
           description=f"Working seconds on the tenant's business calendar from start to stop, "
                       f"pauses excluded, of items tagged kpi = \"resolution\": {_TIMES}.",
           better="lower"),
]
JOBS: list = []
