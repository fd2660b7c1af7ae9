"""The tenant's webhooks: signing secrets, a test ping and redelivery.

Emitting events is :mod:`core.notify.outbox`'s; sending them is :mod:`core.notify.delivery`'s.
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import select

from servq.core.db import utcnow
from servq.core.models import OutboxEvent, Webhook, WebhookDelivery
from servq.core.notify.outbox import PING, new_delivery


def ping(session, webhook: Webhook) -> WebhookDelivery:
    """Store a ``ping`` event and deliver it to ``webhook`` only (the caller commits)."""
    now = utcnow()
    event = OutboxEvent(id=uuid.uuid4(), type=PING, roles=[], created_at=now,
                        payload={"webhook_id": str(webhook.id), "message": "ping from servq"})
    session.add(event)
    return new_delivery(session, webhook.id, event, now)


def redeliver(session, delivery: WebhookDelivery) -> WebhookDelivery:
    """A new delivery (new id, fresh attempts) of ``delivery``'s event to its webhook.

    The caller commits. The body is the same event as before; ``redelivery_of`` names
    the original delivery.
    """
    event = session.scalar(select(OutboxEvent).where(OutboxEvent.id == delivery.event_id))
    return new_delivery(session, delivery.webhook_id, event, utcnow(), redelivery_of=delivery.id)


def new_secret() -> str:
    """A new random signing secret (256 bits)."""
    return "whsec_" + secrets.token_urlsafe(32)
