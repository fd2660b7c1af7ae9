"""Work that reads, then writes, while another transaction writes: reads that write on the
way (a token's first use in a minute, the audit event of a read of personal data, standards
adopted on first read) answer, never a 503 (``core.db.session.rerun_as_writer``); jobs (the
deadline scan of ``servq deadlines scan``) do their work, never fail for it
(``core.jobs.run_job``). Both wait their turn.

On SQLite a GET reads in a plain ``BEGIN``; SQLite never lets such a transaction wait for
the write lock, so before the rerun a writer holding it for a moment turned the read into
"The database is busy or unavailable; retry.", and a job's first write failed. On
PostgreSQL the same tests show the work done beside an open writing transaction.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timedelta, timezone

import time_machine
from click.testing import CliRunner
from sqlalchemy import func, select, text

from servq.cli import make_cli
from servq.core.models import AuditEvent, Token
from tests.test_clocks import CALLBACKS
from tests.test_quality_files import CUSTOMER

RECORDS = "/api/v1/records"


class Writer:
    """Another connection in a writing transaction for ``hold`` seconds (``None``: until
    the ``with`` block ends); on SQLite it holds the database's write lock (``BEGIN
    IMMEDIATE``) the whole time."""

    def __init__(self, app, hold: float | None = 0.3):
        self.hold = hold
        self.engine = app.extensions.get("servq.write_engine") or app.extensions["servq.engine"]
        self.holding, self.released, self.error = threading.Event(), threading.Event(), None
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        try:
            with self.engine.connect() as conn, conn.begin():
                conn.execute(text("SELECT 1"))
                self.holding.set()
                if not self.released.wait(10):
                    self.error = "still holding after 10 s: something waited for this writer"
        except Exception as exc:  # pragma: no cover - reported by __exit__
            self.error = exc
            self.holding.set()

    def __enter__(self):
        self.thread.start()
        assert self.holding.wait(10)
        if self.hold is not None:
            # Let go a moment after the read has begun (on SQLite: failed to write once).
            threading.Timer(self.hold, self.released.set).start()
        return self

    def __exit__(self, *exc):
        self.released.set()
        self.thread.join(10)
        assert self.error is None, self.error


def _audited_reads(tenant, record_id) -> int:
    with tenant.session() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "personal_data_read", AuditEvent.entity_id == uuid.UUID(record_id)))


def test_a_read_of_personal_data_waits_for_a_writer_and_is_audited_once(app, acme):
    created = acme.api.post(RECORDS, json={"kind": "complaint", "data": {
        "channel": "hotline", "description": "Rude at check-in", "customer": CUSTOMER}})
    assert created.status_code == 201, created.json
    record_id = created.json["id"]
    before = _audited_reads(acme, record_id)
    with Writer(app):
        listed = acme.api.get(RECORDS, query_string={"kind": "complaint"})
    assert listed.status_code == 200, listed.json
    [item] = listed.json
    assert item["data"]["customer"] == CUSTOMER  # in clear: an owner's read, audited
    assert _audited_reads(acme, record_id) == before + 1  # once, not once per attempt


def _used_tokens(tenant) -> int:
    with tenant.session() as s:
        return s.scalar(select(func.count()).select_from(Token).where(Token.last_used_at.is_not(None)))


def test_a_tokens_first_use_waits_for_a_writer(app, acme):
    viewer = acme.as_role("viewer")
    before = _used_tokens(acme)
    with Writer(app):
        listed = viewer.get(RECORDS)
    assert listed.status_code == 200, listed.json
    assert _used_tokens(acme) == before + 1  # the viewer's token: its use recorded


def test_a_read_that_writes_nothing_runs_beside_a_writer(app, acme):
    acme.api.get(RECORDS)  # the token's use recorded: the next reads write nothing
    with Writer(app, hold=None):  # held until the reads are done: they never wait for it
        assert acme.api.get(RECORDS).status_code == 200
        assert acme.api.get("/api/v1/sites").status_code == 200


def test_a_first_read_of_standards_adopts_them_while_a_writer_writes(app, acme):
    acme.api.get(RECORDS)  # the token's use recorded: only the adoption writes
    with Writer(app):
        listed = acme.api.get("/api/v1/standards")
    assert listed.status_code == 200, listed.json
    assert listed.json  # the defaults adopted on this first read
    assert acme.api.get("/api/v1/standards").json == listed.json


T0 = datetime(2026, 11, 9, 2, 0, tzinfo=timezone.utc)


def test_the_deadline_scan_records_a_breach_while_a_writer_writes(app, acme):
    assert acme.api.put("/api/v1/standards/acme.callbacks", json={"document": CALLBACKS}).status_code == 201
    with time_machine.travel(T0, tick=False):
        record = acme.api.post(RECORDS, json={"kind": "observation", "data": {"title": "Call me"}}).json
    with time_machine.travel(T0 + timedelta(hours=2, minutes=1), tick=False):
        with Writer(app):
            result = CliRunner().invoke(make_cli(app_factory=lambda: app),
                                        ["deadlines", "scan", "--json", "--tenant", acme.slug])
        assert result.exit_code == 0, result.output  # 1, naming the tenant, when its scan failed
        assert json.loads(result.output)[acme.slug]["breaches"] == 1
        [clock] = acme.api.get(f"{RECORDS}/{record['id']}/clocks").json
    assert clock["state"] == "breached"
    assert datetime.fromisoformat(clock["breached_at"]) == T0 + timedelta(hours=2)
