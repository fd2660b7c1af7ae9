"""Validation of a business calendar given as a plain dict (a TOML ``[calendar]`` section).

Example::

    [calendar]
    timezone = "Asia/Shanghai"
    country = "CN"
    working_hours = { mon = ["09:00-12:00", "13:00-18:00"], tue = ["09:00-12:00", "13:00-18:00"] }
    extra_holidays = [2026-12-24]
    extra_working_days = [2026-12-26]
    makeup_day_hours = ["09:00-17:00"]

Spans are local wall-clock times ``HH:MM-HH:MM`` (``24:00`` allowed as an end), half
open, within one day; spans of one day may touch (they are merged) but not overlap.
"""

from __future__ import annotations

import re
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from marshmallow import Schema, ValidationError, fields, validates, validates_schema

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Without working_hours a calendar works Monday to Friday, 09:00-18:00 with a lunch break
# from 12:00 to 13:00 (8 hours a day): the same hours as a tenant's default calendar.
DEFAULT_HOURS = {day: ["09:00-12:00", "13:00-18:00"] for day in WEEKDAYS[:5]}

SPAN_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")

Span = tuple[int, int]  # minutes since local midnight, [start, end)


def parse_span(text: str) -> Span:
    """``"09:00-12:00"`` → ``(540, 720)``; raises ValidationError with a clear message."""
    if not isinstance(text, str):
        raise ValidationError(f"A span is a string like '09:00-12:00', not {text!r}.")
    m = SPAN_RE.match(text)
    if not m:
        raise ValidationError(f"Span {text!r} is not 'HH:MM-HH:MM' (e.g. '09:00-12:00').")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    for h, mi in ((h1, m1), (h2, m2)):
        if mi > 59 or h > 24 or (h == 24 and mi):
            raise ValidationError(f"Span {text!r} has a time outside 00:00-24:00.")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end <= start:
        raise ValidationError(
            f"Span {text!r} ends before it starts (overnight spans: split them at 24:00).")
    return start, end


def format_span(span: Span) -> str:
    """``(540, 720)`` → ``"09:00-12:00"``."""
    return "-".join(f"{m // 60:02d}:{m % 60:02d}" for m in span)


def parse_spans(values, where: str) -> tuple[Span, ...]:
    """A day's list of span strings → sorted, merged spans; overlaps are errors."""
    if not isinstance(values, (list, tuple)):
        raise ValidationError(f"Hours for {where} must be a list of spans like ['09:00-12:00'].")
    spans = sorted(parse_span(v) for v in values)
    merged: list[Span] = []
    for span in spans:
        if merged and span[0] < merged[-1][1]:
            raise ValidationError(
                f"Spans {format_span(merged[-1])!r} and {format_span(span)!r} overlap on {where}.")
        if merged and span[0] == merged[-1][1]:
            # Touching spans ("09:00-12:00", "12:00-13:00") are one stretch of work.
            merged[-1] = (merged[-1][0], span[1])
        else:
            merged.append(span)
    return tuple(merged)


def weekday_index(name: str) -> int:
    """``"mon"``/``"Monday"`` → 0 … ``"sun"`` → 6; ValidationError for anything else."""
    key = str(name).strip().lower()
    if key in WEEKDAYS:
        return WEEKDAYS.index(key)
    if key in FULL_NAMES:
        return FULL_NAMES.index(key)
    raise ValidationError(f"Unknown weekday {name!r}; use {', '.join(WEEKDAYS)}.")


@lru_cache(maxsize=1)
def _supported_countries() -> dict[str, list[str]]:
    return holidays.list_supported_countries()


class WorkingHoursField(fields.Field):
    """``{"mon": ["09:00-12:00", "13:00-18:00"], ...}`` → 7 tuples of spans, Monday first."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise ValidationError("working_hours maps weekdays to spans, e.g. {mon = ['09:00-17:00']}.")
        week: list[tuple[Span, ...]] = [()] * 7
        errors: dict[str, list[str]] = {}
        for name, spans in value.items():
            try:
                index = weekday_index(name)
                week[index] = parse_spans(spans, WEEKDAYS[index])
            except ValidationError as exc:
                errors[str(name)] = exc.messages if isinstance(exc.messages, list) else [str(exc)]
        if errors:
            raise ValidationError(errors)
        if not any(week):
            raise ValidationError("At least one weekday needs working hours.")
        return tuple(week)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return {WEEKDAYS[i]: [format_span(s) for s in spans] for i, spans in enumerate(value) if spans}


class SpansField(fields.Field):
    """A list of span strings → tuple of merged spans."""

    def _deserialize(self, value, attr, data, **kwargs):
        return parse_spans(value, attr or "this day")

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else [format_span(s) for s in value]


class CalendarSchema(Schema):
    """A tenant's business calendar. Loads the keyword arguments of ``BusinessCalendar``."""

    timezone = fields.String(required=True, metadata={"description": "IANA time zone, e.g. Asia/Shanghai"})
    working_hours = WorkingHoursField(
        load_default=lambda: WorkingHoursField().deserialize(DEFAULT_HOURS),
        metadata={"description": "Spans per weekday; default Monday to Friday "
                                 "09:00-12:00 and 13:00-18:00"})
    country = fields.String(load_default=None, allow_none=True,
                            metadata={"description": "Public holidays of this country (ISO code, e.g. CN)"})
    subdivision = fields.String(load_default=None, allow_none=True)
    extra_holidays = fields.List(fields.Date(), load_default=list)
    extra_working_days = fields.List(fields.Date(), load_default=list)
    makeup_day_hours = SpansField(load_default=None, allow_none=True,
                                  metadata={"description": "Hours of extra and moved working days"})

    @validates("timezone")
    def _check_timezone(self, value: str, **kwargs) -> None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"Unknown time zone {value!r} (use an IANA name such as 'Asia/Shanghai').")

    @validates("country")
    def _check_country(self, value, **kwargs) -> None:
        if value is not None and value.upper() not in _supported_countries():
            raise ValidationError(f"Unknown country code {value!r} for public holidays (e.g. CN, US, DE).")

    @validates_schema
    def _check_consistency(self, data, **kwargs) -> None:
        subdivision, country = data.get("subdivision"), data.get("country")
        if subdivision is not None:
            if country is None:
                raise ValidationError("A subdivision needs a country.", "subdivision")
            known = _supported_countries().get(country.upper(), [])
            if subdivision not in known:
                hint = f" (known: {', '.join(known[:12])}{', …' if len(known) > 12 else ''})" if known else ""
                raise ValidationError(f"Unknown subdivision {subdivision!r} of {country.upper()}{hint}.",
                                      "subdivision")
        both = sorted(set(data.get("extra_holidays", [])) & set(data.get("extra_working_days", [])))
        if both:
            raise ValidationError(
                f"{', '.join(d.isoformat() for d in both)} cannot be both an extra holiday and an extra working day.",
                "extra_working_days")
