"""Daily KPI rollups: per tenant-local day sums of records and evaluations, kept beside
the raw tables so that a KPI over a year reads a few hundred thousand summed rows
instead of millions of records.

The tables (:mod:`core.models.kpis`):

* ``kpi_days``: one row per tenant-local day × site × staff × kind × standard. The row
  with ``standard_code = ''`` counts the live records (``records``); a row with a
  standard summarises the evaluations of live records against it (``records`` = how many
  were evaluated, ``scored`` = how many have a percent, ``sum_percent``, ``judged`` = how
  many have ``passed`` set, ``passed``, ``failed_critical`` = how many failed a critical
  item).
* ``kpi_states``: per tenant, the time zone the days are in and ``rolled_until``: the
  days before it (exclusive) are rolled up.
* ``kpi_dirty_days``: days whose records changed after they were rolled up.

**Refresh** (:func:`refresh`, the job :func:`refresh_kpi_rollups`, ``servq kpis
refresh``): rolls the days up to local today − :data:`LAG_DAYS` (exclusive) and re-rolls
the dirty days, each batch of days with one ``DELETE`` and one ``INSERT … SELECT …
GROUP BY`` from the raw tables; a change of the tenant's time zone rebuilds everything.
It is idempotent: running it twice changes nothing the second time.

**Writes** (:func:`mark_dirty`, called by :mod:`core.records.pipeline`, :mod:`core.records.ingest` and
:mod:`core.evaluation.evaluations`): a record created, changed, deleted or re-evaluated whose
``occurred_at`` (old or new) is older than :data:`HORIZON` marks its local day dirty, one
statement per call. :data:`HORIZON` is 47 hours because every rolled-up day ends at least
47 hours before the refresh that rolled it (two local days back, one of which may be a
23-hour day); a record of a more recent day cannot be in a rolled day, so the common
write (a record of today) costs a comparison in Python and no query.

**Reads** (:func:`core.kpis.rollup_reads.record_sums`): the rolled-up clean days from
``kpi_days``, the rest from the raw tables; see :mod:`core.kpis.rollup_reads`. User guide:
``docs/kpi-rollups.md``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable, Sequence

from sqlalchemy import (Date, Float, String, Uuid, and_, case, cast, delete, false, func, insert,
                        literal_column, or_, select)
from sqlalchemy.sql import ColumnElement

from servq.core.db import dialect_insert, utcnow
from servq.core.db.fast import WRITER, Writer
from servq.core.db.state import TRANSACTION, Slot
from servq.core.kpis.sql import _zone

#: A write to a record older than this marks its day dirty (see the module docstring).
HORIZON = timedelta(hours=47)
#: Refresh rolls the days before local today minus this many days.
LAG_DAYS = 2
#: Days handled by one INSERT … SELECT when rolling up a long stretch.
BATCH_DAYS = 92
_DIRTY_INFO: Slot[tuple] = Slot("kpis.dirty_marked", TRANSACTION, __name__)  # (transaction, {day})


# -- days ---------------------------------------------------------------------------------


def local_day(instant: datetime, tz: str) -> date:
    """The tenant-local day of an instant."""
    return instant.astimezone(_zone(tz)).date()


def day_start(day: date, tz: str) -> datetime:
    """The first instant (UTC) of a tenant-local day (after a gap at midnight: the first
    instant that exists)."""
    return datetime.combine(day, time(), tzinfo=_zone(tz)).astimezone(timezone.utc)


def runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days as half-open runs of consecutive days: ``[(first, after last), …]``."""
    out: list[list[date]] = []
    for day in sorted(set(days)):
        if out and out[-1][1] == day:
            out[-1][1] = day + timedelta(days=1)
        else:
            out.append([day, day + timedelta(days=1)])
    return [(a, b) for a, b in out]


def _local_day_sql(column, tz: str, dialect: str) -> ColumnElement:
    """SQL for the tenant-local day of a UTC timestamp column, as ``kpi_days.day`` stores
    it (a date; on SQLite its ``YYYY-MM-DD`` text)."""
    if dialect == "postgresql":
        return cast(func.timezone(tz, column), Date)
    return func.servq_period(column, "day", tz)


def _new_id(dialect: str, *key) -> ColumnElement:
    """The id of a rollup row: on PostgreSQL derived from its grouping ``key`` (the same
    row of the same day gets the same id; a deterministic function, so that Citus runs
    the INSERT … SELECT on the tenant's shard), elsewhere a new random one (as ``Uuid``
    stores it)."""
    if dialect == "postgresql":
        parts = [func.coalesce(cast(part, String), "") for part in key]  # NULL keeps its place
        return cast(func.md5(func.concat_ws("|", *parts)), Uuid())
    return func.lower(func.hex(func.randomblob(16)))


def _nonempty_json_array(column, dialect: str) -> ColumnElement:
    if dialect == "postgresql":
        return func.jsonb_array_length(column) > 0
    return func.json_array_length(column) > 0


def _dialect(session) -> str:
    return session.get_bind().dialect.name


def _tenant_timezone(session) -> str:
    from servq.core.calendar.tenant import tenant_calendar

    return tenant_calendar(session).timezone


# -- marking dirty days -------------------------------------------------------------------


def mark_dirty(session, instants: Iterable[datetime | None], now: datetime | None = None, *,
               writer: Writer = WRITER) -> int:
    """Mark the tenant-local days of ``instants`` (the ``occurred_at`` of records just
    created, changed, deleted or re-evaluated, old and new) dirty, when older than
    :data:`HORIZON`: one ``INSERT … ON CONFLICT`` for all of them, none when every
    instant is recent (compared in Python first). A day already marked in the current
    transaction is not sent again. Returns the number of days sent.

    A :class:`~servq.core.db.fast.BulkWriter` (a bulk import, on PostgreSQL): the INSERT
    is queued with the chunk's other INSERTs instead of being executed at once.

    On conflict the row's ``marked_at`` is updated rather than left alone: the update
    locks the row until this transaction commits, so a refresh that deletes it
    (:func:`refresh` deletes the dirty days before reading the records) waits for this
    write and then sees it.
    """
    cutoff = (now or utcnow()) - HORIZON
    old = [at for at in instants if at is not None and at < cutoff]
    if not old:
        return 0
    tenant_id = session.tenant_id
    if tenant_id is None:
        from servq.core.db.tenancy import NoTenantContext

        raise NoTenantContext("marking KPI days dirty with no tenant in context")
    tz = _tenant_timezone(session)
    transaction = session.get_nested_transaction() or session.get_transaction()
    memo = session.state.get(_DIRTY_INFO)
    if memo is None or memo[0] is not transaction:
        memo = (transaction, set())
        session.state.set(_DIRTY_INFO, memo)
    zone = _zone(tz)
    days = {at.astimezone(zone).date() for at in old} - memo[1]  # local_day() of each
    if not days:
        return 0
    from servq.core.models import KpiDirtyDay

    marked_at = utcnow()
    rows = [{"tenant_id": tenant_id, "id": uuid.uuid4(), "day": day, "marked_at": marked_at}
            for day in sorted(days)]
    connection = session.connection()
    if writer.fresh and connection.dialect.name == "postgresql":
        writer.insert(session, KpiDirtyDay.__table__, rows, on_conflict="ON CONFLICT (tenant_id, day) DO UPDATE SET marked_at = excluded.marked_at")
    else:
        stmt = dialect_insert(session)(KpiDirtyDay).values(rows)
        stmt = stmt.on_conflict_do_update(index_elements=["tenant_id", "day"],
                                          set_={"marked_at": stmt.excluded.marked_at})
        session.execute(stmt)
    if transaction is not None:
        memo[1].update(days)
    return len(days)


# -- refresh ------------------------------------------------------------------------------


@dataclass
class RefreshReport:
    """What :func:`refresh` did."""

    rolled_until: date | None = None
    rebuilt: bool = False
    days: int = 0          # days rolled (new days and dirty ones)
    dirty: int = 0         # dirty days cleared
    rows: int = 0          # kpi_days rows written
    statements: int = 0    # INSERT … SELECT statements run

    def as_dict(self) -> dict[str, Any]:
        return {"rolled_until": self.rolled_until.isoformat() if self.rolled_until else None,
                "rebuilt": self.rebuilt, "days": self.days, "dirty": self.dirty,
                "rows": self.rows, "statements": self.statements}


def refresh(session, now: datetime | None = None) -> RefreshReport:
    """Bring the session's tenant's rollups up to date (the caller commits).

    Rolls the days up to local today − :data:`LAG_DAYS` (exclusive) not rolled yet and
    re-rolls the dirty days; rebuilds everything when the tenant's time zone is not the
    one the rollups were made in (or there are none yet). Concurrent refreshes of one
    tenant queue on its ``kpi_states`` row (PostgreSQL); running it again changes nothing.
    """
    from servq.core.models import KpiDay, KpiDirtyDay

    now = now or utcnow()
    tz = _tenant_timezone(session)
    target = local_day(now, tz) - timedelta(days=LAG_DAYS)
    state = _locked_state(session, tz)
    report = RefreshReport()
    # Deleted first: a write marking one of these days meanwhile waits for this
    # transaction (see mark_dirty) and marks it again afterwards.
    dirty = set(session.scalars(delete(KpiDirtyDay).returning(KpiDirtyDay.day)
                                .execution_options(synchronize_session=False)).all())
    report.dirty = len(dirty)
    if state.rolled_until is None or state.timezone != tz:
        report.rebuilt = True
        session.execute(delete(KpiDay).execution_options(synchronize_session=False))
        first = _first_day(session, tz)
        pending = [(first, target)] if first is not None and first < target else []
        rolled_until = target
    else:
        rolled_until = max(state.rolled_until, target)
        pending = runs([*(day for day in dirty if day < state.rolled_until),
                        *_days(state.rolled_until, target)])
    for batch in _batches(pending):
        report.days += sum((b - a).days for a, b in batch)
        report.rows += _roll(session, batch, tz)
        report.statements += 2  # _roll: records, then evaluations
    state.timezone, state.rolled_until, state.refreshed_at = tz, rolled_until, now
    session.flush()
    report.rolled_until = rolled_until
    return report


def _days(a: date, b: date) -> list[date]:
    return [a + timedelta(days=n) for n in range((b - a).days)]


def _batches(pending: Sequence[tuple[date, date]]) -> list[list[tuple[date, date]]]:
    """Group day runs into batches of at most :data:`BATCH_DAYS` days (a long run is cut)."""
    batches: list[list[tuple[date, date]]] = []
    size = BATCH_DAYS
    for a, b in pending:
        while a < b:
            if not batches or size >= BATCH_DAYS:
                batches.append([])
                size = 0
            end = min(b, a + timedelta(days=BATCH_DAYS - size))
            batches[-1].append((a, end))
            size += (end - a).days
            a = end
    return batches


def _locked_state(session, tz: str):
    """The tenant's ``kpi_states`` row, created when missing, locked for this
    transaction (PostgreSQL: ``FOR UPDATE``)."""
    from servq.core.models import KpiState

    stmt = dialect_insert(session)(KpiState).values(
        tenant_id=session.tenant_id, id=uuid.uuid4(), timezone=tz, rolled_until=None,
        refreshed_at=utcnow()).on_conflict_do_nothing(index_elements=["tenant_id"])
    session.execute(stmt)
    return session.scalars(select(KpiState).with_for_update()
                           .execution_options(populate_existing=True)).one()


def _first_day(session, tz: str) -> date | None:
    from servq.core.models import Record

    first = session.scalar(select(func.min(Record.occurred_at))
                           .where(Record.tenant_id == session.tenant_id))
    if first is None:
        return None
    if isinstance(first, str):  # SQLite hands an aggregate back as the stored text
        first = datetime.fromisoformat(first)
    if first.tzinfo is None:
        first = first.replace(tzinfo=timezone.utc)
    return local_day(first, tz)


def _ranges_clause(column, ranges: Sequence[tuple[datetime, datetime]]) -> ColumnElement:
    if not ranges:
        return false()
    return or_(*[and_(column >= a, column < b) for a, b in ranges])


def _roll(session, batch: Sequence[tuple[date, date]], tz: str) -> int:
    """Replace the rollup rows of the days in ``batch`` (runs of days) by sums of the raw
    tables: one DELETE and one INSERT … SELECT (records UNION ALL evaluations)."""
    from servq.core.models import Evaluation, KpiDay, Record

    dialect = _dialect(session)
    tenant_id = session.tenant_id
    days = or_(*[and_(KpiDay.day >= a, KpiDay.day < b) for a, b in batch])
    session.execute(delete(KpiDay).where(days).execution_options(synchronize_session=False))
    r, e = Record, Evaluation
    instants = [(day_start(a, tz), day_start(b, tz)) for a, b in batch]
    day = _local_day_sql(r.occurred_at, tz, dialect)
    where = [r.tenant_id == tenant_id, r.deleted_at.is_(None), _ranges_clause(r.occurred_at, instants)]
    # The tenant from the rows (not a bound value) and ids from the grouping key: the
    # INSERT … SELECT then runs where the tenant's rows are (one shard on Citus).
    zero = literal_column("0")
    live = (select(r.tenant_id, _new_id(dialect, day, r.site_id, r.staff_id, r.kind),
                   day, r.site_id, r.staff_id, r.kind, literal_column("''"),
                   func.count(), zero, cast(zero, Float), zero, zero, zero)
            .where(*where)
            .group_by(r.tenant_id, day, r.site_id, r.staff_id, r.kind))
    fails = case((_nonempty_json_array(e.failed_critical, dialect), 1), else_=0)
    evaluated = (select(r.tenant_id, _new_id(dialect, day, r.site_id, r.staff_id, r.kind, e.standard_code),
                        day, r.site_id, r.staff_id, r.kind, e.standard_code,
                        func.count(), func.count(e.percent),
                        func.coalesce(func.sum(e.percent), cast(zero, Float)),
                        func.count(e.passed),
                        func.coalesce(func.sum(case((e.passed.is_(True), 1), else_=0)), 0),
                        func.coalesce(func.sum(fails), 0))
                 .join(e, and_(e.tenant_id == r.tenant_id, e.record_id == r.id))
                 .where(*where)
                 .group_by(r.tenant_id, day, r.site_id, r.staff_id, r.kind, e.standard_code))
    columns = ["tenant_id", "id", "day", "site_id", "staff_id", "kind", "standard_code", "records",
               "scored", "sum_percent", "judged", "passed", "failed_critical"]
    # Two statements, not one over a UNION ALL: Citus pushes an INSERT … SELECT with a set
    # operation down to no shard (it would copy the rows in through the coordinator).
    written = 0
    for part in (live, evaluated):
        result = session.execute(insert(KpiDay).from_select(columns, part)
                                 .execution_options(preserve_rowcount=True))
        written += max(result.rowcount or 0, 0)
    return written


# -- the job and its schedule -------------------------------------------------------------


def refresh_kpi_rollups(session, now: str | None = None) -> dict:
    """Job: refresh the tenant's KPI rollups (:func:`refresh`) and commit. Idempotent.

    :param now: ISO 8601 instant to refresh as of (default: now).
    """
    instant = datetime.fromisoformat(now) if now else utcnow()
    report = refresh(session, instant)
    session.commit()
    return report.as_dict()


#: Seconds between the worker's refreshes of every tenant's rollups.
REFRESH_INTERVAL = 3600
#: The job name of :func:`refresh_kpi_rollups`.
REFRESH_JOB = "kpis.refresh"
_REFRESH_KEY = "servq:kpis:refresh:{queue}:{slot}"


def _tenants(app) -> list[tuple[uuid.UUID, str]]:
    from servq.core.db.session import new_session
    from servq.core.models import Tenant

    with new_session(app) as session:
        return [tuple(row) for row in
                session.execute(select(Tenant.id, Tenant.slug).order_by(Tenant.slug)).all()]


def refresh_all(app, now: datetime | None = None, *, tenants: list[tuple[uuid.UUID, str]] | None = None,
                enqueue: bool = False):
    """Refresh the rollups of every tenant (or of ``tenants``, ``(id, slug)`` pairs) with
    :func:`core.jobs.fan_out`: here, one tenant after another (``servq kpis refresh``),
    or with ``enqueue`` (and Redis) one rq job per tenant, for the workers. A tenant whose
    refresh fails is rolled back, logged and counted; the others are refreshed; the next
    run (a refresh is idempotent) does it again. Returns the :class:`~core.jobs.FanOut`."""
    from servq.core.jobs import fan_out

    if tenants is None:
        tenants = _tenants(app)
    args = [now.astimezone(timezone.utc).isoformat()] if now is not None else []
    slot = int((now or utcnow()).timestamp()) // REFRESH_INTERVAL
    return fan_out(app, REFRESH_JOB, tenants, args, inline=not enqueue,
                   job_id=lambda tenant_id: f"kpi-rollups-{tenant_id}-{slot}")


def schedule_refresh(app, now: datetime):
    """From the worker's every-minute tick: once per :data:`REFRESH_INTERVAL` (a Redis
    ``SET NX`` per interval, however many workers tick), enqueue
    :func:`refresh_kpi_rollups` for every tenant, one rq job each (:func:`refresh_all`:
    the workers refresh the tenants in parallel; a tenant whose refresh of the previous
    hour has not ended is skipped). Costs one Redis command otherwise. Returns the
    :class:`~core.jobs.FanOut` when this call enqueued them, else ``None``."""
    from servq.core.jobs import fan_out

    queue = app.extensions.get("servq.queue")
    if queue is None:
        return None
    slot = int(now.timestamp()) // REFRESH_INTERVAL
    key = _REFRESH_KEY.format(queue=queue.name, slot=slot)
    if not queue.connection.set(key, b"1", nx=True, ex=2 * REFRESH_INTERVAL):
        return None
    # No instant in the job: each tenant is refreshed as of when its job runs.
    return fan_out(app, REFRESH_JOB, _tenants(app), [],
                   job_id=lambda tenant_id: f"kpi-rollups-{tenant_id}-{slot}")


__all__ = ["HORIZON", "LAG_DAYS", "REFRESH_JOB", "RefreshReport", "day_start", "local_day", "mark_dirty",
           "refresh", "refresh_all", "refresh_kpi_rollups", "schedule_refresh"]
