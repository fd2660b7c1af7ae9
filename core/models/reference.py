"""Reference data every record points at: sites and staff."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class Site(TenantOwned, Base):
    """A place where service is delivered: a hotel, an estate, a depot, a service centre."""

    __tablename__ = "sites"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "code"),
    )

    code: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(500), default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Staff(TenantOwned, Base):
    """A member of staff whose work is recorded; may be linked to a user who logs in."""

    __tablename__ = "staff"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "site_id"], ["sites.tenant_id", "sites.id"]),
        ForeignKeyConstraint(["tenant_id", "reports_to"], ["staff.tenant_id", "staff.id"]),
        UniqueConstraint("tenant_id", "code"),
        Index(None, "tenant_id", "site_id"),
        Index(None, "tenant_id", "reports_to"),
    )

    code: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200), default="")
    site_id: Mapped[uuid.UUID | None]
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The member of staff they report to (their manager), of the same tenant; no cycles.
    reports_to: Mapped[uuid.UUID | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
