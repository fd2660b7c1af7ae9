"""Pauses of deadline clocks: which waiting states pause a clock, for how long at most.

A deadline item may say which workflow waiting states pause its clock (``pauses_in``:
absent, every one; ``[]``, none: a response clock) and cap the paused time per waiting
state and in all (``pause_cap``: ``{waiting_customer = "5 working days", total = "10
working days"}``, working limits on the tenant's business calendar, real time
otherwise). :mod:`core.deadlines.clocks` stores those rules on the clock
(``pause_rules``), opens and closes the pauses with these helpers, and gives a paused
clock its cap instant as ``next_check_at``, where the breach watch resumes it
(:func:`core.deadlines.breaches.scan`).

Each pause is ``{start, end, reason, state}``; once closed it also holds ``seconds``
(real time), ``working_seconds`` (on the tenant's calendar, when it has one) and, when a
cap ended it, ``capped`` and ``cap`` (the state's cap or ``"total"``). The clock keeps
``paused_seconds`` and ``cap_hits`` in step, for the KPIs in SQL.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from servq.core.calendar import WallClock, due as calendar_due, parse_limit
from servq.core.models import Clock


def _instant(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).isoformat()


def _working(calendar: Any):
    """The tenant's business calendar when it counts working time, else ``None``."""
    if calendar is not None and hasattr(calendar, "elapsed_excluding") and not isinstance(calendar, WallClock):
        return calendar
    return None


def close_pause(clock: Clock, at: datetime, calendar: Any = None, *, cap: str | None = None) -> None:
    """End the clock's open pause at ``at``: its ``seconds`` (real time) and, with a
    business ``calendar``, ``working_seconds``; ``cap`` names the cap that ended it
    (``capped``). Keeps ``paused_seconds`` and ``cap_hits`` in step."""
    pauses = [dict(p) for p in clock.pauses or ()]
    for pause in pauses:
        if pause.get("end") is None:
            start = _instant(pause["start"])
            end = max(at, start)
            pause["end"] = _iso(end)
            pause["seconds"] = (end - start).total_seconds()
            working = _working(calendar)
            if working is not None:
                pause["working_seconds"] = working.elapsed(start, end).total_seconds()
            if cap is not None:
                pause["capped"], pause["cap"] = True, cap
                clock.cap_hits = (clock.cap_hits or 0) + 1
    clock.pauses = pauses
    clock.paused_seconds = sum(p.get("seconds") or 0.0 for p in pauses)
    clock.paused_since = None
    clock.pause_reason = None


def pause_rules(params: Any) -> dict[str, Any] | None:
    """What a deadline item's ``pauses_in`` and ``pause_cap`` say, as stored on its clock:
    ``{"in": [...], "cap": {state or "total": limit text}}``; ``None`` when neither."""
    rules: dict[str, Any] = {}
    if params.get("pauses_in") is not None:
        rules["in"] = list(params["pauses_in"])
    if params.get("pause_cap"):
        rules["cap"] = {key: str(parse_limit(text)) for key, text in params["pause_cap"].items()}
    return rules or None


def pauses_in(clock: Clock, state: str | None) -> bool:
    """Whether waiting state ``state`` pauses ``clock`` (its item's ``pauses_in``)."""
    allowed = (clock.pause_rules or {}).get("in")
    return allowed is None or state in allowed


def pause_cap(clock: Clock, state: str | None, start: datetime, calendar: Any) -> tuple[datetime | None, str | None]:
    """When a pause of ``clock`` in ``state`` begun at ``start`` reaches a cap, and which
    (the state's or ``"total"``): ``(None, None)`` without a cap.

    A cap counts the time of every closed pause it covers (of that state, or all) and
    this one: the cap's limit runs from the first such pause, the gaps between them
    excluded, on the tenant's ``calendar`` for working limits (real time otherwise). An
    instant at or before ``start`` means the cap is used up already.
    """
    caps = (clock.pause_rules or {}).get("cap") or {}
    best: tuple[datetime | None, str | None] = (None, None)
    if not caps:
        return best
    closed = [(_instant(p["start"]), _instant(p["end"]), p.get("state")) for p in clock.pauses or ()
              if p.get("end") is not None]
    for key, text in sorted(caps.items()):
        if key != "total" and key != state:
            continue
        spans = sorted([(a, b) for a, b, s in closed if (key == "total" or s == key) and b <= start]
                       + [(start, None)], key=lambda span: span[0])
        gaps = [(spans[i][1], spans[i + 1][0]) for i in range(len(spans) - 1)
                if spans[i][1] < spans[i + 1][0]]
        at = calendar_due(spans[0][0], text, _working(calendar), gaps)
        at = at.astimezone(timezone.utc)
        if best[0] is None or at < best[0]:
            best = (at, key)
    return best


def open_state(clock: Clock) -> str | None:
    """The waiting state of the clock's open pause (``None``: not paused, or not named)."""
    return next((p.get("state") for p in reversed(clock.pauses or ()) if p.get("end") is None), None)


def open_pause_cap(clock: Clock, calendar: Any) -> tuple[datetime | None, str | None]:
    """:func:`pause_cap` of the clock's open pause (``(None, None)`` when not paused)."""
    if clock.paused_since is None:
        return None, None
    state = open_state(clock)
    return pause_cap(clock, state, clock.paused_since, calendar)


def pause_totals(clock: Clock) -> dict[str, Any]:
    """The clock's closed pauses added up: real ``seconds`` in all, ``by_state``,
    ``by_reason`` (``""`` for none given), and ``cap_hits``."""
    by_state: dict[str, float] = {}
    by_reason: dict[str, float] = {}
    for pause in clock.pauses or ():
        seconds = pause.get("seconds")
        if seconds is None:
            continue
        state, reason = pause.get("state") or "", pause.get("reason") or ""
        by_state[state] = by_state.get(state, 0.0) + seconds
        by_reason[reason] = by_reason.get(reason, 0.0) + seconds
    return {"seconds": float(clock.paused_seconds or 0.0), "by_state": by_state,
            "by_reason": by_reason, "cap_hits": int(clock.cap_hits or 0)}
