"""The deadline tick: every minute, for every tenant, the breach watch, the recurring
obligations and the webhook retries that are due.

``servq worker`` keeps the tick going with rq's scheduler (the worker runs with its
scheduler on): :func:`start_ticking` schedules the tick of the current minute, and each
tick schedules the next one (``enqueue_at`` the start of the next minute) before it
works. A Redis key per minute (``SET NX``) makes sure each minute is scheduled once,
however many workers run, and a Redis lock keeps two ticks from overlapping. If every
worker stops, the chain resumes when one starts again.

A tick is the enqueuing job: it lists the tenants (a global table) and hands
:func:`scan_tenant` of each to :func:`core.jobs.fan_out`: with Redis one rq job per tenant
(in parallel on the workers: more workers, shorter rounds; a tenant whose previous scan
is still queued or running is skipped this minute), without it inline, one tenant after
the other; each with a session scoped to its tenant, a failing tenant never stopping the
others. The tick also enqueues the hourly KPI refresh the same way
(:func:`core.kpis.rollups.schedule_refresh`). ``servq deadlines scan`` runs one tick now,
in the calling process (``--enqueue``: on the workers), for crontab-minded operators and
for deployments without a worker.

This module is one of core's plugins (``CORE_PLUGINS``): it registers :func:`scan_tenant`
as the job ``deadlines.scan`` and stops the clocks of a deleted record. The tick itself is
queued as ``deadlines.tick``, a name this module registers with jobs
(``core.jobs.worker_function``) so that ``core.jobs.ServqJob`` resolves it: jobs, below
deadlines in the layers, does not know the tick.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timezone

from flask import Flask, current_app, has_app_context
from sqlalchemy import select, update

from servq.core import metrics
from servq.core.db import utcnow
from servq.core.db.session import new_session
from servq.core.db.state import TRANSACTION, Slot
from servq.core.deadlines import breaches, schedules, stalled
from servq.core.kb import scan_reviews
from servq.core.jobs import FanOut, enqueue, worker_function
from servq.core.jobs import fan_out as fan_out_jobs
from servq.core.kpis.rollups import schedule_refresh
from servq.core.models import Clock, Tenant
from servq.core.notify.delivery import retry_due
from servq.core.plugins import Job, hookimpl

log = logging.getLogger(__name__)

#: Seconds between ticks.
INTERVAL = 60
#: rq's function name of the tick (``core.jobs.ServqJob`` resolves it to :func:`tick`,
#: registered with :func:`core.jobs.worker_function`).
TICK_FUNCTION = "deadlines.tick"
#: What an older release queued the tick under. Transitional: goes in the next release.
OLD_TICK_FUNCTION = "core.deadlines.tick"
#: The job name of :func:`scan_tenant`.
SCAN_JOB = "deadlines.scan"
_SLOT_KEY = "servq:deadlines:slot:{queue}:{slot}"
_LOCK_KEY = "servq:deadlines:running:{queue}"


def scan_tenant(session, now: str | None = None) -> dict:
    """One tenant's share of a tick (a registered job): the clocks' breach watch
    (:func:`core.deadlines.breaches.scan`), the recurring obligations (:func:`core.deadlines.schedules.scan`),
    the webhook deliveries due for a retry (``core.notify.delivery.retry_due``) and the
    stalled-record watch (:func:`core.deadlines.stalled.scan`) and the knowledge-base
    articles whose review lapsed (:func:`core.kb.reviews.scan`). Commits.

    :param now: ISO 8601 instant to scan as of (default: now).
    :return: counts of what was done.
    """
    instant = datetime.fromisoformat(now) if now else utcnow()
    with metrics.BREACH_WATCH_SECONDS.time():
        result = breaches.scan(session, instant).as_dict()
    result["missed_periods"] = schedules.scan(session, instant)
    result["retries"] = retry_due(session, instant)
    result.update(stalled.scan(session, instant))
    result["kb_reviews_due"] = scan_reviews(session, instant)
    session.commit()
    return result


def run_tick(app: Flask, now: datetime | None = None, *, fan_out: bool = False,
             tenants: list[tuple[uuid.UUID, str]] | None = None) -> FanOut:
    """Run :func:`scan_tenant` for every tenant (or those of ``tenants``, ``(id, slug)``
    pairs), as of ``now``: :func:`core.jobs.fan_out`.

    ``fan_out`` (the worker's tick, with Redis): each tenant's scan is an rq job of its own
    (id ``deadlines-<tenant>-<minute>``), so more workers scan more tenants at once; a
    tenant whose previous scan has not ended yet is left to it. Otherwise (``servq
    deadlines scan``, or no Redis) each runs here, in turn; a tenant whose scan fails is
    rolled back, logged and counted (:attr:`~core.jobs.FanOut.failed`), the others still
    run, and the next tick scans it again (every scan is idempotent).
    """
    now = now or utcnow()
    if tenants is None:
        with new_session(app) as session:
            tenants = [tuple(row) for row in
                       session.execute(select(Tenant.id, Tenant.slug).order_by(Tenant.slug)).all()]
    stamp = now.astimezone(timezone.utc).isoformat()
    minute = int(now.timestamp()) // INTERVAL
    return fan_out_jobs(app, SCAN_JOB, tenants, [stamp], job_id=lambda tenant_id: f"deadlines-{tenant_id}-{minute}",
                        inline=not fan_out)


# -- the every-minute chain on rq -------------------------------------------------------------


def _slot(instant: datetime) -> int:
    return int(instant.timestamp()) // INTERVAL * INTERVAL


def schedule_tick(app: Flask, at_slot: int) -> bool:
    """Schedule the tick of minute ``at_slot`` (epoch seconds) unless someone did already.

    :return: whether this call scheduled it.
    """
    queue = app.extensions["servq.queue"]
    if queue is None:
        return False
    key = _SLOT_KEY.format(queue=queue.name, slot=at_slot)
    if not queue.connection.set(key, b"1", nx=True, ex=6 * 3600):
        return False
    when = datetime.fromtimestamp(at_slot, tz=timezone.utc)
    queue.enqueue_at(when, TICK_FUNCTION, job_id=f"servq-deadlines-tick-{at_slot}",
                     result_ttl=600, failure_ttl=24 * 3600, job_timeout=10 * 60)
    return True


def start_ticking(app: Flask) -> None:
    """Make sure the tick runs this minute and keeps running (``servq worker`` calls it)."""
    schedule_tick(app, _slot(utcnow()))


@worker_function(TICK_FUNCTION, OLD_TICK_FUNCTION)
def tick() -> dict:
    """The rq job behind the every-minute tick (runs inside the worker's app context).

    Schedules the next minute's tick first, so a failing tick does not break the chain,
    then fans the tenants' scans out as jobs, unless another tick is still at work.
    """
    app = current_app._get_current_object()
    now = utcnow()
    schedule_tick(app, _slot(now) + INTERVAL)
    queue = app.extensions["servq.queue"]
    lock = queue.connection.lock(_LOCK_KEY.format(queue=queue.name), timeout=5 * 60,
                                 blocking=False) if queue is not None else None
    if lock is not None and not lock.acquire(blocking=False):
        log.info("deadline tick skipped: the previous one is still running")
        return {"skipped": True}
    started = time.monotonic()
    try:
        scans = run_tick(app, now, fan_out=queue is not None)
        refreshes = schedule_refresh(app, now)  # the KPI rollups of every tenant, once an hour
    finally:
        if lock is not None:
            try:
                lock.release()
            except Exception:  # expired meanwhile: nothing to release
                pass
    return {"tenants_scanned_at": now.isoformat(), "seconds": round(time.monotonic() - started, 3),
            "scans": scans.as_dict(), "kpi_refreshes": refreshes.as_dict() if refreshes else None}


# -- plugin hooks ---------------------------------------------------------------------------


#: The transaction in which a scan of the tenant was requested.
_SCAN_REQUESTED: Slot[object] = Slot("deadlines.scan_requested", TRANSACTION, __name__)


def request_scan(session) -> None:
    """Have the breach watch look at the session's tenant right after this transaction
    commits (a clock became due while being synchronised): once per transaction."""
    if not has_app_context() or session.tenant_id is None:
        return
    txn = session.get_transaction()
    if txn is not None and session.state.get(_SCAN_REQUESTED) is txn:
        return
    session.state.set(_SCAN_REQUESTED, txn)
    enqueue(session, scan_tenant, session.tenant_id)


@hookimpl
def register_jobs():
    return [Job(SCAN_JOB, scan_tenant)]


@hookimpl
def record_changed(session, record, changes):
    """A deleted record's clocks stop being watched."""
    if "deleted_at" in changes and record.deleted_at is not None:
        session.execute(update(Clock).where(Clock.record_id == record.id)
                        .values(next_check_at=None)
                        .execution_options(synchronize_session=False))
