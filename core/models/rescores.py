"""Re-scoring jobs: records re-evaluated after a new version of a standard."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class StandardRescore(TenantOwned, Base):
    """One request to re-score the records of a standard's kinds in a time range.

    The job (:func:`core.records.rescore.rescore_standard`) walks the records in
    ``(occurred_at, id)`` order, chunk by chunk, and stores its progress after each chunk
    (``processed`` and the cursor), so a retried delivery resumes where it stopped.
    ``status``: ``queued`` → ``running`` → ``done`` or ``failed``; ``processed`` counts the
    records walked, ``skipped`` those of them that could not be scored (a value its rule
    cannot judge), which keep their previous evaluation.
    """

    __tablename__ = "standard_rescores"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index(None, "tenant_id", "code", "created_at"),
    )

    code: Mapped[str] = mapped_column(String(100))
    version: Mapped[int | None]  # the version in force the records were scored against
    since: Mapped[datetime]
    until: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default="queued")
    total: Mapped[int | None]
    processed: Mapped[int] = mapped_column(default=0)
    # Records whose values a rule cannot judge (left with their old evaluation).
    skipped: Mapped[int] = mapped_column(default=0)
    cursor_at: Mapped[datetime | None]
    cursor_id: Mapped[uuid.UUID | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
