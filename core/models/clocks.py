"""Deadline clocks: one per record and deadline item of the standard in force."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from servq.core.db import Base, TenantOwned, utcnow


class Clock(TenantOwned, Base):
    """A running (or stopped) deadline of one record.

    ``due_at`` is when the target is reached given the pauses so far; ``next_check_at`` is
    the next instant the breach watch must look at it (the next warning, the due time, or
    a breach not yet escalated), ``None`` once nothing more can happen. ``warned`` lists
    the warning levels handled (50, 75, 100) so each is sent at most once; ``warn50_at``
    and ``warn75_at`` are the instants 50 % and 75 % of the target are used up (shifted by
    the pauses so far). ``breached_at`` is set, to the due time, once the breach watch has
    escalated the breach. A breach that the record's history, entered later, disproves (a
    stop in time, a pause) is withdrawn: ``breached_at`` is cleared and the escalation is
    kept in ``withdrawals`` (``[{breached_at, withdrawn_at, state}]``, oldest first).
    A clock due at a moment rather than after a limit keeps that instant in ``anchor_at``.
    """

    __tablename__ = "clocks"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "record_id"], ["records.tenant_id", "records.id"],
                             ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "record_id", "standard_code", "item_code"),
        Index(None, "tenant_id", "state", "next_check_at"),
        Index(None, "tenant_id", "state", "due_at"),
    )

    record_id: Mapped[uuid.UUID]
    standard_code: Mapped[str] = mapped_column(String(100))
    standard_version: Mapped[int]
    item_code: Mapped[str] = mapped_column(String(100))
    #: The due rule as shown: a limit ("30m", "5 working days"), or for a clock due at a
    #: moment "at data.appointment.to", "30m before data.window.to", "08:30 local".
    target: Mapped[str] = mapped_column(String(300))
    business: Mapped[bool] = mapped_column(default=False)
    start_at: Mapped[datetime]
    due_at: Mapped[datetime]
    #: The due instant before any pause, for a clock due at a moment (``due`` or
    #: ``due_time`` rules); ``None`` for a limit, whose due time is start + ``target``.
    #: Pauses move ``due_at`` later from here, so ``refresh`` needs no standard.
    anchor_at: Mapped[datetime | None]
    stop_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16), default="running")  # running|paused|met|breached
    paused_since: Mapped[datetime | None]
    pause_reason: Mapped[str | None] = mapped_column(String(300))
    pauses: Mapped[list[Any]] = mapped_column(default=list)  # [{start, end, reason, state, ...}]
    #: The item's pause rules: ``{"in": [states] (absent: every waiting state),
    #: "cap": {state or "total": limit text}}``; ``None``: every state, no cap.
    pause_rules: Mapped[dict[str, Any] | None]
    #: Real seconds of the closed pauses, and how many ended at a cap (KPIs sum them in SQL).
    paused_seconds: Mapped[float] = mapped_column(default=0.0, server_default=text("0"))
    cap_hits: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    warned: Mapped[list[Any]] = mapped_column(default=list)
    next_check_at: Mapped[datetime | None]
    warn50_at: Mapped[datetime | None]
    warn75_at: Mapped[datetime | None]
    breached_at: Mapped[datetime | None]
    withdrawals: Mapped[list[Any]] = mapped_column(default=list, server_default=text("'[]'"))
    #: Set when the clock stops: seconds from start to stop less the paused time, in
    #: wall-clock time and in the tenant's working time (KPIs aggregate them in SQL).
    elapsed_seconds: Mapped[float | None]
    working_seconds: Mapped[float | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
