"""The request and answer schemas of the survey routes (:mod:`core.api.surveys`)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from servq.core.api.pagination import PageArgs
from servq.core.records.pipeline import utc_instant
from servq.core.surveys.instruments import FORMS, LANGUAGES, TextSchema, texts_required
from servq.core.surveys.invitations import MAX_LINK_DAYS

IMPORTANCE = ("none", "optional", "required")
STATUSES = ("pending", "answered", "expired", "revoked")


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
