"""The tenant's own values of core's [P] defaults (dispute windows, stall limits): one
validated document per tenant. What the settings are lives in :mod:`servq.core.settings`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class TenantSettings(TenantOwned, Base):
    """The settings a tenant changed from core's defaults (``document``; what it leaves out
    keeps the default); ``version`` counts its changes."""

    __tablename__ = "tenant_settings"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", name="uq_tenant_settings_tenant"),
    )

    document: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=1)
    updated_by: Mapped[uuid.UUID | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
