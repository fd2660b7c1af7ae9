"""Notifications: the outbox (``emit``), signed webhook deliveries to a real local HTTP
receiver, retries with back-off (``retry_due`` and a real ``servq worker`` on Redis), and
``GET /api/v1/notifications``.

The receiver is an ``http.server`` in a thread on 127.0.0.1 (ephemeral port) that checks
each delivery's signature the way docs/webhooks.md tells receivers to, independently of
servq's own code, and answers with scripted status codes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from servq.core.notify import delivery as notify_delivery
from servq.core.notify import outbox as notify
from servq.core.jobs import dispatch, make_worker
from servq.core.models import OutboxEvent, WebhookDelivery
from tests.conftest import TEST_REDIS_URL

SECRET = "s3cret-for-the-receiver-0123456789"


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST, verifies its signature with
    ``secret`` (401 when it does not match) and answers ``statuses`` in turn (the last
    one repeats)."""

    def __init__(self, statuses=(200,), secret: str = SECRET, delay: float = 0.0, headers=None):
        self.statuses = list(statuses)
        self.secret = secret
        self.delay = delay
        self.extra_headers = headers or {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/servq"

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                timestamp = headers.get("x-servq-timestamp", "")
                expected = "sha256=" + hmac.new(receiver.secret.encode(), f"{timestamp}.".encode() + body,
                                                hashlib.sha256).hexdigest()
                verified = hmac.compare_digest(expected, headers.get("x-servq-signature", ""))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                    receiver.requests.append({"path": self.path, "headers": headers, "body": body,
                                              "json": json.loads(body), "verified": verified,
                                              "answered": status if verified else 401})
                if receiver.delay:
                    time.sleep(receiver.delay)
                if not verified:
                    status = 401
                self.send_response(status)
                for name, value in receiver.extra_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "7")
                self.end_headers()
                self.wfile.write(b"thanks!")

            def log_message(self, *args):
                pass

        return Handler

    def wait_for(self, count: int, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    """Make receivers with ``receivers(statuses...)``; all are closed after the test."""
    made = []

    def make(*statuses, **kwargs):
        receiver = Receiver(statuses or (200,), **kwargs)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


def drain(app) -> None:
    """Run the queued jobs (with Redis); inline jobs have run already."""
    if app.extensions["servq.queue"] is not None:
        make_worker(app).work(burst=True)


def add_webhook(tenant, url, event_types=("*",), secret=SECRET, **extra) -> dict:
    r = tenant.api.post("/api/v1/webhooks", json={"url": url, "event_types": list(event_types),
                                                   "secret": secret, **extra})
    assert r.status_code == 201, r.json
    return r.json


def emit(app, tenant, event_type="clock.breached", payload=None, **kwargs):
    """Emit one event in a tenant session and commit; return the event's id (or None)."""
    with app.app_context(), tenant.session() as s:
        event = notify.emit(s, event_type, payload if payload is not None else {"record_id": "r-1"}, **kwargs)
        event_id = event.id if event is not None else None
        s.commit()
    drain(app)
    return event_id


def retry_due(app, tenant, now) -> int:
    with app.app_context(), tenant.session() as s:
        count = notify_delivery.retry_due(s, now)
        s.commit()
    drain(app)
    return count


def deliveries(tenant, webhook_id) -> list[dict]:
    r = tenant.api.get(f"/api/v1/webhooks/{webhook_id}/deliveries")
    assert r.status_code == 200, r.json
    return r.json


# -- emitting and the outbox -----------------------------------------------------------------


def test_one_signed_delivery_reaches_a_real_receiver(app, acme, receivers):
    receiver = receivers(200)
    hook = add_webhook(acme, receiver.url, ["clock.breached"])
    at = datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc)
    record_id = uuid.uuid4()
    event_id = emit(app, acme, "clock.breached", {"record_id": record_id, "due_at": at, "item": "respond"},
                    roles=["manager", "admin"])

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request["verified"] and request["answered"] == 200
    assert request["path"] == "/hooks/servq"
    headers = request["headers"]
    assert headers["content-type"] == "application/json"
    assert headers["x-servq-event"] == "clock.breached"
    assert abs(int(headers["x-servq-timestamp"]) - time.time()) < 60
    assert request["json"] == {
        "id": str(event_id), "type": "clock.breached", "created_at": request["json"]["created_at"],
        "tenant_id": str(acme.id), "roles": ["manager", "admin"],
        "data": {"record_id": str(record_id), "due_at": "2024-05-01T09:30:00+00:00", "item": "respond"},
    }
    assert datetime.fromisoformat(request["json"]["created_at"]).utcoffset() == timedelta(0)
    # servq's own helper agrees with the receiver.
    assert notify_delivery.verify(SECRET, headers["x-servq-timestamp"], request["body"], headers["x-servq-signature"])

    [delivery] = deliveries(acme, hook["id"])
    assert headers["x-servq-delivery"] == delivery["id"]
    assert delivery["event_id"] == str(event_id) and delivery["event_type"] == "clock.breached"
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert delivery["last_status_code"] == 200 and delivery["last_error"] is None
    assert delivery["delivered_at"] and delivery["next_attempt_at"] is None
    assert delivery["last_duration_ms"] >= 0


def test_a_receiver_answering_500_is_retried_until_it_accepts(app, acme, receivers):
    receiver = receivers(500, 503, 200)
    hook = add_webhook(acme, receiver.url, ["clock.*"])
    emit(app, acme, "clock.warning", {"percent": 75})

    [first] = deliveries(acme, hook["id"])
    assert first["status"] == "pending" and first["attempts"] == 1
    assert first["last_status_code"] == 500 and first["last_error"].startswith("HTTP 500")
    next_at = datetime.fromisoformat(first["next_attempt_at"])
    assert timedelta(seconds=25) < next_at - datetime.fromisoformat(first["last_attempt_at"]) < timedelta(seconds=35)

    now = datetime.now(timezone.utc)
    assert retry_due(app, acme, now) == 0  # not due yet: nothing is sent
    assert len(receiver.requests) == 1

    assert retry_due(app, acme, now + timedelta(seconds=31)) == 1
    [second] = deliveries(acme, hook["id"])
    assert second["status"] == "pending" and second["attempts"] == 2 and second["last_status_code"] == 503
    # The back-off grows: 2 minutes after the second attempt.
    gap = datetime.fromisoformat(second["next_attempt_at"]) - datetime.fromisoformat(second["last_attempt_at"])
    assert timedelta(seconds=115) < gap < timedelta(seconds=125)

    assert retry_due(app, acme, now + timedelta(minutes=3)) == 1
    [done] = deliveries(acme, hook["id"])
    assert done["status"] == "delivered" and done["attempts"] == 3 and done["last_status_code"] == 200
    assert done["id"] == first["id"] and done["last_error"] is None and done["next_attempt_at"] is None

    assert [r["answered"] for r in receiver.requests] == [500, 503, 200]
    assert all(r["verified"] for r in receiver.requests)
    # One delivery id across the retries (receivers drop duplicates by it), the same body.
    assert {r["headers"]["x-servq-delivery"] for r in receiver.requests} == {first["id"]}
    assert len({r["body"] for r in receiver.requests}) == 1

    assert retry_due(app, acme, now + timedelta(days=2)) == 0  # delivered: never again
    assert len(receiver.requests) == 3


@pytest.mark.redis
def test_real_worker_delivers_and_retries_with_redis(app, app_config, acme, receivers, tmp_path):
    """A real ``servq worker`` subprocess (rq + scheduler on Redis) sends one signed delivery
    to one receiver and retries another receiver that first answers 500 until it accepts
    (rq's ``enqueue_at``, no request and no ``retry_due`` involved)."""
    happy = receivers(200)
    flaky = receivers(500, 200)
    happy_hook = add_webhook(acme, happy.url, ["clock.breached"])
    flaky_hook = add_webhook(acme, flaky.url, ["clock.*"])
    env = {**os.environ,
           "DATABASE_URL": app_config["DATABASE_URL"],
           "REDIS_URL": TEST_REDIS_URL,
           "SERVQ_INSTANCE_PATH": str(tmp_path / "worker"),
           "SERVQ_QUEUE": app.config["JOB_QUEUE"],
           "SERVQ_WEBHOOK_RETRY_DELAYS": "2,2,2",
           "SERVQ_WEBHOOK_ALLOW_PRIVATE": "1",  # the receivers listen on 127.0.0.1
           "SECRET_KEY": "worker"}
    if app_config.get("DATABASE_APP_ROLE"):
        env["SERVQ_DB_ROLE"] = app_config["DATABASE_APP_ROLE"]
    servq = Path(sys.executable).with_name("servq")
    worker = subprocess.Popen([str(servq), "worker"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        with app.app_context(), acme.session() as s:
            event = notify.emit(s, "clock.breached", {"record_id": "r-9"})
            s.commit()
        happy.wait_for(1)
        flaky.wait_for(2, seconds=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            log = deliveries(acme, flaky_hook["id"])
            if log and log[0]["status"] != "pending":
                break
            time.sleep(0.2)
    finally:
        worker.terminate()
        try:
            output = worker.communicate(timeout=30)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            worker.kill()
            output = worker.communicate()[0].decode(errors="replace")

    assert len(happy.requests) == 1, output
    assert happy.requests[0]["verified"] and happy.requests[0]["json"]["id"] == str(event.id)
    [ok] = deliveries(acme, happy_hook["id"])
    assert ok["status"] == "delivered" and ok["attempts"] == 1
    assert happy.requests[0]["headers"]["x-servq-delivery"] == ok["id"]

    assert [r["answered"] for r in flaky.requests] == [500, 200], output
    assert all(r["verified"] for r in flaky.requests)
    [retried] = deliveries(acme, flaky_hook["id"])
    assert retried["status"] == "delivered" and retried["attempts"] == 2, output
    assert {r["headers"]["x-servq-delivery"] for r in flaky.requests} == {retried["id"]}


def test_dedupe_key_makes_an_event_happen_once(app, acme, receivers):
    receiver = receivers(200)
    add_webhook(acme, receiver.url)
    first = emit(app, acme, "clock.breached", {"n": 1}, dedupe_key="clock:abc:breached")
    again = emit(app, acme, "clock.breached", {"n": 2}, dedupe_key="clock:abc:breached")
    other = emit(app, acme, "clock.breached", {"n": 3}, dedupe_key="clock:def:breached")
    assert first is not None and again is None and other is not None
    assert [r["json"]["data"]["n"] for r in receiver.requests] == [1, 3]
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == 2

    # Within one transaction, too.
    with app.app_context(), acme.session() as s:
        assert notify.emit(s, "action.opened", {}, dedupe_key="k") is not None
        assert notify.emit(s, "action.opened", {}, dedupe_key="k") is None
        s.commit()
    drain(app)
    assert len(receiver.requests) == 3


@pytest.mark.postgres
def test_concurrent_emits_with_one_dedupe_key_store_one_event(app, acme):
    """Two transactions race with the same key: the second waits for the first and
    stores nothing (PostgreSQL; SQLite serialises writers anyway)."""
    results = {}
    with app.app_context(), acme.session() as first:
        results["first"] = notify.emit(first, "clock.breached", {"n": 1}, dedupe_key="race")

        def second():
            with app.app_context(), acme.session() as s:
                results["second"] = notify.emit(s, "clock.breached", {"n": 2}, dedupe_key="race")
                s.commit()

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive(), "the second emit waits for the first transaction"
        first.commit()
        thread.join(10)
    assert results["first"] is not None and results["second"] is None
    with acme.session() as s:
        assert list(s.scalars(select(OutboxEvent.payload))) == [{"n": 1}]


# -- emitting many at once (emit_many) ------------------------------------------------------


def test_emit_many_skips_repeated_and_stored_keys_and_delivers_to_matching_webhooks(app, acme, globex,
                                                                                    receivers):
    clocks, actions, everything, inactive, foreign = (receivers(200) for _ in range(5))
    clock_hook = add_webhook(acme, clocks.url, ["clock.*"])
    action_hook = add_webhook(acme, actions.url, ["action.opened"])
    add_webhook(acme, everything.url, ["*"])
    add_webhook(acme, inactive.url, ["*"], active=False)
    add_webhook(globex, foreign.url, ["*"])
    stored = emit(app, acme, "clock.warning", {"n": 0}, dedupe_key="clock.warning:c1:50")
    assert [r["json"]["data"] for r in everything.requests] == [{"n": 0}]

    due = datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc)
    with app.app_context(), acme.session() as s:
        created = notify.emit_many(s, [
            ("clock.warning", {"n": 1}, ("manager",), "clock.warning:c1:50"),   # stored already
            ("clock.warning", {"n": 2, "due_at": due}, ("manager", "admin"), "clock.warning:c2:75"),
            ("clock.breached", {"n": 3}, ["manager"], "clock.breached:c2"),
            ("clock.warning", {"n": 4}, (), "clock.warning:c2:75"),              # repeats n=2
            ("action.opened", {"n": 5}, (), None),
            ("record.escalated", {"n": 6}),                                       # roles, key left off
        ])
        assert [e.payload["n"] for e in created] == [2, 3, 5, 6]
        assert created[0].payload["due_at"] == "2024-05-01T09:30:00+00:00"
        assert created[0].roles == ["manager", "admin"] and created[3].roles == []
        ids = [str(e.id) for e in created]
        s.commit()
    drain(app)

    def data(receiver):
        assert all(r["verified"] for r in receiver.requests)
        return sorted(r["json"]["data"]["n"] for r in receiver.requests)

    assert data(clocks) == [0, 2, 3]
    assert data(actions) == [5]
    assert data(everything) == [0, 2, 3, 5, 6]
    assert inactive.requests == [] and foreign.requests == []
    assert {r["json"]["id"] for r in everything.requests} == {str(stored), *ids}
    assert sorted(d["event_id"] for d in deliveries(acme, clock_hook["id"])) == sorted([str(stored), *ids[:2]])
    assert [d["event_type"] for d in deliveries(acme, action_hook["id"])] == ["action.opened"]
    assert all(d["status"] == "delivered" and d["attempts"] == 1 for d in deliveries(acme, clock_hook["id"]))

    # The outbox lists the batch newest first, as if emitted one by one.
    r = acme.api.get("/api/v1/notifications")
    assert [e["data"].get("n") for e in r.json] == [6, 5, 3, 2, 0]
    assert [e["dedupe_key"] for e in r.json] == [None, None, "clock.breached:c2", "clock.warning:c2:75",
                                                 "clock.warning:c1:50"]
    assert globex.api.get("/api/v1/notifications").json == []

    # The same batch again stores only the events without a key.
    with app.app_context(), acme.session() as s:
        again = notify.emit_many(s, [("clock.warning", {"n": 7}, (), "clock.warning:c2:75"),
                                     ("clock.breached", {"n": 8}, (), "clock.breached:c2"),
                                     ("action.opened", {"n": 9}, (), None)])
        assert [e.payload["n"] for e in again] == [9]
        assert notify.emit_many(s, []) == []
        s.commit()
    drain(app)
    assert data(clocks) == [0, 2, 3] and data(actions) == [5, 9]


def test_emit_many_uses_the_same_statements_for_any_batch_size(app, acme, receivers):
    """No statement per event: a batch of 3 and a batch of 60 (two webhooks each) run
    the same number of SQL statements."""
    from sqlalchemy import event as sa_event

    add_webhook(acme, receivers(200).url, ["clock.*"])
    add_webhook(acme, receivers(200).url, ["*"])
    engine = app.extensions["servq.engine"]

    def statements(n: int, batch: str) -> int:
        seen = []

        def count(conn, cursor, statement, parameters, context, executemany):
            seen.append(statement)

        with app.app_context(), acme.session() as s:
            s.execute(select(OutboxEvent.id).limit(1)).all()  # begin: RLS context, not counted
            sa_event.listen(engine, "before_cursor_execute", count)
            try:
                created = notify.emit_many(s, [("clock.breached", {"i": i}, ("manager",), f"{batch}:{i}")
                                               for i in range(n)])
            finally:
                sa_event.remove(engine, "before_cursor_execute", count)
            assert len(created) == n
            s.commit()
        drain(app)
        return len(seen)

    small, large = statements(3, "small"), statements(60, "large")
    assert small == large <= 3  # events, the webhooks of the transaction, deliveries
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == 63
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)) == 126


def test_emit_many_stores_and_sends_nothing_when_the_transaction_rolls_back(app, acme, receivers):
    receiver = receivers(200)
    add_webhook(acme, receiver.url)
    batch = [("clock.breached", {"n": n}, (), f"clock.breached:{n}") for n in range(3)]
    with app.app_context(), acme.session() as s:
        assert len(notify.emit_many(s, batch)) == 3
        s.rollback()
    drain(app)
    assert receiver.requests == []
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == 0
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)) == 0

    # The keys were not used up: the same batch, committed, is stored and sent.
    with app.app_context(), acme.session() as s:
        assert len(notify.emit_many(s, batch)) == 3
        s.commit()
    drain(app)
    assert sorted(r["json"]["data"]["n"] for r in receiver.requests) == [0, 1, 2]


def test_emit_many_checks_every_event_before_storing_any(app, acme):
    good = ("clock.breached", {"n": 1}, (), "good")
    with app.app_context(), acme.session() as s:
        with pytest.raises(ValueError, match="role"):
            notify.emit_many(s, [good, ("clock.breached", {"n": 2}, ("emperor",), "bad")])
        with pytest.raises(ValueError, match="event type"):
            notify.emit_many(s, [good, ("Clock.Breached", {}, (), None)])
        with pytest.raises(ValueError, match="dedupe key"):
            notify.emit_many(s, [good, ("clock.breached", {}, (), "x" * 301)])
        with pytest.raises(ValueError, match="tuple"):
            notify.emit_many(s, [good, "clock.breached"])
        with pytest.raises(ValueError, match="tuple"):
            notify.emit_many(s, [good, ("clock.breached",)])
        with pytest.raises(TypeError):
            notify.emit_many(s, [good, ("clock.breached", {"x": object()}, (), None)])
        s.commit()
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == 0


@pytest.mark.postgres
def test_emit_many_skips_a_key_a_concurrent_transaction_stores(app, acme, receivers):
    """A batch racing with an uncommitted emit of one of its keys waits for it, then
    stores the other events only: the key's event is sent once."""
    receiver = receivers(200)
    add_webhook(acme, receiver.url)
    results = {}
    with app.app_context(), acme.session() as first:
        notify.emit(first, "clock.breached", {"n": 1}, dedupe_key="race")

        def batch():
            with app.app_context(), acme.session() as s:
                results["batch"] = [e.payload["n"] for e in notify.emit_many(s, [
                    ("clock.warning", {"n": 2}, (), "other"),
                    ("clock.breached", {"n": 3}, (), "race"),
                ])]
                s.commit()

        thread = threading.Thread(target=batch)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive(), "the batch waits for the first transaction"
        first.commit()
        thread.join(10)
    drain(app)
    assert results["batch"] == [2]
    assert sorted(r["json"]["data"]["n"] for r in receiver.requests) == [1, 2]
    with acme.session() as s:
        assert sorted(p["n"] for p in s.scalars(select(OutboxEvent.payload))) == [1, 2]


def test_dedupe_keys_are_per_tenant(app, acme, globex):
    assert emit(app, acme, dedupe_key="same") is not None
    assert emit(app, globex, dedupe_key="same") is not None


def test_event_type_patterns_choose_the_webhooks(app, acme, globex, receivers):
    exact, prefix, everything, other, inactive, foreign = (receivers(200) for _ in range(6))
    add_webhook(acme, exact.url, ["clock.breached"])
    add_webhook(acme, prefix.url, ["clock.*"])
    add_webhook(acme, everything.url, ["*"])
    add_webhook(acme, other.url, ["action.opened", "schedule.missed"])
    add_webhook(acme, inactive.url, ["*"], active=False)
    add_webhook(globex, foreign.url, ["*"])

    emit(app, acme, "clock.warning")
    emit(app, acme, "clock.breached")
    emit(app, acme, "schedule.missed")
    emit(app, acme, "record.escalated")

    def seen(receiver):
        return [r["headers"]["x-servq-event"] for r in receiver.requests]

    assert seen(exact) == ["clock.breached"]
    assert seen(prefix) == ["clock.warning", "clock.breached"]
    assert seen(everything) == ["clock.warning", "clock.breached", "schedule.missed", "record.escalated"]
    assert seen(other) == ["schedule.missed"]
    assert seen(inactive) == [] and seen(foreign) == []


def test_matches_is_a_pure_function():
    assert notify.matches(["*"], "clock.warning")
    assert notify.matches(["clock.*"], "clock.warning")
    assert not notify.matches(["clock.*"], "clockwork.warning")
    assert not notify.matches(["clock.breached"], "clock.warning")
    assert notify.matches(["action.opened", "clock.warning"], "clock.warning")
    assert not notify.matches([], "clock.warning")


def test_emit_refuses_bad_input(app, acme):
    with app.app_context(), acme.session() as s:
        for bad in ("Clock.Breached", "clock", "clock..x", "", "clock.breached; drop"):
            with pytest.raises(ValueError, match="event type"):
                notify.emit(s, bad, {})
        with pytest.raises(ValueError, match="role"):
            notify.emit(s, "clock.breached", {}, roles=["emperor"])
        with pytest.raises(ValueError, match="payload"):
            notify.emit(s, "clock.breached", ["not", "a", "dict"])
        with pytest.raises(TypeError):
            notify.emit(s, "clock.breached", {"x": object()})
        s.commit()
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == 0


def test_nothing_is_sent_when_the_transaction_rolls_back(app, acme, receivers):
    receiver = receivers(200)
    add_webhook(acme, receiver.url)
    with app.app_context(), acme.session() as s:
        notify.emit(s, "clock.breached", {"n": 1})
        s.rollback()
    drain(app)
    assert receiver.requests == []
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == 0
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


@pytest.mark.cross_tenant("GET /api/v1/notifications",
                          "GET /api/v1/notifications/<uuid:event_id>")
def test_events_without_webhooks_are_still_in_the_outbox(app, acme, globex):
    emit(app, acme, "clock.warning", {"percent": 50}, roles=["manager"])
    emit(app, acme, "clock.breached", {"n": 1})
    emit(app, acme, "action.opened", {"title": "Fix it"})
    emit(app, globex, "clock.breached", {"n": "globex"})

    r = acme.api.get("/api/v1/notifications")
    assert r.status_code == 200
    assert [e["type"] for e in r.json] == ["action.opened", "clock.breached", "clock.warning"]
    warning = r.json[2]
    assert warning["data"] == {"percent": 50} and warning["roles"] == ["manager"]
    assert json.loads(r.headers["X-Pagination"])["total"] == 3

    def types(**query):
        r = acme.api.get("/api/v1/notifications", query_string=query)
        assert r.status_code == 200, r.json
        return [e["type"] for e in r.json]

    assert types(type="clock.*") == ["clock.breached", "clock.warning"]
    assert types(type="clock.breached") == ["clock.breached"]
    assert types(type="*") == ["action.opened", "clock.breached", "clock.warning"]
    assert types(page_size=1, page=2) == ["clock.breached"]
    assert types(since=datetime.now(timezone.utc).isoformat()) == []
    assert types(until=(datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()) == []
    assert len(types(since=(datetime.now(timezone.utc) - timedelta(hours=1)).isoformat())) == 3

    # Every role may read the outbox; one event by id.
    viewer = acme.as_role("viewer")
    assert len(viewer.get("/api/v1/notifications").json) == 3
    r = viewer.get(f"/api/v1/notifications/{warning['id']}")
    assert r.status_code == 200 and r.json["type"] == "clock.warning"

    # Another tenant sees only its own.
    assert [e["data"] for e in globex.api.get("/api/v1/notifications").json] == [{"n": "globex"}]
    assert globex.api.get(f"/api/v1/notifications/{warning['id']}").status_code == 404


def test_notification_filters_are_validated(acme):
    for query in ({"type": "Clock"}, {"type": "clock.%"}, {"since": "2024-01-01T00:00:00"},
                  {"page_size": 0}, {"since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"}):
        r = acme.api.get("/api/v1/notifications", query_string=query)
        assert r.status_code == 422, (query, r.json)
        assert r.json["errors"]


def test_ping_is_in_the_outbox_and_sent_to_one_webhook_only(app, acme, receivers):
    one, two = receivers(200), receivers(200)
    hook = add_webhook(acme, one.url)
    add_webhook(acme, two.url)
    r = acme.api.post(f"/api/v1/webhooks/{hook['id']}/ping")
    assert r.status_code == 202, r.json
    drain(app)
    assert [req["headers"]["x-servq-event"] for req in one.requests] == ["ping"]
    assert one.requests[0]["json"]["data"]["webhook_id"] == hook["id"]
    assert two.requests == []
    assert [e["type"] for e in acme.api.get("/api/v1/notifications").json] == ["ping"]


# -- delivery mechanics --------------------------------------------------------------------


@pytest.fixture
def short_backoff(app_config):
    app_config["WEBHOOK_RETRY_DELAYS"] = "1,1"  # three attempts in all
    return app_config


def test_a_delivery_fails_after_its_last_attempt_and_can_be_redelivered(short_backoff, app, acme, receivers):
    receiver = receivers(500, 500, 500, 200)
    hook = add_webhook(acme, receiver.url)
    emit(app, acme)
    later = datetime.now(timezone.utc)
    for _ in range(4):
        later += timedelta(seconds=5)
        retry_due(app, acme, later)
    [failed] = deliveries(acme, hook["id"])
    assert failed["status"] == "failed" and failed["attempts"] == 3
    assert failed["next_attempt_at"] is None and failed["last_status_code"] == 500
    assert len(receiver.requests) == 3

    r = acme.api.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{failed['id']}/redeliver")
    assert r.status_code == 202, r.json
    drain(app)
    assert len(receiver.requests) == 4 and receiver.requests[-1]["answered"] == 200
    log = deliveries(acme, hook["id"])
    assert [d["status"] for d in log] == ["delivered", "failed"]
    again = log[0]
    assert again["id"] == r.json["id"] != failed["id"]
    assert again["redelivery_of"] == failed["id"] and again["event_id"] == failed["event_id"]
    assert receiver.requests[-1]["headers"]["x-servq-delivery"] == again["id"]
    assert receiver.requests[-1]["body"] == receiver.requests[0]["body"]  # the same event


def test_a_delivered_delivery_is_never_sent_again(app, acme, receivers):
    receiver = receivers(200)
    hook = add_webhook(acme, receiver.url)
    emit(app, acme)
    [delivery] = deliveries(acme, hook["id"])
    name = "notify.deliver"
    with app.app_context():
        # rq delivers at least once: the same job again, and a job with no attempt token.
        dispatch(app, name, str(acme.id), [delivery["id"], 0], "dup-1")
        dispatch(app, name, str(acme.id), [delivery["id"]], "dup-2")
    drain(app)
    assert len(receiver.requests) == 1
    assert deliveries(acme, hook["id"])[0]["attempts"] == 1


def test_a_duplicate_job_for_an_attempt_already_made_sends_nothing(app, acme, receivers):
    receiver = receivers(500, 200)
    hook = add_webhook(acme, receiver.url)
    emit(app, acme)
    [delivery] = deliveries(acme, hook["id"])
    with app.app_context():
        # A second copy of the first attempt's job: attempt 1 is taken, nothing is sent.
        dispatch(app, "notify.deliver", str(acme.id), [delivery["id"], 0], "dup")
    drain(app)
    assert len(receiver.requests) == 1
    assert deliveries(acme, hook["id"])[0]["attempts"] == 1


def test_redirects_are_not_followed(app, acme, receivers):
    target = receivers(200)
    redirecting = receivers(302, headers={"Location": target.url})
    hook = add_webhook(acme, redirecting.url)
    emit(app, acme)
    [delivery] = deliveries(acme, hook["id"])
    assert delivery["status"] == "pending" and delivery["last_status_code"] == 302
    assert target.requests == [] and len(redirecting.requests) == 1


def test_an_unreachable_receiver_is_a_failed_attempt(app, acme, receivers):
    gone = receivers(200)
    url = gone.url
    gone.close()
    hook = add_webhook(acme, url)
    emit(app, acme)
    [delivery] = deliveries(acme, hook["id"])
    assert delivery["status"] == "pending" and delivery["attempts"] == 1
    assert delivery["last_status_code"] is None and delivery["last_error"]
    assert delivery["next_attempt_at"]


def test_a_slow_receiver_times_out(app, app_config, acme, receivers):
    app.config["WEBHOOK_TIMEOUT"] = "0.3"
    slow = receivers(200, delay=1.5)
    hook = add_webhook(acme, slow.url)
    emit(app, acme)
    [delivery] = deliveries(acme, hook["id"])
    assert delivery["status"] == "pending" and delivery["last_status_code"] is None
    assert "timed out" in delivery["last_error"]


def test_a_receiver_with_the_wrong_secret_rejects_and_rotation_fixes_it(app, acme, receivers):
    receiver = receivers(200, secret="the-receivers-new-secret-000000")
    hook = add_webhook(acme, receiver.url)  # still has the old SECRET
    emit(app, acme)
    assert [r["answered"] for r in receiver.requests] == [401]
    r = acme.api.update(f"/api/v1/webhooks/{hook['id']}", {"secret": "the-receivers-new-secret-000000"})
    assert r.status_code == 200, r.json
    retry_due(app, acme, datetime.now(timezone.utc) + timedelta(minutes=1))
    assert [r["answered"] for r in receiver.requests] == [401, 200]


def test_deactivating_a_webhook_fails_its_pending_deliveries(app, acme, receivers):
    receiver = receivers(500)
    hook = add_webhook(acme, receiver.url)
    emit(app, acme)
    assert acme.api.update(f"/api/v1/webhooks/{hook['id']}", {"active": False}).status_code == 200
    retry_due(app, acme, datetime.now(timezone.utc) + timedelta(minutes=1))
    [delivery] = deliveries(acme, hook["id"])
    assert delivery["status"] == "failed" and delivery["last_error"] == "the webhook is inactive"
    assert len(receiver.requests) == 1
    emit(app, acme)  # an inactive webhook gets no new deliveries
    assert len(deliveries(acme, hook["id"])) == 1


def test_retry_due_is_per_tenant(app, acme, globex, receivers):
    a, g = receivers(500, 200), receivers(500, 200)
    add_webhook(acme, a.url)
    add_webhook(globex, g.url)
    emit(app, acme)
    emit(app, globex)
    assert retry_due(app, acme, datetime.now(timezone.utc) + timedelta(minutes=1)) == 1
    assert [r["answered"] for r in a.requests] == [500, 200]
    assert [r["answered"] for r in g.requests] == [500]


def test_verify_rejects_tampering_and_stale_timestamps():
    body = b'{"id":"1"}'
    now = 1_700_000_000
    signature = notify_delivery.sign("k" * 20, str(now), body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert notify_delivery.verify("k" * 20, str(now), body, signature, now=now + 10)
    assert not notify_delivery.verify("k" * 20, str(now), body + b" ", signature, now=now)
    assert not notify_delivery.verify("x" * 20, str(now), body, signature, now=now)
    assert not notify_delivery.verify("k" * 20, str(now + 1), body, signature, now=now)
    assert not notify_delivery.verify("k" * 20, str(now), body, signature, now=now + 3600)
    assert notify_delivery.verify("k" * 20, str(now), body, signature, tolerance=None)
    assert not notify_delivery.verify("k" * 20, "yesterday", body, signature)


def test_retry_delays_come_from_the_settings(app):
    assert notify_delivery.retry_delays(app) == [30, 120, 600, 3600, 21600, 21600, 21600]
    assert notify_delivery.max_attempts(app) == 8
    app.config["WEBHOOK_RETRY_DELAYS"] = "5, 10"
    assert notify_delivery.retry_delays(app) == [5, 10] and notify_delivery.max_attempts(app) == 3
    app.config["WEBHOOK_RETRY_DELAYS"] = "soon"
    with pytest.raises(ValueError, match="WEBHOOK_RETRY_DELAYS"):
        notify_delivery.retry_delays(app)
