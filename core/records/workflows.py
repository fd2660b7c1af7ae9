"""Workflow transitions of records: the one place a workflow kind's status changes.

A record kind with a :class:`core.plugins.Workflow` moves between its states by
*actions* (``acknowledge``, ``resolve``…). :func:`transition` checks the action is
allowed from the record's state, sets the new status, stamps the instant the workflow
names (``record.timestamps["acknowledged_at"]``, which deadline rules read), pauses or
resumes the record's deadline clocks when it enters or leaves a waiting state, writes an
audit event, fires ``record_changed`` and scores the record again. The caller commits.

Stamps are ISO 8601 texts in UTC. A transition stamps the first time only (the first
acknowledgement is the one a deadline measures) unless it is declared ``restamp``; a
transition may ``clear`` stamps (reopening clears ``resolved_at`` so the resolution
deadline runs again). Creation stamps the workflow's ``initial_stamp`` with
``occurred_at`` (:func:`initial_stamps`).

A transition may be *guarded*: its ``requires`` (conditions on the record's ``data``,
:mod:`core.plugins.conditions`) must all hold, or it is refused with
:class:`TransitionBlocked` (HTTP 409, ``unmet`` naming each failing field) and nothing
changes. Each transition also sets ``record.status_since`` (its instant) and clears
``record.stalled_at``, which re-arms the stalled-record watch (:mod:`core.deadlines.stalled`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Mapping

from servq.core.audit import audit
from servq.core.db import utcnow
from servq.core.plugins import RecordKind, Transition
from servq.core.plugins.app import hooks_for_session
from servq.core.plugins.conditions import jsonable_conditions, unmet
from servq.core.deadlines import clocks as deadline_clocks
from servq.core.records.evaluate import evaluate_record

UTC = timezone.utc
ENTITY = "records"
NOTE_MAX = 2000
REASON_MAX = 500


class TransitionRefused(Exception):
    """The action is not allowed from the record's state (HTTP 409).

    :param allowed: the actions that are allowed from the current state.
    """

    def __init__(self, message: str, allowed: list[str]):
        super().__init__(message)
        self.message = message
        self.allowed = list(allowed)


class TransitionBlocked(TransitionRefused):
    """The action is allowed from the record's state but its guards (``requires``) fail
    on the record's ``data`` (HTTP 409).

    :param unmet: each failing condition: ``{"field": "data.<path>", "requires", "message"}``.
    """

    def __init__(self, message: str, allowed: list[str], unmet: list[dict[str, Any]]):
        super().__init__(message, allowed)
        self.unmet = list(unmet)


class StatusNeedsTransition(TransitionRefused):
    """A change of a workflow kind's ``status`` was sent as a plain update (HTTP 409)."""


class TransitionInvalid(ValueError):
    """The transition's own input is wrong: ``at`` in the future or before the record's
    last instant, a waiting state without a reason (HTTP 422).

    :param errors: marshmallow-shaped field errors (``{"at": ["..."]}``).
    """

    def __init__(self, message: str, errors: dict[str, list[str]]):
        super().__init__(message)
        self.message = message
        self.errors = errors


def iso(instant: datetime) -> str:
    """The stored form of a stamp: ISO 8601 in UTC."""
    return instant.astimezone(UTC).isoformat()


def initial_stamps(kind: RecordKind, occurred_at: datetime, data: Mapping[str, Any] | None,
                   timestamps: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The timestamps of a record of ``kind`` given its ``occurred_at`` and ``data``.

    Sets the workflow's initial stamp to ``occurred_at`` and its copy keyed by
    ``data[stamp_by]`` (dropping the copies of other values); leaves every other stamp of
    ``timestamps`` as it is. Kinds without a workflow keep ``timestamps`` unchanged.
    """
    out = dict(timestamps or {})
    workflow = kind.workflow
    if workflow is None or workflow.initial_stamp is None:
        return out
    stamp = iso(occurred_at)
    out[workflow.initial_stamp] = stamp
    if workflow.stamp_by:
        suffix = f"_{workflow.initial_stamp}"
        for key in [k for k in out if k.endswith(suffix)]:
            del out[key]
        keyed = workflow.keyed_stamp(dict(data or {}))
        if keyed:
            out[keyed] = stamp
    return out


def latest_instant(record) -> tuple[str, datetime]:
    """``(name, instant)`` of the record's latest stamp (``occurred_at`` when none is later)."""
    name, latest = "occurred_at", record.occurred_at.astimezone(UTC)
    for key, value in (record.timestamps or {}).items():
        try:
            instant = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            instant = None
        if instant is not None and instant.utcoffset() is not None and instant > latest:
            name, latest = key, instant
    return name, latest


def _refused(kind: RecordKind | None, record, action: str) -> TransitionRefused:
    if kind is None or kind.workflow is None:
        return TransitionRefused(
            f"Records of kind {record.kind!r} have no workflow; change their status with PATCH.", [])
    allowed = kind.workflow.allowed(record.status)
    known = action in kind.workflow.actions()
    what = f"Action {action!r}" if known else f"Unknown action {action!r}"
    tail = f"allowed: {', '.join(allowed)}." if allowed else "no action is allowed from it."
    return TransitionRefused(f"{what} is not allowed from status {record.status!r}; {tail}", allowed)


def transition(session, kinds: Mapping[str, RecordKind], record, action: str, *,
               note: str | None = None, at: datetime | None = None, reason: str | None = None,
               actor_id: uuid.UUID | None = None, now: datetime | None = None) -> dict[str, list]:
    """Take ``action`` on ``record``; returns the changes ``{field: [old, new]}``.

    :param kinds: the kinds the tenant may use (``Plugins.kinds_for``).
    :param at: when it happened (aware; default ``now``); not in the future, not before
        the record's ``occurred_at`` or its latest stamp.
    :param reason: required when entering a waiting state (it pauses the clocks).
    :param now: the present (default: now): ``at`` may not be later, and the record is
        scored as of it (a demo loader replaying history passes each step's instant).
    :raises TransitionRefused: the kind has no workflow or the action is not allowed
        from the current status (``allowed`` lists those that are).
    :raises TransitionBlocked: the transition's guards fail on ``record.data``.
    :raises TransitionInvalid: ``at`` or ``reason`` is wrong. Nothing is changed.
    """
    kind = kinds.get(record.kind)
    workflow = kind.workflow if kind is not None else None
    step: Transition | None = workflow.transition(record.status, action) if workflow else None
    if step is None:
        raise _refused(kind, record, action)
    failing = unmet(step.requires, record.data)
    if failing:
        raise TransitionBlocked(
            f"Action {action!r} needs the record's data first: "
            + "; ".join(u["message"] for u in failing) + ".",
            workflow.allowed(record.status), failing)

    now = (now or utcnow()).astimezone(UTC)
    errors: dict[str, list[str]] = {}
    if at is None:
        at = now
    elif not isinstance(at, datetime) or at.utcoffset() is None:
        errors["at"] = ["Give an instant with a time zone offset."]
    if not errors:
        at = at.astimezone(UTC)
        if at > now:
            errors["at"] = [f"{at.isoformat()} is in the future."]
        else:
            name, latest = latest_instant(record)
            if at < latest:
                errors["at"] = [f"{at.isoformat()} is before the record's {name} ({latest.isoformat()})."]
    entering = step.target in workflow.waiting and record.status not in workflow.waiting
    leaving = record.status in workflow.waiting and step.target not in workflow.waiting
    reason = reason.strip() if isinstance(reason, str) else None
    if entering and not reason:
        errors["reason"] = [f"Entering {step.target!r} pauses the deadlines: give a reason."]
    if reason and len(reason) > REASON_MAX:
        errors["reason"] = [f"At most {REASON_MAX} characters."]
    if note is not None and len(note) > NOTE_MAX:
        errors["note"] = [f"At most {NOTE_MAX} characters."]
    if errors:
        raise TransitionInvalid("The transition was refused: " + "; ".join(
            f"{k}: {v[0]}" for k, v in errors.items()), errors)

    stamp = iso(at)
    old_status = record.status
    timestamps = dict(record.timestamps or {})
    changes: dict[str, list] = {"status": [old_status, step.target]}
    for cleared in step.clears:
        if cleared in timestamps:
            changes[f"timestamps.{cleared}"] = [timestamps.pop(cleared), None]
    if step.stamp and (step.restamp or step.stamp not in timestamps):
        changes[f"timestamps.{step.stamp}"] = [timestamps.get(step.stamp), stamp]
        timestamps[step.stamp] = stamp
    record.status = step.target
    record.timestamps = timestamps  # a new dict, so the JSON column is written
    record.status_since = at  # the record moved: the stalled-record watch re-arms
    record.stalled_at = None
    session.flush()

    if entering or (step.target in workflow.waiting and old_status != step.target):
        # Into a waiting state, or from one to another: the clocks decide what it pauses.
        deadline_clocks.pause_clocks(session, record, at, reason, step.target)
    elif leaving:
        deadline_clocks.resume_clocks(session, record, at)

    audit(session, ENTITY, record.id, "transition", actor_id, {
        **changes, "action": action, "at": stamp, "note": note, "reason": reason})
    hooks_for_session(session).record_changed(session=session, record=record, changes=changes,
                                              actor_id=actor_id)
    evaluate_record(session, record, now=now)
    return changes


def allowed_transitions(kind: RecordKind | None, status: str,
                        data: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The actions allowed from ``status``: ``action``, ``title``, ``target``, ``stamp``,
    whether it needs a reason (it enters a waiting state), its guards (``requires``) and,
    given the record's ``data``, whether they hold now (``satisfied``, ``unmet``)."""
    if kind is None or kind.workflow is None:
        return []
    workflow = kind.workflow
    return [{
        "action": t.action,
        "title": {"en": t.title.get("en", t.action), "zh": t.title.get("zh", t.title.get("en", t.action))},
        "target": t.target,
        "stamp": t.stamp,
        "needs_reason": t.target in workflow.waiting and status not in workflow.waiting,
        "requires": jsonable_conditions(t.requires),
        "satisfied": not failing,
        "unmet": failing,
    } for t in workflow.allowed_transitions(status)
        for failing in (unmet(t.requires, data),)]
