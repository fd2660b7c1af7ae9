"""Calibration sessions and their reviews: who may do what, and each review's score.

A facilitator (a manager) creates a session: a title, a standard (the version in force
unless one is named: it is pinned), 1-10 subject records (3-5 is the practice), 2-20
participants (members of the tenant who may write), optionally an expert whose review is
the reference, a due time and ``blind`` (the default: results and others' reviews stay
hidden until every review is in or the facilitator stops them). Each participant submits
one review per subject (``answers`` as an inspection's), changeable while the session is
open; it is scored at once by the pure engine against the pinned version and stored as a
:class:`~servq.core.models.CalibrationReview`, never as a record, so it never counts in
KPIs, quality files, corrective actions or the ledger. The session moves to ``review``
when the last review arrives (or the facilitator stops it) and is ``closed`` with its
decisions.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import func, select

from servq.core.audit import audit
from servq.core.auth.permissions import allowed
from servq.core.calendar import WALL
from servq.core.evaluation.values import answer_values, inspection_plan
from servq.core.models import CalibrationReview, CalibrationSession, Membership, Record
from servq.core.scoring import evaluate
from servq.core.standards import rule_registry, standard_in_force, standard_version

ENTITY = "calibration_sessions"


class CalibrationRefused(Exception):
    """A refused step: ``status`` (403, 404, 409, 422), a message and field ``errors``."""

    def __init__(self, status: int, message: str, errors: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors or {}


def _invalid(errors: dict[str, list[str]]) -> CalibrationRefused:
    return CalibrationRefused(422, "The calibration session was refused: " + "; ".join(
        f"{k}: {v[0]}" for k, v in errors.items()), errors)


def pinned(session, row: CalibrationSession):
    """``(StandardVersion, CompiledStandard)`` of the session's pinned version."""
    pair = standard_version(session, row.standard_code, row.standard_version)
    if pair is None:
        raise CalibrationRefused(409, f"Version {row.standard_version} of {row.standard_code!r} "
                                      "no longer loads.")
    return pair


def create_session(session, body: Mapping[str, Any], *, actor_id: uuid.UUID | None,
                   now: datetime) -> CalibrationSession:
    """Create an open session (see the module docstring for the checks)."""
    errors: dict[str, list[str]] = {}
    code = body["standard_code"]
    if body.get("standard_version") is not None:
        pair = standard_version(session, code, body["standard_version"])
    else:
        pair = standard_in_force(session, code)
    if pair is None:
        errors["standard_code"] = [f"No standard {code!r} (version {body.get('standard_version') or 'in force'}) "
                                   "in this tenant."]
    subjects = list(dict.fromkeys(body["subject_record_ids"]))
    found = set(session.scalars(select(Record.id).where(Record.id.in_(subjects), Record.deleted_at.is_(None))))
    missing = [str(s) for s in subjects if s not in found]
    if missing:
        errors["subject_record_ids"] = [f"No such records in this tenant: {', '.join(missing)}."]
    participants = list(dict.fromkeys(body["participant_ids"]))
    expert = body.get("expert_id")
    wanted = participants + ([expert] if expert and expert not in participants else [])
    roles = dict(session.execute(select(Membership.user_id, Membership.role).where(Membership.user_id.in_(wanted))).all())
    unknown = [str(p) for p in wanted if p not in roles]
    if unknown:
        errors["participant_ids"] = [f"Not members of this tenant: {', '.join(unknown)}."]
    readers = [str(p) for p, role in roles.items() if not allowed(role, "write")]
    if readers:
        errors["participant_ids"] = [f"These members may not review (read-only role): {', '.join(readers)}."]
    if len(participants) < 2:
        errors.setdefault("participant_ids", ["A calibration needs at least two reviewers."])
    if errors:
        raise _invalid(errors)
    version, _ = pair
    row = CalibrationSession(
        id=uuid.uuid4(), title=body["title"], standard_code=code, standard_version=version.version,
        subject_record_ids=[str(s) for s in subjects],
        participant_ids=[str(p) for p in wanted], facilitator_id=actor_id,
        expert_id=expert, blind=body.get("blind", True), due_at=body.get("due_at"),
        status="open", notes=body.get("notes"), decisions=[], created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    audit(session, ENTITY, row.id, "created", actor_id, {
        "standard": f"{code}@{version.version}", "subjects": len(subjects), "participants": len(wanted)})
    return row


def submit_review(session, row: CalibrationSession, subject_id: uuid.UUID, answers: Mapping[str, Any], *,
                  actor_id: uuid.UUID, now: datetime) -> CalibrationReview:
    """Store (or replace) the caller's review of ``subject_id``, scored against the pinned version."""
    if str(actor_id) not in row.participant_ids:
        raise CalibrationRefused(403, "Only the session's participants review in it.")
    if str(subject_id) not in row.subject_record_ids:
        raise CalibrationRefused(404, "This record is not a subject of the session.")
    if row.status != "open":
        raise CalibrationRefused(409, f"The session is {row.status}: reviews are closed.")
    _, compiled = pinned(session, row)
    plan = inspection_plan(compiled, rule_registry())
    values, problems = answer_values(plan, answers, strict=True)
    if problems:
        raise CalibrationRefused(422, "The review does not fit the standard.",
                                 {"answers": dict(sorted(problems.items()))})
    result = evaluate(plan.compiled, values, now, WALL)
    items = [{"code": item.code, "outcome": item.outcome.value, "points": item.points,
              "max_points": item.max_points} for item in result.items]
    review = session.scalar(select(CalibrationReview).where(
        CalibrationReview.session_id == row.id, CalibrationReview.participant_id == actor_id,
        CalibrationReview.subject_record_id == subject_id))
    if review is None:
        review = CalibrationReview(id=uuid.uuid4(), session_id=row.id, participant_id=actor_id,
                                   subject_record_id=subject_id)
        session.add(review)
    review.answers, review.percent, review.passed = dict(answers), result.percent, result.passed
    review.items, review.submitted_at = items, now
    session.flush()
    expected = len(row.participant_ids) * len(row.subject_record_ids)
    done = session.scalar(select(func.count()).select_from(CalibrationReview).where(
        CalibrationReview.session_id == row.id))
    if done >= expected:
        row.status, row.updated_at = "review", now
    return review


def stop_reviews(session, row: CalibrationSession, *, actor_id: uuid.UUID | None, now: datetime) -> None:
    """The facilitator stops the reviews (some are missing): the results show."""
    if row.status != "open":
        raise CalibrationRefused(409, f"The session is {row.status} already.")
    row.status, row.updated_at = "review", now
    audit(session, ENTITY, row.id, "stopped", actor_id, {})


def close_session(session, row: CalibrationSession, body: Mapping[str, Any], *,
                  actor_id: uuid.UUID | None, now: datetime) -> None:
    """Close a session with its decisions (what the reviewers agreed on)."""
    if row.status == "closed":
        raise CalibrationRefused(409, "The session is closed already.")
    row.status, row.closed_at, row.updated_at = "closed", now, now
    row.decisions = list(body.get("decisions") or ())
    if body.get("notes") is not None:
        row.notes = body["notes"]
    audit(session, ENTITY, row.id, "closed", actor_id, {"decisions": len(row.decisions)})
