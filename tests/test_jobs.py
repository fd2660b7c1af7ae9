"""Jobs: enqueued only once the transaction commits, inline without Redis, rq with it."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

import servq.tenants.export
from servq.core.db.session import new_session
from servq.core.jobs import UnknownJob, dispatch, enqueue, make_worker, run_job
from servq.core.models import AuditEvent
from servq.core.plugins import Job, hookimpl

#: What the test jobs did, in order (rq's SimpleWorker runs them in this process).
CALLS: list[str] = []


def note(session, text: str) -> None:
    """A test job: writes an audit event in its own tenant-scoped session."""
    session.add(AuditEvent(entity="job", entity_id=uuid.uuid4(), action=text))
    session.commit()
    CALLS.append(text)


def explode(session, text: str) -> None:
    """A test job that always fails."""
    CALLS.append(f"exploding {text}")
    raise RuntimeError(text)


class JobsPlugin:
    @hookimpl
    def register_jobs(self):
        return [Job("jobs_test.note", note), Job("jobs_test.explode", explode)]


@pytest.fixture
def app_config(app_config):
    app_config["EXTRA_PLUGINS"] = [("jobs_test", JobsPlugin())]
    return app_config


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()
    yield
    CALLS.clear()


def notes(tenant) -> list[str]:
    with tenant.session() as s:
        return list(s.scalars(select(AuditEvent.action).where(AuditEvent.entity == "job")
                              .order_by(AuditEvent.at)))


def drain(app) -> None:
    if app.extensions["servq.queue"] is not None:
        make_worker(app).work(burst=True)


def test_rolled_back_job_never_runs(app, acme):
    with app.app_context(), new_session(app, acme.id) as s:
        enqueue(s, note, acme.id, "rolled back")
        s.rollback()
        # The next transaction of the same session commits: the dropped job stays dropped.
        enqueue(s, note, acme.id, "committed")
        s.commit()
    drain(app)
    assert CALLS == ["committed"]
    assert notes(acme) == ["committed"]
    queue = app.extensions["servq.queue"]
    assert queue is None or queue.count == 0


def test_inline_job_runs_only_after_commit(app, acme):
    app.extensions["servq.queue"] = None  # no Redis: inline
    with app.app_context(), new_session(app, acme.id) as s:
        enqueue(s, note, acme.id, "after commit")
        s.flush()
        assert CALLS == [] and notes(acme) == []
        s.commit()
        assert CALLS == ["after commit"]
    assert notes(acme) == ["after commit"]


@pytest.mark.redis
def test_queued_job_reaches_redis_only_after_commit(app, acme):
    queue = app.extensions["servq.queue"]
    with app.app_context(), new_session(app, acme.id) as s:
        job_id = enqueue(s, note, acme.id, "via rq", job_id="note-1")
        assert job_id == "note-1" and queue.count == 0
        s.commit()
    assert queue.job_ids == ["note-1"] and CALLS == []
    make_worker(app).work(burst=True)
    assert CALLS == ["via rq"] and notes(acme) == ["via rq"]


def test_unknown_job_raises(app, acme):
    def unregistered(session):
        return None

    with app.app_context(), new_session(app, acme.id) as s:
        with pytest.raises(UnknownJob):
            enqueue(s, "tests.test_jobs:nothing", acme.id)
        with pytest.raises(UnknownJob):
            enqueue(s, unregistered, acme.id)
        with pytest.raises(UnknownJob):
            run_job("tests.test_jobs:nothing", str(acme.id))
        assert not s.info.get("after_commit")


def test_failing_inline_job_does_not_break_the_caller(app, acme):
    app.extensions["servq.queue"] = None
    with app.app_context(), new_session(app, acme.id) as s:
        enqueue(s, explode, acme.id, "boom")
        enqueue(s, note, acme.id, "still runs")
        s.commit()  # does not raise: the failure is logged, later jobs still run
    assert CALLS == ["exploding boom", "still runs"]


def test_failing_export_records_its_failure(app, acme, monkeypatch):
    def broken(session):
        raise RuntimeError("disk full")

    monkeypatch.setattr(servq.tenants.export, "export_tenant", broken)
    r = acme.api.post("/api/v1/tenant/exports")
    assert r.status_code == 202  # the request is not broken by its job
    drain(app)
    status = acme.api.get(r.json["links"]["self"]).json
    assert status["status"] == "failed"
    assert status["error"] == "RuntimeError: disk full" and status["finished_at"]
    r2 = acme.api.get(r.json["links"]["file"])
    assert r2.status_code == 409 and "disk full" in r2.json["message"]

    queue = app.extensions["servq.queue"]
    if queue is not None:
        # rq keeps the failed job for a retry later (Retry with back-off).
        assert r.json["id"] in queue.scheduled_job_registry.get_job_ids()
    # The retry (by rq, or by hand) builds it: a failed export is not final.
    monkeypatch.undo()
    with app.app_context():
        dispatch(app, "core.kinds.exports:run_export", str(acme.id), [r.json["id"]], r.json["id"])
    drain(app)
    status = acme.api.get(r.json["links"]["self"]).json
    assert status["status"] == "done" and status["error"] is None


@pytest.mark.redis
def test_a_worker_stops_promptly_after_a_burst(app, acme):
    """A burst worker (``drain`` in tests, the tail of every ``servq worker``) tears down
    within seconds: its command listener reads in short steps, so stopping it never waits
    out rq's 60-second read (redis-py 8 joins the listener thread on stop)."""
    import time

    for _ in range(5):
        worker = make_worker(app)
        started = time.monotonic()
        worker.work(burst=True)
        assert time.monotonic() - started < 5
        worker.subscribe()  # the listener alone, stopped at once: the race that hung
        started = time.monotonic()
        worker.unsubscribe()
        assert time.monotonic() - started < 5
