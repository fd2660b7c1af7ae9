"""Due instants that are not ``start + limit``: a local time of day, and a limit before a moment.

Two answers for ``deadline`` rules that say *when* rather than *how long*:

* :func:`local_time_due`: ``"08:30"`` on the calendar-local date of an instant, optionally
  ``days_after`` calendar days later, optionally rolled forward to the next working day
  (``working_day``). Local times are resolved with :mod:`zoneinfo` at ``fold=0``: a time
  that does not exist (the spring-forward gap, 02:30 on the night clocks go forward) is
  read with the offset in force before the change, which lands it *after* the gap (02:30
  becomes 03:30 summer time); a time that occurs twice (the autumn fall-back) is its
  **first** occurrence (summer time).
* :func:`due_before`: a moment less a limit: real time for a plain limit (``"30 minutes"``),
  working time of the calendar for working hours or minutes (``"2 working hours"`` before
  Monday 10:00 on a 09:00-18:00 calendar is Friday 17:00).

Pure: no database, no Flask. The scoring engine and the deadline clocks both call these,
so an evaluation and its clock always give the same due instant.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from servq.core.calendar.arithmetic import to_utc
from servq.core.calendar.limits import Limit

UTC = dt.timezone.utc
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
#: How far back :func:`due_before` looks for enough working time (then it gives up).
_MAX_LOOKBACK = dt.timedelta(days=3 * 366)


def parse_time_of_day(text: str) -> dt.time:
    """``"08:30"`` as a :class:`datetime.time`; :class:`ValueError` for anything but ``HH:MM``."""
    match = _TIME.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"a time of day is written HH:MM (24-hour), e.g. '08:30', not {text!r}")
    return dt.time(int(match.group(1)), int(match.group(2)))


def zone_of(calendar) -> dt.tzinfo:
    """The time zone of ``calendar`` (a business calendar's ``timezone``); UTC for a wall clock."""
    name = getattr(calendar, "timezone", None)
    return ZoneInfo(name) if isinstance(name, str) else UTC


def local_time_due(calendar, start: dt.datetime, at: dt.time, *, days_after: int = 0,
                   working_day: bool = False) -> dt.datetime:
    """When a rule "due at ``at`` local time" is due for a clock started at ``start`` (UTC).

    The day is the local date of ``start`` in the calendar's time zone, ``days_after``
    calendar days later; with ``working_day``, a day without working time (weekend, public
    or extra holiday) rolls forward to the next working day (a calendar without working
    days, such as the wall clock, never rolls). A start already past that day's time is
    due at that time all the same (the item is breached): write ``days_after = 1`` for
    "by 08:30 the next morning".
    """
    zone = zone_of(calendar)
    day = to_utc(start, "start").astimezone(zone).date() + dt.timedelta(days=days_after)
    if working_day and hasattr(calendar, "is_working_day"):
        for _ in range(366):
            if calendar.is_working_day(day):
                break
            day += dt.timedelta(days=1)
    # fold=0: a nonexistent time resolves forward, an ambiguous one to its first occurrence.
    return dt.datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def due_before(calendar, moment: dt.datetime, limit: Limit) -> dt.datetime:
    """``moment`` less ``limit`` (UTC): real time for a plain limit; for a working limit,
    the latest instant with ``limit`` of the calendar's working time between it and
    ``moment`` (whole working days are not accepted here: the rule's schema refuses them)."""
    moment = to_utc(moment, "due")
    span = limit.timedelta
    if not limit.working or not hasattr(calendar, "elapsed_excluding"):
        return moment - span
    # elapsed(moment - n seconds, moment) only grows with n: widen the window, then
    # bisect for the least whole n that leaves enough working time.
    def enough(seconds: int) -> bool:
        return calendar.elapsed(moment - dt.timedelta(seconds=seconds), moment) >= span

    high = max(int(span.total_seconds()), 3600)
    while not enough(high):
        high *= 2
        if dt.timedelta(seconds=high) > _MAX_LOOKBACK:
            raise ValueError(f"no {limit} of working time in the three years before {moment.isoformat()}")
    low = 0
    while low < high:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle + 1
    return moment - dt.timedelta(seconds=high)
