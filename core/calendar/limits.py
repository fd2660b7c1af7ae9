"""Time limits as standards write them: ``30m``, ``4h``, ``5 working days``, ``5个工作日``.

A limit is an amount, a unit (minute, hour, day) and whether it counts working time.
Plain limits (``4h``, ``3 days``, ``4小时``) are wall-clock time, for 24-hour services;
limits that say *working* / *business* / 工作 count only the tenant's working hours.

Accepted forms (case and spaces do not matter)::

    30m  30 min  90 minutes  4h  2 hrs  2 hours  1d  3 days  48h
    8 working hours  30 working minutes  5 working days  5 business days  5 workdays  5wd  8wh
    30分钟  30分  4小时  4个小时  3天  3日  5个工作日  5工作日  8个工作小时
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass

from marshmallow import ValidationError, fields

UNITS = ("minute", "hour", "day")
_MINUTES = {"minute": 1, "hour": 60, "day": 24 * 60}
# Ten years, so that a typo such as "50000 days" is an error, not a loop through history.
MAX_MINUTES = 10 * 366 * 24 * 60
MAX_WORKING_DAYS = 10 * 366

_EN_UNITS = {
    "m": ("minute", False), "min": ("minute", False), "mins": ("minute", False),
    "minute": ("minute", False), "minutes": ("minute", False),
    "h": ("hour", False), "hr": ("hour", False), "hrs": ("hour", False),
    "hour": ("hour", False), "hours": ("hour", False),
    "d": ("day", False), "day": ("day", False), "days": ("day", False),
    "workday": ("day", True), "workdays": ("day", True), "wd": ("day", True),
    "wh": ("hour", True),
}
_EN_RE = re.compile(r"^(?P<n>\d+)\s*(?:(?P<working>working|business|work)\s+)?(?P<unit>[a-z]+)$")
_ZH_RE = re.compile(r"^(?P<n>\d+)\s*个?\s*(?P<working>工作)?\s*(?P<unit>分钟|分|小时|钟头|天|日)$")
_ZH_UNITS = {"分钟": "minute", "分": "minute", "小时": "hour", "钟头": "hour", "天": "day", "日": "day"}


class LimitError(ValueError):
    """A limit's text cannot be read."""


@dataclass(frozen=True)
class Limit:
    """A time limit: ``amount`` of ``unit`` (minute, hour, day), working time or wall clock."""

    amount: int
    unit: str
    working: bool = False

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise LimitError(f"Unknown unit {self.unit!r}; use one of {', '.join(UNITS)}.")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount <= 0:
            raise LimitError(f"A limit needs a positive whole amount, not {self.amount!r}.")
        too_long = (self.amount > MAX_WORKING_DAYS if self.working and self.unit == "day"
                    else self.amount * _MINUTES[self.unit] > MAX_MINUTES)
        if too_long:
            raise LimitError(f"A limit of {self} is longer than ten years.")

    @property
    def timedelta(self) -> dt.timedelta:
        """The limit as a duration (a working day counts 24 hours on a 24-hour clock)."""
        return dt.timedelta(minutes=self.amount * _MINUTES[self.unit])

    def __str__(self) -> str:
        if self.working:
            return f"{self.amount} working {self.unit}{'' if self.amount == 1 else 's'}"
        return f"{self.amount}{self.unit[0]}"


def parse_limit(text: str | Limit) -> Limit:
    """Read a limit such as ``"30m"``, ``"5 working days"`` or ``"5个工作日"``.

    Raises :class:`LimitError` (a ``ValueError``) with a message a tenant admin can act on.
    """
    if isinstance(text, Limit):
        return text
    if not isinstance(text, str):
        raise LimitError(f"A limit is text such as '4h' or '5 working days', not {text!r}.")
    return _parse(text)


@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> Limit:
    """:func:`parse_limit` of text, kept: a tenant has a few dozen limits, read again for
    every clock (a :class:`Limit` is immutable)."""
    cleaned = " ".join(text.strip().lower().split())
    m = _EN_RE.match(cleaned)
    if m and m.group("unit") in _EN_UNITS:
        unit, working = _EN_UNITS[m.group("unit")]
        return Limit(int(m.group("n")), unit, working or bool(m.group("working")))
    z = _ZH_RE.match(cleaned.replace(" ", ""))
    if z:
        unit = _ZH_UNITS[z.group("unit")]
        return Limit(int(z.group("n")), unit, bool(z.group("working")))
    raise LimitError(
        f"Cannot read the limit {text!r}; write e.g. '30m', '4h', '3 days', '8 working hours', "
        "'5 working days' or '5个工作日'.")


class LimitField(fields.Field):
    """A marshmallow field holding a limit: text in, :class:`Limit` out, text when dumped."""

    def _deserialize(self, value, attr, data, **kwargs) -> Limit:
        try:
            return parse_limit(value)
        except LimitError as exc:
            raise ValidationError(str(exc)) from exc

    def _serialize(self, value, attr, obj, **kwargs) -> str | None:
        return None if value is None else str(parse_limit(value))
