"""The business calendar: which local hours of which days are working time.

A day's hours are decided in this order (first match wins):

1. ``extra_working_days`` (the tenant's own moved working days): makeup hours;
2. ``extra_holidays``: no hours;
3. a public holiday of ``country`` (``holidays`` library): no hours;
4. a working day the government moved onto a weekend (China's 调休; the library's
   ``weekend_workdays``): makeup hours;
5. the weekday's ``working_hours``.

Makeup hours are ``makeup_day_hours`` when set; otherwise the weekday's own hours, or
Monday's hours for a weekday that normally has none (a Saturday made a working day works a
normal Monday).

Working time is real elapsed time: a local span is turned into an interval of UTC
instants, so a span across a daylight-saving change is an hour shorter or longer.
Local times that do not exist (the spring-forward gap) resolve like ``zoneinfo`` with
``fold=0``, i.e. with the offset in force before the change.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable
from zoneinfo import ZoneInfo

import holidays

from servq.core.calendar import arithmetic
from servq.core.calendar.schema import CalendarSchema, Span, format_span

UTC = dt.timezone.utc
_CACHE_LIMIT = 8192  # day entries kept per calendar; cleared when exceeded

Interval = tuple[dt.datetime, dt.datetime]  # UTC, [start, end)


@dataclass(frozen=True)
class BusinessCalendar:
    """A tenant's working time: time zone, weekly hours, holidays and moved working days.

    Build it with :meth:`from_dict`. All arithmetic takes timezone-aware datetimes and
    returns them in the time zone of the (first) instant passed in; naive datetimes are a
    ``ValueError``.
    """

    timezone: str
    working_hours: tuple[tuple[Span, ...], ...]
    country: str | None = None
    subdivision: str | None = None
    extra_holidays: frozenset[dt.date] = frozenset()
    extra_working_days: frozenset[dt.date] = frozenset()
    makeup_day_hours: tuple[Span, ...] | None = None
    _cache: dict = field(default_factory=dict, init=False, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_holidays", frozenset(self.extra_holidays))
        object.__setattr__(self, "extra_working_days", frozenset(self.extra_working_days))
        if self.country is not None:
            object.__setattr__(self, "country", self.country.upper())

    # ----- construction -------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BusinessCalendar":
        """Validate a plain dict (a TOML ``[calendar]`` section) and build the calendar.

        Raises ``marshmallow.ValidationError`` whose ``messages`` name the bad field.
        """
        return cls(**CalendarSchema().load(data))

    def to_dict(self) -> dict[str, Any]:
        """The plain-dict form that :meth:`from_dict` reads back."""
        out: dict[str, Any] = {
            "timezone": self.timezone,
            "working_hours": CalendarSchema().fields["working_hours"]._serialize(
                self.working_hours, "working_hours", self),
            "country": self.country,
            "subdivision": self.subdivision,
            "extra_holidays": [d.isoformat() for d in sorted(self.extra_holidays)],
            "extra_working_days": [d.isoformat() for d in sorted(self.extra_working_days)],
        }
        if self.makeup_day_hours is not None:
            out["makeup_day_hours"] = [format_span(s) for s in self.makeup_day_hours]
        return out

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's time zone."""
        return ZoneInfo(self.timezone)  # ZoneInfo caches instances per key

    # ----- days ---------------------------------------------------------------------

    def _library(self, year: int) -> tuple[frozenset[dt.date], frozenset[dt.date]]:
        """(public holidays, weekend days moved to working days) of ``year``."""
        key = ("lib", year)
        if key not in self._cache:
            if self.country is None:
                value = (frozenset(), frozenset())
            else:
                cal = holidays.country_holidays(self.country, subdiv=self.subdivision, years=year)
                self._cache[("names", year)] = cal
                workdays = getattr(cal, "weekend_workdays", ()) or ()
                value = (frozenset(cal.keys()), frozenset(d for d in workdays if d.year == year))
            self._cache[key] = value
        return self._cache[key]

    def _makeup_hours(self, day: dt.date) -> tuple[Span, ...]:
        if self.makeup_day_hours is not None:
            return self.makeup_day_hours
        return self.working_hours[day.weekday()] or self.working_hours[0]

    def hours_on(self, day: dt.date) -> tuple[Span, ...]:
        """The local working spans (minutes since midnight) of ``day``; ``()`` for a day off."""
        if day in self.extra_working_days:
            return self._makeup_hours(day)
        if day in self.extra_holidays:
            return ()
        public, moved = self._library(day.year)
        if day in public:
            return ()
        if day in moved:
            return self._makeup_hours(day)
        return self.working_hours[day.weekday()]

    def holiday_name(self, day: dt.date) -> str | None:
        """The public holiday's name on ``day`` (``holidays`` library), if any."""
        if self.country is None:
            return None
        names = self._cache.get(("names", day.year))
        if names is None:  # not loaded yet, or the cache was just cleared
            names = holidays.country_holidays(self.country, subdiv=self.subdivision, years=day.year)
        return names.get(day)

    def day_note(self, day: dt.date) -> str | None:
        """Why ``day`` departs from its weekday's hours: ``"extra working day"``,
        ``"extra holiday"``, ``"public holiday"``, ``"moved working day"``, or ``None``."""
        if day in self.extra_working_days:
            return "extra working day"
        if day in self.extra_holidays:
            return "extra holiday"
        public, moved = self._library(day.year)
        if day in public:
            return "public holiday"
        if day in moved:
            return "moved working day"
        return None

    def working_intervals(self, day: dt.date) -> tuple[Interval, ...]:
        """The working intervals of local ``day`` as UTC ``[start, end)`` pairs, in order."""
        key = ("day", day)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        midnight = dt.datetime(day.year, day.month, day.day, tzinfo=self.zone)
        out = []
        for start, end in self.hours_on(day):
            # Wall-clock addition, then conversion: the local span becomes real instants.
            a = (midnight + dt.timedelta(minutes=start)).astimezone(UTC)
            b = (midnight + dt.timedelta(minutes=end)).astimezone(UTC)
            if b > a:  # a span wholly inside a spring-forward gap has no working time
                out.append((a, b))
        if len(self._cache) > _CACHE_LIMIT:
            self._cache.clear()
        result = tuple(out)
        self._cache[key] = result
        return result

    def is_working_day(self, day: dt.date) -> bool:
        """Whether local ``day`` has any working time."""
        return bool(self.working_intervals(day))

    def local_date(self, instant: dt.datetime) -> dt.date:
        """The calendar-local date of an aware instant."""
        return instant.astimezone(self.zone).date()

    # ----- whole weeks (the fast path) ---------------------------------------------

    @property
    def week_total(self) -> dt.timedelta:
        """Working time of an ordinary week (no holidays, no moved days, no clock change)."""
        return dt.timedelta(minutes=sum(b - a for spans in self.working_hours for a, b in spans))

    @property
    def week_working_days(self) -> int:
        """Working days of an ordinary week."""
        return sum(1 for spans in self.working_hours if spans)

    def _exceptions(self, year: int) -> list[dt.date]:
        key = ("exc", year)
        if key not in self._cache:
            public, moved = self._library(year)
            own = {d for d in self.extra_holidays | self.extra_working_days if d.year == year}
            self._cache[key] = sorted(public | moved | own)
        return self._cache[key]

    def is_ordinary_week(self, first: dt.date) -> bool:
        """True when the 7 local days from ``first`` follow the weekly hours exactly.

        No holiday, extra or moved working day, and the same UTC offset at both ends (so no
        span can be stretched by a clock change), so the week's working time is
        :attr:`week_total` and its working days :attr:`week_working_days`.
        """
        end = first + dt.timedelta(days=7)
        for year in {first.year, end.year}:
            dates = self._exceptions(year)
            i = bisect.bisect_left(dates, first)
            if i < len(dates) and dates[i] < end:
                return False
        zone = self.zone
        a = dt.datetime(first.year, first.month, first.day, tzinfo=zone).utcoffset()
        b = dt.datetime(end.year, end.month, end.day, tzinfo=zone).utcoffset()
        return a == b

    # ----- arithmetic (see core.calendar.arithmetic) ------------------------------

    def is_working(self, instant: dt.datetime) -> bool:
        """Whether ``instant`` falls inside working hours."""
        return arithmetic.is_working(self, instant)

    def next_working_moment(self, instant: dt.datetime) -> dt.datetime:
        """``instant`` itself when working, else the start of the next working span."""
        return arithmetic.next_working_moment(self, instant)

    def add_working(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        """The earliest instant ``duration`` of working time after ``start``."""
        return arithmetic.add_working(self, start, duration)

    def add_working_days(self, start: dt.datetime, days: int) -> dt.datetime:
        """``days`` working days after ``start`` (definition in :mod:`core.calendar.arithmetic`)."""
        return arithmetic.add_working_days(self, start, days)

    def elapsed(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Working time between two instants (negative when ``end`` is before ``start``)."""
        return arithmetic.elapsed(self, start, end)

    def elapsed_excluding(self, start: dt.datetime, end: dt.datetime,
                          pauses: Iterable[tuple[dt.datetime, dt.datetime | None]]) -> dt.timedelta:
        """Working time between two instants, not counting the paused stretches."""
        return arithmetic.elapsed_excluding(self, start, end, pauses)

    def add(self, start: dt.datetime, duration) -> dt.datetime:
        """``start`` plus a limit (``Limit``, its text such as ``"5 working days"``, or a
        ``timedelta`` of working time). Wall-clock limits ignore the calendar."""
        return arithmetic.add(self, start, duration)
