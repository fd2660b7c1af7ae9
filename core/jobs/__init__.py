"""Background jobs: rq on Redis in production, inline after commit without ``REDIS_URL``.

A job is a function registered through the ``register_jobs`` hook under a stable name
(``core.plugins.Job("notify.deliver", deliver)``). It is enqueued by that name (rq's
function name is the job's name, resolved by :class:`ServqJob`), with the tenant id first
and JSON arguments, only once the enqueuing transaction
has committed, and runs with a fresh session scoped to that tenant. rq delivers at least
once, so every job must be idempotent. Inline and queued jobs take the same code path
(:func:`run_job`).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from flask import Flask, current_app
from redis import Redis
from rq import Queue, Retry, SimpleWorker
from rq.job import Job as RqJob
from rq.scheduler import RQScheduler
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.serializers import JSONSerializer
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from servq.core import metrics

log = logging.getLogger(__name__)


#: Longest error text kept on a failed build (:func:`build_row`).
MAX_ERROR = 2000


def build_row(session, model, row_id: str, build: Callable[[Any], None]) -> str | None:
    """Run a job that builds something into one row of ``model`` (an export, a report):
    the row goes ``running`` → ``done``, or ``failed`` with the error.

    Idempotent (rq delivers at least once): a ``done`` row is left alone; a failed or
    interrupted one is built again. ``build(row)`` fills the row (not committing); when it
    raises, the work is rolled back, the row is marked ``failed`` with the error and the
    exception raised again so that rq retries. ``started_at`` is stamped when the model
    has it.

    :return: the row's final status, or ``None`` when it no longer exists.
    """
    from servq.core.db import utcnow

    row_uuid = uuid.UUID(row_id)
    row = session.scalar(select(model).where(model.id == row_uuid))
    if row is None:
        log.warning("%s %s not found (tenant deleted?); nothing to do", model.__tablename__, row_id)
        return None
    if row.status == "done":
        return row.status
    row.status, row.error = "running", None
    if hasattr(model, "started_at"):
        row.started_at = utcnow()
    session.commit()
    try:
        build(row)
        row.status, row.finished_at = "done", utcnow()
        session.commit()
    except Exception as exc:
        session.rollback()
        row = session.scalar(select(model).where(model.id == row_uuid))
        if row is not None:
            row.status, row.finished_at = "failed", utcnow()
            row.error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
            session.commit()
        raise
    return row.status


class UnknownJob(LookupError):
    """The job name is not registered by any plugin."""


def init_app(app: Flask) -> None:
    """Connect to Redis when ``REDIS_URL`` is set; otherwise jobs run inline."""
    url = app.config.get("REDIS_URL")
    redis = Redis.from_url(url) if url else None
    app.extensions["servq.redis"] = redis
    app.extensions["servq.queue"] = (
        Queue(app.config["JOB_QUEUE"], connection=redis, serializer=JSONSerializer,
          job_class=ServqJob) if redis else None
    )


def enqueue(session, job: Callable | str, tenant_id: uuid.UUID, *args: Any,
            job_id: str | None = None) -> str:
    """Run ``job(tenant_session, *args)`` once ``session``'s current transaction commits
    (never, if it rolls back). ``job`` is a registered job's name or function.

    :return: the job id (``job_id`` or a new one), known before the job runs.
    """
    from servq.core.plugins.app import get_plugins

    name = get_plugins().resolve_job(job)
    if name is None:
        raise UnknownJob(job if isinstance(job, str) else repr(job))
    app = current_app._get_current_object()
    job_id = job_id or uuid.uuid4().hex
    if not session.in_transaction():
        # Nothing has run in this session yet: without a transaction to belong to, the
        # job would survive a rollback and go out with whatever commits next.
        session.begin()
    session.after_commit(lambda: dispatch(app, name, str(tenant_id), list(args), job_id))
    return job_id


def dispatch(app: Flask, name: str, tenant_id: str, args: list, job_id: str) -> None:
    """Hand the job named ``name`` to rq, or run it now when there is no Redis."""
    queue = app.extensions["servq.queue"]
    metrics.JOBS_ENQUEUED.labels(name).inc()
    if queue is None:
        with app.app_context():
            try:
                run_job(name, tenant_id, *args)
            except Exception:  # the caller has committed already; the job records its failure
                log.exception("inline job %s failed", name)
        return
    from servq.core.plugins.app import get_plugins

    stable = get_plugins(app).resolve_job(name)
    if stable is None:
        raise UnknownJob(name)
    queue.enqueue(stable, tenant_id, *args, job_id=job_id,
                  retry=Retry(max=3, interval=[10, 60, 300]))


def run_job(name: str, tenant_id: str, *args: Any) -> Any:
    """Run a registered job (by its name, or its old ``module:qualname`` alias) for one
    tenant with its own tenant-scoped session."""
    from servq.core.db.session import lost_write_lock, new_session
    from servq.core.plugins.app import get_plugins

    plugins = get_plugins()
    stable = plugins.resolve_job(name)
    if stable is None:
        raise UnknownJob(name)
    fn = plugins.jobs[stable]
    tenant = uuid.UUID(tenant_id)
    session = new_session(current_app, tenant)
    try:
        try:
            result = fn(session, *args)
        except OperationalError as exc:
            # SQLite: the job read, then could not write while another writer was about
            # (a plain BEGIN is never let wait for the lock). Jobs are idempotent: it
            # runs once more, its transactions taking the write lock at BEGIN.
            if not lost_write_lock(exc):
                raise
            session.close()
            log.info("job %s lost SQLite's write lock; running it again as a writer", stable)
            session = new_session(current_app, tenant, writer=True)
            result = fn(session, *args)
    except BaseException:
        metrics.JOBS_FAILED.labels(stable).inc()
        raise
    finally:
        session.close()
    metrics.JOBS_FINISHED.labels(stable).inc()
    return result


@dataclass
class FanOut:
    """What :func:`fan_out` did with one job over many tenants."""

    tenants: int = 0
    #: handed to rq (one job per tenant)
    enqueued: int = 0
    #: not handed to rq: the tenant's previous job of this name is still queued or running
    pending: int = 0
    #: ``{tenant slug: result}`` of the jobs run here (no Redis, or ``inline``)
    results: dict[str, Any] = field(default_factory=dict)
    #: ``{tenant slug: "Error: message"}`` of the jobs run here that raised
    failed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"tenants": self.tenants, "enqueued": self.enqueued, "pending": self.pending,
                "ran": len(self.results), "failed": sorted(self.failed)}


_LAST_JOB_KEY = "servq:fanout:{queue}:{name}"
#: Seconds the hash of last jobs outlives its last round (a day: past any job's retries).
_LAST_JOB_TTL = 24 * 3600
#: rq statuses of a job that has not ended: a tenant's next job waits for it to end.
_NOT_ENDED = frozenset({"queued", "scheduled", "deferred", "started"})


def fan_out(app: Flask, name: str, tenants: Iterable[tuple[Any, str]], args: list, *,
            job_id: Callable[[Any], str], inline: bool = False) -> FanOut:
    """Run the registered job ``name`` once per tenant (``(tenant id, slug)`` pairs), each
    with its own tenant-scoped session and transaction.

    With Redis (and not ``inline``) each tenant's run is an rq job of its own (id
    ``job_id(tenant id)``), so that more workers finish the round sooner. A tenant whose
    previous job of this name (a Redis hash remembers it) is still queued or running gets
    none: workers that fall behind are not buried under a growing queue, and the tenant
    is served again by the first round after that job ends. rq retries a failed job
    (:func:`dispatch`), and the next round enqueues it again anyway.

    Without Redis, or ``inline`` (a command run by an operator): the jobs run here, one
    tenant after another. A tenant's job that raises is logged and counted
    (``servq_jobs_failed_total``, and :attr:`FanOut.failed`; what it had not committed is
    rolled back); the other tenants still run, and the next round runs it again. Every job run this way must be idempotent.
    """
    tenants = list(tenants)
    report = FanOut(tenants=len(tenants))
    queue = app.extensions["servq.queue"]
    if queue is None or inline:
        for tenant_id, slug in tenants:
            try:
                with app.app_context():
                    report.results[slug] = run_job(name, str(tenant_id), *args)
            except Exception as exc:  # one tenant's failure is not the others'
                log.exception("job %s of tenant %s failed; the other tenants go on", name, slug)
                report.failed[slug] = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
        return report
    key = _LAST_JOB_KEY.format(queue=queue.name, name=name)
    last = dict(zip((str(t) for t, _ in tenants),
                    queue.connection.hmget(key, [str(t) for t, _ in tenants]) if tenants else []))
    previous = [v.decode() for v in last.values() if v is not None]
    ended = set(previous)
    for job in RqJob.fetch_many(previous, connection=queue.connection, serializer=JSONSerializer):
        if job is not None and job.get_status(refresh=False) in _NOT_ENDED:
            ended.discard(job.id)
    started: dict[str, str] = {}
    for tenant_id, _slug in tenants:
        held = last.get(str(tenant_id))
        if held is not None and held.decode() not in ended:
            report.pending += 1
            continue
        this = job_id(tenant_id)
        dispatch(app, name, str(tenant_id), list(args), this)
        started[str(tenant_id)] = this
        report.enqueued += 1
    if started:
        pipe = queue.connection.pipeline()
        pipe.hset(key, mapping=started)
        pipe.expire(key, _LAST_JOB_TTL)  # a tenant deleted meanwhile is not kept for ever
        pipe.execute()
    return report


#: rq function names that are not a tenant job's name: app-wide functions registered by
#: their owners (:func:`worker_function`; the deadline tick), and the names an older
#: release queued under.
_WORKER_FUNCTIONS: dict[str, Callable[..., Any]] = {
    # An older release's tenant jobs were ``core.jobs.run_job(module:qualname, tenant id,
    # *args)``. Transitional: the alias goes away in the next release.
    "core.jobs.run_job": run_job,
}


def worker_function(name: str, *aliases: str) -> Callable[[Callable], Callable]:
    """Decorator: rq runs the function for a job whose function name is ``name`` (or one
    of ``aliases``, names an older release queued it under), inside the worker's app
    context and with the job's own arguments (no tenant session: for app-wide work such
    as the deadline tick, which a package above jobs registers here when it is imported).

    Like a job name, ``name`` is stored in Redis and must never change; a name is owned by
    one function (registering another one under it is a ``ValueError``).
    """

    def register(fn: Callable) -> Callable:
        for key in (name, *aliases):
            held = _WORKER_FUNCTIONS.get(key)
            if held is not None and (held.__module__, held.__qualname__) != (fn.__module__, fn.__qualname__):
                raise ValueError(f"rq function name {key!r} is already {held.__module__}.{held.__qualname__}")
            _WORKER_FUNCTIONS[key] = fn
        return fn

    return register


def _worker_functions() -> dict[str, Callable[..., Any]]:
    """rq function names that are not a tenant job's name (see :func:`worker_function`)."""
    return _WORKER_FUNCTIONS


class ServqJob(RqJob):
    """An rq job whose function name is a stable name, never a module path: a registered
    job's name (or its old ``module:qualname``), run by :func:`run_job` with the tenant id
    first, or one of :func:`_worker_functions`. Resolved in the app's context (the worker
    runs every job inside it), so moving a module leaves queued jobs runnable."""

    @property
    def func(self):
        name = self.func_name
        special = _worker_functions().get(name)
        if special is not None:
            return special
        if name is not None and self.instance is None:
            from servq.core.plugins.app import get_plugins

            stable = get_plugins().resolve_job(name)
            if stable is not None:
                return functools.partial(run_job, stable)
        return super().func


class ParentBoundScheduler(RQScheduler):
    """rq's scheduler process, which stops (releasing its locks) once the worker that
    forked it is gone: a worker killed with SIGKILL leaves no scheduler behind holding
    the scheduler lock."""

    _parent_pid: int | None = None

    def start(self):
        self._parent_pid = os.getpid()
        return super().start()

    def heartbeat(self):  # called every ``interval`` (1 s) by the scheduler's loop
        if self._parent_pid is not None and os.getppid() != self._parent_pid:
            self.log.warning("Scheduler: worker %s is gone; stopping", self._parent_pid)
            self.request_stop()
        super().heartbeat()


class AppWorker(SimpleWorker):
    """An rq worker that runs every job inside the servq app's context.

    rq's ``SimpleWorker`` runs a job in its own process and, unlike the forking worker,
    sends no heartbeat while the job runs, so the job's entry in the started-job
    registry had to outlive the whole job timeout: a job whose worker was killed stayed
    ``started`` for minutes. Here a thread heartbeats every ``heartbeat_interval``
    seconds while a job runs, and the entry expires ``abandoned_after`` seconds after
    the last heartbeat; the registry cleanup (every ``maintenance_interval`` seconds, by
    any worker) then hands the abandoned job to its ``Retry``.
    """

    def __init__(self, *args, app: Flask, heartbeat_interval: int = 15, abandoned_after: int = 45,
                 **kwargs):
        if abandoned_after <= heartbeat_interval:
            raise ValueError(f"JOB_ABANDONED_AFTER ({abandoned_after}) must be longer than "
                             f"JOB_HEARTBEAT_INTERVAL ({heartbeat_interval})")
        super().__init__(*args, job_monitoring_interval=heartbeat_interval, **kwargs)
        self.app = app
        self.abandoned_after = abandoned_after

    #: How long the thread that listens for rq's worker commands blocks on one read.
    COMMAND_POLL_SECONDS = 1

    def subscribe(self):
        """rq's own, listening with a short read: rq waits 60 s per read, and redis-py 8's
        ``PubSubWorkerThread.stop()`` joins the thread, so every worker's teardown (a
        ``work(burst=True)``, a ``servq worker`` stopping) could hang for up to a minute
        when it came before the subscription was confirmed."""
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=self.COMMAND_POLL_SECONDS, daemon=True,
            exception_handler=self._pubsub_exception_handler)

    def perform_job(self, job, queue, *args, **kwargs):
        with self.app.app_context():
            return super().perform_job(job, queue, *args, **kwargs)

    def get_heartbeat_ttl(self, job) -> int:
        """How long a running job's registry entry lives after each heartbeat."""
        return self.abandoned_after

    @property
    def dequeue_timeout(self) -> int:
        # An idle worker waits for a job at most until its next registry cleanup is due
        # (rq waits worker_ttl - 15 = 405 s, which also held the cleanup back).
        return max(1, min(super().dequeue_timeout, self.maintenance_interval))

    def execute_job(self, job, queue):
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.job_monitoring_interval):
                if self.execution is None:
                    continue
                try:
                    self.maintain_heartbeats(job)
                except Exception:  # Redis unreachable for a moment: the next beat may do
                    log.warning("heartbeat of job %s failed", job.id, exc_info=True)

        thread = threading.Thread(target=beat, name=f"heartbeat {job.id}", daemon=True)
        thread.start()
        try:
            return super().execute_job(job, queue)
        finally:
            stop.set()
            thread.join()

    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO",
                         date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
                         log_format: str = DEFAULT_LOGGING_FORMAT):
        # rq's own method with ParentBoundScheduler instead of RQScheduler.
        self.scheduler = ParentBoundScheduler(
            self.queues, connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format, log_format=log_format, serializer=self.serializer)
        self.scheduler.acquire_locks()
        if self.scheduler.acquired_locks:
            if burst:
                try:
                    self.scheduler.register_birth()
                    self.scheduler.enqueue_scheduled_jobs()
                finally:
                    self.scheduler.release_locks()
                    self.scheduler.register_death()
            else:
                self.scheduler.start()


def make_worker(app: Flask) -> AppWorker:
    """The worker of ``servq worker`` (with the rq scheduler for timed jobs); its
    heartbeat and registry-cleanup intervals come from the app's ``JOB_*`` settings."""
    queue = app.extensions["servq.queue"]
    if queue is None:
        raise RuntimeError("REDIS_URL is not set: without Redis, jobs run inline and need no worker")
    return AppWorker([queue], connection=queue.connection, serializer=JSONSerializer, app=app,
                     job_class=ServqJob,
                     heartbeat_interval=int(app.config.get("JOB_HEARTBEAT_INTERVAL", 15)),
                     abandoned_after=int(app.config.get("JOB_ABANDONED_AFTER", 45)),
                     maintenance_interval=int(app.config.get("JOB_MAINTENANCE_INTERVAL", 30)))
