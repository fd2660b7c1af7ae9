"""Survey instruments, surveys, invitations and results.

Instruments: the built-in SERVQUAL (1988 and 1991 wordings), CSAT and NPS, and the
tenant's own. A survey puts an instrument to use in a form (``single``, ``two_column``:
expectation and perception, ``three_column``: adequate, desired and perceived level),
with a default language, a link lifetime, optional importance points and triggers.
Invitations are single-use links for one customer (personal data: masked for roles
without ``personal_data``). Results are aggregated in SQL (:mod:`core.surveys.results`).

HTTP only: the rules are in :mod:`core.surveys` (``catalogue`` for the tenant's
instruments, ``store`` for surveys, ``invitations``); their
:class:`~core.surveys.errors.SurveyError` becomes the error's status here.
"""

from __future__ import annotations

import uuid

from flask import g
from flask.views import MethodView
from flask_smorest import abort

from servq.core.api.blueprint import Blueprint, lock_for_write
from servq.core.api.context import actor_id, enabled_kinds, require
from servq.core.api.errors import refusals
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.api.survey_schemas import (InstrumentOutSchema, InstrumentPatchSchema, InvitationInSchema,
                                           InvitationOutSchema, InvitationQuery, NewInvitationSchema,
                                           ResultsQuery, ResultsSchema, SurveyInSchema, SurveyOutSchema,
                                           SurveyPatchSchema, SurveyQuery)
from servq.core.auth.permissions import allowed
from servq.core.db.session import request_session
from servq.core.models import Survey, SurveyInstrument, SurveyInvitation
from servq.core.surveys import catalogue, store
from servq.core.surveys.errors import SurveyError
from servq.core.surveys.instruments import InstrumentSchema, allowed_forms, builtin_instruments
from servq.core.surveys.invitations import (audit_customer_reads, customer_view,
                                      find_invitation, invitations_statement, invite, link_url,
                                      revoke_invitation, status_of)
from servq.core.surveys.results import Filters, survey_results

URL = "/surveys"
blp = Blueprint("surveys", __name__, description="Survey instruments, invitations and results.")


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
    with refusals(SurveyError):
        return catalogue.custom_instrument(request_session(), code)


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
        rows = paginate(request_session(), catalogue.instruments_statement(), args, headers)
        return [_instrument_view(r.document, r) for r in rows], 200, headers

    @require("manage")
    @blp.arguments(InstrumentSchema())
    @blp.created(InstrumentOutSchema, key="code")
    @blp.alt_response(409, description="The code is taken (by a built-in or another instrument)")
    def post(self, body):
        """Create an instrument: items, scales, the dimension of each item, required or optional."""
        session = request_session()
        with refusals(SurveyError):
            row = catalogue.create_instrument(session, body, actor_id())
        session.commit()
        return _instrument_view(row.document, row)


@blp.route("/instruments/<string:code>")
class InstrumentByCode(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, InstrumentOutSchema)
    def get(self, code):
        """One instrument, built-in or the tenant's."""
        with refusals(SurveyError):
            doc, row = catalogue.instrument_by_code(request_session(), code)
        return _instrument_view(doc, row)

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
        with refusals(SurveyError):
            catalogue.change_instrument(session, row, body, actor_id())
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
        catalogue.delete_instrument(session, row, actor_id())
        session.commit()


# -- surveys ------------------------------------------------------------------------------


def get_survey(survey_id: uuid.UUID) -> Survey:
    """The current tenant's survey or 404."""
    survey = store.find_survey(request_session(), survey_id)
    if survey is None:
        abort(404, message="Survey not found.")
    return survey


def _triggers(survey: Survey) -> list[dict]:
    return store.triggers_of(request_session(), [survey.id])[survey.id]


def _survey_view(survey: Survey, triggers: list[dict]) -> dict:
    return {
        "id": survey.id, "title": survey.title, "instrument_code": survey.instrument_code,
        "instrument_version": survey.instrument_version, "instrument": survey.instrument,
        "form": survey.form, "importance": survey.importance, "language": survey.language,
        "link_lifetime_days": survey.link_lifetime_days, "triggers": triggers,
        "active": survey.active, "created_at": survey.created_at, "updated_at": survey.updated_at,
    }


@blp.route("")
class Surveys(MethodView):
    @require("read")
    @blp.arguments(SurveyQuery(), location="query")
    @blp.response(200, SurveyOutSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """List surveys, newest first."""
        headers = {}
        session = request_session()
        surveys = paginate(session, store.surveys_statement(args.get("active")), args, headers)
        triggers = store.triggers_of(session, [s.id for s in surveys])
        return [_survey_view(s, triggers[s.id]) for s in surveys], 200, headers

    @require("manage")
    @blp.arguments(SurveyInSchema())
    @blp.created(SurveyOutSchema)
    def post(self, body):
        """Create a survey of an instrument: form, language, link lifetime, importance, triggers."""
        session = request_session()
        with refusals(SurveyError):
            survey, triggers = store.new_survey(session, enabled_kinds(), body, actor_id())
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
        return _survey_view(survey, _triggers(survey))

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
        triggers = _triggers(survey)
        blp.check_etag(_survey_view(survey, triggers), SurveyOutSchema)
        with refusals(SurveyError):
            store.change_survey(session, survey, triggers, body, enabled_kinds, actor_id())
        session.commit()
        return _survey_view(survey, _triggers(survey))

    @require("manage")
    @blp.etag
    @blp.response(204)
    @blp.alt_response(409, description="The survey has invitations; deactivate it instead")
    def delete(self, survey_id):
        """Delete a survey that has no invitations yet (needs If-Match)."""
        session = request_session()
        survey = get_survey(survey_id)
        lock_for_write(survey)
        blp.check_etag(_survey_view(survey, _triggers(survey)), SurveyOutSchema)
        with refusals(SurveyError):
            store.delete_survey(session, survey, actor_id())
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
    invitation = find_invitation(request_session(), survey_id, invitation_id)
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
        stmt = invitations_statement(survey_id, args.get("status"), args.get("record_id"))
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
        with refusals(SurveyError):
            invitation, clear = invite(
                session, survey, customer=body["customer"], record_id=body.get("record_id"),
                language=body.get("language"), expires_at=body.get("expires_at"), actor_id=actor_id(),
                send=body["send"])
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
        with refusals(SurveyError):
            revoke_invitation(session, invitation, actor_id())
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

