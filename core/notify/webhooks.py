"""The tenant's webhooks: registering, changing and deleting them (audited), their
delivery logs, signing secrets, a test ping and redelivery.

Emitting events is :mod:`core.notify.outbox`'s; sending them is :mod:`core.notify.delivery`'s.
The functions add to the session; committing is the caller's.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from servq.core.audit import apply_changes, audit
from servq.core.db import utcnow
from servq.core.models import OutboxEvent, Webhook, WebhookDelivery
from servq.core.notify.delivery import allow_private, refused_destination
from servq.core.notify.outbox import PING, new_delivery


class WebhookConflict(Exception):
    """The webhook or delivery is not in a state for this (the HTTP API answers 409)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# -- registering -------------------------------------------------------------------------


def url_refusal(url: str) -> str | None:
    """Why ``url`` may not receive webhooks, or ``None``: credentials in it, no host, or
    (unless ``WEBHOOK_ALLOW_PRIVATE``) a host that is not a public address. A host that
    does not resolve now passes: it is checked again at every delivery."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        return "Credentials in the URL are not supported: receivers verify the signature."
    if not parts.hostname:
        return "The URL needs a host."
    if allow_private():
        return None
    try:
        refused = refused_destination(url)
    except (OSError, ValueError):  # not resolvable now: checked again at every delivery
        refused = None
    return f"The URL's host {refused}." if refused else None


def new_secret() -> str:
    """A new random signing secret (256 bits)."""
    return "whsec_" + secrets.token_urlsafe(32)


def _audit_values(values: dict) -> dict:
    return {k: ([None, "[hidden]"] if k == "secret" else [None, v]) for k, v in values.items()}


def create_webhook(session, values: dict[str, Any], actor_id: uuid.UUID | None) -> Webhook:
    """Register a webhook (``url``, ``event_types``, ``description``, ``active``,
    ``secret``: generated when left out), audited with its secret hidden. ``values``
    gets the stored event types and secret (the answer shows the secret, once)."""
    values["event_types"] = list(dict.fromkeys(values["event_types"]))
    values.setdefault("secret", new_secret())
    webhook = Webhook(id=uuid.uuid4(), created_by=actor_id, **values)
    session.add(webhook)
    session.flush()
    audit(session, "webhooks", webhook.id, "created", actor_id, _audit_values(values))
    return webhook


def change_webhook(session, webhook: Webhook, values: dict[str, Any], actor_id: uuid.UUID | None) -> dict:
    """Change a webhook's URL, event types, description, active or secret; audit what
    changed (a new secret as ``[changed]``) and return it."""
    if "event_types" in values:
        values["event_types"] = list(dict.fromkeys(values["event_types"]))
    secret = values.pop("secret", None)
    changes = apply_changes(webhook, values)
    if secret is not None and secret != webhook.secret:
        webhook.secret = secret
        changes["secret"] = ["[hidden]", "[changed]"]
    if changes:
        audit(session, "webhooks", webhook.id, "changed", actor_id, changes)
    return changes


def delete_webhook(session, webhook: Webhook, actor_id: uuid.UUID | None) -> None:
    """Delete a webhook and its delivery log (audited); the outbox keeps the events."""
    audit(session, "webhooks", webhook.id, "deleted", actor_id)
    session.delete(webhook)


# -- finding -----------------------------------------------------------------------------


def webhooks_statement(active: bool | None = None):
    """SELECT of the tenant's webhooks, oldest first (``active``: only those, or the others)."""
    stmt = select(Webhook).order_by(Webhook.created_at, Webhook.id)
    if active is not None:
        stmt = stmt.where(Webhook.active.is_(active))
    return stmt


def find_webhook(session, webhook_id: uuid.UUID) -> Webhook | None:
    """The tenant's webhook, or ``None``."""
    return session.scalar(select(Webhook).where(Webhook.id == webhook_id))


def deliveries_statement(webhook_id: uuid.UUID, status: str | None = None, event_type: str | None = None):
    """SELECT of a webhook's delivery log, newest first, optionally of one status or event type."""
    stmt = (select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()))
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    if event_type:
        stmt = stmt.where(WebhookDelivery.event_type == event_type)
    return stmt


def find_delivery(session, webhook_id: uuid.UUID, delivery_id: uuid.UUID, *,
                  reload: bool = False) -> WebhookDelivery | None:
    """The tenant's delivery of that webhook, or ``None`` (``reload``: re-read from the database)."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id,
                                         WebhookDelivery.webhook_id == webhook_id)
    if reload:
        stmt = stmt.execution_options(populate_existing=True)
    return session.scalar(stmt)


# -- sending by hand ---------------------------------------------------------------------


def _active(webhook: Webhook) -> None:
    if not webhook.active:
        raise WebhookConflict("The webhook is inactive: activate it first.")


def ping(session, webhook: Webhook) -> WebhookDelivery:
    """Store a ``ping`` event and deliver it to ``webhook`` only (the caller commits).

    :raises WebhookConflict: the webhook is inactive.
    """
    _active(webhook)
    now = utcnow()
    event = OutboxEvent(id=uuid.uuid4(), type=PING, roles=[], created_at=now,
                        payload={"webhook_id": str(webhook.id), "message": "ping from servq"})
    session.add(event)
    return new_delivery(session, webhook.id, event, now)


def redeliver(session, webhook: Webhook, delivery: WebhookDelivery) -> WebhookDelivery:
    """A new delivery (new id, fresh attempts) of ``delivery``'s event to its webhook.

    The caller commits. The body is the same event as before; ``redelivery_of`` names
    the original delivery.

    :raises WebhookConflict: the webhook is inactive, or the delivery is still pending
        (it is retried automatically).
    """
    _active(webhook)
    if delivery.status == "pending":
        raise WebhookConflict("The delivery is still pending; it is retried automatically "
                              f"(next attempt at {delivery.next_attempt_at.isoformat()}).")
    event = session.scalar(select(OutboxEvent).where(OutboxEvent.id == delivery.event_id))
    return new_delivery(session, delivery.webhook_id, event, utcnow(), redelivery_of=delivery.id)
