"""Deadlines due at a moment rather than after a limit, and clocks stopped by the first of
several stamps: the parts of the ``deadline`` rule the scoring engine and the deadline
clocks share, so that an evaluation item and its clock give the same due instant.

A ``deadline`` rule is due in one of three ways (exactly one is given):

* ``limit = "4h"``: ``start`` + the limit (:func:`core.calendar.deadline_limit`);
* ``due = "data.appointment.to"``: at the instant held in the record (a key of ``data`` or
  a stamp ``timestamps.x``), or ``before = "30 minutes"`` ahead of it;
* ``due_time = "08:30"``: at that local time (tenant calendar) on the local date of
  ``start``, ``days_after`` days later, rolled to the next working day with ``working_day``.

and stops at ``stop`` or at the earliest of the stamps of ``stop_any``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from servq.core.calendar import deadline_limit
from servq.core.calendar.limits import Limit
from servq.core.calendar.moments import due_before, local_time_due, parse_time_of_day
from servq.core.scoring.rules import as_instant

UTC = timezone.utc
#: ``(values, start, calendar) -> due instant`` (UTC) or ``None`` (no moment: n.a., no clock).
DueOf = Callable[[Mapping[str, Any], datetime, Any], "datetime | None"]


def _reader(name: str):
    from servq.core.scoring.registry import reader  # registry imports this module

    return reader(name)


def is_dated(params: Mapping[str, Any]) -> bool:
    """Whether a loaded ``deadline`` rule is due at a moment (``due`` or ``due_time``)
    rather than after a ``limit``."""
    return "limit" not in params and ("due" in params or "due_time" in params)


def before_limit(params: Mapping[str, Any]) -> Limit | None:
    """The ``before`` limit of a ``due`` rule (working time with ``clock = "business"``)."""
    if params.get("before") is None:
        return None
    return deadline_limit({"limit": params["before"], "clock": params.get("clock")})


def working(params: Mapping[str, Any]) -> bool:
    """Whether the rule counts the tenant's working time (its clock's ``business``)."""
    if not is_dated(params):
        return deadline_limit(params).working
    limit = before_limit(params)
    return bool(limit is not None and limit.working)


def target_text(params: Mapping[str, Any]) -> str:
    """The due rule as a clock shows it: ``"4h"``, ``"at data.appointment.to"``,
    ``"30m before data.window.to"``, ``"08:30 local"``, ``"08:30 local +1 day, working day"``."""
    if not is_dated(params):
        return str(deadline_limit(params))
    if "due" in params:
        limit = before_limit(params)
        return f"at {params['due']}" if limit is None else f"{limit} before {params['due']}"
    text = f"{params['due_time']} local"
    days = params.get("days_after") or 0
    if days:
        text += f" +{days} day{'' if days == 1 else 's'}"
    if params.get("working_day"):
        text += ", working day"
    return text


def due_of(params: Mapping[str, Any]) -> DueOf:
    """The due instant of a dated rule for a record's ``values`` and its ``start``."""
    if "due" in params:
        read, limit, name = _reader(params["due"]), before_limit(params), params["due"]

        def at_moment(values, start, calendar):
            moment = as_instant(read(values), name)
            if moment is None:
                return None
            moment = moment.astimezone(UTC)
            return moment if limit is None else due_before(calendar, moment, limit)

        return at_moment
    at = parse_time_of_day(params["due_time"])
    days, roll = params.get("days_after") or 0, bool(params.get("working_day"))

    def at_local_time(values, start, calendar):
        return local_time_due(calendar, start, at, days_after=days, working_day=roll)

    return at_local_time


def stop_of(params: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], "datetime | None"]:
    """What stops the clock: the instant at ``stop``, or the earliest of ``stop_any``
    (stamps not yet set are skipped); ``None`` while none is set."""
    if "stop_any" not in params:
        read, name = _reader(params["stop"]), "stop"
        return lambda values: as_instant(read(values), name)
    readers = [(_reader(path), path) for path in params["stop_any"]]

    def first(values):
        found = [instant for instant in (as_instant(read(values), path) for read, path in readers)
                 if instant is not None]
        return min(found) if found else None

    return first


__all__ = ["before_limit", "due_of", "is_dated", "stop_of", "target_text", "working"]
