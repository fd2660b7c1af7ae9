"""Corrective actions: opened from failed items and breaches, or by hand.

States and rules are in :mod:`core.evaluation.actions`; the user guide is ``docs/quality.md``.
"""

from __future__ import annotations

import uuid
from datetime import timezone

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from servq.core.api.blueprint import Blueprint
from servq.core.api.context import actor_id, require
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.api.history import HistoryEntrySchema, audit_history
from servq.core.audit import apply_changes, audit
from servq.core.db.session import request_session
from servq.core.db import utcnow
from servq.core.evaluation.visibility import hidden_from
from servq.core.models import Action, Membership, Record
from servq.core.evaluation.actions import (ENTITY, SOURCES, STATUSES, TRANSITIONS, TransitionRefused,
                                  actions_query, allowed_actions, is_overdue, open_action, transition)
from servq.core.records.pipeline import no_nul, utc_instant

URL = "/actions"
blp = Blueprint("actions", __name__, description="Corrective actions: opened from failed items and breaches, or by hand.")

#: Roles that may verify that an action's fix works (the others may do the rest).
VERIFIERS = frozenset({"owner", "admin", "manager", "inspector"})


class ActionSchema(Schema):
    id = fields.UUID(dump_only=True)
    title = fields.String(required=True, validate=[validate.Length(min=1, max=300), no_nul])
    description = fields.String(load_default=None, allow_none=True,
                                validate=[validate.Length(max=10_000), no_nul])
    source = fields.String(dump_only=True, metadata={"description": "critical, item, deadline or manual"})
    source_key = fields.String(dump_only=True, allow_none=True)
    record_id = fields.UUID(load_default=None, allow_none=True,
                            metadata={"description": "The record the action is about (optional)"})
    standard_code = fields.String(dump_only=True, allow_none=True)
    standard_version = fields.Integer(dump_only=True, allow_none=True)
    item_code = fields.String(dump_only=True, allow_none=True)
    owner_id = fields.UUID(load_default=None, allow_none=True,
                           metadata={"description": "A member of the tenant who owns the fix"})
    status = fields.String(dump_only=True, metadata={"description": ", ".join(STATUSES)})
    due_at = fields.AwareDateTime(load_default=None, allow_none=True, validate=utc_instant)
    overdue = fields.Method("_overdue", dump_only=True,
                            metadata={"description": "Past due and neither done nor verified"})
    allowed_actions = fields.Method("_allowed", dump_only=True,
                                    metadata={"description": "The transitions it may take now"})
    created_by = fields.UUID(dump_only=True, allow_none=True)
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)
    done_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    verified_at = fields.AwareDateTime(dump_only=True, allow_none=True)

    def _overdue(self, action) -> bool:
        return is_overdue(action)

    def _allowed(self, action) -> list[str]:
        return allowed_actions(action.status)


class ActionChangeSchema(Schema):
    """What PATCH may change."""

    title = fields.String(validate=[validate.Length(min=1, max=300), no_nul])
    description = fields.String(allow_none=True, validate=[validate.Length(max=10_000), no_nul])
    owner_id = fields.UUID(allow_none=True)
    due_at = fields.AwareDateTime(allow_none=True, validate=utc_instant)


class ActionQuery(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))
    overdue = fields.Boolean(metadata={"description": "true: past due and not done/verified"})
    owner_id = fields.UUID()
    record_id = fields.UUID()
    source = fields.String(validate=validate.OneOf(SOURCES))
    due_before = fields.AwareDateTime(validate=utc_instant)


class TransitionSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(tuple(TRANSITIONS)))
    note = fields.String(load_default=None, allow_none=True,
                         validate=[validate.Length(max=2000), no_nul])


def _in_utc(body: dict) -> dict:
    """``due_at`` as stored (UTC), so the answer and the audit trail show what was stored."""
    if body.get("due_at") is not None:
        body["due_at"] = body["due_at"].astimezone(timezone.utc)
    return body


def get_action(action_id: uuid.UUID) -> Action:
    """The current tenant's action, or 404."""
    action = request_session().scalar(select(Action).where(Action.id == action_id))
    if action is None:
        abort(404, message="Action not found.")
    return action


def _check_references(session, body: dict) -> None:
    """422 unless the owner is a member and the record one the caller can see."""
    errors = {}
    if body.get("owner_id") is not None and session.scalar(
            select(Membership.id).where(Membership.user_id == body["owner_id"])) is None:
        errors["owner_id"] = ["This user is not a member of this tenant."]
    if body.get("record_id") is not None:
        stmt = select(Record.id).where(Record.id == body["record_id"], Record.deleted_at.is_(None))
        hidden = hidden_from(g.membership.role)
        if hidden is not None:
            stmt = stmt.where(hidden)
        if session.scalar(stmt) is None:
            errors["record_id"] = ["No such record in this tenant."]
    if errors:
        abort(422, message="Unknown reference.", errors={"json": errors})


@blp.route("")
class Actions(MethodView):
    @require("read")
    @blp.arguments(ActionQuery(), location="query")
    @blp.response(200, ActionSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """List actions, soonest due first (those without a due time last)."""
        stmt = actions_query(args, utcnow()).order_by(
            Action.due_at.asc().nulls_last(), Action.created_at, Action.id)
        headers = {}
        return paginate(request_session(), stmt, args, headers), 200, headers

    @require("write")
    @blp.arguments(ActionSchema())
    @blp.created(ActionSchema)
    def post(self, body):
        """Open an action by hand."""
        session = request_session()
        _check_references(session, _in_utc(body))
        record = session.get(Record, (g.tenant.id, body["record_id"])) if body["record_id"] else None
        action = open_action(session, title=body["title"], description=body["description"],
                             record=record, due_at=body["due_at"], owner_id=body["owner_id"],
                             actor_id=actor_id())
        session.commit()
        return action


@blp.route("/<uuid:action_id>")
class ActionById(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, ActionSchema)
    def get(self, action_id):
        """Get an action."""
        return get_action(action_id)

    @require("write")
    @blp.etag
    @blp.arguments(ActionChangeSchema())
    @blp.response(200, ActionSchema)
    def patch(self, body, action_id):
        """Change an action's title, description, owner or due time (needs If-Match)."""
        session = request_session()
        action = get_action(action_id)
        blp.check_etag(action, ActionSchema)
        if "title" in body and body["title"] is None:
            abort(422, message="The title may not be empty.", errors={"json": {"title": ["Field may not be null."]}})
        _check_references(session, _in_utc(body))
        changes = apply_changes(action, body)
        if changes:
            session.flush()
            audit(session, ENTITY, action.id, "changed", actor_id(), changes)
        session.commit()
        return action


@blp.route("/<uuid:action_id>/transitions")
class ActionTransitions(MethodView):
    @require("write")
    @blp.arguments(TransitionSchema())
    @blp.response(200, ActionSchema)
    @blp.alt_response(409, description="Not allowed from the action's state; `errors.allowed` lists what is")
    @blp.alt_response(412, description="If-Match was sent and the action changed since")
    @blp.doc(parameters=[{"in": "header", "name": "If-Match", "required": False,
                          "schema": {"type": "string"},
                          "description": "Optional: the action's ETag; 412 when it is stale"}])
    def post(self, body, action_id):
        """Move an action on: start, complete, verify (owner, admin, manager, inspector), reopen.

        Concurrent steps on one action run one after the other: of two callers starting
        it at once, one starts it and the other gets 409 (or 412 when it sent
        ``If-Match``, which is optional here)."""
        session = request_session()
        action = get_action(action_id)
        blp.check_if_match(action, ActionSchema, what="the action", required=False)
        if body["action"] == "verify" and g.membership.role not in VERIFIERS:
            abort(403, message=f"Your role ({g.membership.role}) may not verify actions: "
                               f"{', '.join(sorted(VERIFIERS))} may.")
        try:
            transition(session, action, body["action"], note=body["note"], actor_id=actor_id())
        except TransitionRefused as refused:
            abort(409, message=str(refused), errors={"allowed": refused.allowed})
        session.commit()
        return action


@blp.route("/<uuid:action_id>/history")
class ActionHistory(MethodView):
    @require("read")
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, HistoryEntrySchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args, action_id):
        """The audit trail of an action, oldest first."""
        session = request_session()
        get_action(action_id)
        headers = {}
        entries = audit_history(session, ENTITY, action_id, args, headers)
        return entries, 200, headers
