"""Evaluations of records against the standards in force.

``GET /records/<id>/evaluation`` (one standard), ``GET /records/<id>/evaluations`` (all)
and ``POST /records/<id>/evaluate`` (re-score now). Records are found as the record
routes find them: another tenant's record, a deleted one, one of a kind the tenant has
not enabled, or a mystery inspection asked for by an agent, is a 404.
"""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields
from sqlalchemy import select

from servq.core.api.blueprint import Blueprint
from servq.core.api.context import enabled_kinds, require
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.api.records import get_record, invalid_as_422
from servq.core.db.session import request_session
from servq.core.models import Evaluation
from servq.core.records.evaluate import evaluate_record
from servq.core.scoring.standard import CODE

URL = "/records"
blp = Blueprint("evaluations", __name__, description="Evaluations of records against the standards in force.")


class ItemOutcomeSchema(Schema):
    code = fields.String()
    outcome = fields.String(metadata={"description": "pass, fail, na, pending or breached"})
    points = fields.Float()
    max_points = fields.Float()
    share = fields.Float(allow_none=True, metadata={"description": "Part of the maximum (weighted)"})
    evidence = fields.Dict(metadata={"description": "Why: the value read, the phrases found, …"})


class EvaluationSchema(Schema):
    id = fields.UUID()
    record_id = fields.UUID()
    standard_code = fields.String()
    standard_version = fields.Integer(metadata={"description": "The version the record was scored with"})
    evaluated_at = fields.AwareDateTime()
    total = fields.Float()
    max_total = fields.Float()
    percent = fields.Float(allow_none=True, metadata={"description": "None when nothing could be scored"})
    grade = fields.String(allow_none=True)
    passed = fields.Boolean(allow_none=True)
    complete = fields.Boolean(metadata={"description": "False while a deadline is pending"})
    failed_critical = fields.List(fields.String())
    items = fields.List(fields.Nested(ItemOutcomeSchema))
    original_percent = fields.Float(allow_none=True, metadata={
        "description": "The percent its rules gave before items overridden by a decided dispute "
                       "(null when no item is overridden); `percent` is the final one"})
    disputed = fields.Boolean(metadata={"description": "A dispute of this evaluation is open"})


class EvaluationQuery(Schema):
    standard = fields.String(validate=CODE, metadata={
        "description": "The standard's code (default: the first of the record's, by code)"})


class EvaluationsQuery(PageArgs):
    pass


@blp.route("/<uuid:record_id>/evaluation")
class RecordEvaluation(MethodView):
    @require("read")
    @blp.arguments(EvaluationQuery(), location="query")
    @blp.response(200, EvaluationSchema)
    def get(self, args, record_id):
        """The record's evaluation against one standard (404 when it has none)."""
        get_record(record_id, enabled_kinds())
        stmt = select(Evaluation).where(Evaluation.record_id == record_id)
        if "standard" in args:
            stmt = stmt.where(Evaluation.standard_code == args["standard"])
        evaluation = request_session().scalar(stmt.order_by(Evaluation.standard_code).limit(1))
        if evaluation is None:
            abort(404, message="This record has no evaluation" +
                  (f" against {args['standard']!r}." if "standard" in args else "."))
        return evaluation


@blp.route("/<uuid:record_id>/evaluations")
class RecordEvaluations(MethodView):
    @require("read")
    @blp.arguments(EvaluationsQuery(), location="query")
    @blp.response(200, EvaluationSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args, record_id):
        """Every evaluation of the record, one per standard, by standard code."""
        get_record(record_id, enabled_kinds())
        stmt = (select(Evaluation).where(Evaluation.record_id == record_id)
                .order_by(Evaluation.standard_code))
        headers = {}
        return paginate(request_session(), stmt, args, headers), 200, headers


@blp.route("/<uuid:record_id>/evaluate")
class RecordEvaluate(MethodView):
    @require("write")
    @blp.response(200, EvaluationSchema(many=True))
    def post(self, record_id):
        """Score the record again now, against the versions in force; returns its evaluations.

        Failed items open their corrective actions if they have none yet. An empty list
        means no standard applies to the record.
        """
        session = request_session()
        record = get_record(record_id, enabled_kinds())
        with invalid_as_422():
            evaluations = evaluate_record(session, record)
        session.commit()
        return evaluations

