"""The outbox: every notification servq emits, stored with the change that caused it.

Every notification is an :class:`~core.models.OutboxEvent`, stored in the transaction
of the change that caused it (:func:`emit`, or :func:`emit_many` for many events in a
few statements). For each active webhook of the tenant that subscribes to the event's
type, a :class:`~core.models.WebhookDelivery` is created and the delivery job
(:func:`core.notify.delivery.deliver`) is enqueued once that transaction commits: rq
with Redis, inline without. Sending, signing and retries: :mod:`core.notify.delivery`;
the tenant's webhooks: :mod:`core.notify.webhooks`.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import make_transient_to_detached

from servq.core.audit import jsonable
from servq.core.auth.permissions import ROLES
from servq.core.db import dialect_insert, utcnow
from servq.core.db.fast import WRITER, Writer
from servq.core.db.state import TRANSACTION, Slot
from servq.core.jobs import enqueue
from servq.core.models import OutboxEvent, Webhook, WebhookDelivery
from servq.core.notify.delivery import deliver

#: The event types servq emits, with what each means. Webhooks subscribe to these, to a
#: prefix pattern (``clock.*``) or to ``*``. Keep docs/webhooks.md in step.
EVENT_TYPES: dict[str, str] = {
    "clock.warning": "A deadline clock reached 50 %, 75 % or 100 % of its target (once per level).",
    "clock.breached": "A deadline clock passed its due time before it was stopped.",
    "clock.breach_withdrawn": "An escalated breach was withdrawn: the record's history, entered "
                              "later, shows the deadline met (or paused, or not yet due).",
    "clock.pause_capped": "A paused deadline clock reached its pause cap and resumed by itself "
                          "(the record stays in its waiting state).",
    "schedule.missed": ("A period of a recurring obligation ended without enough matching records "
                        "(per-staff schedules: one event per person short of the quota)."),
    "action.opened": "A corrective action was opened.",
    "record.escalated": "A record's escalation level was raised.",
    "record.stalled": "A record stayed in a state longer than its workflow's stalled_after "
                      "without moving (once per stall; a move re-arms the watch).",
    "survey.invited": "A survey invitation was issued.",
    "dispute.filed": "A staff member disputed an evaluation.",
    "dispute.decided": "A dispute was decided (accepted, partly accepted or rejected).",
    "dispute.appealed": "A dispute's first decision was appealed to a manager.",
    "kb.review_due": ("A published knowledge-base article passed its review date unreviewed "
                      "(once per lapse; the payload names its owner)."),
    "ledger.flagged": ("A staff member reached the tenant's threshold of penalties in a calendar "
                       "month (the same fault or the same person): for a manager to decide."),
    "ledger.monthly": "A manager announced a month's rewards and penalties summary.",
}

#: The type of the test event of ``POST /webhooks/<id>/ping``; sent only to that webhook.
PING = "ping"

#: An event type: lowercase dotted words, at least two (``clock.breached``).
EVENT_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


# -- event types ---------------------------------------------------------------------------


#: ``app.extensions`` key: every event type of the app, core's and its plugins'.
_TYPES_KEY = "servq.event_types"
#: ``app.extensions`` key: the plugin that registered each plugin event type.
_OWNERS_KEY = "servq.event_type_owners"


def event_types(app=None) -> dict[str, str]:
    """Every event type of the app: core's (:data:`EVENT_TYPES`) and those its plugins
    register (``register_event_types``), with their descriptions; built once per app.

    :raises PluginError: a plugin's event type is not named ``<plugin id>.<name>`` (lowercase
        dotted words), has no description, or is registered twice.
    """
    from flask import current_app

    app = app if app is not None else current_app._get_current_object()
    found = app.extensions.get(_TYPES_KEY)
    if found is not None:
        return found
    from servq.core.plugins.manager import PluginError
    from servq.core.plugins.app import get_plugins

    found = dict(EVENT_TYPES)
    owners: dict[str, str] = {}
    for plugin_id, items in get_plugins(app).contributions("register_event_types"):
        for item in items:
            name, description = item if isinstance(item, tuple) and len(item) == 2 else (item, None)
            if not isinstance(name, str) or not EVENT_TYPE_RE.match(name) or not name.startswith(f"{plugin_id}."):
                raise PluginError(f"plugin {plugin_id!r} registered event type {name!r}: a plugin's event "
                                  f"types are lowercase dotted words named '{plugin_id}.<name>'")
            if not isinstance(description, str) or not description.strip():
                raise PluginError(f"plugin {plugin_id!r} registered event type {name!r} without a "
                                  "description: return {name: description}")
            if name in found:
                raise PluginError(f"event type {name!r} is registered twice (again by plugin {plugin_id!r})")
            found[name] = description
            owners[name] = plugin_id
    app.extensions[_OWNERS_KEY] = owners
    app.extensions[_TYPES_KEY] = found
    return found


def tenant_event_types(session) -> dict[str, str]:
    """The event types the session's tenant can receive (:func:`event_types`): core's, and
    those of the plugins it has enabled (or that every tenant has), not those of an
    industry plugin it has not enabled."""
    from flask import current_app

    from servq.core.plugins.app import enabled_plugin_ids, get_plugins

    types = event_types()
    owners = current_app.extensions[_OWNERS_KEY]
    optional, enabled = get_plugins().enableable, enabled_plugin_ids(session)
    return {name: text for name, text in types.items()
            if (owner := owners.get(name)) is None or owner not in optional or owner in enabled}


def prefixes(types: Iterable[str] | None = None) -> set[str]:
    """The prefixes that ``<prefix>.*`` patterns may name (``clock``, ``action``, …) among
    ``types`` (default: the current app's event types)."""
    found = set()
    for name in (event_types() if types is None else types):
        parts = name.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return found


def check_pattern(pattern: str, types: Mapping[str, str] | None = None) -> str | None:
    """Why ``pattern`` is not a valid subscription, or ``None`` when it is.

    Valid: ``*``, an event type of ``types`` (default: the current app's, core's and its
    plugins'), or ``<prefix>.*`` for a prefix of one.
    """
    types = event_types() if types is None else types
    if pattern == "*" or pattern in types:
        return None
    if pattern.endswith(".*") and pattern[:-2] in prefixes(types):
        return None
    return (f"Unknown event type {pattern!r}: use '*', one of {', '.join(sorted(types))}, "
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
    """``json.dumps``'s fallback for a payload: :func:`core.audit.jsonable`, or TypeError."""
    converted = jsonable(value)
    if converted is value:
        raise TypeError(f"payload value of type {type(value).__name__} is not JSON")
    return converted


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


def emit_many(session, events: Iterable[Sequence], *, writer: Writer = WRITER) -> list[OutboxEvent]:
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

    A :class:`~servq.core.db.fast.BulkWriter` (a bulk import's): every dedupe key is new in
    the tenant (it names an object made in this transaction), so the database need not
    decide: the events and deliveries are queued with the chunk's other INSERTs instead,
    and all of them are stored (a key that existed all the same would fail the
    transaction).

    :return: the stored events (persistent in ``session``), in the order given.
    :raises ValueError: as :func:`emit`, or an item that is not such a tuple.
    """
    rows = _event_rows(session, events)
    if not rows:
        return []
    stored: set[uuid.UUID] = set()
    if writer.fresh:
        writer.insert(session, OutboxEvent.__table__, rows)
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
    _deliver_new(session, created, writer)
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


def _deliver_new(session, created: list[OutboxEvent], writer: Writer) -> None:
    """Insert a pending delivery of each new event to each active webhook subscribed to
    its type, and enqueue their first attempts for after the commit (a bulk ``writer``:
    the INSERT queued, see :func:`emit_many`)."""
    hooks = _active_webhooks(session) if created else []
    if not hooks:
        return
    rows = [{"tenant_id": session.tenant_id, "id": uuid.uuid4(), "webhook_id": webhook_id,
             "event_id": event.id, "event_type": event.type, "status": "pending", "attempts": 0,
             "created_at": event.created_at, "next_attempt_at": event.created_at}
            for event in created
            for webhook_id, patterns in hooks if matches(patterns, event.type)]
    if writer.fresh:
        writer.insert(session, WebhookDelivery.__table__, rows)
    else:
        for start in range(0, len(rows), BATCH):
            session.execute(insert(WebhookDelivery), rows[start:start + BATCH])
    for row in rows:
        enqueue(session, deliver, session.tenant_id, str(row["id"]), 0,
                job_id=f"webhook-delivery-{row['id']}-0")


def new_delivery(session, webhook_id: uuid.UUID, event: OutboxEvent, now: datetime,
                 redelivery_of: uuid.UUID | None = None) -> WebhookDelivery:
    """Add a pending delivery of ``event`` to ``webhook_id`` and enqueue its first attempt."""
    delivery = WebhookDelivery(id=uuid.uuid4(), webhook_id=webhook_id, event_id=event.id,
                               event_type=event.type, status="pending", attempts=0,
                               created_at=now, next_attempt_at=now, redelivery_of=redelivery_of)
    session.add(delivery)
    enqueue(session, deliver, session.tenant_id, str(delivery.id), 0,
            job_id=f"webhook-delivery-{delivery.id}-0")
    return delivery


# -- reading -------------------------------------------------------------------------------


def events_statement(type_filter: str | None = None, since: datetime | None = None,
                     until: datetime | None = None):
    """SELECT of the tenant's outbox, newest first: of an event type, a prefix pattern
    (``clock.*``) or any (``*``, ``None``), created in ``[since, until)``."""
    stmt = select(OutboxEvent).order_by(OutboxEvent.created_at.desc(), OutboxEvent.id.desc())
    if type_filter and type_filter != "*":
        if type_filter.endswith(".*"):
            stmt = stmt.where(OutboxEvent.type.startswith(type_filter[:-1], autoescape=True))
        else:
            stmt = stmt.where(OutboxEvent.type == type_filter)
    if since:
        stmt = stmt.where(OutboxEvent.created_at >= since)
    if until:
        stmt = stmt.where(OutboxEvent.created_at < until)
    return stmt


def find_event(session, event_id: uuid.UUID) -> OutboxEvent | None:
    """One event of the tenant's outbox, or ``None``."""
    return session.scalar(select(OutboxEvent).where(OutboxEvent.id == event_id))
