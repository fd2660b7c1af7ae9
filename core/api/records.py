"""Records: observations, inspections, complaints, work orders… one generic resource.

Validation, audit and plugin hooks live in :mod:`core.records.pipeline`, shared with the CLI;
this module adds HTTP: filters, pagination, ETags and the tenant's enabled kinds.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager

from flask.views import MethodView
from flask_smorest import abort
from flask import g
from marshmallow import ValidationError, fields, post_dump, validate, validates_schema
from sqlalchemy import select

from servq.core.api.blueprint import Blueprint
from servq.core.api.context import actor_id, enabled_kinds, require, sees_personal_data
from servq.core.api.history import HistoryEntrySchema, audit_history
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.deadlines.views import breached_clause, due_before_clause
from servq.core.db.session import request_session
from servq.core.db.fast import FastDumpSchema
from servq.core.evaluation.visibility import hidden_from
from servq.core.models import Record
from servq.core.personal import audit_reads, keep_paths, mask_paths
from servq.core.plugins.app import get_plugins
from servq.core.records.pipeline import (ENTITY, RecordChangeSchema, RecordInputSchema, RecordInvalid,
                          create_record, soft_delete_record, update_record, utc_instant)

URL = "/records"
blp = Blueprint("records", __name__,
                description="Quality records of every kind, their changes and history.")


class RecordSchema(FastDumpSchema):
    id = fields.UUID(dump_only=True)
    kind = fields.String(dump_only=True)
    site_id = fields.UUID(dump_only=True, allow_none=True)
    staff_id = fields.UUID(dump_only=True, allow_none=True)
    occurred_at = fields.AwareDateTime(dump_only=True)
    status = fields.String(dump_only=True)
    data = fields.Dict(dump_only=True)
    created_by = fields.UUID(dump_only=True, allow_none=True)
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)
    timestamps = fields.Dict(dump_only=True, metadata={
        "description": "Instants its workflow stamped (received_at, acknowledged_at, …)"})
    escalation_level = fields.Integer(dump_only=True, metadata={
        "description": "Raised by one for each breached deadline (and by hand)"})
    reference = fields.String(dump_only=True, allow_none=True, metadata={
        "description": "The value of its kind's reference field in data (a waybill number), which "
                       "no other live record of the kind has; null for kinds without one"})

    @post_dump(pass_original=True)
    def _mask_personal(self, out, original, **kwargs):
        """Mask the kind's personal paths for callers without ``personal_data``."""
        if "data" not in out or sees_personal_data():
            return out
        name = original.get("kind") if isinstance(original, dict) else getattr(original, "kind", None)
        kind = get_plugins().kinds.get(name)
        if kind is not None and kind.personal:
            out["data"] = mask_paths(out["data"], kind.personal)
        return out


def audit_personal_reads(records, kinds: dict, via: str) -> int:
    """Audit the caller's read of the personal data in ``records`` (when the role sees it
    in clear; masked reads reveal nothing); returns the number of events added. The
    caller commits."""
    if not sees_personal_data():
        return 0
    return audit_reads(request_session(), records, kinds, actor_id(), via)


class RecordQuery(PageArgs):
    kind = fields.String(validate=validate.Length(min=1, max=100))
    status = fields.String(validate=validate.Length(min=1, max=40))
    site_id = fields.UUID()
    staff_id = fields.UUID()
    reference = fields.String(validate=validate.Length(min=1, max=200), metadata={
        "description": "The record whose kind's reference field (a waybill number) has this value"})
    since = fields.AwareDateTime(validate=utc_instant, metadata={"description": "occurred_at at or after"})
    until = fields.AwareDateTime(validate=utc_instant, metadata={"description": "occurred_at before"})
    breached = fields.Boolean(metadata={"description": "true: records with a breached deadline "
                                                       "clock; false: records without one"})
    due_before = fields.AwareDateTime(validate=utc_instant, metadata={
        "description": "Records with a deadline clock still counting that is due before this instant"})

    @validates_schema
    def _ordered(self, data, **kwargs):
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise ValidationError("'since' must not be after 'until'.", "since")


def _for_role(stmt):
    """Keep out the records the caller's role may not see (mystery inspections for agents)."""
    hidden = hidden_from(g.membership.role) if "membership" in g else None
    return stmt if hidden is None else stmt.where(hidden)


def visible_records(kinds: dict):
    """SELECT of the tenant's live records whose kind it may use."""
    return _for_role(select(Record).where(Record.deleted_at.is_(None), Record.kind.in_(sorted(kinds))))


def get_record(record_id: uuid.UUID, kinds: dict, include_deleted: bool = False) -> Record:
    """The current tenant's record of an enabled kind, or 404."""
    stmt = _for_role(select(Record).where(Record.id == record_id, Record.kind.in_(sorted(kinds))))
    if not include_deleted:
        stmt = stmt.where(Record.deleted_at.is_(None))
    record = request_session().scalar(stmt)
    if record is None:
        abort(404, message="Record not found.")
    return record


@contextmanager
def invalid_as_422():
    """Turn :class:`RecordInvalid` from the service into a 422 that changed nothing."""
    try:
        yield
    except RecordInvalid as exc:
        request_session().rollback()
        abort(422, message=exc.message, errors={"json": exc.errors})


@blp.route("")
class Records(MethodView):
    @require("read")
    @blp.arguments(RecordQuery(), location="query")
    @blp.response(200, RecordSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """List records, newest first."""
        stmt = visible_records(enabled_kinds()).order_by(Record.occurred_at.desc(), Record.id.desc())
        for name in ("kind", "status", "site_id", "staff_id", "reference"):
            if name in args:
                stmt = stmt.where(getattr(Record, name) == args[name])
        if "since" in args:
            stmt = stmt.where(Record.occurred_at >= args["since"])
        if "until" in args:
            stmt = stmt.where(Record.occurred_at < args["until"])
        if "breached" in args:
            stmt = stmt.where(breached_clause(args["breached"]))
        if "due_before" in args:
            stmt = stmt.where(due_before_clause(args["due_before"]))
        headers = {}
        session = request_session()
        records = paginate(session, stmt, args, headers)
        if audit_personal_reads(records, enabled_kinds(), "list"):
            session.commit()
        return records, 200, headers

    @require("write")
    @blp.arguments(RecordInputSchema())
    @blp.created(RecordSchema)
    def post(self, body):
        """Create a record; ``data`` is validated by the kind's schema."""
        session = request_session()
        with invalid_as_422():
            record = create_record(session, enabled_kinds(), body, actor_id())
        session.commit()
        return record


@blp.route("/<uuid:record_id>")
class RecordById(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, RecordSchema)
    def get(self, record_id):
        """Get a record."""
        kinds = enabled_kinds()
        record = get_record(record_id, kinds)
        if audit_personal_reads([record], kinds, "get"):
            request_session().commit()
        return record

    @require("write")
    @blp.etag
    @blp.arguments(RecordChangeSchema(partial=True))
    @blp.response(200, RecordSchema)
    def patch(self, body, record_id):
        """Change a record (needs If-Match); ``data`` replaces the whole of ``data``.

        A caller whose role sees personal data masked cannot change it: the kind's
        personal fields keep their stored values whatever the body says."""
        session = request_session()
        kinds = enabled_kinds()
        record = get_record(record_id, kinds)
        blp.check_etag(record, RecordSchema)
        personal = kinds[record.kind].personal if record.kind in kinds else ()
        if personal and isinstance(body.get("data"), dict) and not sees_personal_data():
            # The caller saw the personal data masked: it keeps its stored values.
            body["data"] = keep_paths(body["data"], record.data, personal)
        # A workflow kind's status changes by transition only: core.records.workflows raises
        # StatusNeedsTransition, answered 409 by core.api.workflows.
        with invalid_as_422():
            update_record(session, kinds, record, body, actor_id())
        audit_personal_reads([record], kinds, "patch")
        session.commit()
        return record

    @require("write")
    @blp.etag
    @blp.response(204)
    def delete(self, record_id):
        """Delete a record (needs If-Match); it is kept, marked deleted, in the history."""
        session = request_session()
        record = get_record(record_id, enabled_kinds())
        blp.check_etag(record, RecordSchema)
        soft_delete_record(session, record, actor_id())
        session.commit()


@blp.route("/<uuid:record_id>/history")
class RecordHistory(MethodView):
    @require("read")
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, HistoryEntrySchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args, record_id):
        """The audit trail of a record, oldest first (a deleted record's too)."""
        session = request_session()
        kinds = enabled_kinds()
        record = get_record(record_id, kinds, include_deleted=True)
        headers = {}
        entries = audit_history(session, ENTITY, record_id, args, headers)
        personal = kinds[record.kind].personal
        if personal and any(isinstance(e["changes"].get("data"), list) for e in entries):
            if sees_personal_data():
                audit_reads(session, [record], kinds, actor_id(), "history")
                session.commit()
            else:  # the data in the trail is masked like the record's
                for entry in entries:
                    if isinstance(entry["changes"].get("data"), list):
                        entry["changes"] = {**entry["changes"], "data": [
                            mask_paths(v, personal) for v in entry["changes"]["data"]]}
        return entries, 200, headers
