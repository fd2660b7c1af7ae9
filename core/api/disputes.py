"""Disputes of evaluations: ``/api/v1/disputes``.

``POST /disputes`` files one (the record's staff member, or a manager on their behalf);
``GET /disputes`` lists them (a manager sees all; anyone else the disputes they filed, of
their own records, or that they arbitrate or reviewed); ``GET /disputes/<id>``;
``POST /disputes/<id>/decision|appeal|close|withdraw`` move it on (If-Match required);
``GET /disputes/summary`` gives dispute and overturn rates by standard, item or reviewer.
The rules of each step are :mod:`servq.core.disputes.store`'s; see docs/disputes.md.
"""

from __future__ import annotations

from datetime import timedelta

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate, validates_schema, ValidationError
from sqlalchemy import or_, select

from servq.core.api.blueprint import Blueprint
from servq.core.api.context import actor_id, enabled_kinds, require
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.api.records import get_record
from servq.core.auth.permissions import allowed
from servq.core.db import utcnow
from servq.core.db.session import request_session
from servq.core.disputes import (RESULTS, TYPES, DisputeRefused, appeal_dispute, close_dispute,
                                 decide_dispute, file_dispute, summary, withdraw_dispute)
from servq.core.disputes.summary import GROUPINGS
from servq.core.evaluation.overrides import OUTCOMES
from servq.core.models import Dispute, Staff
from servq.core.scoring.standard import CODE

URL = ""
blp = Blueprint("disputes", __name__, description="Disputes and appeals of evaluations, decided per item.")

TEXT = validate.Length(min=1, max=2000)
EVIDENCE = fields.List(fields.Url(validate=validate.Length(max=2000)), load_default=list,
                       validate=validate.Length(max=20),
                       metadata={"description": "Links to recordings, photos, documents"})


class ProposedSchema(Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    points = fields.Float(allow_none=True, validate=validate.Range(min=0, max=1000), metadata={
        "description": "For a deduction item: the points it should lose instead"})


class DisputedItemSchema(Schema):
    item = fields.String(required=True, validate=CODE)
    proposed = fields.Nested(ProposedSchema, required=True)
    reason = fields.String(required=True, validate=TEXT)
    evidence = EVIDENCE


class DisputeInputSchema(Schema):
    record_id = fields.UUID(required=True)
    standard_code = fields.String(required=True, validate=CODE)
    type = fields.String(load_default="score", validate=validate.OneOf(TYPES), metadata={
        "description": "score (per item), wrong_subject (not my work), not_applicable"})
    reason = fields.String(required=True, validate=TEXT)
    evidence = EVIDENCE
    items = fields.List(fields.Nested(DisputedItemSchema), load_default=list,
                        validate=validate.Length(max=200))
    arbitrator_id = fields.UUID(allow_none=True, metadata={
        "description": "Who decides (default: the reviewer; a manager may always decide)"})

    @validates_schema
    def _items_fit_type(self, data, **kwargs):
        if data.get("type", "score") != "score" and data.get("items"):
            raise ValidationError("A whole-evaluation dispute names no items.", "items")


class DecidedItemSchema(Schema):
    item = fields.String(required=True, validate=CODE)
    accepted = fields.Boolean(required=True)
    outcome = fields.String(validate=validate.OneOf(OUTCOMES), metadata={
        "description": "The outcome decided (default: the one proposed)"})
    points = fields.Float(allow_none=True, validate=validate.Range(min=0, max=1000))
    note = fields.String(validate=TEXT)


class DecisionSchema(Schema):
    result = fields.String(required=True, validate=validate.OneOf(RESULTS))
    items = fields.List(fields.Nested(DecidedItemSchema), load_default=list,
                        validate=validate.Length(max=200))
    note = fields.String(validate=TEXT)


class AppealSchema(Schema):
    reason = fields.String(required=True, validate=TEXT)


class DisputeSchema(Schema):
    id = fields.UUID(required=True)
    record_id = fields.UUID(required=True)
    standard_code = fields.String(required=True)
    standard_version = fields.Integer(required=True)
    staff_id = fields.UUID(allow_none=True)
    reviewer_id = fields.UUID(allow_none=True)
    type = fields.String(required=True)
    reason = fields.String(required=True)
    evidence = fields.List(fields.String(), required=True)
    items = fields.List(fields.Dict(), required=True, metadata={
        "description": "{item, proposed: {outcome, points}, reason, evidence, original}"})
    status = fields.String(required=True, metadata={
        "description": "open, decided, appealed, closed or withdrawn"})
    level = fields.Integer(required=True, metadata={"description": "1, or 2 once appealed"})
    result = fields.String(allow_none=True)
    arbitrator_id = fields.UUID(allow_none=True)
    decisions = fields.List(fields.Dict(), required=True, metadata={
        "description": "{level, result, items: [{item, accepted, outcome, points, note}], note, by, at}"})
    original_percent = fields.Float(allow_none=True)
    final_percent = fields.Float(allow_none=True)
    filed_by = fields.UUID(allow_none=True)
    filed_at = fields.AwareDateTime(required=True)
    decide_by = fields.AwareDateTime(allow_none=True)
    decided_at = fields.AwareDateTime(allow_none=True)
    appeal_by = fields.AwareDateTime(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    overdue = fields.Method("_overdue", metadata={"description": "Waiting for a decision past decide_by"})

    def _overdue(self, dispute) -> bool:
        return dispute.status in ("open", "appealed") and dispute.decide_by is not None \
            and utcnow() > dispute.decide_by


class DisputeQuery(PageArgs):
    status = fields.String(validate=validate.OneOf(("open", "decided", "appealed", "closed", "withdrawn")))
    record_id = fields.UUID()
    staff_id = fields.UUID()
    standard = fields.String(validate=CODE)


class SummaryQuery(Schema):
    since = fields.AwareDateTime(required=True)
    until = fields.AwareDateTime(required=True)
    by = fields.String(load_default="standard", validate=validate.OneOf(GROUPINGS))


class SummaryRowSchema(Schema):
    standard = fields.String()
    item = fields.String()
    reviewer = fields.UUID(allow_none=True)
    evaluations = fields.Integer()
    disputes = fields.Integer(required=True)
    decided = fields.Integer(required=True)
    overturned = fields.Integer(required=True)
    dispute_rate = fields.Float(allow_none=True, metadata={"description": "% of the evaluations disputed"})
    overturn_rate = fields.Float(allow_none=True, metadata={"description": "% of the decided disputes overturned"})
    mean_hours_to_decide = fields.Float(allow_none=True)


def _role() -> str | None:
    return g.membership.role if "membership" in g else None


def _visible(stmt):
    """A manager sees every dispute; anyone else those they filed, of their own records,
    or that they arbitrate or reviewed."""
    if allowed(_role(), "manage"):
        return stmt
    me = actor_id()
    mine = select(Staff.id).where(Staff.user_id == me)
    return stmt.where(or_(Dispute.filed_by == me, Dispute.arbitrator_id == me, Dispute.reviewer_id == me,
                          Dispute.staff_id.in_(mine)))


def _get(dispute_id) -> Dispute:
    dispute = request_session().scalar(_visible(select(Dispute).where(Dispute.id == dispute_id)))
    if dispute is None:
        abort(404, message="Dispute not found.")
    return dispute


def _refused(refused: DisputeRefused):
    abort(refused.status, message=refused.message,
          **({"errors": {"json": refused.errors}} if refused.errors else {}))


@blp.route("/disputes")
class Disputes(MethodView):
    @require("read")
    @blp.arguments(DisputeQuery(), location="query")
    @blp.response(200, DisputeSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """Disputes, newest first (filters: status, record, staff member, standard)."""
        stmt = _visible(select(Dispute))
        for name, column in (("status", Dispute.status), ("record_id", Dispute.record_id),
                             ("staff_id", Dispute.staff_id), ("standard", Dispute.standard_code)):
            if name in args:
                stmt = stmt.where(column == args[name])
        headers: dict = {}
        rows = paginate(request_session(), stmt.order_by(Dispute.filed_at.desc(), Dispute.id), args, headers)
        return rows, 200, headers

    @require("write")
    @blp.arguments(DisputeInputSchema())
    @blp.created(DisputeSchema)
    def post(self, body):
        """File a dispute of the evaluation of one of your records against one standard.

        404 when the record or its evaluation is not yours to dispute; 409 when one is
        open already or the record is an unrevealed mystery inspection; 422 past the
        window or for items the evaluation lacks."""
        session = request_session()
        record = get_record(body["record_id"], enabled_kinds())
        try:
            dispute = file_dispute(session, record, body, actor_id=actor_id(), role=_role(), now=utcnow())
        except DisputeRefused as refused:
            session.rollback()
            _refused(refused)
        session.commit()
        return dispute


@blp.route("/disputes/summary")
class DisputeSummary(MethodView):
    @require("manage")
    @blp.arguments(SummaryQuery(), location="query")
    @blp.response(200, SummaryRowSchema(many=True))
    def get(self, args):
        """Dispute and overturn rates and the time to decide, by standard, item or reviewer,
        of the records that occurred in ``[since, until)`` (at most 366 days)."""
        since, until = args["since"], args["until"]
        if since >= until or until - since > timedelta(days=366):
            abort(422, message="'since' must be before 'until', at most 366 days apart.",
                  errors={"json": {"since": ["Out of range."]}})
        return summary(request_session(), since, until, args["by"])


@blp.route("/disputes/<uuid:dispute_id>")
class DisputeById(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, DisputeSchema)
    def get(self, dispute_id):
        """One dispute, with its items and decisions."""
        return _get(dispute_id)


def _step(dispute_id, run, body=None):
    session = request_session()
    dispute = _get(dispute_id)
    # flask-smorest checks If-Match on PUT/PATCH/DELETE only: a step is a POST.
    blp.check_if_match(dispute, DisputeSchema, what="the dispute")
    try:
        if body is None:
            run(session, dispute, actor_id=actor_id(), role=_role(), now=utcnow())
        else:
            run(session, dispute, body, actor_id=actor_id(), role=_role(), now=utcnow())
    except DisputeRefused as refused:
        session.rollback()
        _refused(refused)
    session.commit()
    return dispute


@blp.route("/disputes/<uuid:dispute_id>/decision")
class DisputeDecision(MethodView):
    @require("write")
    @blp.etag
    @blp.arguments(DecisionSchema())
    @blp.response(200, DisputeSchema)
    def post(self, body, dispute_id):
        """Decide: accept, partly accept or reject, per item (the arbitrator or a manager at
        level 1; a manager other than the first arbitrator on appeal). Accepted items become
        overrides and the record is scored again. Needs If-Match."""
        return _step(dispute_id, decide_dispute, body)


@blp.route("/disputes/<uuid:dispute_id>/appeal")
class DisputeAppeal(MethodView):
    @require("write")
    @blp.etag
    @blp.arguments(AppealSchema())
    @blp.response(200, DisputeSchema)
    def post(self, body, dispute_id):
        """Appeal a first-level decision to a manager, once, within the window. Needs If-Match."""
        return _step(dispute_id, appeal_dispute, body)


@blp.route("/disputes/<uuid:dispute_id>/close")
class DisputeClose(MethodView):
    @require("write")
    @blp.etag
    @blp.response(200, DisputeSchema)
    def post(self, dispute_id):
        """Accept a first-level decision (no appeal). Needs If-Match."""
        return _step(dispute_id, close_dispute)


@blp.route("/disputes/<uuid:dispute_id>/withdraw")
class DisputeWithdraw(MethodView):
    @require("write")
    @blp.etag
    @blp.response(200, DisputeSchema)
    def post(self, dispute_id):
        """Withdraw an open or appealed dispute. Needs If-Match."""
        return _step(dispute_id, withdraw_dispute)
