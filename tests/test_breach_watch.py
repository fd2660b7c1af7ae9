"""The breach watch with a real ``servq worker`` and Redis: clocks found breached by the
scheduled every-minute tick, without any request.

Runs only with ``TEST_REDIS_URL`` (the worker needs Redis); the database is the test
database (SQLite file or PostgreSQL as the app role), shared with the worker process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from servq.core.db import utcnow
from servq.core.models import Clock, OutboxEvent, Record
from tests.conftest import TEST_REDIS_URL

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
STANDARD = {
    "code": "acme.quick_reply", "version": 1, "title": {"en": "Quick reply", "zh": "快速回复"},
    "applies_to": ["observation"], "method": "weighted", "pass_mark": 100,
    "items": [{"code": "replied", "title": {"en": "Replied within a minute", "zh": "一分钟内回复"},
               "dimension": "responsiveness", "escalate_to": ["manager"],
               "rule": {"type": "deadline", "start": "occurred_at", "stop": "timestamps.replied_at",
                        "limit": "1m"}}]}


@pytest.fixture
def worker(app, app_config, tmp_path):
    """``servq worker`` in a subprocess on the test database and the test Redis."""
    env = {**os.environ, "DATABASE_URL": app_config["DATABASE_URL"], "REDIS_URL": TEST_REDIS_URL,
           "SERVQ_INSTANCE_PATH": str(tmp_path / "worker"), "SECRET_KEY": "test",
           "PYTHONPATH": str(ROOT)}
    if app_config.get("DATABASE_APP_ROLE"):
        env["SERVQ_DB_ROLE"] = app_config["DATABASE_APP_ROLE"]
    log = open(tmp_path / "worker.log", "wb")
    proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.main(['worker'])"], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if proc.returncode not in (0, -15, 1):  # pragma: no cover - shows why on failure
            print((tmp_path / "worker.log").read_text()[-4000:])


def wait_for(check, seconds: float, what: str, log: Path):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"{what} not within {seconds:.0f} s; worker log:\n"
                         + log.read_text(errors="replace")[-4000:])


def test_the_scheduled_tick_finds_breaches_without_any_request(acme, app, worker, tmp_path):
    log = tmp_path / "worker.log"
    response = acme.api.put(f"/api/v1/standards/{STANDARD['code']}", json={"document": STANDARD})
    assert response.status_code in (200, 201), response.json

    # A complaint filed three weeks ago: both of its clocks are long past their targets.
    old = acme.api.post("/api/v1/records", json={
        "kind": "complaint", "occurred_at": (utcnow() - timedelta(days=21)).isoformat(),
        "data": {"channel": "email", "description": "Nobody called back"}})
    assert old.status_code == 201, old.json
    # An observation whose one-minute clock started 20 s ago: at creation nothing is due
    # (its 50 % warning is 10 s away), so only the every-minute tick can find it.
    fresh = acme.api.post("/api/v1/records", json={
        "kind": "observation", "occurred_at": (utcnow() - timedelta(seconds=20)).isoformat(),
        "data": {"title": "Guest waiting at the desk"}})
    assert fresh.status_code == 201, fresh.json
    due_at = utcnow() + timedelta(seconds=40)
    # From here on: no request at all, only the database is read.

    def state_of(record_id):
        with acme.session() as session:
            clocks = session.scalars(select(Clock).where(Clock.record_id == uuid.UUID(record_id))).all()
            record = session.get(Record, (acme.id, uuid.UUID(record_id)))
            return clocks, record.escalation_level

    def escalated(record_id, clocks_expected):
        clocks, level = state_of(record_id)
        done = (len(clocks) == clocks_expected and level == clocks_expected
                and all(c.state == "breached" and c.breached_at is not None for c in clocks))
        return (clocks, level) if done else None

    clocks, level = wait_for(lambda: escalated(old.json["id"], 2), 120,
                             "the old complaint's breaches escalated", log)
    assert {c.item_code for c in clocks} == {"acknowledged_in_time", "general_resolved_in_time"}

    clocks, level = wait_for(lambda: escalated(fresh.json["id"], 1),
                             (due_at - utcnow()).total_seconds() + 120,
                             "the one-minute clock found breached by the tick", log)
    assert clocks[0].breached_at == clocks[0].due_at and level == 1
    assert clocks[0].warned == [50, 75, 100]
    assert utcnow() - clocks[0].due_at < timedelta(minutes=2)
    with acme.session() as session:
        events = [e for e in session.scalars(select(OutboxEvent).where(
            OutboxEvent.type.like("clock.%"))) if e.payload["clock_id"] == str(clocks[0].id)]
    kinds = sorted((e.type, e.payload.get("level")) for e in events)
    # The tick ran every minute: the breach and its 100 % warning are there, each once;
    # the 50 % and 75 % warnings too unless a tick came only after the due time.
    assert ("clock.breached", None) in kinds and ("clock.warning", 100) in kinds
    assert len(kinds) == len(set(kinds))
    breached = next(e for e in events if e.type == "clock.breached")
    assert breached.roles == ["manager"] and breached.payload["escalation_level"] == 1
