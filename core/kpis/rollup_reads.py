"""Reading the daily KPI rollups (:mod:`core.kpis.rollups` keeps them).

:func:`record_sums`: whole local days of the period that are rolled up and not dirty come
from ``kpi_days``; the rest (the partial days at either end of the period, the days not
rolled yet, the dirty days) from ``records`` ⋈ ``evaluations``; the sums of both are
added. The answer is the raw tables' answer, never a stale one. :func:`coverage` says which
part of a period each source answers. User guide: ``docs/kpi-rollups.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Sequence

from sqlalchemy import DateTime, Float, and_, case, cast, func, literal_column, select, text, true, union_all
from sqlalchemy.sql import ColumnElement

from servq.core.kpis.rollups import _nonempty_json_array, _ranges_clause, day_start, local_day, runs
from servq.core.kpis.sql import PERIODS

#: Read rollups at all. Only the tests switch this off, to compare with the raw answer.
USE_ROLLUPS = True
#: PostgreSQL ``work_mem`` of a transaction reading KPIs (see :func:`record_sums`).
WORK_MEM = "64MB"
#: The sums every record and evaluation KPI is made of, in this order.
SUMS = ("records", "evaluated", "scored", "sum_percent", "judged", "passed", "failed_critical")
_PG_DAY_FORMATS = {"day": "YYYY-MM-DD", "week": 'IYYY-"W"IW', "month": "YYYY-MM"}
_SUMS_ATTRIBUTE = "_servq_record_sums"


# -- periods of rollup days -----------------------------------------------------------------


def _day_bucket(column, unit: str, dialect: str) -> ColumnElement:
    """A cheap expression equal for the local dates of one day, ISO week or month (what
    rollup rows are summed by); :func:`_bucket_key` turns it into the period's key
    afterwards, once per group rather than once per row (``to_char`` is costly)."""
    if dialect == "postgresql":
        return column if unit == "day" else func.date_trunc(unit, cast(column, DateTime()))
    if unit == "day":
        return column  # SQLite stores a date as its YYYY-MM-DD text: the key already
    if unit == "month":
        return func.substr(column, 1, 7)
    return func.servq_period(column, unit, "UTC")  # the date is local already


def _bucket_key(column, unit: str, dialect: str) -> ColumnElement:
    """The key (as :func:`core.kpis.sql.period` writes them) of a :func:`_day_bucket`."""
    if dialect == "postgresql":
        return func.to_char(cast(column, DateTime()), _PG_DAY_FORMATS[unit])
    return column


# -- reading ------------------------------------------------------------------------------


@dataclass
class _Coverage:
    """Which part of a KPI period the rollups answer."""

    first: date | None = None          # rollup days: [first, until) minus dirty
    until: date | None = None
    dirty: list[date] = field(default_factory=list)
    raw: list[tuple[datetime, datetime]] = field(default_factory=list)  # UTC ranges read raw


def coverage(session, since: datetime, until: datetime, tz: str) -> _Coverage:
    """Split ``[since, until)`` into whole rolled-up clean days (answered by ``kpi_days``)
    and UTC ranges read from the raw tables. One query (the state and its dirty days)."""
    from servq.core.models import KpiDirtyDay, KpiState

    everything_raw = _Coverage(raw=[(since, until)] if since < until else [])
    if not USE_ROLLUPS or since >= until:
        return everything_raw
    rows = session.execute(
        select(KpiState.timezone, KpiState.rolled_until, KpiDirtyDay.day)
        .outerjoin(KpiDirtyDay, and_(KpiDirtyDay.tenant_id == KpiState.tenant_id,
                                     KpiDirtyDay.day < KpiState.rolled_until))).all()
    if not rows or rows[0].rolled_until is None or rows[0].timezone != tz:
        return everything_raw
    try:
        first = local_day(since, tz)
        if day_start(first, tz) < since:
            first += timedelta(days=1)
        last = min(local_day(until, tz), rows[0].rolled_until)
        if first >= last:
            return everything_raw
        dirty = sorted({row.day for row in rows if row.day is not None and first <= row.day < last})
        raw = [(since, day_start(first, tz))]
        raw += [(day_start(a, tz), day_start(b, tz)) for a, b in runs(dirty)]
        raw.append((day_start(last, tz), until))
    except OverflowError:  # a period reaching the ends of the calendar
        return everything_raw
    merged: list[tuple[datetime, datetime]] = []
    for a, b in raw:
        if a >= b:
            continue
        if merged and merged[-1][1] == a:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return _Coverage(first, last, dirty, merged)


def record_sums(q) -> dict[tuple, dict[str, Any]]:
    """The :data:`SUMS` of the records and evaluations of a :class:`core.kpis.KpiQuery`,
    by group key: rollups for the whole clean rolled-up days, the raw tables for the rest
    (at most three queries, made once per query object whatever the number of metrics
    asked). ``records`` counts live records; grouped by ``standard``, it is the records
    evaluated against each standard instead (``evaluated``)."""
    cached = q.__dict__.get(_SUMS_ATTRIBUTE)
    if cached is not None:
        return cached
    parts = coverage(q.session, q.since, q.until, q.timezone)
    if q.dialect == "postgresql":
        # For this transaction: no JIT (these statements take tens of milliseconds; the
        # compilation their estimated cost triggers takes as long), and the memory to
        # sum in a hash table (PostgreSQL cannot tell how few groups a day's month makes
        # and would sort the rows on disk instead).
        q.session.execute(text("SELECT set_config('jit', 'off', true), "
                               "set_config('work_mem', :work_mem, true)"), {"work_mem": WORK_MEM})
    out: dict[tuple, dict[str, Any]] = {}
    for statement in (_rollup_statement(q, parts), _raw_statement(q, parts.raw)):
        if statement is None:
            continue
        for key, row in q.grouped(statement).items():
            sums = out.setdefault(key, dict.fromkeys(SUMS, 0))
            for name in SUMS:
                value = getattr(row, name) or 0  # PostgreSQL sums counts as numeric
                sums[name] += float(value) if name == "sum_percent" else int(value)
    if "standard" in q.group_by:
        for sums in out.values():
            sums["records"] = sums["evaluated"]
    q.__dict__[_SUMS_ATTRIBUTE] = out  # several metrics of one request share the sums
    return out


def _filters(q, model) -> list[ColumnElement]:
    clauses = []
    if q.site_id is not None:
        clauses.append(model.site_id == q.site_id)
    if q.staff_id is not None:
        clauses.append(model.staff_id == q.staff_id)
    if q.kind is not None:
        clauses.append(model.kind == q.kind)
    return clauses


def _rollup_statement(q, parts: _Coverage):
    from servq.core.models import KpiDay

    if parts.first is None:
        return None
    d = KpiDay
    dialect = q.dialect
    sources = {"site": d.site_id, "staff": d.staff_id, "kind": d.kind, "standard": d.standard_code}
    buckets = [(_day_bucket(d.day, name, dialect) if name in PERIODS else sources[name]).label(f"g{n}")
               for n, name in enumerate(q.group_by)]
    base = d.standard_code == ""
    where = [d.tenant_id == q.session.tenant_id, d.day >= parts.first, d.day < parts.until,
             *_filters(q, d)]
    if parts.dirty:
        where.append(d.day.not_in(parts.dirty))
    if "standard" in q.group_by:
        where.append(~base)
    sums = (select(*buckets,
                   func.sum(case((base, d.records), else_=0)).label("records"),
                   func.sum(case((base, 0), else_=d.records)).label("evaluated"),
                   *[func.sum(getattr(d, name)).label(name) for name in SUMS[2:]])
            .where(*where).group_by(*buckets).subquery())
    # One bucket is one key: no second GROUP BY.
    keys = [(_bucket_key(sums.c[f"g{n}"], name, dialect) if name in PERIODS else sums.c[f"g{n}"])
            .label(f"g{n}") for n, name in enumerate(q.group_by)]
    return select(*keys, *[sums.c[name] for name in SUMS])


def _raw_statement(q, ranges: Sequence[tuple[datetime, datetime]]):
    """One aggregate over the raw tables in ``ranges``, grouped by the query's keys."""
    from servq.core.models import Record

    if not ranges:
        return None
    r = Record
    where = [r.tenant_id == q.session.tenant_id, *q.record_filters(r),
             _ranges_clause(r.occurred_at, ranges)]
    if q.dialect == "postgresql":
        return _raw_lateral(q, where)
    return _raw_union(q, where)


def _raw_lateral(q, where):
    """PostgreSQL: each live record in range joined to the sums of its evaluations (per
    standard when grouped by standard) by a LATERAL subquery: one scan of the records
    and one index lookup per record, whatever the planner thinks of the whole
    evaluations table (the raw part is a few days: a nested loop is always right)."""
    from servq.core.models import Evaluation, Record

    r, e = Record, Evaluation
    by_standard = "standard" in q.group_by
    fails = case((_nonempty_json_array(e.failed_critical, q.dialect), 1), else_=0)
    per_record = (select(*([e.standard_code.label("standard_code")] if by_standard else []),
                         func.count(e.id).label("evaluated"), func.count(e.percent).label("scored"),
                         func.sum(e.percent).label("sum_percent"), func.count(e.passed).label("judged"),
                         func.sum(case((e.passed.is_(True), 1), else_=0)).label("passed"),
                         func.sum(fails).label("failed_critical"))
                  .where(e.tenant_id == r.tenant_id, e.record_id == r.id))
    if by_standard:
        per_record = per_record.group_by(e.standard_code)
    ev = per_record.lateral("ev")
    keys = q.keys(time=r.occurred_at, site=r.site_id, staff=r.staff_id, kind=r.kind,
                  standard=ev.c.standard_code if by_standard else None)
    records = func.sum(ev.c.evaluated) if by_standard else func.count()
    return (select(*keys, records.label("records"),
                   *[func.sum(ev.c[name]).label(name) for name in SUMS[1:]])
            .select_from(r).join(ev, true()).where(*where).group_by(*keys))


def _raw_union(q, where):
    """SQLite (no LATERAL; its planner loops over an index anyway): the live records
    (unless grouped by standard) UNION ALL their evaluations, one row each, summed by
    the query's keys."""
    from servq.core.models import Evaluation, Record

    r, e = Record, Evaluation
    zero, one = literal_column("0"), literal_column("1")
    fails = case((_nonempty_json_array(e.failed_critical, q.dialect), 1), else_=0)
    evaluated = (select(r.occurred_at.label("at"), r.site_id, r.staff_id, r.kind,
                        e.standard_code.label("standard_code"), zero.label("records"),
                        one.label("evaluated"),
                        case((e.percent.is_not(None), 1), else_=0).label("scored"),
                        func.coalesce(e.percent, cast(zero, Float)).label("sum_percent"),
                        case((e.passed.is_not(None), 1), else_=0).label("judged"),
                        case((e.passed.is_(True), 1), else_=0).label("passed"),
                        fails.label("failed_critical"))
                 .join(e, and_(e.tenant_id == r.tenant_id, e.record_id == r.id))
                 .where(*where))
    if "standard" in q.group_by:
        rows = evaluated.subquery()
    else:
        live = (select(r.occurred_at.label("at"), r.site_id, r.staff_id, r.kind,
                       literal_column("''").label("standard_code"), one.label("records"),
                       zero.label("evaluated"), zero.label("scored"),
                       cast(zero, Float).label("sum_percent"), zero.label("judged"),
                       zero.label("passed"), zero.label("failed_critical"))
                .where(*where))
        rows = union_all(live, evaluated).subquery()
    keys = q.keys(time=rows.c.at, site=rows.c.site_id, staff=rows.c.staff_id, kind=rows.c.kind,
                  standard=rows.c.standard_code)
    return (select(*keys, *[func.sum(rows.c[name]).label(name) for name in SUMS])
            .group_by(*keys))


__all__ = ["SUMS", "USE_ROLLUPS", "WORK_MEM", "coverage", "record_sums"]
