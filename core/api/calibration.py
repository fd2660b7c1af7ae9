"""Calibration sessions: ``/api/v1/calibration-sessions``.

A manager creates a session (records, a pinned standard version, reviewers, an optional
expert); each reviewer ``PUT``s a review of each record; the results (agreement per item,
deviations, IRR) show once every review is in or the facilitator stops them (at once for a
session that is not blind); the facilitator closes it with decisions, and may preview a
changed standard against the last 30 days. Agents never see calibration (404). See
docs/calibration.md; the rules are :mod:`servq.core.calibration`'s.
"""

from __future__ import annotations

from flask import g, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from sqlalchemy import String, cast, or_, select

from servq.core.api.blueprint import Blueprint, lock_for_write
from servq.core.api.context import actor_id, require
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.auth.permissions import allowed
from servq.core.calibration import (CalibrationRefused, close_session, create_session, preview, results,
                                    stop_reviews, submit_review)
from servq.core.db import utcnow
from servq.core.db.session import request_session
from servq.core.models import CalibrationReview, CalibrationSession
from servq.core.records.pipeline import utc_instant
from servq.core.scoring import StandardError
from servq.core.scoring.standard import CODE

URL = "/calibration-sessions"
blp = Blueprint("calibration", __name__, description="Calibration sessions: reviewers score the same records blind.")

#: Roles that never see calibration (the front-line staff whose work is reviewed).
HIDDEN_FROM = frozenset({"agent"})


class SessionInputSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    standard_code = fields.String(required=True, validate=CODE)
    standard_version = fields.Integer(allow_none=True, validate=validate.Range(min=1),
                                      metadata={"description": "Default: the version in force (pinned)"})
    subject_record_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=10),
                                     metadata={"description": "The records reviewed (3-5 is the practice)"})
    participant_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=2, max=20),
                                  metadata={"description": "Members who review"})
    expert_id = fields.UUID(allow_none=True, metadata={
        "description": "A member whose review is the reference (else the consensus)"})
    blind = fields.Boolean(load_default=True, metadata={
        "description": "Results and others' reviews hidden until every review is in"})
    due_at = fields.AwareDateTime(allow_none=True, validate=utc_instant)
    notes = fields.String(allow_none=True, validate=validate.Length(max=10_000))


class SessionSchema(Schema):
    id = fields.UUID(required=True)
    title = fields.String(required=True)
    standard_code = fields.String(required=True)
    standard_version = fields.Integer(required=True)
    subject_record_ids = fields.List(fields.String(), required=True)
    participant_ids = fields.List(fields.String(), required=True)
    facilitator_id = fields.UUID(allow_none=True)
    expert_id = fields.UUID(allow_none=True)
    blind = fields.Boolean(required=True)
    due_at = fields.AwareDateTime(allow_none=True)
    status = fields.String(required=True, metadata={"description": "open, review or closed"})
    notes = fields.String(allow_none=True)
    decisions = fields.List(fields.Dict(), required=True)
    created_at = fields.AwareDateTime(required=True)
    closed_at = fields.AwareDateTime(allow_none=True)


class CalibrationReviewInputSchema(Schema):
    answers = fields.Dict(keys=fields.String(validate=CODE), values=fields.Dict(), required=True,
                          validate=validate.Length(max=500),
                          metadata={"description": "{item code: answer}, as an inspection's"})


class CalibrationReviewSchema(Schema):
    participant_id = fields.UUID(required=True)
    subject_record_id = fields.UUID(required=True)
    answers = fields.Dict(required=True)
    percent = fields.Float(allow_none=True)
    passed = fields.Boolean(allow_none=True)
    items = fields.List(fields.Dict(), required=True)
    submitted_at = fields.AwareDateTime(required=True)


class CloseSchema(Schema):
    decisions = fields.List(fields.Dict(), load_default=list, validate=validate.Length(max=100),
                            metadata={"description": "What the reviewers agreed (free form: item, note, …)"})
    notes = fields.String(allow_none=True, validate=validate.Length(max=10_000))


class CalibrationPreviewSchema(Schema):
    document = fields.Dict(required=True, metadata={"description": "The whole proposed standard document"})


def _role() -> str | None:
    return g.membership.role if "membership" in g else None


def _visible(stmt):
    role = _role()
    if role in HIDDEN_FROM:
        return stmt.where(False)
    if allowed(role, "manage") or role == "viewer":
        return stmt
    me = str(actor_id())
    # A participant: their id (a uuid's text) is in the session's JSON list of them.
    return stmt.where(or_(CalibrationSession.facilitator_id == actor_id(),
                          cast(CalibrationSession.participant_ids, String).contains(f'"{me}"')))


def _get(session_id) -> CalibrationSession:
    row = request_session().scalar(_visible(select(CalibrationSession).where(CalibrationSession.id == session_id)))
    if row is None:
        abort(404, message="Calibration session not found.")
    return row


def _refused(refused: CalibrationRefused):
    abort(refused.status, message=refused.message,
          **({"errors": {"json": refused.errors}} if refused.errors else {}))


def _facilitates(row) -> bool:
    return allowed(_role(), "manage") or row.facilitator_id == actor_id()


def _if_match(row):
    blp.check_if_match(row, SessionSchema, what="the session")


@blp.route("")
class Sessions(MethodView):
    @require("read")
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, SessionSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """The calibration sessions the caller runs or reviews in (a manager: all), newest first."""
        headers: dict = {}
        stmt = _visible(select(CalibrationSession)).order_by(CalibrationSession.created_at.desc(),
                                                              CalibrationSession.id)
        return paginate(request_session(), stmt, args, headers), 200, headers

    @require("manage")
    @blp.arguments(SessionInputSchema())
    @blp.created(SessionSchema)
    def post(self, body):
        """Start a calibration session (the caller facilitates it)."""
        session = request_session()
        try:
            row = create_session(session, body, actor_id=actor_id(), now=utcnow())
        except CalibrationRefused as refused:
            session.rollback()
            _refused(refused)
        session.commit()
        return row


@blp.route("/<uuid:session_id>")
class SessionById(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, SessionSchema)
    def get(self, session_id):
        """One calibration session."""
        return _get(session_id)


@blp.route("/<uuid:session_id>/reviews")
class SessionReviews(MethodView):
    @require("read")
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, CalibrationReviewSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args, session_id):
        """The session's reviews: while a blind session is open, only the caller's own."""
        row = _get(session_id)
        stmt = select(CalibrationReview).where(CalibrationReview.session_id == row.id)
        if row.blind and row.status == "open":
            stmt = stmt.where(CalibrationReview.participant_id == actor_id())
        headers: dict = {}
        stmt = stmt.order_by(CalibrationReview.subject_record_id, CalibrationReview.participant_id)
        return paginate(request_session(), stmt, args, headers), 200, headers


@blp.route("/<uuid:session_id>/reviews/<uuid:record_id>")
class SessionReview(MethodView):
    @require("write")
    @blp.arguments(CalibrationReviewInputSchema())
    @blp.response(200, CalibrationReviewSchema)
    def put(self, body, session_id, record_id):
        """Submit the caller's review of one subject, or change it while the session is open
        (a change needs If-Match with the review's ETag: 428 without, 412 when stale)."""
        session = request_session()
        row = _get(session_id)
        lock_for_write(row)
        existing = session.scalar(select(CalibrationReview).where(
            CalibrationReview.session_id == row.id, CalibrationReview.participant_id == actor_id(),
            CalibrationReview.subject_record_id == record_id))
        if existing is not None and row.status == "open":  # (a closed session refuses: 409 below)
            if not request.if_match:
                abort(428, message="You reviewed this record already: send If-Match with your review's "
                                   "ETag to change it.")
            if blp._generate_etag(CalibrationReviewSchema().dump(existing)) not in request.if_match:
                abort(412, message="Your review changed since you read it; GET it again.")
        try:
            review = submit_review(session, row, record_id, body["answers"], actor_id=actor_id(), now=utcnow())
        except CalibrationRefused as refused:
            session.rollback()
            _refused(refused)
        session.commit()
        return review, 200, {"ETag": f'"{blp._generate_etag(CalibrationReviewSchema().dump(review))}"'}


@blp.route("/<uuid:session_id>/results")
class SessionResults(MethodView):
    @require("read")
    @blp.response(200, description="Agreement per item, deviations per reviewer, IRR, per subject")
    def get(self, session_id):
        """The session's figures; 409 while a blind session still waits for reviews."""
        row = _get(session_id)
        if row.blind and row.status == "open":
            abort(409, message="The session is blind: its results show once every review is in "
                               "or the facilitator stops the reviews.")
        reviews = request_session().scalars(select(CalibrationReview).where(
            CalibrationReview.session_id == row.id)).all()
        return results(row, reviews)


@blp.route("/<uuid:session_id>/stop")
class SessionStop(MethodView):
    @require("write")
    @blp.response(200, SessionSchema)
    def post(self, session_id):
        """Stop the reviews (the facilitator or a manager); the results show. Needs If-Match."""
        row = _get(session_id)
        if not _facilitates(row):
            abort(403, message="Only the facilitator or a manager may stop the reviews.")
        _if_match(row)
        try:
            stop_reviews(request_session(), row, actor_id=actor_id(), now=utcnow())
        except CalibrationRefused as refused:
            _refused(refused)
        request_session().commit()
        return row


@blp.route("/<uuid:session_id>/close")
class SessionClose(MethodView):
    @require("write")
    @blp.arguments(CloseSchema())
    @blp.response(200, SessionSchema)
    def post(self, body, session_id):
        """Close the session with its decisions (the facilitator or a manager). Needs If-Match."""
        row = _get(session_id)
        if not _facilitates(row):
            abort(403, message="Only the facilitator or a manager may close the session.")
        _if_match(row)
        try:
            close_session(request_session(), row, body, actor_id=actor_id(), now=utcnow())
        except CalibrationRefused as refused:
            _refused(refused)
        request_session().commit()
        return row


@blp.route("/<uuid:session_id>/preview")
class SessionPreview(MethodView):
    @require("manage")
    @blp.arguments(CalibrationPreviewSchema())
    @blp.response(200, description="The last 30 days re-scored with the proposed document: "
                                   "mean percent and pass rate [now, proposed], the records that flip")
    def post(self, body, session_id):
        """How a changed version of the session's standard would re-score the last 30 days
        (nothing is written; adopt it with PUT /standards/<code>)."""
        row = _get(session_id)
        document = body["document"]
        if document.get("code", row.standard_code) != row.standard_code:
            abort(422, message="The document must be a version of the session's standard.",
                  errors={"json": {"document": {"code": [f"Must be {row.standard_code!r}."]}}})
        try:
            return preview(request_session(), row.standard_code, {
                **document, "code": row.standard_code,
                "version": document.get("version", row.standard_version + 1)}, utcnow())
        except StandardError as error:
            abort(422, message="The proposed document is not a valid standard.",
                  errors={"json": {"document": getattr(error, "messages", str(error))}})
