"""Filing, deciding, appealing, closing and withdrawing disputes: the rules of each step.

A dispute contests one evaluation (a record against one standard). Its life:

``open`` (level 1, waiting for the arbitrator) ─decide→ ``decided`` ─appeal→ ``appealed``
(level 2, a manager) ─decide→ ``closed``; a decided dispute may also be ``close``d by its
filer (accepting the decision), and an open one ``withdrawn``.

Rules, each a refusal with a clear message (:class:`DisputeRefused`) and nothing written:

- the record's staff member disputes it (their user is linked to the staff member); a
  manager, admin or owner may file on their behalf; anyone else: 404, as if there were no
  evaluation to see;
- a mystery inspection can be disputed only once a manager has revealed it
  (``data.visibility`` changed to ``open``): 409 before;
- within the ``file`` window of the record's entry (by default :data:`WINDOWS`: 3 working
  days of the tenant's calendar; the tenant's settings may change each window, see
  :mod:`servq.core.settings`); one open dispute per evaluation (409);
- ``score`` disputes name items of the evaluation, each with a proposed outcome
  (``pass``, ``fail``, ``na``; points for deduction items) and a reason; the dispute's
  own reason is mandatory; ``wrong_subject`` and ``not_applicable`` contest the whole
  evaluation (accepted: every item becomes n.a., so the evaluation scores no one);
- the arbitrator is the one named at filing, by default the reviewer (the inspection's
  inspector); the arbitrator or a manager decides level 1, a manager other than the
  level-1 decider decides the appeal (403 otherwise);
- one appeal, by the filer or a manager, within the ``appeal`` window of the decision,
  of a decision that did not accept everything.

Accepted items become overrides (:func:`servq.core.evaluation.overrides.set_override`) and
the record is scored again at once; the dispute keeps the percent before and after. While a
dispute is open or appealed its evaluation is flagged ``disputed``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import select

from servq.core.audit import audit
from servq.core.auth.permissions import allowed
from servq.core.calendar import due
from servq.core.calendar.tenant import tenant_calendar
from servq.core.evaluation.overrides import set_override
from servq.core.evaluation.visibility import INSPECTION
from servq.core.models import Dispute, Evaluation, Record, Staff
from servq.core.ledger import hold_entries, release_entries
from servq.core.notify.outbox import emit_many
from servq.core.records.evaluate import evaluate_record
from servq.core.settings import DISPUTE_WINDOWS, dispute_window

ENTITY = "disputes"
TYPES = ("score", "wrong_subject", "not_applicable")
RESULTS = ("accepted", "partially_accepted", "rejected")
#: [P] defaults of each step's window (INDUSTRIES.md §4.1), working time of the tenant's
#: calendar; a tenant sets its own in its settings (core.settings, PATCH /settings).
WINDOWS = DISPUTE_WINDOWS
OPEN = ("open", "appealed")


class DisputeRefused(Exception):
    """A step refused: ``status`` (403, 404, 409, 422), a message, field ``errors``."""

    def __init__(self, status: int, message: str, errors: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors or {}


def _evaluation(session, record: Record, standard_code: str) -> Evaluation:
    evaluation = session.scalar(select(Evaluation).where(
        Evaluation.record_id == record.id, Evaluation.standard_code == standard_code))
    if evaluation is None:
        raise DisputeRefused(404, f"This record has no evaluation against {standard_code!r}.")
    return evaluation


def _own(session, record: Record, actor_id: uuid.UUID | None) -> bool:
    """Whether the record's staff member is the user ``actor_id``."""
    if record.staff_id is None or actor_id is None:
        return False
    return session.scalar(select(Staff.user_id).where(Staff.id == record.staff_id)) == actor_id


def _is_manager(role: str | None) -> bool:
    return role is not None and allowed(role, "manage")


def _notify(session, event: str, dispute: Dispute, extra: Mapping[str, Any] | None = None) -> None:
    payload = {"dispute_id": str(dispute.id), "record_id": str(dispute.record_id),
               "standard_code": dispute.standard_code, "status": dispute.status,
               "level": dispute.level, "result": dispute.result, **(extra or {})}
    key = f"{event}:{dispute.id}:{dispute.level}"
    emit_many(session, [(event, payload, ("manager",), key)])


def _items(body: Mapping[str, Any], evaluation: Evaluation) -> list[dict]:
    """The disputed items of a ``score`` dispute, checked against the evaluation."""
    errors: dict[str, list[str]] = {}
    scored = {item["code"]: item for item in evaluation.items or ()}
    out = []
    for n, item in enumerate(body.get("items") or ()):
        code = item["item"]
        if code not in scored:
            errors[f"items.{n}.item"] = [f"The evaluation has no item {code!r}."]
            continue
        proposed = dict(item["proposed"])
        if proposed.get("outcome") == scored[code]["outcome"] and proposed.get("points") is None:
            errors[f"items.{n}.proposed"] = [f"Item {code!r} is already {proposed['outcome']!r}."]
        out.append({"item": code, "proposed": proposed, "reason": item["reason"],
                    "evidence": list(item.get("evidence") or ()),
                    "original": {"outcome": scored[code]["outcome"], "points": scored[code]["points"]}})
    if len({i["item"] for i in out}) < len(out):
        errors["items"] = ["Each item may be disputed once."]
    if not out and not errors:
        errors["items"] = ["A score dispute names at least one item."]
    if errors:
        raise DisputeRefused(422, "The dispute was refused: " + "; ".join(
            f"{k}: {v[0]}" for k, v in errors.items()), errors)
    return out


def file_dispute(session, record: Record, body: Mapping[str, Any], *, actor_id: uuid.UUID | None,
                 role: str | None, now: datetime) -> Dispute:
    """File a dispute of ``record``'s evaluation against ``body["standard_code"]``."""
    own = _own(session, record, actor_id)
    if not own and not _is_manager(role):
        raise DisputeRefused(404, "No evaluation of yours to dispute: a staff member disputes "
                                  "the evaluations of their own records.")
    evaluation = _evaluation(session, record, body["standard_code"])
    data = record.data or {}
    if record.kind == INSPECTION and data.get("visibility") == "mystery":
        raise DisputeRefused(409, "A mystery inspection can be disputed once a manager has revealed "
                                  "it (its visibility changed to 'open').")
    calendar = tenant_calendar(session)
    window = dispute_window(session, "file")
    deadline = due(record.created_at, window, calendar)
    if now > deadline:
        raise DisputeRefused(422, f"The window to dispute closed at {deadline.isoformat()} "
                                  f"({window} after the record was entered).",
                             {"standard_code": ["The window to dispute this evaluation has closed."]})
    if evaluation.disputed or session.scalar(select(Dispute.id).where(
            Dispute.record_id == record.id, Dispute.standard_code == evaluation.standard_code,
            Dispute.status.in_(OPEN))) is not None:
        raise DisputeRefused(409, "This evaluation is disputed already: one open dispute per evaluation.")
    items = _items(body, evaluation) if body["type"] == "score" else []
    reviewer = data.get("inspector_id") if record.kind == INSPECTION else None
    reviewer = uuid.UUID(str(reviewer)) if reviewer else None
    dispute = Dispute(
        id=uuid.uuid4(), record_id=record.id, standard_code=evaluation.standard_code,
        standard_version=evaluation.standard_version, staff_id=record.staff_id, reviewer_id=reviewer,
        type=body["type"], reason=body["reason"], evidence=list(body.get("evidence") or ()),
        items=items, status="open", level=1, arbitrator_id=body.get("arbitrator_id") or reviewer,
        decisions=[], original_percent=evaluation.percent, filed_by=actor_id, filed_at=now,
        decide_by=due(now, dispute_window(session, "decide"), calendar), updated_at=now)
    session.add(dispute)
    evaluation.disputed = True
    session.flush()
    hold_entries(session, record.id, evaluation.standard_code, actor_id=actor_id)
    audit(session, ENTITY, dispute.id, "filed", actor_id, {
        "record_id": str(record.id), "standard_code": dispute.standard_code, "type": dispute.type,
        "items": [i["item"] for i in items], "on_behalf": not own})
    _notify(session, "dispute.filed", dispute)
    return dispute


def _decision_items(dispute: Dispute, body: Mapping[str, Any]) -> list[dict]:
    """Each disputed item with ``accepted`` and the outcome decided, per ``body``."""
    result = body["result"]
    given = {item["item"]: item for item in body.get("items") or ()}
    codes = [i["item"] for i in dispute.items] if dispute.type == "score" else []
    unknown = sorted(set(given) - set(codes))
    if unknown:
        raise DisputeRefused(422, f"Items not disputed: {', '.join(unknown)}.",
                             {"items": [f"Not disputed: {', '.join(unknown)}."]})
    out = []
    for item in dispute.items:
        decided = given.get(item["item"], {})
        if result == "partially_accepted":
            if "accepted" not in decided:
                raise DisputeRefused(422, f"A partial decision says for each item whether it is "
                                          f"accepted: {item['item']!r} is missing.",
                                     {"items": [f"Missing: {item['item']}."]})
            accepted = bool(decided["accepted"])
        else:
            accepted = result == "accepted"
            if "accepted" in decided and bool(decided["accepted"]) != accepted:
                raise DisputeRefused(422, f"Item {item['item']!r} contradicts the result {result!r}.",
                                     {"items": [f"{item['item']}: contradicts {result}."]})
        outcome = decided.get("outcome") or item["proposed"].get("outcome")
        points = decided.get("points", item["proposed"].get("points"))
        out.append({"item": item["item"], "accepted": accepted, "outcome": outcome if accepted else None,
                    "points": points if accepted else None, "note": decided.get("note")})
    if result == "partially_accepted" and (all(i["accepted"] for i in out) or not any(i["accepted"] for i in out)):
        raise DisputeRefused(422, "A partial decision accepts some items and rejects others; "
                                  "use 'accepted' or 'rejected'.", {"result": ["Not partial."]})
    if result == "partially_accepted" and dispute.type != "score":
        raise DisputeRefused(422, "A whole-evaluation dispute is accepted or rejected.",
                             {"result": ["accepted or rejected"]})
    return out


def decide_dispute(session, dispute: Dispute, body: Mapping[str, Any], *, actor_id: uuid.UUID | None,
                   role: str | None, now: datetime) -> Dispute:
    """Decide the open (level 1) or appealed (level 2) ``dispute``; accepted items become
    overrides and the record is scored again."""
    if dispute.status not in OPEN:
        raise DisputeRefused(409, f"A {dispute.status} dispute cannot be decided.")
    if dispute.level == 1:
        if actor_id != dispute.arbitrator_id and not _is_manager(role):
            raise DisputeRefused(403, "Only the arbitrator or a manager may decide this dispute.")
    else:
        first = dispute.decisions[0]["by"] if dispute.decisions else None
        if not _is_manager(role) or (first is not None and str(actor_id) == first):
            raise DisputeRefused(403, "An appeal is decided by a manager other than the first arbitrator.")
    items = _decision_items(dispute, body)
    record = session.scalar(select(Record).where(Record.id == dispute.record_id))
    accepted = body["result"] == "accepted"
    if dispute.type == "score":
        for item in items:
            if item["accepted"]:
                original = next(i["original"] for i in dispute.items if i["item"] == item["item"])
                set_override(session, dispute.record_id, dispute.standard_code, item["item"],
                             outcome=item["outcome"], points=item["points"], original=original,
                             reason=item["note"] or body.get("note") or dispute.reason,
                             dispute_id=dispute.id, actor_id=actor_id)
    elif accepted:
        evaluation = _evaluation(session, record, dispute.standard_code)
        for item in evaluation.items or ():
            set_override(session, dispute.record_id, dispute.standard_code, item["code"], outcome="na",
                         points=None, original={"outcome": item["outcome"], "points": item["points"]},
                         reason=f"{dispute.type}: {body.get('note') or dispute.reason}",
                         dispute_id=dispute.id, actor_id=actor_id)
    session.flush()
    evaluations = evaluate_record(session, record, now=now, actor_id=actor_id)
    evaluation = next((e for e in evaluations if e.standard_code == dispute.standard_code), None)
    dispute.decisions = [*dispute.decisions, {
        "level": dispute.level, "result": body["result"], "items": items, "note": body.get("note"),
        "by": str(actor_id) if actor_id else None, "at": now.isoformat()}]
    dispute.result = body["result"]
    dispute.final_percent = evaluation.percent if evaluation is not None else None
    dispute.decided_at = now
    if dispute.level == 1 and body["result"] != "accepted":
        dispute.status = "decided"
        dispute.appeal_by = due(now, dispute_window(session, "appeal"), tenant_calendar(session))
    else:
        dispute.status = "closed" if dispute.level == 2 or accepted else "decided"
        dispute.appeal_by = None
        if dispute.status == "closed":
            dispute.closed_at = now
    if evaluation is not None:
        evaluation.disputed = False
    dispute.updated_at = now
    session.flush()
    release_entries(session, dispute.record_id, dispute.standard_code,
                    evaluation.items if evaluation is not None else [], actor_id=actor_id)
    audit(session, ENTITY, dispute.id, "decided", actor_id, {
        "level": dispute.level, "result": body["result"],
        "accepted": [i["item"] for i in items if i["accepted"]],
        "percent": [dispute.original_percent, dispute.final_percent]})
    _notify(session, "dispute.decided", dispute, {"final_percent": dispute.final_percent})
    return dispute


def appeal_dispute(session, dispute: Dispute, body: Mapping[str, Any], *, actor_id: uuid.UUID | None,
                   role: str | None, now: datetime) -> Dispute:
    """Appeal a level-1 decision to a manager (once, within the appeal window)."""
    if dispute.status != "decided" or dispute.level != 1:
        raise DisputeRefused(409, "Only a decided first-level dispute can be appealed, once." if
                             dispute.level == 1 else "This dispute was appealed already: one appeal.")
    if actor_id != dispute.filed_by and not _is_manager(role):
        raise DisputeRefused(403, "Only whoever filed the dispute, or a manager, may appeal.")
    if dispute.appeal_by is not None and now > dispute.appeal_by:
        raise DisputeRefused(422, f"The window to appeal closed at {dispute.appeal_by.isoformat()}.",
                             {"reason": ["The window to appeal has closed."]})
    evaluation = session.scalar(select(Evaluation).where(
        Evaluation.record_id == dispute.record_id, Evaluation.standard_code == dispute.standard_code))
    dispute.status, dispute.level = "appealed", 2
    dispute.decide_by = due(now, dispute_window(session, "decide_appeal"), tenant_calendar(session))
    dispute.appeal_by = None
    dispute.updated_at = now
    if evaluation is not None:
        evaluation.disputed = True
    session.flush()
    hold_entries(session, dispute.record_id, dispute.standard_code, actor_id=actor_id)
    audit(session, ENTITY, dispute.id, "appealed", actor_id, {"reason": body["reason"]})
    _notify(session, "dispute.appealed", dispute, {"reason": body["reason"]})
    return dispute


def close_dispute(session, dispute: Dispute, *, actor_id: uuid.UUID | None, role: str | None,
                  now: datetime) -> Dispute:
    """The filer (or a manager) accepts a level-1 decision: no appeal."""
    if dispute.status != "decided":
        raise DisputeRefused(409, f"A {dispute.status} dispute cannot be closed; decide it first.")
    if actor_id != dispute.filed_by and not _is_manager(role):
        raise DisputeRefused(403, "Only whoever filed the dispute, or a manager, may close it.")
    dispute.status, dispute.closed_at, dispute.appeal_by, dispute.updated_at = "closed", now, None, now
    session.flush()
    audit(session, ENTITY, dispute.id, "closed", actor_id, {})
    return dispute


def withdraw_dispute(session, dispute: Dispute, *, actor_id: uuid.UUID | None, role: str | None,
                     now: datetime) -> Dispute:
    """Withdraw an open or appealed dispute (its filer, or a manager)."""
    if dispute.status not in OPEN:
        raise DisputeRefused(409, f"A {dispute.status} dispute cannot be withdrawn.")
    if actor_id != dispute.filed_by and not _is_manager(role):
        raise DisputeRefused(403, "Only whoever filed the dispute, or a manager, may withdraw it.")
    evaluation = session.scalar(select(Evaluation).where(
        Evaluation.record_id == dispute.record_id, Evaluation.standard_code == dispute.standard_code))
    if evaluation is not None:
        evaluation.disputed = False
    dispute.status, dispute.closed_at, dispute.updated_at = "withdrawn", now, now
    session.flush()
    release_entries(session, dispute.record_id, dispute.standard_code, None, actor_id=actor_id)
    audit(session, ENTITY, dispute.id, "withdrawn", actor_id, {})
    return dispute
