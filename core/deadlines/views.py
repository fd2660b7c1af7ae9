"""What a deadline clock shows and how record lists filter by clocks.

:func:`clock_view` gives a clock's time left or over and the percent used, in the clock's
own time; :func:`breached_clause` and :func:`due_before_clause` are the SQL conditions of
``GET /records?breached=`` and ``?due_before=``. The clocks themselves are kept by
:mod:`core.deadlines.clocks`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists

from servq.core.calendar import WALL
from servq.core.db import utcnow
from servq.core.deadlines.clocks import WATCHED, pause_spans, timekeeper
from servq.core.models import Clock, Record


# -- what a clock shows -----------------------------------------------------------------------


def clock_view(clock: Clock, calendar, now: datetime | None = None) -> dict[str, Any]:
    """Time left or over and the percent used, in the clock's own time, as of ``now``
    (a stopped clock is read at its stop, a paused one at its pause)."""
    now = now or utcnow()
    keeper = timekeeper(clock.business, calendar)
    reference = clock.stop_at or clock.paused_since or now
    closed = [(a, b) for a, b in pause_spans(clock) if b is not None]
    total = keeper.elapsed_excluding(clock.start_at, clock.due_at, closed)
    used = keeper.elapsed_excluding(clock.start_at, reference, closed) if reference > clock.start_at \
        else timedelta(0)
    left = keeper.elapsed(reference, clock.due_at) if reference < clock.due_at else timedelta(0)
    over = keeper.elapsed(clock.due_at, reference) if reference > clock.due_at else timedelta(0)
    return {
        "time_left_seconds": int(left.total_seconds()),
        "time_over_seconds": int(over.total_seconds()),
        "percent_used": round(100 * used / total, 1) if total > timedelta(0) else 100.0,
        "counted_at": reference,
        "time": "working" if keeper is not WALL else "wall",
    }


# -- record list filters ----------------------------------------------------------------------


def breached_clause(breached: bool = True):
    """SQL condition on :class:`Record`: it has (or, with ``False``, has no) breached clock.

    An EXISTS served by the clocks' ``(tenant_id, record_id, …)`` unique index.
    """
    clause = exists().where(Clock.tenant_id == Record.tenant_id, Clock.record_id == Record.id,
                            Clock.state == "breached")
    return clause if breached else ~clause


def due_before_clause(instant: datetime):
    """SQL condition on :class:`Record`: it has a clock still counting (running, or
    breached and not stopped) whose due time is before ``instant``."""
    return exists().where(Clock.tenant_id == Record.tenant_id, Clock.record_id == Record.id,
                          Clock.state.in_(WATCHED), Clock.stop_at.is_(None),
                          Clock.due_at < instant)
