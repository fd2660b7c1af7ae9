"""Working-time arithmetic on a :class:`~core.calendar.model.BusinessCalendar`.

Conventions
-----------
* Instants are timezone-aware datetimes; a naive one is a ``ValueError``. Results come
  back in the time zone of the instant passed in (UTC in, UTC out), whatever the
  calendar's zone; the calendar's zone only decides which instants are working time.
* Working spans are half open: at 12:00 on a ``09:00-12:00`` day the person has stopped.
* ``add_working`` returns the *earliest* instant at which the working time is used up, so
  8 working hours from Friday 20:00 end on Monday at 18:00, not on Tuesday at 09:00.
* **Working days.** ``add_working_days(start, n)``: the clock starts at the next working
  moment ``s`` (``start`` itself inside working hours). When ``s`` is the beginning of a
  working day, the result is the end of the n-th working day counting that day as the
  first (filed Friday evening, 5 working days: Monday to Friday, due Friday at close).
  Otherwise it is the same working position on the n-th working day after ``s``'s day:
  filed Monday 10:00 (one working hour into the day) → one working hour into the day
  five working days later (next Monday 10:00 with equal hours), capped at that day's
  close when it is a shorter day. This is how people read "within 5 working days", and
  it is the same working time as adding n ordinary working days.
* Iteration is per day and per span, never per minute, and an ordinary week (no
  holidays, no moved days, no clock change) is skipped in one step.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Iterable

from servq.core.calendar.limits import Limit, parse_limit

if TYPE_CHECKING:
    from servq.core.calendar.model import BusinessCalendar

UTC = dt.timezone.utc
ZERO = dt.timedelta(0)
ONE_DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)
# A calendar that stays without working time this long is broken (all days holidays).
MAX_DAYS = 366 * 20


class NoWorkingTime(ValueError):
    """The calendar has no working time in the years searched."""


def to_utc(instant: dt.datetime, name: str = "instant") -> dt.datetime:
    """``instant`` in UTC; TypeError for a non-datetime, ValueError for a naive one."""
    if not isinstance(instant, dt.datetime):
        raise TypeError(f"{name} must be a datetime, not {type(instant).__name__}.")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware; got naive {instant.isoformat()}.")
    return instant.astimezone(UTC)


def in_zone_of(result: dt.datetime, like: dt.datetime) -> dt.datetime:
    """``result`` expressed in the time zone of ``like`` (the instant the caller gave)."""
    return result.astimezone(like.tzinfo)


def is_working(cal: "BusinessCalendar", instant: dt.datetime) -> bool:
    """Whether ``instant`` is inside a working span of ``cal``."""
    t = to_utc(instant)
    return any(a <= t < b for a, b in cal.working_intervals(cal.local_date(t)))


def next_working_moment(cal: "BusinessCalendar", instant: dt.datetime) -> dt.datetime:
    """``instant`` when it is working time, else the start of the next working span."""
    t = to_utc(instant)
    day = cal.local_date(t)
    for _ in range(MAX_DAYS):
        for a, b in cal.working_intervals(day):
            if b > t:
                return in_zone_of(max(a, t), instant)
        day += ONE_DAY
    raise NoWorkingTime(f"No working time within {MAX_DAYS} days of {instant.isoformat()}.")


def add_working(cal: "BusinessCalendar", start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
    """The earliest instant at which ``duration`` of working time has passed since ``start``.

    A ``start`` outside working hours starts counting at the next working moment; a zero
    duration returns ``start`` unchanged.
    """
    t = to_utc(start, "start")
    if duration < ZERO:
        raise ValueError("A working duration cannot be negative.")
    if duration == ZERO:
        return start
    remaining = duration
    week_total = cal.week_total
    day = cal.local_date(t)
    first = True
    for _ in range(MAX_DAYS):
        # Days after the first lie wholly after t, so a whole ordinary week can be taken
        # at once; strictly greater so the answer is always found span by span.
        if not first and week_total and remaining > week_total and cal.is_ordinary_week(day):
            remaining -= week_total
            day += WEEK
            continue
        first = False
        for a, b in cal.working_intervals(day):
            if b <= t:
                continue
            a = max(a, t)
            if remaining <= b - a:
                return in_zone_of(a + remaining, start)
            remaining -= b - a
        day += ONE_DAY
    raise NoWorkingTime(f"No working time within {MAX_DAYS} days of {start.isoformat()}.")


def nth_working_day_after(cal: "BusinessCalendar", day: dt.date, n: int) -> dt.date:
    """The n-th working day after local ``day`` (``day`` itself for n = 0)."""
    per_week = cal.week_working_days
    remaining = n
    for _ in range(MAX_DAYS):
        if remaining <= 0:
            return day
        following = day + ONE_DAY
        if per_week and remaining > per_week and cal.is_ordinary_week(following):
            remaining -= per_week
            day += WEEK
            continue
        day = following
        if cal.is_working_day(day):
            remaining -= 1
    raise NoWorkingTime(f"No {n} working days within {MAX_DAYS} days of {day.isoformat()}.")


def add_working_days(cal: "BusinessCalendar", start: dt.datetime, days: int) -> dt.datetime:
    """``days`` working days after ``start``; the exact rule is in the module docstring."""
    to_utc(start, "start")
    if isinstance(days, bool) or not isinstance(days, int):
        raise TypeError("days must be an int.")
    if days < 0:
        raise ValueError("A number of working days cannot be negative.")
    if days == 0:
        return start
    s = to_utc(next_working_moment(cal, start))
    home = cal.local_date(s)
    position = sum((min(b, s) - a for a, b in cal.working_intervals(home) if a < s), ZERO)
    if position == ZERO:
        # Starting at the opening of a day: that day counts, the clock ends at a close.
        last = nth_working_day_after(cal, home, days - 1)
        return in_zone_of(cal.working_intervals(last)[-1][1], start)
    target = cal.working_intervals(nth_working_day_after(cal, home, days))
    for a, b in target:
        if position <= b - a:
            return in_zone_of(a + position, start)
        position -= b - a
    return in_zone_of(target[-1][1], start)  # a shorter day: due at its close


def elapsed(cal: "BusinessCalendar", start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    """Working time between ``start`` and ``end``; ``elapsed(b, a) == -elapsed(a, b)``."""
    s, e = to_utc(start, "start"), to_utc(end, "end")
    if e < s:
        return -elapsed(cal, end, start)
    total = ZERO
    week_total = cal.week_total
    day, last = cal.local_date(s), cal.local_date(e)
    first = True
    while day <= last:
        # A week whose days all lie strictly between the first and the last day is wholly
        # inside (s, e): its working time is the ordinary week's when nothing is special.
        if not first and day + WEEK <= last and cal.is_ordinary_week(day):
            total += week_total
            day += WEEK
            continue
        first = False
        for a, b in cal.working_intervals(day):
            a, b = max(a, s), min(b, e)
            if b > a:
                total += b - a
        day += ONE_DAY
    return total


def merge_pauses(start: dt.datetime, end: dt.datetime | None,
                 pauses: Iterable[tuple[dt.datetime, dt.datetime | None]]) -> list[tuple[dt.datetime, dt.datetime | None]]:
    """Pauses clipped to ``[start, end]`` (``end`` None: no upper bound), sorted and merged.

    A pause ``(a, None)`` is still running; it swallows everything after ``a``.
    """
    s = to_utc(start, "start")
    e = None if end is None else to_utc(end, "end")
    spans = []
    for a, b in pauses:
        a = max(to_utc(a, "pause start"), s)
        b = None if b is None else to_utc(b, "pause end")
        if e is not None:
            b = e if b is None else min(b, e)
        if b is not None and b <= a:
            continue
        spans.append((a, b))
    spans.sort(key=lambda p: p[0])
    merged: list[tuple[dt.datetime, dt.datetime | None]] = []
    for a, b in spans:
        if merged and (merged[-1][1] is None or a <= merged[-1][1]):
            pa, pb = merged[-1]
            merged[-1] = (pa, None if pb is None or b is None else max(pb, b))
        else:
            merged.append((a, b))
    return merged


def elapsed_excluding(cal: "BusinessCalendar", start: dt.datetime, end: dt.datetime,
                      pauses: Iterable[tuple[dt.datetime, dt.datetime | None]]) -> dt.timedelta:
    """Working time from ``start`` to ``end`` minus the working time inside ``pauses``.

    Pauses are ``(paused_at, resumed_at)`` pairs; ``resumed_at`` None means still paused.
    Overlapping pauses count once; parts outside ``[start, end]`` are ignored.
    """
    total = elapsed(cal, start, end)
    if to_utc(end, "end") <= to_utc(start, "start"):
        return total
    for a, b in merge_pauses(start, end, pauses):
        total -= elapsed(cal, a, b)
    return total


def add(cal: "BusinessCalendar", start: dt.datetime, duration: Limit | str | dt.timedelta) -> dt.datetime:
    """``start`` plus ``duration`` on ``cal`` (the scoring engine's Calendar protocol).

    ``duration`` is a :class:`Limit` or its text (working limits use the calendar, wall
    limits are plain elapsed time), or a ``timedelta`` taken as working time.
    """
    if isinstance(duration, str):
        duration = parse_limit(duration)
    if isinstance(duration, dt.timedelta):
        return add_working(cal, start, duration)
    if not isinstance(duration, Limit):
        raise TypeError(f"Cannot add {type(duration).__name__} to an instant.")
    if not duration.working:
        # In UTC: aware-datetime addition in a zone with DST would add wall-clock time.
        return in_zone_of(to_utc(start, "start") + duration.timedelta, start)
    if duration.unit == "day":
        return add_working_days(cal, start, duration.amount)
    return add_working(cal, start, duration.timedelta)
