"""The quality engine's tables: a tenant's standards, evaluations, corrective actions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class StandardVersion(TenantOwned, Base):
    """One version of one of the tenant's standards; the highest version is in force.

    ``document`` is the whole standard as :func:`core.scoring.dump_standard` writes it,
    so a version can be evaluated without its baseline. ``baseline`` names what it was
    adopted from (``"<plugin id>:<code>@<shipped version>"``, ``None`` for a standard the
    tenant wrote itself) and ``overrides`` the tenant's changes to that baseline.
    """

    __tablename__ = "standard_versions"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "code", "version"),
    )

    code: Mapped[str] = mapped_column(String(100))
    version: Mapped[int]
    document: Mapped[dict[str, Any]]
    baseline: Mapped[str | None] = mapped_column(String(200))
    overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Evaluation(TenantOwned, Base):
    """The latest evaluation of one record against one standard (one row per pair).

    ``items`` holds the per-item outcomes as :meth:`core.scoring.Evaluation.as_dict`
    writes them; the scalar columns are there for KPIs computed in SQL.
    """

    __tablename__ = "evaluations"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "record_id"], ["records.tenant_id", "records.id"],
                             ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "record_id", "standard_code"),
        Index(None, "tenant_id", "standard_code", "evaluated_at"),
    )

    record_id: Mapped[uuid.UUID]
    standard_code: Mapped[str] = mapped_column(String(100))
    standard_version: Mapped[int]
    evaluated_at: Mapped[datetime]
    total: Mapped[float]
    max_total: Mapped[float]
    percent: Mapped[float | None]
    grade: Mapped[str | None] = mapped_column(String(20))
    passed: Mapped[bool | None]
    complete: Mapped[bool]
    failed_critical: Mapped[list[Any]] = mapped_column(default=list)
    items: Mapped[list[Any]] = mapped_column(default=list)
    # The percent its rules gave before items overridden by a decided dispute (else None).
    original_percent: Mapped[float | None]
    # A dispute of this evaluation is open (filed, or appealed and not yet decided).
    disputed: Mapped[bool] = mapped_column(default=False, server_default=text("false"))


class Action(TenantOwned, Base):
    """A corrective action: opened from a failed item, a breached deadline or by hand.

    Automatic actions carry ``record_id``, ``standard_code`` and ``item_code``; the unique
    ``source_key`` keeps re-evaluations from opening the same action twice.
    """

    __tablename__ = "actions"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "record_id"], ["records.tenant_id", "records.id"]),
        UniqueConstraint("tenant_id", "source_key"),
        Index(None, "tenant_id", "status", "due_at"),
        Index(None, "tenant_id", "record_id"),
        Index(None, "tenant_id", "owner_id", "status"),
    )

    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20), default="manual")  # critical|item|deadline|manual
    source_key: Mapped[str | None] = mapped_column(String(300))
    record_id: Mapped[uuid.UUID | None]
    standard_code: Mapped[str | None] = mapped_column(String(100))
    standard_version: Mapped[int | None]
    item_code: Mapped[str | None] = mapped_column(String(100))
    owner_id: Mapped[uuid.UUID | None]  # a user (global id) who is a member of the tenant
    status: Mapped[str] = mapped_column(String(20), default="open")
    due_at: Mapped[datetime | None]
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    done_at: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]
