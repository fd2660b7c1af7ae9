"""The reviews of a record: ``GET /records/<id>/reviews``.

A record is reviewed two ways: automatically, by its own evaluations against the
standards in force (a call scored on its transcript), and by hand, by inspections that
name it as their ``subject_record_id`` (a manual review of the call, a spot check of a
delivery or a room), each with its own evaluation. This route lists both, apart
(``source``), as one page of evaluations: the automatic ones first by standard, then the
manual ones newest first. The subject is found as the record routes find it (another
tenant's, a deleted one, a hidden mystery inspection: 404); reviews the caller's role may
not see (mystery inspections, for agents) and deleted reviews are left out.
"""

from __future__ import annotations

from flask import g
from flask.views import MethodView
from marshmallow import Schema, fields, validate
from sqlalchemy import and_, case, or_, select

from servq.core.api.blueprint import Blueprint
from servq.core.api.context import enabled_kinds, require
from servq.core.api.evaluations import EvaluationSchema
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.api.records import get_record
from servq.core.db.session import request_session
from servq.core.evaluation.visibility import INSPECTION, hidden_from
from servq.core.models import Evaluation, Record

URL = "/records"
blp = Blueprint("reviews", __name__, description="Automatic and manual reviews of a record.")

SOURCES = ("automatic", "manual")


class ReviewQuery(PageArgs):
    source = fields.String(validate=validate.OneOf(SOURCES), metadata={
        "description": "automatic (the record's own evaluations) or manual (inspections "
                       "that judge it); both by default"})


class ReviewSchema(Schema):
    source = fields.String(required=True, metadata={"description": "automatic or manual"})
    review_record_id = fields.UUID(required=True, metadata={
        "description": "The record evaluated: the subject itself (automatic) or the inspection"})
    inspector_id = fields.UUID(allow_none=True, metadata={"description": "Who reviewed (manual)"})
    mode = fields.String(allow_none=True, metadata={"description": "The inspection's mode (manual)"})
    reviewed_at = fields.AwareDateTime(required=True, metadata={
        "description": "When the review happened: the inspection's occurred_at, or the "
                       "evaluation's evaluated_at (automatic)"})
    evaluation = fields.Nested(EvaluationSchema, required=True)


def reviews_statement(subject_id, role: str | None):
    """The evaluations that review record ``subject_id`` (its own and those of the
    inspections naming it), automatic first, then manual newest first; with the reviewing
    record joined. Served by the records' subject index and the evaluations' unique key."""
    manual = and_(Record.kind == INSPECTION,
                  Record.data["subject_record_id"].as_string() == str(subject_id),
                  Record.deleted_at.is_(None))
    stmt = (select(Evaluation, Record)
            .join(Record, and_(Record.tenant_id == Evaluation.tenant_id, Record.id == Evaluation.record_id))
            .where(or_(Evaluation.record_id == subject_id, manual)))
    hidden = hidden_from(role)
    if hidden is not None:
        stmt = stmt.where(hidden)
    automatic_first = case((Evaluation.record_id == subject_id, 0), else_=1)
    return stmt.order_by(automatic_first, Record.occurred_at.desc(), Evaluation.standard_code,
                         Evaluation.id)


@blp.route("/<uuid:record_id>/reviews")
class RecordReviews(MethodView):
    @require("read")
    @blp.arguments(ReviewQuery(), location="query")
    @blp.response(200, ReviewSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args, record_id):
        """The record's reviews: its own evaluations (``automatic``) and the evaluations of
        the inspections that judge it (``manual``), one page."""
        session = request_session()
        get_record(record_id, enabled_kinds())
        role = g.membership.role if "membership" in g else None
        stmt = reviews_statement(record_id, role)
        if args.get("source") == "automatic":
            stmt = stmt.where(Evaluation.record_id == record_id)
        elif args.get("source") == "manual":
            stmt = stmt.where(Evaluation.record_id != record_id)
        headers: dict = {}
        evaluations = paginate(session, stmt, args, headers)
        reviewers = {r.id: r for r in session.scalars(select(Record).where(
            Record.id.in_({e.record_id for e in evaluations})))} if evaluations else {}
        out = []
        for evaluation in evaluations:
            reviewer = reviewers[evaluation.record_id]
            automatic = evaluation.record_id == record_id
            data = reviewer.data or {}
            out.append({
                "source": "automatic" if automatic else "manual",
                "review_record_id": reviewer.id,
                "inspector_id": None if automatic else data.get("inspector_id"),
                "mode": None if automatic else data.get("mode"),
                "reviewed_at": evaluation.evaluated_at if automatic else reviewer.occurred_at,
                "evaluation": evaluation,
            })
        return out, 200, headers
