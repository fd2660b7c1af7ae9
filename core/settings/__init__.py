"""A tenant's own values of core's [P] defaults (``GET/PATCH /api/v1/settings``).

Some numbers core ships are defaults a tenant must be able to change (DOMAIN.md's [P]):
the windows of an evaluation dispute, and how long a record may sit in a workflow state
before the stalled-record watch flags it (declared by its kind's plugin). A tenant's
changes are one document (:class:`~servq.core.models.TenantSettings`); what it leaves out
keeps the default, and a value set to ``null`` goes back to it::

    {"disputes": {"windows": {"file": "5 working days", "appeal": "3 working days"}},
     "stalled_after": {"courier.delivery": {"out_for_delivery": "6h"},
                       "property.work_order": "2 working days"}}

- ``disputes.windows``: ``file``, ``decide``, ``appeal``, ``decide_appeal``
  (:data:`DISPUTE_WINDOWS`), limits in the tenant's working time (``"3 working days"``).
- ``stalled_after``: per record kind with a workflow, a limit for every state that is
  not final, or ``{state: limit}`` for some; over the kind's own ``stalled_after``
  state by state (a kind that declares none gets the watch from the tenant's value).

Limits are read by :func:`servq.core.calendar.parse_limit` (``"30m"``, ``"4h"``,
``"3 working days"``, ``"5个工作日"``). The document is read once per transaction.
"""

from __future__ import annotations

from typing import Any, Mapping

from marshmallow import ValidationError
from sqlalchemy import select

from servq.core.calendar import LimitError, parse_limit
from servq.core.db.state import TRANSACTION, Slot
from servq.core.models import TenantSettings

#: [P] defaults of each step of an evaluation dispute (INDUSTRIES.md §4.1), in the
#: tenant's working time.
DISPUTE_WINDOWS = {"file": "3 working days", "decide": "3 working days", "appeal": "2 working days",
                   "decide_appeal": "3 working days"}
SECTIONS = ("disputes", "stalled_after")

#: (tenant id, the tenant's document): read once per transaction.
_DOCUMENT: Slot[tuple] = Slot("servq.settings.document", TRANSACTION, __name__)


def load_settings(session) -> TenantSettings | None:
    """The tenant's settings row, or ``None`` (it has changed nothing)."""
    return session.scalar(select(TenantSettings))


def own_settings(session) -> dict[str, Any]:
    """The tenant's document (``{}`` when it has changed nothing): one SELECT per transaction."""
    cached = session.state.get(_DOCUMENT)
    if cached is None or cached[0] != session.tenant_id:
        document = session.scalar(select(TenantSettings.document))
        cached = (session.tenant_id, document or {})
        session.state.set(_DOCUMENT, cached)
    return cached[1]


def forget_settings(session) -> None:
    """Drop the document read in this transaction (after a change)."""
    session.state.pop(_DOCUMENT)


def dispute_window(session, step: str) -> str:
    """The limit of a dispute step (``file``, ``decide``, ``appeal``, ``decide_appeal``)
    for the session's tenant: its own, else :data:`DISPUTE_WINDOWS`."""
    own = own_settings(session).get("disputes", {}).get("windows", {})
    return own.get(step) or DISPUTE_WINDOWS[step]


def stall_limits(kind, own: Mapping[str, Any] | None) -> dict[str, str]:
    """``{state: limit}`` of ``kind``'s stalled-record watch: its workflow's, with the
    tenant's ``stalled_after`` value for the kind (``own``) over it state by state."""
    workflow = kind.workflow
    if workflow is None:
        return {}
    limits = workflow.stall_limits(tuple(kind.statuses))
    if isinstance(own, str):
        limits.update({state: own for state in kind.statuses if state not in workflow.final})
    elif isinstance(own, Mapping):
        limits.update(own)
    return limits


def stalled_overrides(session) -> dict[str, Any]:
    """The tenant's ``stalled_after`` values by kind (``{}``: none)."""
    return own_settings(session).get("stalled_after", {})


def effective(session, kinds: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting as it applies to the tenant: its own values over the defaults (the
    stall limits of each of its ``kinds`` that has a workflow)."""
    own = own_settings(session)
    windows = {**DISPUTE_WINDOWS, **own.get("disputes", {}).get("windows", {})}
    overrides = own.get("stalled_after", {})
    stalled = {name: limits for name, kind in sorted(kinds.items())
               if (limits := stall_limits(kind, overrides.get(name)))}
    return {"disputes": {"windows": windows}, "stalled_after": stalled}


def defaults(kinds: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting's default (the stall limits the kinds' plugins declare)."""
    return {"disputes": {"windows": dict(DISPUTE_WINDOWS)},
            "stalled_after": {name: limits for name, kind in sorted(kinds.items())
                              if (limits := stall_limits(kind, None))}}


def merged(document: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with ``patch`` applied as a JSON merge patch (RFC 7396: ``null``
    removes a key, so the setting goes back to its default)."""
    out = dict(document)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
            if not out[key]:
                out.pop(key)
        elif isinstance(value, Mapping):
            inner = merged({}, value)
            if inner:
                out[key] = inner
            else:
                out.pop(key, None)
        else:
            out[key] = value
    return out


def _limit(value: Any) -> str | None:
    """Why ``value`` is not a limit, or ``None``."""
    if not isinstance(value, str):
        return "A limit is text such as '4h' or '3 working days'."
    try:
        parse_limit(value)
    except LimitError as error:
        return str(error)
    return None


def validate_settings(document: Any, kinds: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` (the tenant's whole document, after a patch) if every value is good
    for a tenant using ``kinds``; limits kept as given.

    :raises ValidationError: naming each bad field (``disputes.windows.appeal``,
        ``stalled_after.<kind>.<state>``); nothing is stored.
    """
    if not isinstance(document, Mapping):
        raise ValidationError(["Send the settings as a JSON object."])
    errors: dict[str, Any] = {}
    for key in document:
        if key not in SECTIONS:
            errors[key] = [f"Unknown setting; the settings are: {', '.join(SECTIONS)}."]
    disputes = document.get("disputes", {})
    if not isinstance(disputes, Mapping):
        errors["disputes"] = ["An object: {\"windows\": {...}}."]
    else:
        for key in disputes:
            if key != "windows":
                errors.setdefault("disputes", {})[key] = ["Unknown setting; disputes has: windows."]
        windows = disputes.get("windows", {})
        if not isinstance(windows, Mapping):
            errors.setdefault("disputes", {})["windows"] = ["An object of limits by step."]
        else:
            for step, limit in windows.items():
                problem = (f"Unknown step; the steps are: {', '.join(DISPUTE_WINDOWS)}."
                           if step not in DISPUTE_WINDOWS else _limit(limit))
                if problem:
                    errors.setdefault("disputes", {}).setdefault("windows", {})[step] = [problem]
    stalled = document.get("stalled_after", {})
    if not isinstance(stalled, Mapping):
        errors["stalled_after"] = ["An object of limits by record kind."]
    else:
        for name, rule in stalled.items():
            problem = _stall_problem(kinds.get(name), name, rule)
            if problem:
                errors.setdefault("stalled_after", {})[name] = problem
    if errors:
        raise ValidationError(errors)
    return dict(document)


def _stall_problem(kind, name: str, rule: Any) -> Any:
    if kind is None:
        return [f"No record kind {name!r} is enabled for this tenant."]
    if kind.workflow is None:
        return [f"Records of kind {name!r} have no workflow: they never stall."]
    if isinstance(rule, Mapping):
        if not rule:
            return ["Give a limit, or {state: limit} for some states."]
        problems = {}
        for state, limit in rule.items():
            if state not in kind.statuses:
                problems[state] = [f"Unknown state; {name} has: {', '.join(kind.statuses)}."]
            elif state in kind.workflow.final:
                problems[state] = ["A final state never stalls."]
            elif (problem := _limit(limit)) is not None:
                problems[state] = [problem]
        return problems or None
    problem = _limit(rule)
    return [problem] if problem else None
