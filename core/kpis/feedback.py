"""Core's feedback KPIs: what customers and the follow-up say about the service.

* ``first_time_fix``: the share of jobs fixed the first time, for the record kinds that
  name a boolean ``data`` field for it (:attr:`core.plugins.RecordKind.first_time_fix`);
* ``complaints`` and ``complaint_rate``: live ``complaint`` records, as a count and per
  1,000 other records (the ``per_kind`` parameter chooses which);
* ``actions_open`` and ``actions_overdue``: corrective actions opened in the period that
  are still open (``open`` or ``in_progress``; a reopened action is ``open`` again), and
  those of them past their due time;
* ``nps``, ``csat`` and ``servqual_gap``: survey answers, computed with the formulas of
  :mod:`core.surveys.results` (NPS: % of 9-10 − % of 0-6 on NPS items; CSAT: % of 4-5 on
  CSAT items; gap: the mean over respondents of their dimension score P − E, on
  two-column surveys).

Periods: records on ``occurred_at``, actions on ``created_at``, survey answers on their
response's ``submitted_at``. Actions and answers reach site, staff and kind through
their record, as the survey results do: an outer join, so without a record they are
grouped under ``None`` and a site, staff or kind filter leaves them out; a record deleted
since still places them (the action or the answer itself is not deleted).

Every metric runs at most two queries: one aggregate, and for the survey metrics one
small read of the tenant's surveys first, to learn which item or dimension of which
survey is an NPS or CSAT item or a SERVQUAL dimension (each survey keeps a JSON copy of
its instrument). Guide: ``docs/kpis-feedback.md``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.sql import ColumnElement

from servq.core.db import utcnow
from servq.core.kpis import KpiError, KpiQuery, Metric
from servq.core.models import Action, Record, Survey, SurveyAnswer, SurveyDimensionScore, SurveyResponse
from servq.core.plugins.app import enabled_plugin_ids, get_plugins
from servq.core.evaluation.actions import CLOSED, overdue_clause
from servq.core.surveys.results import stat

COMPLAINT = "complaint"
#: The SERVQUAL dimensions, by the code instruments give them (``servqual``,
#: ``servqual_1991`` and any custom instrument using the same codes).
SERVQUAL_DIMENSIONS = ("tangibles", "reliability", "responsiveness", "assurance", "empathy")
TIME = ("day", "week", "month")


def _empty(q: KpiQuery, value: Any) -> dict[tuple, Any]:
    """The answer when there is nothing to query: one ungrouped row, or no groups."""
    return {} if q.group_by else {(): value}


# -- first-time fix ------------------------------------------------------------------------


def first_time_fix_fields() -> dict[str, str]:
    """``{kind: data field}`` of the registered kinds that say whether a job was fixed
    the first time."""
    return {name: kind.first_time_fix for name, kind in sorted(get_plugins().kinds.items())
            if kind.first_time_fix}


def json_boolean(q: KpiQuery, field: str) -> ColumnElement:
    """``'true'`` or ``'false'`` when ``Record.data[field]`` is a JSON boolean; something
    else (another type's name, or NULL) otherwise. A string ``"true"`` or the number 1
    is not a boolean."""
    if q.dialect == "postgresql":
        value = Record.data[field]
        return case((func.jsonb_typeof(value) == "boolean", value.as_string()))
    return func.json_type(Record.data, f'$."{field}"')


def compute_first_time_fix(q: KpiQuery) -> dict[tuple, Any]:
    fields = first_time_fix_fields()
    if not fields:
        return _empty(q, None)
    flag = case(*((Record.kind == kind, json_boolean(q, field)) for kind, field in fields.items()))
    keys = q.keys(time=Record.occurred_at, site=Record.site_id, staff=Record.staff_id, kind=Record.kind)
    stmt = (select(*keys, func.count().label("judged"),
                   func.sum(case((flag == "true", 1), else_=0)).label("fixed"))
            .where(Record.kind.in_(list(fields)), q.in_period(Record.occurred_at),
                   flag.in_(("true", "false")), *q.record_filters())
            .group_by(*keys))
    return {key: (100.0 * int(row.fixed or 0) / row.judged if row.judged else None)
            for key, row in q.grouped(stmt).items()}


# -- complaints ----------------------------------------------------------------------------


def compute_complaints(q: KpiQuery) -> dict[tuple, Any]:
    keys = q.keys(time=Record.occurred_at, site=Record.site_id, staff=Record.staff_id, kind=Record.kind)
    stmt = (select(*keys, func.count().label("n"))
            .where(Record.kind == COMPLAINT, q.in_period(Record.occurred_at), *q.record_filters())
            .group_by(*keys))
    return {key: int(row.n) for key, row in q.grouped(stmt).items()}


def per_kinds(q: KpiQuery) -> list[str] | None:
    """The kinds complaints are counted against: the ``per_kind`` parameter (kind names,
    comma-separated), else the request's ``kind`` filter, else ``None`` (every kind but
    ``complaint``). Raises :class:`KpiError` for ``complaint`` or a kind the tenant
    cannot use."""
    given = q.params.get("per_kind")
    if given is None or not str(given).strip():
        return [q.kind] if q.kind is not None and q.kind != COMPLAINT else None
    names = list(dict.fromkeys(part.strip() for part in str(given).split(",") if part.strip()))
    known = set(get_plugins().kinds_for(enabled_plugin_ids(q.session)))
    bad = [name for name in names if name not in known or name == COMPLAINT]
    if bad:
        valid = ", ".join(sorted(known - {COMPLAINT}))
        raise KpiError("The KPI request names something that does not exist.",
                       {"per_kind": [f"Not a kind complaints can be counted against: "
                                     f"{', '.join(bad)}; valid: {valid}."]})
    return names


def compute_complaint_rate(q: KpiQuery) -> dict[tuple, Any]:
    base = per_kinds(q)
    is_complaint = Record.kind == COMPLAINT
    in_base = Record.kind.in_(base) if base else Record.kind != COMPLAINT
    keys = q.keys(time=Record.occurred_at, site=Record.site_id, staff=Record.staff_id)
    # The kind filter chose the base (per_kinds); site and staff filter both counts.
    filters = dataclasses.replace(q, kind=None).record_filters()
    stmt = (select(*keys, func.sum(case((is_complaint, 1), else_=0)).label("complaints"),
                   func.sum(case((in_base, 1), else_=0)).label("records"))
            .where(or_(is_complaint, in_base), q.in_period(Record.occurred_at), *filters)
            .group_by(*keys))
    out = {}
    for key, row in q.grouped(stmt).items():
        records = int(row.records or 0)
        out[key] = 1000.0 * int(row.complaints or 0) / records if records else None
    return out or _empty(q, None)


# -- corrective actions --------------------------------------------------------------------


def through_record(q: KpiQuery) -> list[ColumnElement]:
    """The request's site, staff and kind filters on the (outer-joined) record of an
    action or a response; unlike :meth:`KpiQuery.record_filters`, a deleted record counts."""
    clauses = []
    for value, column in ((q.site_id, Record.site_id), (q.staff_id, Record.staff_id),
                          (q.kind, Record.kind)):
        if value is not None:
            clauses.append(column == value)
    return clauses


def _actions(q: KpiQuery, overdue: bool) -> dict[tuple, Any]:
    keys = q.keys(time=Action.created_at, site=Record.site_id, staff=Record.staff_id, kind=Record.kind)
    state = overdue_clause(q.now or utcnow()) if overdue else Action.status.not_in(CLOSED)
    stmt = (select(*keys, func.count().label("n"))
            .select_from(Action)
            .outerjoin(Record, and_(Record.tenant_id == Action.tenant_id, Record.id == Action.record_id))
            .where(state, q.in_period(Action.created_at), *through_record(q))
            .group_by(*keys))
    return {key: int(row.n) for key, row in q.grouped(stmt).items()}


def compute_actions_open(q: KpiQuery) -> dict[tuple, Any]:
    return _actions(q, overdue=False)


def compute_actions_overdue(q: KpiQuery) -> dict[tuple, Any]:
    return _actions(q, overdue=True)


# -- surveys -------------------------------------------------------------------------------


def _answered(q: KpiQuery, model, *columns):
    """SELECT ``columns`` from ``model`` (answers or dimension scores) joined to their
    response (in the period) and, outer, to the record the response is about."""
    r = SurveyResponse
    return (select(*columns)
            .select_from(model)
            .join(r, and_(r.tenant_id == model.tenant_id, r.id == model.response_id))
            .outerjoin(Record, and_(Record.tenant_id == r.tenant_id, Record.id == r.record_id))
            .where(q.in_period(r.submitted_at), *through_record(q)))


def _survey_keys(q: KpiQuery) -> list[ColumnElement]:
    return q.keys(time=SurveyResponse.submitted_at, site=Record.site_id, staff=Record.staff_id,
                  kind=Record.kind)


def metric_items(q: KpiQuery, metric: str) -> ColumnElement | None:
    """SQL condition on :class:`SurveyAnswer`: the answer is to an item with ``metric``
    (``nps``, ``csat``) in its survey's instrument; ``None`` when no survey has one."""
    conditions = []
    for survey_id, doc in q.session.execute(select(Survey.id, Survey.instrument)):
        positions = [n for n, item in enumerate((doc or {}).get("items") or [], start=1)
                     if item.get("metric") == metric]
        if positions:
            conditions.append(and_(SurveyAnswer.survey_id == survey_id, SurveyAnswer.item.in_(positions)))
    return or_(*conditions) if conditions else None


def _metric_sums(q: KpiQuery, metric: str, counts: dict[str, ColumnElement]):
    which = metric_items(q, metric)
    if which is None:
        return None
    keys = _survey_keys(q)
    labelled = [expr.label(name) for name, expr in counts.items()]
    stmt = (_answered(q, SurveyAnswer, *keys, func.count(SurveyAnswer.perceived).label("n"), *labelled)
            .where(which, SurveyAnswer.perceived.is_not(None))
            .group_by(*keys))
    return q.grouped(stmt)


def nps_value(n: int, promoters: int, detractors: int) -> dict | None:
    """NPS as :func:`core.surveys.results.survey_results` gives it: ``score`` (% promoters
    − % detractors, -100..100), its ``se``, ``n`` answers and the three shares in %."""
    if not n:
        return None
    # NPS is the mean of +100 (promoter), 0 (passive) and -100 (detractor).
    s = stat(n, 100.0 * (promoters - detractors), 10_000.0 * (promoters + detractors))
    return {"score": s["mean"], "se": s["se"], "n": n, "promoters": 100.0 * promoters / n,
            "passives": 100.0 * (n - promoters - detractors) / n, "detractors": 100.0 * detractors / n}


def csat_value(n: int, satisfied: int) -> dict | None:
    """CSAT as the survey results give it: ``score`` (% of answers 4-5), ``se``, ``n``."""
    if not n:
        return None
    s = stat(n, 100.0 * satisfied, 10_000.0 * satisfied)
    return {"score": s["mean"], "se": s["se"], "n": n}


def compute_nps(q: KpiQuery) -> dict[tuple, Any]:
    p = SurveyAnswer.perceived
    rows = _metric_sums(q, "nps", {"promoters": func.sum(case((p >= 9, 1), else_=0)),
                                   "detractors": func.sum(case((p <= 6, 1), else_=0))})
    if rows is None:
        return _empty(q, None)
    return {key: nps_value(int(row.n or 0), int(row.promoters or 0), int(row.detractors or 0))
            for key, row in rows.items()}


def compute_csat(q: KpiQuery) -> dict[tuple, Any]:
    p = SurveyAnswer.perceived
    rows = _metric_sums(q, "csat", {"satisfied": func.sum(case((p >= 4, 1), else_=0))})
    if rows is None:
        return _empty(q, None)
    return {key: csat_value(int(row.n or 0), int(row.satisfied or 0)) for key, row in rows.items()}


def servqual_dimensions(q: KpiQuery) -> dict[str, ColumnElement]:
    """``{dimension code: SQL condition on SurveyDimensionScore}`` for the SERVQUAL
    dimensions of the tenant's two-column surveys (only those some survey has)."""
    found: dict[str, list[ColumnElement]] = {}
    ds = SurveyDimensionScore
    for survey_id, doc in q.session.execute(select(Survey.id, Survey.instrument)
                                            .where(Survey.form == "two_column")):
        for position, dim in enumerate((doc or {}).get("dimensions") or [], start=1):
            if dim.get("code") in SERVQUAL_DIMENSIONS:
                found.setdefault(dim["code"], []).append(
                    and_(ds.survey_id == survey_id, ds.dimension == position))
    return {code: or_(*conditions) for code, conditions in found.items()}


def compute_servqual_gap(q: KpiQuery) -> dict[tuple, Any]:
    dims = servqual_dimensions(q)
    if not dims:
        return _empty(q, None)
    ds = SurveyDimensionScore
    keys = _survey_keys(q)
    gap = ds.perceived - ds.expectation
    means = [func.avg(case((condition, gap))).label(code) for code, condition in dims.items()]
    stmt = (_answered(q, ds, *keys, *means)
            .where(or_(*dims.values()), ds.perceived.is_not(None), ds.expectation.is_not(None))
            .group_by(*keys))
    out = {}
    for key, row in q.grouped(stmt).items():
        values = row._mapping
        out[key] = {code: (float(values[code]) if code in dims and values[code] is not None else None)
                    for code in SERVQUAL_DIMENSIONS}
    return out or _empty(q, None)


# -- the metrics ---------------------------------------------------------------------------

_RECORDS = frozenset({*TIME, "site", "staff", "kind"})

METRICS: list[Metric] = [
    Metric(
        name="first_time_fix",
        title={"en": "First-time fix", "zh": "一次修复率"},
        unit="percent",
        groupings=_RECORDS,
        compute=compute_first_time_fix,
        description="Percentage of records fixed the first time, among the records (by occurred_at) "
                    "of the kinds that name a first-time-fix field, counting only those whose field "
                    "is true or false.",
    ),
    Metric(
        name="complaints",
        title={"en": "Complaints", "zh": "投诉数"},
        unit="count",
        groupings=_RECORDS,
        compute=compute_complaints,
        description="Number of live complaint records that occurred in the period.",
        better="lower",
    ),
    Metric(
        name="complaint_rate",
        title={"en": "Complaint rate", "zh": "投诉率"},
        unit="per_1000",
        groupings=frozenset({*TIME, "site", "staff"}),
        compute=compute_complaint_rate,
        description="Complaints per 1,000 live records of the kinds given by per_kind (default: "
                    "the kind filter, else every kind but complaint) that occurred in the period; "
                    "null when there are no such records.",
        params={"per_kind": "Kind(s), comma-separated, that complaints are counted against "
                            "(e.g. property.work_order); default: the kind filter, else every "
                            "kind but complaint."},
        better="lower",
    ),
    Metric(
        name="actions_open",
        title={"en": "Open corrective actions", "zh": "未关闭整改项"},
        unit="count",
        groupings=_RECORDS,
        compute=compute_actions_open,
        description="Corrective actions created in the period that are still open (open or "
                    "in_progress; a reopened action is open again); site, staff and kind are "
                    "those of the action's record (null without one).",
        better="lower",
    ),
    Metric(
        name="actions_overdue",
        title={"en": "Overdue corrective actions", "zh": "逾期整改项"},
        unit="count",
        groupings=_RECORDS,
        compute=compute_actions_overdue,
        description="Corrective actions created in the period that are still open and past their "
                    "due time now; site, staff and kind are those of the action's record.",
        better="lower",
    ),
    Metric(
        name="nps",
        title={"en": "Net Promoter Score", "zh": "净推荐值"},
        unit="score",
        groupings=_RECORDS,
        compute=compute_nps,
        description="Net Promoter Score of the answers to NPS items submitted in the period: "
                    "{score: % promoters (9-10) - % detractors (0-6), se, n answers, promoters, "
                    "passives, detractors (in %)}; the headline is score.",
    ),
    Metric(
        name="csat",
        title={"en": "Customer satisfaction", "zh": "客户满意度"},
        unit="percent",
        groupings=_RECORDS,
        compute=compute_csat,
        description="Customer satisfaction of the answers to CSAT items submitted in the period: "
                    "{score: % of answers 4 or 5 on the 1-5 scale, se, n answers}; the headline "
                    "is score.",
    ),
    Metric(
        name="servqual_gap",
        title={"en": "SERVQUAL gap", "zh": "SERVQUAL 差距"},
        unit="points",
        groupings=_RECORDS,
        compute=compute_servqual_gap,
        description="Mean gap perception - expectation per SERVQUAL dimension over the respondents "
                    "of two-column surveys who answered it in the period, in scale points: "
                    "{tangibles, reliability, responsiveness, assurance, empathy} (null: not asked).",
    ),
]

__all__ = ["METRICS", "SERVQUAL_DIMENSIONS", "csat_value", "first_time_fix_fields", "nps_value"]
