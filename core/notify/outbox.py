"""Notifications: the outbox, webhooks and signed deliveries with retries.

Every notification is an :class:`~core.models.OutboxEvent`, stored in the transaction
of the change that caused it (:func:`emit`, or :func:`emit_many` for many events in a
few statements). For each active webhook of the tenant that subscribes to the event's
type, a :class:`~core.models.WebhookDelivery` is created and the delivery job
(:func:`deliver`) is enqueued once that transaction commits: rq with Redis, inline
without. The job POSTs the event, signed with HMAC-SHA256 over ``"<timestamp>.<body>"``
(docs/webhooks.md), and on anything but a 2xx answer records the failure and schedules
the next attempt with exponential back-off: rq's ``enqueue_at`` when Redis is there, and
always ``next_attempt_at`` in the database, so that :func:`retry_due` (called every
minute by the deadline tick) catches up after a restart or without Redis.

Delivery is at least once: every attempt first *claims* the delivery with a
conditional UPDATE on its attempt counter, so two copies of the same job (an rq retry
and :func:`retry_due`) never send the same attempt twice, and a delivered delivery is
never sent again.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
import socket
import time
import urllib.error
import urllib.request
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import insert, select, update
from sqlalchemy.orm import make_transient_to_detached

from servq.core.auth.permissions import ROLES
from servq.core.db import dialect_insert, utcnow
from servq.core.db.state import TRANSACTION, Slot
from servq.core.jobs import enqueue
from servq.core.models import OutboxEvent, Webhook, WebhookDelivery
from servq.core.plugins import Job, hookimpl

log = logging.getLogger(__name__)

#: The job name of :func:`deliver`.
DELIVER_JOB = "notify.deliver"

#: The event types servq emits, with what each means. Webhooks subscribe to these, to a
#: prefix pattern (``clock.*``) or to ``*``. Keep docs/webhooks.md in step.
EVENT_TYPES: dict[str, str] = {
    "clock.warning": "A deadline clock reached 50 %, 75 % or 100 % of its target (once per level).",
    "clock.breached": "A deadline clock passed its due time before it was stopped.",
    "clock.breach_withdrawn": "An escalated breach was withdrawn: the record's history, entered "
                              "later, shows the deadline met (or paused, or not yet due).",
    "schedule.missed": "A period of a recurring obligation ended without a matching record.",
    "action.opened": "A corrective action was opened.",
    "record.escalated": "A record's escalation level was raised.",
    "survey.invited": "A survey invitation was issued.",
}

#: The type of the test event of ``POST /webhooks/<id>/ping``; sent only to that webhook.
PING = "ping"

#: An event type: lowercase dotted words, at least two (``clock.breached``).
EVENT_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

STATUSES = ("pending", "delivered", "failed")

#: Seconds an attempt holds its delivery: a worker that dies mid-attempt leaves it to
#: :func:`retry_due` once this has passed (on top of the HTTP timeout).
CLAIM_MARGIN = 60
#: Most deliveries :func:`retry_due` re-enqueues per call (the oldest first).
RETRY_BATCH = 500
#: Longest error text and response excerpt kept on a delivery.
MAX_ERROR = 1000
USER_AGENT = "servq-webhooks/1"


# -- event types ---------------------------------------------------------------------------


def prefixes() -> set[str]:
    """The prefixes that ``<prefix>.*`` patterns may name (``clock``, ``action``, …)."""
    found = set()
    for name in EVENT_TYPES:
        parts = name.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return found


def check_pattern(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid subscription, or ``None`` when it is.

    Valid: ``*``, a documented event type, or ``<prefix>.*`` for a documented prefix.
    """
    if pattern == "*" or pattern in EVENT_TYPES:
        return None
    if pattern.endswith(".*") and pattern[:-2] in prefixes():
        return None
    return (f"Unknown event type {pattern!r}: use '*', one of {', '.join(sorted(EVENT_TYPES))}, "
            f"or a prefix pattern such as 'clock.*'.")


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """Whether an event of ``event_type`` goes to a webhook subscribed to ``patterns``."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


# -- emitting ------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"payload value of type {type(value).__name__} is not JSON")


#: (transaction, [(id, event_types)]) of the tenant's active webhooks.
_WEBHOOKS: Slot[tuple] = Slot("notify.webhooks", TRANSACTION, __name__)


def _active_webhooks(session) -> list[tuple[uuid.UUID, list]]:
    """(id, event_types) of the tenant's active webhooks, once per transaction."""
    txn = session.get_transaction()
    cached = session.state.get(_WEBHOOKS)
    if cached is not None and txn is not None and cached[0] is txn:
        return cached[1]
    hooks = [(row.id, list(row.event_types or ())) for row in
             session.execute(select(Webhook.id, Webhook.event_types).where(Webhook.active.is_(True)))]
    session.state.set(_WEBHOOKS, (session.get_transaction(), hooks))
    return hooks


def emit(session, event_type: str, payload: dict, *, roles: Iterable[str] = (),
         dedupe_key: str | None = None) -> OutboxEvent | None:
    """Store a notification in the outbox and deliver it to the matching webhooks.

    Runs in the caller's transaction (the caller commits): the event and one
    :class:`WebhookDelivery` per active webhook subscribed to ``event_type`` are
    inserted, and their delivery jobs are enqueued to run after the commit (nothing is
    sent if the transaction rolls back). One event of :func:`emit_many`, which callers
    with many events at once should use instead.

    :param event_type: dotted lowercase name, e.g. ``clock.breached`` (see ``EVENT_TYPES``).
    :param payload: a JSON-able dict (datetimes, dates, UUIDs and Decimals are converted).
    :param roles: the roles the notification is addressed to (``core.auth.permissions.ROLES``).
    :param dedupe_key: the event happens at most once per tenant with this key.
    :return: the stored event, or ``None`` when an event with ``dedupe_key`` exists already.
    :raises ValueError: a malformed type, an unknown role, a payload that is not a JSON object.
    """
    created = emit_many(session, [(event_type, payload, roles, dedupe_key)])
    return created[0] if created else None


#: Rows per INSERT statement of :func:`emit_many` (events, and deliveries): far below
#: the bind-parameter limits of PostgreSQL (65,535) and SQLite (32,766).
BATCH = 1000


def emit_many(session, events: Iterable[Sequence], *, fresh: bool = False) -> list[OutboxEvent]:
    """Store many notifications at once: :func:`emit` for each, in a few statements.

    ``events`` holds ``(event_type, payload, roles, dedupe_key)`` tuples (``roles`` and
    ``dedupe_key`` may be left off). The semantics are those of calling :func:`emit` for
    each in turn: an event whose ``dedupe_key`` is already stored for the tenant, or
    repeats an earlier one of the batch, is skipped and sends nothing; every stored event
    gets one :class:`WebhookDelivery` per active webhook subscribed to its type, whose
    job is enqueued after the caller's commit. Every event is checked before anything is
    written, so a bad one leaves the batch unstored.

    The number of statements does not grow with the batch: per :data:`BATCH` events one
    ``INSERT … ON CONFLICT (tenant_id, dedupe_key) DO NOTHING RETURNING id`` (the
    database, not a prior ``SELECT``, decides which keys are new, so a concurrent
    transaction storing the same key makes this one skip it, after waiting for it to
    commit), one ``SELECT`` of the active webhooks per transaction, and one ``INSERT`` of
    deliveries per :data:`BATCH` deliveries.

    The events of one call are stamped a microsecond apart in the order given, so the
    outbox (newest first) lists them as if emitted one by one.

    ``fresh``: every dedupe key is new in the tenant (it names an object made in this
    transaction), so the database need not decide: the events and deliveries are queued
    with the caller's other bulk INSERTs (:func:`core.db.fast.bulk.insert_rows`, a bulk
    import's) instead, and all of them are stored (a key that existed all the same would
    fail the transaction).

    :return: the stored events (persistent in ``session``), in the order given.
    :raises ValueError: as :func:`emit`, or an item that is not such a tuple.
    """
    rows = _event_rows(session, events)
    if not rows:
        return []
    stored: set[uuid.UUID] = set()
    if fresh:
        from servq.core.db.fast import insert_rows

        insert_rows(session.connection(), OutboxEvent.__table__, rows, wait=False)
        stored.update(row["id"] for row in rows)
    else:
        statement = (dialect_insert(session)(OutboxEvent)
                     .on_conflict_do_nothing(index_elements=["tenant_id", "dedupe_key"])
                     .returning(OutboxEvent.id))
        # In key order: concurrent batches with overlapping keys then wait for each other
        # in the same order instead of deadlocking.
        ordered = sorted(rows, key=lambda row: (row["dedupe_key"] is None, row["dedupe_key"] or ""))
        for start in range(0, len(ordered), BATCH):
            stored.update(session.execute(statement, ordered[start:start + BATCH]).scalars())
    created = []
    for row in rows:
        if row["id"] in stored:
            event = OutboxEvent(**row)
            make_transient_to_detached(event)  # it is in the database: join as persistent
            session.add(event)
            created.append(event)
    _deliver_new(session, created, fresh=fresh)
    return created


def _event_rows(session, events: Iterable[Sequence]) -> list[dict[str, Any]]:
    """The checked outbox rows of ``events``, without repeated dedupe keys."""
    rows, keys = [], set()
    now = utcnow()
    for item in events:
        if isinstance(item, (str, bytes, dict)) or not isinstance(item, Sequence) or not 2 <= len(item) <= 4:
            raise ValueError("an event is an (event_type, payload, roles, dedupe_key) tuple")
        event_type, payload, roles, dedupe_key = (*item, (), None)[:4]
        if not isinstance(event_type, str) or not EVENT_TYPE_RE.fullmatch(event_type) or len(event_type) > 100:
            raise ValueError(f"malformed event type {event_type!r}: use dotted lowercase words, e.g. 'clock.breached'")
        if not isinstance(payload, dict):
            raise ValueError("an event's payload is a JSON object (dict)")
        payload = json.loads(json.dumps(payload, default=_json_default))
        roles = list(dict.fromkeys(roles or ()))
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise ValueError(f"unknown role(s) {unknown}: use {', '.join(ROLES)}")
        key = None
        if dedupe_key is not None:
            key = str(dedupe_key)
            if not key or len(key) > 300:
                raise ValueError("a dedupe key has 1 to 300 characters")
            if key in keys:
                continue  # a repeat within the batch: the first one is the event
            keys.add(key)
        rows.append({"tenant_id": session.tenant_id, "id": uuid.uuid4(), "type": event_type,
                     "payload": payload, "roles": roles, "dedupe_key": key,
                     "created_at": now + timedelta(microseconds=len(rows))})
    return rows


def _deliver_new(session, created: list[OutboxEvent], *, fresh: bool = False) -> None:
    """Insert a pending delivery of each new event to each active webhook subscribed to
    its type, and enqueue their first attempts for after the commit (``fresh``: the
    INSERT queued, see :func:`emit_many`)."""
    hooks = _active_webhooks(session) if created else []
    if not hooks:
        return
    rows = [{"tenant_id": session.tenant_id, "id": uuid.uuid4(), "webhook_id": webhook_id,
             "event_id": event.id, "event_type": event.type, "status": "pending", "attempts": 0,
             "created_at": event.created_at, "next_attempt_at": event.created_at}
            for event in created
            for webhook_id, patterns in hooks if matches(patterns, event.type)]
    if fresh:
        from servq.core.db.fast import insert_rows

        insert_rows(session.connection(), WebhookDelivery.__table__, rows, wait=False)
    else:
        for start in range(0, len(rows), BATCH):
            session.execute(insert(WebhookDelivery), rows[start:start + BATCH])
    for row in rows:
        enqueue(session, deliver, session.tenant_id, str(row["id"]), 0,
                job_id=f"webhook-delivery-{row['id']}-0")


def _new_delivery(session, webhook_id: uuid.UUID, event: OutboxEvent, now: datetime,
                  redelivery_of: uuid.UUID | None = None) -> WebhookDelivery:
    """Add a pending delivery of ``event`` to ``webhook_id`` and enqueue its first attempt."""
    delivery = WebhookDelivery(id=uuid.uuid4(), webhook_id=webhook_id, event_id=event.id,
                               event_type=event.type, status="pending", attempts=0,
                               created_at=now, next_attempt_at=now, redelivery_of=redelivery_of)
    session.add(delivery)
    enqueue(session, deliver, session.tenant_id, str(delivery.id), 0,
            job_id=f"webhook-delivery-{delivery.id}-0")
    return delivery


def ping(session, webhook: Webhook) -> WebhookDelivery:
    """Store a ``ping`` event and deliver it to ``webhook`` only (the caller commits)."""
    now = utcnow()
    event = OutboxEvent(id=uuid.uuid4(), type=PING, roles=[], created_at=now,
                        payload={"webhook_id": str(webhook.id), "message": "ping from servq"})
    session.add(event)
    return _new_delivery(session, webhook.id, event, now)


def redeliver(session, delivery: WebhookDelivery) -> WebhookDelivery:
    """A new delivery (new id, fresh attempts) of ``delivery``'s event to its webhook.

    The caller commits. The body is the same event as before; ``redelivery_of`` names
    the original delivery.
    """
    event = session.scalar(select(OutboxEvent).where(OutboxEvent.id == delivery.event_id))
    return _new_delivery(session, delivery.webhook_id, event, utcnow(), redelivery_of=delivery.id)


def new_secret() -> str:
    """A new random signing secret (256 bits)."""
    return "whsec_" + secrets.token_urlsafe(32)


# -- delivering ----------------------------------------------------------------------------


def event_body(event: OutboxEvent) -> bytes:
    """The JSON body POSTed for ``event``: the same bytes on every attempt."""
    document = {
        "id": str(event.id),
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "tenant_id": str(event.tenant_id),
        "roles": list(event.roles or ()),
        "data": event.payload,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Servq-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``"<timestamp>.<body>"``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, tolerance: int | None = 300,
           now: float | None = None) -> bool:
    """Check a delivery's signature the way a receiver should (docs/webhooks.md).

    :param tolerance: seconds the timestamp may differ from ``now``; ``None`` skips the check.
    """
    if tolerance is not None:
        try:
            age = abs((time.time() if now is None else now) - int(timestamp))
        except ValueError:
            return False
        if age > tolerance:
            return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def retry_delays(app=None) -> list[int]:
    """Seconds before each retry (``WEBHOOK_RETRY_DELAYS``); attempts = len + 1."""
    raw = (app or current_app).config.get("WEBHOOK_RETRY_DELAYS", "30,120,600,3600,21600,21600,21600")
    values = raw.split(",") if isinstance(raw, str) else list(raw)
    try:
        delays = [int(float(v)) for v in values if str(v).strip()]
    except ValueError:
        raise ValueError(f"WEBHOOK_RETRY_DELAYS must be seconds separated by commas, not {raw!r}") from None
    if any(d < 0 for d in delays):
        raise ValueError("WEBHOOK_RETRY_DELAYS may not be negative")
    return delays


def max_attempts(app=None) -> int:
    """Attempts before a delivery is ``failed``: the first one plus one per retry delay."""
    return len(retry_delays(app)) + 1


def timeout(app=None) -> float:
    """The HTTP timeout of one attempt, in seconds (``WEBHOOK_TIMEOUT``)."""
    return float((app or current_app).config.get("WEBHOOK_TIMEOUT", 10))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not an instruction: a 3xx fails the attempt."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


# -- where webhooks may go -------------------------------------------------------------------


def allow_private(app=None) -> bool:
    """Whether webhooks may go to loopback, private and link-local addresses
    (``WEBHOOK_ALLOW_PRIVATE``: off in production, on for a local demo and the tests)."""
    value = (app or current_app).config.get("WEBHOOK_ALLOW_PRIVATE", False)
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _not_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``address`` is not a public unicast address (``is_global``), or ``None``. An
    IPv6 address that embeds an IPv4 one (``::ffff:127.0.0.1``, 6to4) is judged by it too."""
    for candidate in (address, getattr(address, "ipv4_mapped", None), getattr(address, "sixtofour", None)):
        if candidate is None:
            continue
        if candidate.is_global and not candidate.is_multicast:
            continue
        for kind in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
            if getattr(candidate, f"is_{kind}"):
                return kind.replace("_", "-")
        return "not globally routable"
    return None


def refused_destination(url: str) -> str | None:
    """Why a webhook may not be sent to ``url``, or ``None`` when it may: every address
    its host names or resolves to (``socket.getaddrinfo``) must be public. Raises
    :class:`OSError` when the host does not resolve."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        addresses = [ipaddress.ip_address(host)]
        resolved = False
    except ValueError:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
        resolved = True
    for address in addresses:
        reason = _not_public(address)
        if reason is not None:
            where = f"{host} resolves to {address}, which" if resolved else str(address)
            return f"{where} is not a public address ({reason}); webhooks are sent only to public addresses"
    return None


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> tuple[int | None, str | None, int]:
    """POST ``body`` to ``url``; never raises.

    Proxies come from the environment (``HTTPS_PROXY``, ``NO_PROXY``); redirects are
    not followed; certificates are verified.

    :return: (HTTP status or ``None`` when there was no answer, error text or ``None``
        on 2xx, duration in milliseconds).
    """
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={**headers, "Content-Type": "application/json",
                                              "User-Agent": USER_AGENT})
    started = time.monotonic()
    status, error = None, None
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            status = response.status
            response.read(1024)
    except urllib.error.HTTPError as exc:
        status = exc.code
        try:
            excerpt = exc.read(300).decode("utf-8", "replace")
        except Exception:  # the body is only a hint for the log
            excerpt = ""
        finally:
            exc.close()
        error = f"HTTP {exc.code} {exc.reason}" + (f": {excerpt}" if excerpt else "")
    except urllib.error.URLError as exc:
        error = f"{type(exc.reason).__name__}: {exc.reason}" if not isinstance(exc.reason, str) else exc.reason
    except Exception as exc:  # timeouts, resets, malformed answers: all are a failed attempt
        error = f"{type(exc).__name__}: {exc}"
    duration = int((time.monotonic() - started) * 1000)
    if status is not None and not 200 <= status < 300 and error is None:
        error = f"HTTP {status}"
    return status, (error[:MAX_ERROR] if error else None), duration


def deliver(session, delivery_id: str, expected_attempts: int | None = None) -> str | None:
    """The delivery job: one attempt at sending a delivery, then its outcome recorded.

    Idempotent: a delivery that is no longer pending is left alone, and the attempt is
    claimed with ``attempts = expected_attempts`` as a token, so duplicate jobs for the
    same attempt send once. On a non-2xx answer or a network error the next attempt is
    scheduled after the back-off (``WEBHOOK_RETRY_DELAYS``), or the delivery is
    ``failed`` after the last attempt.

    :return: the delivery's status afterwards, or ``None`` when it no longer exists.
    """
    did = uuid.UUID(delivery_id)
    row = session.execute(
        select(WebhookDelivery, Webhook, OutboxEvent)
        .join(Webhook, (Webhook.tenant_id == WebhookDelivery.tenant_id) & (Webhook.id == WebhookDelivery.webhook_id))
        .join(OutboxEvent, (OutboxEvent.tenant_id == WebhookDelivery.tenant_id)
              & (OutboxEvent.id == WebhookDelivery.event_id))
        .where(WebhookDelivery.id == did)
    ).first()
    if row is None:
        session.rollback()
        return None
    delivery, webhook, event = row
    if delivery.status != "pending":
        session.rollback()
        return delivery.status
    attempt = delivery.attempts if expected_attempts is None else int(expected_attempts)
    now = utcnow()
    pending = (WebhookDelivery.id == did) & (WebhookDelivery.status == "pending")
    if not webhook.active:
        session.execute(update(WebhookDelivery).where(pending)
                        .values(status="failed", next_attempt_at=None,
                                last_error="the webhook is inactive")
                        .execution_options(synchronize_session=False))
        session.commit()
        return "failed"
    limit = timeout()
    claimed = session.execute(
        update(WebhookDelivery)
        .where(pending & (WebhookDelivery.attempts == attempt))
        .values(attempts=attempt + 1, last_attempt_at=now,
                next_attempt_at=now + timedelta(seconds=limit + CLAIM_MARGIN))
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    if claimed != 1:
        log.info("delivery %s attempt %s is taken or done; skipping", delivery_id, attempt + 1)
        return None
    url, secret_, body = webhook.url, webhook.secret, event_body(event)
    timestamp = str(int(time.time()))
    headers = {
        "X-Servq-Event": event.type,
        "X-Servq-Delivery": str(did),
        "X-Servq-Timestamp": timestamp,
        "X-Servq-Signature": sign(secret_, timestamp, body),
    }
    refused = None
    try:
        refused = None if allow_private() else refused_destination(url)
    except OSError as exc:  # the host does not resolve: a failed attempt, retried
        status, error, duration = None, f"{type(exc).__name__}: {exc}", 0
    else:
        status, error, duration = (None, f"not sent: {refused}", 0) if refused else post(url, body, headers, limit)
    now = utcnow()
    values: dict[str, Any] = {"last_status_code": status, "last_error": error, "last_duration_ms": duration}
    next_at = None
    if refused:  # the host now points somewhere private (DNS changed): never sent
        values.update(status="failed", next_attempt_at=None)
    elif status is not None and 200 <= status < 300:
        values.update(status="delivered", delivered_at=now, next_attempt_at=None, last_error=None)
    else:
        delays = retry_delays()
        if attempt + 1 >= len(delays) + 1:
            values.update(status="failed", next_attempt_at=None)
        else:
            next_at = now + timedelta(seconds=delays[attempt])
            values.update(next_attempt_at=next_at)
    recorded = session.execute(
        update(WebhookDelivery)
        .where(pending & (WebhookDelivery.attempts == attempt + 1))
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if recorded and next_at is not None:
        _schedule(session, did, attempt + 1, next_at)
    session.commit()
    return values.get("status", "pending")


def _schedule(session, delivery_id: uuid.UUID, attempts: int, at: datetime) -> None:
    """With Redis, have rq run the next attempt at ``at`` (after the commit).

    Without Redis nothing is queued: :func:`retry_due` finds the delivery by its
    ``next_attempt_at``. With Redis it does too, should the scheduled job be lost.
    """
    app = current_app._get_current_object()
    queue = app.extensions.get("servq.queue")
    if queue is None:
        return
    tenant_id = str(session.tenant_id)

    def schedule():
        queue.enqueue_at(at, DELIVER_JOB, tenant_id, str(delivery_id), attempts,
                         job_id=f"webhook-delivery-{delivery_id}-{attempts}")

    session.after_commit(schedule)


def retry_due(session, now: datetime | None = None, *, limit: int = RETRY_BATCH) -> int:
    """Re-enqueue the session's tenant's pending deliveries whose ``next_attempt_at`` has come.

    Called every minute by the deadline tick (``core/deadlines/watch.py``) for each tenant, so
    retries happen without Redis and after a restart that lost rq's scheduled jobs. The
    jobs are enqueued after the caller's commit; a job that finds its attempt already
    taken does nothing, so overlapping with rq's own scheduled retry is harmless.

    :return: the number of deliveries re-enqueued (at most ``limit``, oldest first).
    """
    now = now or utcnow()
    rows = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.attempts)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    ).all()
    for delivery_id, attempts in rows:
        enqueue(session, deliver, session.tenant_id, str(delivery_id), attempts,
                job_id=f"webhook-delivery-{delivery_id}-{attempts}-due")
    return len(rows)


@hookimpl
def register_jobs():
    return [Job(DELIVER_JOB, deliver)]
