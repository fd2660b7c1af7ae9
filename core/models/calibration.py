"""Calibration sessions: several reviewers score the same records blind, to agree."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class CalibrationSession(TenantOwned, Base):
    """A facilitator's session: 3-5 records, one standard version, several reviewers.

    ``status``: ``open`` (reviews come in) → ``review`` (every review is in, or the
    facilitator stopped them) → ``closed`` (decisions recorded).
    """

    __tablename__ = "calibration_sessions"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index(None, "tenant_id", "created_at"),
    )

    title: Mapped[str] = mapped_column(String(200))
    standard_code: Mapped[str] = mapped_column(String(100))
    standard_version: Mapped[int]
    subject_record_ids: Mapped[list[Any]] = mapped_column(default=list)
    participant_ids: Mapped[list[Any]] = mapped_column(default=list)
    facilitator_id: Mapped[uuid.UUID | None]
    expert_id: Mapped[uuid.UUID | None]
    blind: Mapped[bool] = mapped_column(default=True)
    due_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="open")
    notes: Mapped[str | None] = mapped_column(Text)
    decisions: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None]


class CalibrationReview(TenantOwned, Base):
    """One participant's review of one subject in a calibration session: the answers and
    what the pinned standard version makes of them. Kept apart from records and
    evaluations, so it never counts in KPIs, quality files, actions or the ledger."""

    __tablename__ = "calibration_reviews"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "session_id"],
                             ["calibration_sessions.tenant_id", "calibration_sessions.id"], ondelete="CASCADE",
                             name="fk_calibration_reviews_session"),
        UniqueConstraint("tenant_id", "session_id", "participant_id", "subject_record_id",
                         name="uq_calibration_reviews_one_per_subject"),
    )

    session_id: Mapped[uuid.UUID]
    participant_id: Mapped[uuid.UUID]
    subject_record_id: Mapped[uuid.UUID]
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    percent: Mapped[float | None]
    passed: Mapped[bool | None]
    items: Mapped[list[Any]] = mapped_column(default=list)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
