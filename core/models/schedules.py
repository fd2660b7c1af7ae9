"""Recurring obligations: a kind of record due at a site on a recurrence (iCalendar RRULE)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, String, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class Schedule(TenantOwned, Base):
    """An obligation such as "fire equipment patrolled monthly at estate A".

    The recurrence ``rrule`` (RFC 5545, e.g. ``FREQ=MONTHLY``) starting at ``dtstart``
    cuts time into periods: each occurrence starts one and the next ends it. A period is
    *met* by a live record of ``kind`` (at ``site_id`` when set; evaluated against
    ``standard_code`` when set) whose ``occurred_at`` lies in it, *missed* once it has
    ended more than ``grace_seconds`` ago without one, and *open* until then.

    The breach watch reports each newly missed period once: ``checked_until`` is the
    deadline (end + grace) of the last period it has judged, ``next_check_at`` the next
    deadline to look at. ``key`` lets plugins create a schedule idempotently.

    Quotas (:mod:`core.deadlines.quotas`): a period needs ``min_count`` matching records;
    with ``per = "staff"`` it needs them from each staff member chosen by
    ``staff_selector`` (who is named by the record field ``staff_field``), and is judged
    per person. With ``working_days`` a period without working time in the tenant's
    business calendar is not an obligation at all.
    """

    __tablename__ = "schedules"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "site_id"], ["sites.tenant_id", "sites.id"]),
        UniqueConstraint("tenant_id", "key"),
        Index(None, "tenant_id", "active", "next_check_at"),
        Index(None, "tenant_id", "site_id"),
    )

    key: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(100))
    standard_code: Mapped[str | None] = mapped_column(String(100))
    #: Only records whose ``data`` has these top-level values meet the obligation
    #: (``{"facility": "fire_equipment", "check": "patrol"}``); ``{}``: any record.
    match: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    site_id: Mapped[uuid.UUID | None]
    rrule: Mapped[str] = mapped_column(String(500))
    dtstart: Mapped[datetime]
    grace_seconds: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    action_on_miss: Mapped[bool] = mapped_column(default=False)
    escalate_to: Mapped[list[Any]] = mapped_column(default=list)
    #: ``"schedule"`` (the obligation is the schedule's) or ``"staff"`` (each chosen person's).
    per: Mapped[str] = mapped_column(String(10), default="schedule", server_default=text("'schedule'"))
    #: Who is obligated when ``per == "staff"``: ``{"ids": [...], "site_id": ..., "title": ...,
    #: "role": ...}`` (all given conditions hold; ``{}``: every active staff member).
    staff_selector: Mapped[dict[str, Any] | None]
    #: The record field naming the person: ``staff_id``, ``created_by`` or ``data.<field>``.
    staff_field: Mapped[str | None] = mapped_column(String(100))
    #: Records a period needs (per person when ``per == "staff"``).
    min_count: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    #: Periods without working time in the tenant's calendar are not obligations.
    working_days: Mapped[bool] = mapped_column(default=False, server_default=false())
    checked_until: Mapped[datetime]
    next_check_at: Mapped[datetime | None]
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
