"""The generic quality record: everything observed, of any kind."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class Record(TenantOwned, Base):
    """One observation, inspection, complaint, work order, delivery, ticket or call.

    ``kind`` names a record kind registered by a plugin; ``data`` is validated by that
    kind's schema. Records are never deleted, only marked ``deleted_at``.
    """

    __tablename__ = "records"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "site_id"], ["sites.tenant_id", "sites.id"]),
        ForeignKeyConstraint(["tenant_id", "staff_id"], ["staff.tenant_id", "staff.id"]),
        Index(None, "tenant_id", "occurred_at", "id"),
        Index(None, "tenant_id", "kind", "occurred_at"),
        Index(None, "tenant_id", "site_id", "occurred_at"),
        Index(None, "tenant_id", "staff_id", "occurred_at"),
        Index(None, "tenant_id", "status", "occurred_at"),
        # The stalled-record watch (core.deadlines.stalled): records not moved since a cutoff.
        Index(None, "tenant_id", "kind", "status", "status_since"),
        # A kind's reference (RecordKind.reference: a waybill number) names one live record
        # of the kind in the tenant; found by reference alone too (GET /records?reference=).
        Index("uq_records_tenant_id_reference_kind", "tenant_id", "reference", "kind", unique=True,
              postgresql_where=text("reference IS NOT NULL AND deleted_at IS NULL"),
              sqlite_where=text("reference IS NOT NULL AND deleted_at IS NULL")),
    )

    kind: Mapped[str] = mapped_column(String(100))
    site_id: Mapped[uuid.UUID | None]
    staff_id: Mapped[uuid.UUID | None]
    occurred_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(40), default="open")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The instants its workflow stamped ({"acknowledged_at": "...", ...}), read by deadlines.
    timestamps: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    escalation_level: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None]
    # When the record took its status (created: occurred_at; then each transition's instant).
    status_since: Mapped[datetime | None]
    # When the stalled-record watch found it stalled in that status; cleared when it moves.
    stalled_at: Mapped[datetime | None]
    # The value of its kind's reference field in ``data`` (RecordKind.reference), if any.
    reference: Mapped[str | None] = mapped_column(String(200))


# The reviews of a record (inspections naming it as their ``subject_record_id``), found by
# ``GET /records/<id>/reviews``: an index on the expression that query compares.
Index("ix_records_tenant_id_subject", Record.tenant_id,
      Record.data["subject_record_id"].as_string())
