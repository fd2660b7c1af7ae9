"""Generated reports: a weekly report too large to build in the request runs as a job
and its file is kept here until fetched (``GET /reports/runs/<id>``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class ReportRun(TenantOwned, Base):
    """One report build: ``queued`` → ``running`` → ``done`` (with the file) or ``failed``."""

    __tablename__ = "report_runs"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index(None, "tenant_id", "created_at"),
    )

    report: Mapped[str] = mapped_column(String(40))  # "weekly"
    period: Mapped[str] = mapped_column(String(20))  # "2026-W47"
    format: Mapped[str] = mapped_column(String(10))  # json | csv | xlsx | pdf
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(10), default="queued")
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    content_type: Mapped[str | None] = mapped_column(String(100))
    filename: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
