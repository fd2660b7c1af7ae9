"""Disputes of evaluations and the item overrides they leave behind."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class Dispute(TenantOwned, Base):
    """A staff member's dispute of the evaluation of one of their records against one
    standard: whole (``wrong_subject``, ``not_applicable``) or per item (``score``), with
    a reason; decided per item by an arbitrator, appealable once to a second level.

    ``items`` holds ``{item, proposed: {outcome, points}, reason, evidence}`` per disputed
    item; ``decisions`` one entry per level ``{level, result, items: [{item, accepted,
    outcome, note}], note, by, at}``. ``decide_by`` / ``appeal_by`` are the step's due
    instants (working time of the tenant's calendar).
    """

    __tablename__ = "disputes"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "record_id"], ["records.tenant_id", "records.id"],
                             ondelete="CASCADE"),
        Index(None, "tenant_id", "status", "filed_at"),
        Index(None, "tenant_id", "record_id", "standard_code"),
        Index(None, "tenant_id", "staff_id", "filed_at"),
    )

    record_id: Mapped[uuid.UUID]
    standard_code: Mapped[str] = mapped_column(String(100))
    standard_version: Mapped[int]
    staff_id: Mapped[uuid.UUID | None]
    reviewer_id: Mapped[uuid.UUID | None]  # who scored it (an inspection's inspector)
    type: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    items: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(20), default="open")
    level: Mapped[int] = mapped_column(default=1)
    result: Mapped[str | None] = mapped_column(String(30))
    arbitrator_id: Mapped[uuid.UUID | None]
    decisions: Mapped[list[Any]] = mapped_column(default=list)
    original_percent: Mapped[float | None]
    final_percent: Mapped[float | None]
    filed_by: Mapped[uuid.UUID | None]
    filed_at: Mapped[datetime]
    decide_by: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    appeal_by: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EvaluationOverride(TenantOwned, Base):
    """An item's outcome decided by a person (an accepted dispute) instead of its rule.

    One per record, standard and item: every later scoring of the record honours it,
    whatever the standard's version (an item the standard no longer has is ignored).
    ``original`` keeps what the rule gave when the override was made.
    """

    __tablename__ = "evaluation_overrides"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "record_id"], ["records.tenant_id", "records.id"],
                             ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "record_id", "standard_code", "item_code",
                         name="uq_evaluation_overrides_item"),
    )

    record_id: Mapped[uuid.UUID]
    standard_code: Mapped[str] = mapped_column(String(100))
    item_code: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(20))
    points: Mapped[float | None]
    original: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str | None] = mapped_column(Text)
    dispute_id: Mapped[uuid.UUID | None]
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
