"""Tenant data exports requested over the API and produced by a job."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class TenantExport(TenantOwned, Base):
    """One export of all of a tenant's rows; ``content`` is the gzipped JSON document."""

    __tablename__ = "tenant_exports"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index(None, "tenant_id", "created_at"),  # the list, newest first
    )

    status: Mapped[str] = mapped_column(String(16), default="queued")
    requested_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    row_count: Mapped[int | None]
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
