"""The periods of a recurring obligation: pure period arithmetic on an RRULE.

Occurrence *i* of a schedule's rule opens period *i*, occurrence *i + 1* closes it:
``FREQ=MONTHLY`` from 1 January gives January, February, …; ``FREQ=MONTHLY;INTERVAL=6``
gives half years. Occurrences are computed in the tenant's time zone, so "the first of the
month" is local midnight, across daylight saving changes. A rule with ``COUNT`` or
``UNTIL`` has that many periods; the last one ends where the rule would have put the next
occurrence. A period's ``deadline`` is its end plus the schedule's grace.

No database here: :mod:`core.deadlines.schedules` stores the obligations, matches records
to these periods and reports the missed ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

#: Most periods one compliance report or one scan of a schedule handles.
MAX_PERIODS = 1000
#: Frequencies an obligation may have (sub-daily ones are not obligations but shifts).
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_FREQ_RE = re.compile(r"(?:^|;)FREQ=([A-Z]+)(?:;|$)")


class TooManyPeriods(ValueError):
    """The window holds more than :data:`MAX_PERIODS` periods."""


def parse_rrule(text: str, dtstart: datetime, zone: ZoneInfo) -> rrule:
    """The recurrence ``text`` (``FREQ=MONTHLY``, optionally prefixed ``RRULE:``) from
    ``dtstart`` in ``zone``; :class:`ValueError` with a readable message otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("Give a recurrence rule such as 'FREQ=MONTHLY'.")
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    body = body.upper()
    if "\n" in body or "DTSTART" in body or ":" in body:
        raise ValueError("Give one RRULE (e.g. 'FREQ=MONTHLY;INTERVAL=6'); the start goes in 'dtstart'.")
    match = _FREQ_RE.search(body)
    if not match:
        raise ValueError(f"The rule {text!r} has no FREQ (e.g. 'FREQ=MONTHLY').")
    if match.group(1) not in FREQUENCIES:
        raise ValueError(f"FREQ={match.group(1)} is not allowed: an obligation recurs at most "
                         f"daily ({', '.join(FREQUENCIES)}).")
    try:
        rule = rrulestr(body, dtstart=dtstart.astimezone(zone), cache=True)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"Cannot read the rule {text!r}: {exc}.") from exc
    if not isinstance(rule, rrule):
        raise ValueError(f"Give a single RRULE, not {text!r}.")
    if rule.after(dtstart.astimezone(zone), inc=True) is None:
        raise ValueError(f"The rule {text!r} has no occurrence from dtstart on.")
    return rule


def validate_rrule(text: str, dtstart: datetime, zone: ZoneInfo) -> str:
    """The rule in normal form (upper case, no ``RRULE:`` prefix); ValueError otherwise."""
    parse_rrule(text, dtstart, zone)
    body = text.strip()
    return (body[6:] if body.upper().startswith("RRULE:") else body).upper()


@dataclass(frozen=True)
class Period:
    """One period of a schedule: ``[start, end)``, and ``deadline`` = end + grace."""

    index: int
    start: datetime
    end: datetime
    deadline: datetime


class Recurrence:
    """The periods of one schedule, in its tenant's time zone.

    ``schedule`` is anything with ``rrule``, ``dtstart`` and ``grace_seconds`` (a
    :class:`core.models.Schedule`)."""

    def __init__(self, schedule, zone: ZoneInfo):
        self.zone = zone
        self.grace = timedelta(seconds=schedule.grace_seconds or 0)
        self.first = schedule.dtstart.astimezone(zone)
        self.rule = parse_rrule(schedule.rrule, schedule.dtstart, zone)
        self.open_rule = self.rule.replace(count=None, until=None)

    def _end_of(self, start: datetime) -> datetime:
        return self.open_rule.after(start)

    def periods(self, since: datetime, until: datetime, *, limit: int = MAX_PERIODS,
                strict: bool = True) -> list[Period]:
        """The periods that overlap ``[since, until)``, in order (``index`` counts them).

        :raises TooManyPeriods: when there are more than ``limit`` (with ``strict``;
            otherwise the first ``limit`` are returned).
        """
        since, until = since.astimezone(self.zone), until.astimezone(self.zone)
        first = self.rule.before(since, inc=True) or self.rule.after(since, inc=True)
        if first is None or first >= until:
            return []
        starts = [first]
        for occurrence in self.rule.xafter(first, inc=False):
            if occurrence >= until:
                break
            if len(starts) >= limit + 1:
                if strict:
                    raise TooManyPeriods(f"more than {limit} periods")
                break
            starts.append(occurrence)
        ends = starts[1:] + [self.open_rule.after(starts[-1])]
        out = []
        for start, end in zip(starts, ends):
            if end <= since:
                continue
            out.append(Period(len(out), start.astimezone(timezone.utc), end.astimezone(timezone.utc),
                              (end + self.grace).astimezone(timezone.utc)))
        return out[:limit]

    def deadlines_between(self, after: datetime, until: datetime, *,
                          limit: int = MAX_PERIODS) -> list[Period]:
        """The first ``limit`` periods whose deadline lies in ``(after, until]``."""
        # deadline = end + grace, so the end lies in (after - grace, until - grace].
        low, high = after - self.grace, until - self.grace
        if high <= low:
            return []
        candidates = self.periods(low, high, limit=limit + 1, strict=False)
        return [p for p in candidates if low < p.end <= high][:limit]

    def next_deadline(self, after: datetime) -> datetime | None:
        """The first period deadline later than ``after``; ``None`` when no period is left."""
        low = (after - self.grace).astimezone(self.zone)
        end = self.open_rule.after(low)
        while end is not None:
            start = self.open_rule.before(end)
            if start is not None and start >= self.first:
                last = self.rule.before(end, inc=False)
                if last is None or last < start:
                    return None  # the finite rule has no period starting there
                return (end + self.grace).astimezone(timezone.utc)
            end = self.open_rule.after(end)
        return None
