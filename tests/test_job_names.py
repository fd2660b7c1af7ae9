"""Stable names: jobs are queued by the names their owners chose, jobs an older release
queued under ``module:qualname`` still run, and core's plugin ids are what they were."""

from __future__ import annotations

import json
import uuid
import zlib

import pytest
from rq.job import Job as RqJob
from rq.serializers import JSONSerializer
from sqlalchemy import select

from servq.core import create_app
from servq.core.config import DEFAULT_PLUGINS
from servq.core.jobs import dispatch, make_worker
from servq.core.models import AuditEvent
from servq.core.plugins import Job, hookimpl
from servq.core.plugins.jobs import legacy_name
from servq.core.plugins.manager import PluginError
from servq.core.plugins.app import get_plugins


def note(session, text: str) -> None:
    """A test job: writes an audit event in its own tenant-scoped session."""
    session.add(AuditEvent(entity="job", entity_id=uuid.uuid4(), action=text))
    session.commit()


class NamedJobsPlugin:
    @hookimpl
    def register_jobs(self):
        return [Job("named.note", note)]


#: What a job of this module was queued under before names were stable.
OLD_NOTE_NAME = "tests.test_job_names:note"

#: Core's jobs: stable name → the ``module:qualname`` an older release queued them under.
CORE_JOBS = {
    "deadlines.scan": "core.deadlines:scan_tenant",
    "exports.build": "core.kinds.exports:run_export",
    "kpis.refresh": "core.kpis.rollups:refresh_kpi_rollups",
    "notify.deliver": "core.notify:deliver",
    "reports.build": "core.reports.plugin:build_report_run",
    "standards.rescore": "core.standards.rescore:rescore_standard",
}


@pytest.fixture
def app_config(app_config):
    app_config["EXTRA_PLUGINS"] = [("named", NamedJobsPlugin())]
    return app_config


def notes(tenant) -> list[str]:
    with tenant.session() as s:
        return list(s.scalars(select(AuditEvent.action).where(AuditEvent.entity == "job")
                              .order_by(AuditEvent.at)))


def test_core_jobs_have_stable_names_and_their_old_names_as_aliases(app):
    plugins = get_plugins(app)
    for name, old in CORE_JOBS.items():
        assert name in plugins.jobs, name
        assert plugins.resolve_job(old) == name
        assert plugins.jobs[name] is plugins.jobs[plugins.resolve_job(old)]
    assert plugins.resolve_job("named.note") == "named.note"
    assert plugins.resolve_job(OLD_NOTE_NAME) == "named.note"
    assert plugins.resolve_job("nobody.nothing") is None


def test_old_names_survive_the_move_under_the_servq_namespace():
    def deliver(session):
        return None

    assert legacy_name(deliver) == "tests.test_job_names:test_old_names_survive_the_move_under" \
        "_the_servq_namespace.<locals>.deliver"
    deliver.__module__ = "servq.core.notify"  # where the namespace move put core.notify
    deliver.__qualname__ = "deliver"
    assert legacy_name(deliver) == "core.notify:deliver"


def test_a_job_queued_under_its_old_name_still_runs(app, acme):
    queue = app.extensions["servq.queue"]
    if queue is None:
        # No Redis: the inline path, handed the old name as an old release would.
        dispatch(app, OLD_NOTE_NAME, str(acme.id), ["old inline"], "old-1")
        assert notes(acme) == ["old inline"]
        return
    # Exactly what the previous release put into Redis: rq's function ``core.jobs.run_job``
    # with the job's ``module:qualname`` first.
    queue.enqueue("core.jobs.run_job", OLD_NOTE_NAME, str(acme.id), "old rq", job_id="old-1")
    make_worker(app).work(burst=True)
    job = RqJob.fetch("old-1", connection=queue.connection, serializer=JSONSerializer)
    assert job.get_status() == "finished", job.latest_result()
    assert notes(acme) == ["old rq"]


@pytest.mark.redis
def test_a_deadline_tick_queued_under_its_old_name_still_runs(app, acme):
    queue = app.extensions["servq.queue"]
    queue.enqueue("core.deadlines.tick", job_id="old-tick")  # an older release's tick
    make_worker(app).work(burst=True)
    job = RqJob.fetch("old-tick", connection=queue.connection, serializer=JSONSerializer)
    assert job.get_status() == "finished", job.latest_result()
    assert "tenants_scanned_at" in job.return_value()
    # It scheduled the next tick under the stable name.
    [scheduled] = queue.scheduled_job_registry.get_job_ids()
    assert RqJob.fetch(scheduled, connection=queue.connection,
                       serializer=JSONSerializer).func_name == "deadlines.tick"


@pytest.mark.redis
def test_a_core_job_queued_under_its_old_name_still_runs(app, acme):
    queue = app.extensions["servq.queue"]
    r = acme.api.post("/api/v1/tenant/exports")
    assert r.status_code == 202, r.json
    export_id = r.json["id"]
    queue.empty()  # drop today's job: an older release's job does the work instead
    queue.enqueue("core.jobs.run_job", CORE_JOBS["exports.build"], str(acme.id), export_id,
                  job_id="old-export")
    make_worker(app).work(burst=True)
    assert acme.api.get(f"/api/v1/tenant/exports/{export_id}").json["status"] == "done"


@pytest.mark.redis
def test_a_job_enqueued_today_is_stored_under_its_stable_name(app, acme):
    queue = app.extensions["servq.queue"]
    r = acme.api.post("/api/v1/tenant/exports")
    assert r.status_code == 202, r.json
    export_id = r.json["id"]
    job = RqJob.fetch(export_id, connection=queue.connection, serializer=JSONSerializer)
    assert job.func_name == "exports.build"
    assert job.args == [str(acme.id), export_id]
    # The payload as stored (rq compresses it): no module path in it.
    raw = json.loads(zlib.decompress(queue.connection.hget(job.key, "data")))
    assert raw == ["exports.build", None, [str(acme.id), export_id], {}]
    make_worker(app).work(burst=True)
    assert acme.api.get(f"/api/v1/tenant/exports/{export_id}").json["status"] == "done"


def test_core_plugin_ids_are_unchanged(acme):
    kinds = {k["name"]: k["plugin"] for k in acme.api.get("/api/v1/kinds").json}
    assert kinds["observation"] == "core.kinds.observation"
    assert kinds["inspection"] == "core.kinds.inspection"
    assert kinds["complaint"] == "core.kinds.complaint"
    metrics = {m["name"]: m["plugin"] for m in acme.api.get("/api/v1/kpis/metrics").json}
    assert set(metrics.values()) == {"core.kpis.plugin"}
    r = acme.api.get("/api/v1/standards/core.complaint")
    assert r.status_code == 200, r.json
    assert r.json["baseline"] == "core.kinds.complaint:core.complaint@1"
    with acme.session() as s:
        from servq.core.models import StandardVersion

        stored = set(s.scalars(select(StandardVersion.baseline)))
    assert stored == {"core.kinds.complaint:core.complaint@1"}


def _plugin(*jobs):
    class P:
        @hookimpl
        def register_jobs(self):
            return list(jobs)
    return P()


def test_a_duplicate_job_name_is_refused_at_startup(app_config):
    dup = _plugin(Job("dup.one", note), Job("dup.one", lambda session: None))
    with pytest.raises(PluginError, match=r"job 'dup\.one' registered twice"):
        create_app({**app_config, "EXTRA_PLUGINS": [("dup", dup)]})
    # A name core already uses.
    clash = _plugin(Job("notify.deliver", note))
    with pytest.raises(PluginError, match="'clash.<name>'"):
        create_app({**app_config, "EXTRA_PLUGINS": [("clash", clash)]})


def test_a_core_plugin_module_needs_a_stable_id(app_config):
    with pytest.raises(PluginError, match="add it to CORE_PLUGINS"):
        create_app({**app_config, "PLUGINS": [*DEFAULT_PLUGINS, "core.jobs"]})


def test_a_job_without_a_name_is_refused_at_startup(app_config):
    with pytest.raises(PluginError, match=r"register_jobs.*Job\(name, fn\)"):
        create_app({**app_config, "EXTRA_PLUGINS": [("bare", _plugin(note))]})
