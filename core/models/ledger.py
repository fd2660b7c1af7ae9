"""The rewards and penalties ledger (奖罚): entries per staff member, the tenant's rules,
and the flags of repeated faults. Rules live in :mod:`servq.core.ledger`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class LedgerEntry(TenantOwned, Base):
    """A reward or a penalty of one staff member: ``points`` always, ``amount`` and
    ``currency`` only when the tenant's rules turn money on.

    ``source_key`` makes automatic posting idempotent (``item:<record>:<standard>:<item>``,
    ``complaint:<record>:<role>``, ``suggestion:<record>``); manual entries have none.
    ``month`` is ``YYYY-MM`` in the tenant's time zone. ``status``: proposed → approved →
    applied, voided, or held while a dispute of the source evaluation is open.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "staff_id"], ["staff.tenant_id", "staff.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "source_key", name="uq_ledger_entries_source_key"),
        Index(None, "tenant_id", "staff_id", "month"),
        Index(None, "tenant_id", "month", "status"),
        Index(None, "tenant_id", "record_id", "standard_code"),
    )

    staff_id: Mapped[uuid.UUID]
    site_id: Mapped[uuid.UUID | None]
    kind: Mapped[str] = mapped_column(String(10))
    points: Mapped[float]
    amount: Mapped[float | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    rule: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[uuid.UUID | None]
    standard_code: Mapped[str | None] = mapped_column(String(100))
    item_code: Mapped[str | None] = mapped_column(String(100))
    complaint_id: Mapped[uuid.UUID | None]
    month: Mapped[str] = mapped_column(String(7))
    status: Mapped[str] = mapped_column(String(10), default="proposed")
    large: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str | None] = mapped_column(Text)
    source_key: Mapped[str | None] = mapped_column(String(300))
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LedgerRules(TenantOwned, Base):
    """The tenant's ledger rules: one validated document per tenant (``version`` counts
    its changes). A tenant without one posts nothing automatically."""

    __tablename__ = "ledger_rules"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", name="uq_ledger_rules_tenant"),
    )

    document: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=1)
    updated_by: Mapped[uuid.UUID | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LedgerFlag(TenantOwned, Base):
    """A staff member with repeated faults in a calendar month (the same item, or any
    penalties, ``threshold`` times): for a manager to decide, never a sanction by itself.
    One per staff member and month (``flag_key``)."""

    __tablename__ = "ledger_flags"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "flag_key", name="uq_ledger_flags_key"),
        Index(None, "tenant_id", "month", "status"),
    )

    staff_id: Mapped[uuid.UUID]
    month: Mapped[str] = mapped_column(String(7))
    count: Mapped[int]
    items: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(10), default="open")
    flag_key: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
