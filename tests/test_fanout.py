"""The breach watch and the KPI refresh fan out per tenant (``core.jobs.fan_out``):
without Redis (or from ``servq deadlines scan`` / ``servq kpis refresh``) one tenant after
another in this process, with Redis (``--enqueue``, the worker's tick) one rq job per
tenant. Either way each tenant gets the result it gets when scanned or refreshed alone,
and a tenant whose job fails is rolled back, named and counted while the others are done;
the next run does it. Time is pinned with ``time_machine``."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from click.testing import CliRunner

from servq.cli import make_cli
from servq.core.deadlines import breaches
from servq.core.jobs import make_worker
from servq.core.kpis import rollups
from tests.test_clocks import CN_CALENDAR, clocks_of, complaint, local, set_calendar
from tests.test_kpi_rollups import expected_rows, rollup_rows, state
from tests.test_kpis_records import create, prepare, random_specs

FILED = local(2026, 9, 7, 10, 0)        # a Monday, working hours
LATER = local(2026, 9, 30, 10, 0)       # every clock of a complaint filed then is long breached
NOW = datetime(2026, 11, 20, 4, 0, tzinfo=timezone.utc)


def cli(app, *args):
    return CliRunner().invoke(make_cli(app_factory=lambda: app), list(args))


def fail_for(monkeypatch, module, name, tenant):
    """Make ``module.name`` raise for ``tenant`` only."""
    real = getattr(module, name)

    def patched(session, *args, **kwargs):
        if session.tenant_id == tenant.id:
            raise RuntimeError(f"{tenant.slug} is broken")
        return real(session, *args, **kwargs)

    monkeypatch.setattr(module, name, patched)


def timeless(counts: dict) -> dict:
    return {k: v for k, v in counts.items() if not k.endswith("_seconds")}


def file_complaints(tenant, n=2) -> list[str]:
    set_calendar(tenant, CN_CALENDAR)
    with time_machine.travel(FILED, tick=False):
        return [complaint(tenant)["id"] for _ in range(n)]


def states(tenant, ids) -> list[str]:
    with time_machine.travel(LATER, tick=False):
        return sorted(clock["state"] for record in ids for clock in clocks_of(tenant, record).values())


def test_the_watch_scans_every_tenant_and_a_failing_one_does_not_stop_the_others(app, acme, globex, monkeypatch):
    a, g = file_complaints(acme), file_complaints(globex)
    fail_for(monkeypatch, breaches, "scan", acme)  # acme comes first (by slug)
    with time_machine.travel(LATER, tick=False):
        result = cli(app, "deadlines", "scan", "--json")
    assert result.exit_code == 1
    assert "acme: scan failed: RuntimeError: acme is broken" in result.stderr
    assert "failed for 1 of 2 tenant(s)" in result.stderr
    first = json.loads(result.stdout)
    assert set(first) == {"globex"} and first["globex"]["breaches"] == 4
    assert set(states(globex, g)) == {"breached"}
    assert set(states(acme, a)) == {"running"}  # rolled back: nothing of acme's scan stays

    monkeypatch.undo()  # the next run retries acme and finds what globex's found
    with time_machine.travel(LATER, tick=False):
        result = cli(app, "deadlines", "scan", "--json")
    assert result.exit_code == 0, result.output
    second = json.loads(result.stdout)
    assert timeless(second["acme"]) == timeless(first["globex"])
    assert second["globex"]["breaches"] == 0  # idempotent: nothing new for globex
    assert states(acme, a) == states(globex, g)


def test_one_tenant_scan_equals_its_share_of_the_all_tenant_scan(app, acme, globex):
    file_complaints(acme), file_complaints(globex)
    with time_machine.travel(LATER, tick=False):
        alone = json.loads(cli(app, "deadlines", "scan", "--json", "--tenant", "globex").stdout)
        every = cli(app, "deadlines", "scan", "--json")
    assert every.exit_code == 0, every.output
    every = json.loads(every.stdout)
    assert timeless(every["acme"]) == timeless(alone["globex"]) and every["globex"]["breaches"] == 0


def test_the_kpi_refresh_goes_on_past_a_failing_tenant(app, acme, globex, monkeypatch):
    with time_machine.travel(NOW, tick=False):
        ta, tg = prepare(acme), prepare(globex)
        create(ta, random_specs(ta, random.Random(1), 40, NOW, 10))
        create(tg, random_specs(tg, random.Random(2), 40, NOW, 10))
        fail_for(monkeypatch, rollups, "refresh", acme)
        result = cli(app, "kpis", "refresh", "--json")
        assert result.exit_code == 1
        assert "acme: refresh failed: RuntimeError: acme is broken" in result.stderr
        assert set(json.loads(result.stdout)) == {"globex"}
        assert state(acme) is None and rollup_rows(acme) == {}
        assert rollup_rows(globex) == expected_rows(tg, state(globex).rolled_until)

        monkeypatch.undo()
        result = cli(app, "kpis", "refresh", "--json")
        assert result.exit_code == 0, result.output
        again = json.loads(result.stdout)
        assert again["acme"]["rebuilt"] is True and again["globex"]["rows"] == 0
        assert rollup_rows(acme) == expected_rows(ta, state(acme).rolled_until)
        assert state(acme).rolled_until == state(globex).rolled_until


def test_enqueue_needs_redis(app, acme):
    if app.extensions["servq.queue"] is not None:
        pytest.skip("runs without Redis")
    for command in (("kpis", "refresh"), ("deadlines", "scan")):
        result = cli(app, *command, "--enqueue")
        assert result.exit_code == 1 and "--enqueue needs REDIS_URL" in result.stderr


@pytest.mark.redis
def test_on_rq_each_tenant_is_a_job_and_a_pending_one_is_not_enqueued_twice(app, acme, globex, monkeypatch):
    queue = app.extensions["servq.queue"]
    with time_machine.travel(NOW, tick=False):
        ta, tg = prepare(acme), prepare(globex)
        create(ta, random_specs(ta, random.Random(3), 30, NOW, 10))
        create(tg, random_specs(tg, random.Random(4), 30, NOW, 10))
        result = cli(app, "kpis", "refresh", "--enqueue", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {"tenants": 2, "enqueued": 2, "pending": 0, "ran": 0, "failed": []}
        ids = sorted(job.id for job in queue.jobs)
        assert ids == sorted(f"kpi-rollups-{t.id}-{int(NOW.timestamp()) // 3600}" for t in (acme, globex))
        # Run again before a worker took them: nothing more is queued.
        again = json.loads(cli(app, "kpis", "refresh", "--enqueue", "--json").stdout)
        assert again["enqueued"] == 0 and again["pending"] == 2 and len(queue.jobs) == 2

        fail_for(monkeypatch, rollups, "refresh", acme)
        make_worker(app).work(burst=True)  # acme's job fails (rq retries it later), globex's runs
        assert rollup_rows(globex) == expected_rows(tg, state(globex).rolled_until)
        assert state(acme) is None
        assert len(queue.scheduled_job_registry.get_job_ids()) == 1  # acme's, waiting for its retry
        # acme's retry is pending: the next round enqueues globex only.
        third = json.loads(cli(app, "kpis", "refresh", "--enqueue", "--json").stdout)
        assert third["enqueued"] == 1 and third["pending"] == 1

        monkeypatch.undo()
        for job_id in queue.scheduled_job_registry.get_job_ids():  # the retry's time has come
            queue.scheduled_job_registry.remove(job_id)
            queue.enqueue_job(queue.fetch_job(job_id))
        make_worker(app).work(burst=True)
        assert rollup_rows(acme) == expected_rows(ta, state(acme).rolled_until)
        fourth = json.loads(cli(app, "kpis", "refresh", "--enqueue", "--json").stdout)
        assert fourth["enqueued"] == 2 and fourth["pending"] == 0


@pytest.mark.redis
def test_on_rq_the_watch_scans_each_tenant_as_a_job(app, acme, globex):
    a, g = file_complaints(acme), file_complaints(globex)
    queue = app.extensions["servq.queue"]
    with time_machine.travel(LATER, tick=False):
        result = cli(app, "deadlines", "scan", "--enqueue", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["enqueued"] == 2
        minute = int(LATER.timestamp()) // 60
        assert sorted(job.id for job in queue.jobs) == sorted(f"deadlines-{t.id}-{minute}" for t in (acme, globex))
        make_worker(app).work(burst=True)
    assert set(states(acme, a)) == set(states(globex, g)) == {"breached"}
