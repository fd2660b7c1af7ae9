"""Webhook deliveries: signed POSTs with retries, to public addresses only.

:mod:`core.notify.outbox` creates a :class:`~core.models.WebhookDelivery` per subscribed
webhook and enqueues the delivery job (:func:`deliver`, job ``notify.deliver``) once the
transaction commits: rq with Redis, inline without. The job POSTs the event, signed with
HMAC-SHA256 over ``"<timestamp>.<body>"`` (docs/webhooks.md), and on anything but a 2xx
answer records the failure and schedules the next attempt with exponential back-off:
rq's ``enqueue_at`` when Redis is there, and always ``next_attempt_at`` in the database,
so that :func:`retry_due` (called every minute by the deadline tick) catches up after a
restart or without Redis.

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
import socket
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select, update

from servq.core.db import utcnow
from servq.core.jobs import enqueue
from servq.core.models import OutboxEvent, Webhook, WebhookDelivery
from servq.core.plugins import Job, hookimpl

log = logging.getLogger(__name__)

#: The job name of :func:`deliver`.
DELIVER_JOB = "notify.deliver"

STATUSES = ("pending", "delivered", "failed")

#: Seconds an attempt holds its delivery: a worker that dies mid-attempt leaves it to
#: :func:`retry_due` once this has passed (on top of the HTTP timeout).
CLAIM_MARGIN = 60
#: Most deliveries :func:`retry_due` re-enqueues per call (the oldest first).
RETRY_BATCH = 500
#: Longest error text and response excerpt kept on a delivery.
MAX_ERROR = 1000
USER_AGENT = "servq-webhooks/1"


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
