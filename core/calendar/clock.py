"""How deadlines count time: the one Calendar protocol, the 24-hour clock, and due times.

A :class:`Calendar` answers two questions: when is ``start + limit`` due, and how much
time counts between two instants. Anything with ``add(start, duration)`` and
``elapsed(start, end)`` is one: :class:`~core.calendar.model.BusinessCalendar` counts
working time (working hours, holidays, a time zone), :class:`WallClock` counts every
second (24-hour services, or a tenant without a calendar); :data:`WALL` is *the* wall
clock, the one instance everyone passes (the scoring engine, the evaluations and the
deadline clocks recognise it by identity, ``calendar is WALL``, to take the fast path).

``add`` takes a :class:`~core.calendar.limits.Limit` (what deadline rules hold), its text,
or a ``timedelta`` of the calendar's time. Every datetime given to or returned by a
calendar is timezone-aware. A ``deadline`` rule whose limit counts working time uses the
calendar passed to :func:`core.scoring.evaluate`; every other deadline uses :data:`WALL`,
which counts a working limit as wall time (a working day is 24 hours).
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable, Protocol, runtime_checkable

from servq.core.calendar.arithmetic import in_zone_of, merge_pauses, to_utc
from servq.core.calendar.limits import Limit, parse_limit

Pause = tuple[dt.datetime, "dt.datetime | None"]


@runtime_checkable
class Calendar(Protocol):
    """What deadline rules need from a calendar: the protocol every calendar implements."""

    def add(self, start: dt.datetime, duration) -> dt.datetime:
        """``start`` plus a :class:`Limit`, its text, or a ``timedelta`` of the calendar's time."""

    def elapsed(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """The calendar's time between two instants."""


class WallClock:
    """A calendar where every minute counts: limits are plain elapsed time.

    Working limits count as wall time too (a working day is 24 hours). Results come back
    in the time zone of the instant passed in.
    """

    def add(self, start: dt.datetime, duration: Limit | str | dt.timedelta) -> dt.datetime:
        """``start`` plus ``duration`` in real elapsed time (correct across DST)."""
        if isinstance(duration, (str, Limit)):
            duration = parse_limit(duration).timedelta
        if not isinstance(duration, dt.timedelta):
            raise TypeError(f"Cannot add {type(duration).__name__} to an instant.")
        return in_zone_of(to_utc(start, "start") + duration, start)

    def elapsed(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Real time between two instants."""
        return to_utc(end, "end") - to_utc(start, "start")

    def elapsed_excluding(self, start: dt.datetime, end: dt.datetime,
                          pauses: Iterable[Pause]) -> dt.timedelta:
        """Real time between two instants minus the paused stretches."""
        total = self.elapsed(start, end)
        if total <= dt.timedelta(0):
            return total
        return total - sum((self.elapsed(a, b) for a, b in merge_pauses(start, end, pauses)),
                           dt.timedelta(0))

    def is_working(self, instant: dt.datetime) -> bool:
        """Always true."""
        to_utc(instant)
        return True

    def next_working_moment(self, instant: dt.datetime) -> dt.datetime:
        """``instant`` itself."""
        to_utc(instant)
        return instant

    def __repr__(self) -> str:
        return "WallClock()"


#: Real time: the wall clock every module passes (compared by identity for fast paths).
WALL = WallClock()


def due(start: dt.datetime, limit: Limit | str, calendar: Calendar | None = None,
        pauses: Iterable[Pause] = ()) -> dt.datetime | None:
    """When a clock started at ``start`` with ``limit`` runs out on ``calendar``.

    Wall-clock limits ignore the calendar. Each pause that begins before the (moving) due
    time pushes it back by the time the pause held: working time for a working limit, real
    time for a wall limit. A pause still running (``(paused_at, None)``) that began before
    the due time means the clock is stopped: the result is None.
    """
    limit = parse_limit(limit)
    clock = calendar if calendar is not None and limit.working else WALL
    result = clock.add(start, limit)
    for a, b in merge_pauses(start, None, pauses):
        if a >= to_utc(result):
            break
        if b is None:
            return None
        result = clock.add(result, clock.elapsed(a, b))
    return result
