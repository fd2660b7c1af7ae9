"""The tenant's business calendar: one row per tenant holding its calendar document."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class TenantCalendar(TenantOwned, Base):
    """A tenant's working hours, holidays and time zone.

    ``document`` is the plain-dict form read by
    :meth:`core.calendar.BusinessCalendar.from_dict` (as validated and normalised by
    :class:`core.calendar.CalendarSchema`). A tenant without a row works the default
    calendar of :func:`core.calendar.tenant.default_document`.
    """

    __tablename__ = "calendars"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id"),  # one calendar per tenant
    )

    document: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
