"""Workflow transitions of records: ``/records/<id>/transitions``.

``GET`` lists the actions allowed from the record's status (with their titles, the state
each leads to and whether it needs a reason); ``POST {action, note, at, reason}`` (role
``write``, ``If-Match`` with the record's ETag) takes one and answers the record. An
action not allowed from the current status is a 409 ``{message, allowed: [...]}``; so
is a PATCH that tries to change a workflow kind's status.

A guarded action (``requires`` on the record's ``data``) whose guards fail is a 409 too:
the record's state, not the request, stands in the way (422 is for the request's own
input: ``at``, ``reason``, ``note``). Its body adds ``unmet: [{field, requires,
message}]``, one per failing condition, and the message names the fields. ``GET`` shows
each action's ``requires`` and whether it is ``satisfied`` now (with its ``unmet``).
"""

from __future__ import annotations

from flask import jsonify, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate

from servq.core.api.blueprint import Blueprint, lock_for_write
from servq.core.api.context import actor_id, enabled_kinds, require
from servq.core.api.records import RecordSchema, audit_personal_reads, get_record
from servq.core.db.session import request_session
from servq.core.records.pipeline import RecordInvalid, utc_instant
from servq.core.records.workflows import (NOTE_MAX, REASON_MAX, TransitionBlocked, TransitionInvalid,
                                         TransitionRefused, allowed_transitions, transition)

URL = "/records"
blp = Blueprint("workflows", __name__, description="Workflow transitions of records.")


class TransitionInputSchema(Schema):
    action = fields.String(required=True, validate=validate.Length(min=1, max=40),
                           metadata={"description": "One of the allowed actions (GET .../transitions)"})
    note = fields.String(allow_none=True, validate=validate.Length(max=NOTE_MAX))
    at = fields.AwareDateTime(allow_none=True, validate=utc_instant, metadata={
        "description": "When it happened (default: now); not in the future, not before the "
                       "record's latest stamp"})
    reason = fields.String(allow_none=True, validate=validate.Length(max=REASON_MAX), metadata={
        "description": "Why the record waits: required when entering a waiting state"})


class TitleSchema(Schema):
    en = fields.String()
    zh = fields.String()


class UnmetSchema(Schema):
    field = fields.String(metadata={"description": "The failing field: data.<path>"})
    requires = fields.Raw(metadata={"description": "The condition declared on it"})
    message = fields.String()


class AllowedActionSchema(Schema):
    action = fields.String()
    title = fields.Nested(TitleSchema)
    target = fields.String(metadata={"description": "The status it leads to"})
    stamp = fields.String(allow_none=True, metadata={"description": "The timestamp it records"})
    needs_reason = fields.Boolean(metadata={"description": "It enters a waiting state"})
    requires = fields.Dict(metadata={"description": "Guards on the record's data, all of which must "
                                                    "hold ({path: [values]} or {path: {present, not}})"})
    satisfied = fields.Boolean(metadata={"description": "The guards hold on the record's data now"})
    unmet = fields.List(fields.Nested(UnmetSchema),
                        metadata={"description": "The guards that fail now"})


class TransitionsSchema(Schema):
    status = fields.String()
    waiting = fields.Boolean(metadata={"description": "The status pauses the record's deadlines"})
    final = fields.Boolean()
    actions = fields.List(fields.Nested(AllowedActionSchema))


class ConflictSchema(Schema):
    code = fields.Integer()
    status = fields.String()
    message = fields.String()
    allowed = fields.List(fields.String(), metadata={"description": "The actions allowed now"})
    unmet = fields.List(fields.Nested(UnmetSchema), metadata={
        "description": "A guarded action: the conditions on the record's data that fail"})


@blp.app_errorhandler(TransitionRefused)
def _refused(exc: TransitionRefused):
    """409 ``{message, allowed}`` for a refused action, whichever route raised it."""
    request_session().rollback()
    body = {"code": 409, "status": "Conflict", "message": exc.message, "allowed": exc.allowed}
    if isinstance(exc, TransitionBlocked):
        body["unmet"] = exc.unmet
    response = jsonify(body)
    response.status_code = 409
    return response


@blp.route("/<uuid:record_id>/transitions")
class Transitions(MethodView):
    @require("read")
    @blp.response(200, TransitionsSchema)
    def get(self, record_id):
        """The actions allowed from the record's current status."""
        kinds = enabled_kinds()
        record = get_record(record_id, kinds)
        kind = kinds[record.kind]
        workflow = kind.workflow
        return {
            "status": record.status,
            "waiting": bool(workflow and record.status in workflow.waiting),
            "final": bool(workflow and record.status in workflow.final),
            "actions": allowed_transitions(kind, record.status, record.data),
        }

    @require("write")
    @blp.etag
    @blp.arguments(TransitionInputSchema())
    @blp.response(200, RecordSchema)
    @blp.alt_response(409, schema=ConflictSchema, description="The action is not allowed now, "
                      "or its guards fail on the record's data (unmet)")
    @blp.alt_response(428, description="If-Match with the record's ETag is required")
    @blp.alt_response(412, description="The record changed since its ETag was read")
    def post(self, body, record_id):
        """Take an action on the record (needs If-Match with the record's ETag)."""
        session = request_session()
        kinds = enabled_kinds()
        record = get_record(record_id, kinds)
        if not request.if_match:
            abort(428, message="Send If-Match with the record's ETag (GET /api/v1/records/<id>).")
        lock_for_write(record)
        if blp._generate_etag(RecordSchema().dump(record)) not in request.if_match:
            abort(412, message="The record changed since you read it; GET it again.")
        try:
            transition(session, kinds, record, body["action"], note=body.get("note"),
                       at=body.get("at"), reason=body.get("reason"), actor_id=actor_id())
        except TransitionInvalid as exc:
            session.rollback()
            abort(422, message=exc.message, errors={"json": exc.errors})
        except RecordInvalid as exc:
            # A plugin's record_changed (or the scoring) refused the record as it now is.
            session.rollback()
            abort(422, message=exc.message, errors={"json": exc.errors})
        audit_personal_reads([record], kinds, "transition")
        session.commit()
        return record
