"""Durations written by people: ``"24h"``, ``"3 days"``, ``"1h30m"``, ``"30 分钟"``.

Standards give deadlines and corrective-action times as short strings; this module turns
them into :class:`datetime.timedelta` and back into a canonical short form
(``fix_within``), and a deadline rule's ``limit`` into a :class:`core.calendar.Limit`,
which may count working time (``"5 working days"``). Pure time, like the rest of
:mod:`core.calendar`: the scoring engine, the clocks and the API all read durations here.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Mapping

from marshmallow import ValidationError, fields

from servq.core.calendar.limits import Limit, LimitError, parse_limit

# Unit spellings, English and Chinese, mapped to seconds.
_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "秒": 1, "秒钟": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60, "分": 60, "分钟": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "小时": 3600, "个小时": 3600, "钟头": 3600, "个钟头": 3600,
    "d": 86400, "day": 86400, "days": 86400, "天": 86400, "日": 86400,
    "w": 604800, "wk": 604800, "week": 604800, "weeks": 604800, "周": 604800, "星期": 604800,
}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([^\d\s.,]+)\s*")
_CANONICAL = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def parse_duration(text: str) -> timedelta:
    """Return the positive duration ``text`` names.

    ``text`` is one or more ``<number><unit>`` parts (``"1h30m"``, ``"1 day 4 hours"``);
    units are seconds, minutes, hours, days and weeks in English or Chinese.
    :raises ValueError: when the text is not such a duration or is zero.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a duration is a text such as '24h' or '3 days'")
    seconds = 0.0
    position = 0
    stripped = text.strip().lower()
    while position < len(stripped):
        match = _PART.match(stripped, position)
        if match is None or match.group(2) not in _UNITS:
            raise ValueError(f"not a duration: {text!r} (use e.g. '30m', '4h', '3 days')")
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if seconds <= 0:
        raise ValueError(f"a duration must be longer than zero: {text!r}")
    return timedelta(seconds=seconds)


def format_duration(duration: timedelta) -> str:
    """Return the canonical short form of ``duration`` (``"1d4h"``); it parses back equal."""
    remaining = duration.total_seconds()
    if remaining <= 0:
        raise ValueError("only positive durations have a canonical form")
    parts = []
    for unit, size in _CANONICAL:
        whole = int(remaining // size)
        if whole:
            parts.append(f"{whole}{unit}")
            remaining -= whole * size
    if remaining > 1e-9:
        # Sub-second rest: written in seconds so the text parses back to the same value.
        parts.append(f"{round(remaining, 6):g}s")
    return "".join(parts)


class Duration(fields.Field):
    """A marshmallow field for a duration written as text; loads a ``timedelta``."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_duration(value)
        except ValueError as error:
            raise ValidationError(str(error)) from error

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format_duration(value)


def parse_deadline_limit(text: str | Limit) -> Limit:
    """Return the :class:`core.calendar.Limit` a deadline rule's ``limit`` text names.

    Every form of :func:`core.calendar.parse_limit` is accepted (``"30m"``, ``"4h"``,
    ``"3 days"``, ``"8 working hours"``, ``"5 working days"``, ``"5个工作日"``); so are the
    compound durations of :func:`parse_duration` (``"1h30m"``, ``"2 weeks"``, ``"1.5h"``),
    read as a wall-clock limit in the largest whole unit (``"90m"``, ``"14d"``).
    :raises ValueError: when the text is neither, or is not a whole number of minutes.
    """
    if isinstance(text, Limit):
        return text
    try:
        return parse_limit(text)
    except LimitError as first:
        try:
            duration = parse_duration(text)
        except ValueError:
            raise ValueError(str(first)) from first
    return _wall_limit(duration, text)


def _wall_limit(duration: timedelta, shown) -> Limit:
    """``duration`` as a wall-clock :class:`Limit` in the largest whole unit (day, hour,
    minute); :class:`ValueError` unless it is a positive whole number of minutes."""
    minutes = duration.total_seconds() / 60
    if minutes <= 0 or minutes != int(minutes):
        raise ValueError(f"a deadline limit is a whole number of minutes, not {shown!r}")
    minutes = int(minutes)
    for unit, size in (("day", 1440), ("hour", 60), ("minute", 1)):
        if minutes % size == 0:
            try:
                return Limit(minutes // size, unit)
            except LimitError as error:
                raise ValueError(str(error)) from error
    raise AssertionError("unreachable: every whole number of minutes has a unit")


def deadline_limit(params: Mapping[str, Any]) -> Limit:
    """The limit a ``deadline`` rule counts: its ``limit``, as working time when the rule's
    clock is ``"business"`` (``"4h"`` with ``clock = "business"`` is 4 working hours, ``"3
    days"`` 3 working days). ``deadline_limit(params).working`` says whether the tenant's
    calendar counts it. The one reading of a deadline's limit: the scoring engine compiles
    rules with it and the deadline clocks are set with it, so both count the same time.

    Loaded parameters (``DeadlineParams``) always hold a :class:`Limit`. Parameters built
    by hand are read strictly: a text by :func:`core.calendar.parse_limit` (a compound
    duration such as ``"1h30m"`` is an error here; the schema reads it), a ``timedelta``
    as a whole number of minutes in its largest whole unit (else :class:`ValueError`);
    anything else is a :class:`TypeError`.
    """
    limit = params["limit"]
    if limit.__class__ is Limit:
        pass  # loaded parameters: the common case, first
    elif isinstance(limit, str):
        limit = parse_limit(limit)
    elif isinstance(limit, timedelta):
        limit = _wall_limit(limit, limit)
    elif not isinstance(limit, Limit):
        raise TypeError(f"a deadline limit is a Limit, a text or a timedelta, not {limit!r}")
    if params.get("clock") == "business" and not limit.working:
        return Limit(limit.amount, limit.unit, working=True)
    return limit


class DeadlineLimit(fields.Field):
    """A marshmallow field for a deadline's limit: text in, :class:`core.calendar.Limit`
    out (see :func:`parse_deadline_limit`); dumped as the limit's canonical text
    (``"4h"``, ``"5 working days"``), which loads back equal."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_deadline_limit(value)
        except ValueError as error:
            raise ValidationError(str(error)) from error

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(parse_deadline_limit(value))
