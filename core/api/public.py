"""Public survey answering by single-use link, without login.

The link token (``sv_<tenant hex>_<secret>``) is the only credential: these routes do
not use ``@require``; they scope the request's session to the tenant the token names
(ORM filter and row-level security), then look the token up by its SHA-256. A token
shows its own questions and nothing else: no tenant, customer or record data.

Both routes are rate limited per client address (``SURVEY_RATE_LIMIT``) and per token
(``SURVEY_LINK_RATE_LIMIT``), before the token is even looked up.
"""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from sqlalchemy import and_, select, update

from servq.core import ratelimit
from servq.core.api.blueprint import Blueprint
from servq.core.auth.tokens import hash_token
from servq.core.db.session import request_session
from servq.core.db import utcnow
from servq.core.models import Survey, SurveyInvitation
from servq.core.surveys.answers import AnswersInvalid, score_answers
from servq.core.surveys.instruments import (COLUMN_LABELS, IMPORTANCE_PROMPT, item_columns, item_scale,
                                      localized)
from servq.core.surveys.invitations import tenant_of_link
from servq.core.surveys.store import store_response

URL = "/public"
blp = Blueprint("public", __name__, description="Public survey answering by single-use link, without login.")

MAX_TOKEN = 200


class ScaleOutSchema(Schema):
    min = fields.Integer()
    max = fields.Integer()
    labels = fields.Dict(keys=fields.String(), values=fields.String())


class QuestionSchema(Schema):
    code = fields.String()
    text = fields.String()
    required = fields.Boolean()
    columns = fields.List(fields.String(), metadata={
        "description": "['value']: answer with a number; otherwise an object with these keys"})
    scale = fields.Nested(ScaleOutSchema)


class ColumnSchema(Schema):
    key = fields.String()
    label = fields.String()


class ImportanceDimensionSchema(Schema):
    code = fields.String()
    title = fields.String()
    description = fields.String(allow_none=True)


class ImportanceSchema(Schema):
    required = fields.Boolean()
    total = fields.Integer()
    prompt = fields.String()
    dimensions = fields.List(fields.Nested(ImportanceDimensionSchema))


class QuestionnaireSchema(Schema):
    title = fields.String()
    language = fields.String()
    form = fields.String()
    columns = fields.List(fields.Nested(ColumnSchema))
    questions = fields.List(fields.Nested(QuestionSchema))
    importance = fields.Nested(ImportanceSchema, allow_none=True)
    expires_at = fields.AwareDateTime()


class AnswersSchema(Schema):
    answers = fields.Dict(keys=fields.String(), required=True, metadata={
        "description": "{question code: a number, or {column: number} for column forms}; "
                       "optional questions may be left out or null"})
    importance = fields.Dict(keys=fields.String(), load_default=None, allow_none=True, metadata={
        "description": "{dimension code: points}, 100 in total, when the survey asks for it"})
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=5000))


class ReceivedSchema(Schema):
    received_at = fields.AwareDateTime()


def open_invitation(token: str) -> tuple[SurveyInvitation, Survey]:
    """Rate-limit, scope the session to the token's tenant and find its invitation; 404
    (unknown), 409 (answered already) or 410 (expired, revoked, survey closed)."""
    config = current_app.config
    ratelimit.hit(config.get("SURVEY_RATE_LIMIT") or "60 per minute", f"survey-ip:{request.remote_addr}")
    token = token[:MAX_TOKEN]
    ratelimit.hit(config.get("SURVEY_LINK_RATE_LIMIT") or "20 per minute", f"survey-link:{hash_token(token)}")
    tenant_id = tenant_of_link(token)
    if tenant_id is None:
        abort(404, message="Unknown survey link.")
    session = request_session()
    session.set_tenant(tenant_id)
    row = session.execute(
        select(SurveyInvitation, Survey)
        .join(Survey, and_(Survey.tenant_id == SurveyInvitation.tenant_id, Survey.id == SurveyInvitation.survey_id))
        .where(SurveyInvitation.token_hash == hash_token(token))
    ).first()
    if row is None:
        abort(404, message="Unknown survey link.")
    invitation, survey = row
    if invitation.responded_at is not None:
        abort(409, message="This survey has already been answered with this link. Thank you!")
    if invitation.revoked_at is not None or invitation.expires_at <= utcnow():
        abort(410, message="This survey link has expired.")
    if not survey.active:
        abort(410, message="This survey is closed.")
    return invitation, survey


def questionnaire(survey: Survey, invitation: SurveyInvitation) -> dict:
    """The questions of ``survey`` in the invitation's language, and nothing else."""
    lang = invitation.language
    doc = survey.instrument
    questions = []
    for item in doc["items"]:
        scale = item_scale(doc, item)
        columns = item_columns(survey.form, item)
        questions.append({
            "code": item["code"],
            "text": localized(item["text"], lang),
            "required": bool(item.get("required", True)),
            "columns": ["value"] if len(columns) == 1 else list(columns),
            "scale": {"min": scale["min"], "max": scale["max"],
                      "labels": {k: localized(v, lang) for k, v in scale.get("labels", {}).items()}},
        })
    columns = [] if survey.form == "single" else [
        {"key": c, "label": COLUMN_LABELS[c][lang]} for c in item_columns(survey.form, {})]
    importance = None
    if survey.importance != "none":
        importance = {
            "required": survey.importance == "required", "total": 100,
            "prompt": IMPORTANCE_PROMPT[lang],
            "dimensions": [{"code": d["code"], "title": localized(d["title"], lang),
                            "description": localized(d.get("description"), lang)}
                           for d in doc.get("dimensions", [])],
        }
    return {"title": localized(survey.title, lang), "language": lang, "form": survey.form,
            "columns": columns, "questions": questions, "importance": importance,
            "expires_at": invitation.expires_at}


@blp.route("/surveys/<string:token>")
class PublicSurvey(MethodView):
    @blp.doc(security=[])
    @blp.response(200, QuestionnaireSchema)
    @blp.alt_response(404, description="Unknown link")
    @blp.alt_response(409, description="Already answered")
    @blp.alt_response(410, description="Expired, revoked, or the survey is closed")
    @blp.alt_response(429, description="Too many attempts")
    def get(self, token):
        """The questions of a survey link, in the invitation's language (no login)."""
        invitation, survey = open_invitation(token)
        return questionnaire(survey, invitation)

    @blp.doc(security=[])
    @blp.arguments(AnswersSchema())
    @blp.response(201, ReceivedSchema)
    @blp.alt_response(404, description="Unknown link")
    @blp.alt_response(409, description="Already answered")
    @blp.alt_response(410, description="Expired, revoked, or the survey is closed")
    @blp.alt_response(422, description="An answer is outside its scale, or a required one is missing")
    @blp.alt_response(429, description="Too many attempts")
    def post(self, body, token):
        """Answer a survey link, once (no login). Every answer is checked against its
        scale; on any error nothing is stored."""
        invitation, survey = open_invitation(token)
        session = request_session()
        try:
            scored = score_answers(survey.instrument, survey.form, survey.importance,
                                   body["answers"], body.get("importance"))
        except AnswersInvalid as exc:
            session.rollback()
            abort(422, message=exc.message, errors={"json": exc.errors})
        now = utcnow()
        claimed = session.execute(
            update(SurveyInvitation)
            .where(SurveyInvitation.id == invitation.id, SurveyInvitation.responded_at.is_(None))
            .values(responded_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            session.rollback()
            abort(409, message="This survey has already been answered with this link. Thank you!")
        store_response(session, survey, invitation, scored, answers=body["answers"], submitted_at=now,
                       comment=body.get("comment"))
        session.commit()
        return {"received_at": now}
