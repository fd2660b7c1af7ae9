"""How deadlines count time.

A :class:`Calendar` answers two questions: when is ``start + duration`` due, and how much
time counts between two instants. :data:`WALL` counts every second (wall-clock time). A
business calendar (working hours, holidays, a time zone) implements the same protocol
elsewhere and is passed to :func:`core.scoring.evaluate`; ``deadline`` rules with
``clock = "business"`` use it, the others always use :data:`WALL`.

Every datetime given to or returned by a calendar is timezone-aware.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Calendar(Protocol):
    """The protocol every calendar implements."""

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """Return the instant at which ``duration`` of counted time after ``start`` ends."""

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Return the counted time between ``start`` and ``end`` (``end >= start``)."""


class WallClock:
    """Wall-clock time: every second counts, days are 24 hours."""

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """Return ``start + duration``."""
        return start + duration

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Return ``end - start``."""
        return end - start

    def __repr__(self) -> str:
        return "WallClock()"


WALL = WallClock()
