"""The rewards and penalties ledger (奖罚): rules, entries, flags and the monthly summary.

Rules and code: :mod:`core.ledger`; user guide: ``docs/ledger.md``. Managers (the
``manage`` permission) see and move every entry; anyone else sees their own entries
and flags only (the staff member whose ``user_id`` they are).
"""

from __future__ import annotations


from flask import g, request
from werkzeug.http import quote_etag
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select

from servq.core.api.blueprint import Blueprint
from servq.core.api.context import actor_id, require
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.auth.permissions import allowed
from servq.core.db.session import request_session
from servq.core.ledger import (TRANSITIONS, LedgerRefused, load_rules, manual_entry, summary,
                               transition, validate_rules)
from servq.core.ledger.rules import RulesDocument, forget_rules
from servq.core.models import LedgerEntry, LedgerFlag, LedgerRules, Staff
from servq.core.notify.outbox import emit_many
from servq.core.audit import audit
from servq.core.records.pipeline import no_nul

URL = "/ledger"
blp = Blueprint("ledger", __name__, description="Rewards and penalties (奖罚): rules, entries, flags, monthly summary.")

MONTH = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="A month as YYYY-MM.")
STATUSES = ("proposed", "approved", "applied", "voided", "held")


class EntrySchema(Schema):
    id = fields.UUID(dump_only=True)
    staff_id = fields.UUID(required=True)
    site_id = fields.UUID(dump_only=True, allow_none=True)
    kind = fields.String(required=True, validate=validate.OneOf(("reward", "penalty")))
    points = fields.Float(required=True, allow_nan=False, validate=validate.Range(min=0, max=1_000_000))
    amount = fields.Float(load_default=None, allow_none=True, allow_nan=False,
                          validate=validate.Range(min=0, max=1e12),
                          metadata={"description": "Only when the tenant's rules turn money on"})
    currency = fields.String(load_default=None, allow_none=True, validate=validate.Length(equal=3))
    rule = fields.String(dump_only=True)
    source = fields.Method("_source", dump_only=True)
    month = fields.String(load_default=None, validate=MONTH,
                          metadata={"description": "YYYY-MM in the tenant's time zone (default: this month)"})
    status = fields.String(dump_only=True, metadata={"description": ", ".join(STATUSES)})
    held = fields.Method("_held", dump_only=True)
    large = fields.Boolean(dump_only=True)
    note = fields.String(load_default=None, allow_none=True, validate=[validate.Length(max=2000), no_nul])
    record_id = fields.UUID(load_default=None, load_only=True, allow_none=True)
    source_key = fields.String(dump_only=True, allow_none=True)
    created_by = fields.UUID(dump_only=True, allow_none=True)
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)

    def _source(self, entry) -> dict:
        return {"record_id": str(entry.record_id) if entry.record_id else None,
                "standard_code": entry.standard_code, "item_code": entry.item_code,
                "complaint_id": str(entry.complaint_id) if entry.complaint_id else None}

    def _held(self, entry) -> bool:
        return entry.status == "held"


class EntryQuery(PageArgs):
    staff_id = fields.UUID()
    month = fields.String(validate=MONTH)
    status = fields.String(validate=validate.OneOf(STATUSES))
    kind = fields.String(validate=validate.OneOf(("reward", "penalty")))


class LedgerTransitionSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(tuple(TRANSITIONS)))
    note = fields.String(load_default=None, allow_none=True, validate=[validate.Length(max=2000), no_nul])


class FlagSchema(Schema):
    id = fields.UUID()
    staff_id = fields.UUID()
    month = fields.String()
    count = fields.Integer(metadata={"description": "Penalties of the month when raised"})
    items = fields.List(fields.Dict(), metadata={"description": "{item, count} of the month's penalties by item"})
    status = fields.String()
    created_at = fields.AwareDateTime()


class FlagQuery(PageArgs):
    month = fields.String(validate=MONTH)
    staff_id = fields.UUID()


class MonthQuery(Schema):
    month = fields.String(required=True, validate=MONTH)


class LedgerRulesSchema(Schema):
    document = fields.Dict(dump_only=True)
    version = fields.Integer(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)


def _manager() -> bool:
    return allowed(g.membership.role, "manage")


def _mine(stmt, column):
    """Limit ``stmt`` to the caller's own staff rows unless a manager."""
    if _manager():
        return stmt
    return stmt.where(column.in_(select(Staff.id).where(Staff.user_id == actor_id())))


def _entry(entry_id) -> LedgerEntry:
    entry = request_session().scalar(_mine(select(LedgerEntry).where(LedgerEntry.id == entry_id),
                                           LedgerEntry.staff_id))
    if entry is None:
        abort(404, message="Ledger entry not found.")
    return entry


def _refused(refused: LedgerRefused):
    request_session().rollback()
    abort(refused.status, message=str(refused), errors={"json": refused.errors} if refused.errors else None)


@blp.route("/rules")
class Rules(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, LedgerRulesSchema)
    def get(self):
        """The tenant's ledger rules (404 when it has none: nothing is posted automatically)."""
        rules = load_rules(request_session())
        if rules is None:
            abort(404, message="This tenant has no ledger rules.")
        return rules

    @require("manage")
    @blp.response(200, LedgerRulesSchema)
    @blp.alt_response(400, description="A malformed request")
    @blp.alt_response(422, description="The rules were refused; `errors.json` names the fields")
    @blp.alt_response(428, description="Rules exist and If-Match was not sent")
    @blp.alt_response(412, description="The rules changed since they were read")
    @blp.doc(requestBody={"content": {"application/json": {"schema": RulesDocument}}})
    def put(self):
        """Set the rules (the seed's six, each optional); replacing existing rules needs If-Match."""
        session = request_session()
        rules = load_rules(session)
        if rules is not None:
            # flask-smorest's etag would demand If-Match of the first PUT too: checked here.
            blp.check_if_match(rules, LedgerRulesSchema, what="the rules",
                               stale="The rules changed since you read them; GET them again.")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            abort(422, message="Send the rules as a JSON object.")
        try:
            document = validate_rules(session, body)
        except ValidationError as error:
            abort(422, message="The ledger rules were refused.", errors={"json": error.messages})
        if rules is None:
            rules = LedgerRules(document=document, version=1, updated_by=actor_id())
            session.add(rules)
        else:
            rules.document, rules.version, rules.updated_by = document, rules.version + 1, actor_id()
        session.flush()
        audit(session, "ledger_rules", rules.id, "changed", actor_id(), {"version": [None, rules.version]})
        forget_rules(session)
        session.commit()
        return rules, 200, {"ETag": quote_etag(blp._generate_etag(LedgerRulesSchema().dump(rules)))}


@blp.route("/entries")
class Entries(MethodView):
    @require("read")
    @blp.arguments(EntryQuery(), location="query")
    @blp.response(200, EntrySchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """List entries, newest first (a manager: all; anyone else: their own)."""
        stmt = _mine(select(LedgerEntry), LedgerEntry.staff_id)
        for name in ("staff_id", "month", "status", "kind"):
            if args.get(name) is not None:
                stmt = stmt.where(getattr(LedgerEntry, name) == args[name])
        stmt = stmt.order_by(LedgerEntry.created_at.desc(), LedgerEntry.id)
        headers = {}
        return paginate(request_session(), stmt, args, headers), 200, headers

    @require("manage")
    @blp.arguments(EntrySchema())
    @blp.created(EntrySchema)
    def post(self, body):
        """A manager's entry (rule ``manual``); an amount only when money is on (422 otherwise)."""
        session = request_session()
        try:
            entry = manual_entry(session, body, actor_id=actor_id())
        except LedgerRefused as refused:
            _refused(refused)
        session.commit()
        return entry


@blp.route("/entries/<uuid:entry_id>")
class EntryById(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, EntrySchema)
    def get(self, entry_id):
        """One entry."""
        return _entry(entry_id)


@blp.route("/entries/<uuid:entry_id>/transitions")
class EntryTransitions(MethodView):
    @require("read")
    @blp.etag
    @blp.arguments(LedgerTransitionSchema())
    @blp.response(200, EntrySchema)
    def post(self, body, entry_id):
        """Approve, apply, void, or mark a suggestion's reward large (manager; If-Match)."""
        session = request_session()
        entry = _entry(entry_id)
        if not _manager():
            abort(403, message="Only a manager moves ledger entries on.")
        blp.check_if_match(entry, EntrySchema, what="the entry")
        try:
            transition(session, entry, body["action"], note=body["note"], actor_id=actor_id())
        except LedgerRefused as refused:
            _refused(refused)
        session.commit()
        return entry


@blp.route("/flags")
class Flags(MethodView):
    @require("read")
    @blp.arguments(FlagQuery(), location="query")
    @blp.response(200, FlagSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """Repeat-fault flags, newest first (a manager: all; anyone else: their own)."""
        stmt = _mine(select(LedgerFlag), LedgerFlag.staff_id)
        for name in ("month", "staff_id"):
            if args.get(name) is not None:
                stmt = stmt.where(getattr(LedgerFlag, name) == args[name])
        stmt = stmt.order_by(LedgerFlag.created_at.desc(), LedgerFlag.id)
        headers = {}
        return paginate(request_session(), stmt, args, headers), 200, headers


@blp.route("/summary")
class Summary(MethodView):
    @require("manage")
    @blp.arguments(MonthQuery(), location="query")
    @blp.response(200)
    def get(self, args):
        """The month's totals by person and by site (voided entries left out)."""
        return summary(request_session(), args["month"])


@blp.route("/summary/announce")
class Announce(MethodView):
    @require("manage")
    @blp.arguments(MonthQuery(), location="query")
    @blp.response(202)
    def post(self, args):
        """Announce the month's summary (通报): ``ledger.monthly`` to managers and webhooks,
        once per month (a repeat sends nothing)."""
        session = request_session()
        payload = summary(session, args["month"])
        payload = {**payload, "by_staff": [{k: str(v) if k == "staff_id" else v for k, v in line.items()}
                                           for line in payload["by_staff"]],
                   "by_site": [{k: str(v) if k == "site_id" and v else v for k, v in line.items()}
                               for line in payload["by_site"]]}
        emit_many(session, [("ledger.monthly", payload, ("manager",), f"ledger.monthly:{args['month']}")])
        session.commit()
        return {"month": args["month"], "announced": True}
