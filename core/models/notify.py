"""Notifications: the outbox of events, the tenant's webhooks and their deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class OutboxEvent(TenantOwned, Base):
    """One notification, stored whether or not any webhook receives it.

    ``roles`` names the roles the event is addressed to (empty: everyone who reads the
    outbox); ``dedupe_key`` makes an event happen once per tenant (a second
    :func:`core.notify.outbox.emit` with the same key stores and sends nothing).
    """

    __tablename__ = "outbox_events"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "dedupe_key"),
        Index(None, "tenant_id", "created_at"),
        Index(None, "tenant_id", "type", "created_at"),
    )

    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    roles: Mapped[list[Any]] = mapped_column(default=list)
    dedupe_key: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Webhook(TenantOwned, Base):
    """An HTTP endpoint of the tenant that receives the events it subscribes to.

    ``event_types`` holds exact types (``clock.breached``), prefix patterns
    (``clock.*``) or ``*``. ``secret`` signs every delivery (HMAC-SHA256); it is kept in
    clear because signing needs it, and is never returned by the API after creation
    (nor exported: see ``tenants.export.is_secret_column``).
    """

    __tablename__ = "webhooks"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index(None, "tenant_id", "active"),
        Index(None, "tenant_id", "created_at"),
    )

    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    event_types: Mapped[list[Any]] = mapped_column(default=list)
    description: Mapped[str] = mapped_column(String(500), default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookDelivery(TenantOwned, Base):
    """One event sent (or to be sent) to one webhook, with every attempt's outcome.

    ``status`` is ``pending`` (not yet accepted; ``next_attempt_at`` says when it is tried
    next), ``delivered`` (the receiver answered 2xx) or ``failed`` (out of attempts, or
    the webhook was deactivated). The id is the ``X-Servq-Delivery`` header, the same
    on every retry, so a receiver can drop duplicates. A manual redelivery is a new
    delivery whose ``redelivery_of`` names the original.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "webhook_id"], ["webhooks.tenant_id", "webhooks.id"],
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "event_id"], ["outbox_events.tenant_id", "outbox_events.id"],
                             ondelete="CASCADE"),
        Index(None, "tenant_id", "webhook_id", "created_at"),
        Index(None, "tenant_id", "event_id"),
        Index(None, "tenant_id", "status", "next_attempt_at"),
    )

    webhook_id: Mapped[uuid.UUID]
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_duration_ms: Mapped[int | None]
    redelivery_of: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
