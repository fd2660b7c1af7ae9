"""Daily KPI rollups: a cache of per-day sums, rebuilt from the records they summarise.

``kpi_days`` holds, per tenant-local day and (site, staff, kind, standard), the sums the
record and evaluation KPIs need. A row with ``standard_code = ''`` counts records; the
others summarise the evaluations against one standard. Rows are never updated in place:
:mod:`core.kpis.rollups` deletes a day's rows and inserts them again from the raw tables,
for the days up to ``kpi_states.rolled_until`` (exclusive) and the days a write has
marked in ``kpi_dirty_days``. A KPI reads the rollups for rolled, clean days and the raw
tables for the rest, so an answer is never stale.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKeyConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class KpiDay(TenantOwned, Base):
    """The sums of one tenant-local day for one (site, staff, kind, standard)."""

    __tablename__ = "kpi_days"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index(None, "tenant_id", "day"),
    )

    day: Mapped[date]
    site_id: Mapped[uuid.UUID | None]
    staff_id: Mapped[uuid.UUID | None]
    kind: Mapped[str] = mapped_column(String(100))
    standard_code: Mapped[str] = mapped_column(String(100), default="")
    records: Mapped[int] = mapped_column(default=0)
    scored: Mapped[int] = mapped_column(default=0)
    sum_percent: Mapped[float] = mapped_column(default=0)
    judged: Mapped[int] = mapped_column(default=0)
    passed: Mapped[int] = mapped_column(default=0)
    failed_critical: Mapped[int] = mapped_column(default=0)


class KpiState(TenantOwned, Base):
    """How far a tenant's rollups reach: days before ``rolled_until`` (tenant-local, in
    ``timezone``) are rolled up, except the dirty ones."""

    __tablename__ = "kpi_states"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id"),
    )

    timezone: Mapped[str] = mapped_column(String(64))
    rolled_until: Mapped[date | None]
    refreshed_at: Mapped[datetime] = mapped_column(default=utcnow)


class KpiDirtyDay(TenantOwned, Base):
    """A tenant-local day whose records changed after it was rolled up."""

    __tablename__ = "kpi_dirty_days"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "day"),
    )

    day: Mapped[date]
    marked_at: Mapped[datetime] = mapped_column(default=utcnow)
