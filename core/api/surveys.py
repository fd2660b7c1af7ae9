"""Survey instruments, surveys, invitations and results.

Instruments: the built-in SERVQUAL (1988 and 1991 wordings), CSAT and NPS, and the
tenant's own. A survey puts an instrument to use in a form (``single``, ``two_column``:
expectation and perception, ``three_column``: adequate, desired and perceived level),
with a default language, a link lifetime, optional importance points and triggers.
Invitations are single-use links for one customer (personal data: masked for roles
without ``personal_data``). Results are aggregated in SQL (:mod:`core.surveys.results`).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import delete, select

from servq.core.api.blueprint import Blueprint, lock_for_write
from servq.core.api.context import actor_id, enabled_kinds, require
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.audit import apply_changes, audit, jsonable
from servq.core.auth.permissions import allowed
from servq.core.db.session import request_session
from servq.core.db import utcnow
from servq.core.models import Record, Survey, SurveyInstrument, SurveyInvitation, SurveyTrigger
from servq.core.records.pipeline import utc_instant
from servq.core.surveys.instruments import (CODE_RE, FORMS, LANGUAGES, InstrumentSchema, TextSchema, allowed_forms,
                                      builtin, builtin_instruments, form_refusal, texts_required)
from servq.core.surveys.invitations import (InvitationConflict, audit_customer_reads, create_invitation,
                                      customer_view, forget_triggers, link_url, status_of)
from servq.core.surveys.results import Filters, survey_results
from servq.core.surveys.store import create_survey, default_form, find_instrument

URL = "/surveys"
blp = Blueprint("surveys", __name__, description="Survey instruments, invitations and results.")

IMPORTANCE = ("none", "optional", "required")
STATUSES = ("pending", "answered", "expired", "revoked")
MAX_LINK_DAYS = 366


# -- schemas ----------------------------------------------------------------------------


class InstrumentOutSchema(Schema):
    id = fields.UUID(allow_none=True, metadata={"description": "None for a built-in instrument"})
    code = fields.String()
    version = fields.Integer()
    builtin = fields.Boolean()
    title = fields.Dict()
    description = fields.Dict(allow_none=True)
    scale = fields.Dict()
    dimensions = fields.List(fields.Dict())
    items = fields.List(fields.Dict())
    forms = fields.List(fields.String(), metadata={"description": "The forms a survey may use"})
    created_at = fields.AwareDateTime(allow_none=True)
    updated_at = fields.AwareDateTime(allow_none=True)


class InstrumentPatchSchema(Schema):
    """A change to a tenant's instrument: the fields given replace the stored ones."""

    title = fields.Raw()
    description = fields.Raw(allow_none=True)
    scale = fields.Raw()
    dimensions = fields.Raw()
    items = fields.Raw()


class TriggerSchema(Schema):
    kind = fields.String(required=True, validate=validate.Length(min=1, max=100),
                         metadata={"description": "A record kind this tenant may use"})
    status = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=40),
                           metadata={"description": "Invite when a record enters this status; "
                                                    "null: when a record of the kind is created"})


class SurveyInSchema(Schema):
    title = fields.Nested(TextSchema, required=True, validate=texts_required,
                          metadata={"description": "Shown to respondents: {en, zh}, one at least"})
    instrument = fields.String(required=True, validate=validate.Length(min=1, max=63),
                               metadata={"description": "Code of a built-in or of the tenant's instrument"})
    form = fields.String(validate=validate.OneOf(sorted(FORMS)),
                         metadata={"description": "single, two_column (expectation, perception) or "
                                                  "three_column (adequate, desired, perception; not for an instrument with "
                                                  "reverse-scored items, such as the 1988 servqual); default: "
                                                  "two_column when the instrument has dimensions, else single"})
    importance = fields.String(load_default="none", validate=validate.OneOf(IMPORTANCE),
                               metadata={"description": "Ask respondents to share 100 points among the "
                                                        "dimensions: none, optional or required"})
    language = fields.String(load_default="en", validate=validate.OneOf(LANGUAGES))
    link_lifetime_days = fields.Integer(load_default=30, validate=validate.Range(1, MAX_LINK_DAYS))
    triggers = fields.List(fields.Nested(TriggerSchema), load_default=list, validate=validate.Length(max=20))
    active = fields.Boolean(load_default=True)


class SurveyPatchSchema(Schema):
    """What may change once a survey exists (never its instrument or form)."""

    title = fields.Nested(TextSchema, validate=texts_required)
    importance = fields.String(validate=validate.OneOf(IMPORTANCE))
    language = fields.String(validate=validate.OneOf(LANGUAGES))
    link_lifetime_days = fields.Integer(validate=validate.Range(1, MAX_LINK_DAYS))
    triggers = fields.List(fields.Nested(TriggerSchema), validate=validate.Length(max=20))
    active = fields.Boolean()


class SurveyOutSchema(Schema):
    id = fields.UUID()
    title = fields.Dict()
    instrument_code = fields.String()
    instrument_version = fields.Integer()
    instrument = fields.Dict()
    form = fields.String()
    importance = fields.String()
    language = fields.String()
    link_lifetime_days = fields.Integer()
    triggers = fields.List(fields.Nested(TriggerSchema))
    active = fields.Boolean()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class SurveyQuery(PageArgs):
    active = fields.Boolean()


class CustomerSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    email = fields.Email(validate=validate.Length(max=254))
    phone = fields.String(validate=validate.Regexp(r"^\+?[0-9][0-9 ()./-]{2,38}$",
                                                   error="Not a phone number."))

    @validates_schema
    def _someone(self, data, **kwargs):
        if not any(data.get(k) for k in ("name", "email", "phone")):
            raise ValidationError("Name the customer: name, email or phone.")


class InvitationInSchema(Schema):
    customer = fields.Nested(CustomerSchema, required=True)
    record_id = fields.UUID(load_default=None, allow_none=True,
                            metadata={"description": "A record of this tenant the survey is about"})
    language = fields.String(validate=validate.OneOf(LANGUAGES),
                             metadata={"description": "Default: the survey's language"})
    expires_at = fields.AwareDateTime(validate=utc_instant,
                                      metadata={"description": "Default: now + the survey's link lifetime"})
    send = fields.Boolean(load_default=True,
                          metadata={"description": "Emit survey.invited to the tenant's webhooks"})


class InvitationOutSchema(Schema):
    id = fields.UUID()
    survey_id = fields.UUID()
    record_id = fields.UUID(allow_none=True)
    customer = fields.Dict(metadata={"description": "Masked for roles without personal_data"})
    language = fields.String()
    source = fields.String(metadata={"description": "manual or trigger"})
    status = fields.String(metadata={"description": "pending, answered, expired or revoked"})
    expires_at = fields.AwareDateTime()
    responded_at = fields.AwareDateTime(allow_none=True)
    revoked_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()


class NewInvitationSchema(InvitationOutSchema):
    token = fields.String(metadata={"description": "The link token, shown once"})
    link = fields.String(metadata={"description": "Where the customer answers"})


class InvitationQuery(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))
    record_id = fields.UUID()


class ResultsQuery(Schema):
    since = fields.AwareDateTime(validate=utc_instant, metadata={"description": "submitted at or after"})
    until = fields.AwareDateTime(validate=utc_instant, metadata={"description": "submitted before"})
    site_id = fields.UUID(metadata={"description": "the invitation's record's site"})
    staff_id = fields.UUID(metadata={"description": "the invitation's record's staff member"})
    kind = fields.String(validate=validate.Length(min=1, max=100),
                         metadata={"description": "the invitation's record's kind"})

    @validates_schema
    def _ordered(self, data, **kwargs):
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise ValidationError("'since' must not be after 'until'.", "since")


class ResultsSchema(Schema):
    survey_id = fields.UUID()
    form = fields.String()
    filters = fields.Dict()
    responses = fields.Integer()
    items = fields.List(fields.Dict())
    dimensions = fields.List(fields.Dict())
    scores = fields.Dict(metadata={"description": "per measure: unweighted and weighted score"})
    nps = fields.Dict(allow_none=True)
    csat = fields.Dict(allow_none=True)


# -- instruments --------------------------------------------------------------------------


def _instrument_view(doc: dict, row: SurveyInstrument | None = None) -> dict:
    return {
        "id": row.id if row else None,
        "code": doc["code"],
        "version": row.version if row else doc.get("version", 1),
        "builtin": row is None,
        "title": doc["title"],
        "description": doc.get("description"),
        "scale": doc["scale"],
        "dimensions": doc.get("dimensions", []),
        "items": doc["items"],
        "forms": list(allowed_forms(doc)),
        "created_at": row.created_at if row else None,
        "updated_at": row.updated_at if row else None,
    }


def _custom_instrument(code: str) -> SurveyInstrument:
    if not CODE_RE.match(code):
        abort(404, message="Instrument not found.")
    if builtin(code) is not None:
        abort(409, message=f"{code!r} is a built-in instrument: it cannot be changed or deleted; "
                           "create your own under another code.")
    row = request_session().scalar(select(SurveyInstrument).where(SurveyInstrument.code == code))
    if row is None:
        abort(404, message="Instrument not found.")
    return row


def resolve_instrument(code: str) -> tuple[dict, int] | None:
    """A built-in or the tenant's instrument: ``(document, version)``, or ``None``."""
    return find_instrument(request_session(), code)


@blp.route("/instruments/builtin")
class BuiltinInstruments(MethodView):
    @require("read")
    @blp.response(200, InstrumentOutSchema(many=True))
    def get(self):
        """The built-in instruments: SERVQUAL (1988 and 1991 wordings), CSAT and NPS."""
        return [_instrument_view(doc) for doc in builtin_instruments()]


@blp.route("/instruments")
class Instruments(MethodView):
    @require("read")
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, InstrumentOutSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """The tenant's own instruments, by code (the built-in ones: ``/instruments/builtin``)."""
        headers = {}
        rows = paginate(request_session(), select(SurveyInstrument).order_by(SurveyInstrument.code),
                        args, headers)
        return [_instrument_view(r.document, r) for r in rows], 200, headers

    @require("manage")
    @blp.arguments(InstrumentSchema())
    @blp.created(InstrumentOutSchema, key="code")
    @blp.alt_response(409, description="The code is taken (by a built-in or another instrument)")
    def post(self, body):
        """Create an instrument: items, scales, the dimension of each item, required or optional."""
        session = request_session()
        code = body["code"]
        if builtin(code) is not None or session.scalar(
                select(SurveyInstrument.id).where(SurveyInstrument.code == code)):
            abort(409, message=f"An instrument with code {code!r} exists.")
        doc = _clean_document(body)
        row = SurveyInstrument(code=code, version=1, document=doc, created_by=actor_id())
        session.add(row)
        session.flush()
        audit(session, "survey_instruments", row.id, "created", actor_id(), {"code": [None, code]})
        session.commit()
        return _instrument_view(doc, row)


def _clean_document(body: dict) -> dict:
    """The stored document: what the schema loaded, without ``None`` optional parts."""
    doc = {k: v for k, v in body.items() if v is not None}
    doc["items"] = [{k: v for k, v in item.items() if v is not None} for item in doc["items"]]
    return doc


@blp.route("/instruments/<string:code>")
class InstrumentByCode(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, InstrumentOutSchema)
    def get(self, code):
        """One instrument, built-in or the tenant's."""
        doc = builtin(code)
        if doc is not None:
            return _instrument_view(doc)
        if not CODE_RE.match(code):
            abort(404, message="Instrument not found.")
        row = request_session().scalar(select(SurveyInstrument).where(SurveyInstrument.code == code))
        if row is None:
            abort(404, message="Instrument not found.")
        return _instrument_view(row.document, row)

    @require("manage")
    @blp.etag
    @blp.arguments(InstrumentPatchSchema())
    @blp.response(200, InstrumentOutSchema)
    def patch(self, body, code):
        """Change the tenant's instrument (needs If-Match); each change is a new version.
        Surveys already created keep the version they were created with."""
        session = request_session()
        row = _custom_instrument(code)
        lock_for_write(row)
        blp.check_etag(_instrument_view(row.document, row), InstrumentOutSchema)
        merged = {**row.document, **body, "code": row.code}
        try:
            doc = _clean_document(InstrumentSchema().load(merged))
        except ValidationError as exc:
            abort(422, message="The instrument is not valid.", errors={"json": exc.messages})
        if doc != row.document:
            changed = sorted(k for k in doc if doc.get(k) != row.document.get(k))
            row.document = doc
            row.version += 1
            audit(session, "survey_instruments", row.id, "changed", actor_id(),
                  {"version": [row.version - 1, row.version], "fields": [None, changed]})
        session.commit()
        return _instrument_view(row.document, row)

    @require("manage")
    @blp.etag
    @blp.response(204)
    def delete(self, code):
        """Delete the tenant's instrument (needs If-Match); surveys keep their copy."""
        session = request_session()
        row = _custom_instrument(code)
        lock_for_write(row)
        blp.check_etag(_instrument_view(row.document, row), InstrumentOutSchema)
        audit(session, "survey_instruments", row.id, "deleted", actor_id(), {"code": [code, None]})
        session.delete(row)
        session.commit()


# -- surveys ------------------------------------------------------------------------------


def get_survey(survey_id: uuid.UUID) -> Survey:
    """The current tenant's survey or 404."""
    survey = request_session().scalar(select(Survey).where(Survey.id == survey_id))
    if survey is None:
        abort(404, message="Survey not found.")
    return survey


def _triggers_of(survey_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict]]:
    if not survey_ids:
        return {}
    out: dict[uuid.UUID, list[dict]] = {sid: [] for sid in survey_ids}
    rows = request_session().scalars(
        select(SurveyTrigger).where(SurveyTrigger.survey_id.in_(survey_ids))
        .order_by(SurveyTrigger.kind, SurveyTrigger.status))
    for t in rows:
        out[t.survey_id].append({"kind": t.kind, "status": t.status})
    return out


def _survey_view(survey: Survey, triggers: list[dict]) -> dict:
    return {
        "id": survey.id, "title": survey.title, "instrument_code": survey.instrument_code,
        "instrument_version": survey.instrument_version, "instrument": survey.instrument,
        "form": survey.form, "importance": survey.importance, "language": survey.language,
        "link_lifetime_days": survey.link_lifetime_days, "triggers": triggers,
        "active": survey.active, "created_at": survey.created_at, "updated_at": survey.updated_at,
    }


def _check_triggers(triggers: list[dict]) -> list[dict]:
    """422 unless every trigger names a kind this tenant may use and one of its statuses."""
    kinds = enabled_kinds()
    errors = {}
    seen = set()
    for n, trigger in enumerate(triggers):
        kind = kinds.get(trigger["kind"])
        if kind is None:
            errors[n] = {"kind": [f"Unknown record kind {trigger['kind']!r}; this tenant may use: "
                                  f"{', '.join(sorted(kinds))}."]}
        elif trigger["status"] is not None and trigger["status"] not in kind.statuses:
            errors[n] = {"status": [f"Must be one of: {', '.join(kind.statuses)}."]}
        key = (trigger["kind"], trigger["status"])
        if key in seen:
            errors[n] = {"_schema": ["The same trigger is given twice."]}
        seen.add(key)
    if errors:
        abort(422, message="The triggers are not valid.", errors={"json": {"triggers": errors}})
    return [{"kind": t["kind"], "status": t["status"]} for t in triggers]


def _check_importance(doc: dict, importance: str) -> None:
    if importance != "none" and len(doc.get("dimensions", [])) < 2:
        abort(422, message="Importance points are shared among dimensions: this instrument has "
                           "fewer than two.", errors={"json": {"importance": ["Needs two dimensions or more."]}})


def _set_triggers(session, survey: Survey, triggers: list[dict]) -> None:
    session.execute(delete(SurveyTrigger).where(SurveyTrigger.survey_id == survey.id))
    for t in triggers:
        session.add(SurveyTrigger(survey_id=survey.id, kind=t["kind"], status=t["status"]))
    forget_triggers(session)


@blp.route("")
class Surveys(MethodView):
    @require("read")
    @blp.arguments(SurveyQuery(), location="query")
    @blp.response(200, SurveyOutSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """List surveys, newest first."""
        stmt = select(Survey).order_by(Survey.created_at.desc(), Survey.id)
        if "active" in args:
            stmt = stmt.where(Survey.active.is_(args["active"]))
        headers = {}
        surveys = paginate(request_session(), stmt, args, headers)
        triggers = _triggers_of([s.id for s in surveys])
        return [_survey_view(s, triggers[s.id]) for s in surveys], 200, headers

    @require("manage")
    @blp.arguments(SurveyInSchema())
    @blp.created(SurveyOutSchema)
    def post(self, body):
        """Create a survey of an instrument: form, language, link lifetime, importance, triggers."""
        session = request_session()
        found = resolve_instrument(body["instrument"])
        if found is None:
            abort(422, message=f"Unknown instrument {body['instrument']!r}.",
                  errors={"json": {"instrument": ["No built-in or tenant instrument has this code."]}})
        doc, version = found
        forms = allowed_forms(doc)
        form = body.get("form") or default_form(doc)
        if form not in forms:
            abort(422, message=form_refusal(doc, form),
                  errors={"json": {"form": [f"Must be one of: {', '.join(forms)}."]}})
        _check_importance(doc, body["importance"])
        triggers = _check_triggers(body["triggers"])
        survey = create_survey(session, doc, version, title=body["title"], form=form,
                               importance=body["importance"], language=body["language"],
                               link_lifetime_days=body["link_lifetime_days"], active=body["active"],
                               actor_id=actor_id(), triggers=triggers)
        _set_triggers(session, survey, triggers)
        session.commit()
        return _survey_view(survey, triggers)


@blp.route("/<uuid:survey_id>")
class SurveyById(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, SurveyOutSchema)
    def get(self, survey_id):
        """Get a survey."""
        survey = get_survey(survey_id)
        return _survey_view(survey, _triggers_of([survey.id])[survey.id])

    @require("manage")
    @blp.etag
    @blp.arguments(SurveyPatchSchema())
    @blp.response(200, SurveyOutSchema)
    def patch(self, body, survey_id):
        """Change a survey (needs If-Match): title, language, link lifetime, importance,
        triggers (the list given replaces the old one), active. Its instrument and form
        are fixed."""
        session = request_session()
        survey = get_survey(survey_id)
        lock_for_write(survey)  # before its triggers are read: every writer locks the survey
        triggers = _triggers_of([survey.id])[survey.id]
        blp.check_etag(_survey_view(survey, triggers), SurveyOutSchema)
        if "importance" in body:
            _check_importance(survey.instrument, body["importance"])
        values = {k: v for k, v in body.items() if k != "triggers"}
        if "title" in values:
            values["title"] = dict(values["title"])
        changes = apply_changes(survey, values)
        if "triggers" in body:
            new = _check_triggers(body["triggers"])
            if sorted(map(str, new)) != sorted(map(str, triggers)):
                _set_triggers(session, survey, new)
                changes["triggers"] = [triggers, new]
                triggers = new
        if "active" in changes:
            forget_triggers(session)
        if changes:
            survey.updated_at = utcnow()
            audit(session, "surveys", survey.id, "changed", actor_id(), changes)
        session.commit()
        return _survey_view(survey, _triggers_of([survey.id])[survey.id])

    @require("manage")
    @blp.etag
    @blp.response(204)
    @blp.alt_response(409, description="The survey has invitations; deactivate it instead")
    def delete(self, survey_id):
        """Delete a survey that has no invitations yet (needs If-Match)."""
        session = request_session()
        survey = get_survey(survey_id)
        lock_for_write(survey)
        blp.check_etag(_survey_view(survey, _triggers_of([survey.id])[survey.id]), SurveyOutSchema)
        if session.scalar(select(SurveyInvitation.id).where(SurveyInvitation.survey_id == survey.id).limit(1)):
            abort(409, message="This survey has invitations: deactivate it (active: false) instead.")
        audit(session, "surveys", survey.id, "deleted", actor_id())
        session.execute(delete(SurveyTrigger).where(SurveyTrigger.survey_id == survey.id))
        session.delete(survey)
        forget_triggers(session)
        session.commit()


# -- invitations ------------------------------------------------------------------------------


def _invitation_view(invitation: SurveyInvitation) -> dict:
    return {
        "id": invitation.id, "survey_id": invitation.survey_id, "record_id": invitation.record_id,
        "customer": customer_view(invitation, clear=allowed(g.membership.role, "personal_data")),
        "language": invitation.language, "source": invitation.source, "status": status_of(invitation),
        "expires_at": invitation.expires_at, "responded_at": invitation.responded_at,
        "revoked_at": invitation.revoked_at, "created_at": invitation.created_at,
    }


def _audit_reads(session, invitations) -> None:
    """Audit a clear read of customers' contacts (masked reads reveal nothing)."""
    if allowed(g.membership.role, "personal_data") and audit_customer_reads(session, invitations, actor_id()):
        session.commit()


def _get_invitation(survey_id: uuid.UUID, invitation_id: uuid.UUID) -> SurveyInvitation:
    invitation = request_session().scalar(select(SurveyInvitation).where(
        SurveyInvitation.id == invitation_id, SurveyInvitation.survey_id == survey_id))
    if invitation is None:
        abort(404, message="Invitation not found.")
    return invitation


@blp.route("/<uuid:survey_id>/invitations")
class Invitations(MethodView):
    @require("read")
    @blp.arguments(InvitationQuery(), location="query")
    @blp.response(200, InvitationOutSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args, survey_id):
        """A survey's invitations, newest first."""
        get_survey(survey_id)
        inv = SurveyInvitation
        stmt = select(inv).where(inv.survey_id == survey_id).order_by(inv.created_at.desc(), inv.id)
        if "record_id" in args:
            stmt = stmt.where(inv.record_id == args["record_id"])
        status = args.get("status")
        now = utcnow()
        if status == "answered":
            stmt = stmt.where(inv.responded_at.is_not(None))
        elif status == "revoked":
            stmt = stmt.where(inv.responded_at.is_(None), inv.revoked_at.is_not(None))
        elif status == "expired":
            stmt = stmt.where(inv.responded_at.is_(None), inv.revoked_at.is_(None), inv.expires_at <= now)
        elif status == "pending":
            stmt = stmt.where(inv.responded_at.is_(None), inv.revoked_at.is_(None), inv.expires_at > now)
        headers = {}
        session = request_session()
        rows = paginate(session, stmt, args, headers)
        views = [_invitation_view(i) for i in rows]
        _audit_reads(session, rows)
        return views, 200, headers

    @require("write")
    @blp.arguments(InvitationInSchema())
    @blp.created(NewInvitationSchema, etag_schema=InvitationOutSchema)
    @blp.alt_response(409, description="The survey is inactive, or the record has an invitation already")
    def post(self, body, survey_id):
        """Invite a customer: a single-use link, shown once in ``token``/``link``."""
        session = request_session()
        survey = get_survey(survey_id)
        if not survey.active:
            abort(409, message="This survey is inactive: activate it before inviting.")
        now = utcnow()
        expires_at = body.get("expires_at")
        if expires_at is not None and not now < expires_at <= now + timedelta(days=MAX_LINK_DAYS):
            abort(422, message="A link expires in the future, within a year.",
                  errors={"json": {"expires_at": ["Must be after now and within 366 days."]}})
        record_id = body.get("record_id")
        if record_id is not None and session.scalar(
                select(Record.id).where(Record.id == record_id, Record.deleted_at.is_(None))) is None:
            abort(422, message="No such record in this tenant.",
                  errors={"json": {"record_id": ["No such record in this tenant."]}})
        try:
            invitation, clear = create_invitation(
                session, survey, customer=body["customer"], record_id=record_id,
                language=body.get("language"), expires_at=expires_at, actor_id=actor_id(),
                send=body["send"])
        except InvitationConflict:
            session.rollback()
            abort(409, message="This record already has an invitation to this survey.")
        audit(session, "survey_invitations", invitation.id, "created", actor_id(),
              {"survey_id": [None, str(survey.id)], "record_id": [None, jsonable(record_id)]})
        session.commit()
        return {**_invitation_view(invitation), "token": clear, "link": link_url(clear)}


@blp.route("/<uuid:survey_id>/invitations/<uuid:invitation_id>")
class InvitationById(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, InvitationOutSchema)
    def get(self, survey_id, invitation_id):
        """Get an invitation."""
        invitation = _get_invitation(survey_id, invitation_id)
        view = _invitation_view(invitation)
        _audit_reads(request_session(), [invitation])
        return view

    @require("write")
    @blp.etag
    @blp.response(204)
    @blp.alt_response(409, description="Already answered")
    def delete(self, survey_id, invitation_id):
        """Revoke an invitation (needs If-Match): its link answers 410 from now on. The
        invitation stays listed, with status ``revoked``."""
        session = request_session()
        invitation = _get_invitation(survey_id, invitation_id)
        lock_for_write(invitation)
        blp.check_etag(_invitation_view(invitation), InvitationOutSchema)
        if invitation.responded_at is not None:
            abort(409, message="This invitation has been answered; it cannot be revoked.")
        if invitation.revoked_at is None:
            changes = apply_changes(invitation, {"revoked_at": utcnow()})
            audit(session, "survey_invitations", invitation.id, "revoked", actor_id(), changes)
        session.commit()


# -- results ------------------------------------------------------------------------------------


@blp.route("/<uuid:survey_id>/results")
class Results(MethodView):
    @require("read")
    @blp.arguments(ResultsQuery(), location="query")
    @blp.response(200, ResultsSchema)
    def get(self, args, survey_id):
        """Results per item and dimension: means, gaps, zone of tolerance, SERVQUAL
        scores (unweighted and weighted), NPS, CSAT; n and the standard error of each
        mean. Filters: period (``since``/``until`` on submission), and the site, staff
        member and kind of the record the invitation was about."""
        survey = get_survey(survey_id)
        return survey_results(request_session(), survey, Filters(**args))

