"""How deadlines count time.

A :class:`Calendar` answers two questions: when is ``start + limit`` due, and how much
time counts between two instants. :data:`WALL` counts every second (wall-clock time).
A business calendar (working hours, holidays, a time zone: :class:`core.calendar.BusinessCalendar`)
implements the same protocol and is passed to :func:`core.scoring.evaluate`.

A ``deadline`` rule whose limit counts working time (``"5 working days"``,
``"8 working hours"``) or that says ``clock = "business"`` uses the calendar passed to
``evaluate``; every other deadline uses :data:`WALL`. Evaluated with :data:`WALL` (no
tenant calendar), a working limit counts as wall time (a working day is 24 hours).

``add`` takes a :class:`core.calendar.Limit` (what deadline rules hold) or a
``timedelta`` of the calendar's time. Every datetime given to or returned by a calendar
is timezone-aware.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from servq.core.calendar.limits import Limit, parse_limit


@runtime_checkable
class Calendar(Protocol):
    """The protocol every calendar implements."""

    def add(self, start: datetime, duration: Limit | timedelta) -> datetime:
        """Return the instant at which ``duration`` of counted time after ``start`` ends."""

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Return the counted time between ``start`` and ``end`` (``end >= start``)."""


class WallClock:
    """Wall-clock time: every second counts, days are 24 hours, a working day too."""

    def add(self, start: datetime, duration: Limit | str | timedelta) -> datetime:
        """Return ``start + duration`` (a :class:`Limit` or its text counts as its length)."""
        if isinstance(duration, (Limit, str)):
            duration = parse_limit(duration).timedelta
        return start + duration

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Return ``end - start``."""
        return end - start

    def __repr__(self) -> str:
        return "WallClock()"


WALL = WallClock()
