"""Quality files: the history of one member of staff or one site (guide: docs/quality-files.md).

``GET /api/v1/staff/<id>/quality-file`` and ``GET /api/v1/sites/<id>/quality-file``: the
queries are in :mod:`core.kpis.quality_files`; this module adds the period, the caller's view
(mystery inspections hidden from agents, kinds the tenant may use) and the masking of
complainants' contact data for roles without ``personal_data``.
"""

from __future__ import annotations

from datetime import timedelta, timezone

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validates_schema

from servq.core.api.args import Int
from servq.core.api.blueprint import Blueprint
from servq.core.api.context import enabled_kinds, require, sees_personal_data
from servq.core.api.quality_file_sections import (EvaluationDisputeFields, FileSectionFields,
                                                   SummaryDisputeFields)
from servq.core.api.records import audit_personal_reads
from servq.core.api.sites import get_site
from servq.core.api.staff import get_staff
from servq.core.db.session import request_session
from servq.core.db import utcnow
from servq.core.kpis.quality_files import COMPLAINT, UTC_MIN, FileQuery, quality_file
from servq.core.personal import mask_paths
from servq.core.records.pipeline import utc_instant

URL = ""
blp = Blueprint("quality_files", __name__,
                description="Quality files: the checks, findings, complaints, praise, actions, "
                            "trends and rank of a member of staff or a site.")

#: The period a file covers when the request names none.
DEFAULT_DAYS = 90


class QualityFileArgs(Schema):
    since = fields.AwareDateTime(validate=utc_instant, metadata={
        "description": "Start of the period (default: 90 days before until)"})
    until = fields.AwareDateTime(validate=utc_instant, metadata={
        "description": "End of the period, excluded (default: now)"})
    limit = Int(min=1, max=200, load_default=20, metadata={
        "description": "Rows per list (evaluations, findings, complaints, praise, actions)"})

    @validates_schema
    def _ordered(self, data, **kwargs):
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError("'since' must be before 'until'.", "since")


# -- the response ------------------------------------------------------------------------


class QualityFileSubjectSchema(Schema):
    type = fields.String(metadata={"description": "staff or site"})
    id = fields.UUID()
    code = fields.String()
    name = fields.String()
    site_id = fields.UUID(allow_none=True, metadata={"description": "A member of staff's site"})


class QualityFilePeriodSchema(Schema):
    since = fields.AwareDateTime()
    until = fields.AwareDateTime()
    timezone = fields.String(metadata={"description": "The tenant's: trend months are local"})


class QualityFileSummarySchema(SummaryDisputeFields):
    records = fields.Integer()
    evaluations = fields.Integer()
    score = fields.Float(allow_none=True, metadata={"description": "Mean evaluation percent"})
    pass_rate = fields.Float(allow_none=True, metadata={"description": "% of judged evaluations passed"})
    critical_failures = fields.Integer(metadata={"description": "Evaluations with a failed critical item"})
    findings = fields.Integer(metadata={"description": "Failed or breached items"})
    deadline_attainment = fields.Float(allow_none=True, metadata={
        "description": "% of decided deadline clocks (met, breached, or running past due) "
                       "that were met"})
    clocks_decided = fields.Integer()
    complaints = fields.Integer()
    praise = fields.Integer()
    actions_open = fields.Integer()
    actions_overdue = fields.Integer()


class QualityFileEvaluationSchema(EvaluationDisputeFields):
    record_id = fields.UUID()
    record_kind = fields.String()
    occurred_at = fields.AwareDateTime()
    standard_code = fields.String()
    standard_version = fields.Integer()
    standard_title = fields.Dict(allow_none=True)
    percent = fields.Float(allow_none=True)
    grade = fields.String(allow_none=True)
    passed = fields.Boolean(allow_none=True)
    complete = fields.Boolean()
    failed_critical = fields.List(fields.String())
    evaluated_at = fields.AwareDateTime()


class QualityFileFindingSchema(Schema):
    record_id = fields.UUID()
    record_kind = fields.String()
    occurred_at = fields.AwareDateTime()
    standard_code = fields.String()
    standard_version = fields.Integer()
    standard_title = fields.Dict(allow_none=True)
    item_code = fields.String()
    item_title = fields.Dict(allow_none=True)
    outcome = fields.String(metadata={"description": "fail or breached"})
    critical = fields.Boolean()


class QualityFileComplaintSchema(Schema):
    id = fields.UUID()
    occurred_at = fields.AwareDateTime()
    status = fields.String()
    site_id = fields.UUID(allow_none=True)
    staff_id = fields.UUID(allow_none=True)
    via = fields.String(metadata={"description": "subject: filed against them; record: about one "
                                                 "of their records (data.record_id)"})
    data = fields.Dict(metadata={"description": "The customer's contact is masked for roles "
                                                "without personal_data"})


class QualityFilePraiseSchema(Schema):
    source = fields.String(metadata={"description": "survey or observation"})
    at = fields.AwareDateTime()
    record_id = fields.UUID(allow_none=True)
    title = fields.String(allow_none=True, metadata={"description": "An observation's title"})
    survey_id = fields.UUID(allow_none=True)
    response_id = fields.UUID(allow_none=True)
    metric = fields.String(allow_none=True, metadata={"description": "csat or nps"})
    answer = fields.Integer(allow_none=True)


class QualityFileActionSchema(Schema):
    id = fields.UUID()
    title = fields.String()
    source = fields.String()
    status = fields.String()
    record_id = fields.UUID(allow_none=True)
    standard_code = fields.String(allow_none=True)
    item_code = fields.String(allow_none=True)
    owner_id = fields.UUID(allow_none=True)
    due_at = fields.AwareDateTime(allow_none=True)
    overdue = fields.Boolean()
    created_at = fields.AwareDateTime()
    done_at = fields.AwareDateTime(allow_none=True)
    verified_at = fields.AwareDateTime(allow_none=True)


def _list_of(item_schema, **extra):
    """``{total, items}``: the first ``limit`` rows and how many there are."""
    return type(f"{item_schema.__name__.removesuffix('Schema')}ListSchema", (Schema,), {
        "total": fields.Integer(), **extra, "items": fields.List(fields.Nested(item_schema))})


class QualityFileTrendSchema(Schema):
    month = fields.String(metadata={"description": "Tenant-local month, e.g. 2026-03"})
    evaluations = fields.Integer()
    score = fields.Float(allow_none=True)
    pass_rate = fields.Float(allow_none=True)


class QualityFileRankSchema(Schema):
    metric = fields.String()
    rank = fields.Integer(allow_none=True, metadata={"description": "1 is the best; ties share a rank"})
    out_of = fields.Integer(metadata={"description": "How many have a score in the period"})
    value = fields.Float(allow_none=True)


class QualityFileRanksSchema(Schema):
    within_site = fields.Nested(QualityFileRankSchema, allow_none=True)
    within_tenant = fields.Nested(QualityFileRankSchema)


class QualityFileLedgerSchema(Schema):
    reward_points = fields.Float()
    penalty_points = fields.Float()
    entries = fields.Integer(metadata={"description": "Entries not voided"})
    held = fields.Integer(metadata={"description": "Held while their evaluation is disputed"})
    open_flags = fields.Integer(metadata={"description": "Repeat-fault flags open"})


class QualityFileSchema(FileSectionFields):
    subject = fields.Nested(QualityFileSubjectSchema)
    period = fields.Nested(QualityFilePeriodSchema)
    summary = fields.Nested(QualityFileSummarySchema)
    evaluations = fields.Nested(_list_of(QualityFileEvaluationSchema))
    findings = fields.Nested(_list_of(QualityFileFindingSchema))
    complaints = fields.Nested(_list_of(QualityFileComplaintSchema))
    praise = fields.Nested(_list_of(QualityFilePraiseSchema))
    actions = fields.Nested(_list_of(QualityFileActionSchema, open=fields.Integer(),
                                     closed=fields.Integer(), overdue=fields.Integer()))
    trends = fields.List(fields.Nested(QualityFileTrendSchema))
    rank = fields.Nested(QualityFileRanksSchema)
    ledger = fields.Nested(QualityFileLedgerSchema, metadata={
        "description": "A person's file only: rewards and penalties of the months the period touches"})


# -- the routes --------------------------------------------------------------------------


def _period(args: dict):
    """``[since, until)`` in UTC: until defaults to now, since to 90 days before until."""
    until = args.get("until")
    until = until.astimezone(timezone.utc) if until is not None else utcnow()
    since = args.get("since")
    if since is not None:
        since = since.astimezone(timezone.utc)
        if since >= until:
            abort(422, message="'since' must be before 'until'.",
                  errors={"query": {"since": ["'since' must be before 'until'."]}})
    else:
        try:
            since = until - timedelta(days=DEFAULT_DAYS)
        except OverflowError:
            since = UTC_MIN
    return since, until


def _build(args: dict, subject: str, subject_id, **extra) -> dict:
    session = request_session()
    since, until = _period(args)
    kinds = enabled_kinds()
    out = quality_file(FileQuery(
        session=session, subject=subject, subject_id=subject_id, since=since, until=until,
        timezone=g.tenant.timezone, limit=args["limit"], kinds=tuple(kinds),
        role=g.membership.role, now=utcnow(), **extra))
    complaints = out["complaints"]["items"]
    personal = kinds[COMPLAINT].personal if COMPLAINT in kinds else ()
    if audit_personal_reads(complaints, kinds, "quality_file"):
        session.commit()
    clear = sees_personal_data()
    out["complaints"]["items"] = [
        {"id": c.id, "occurred_at": c.occurred_at, "status": c.status, "site_id": c.site_id,
         "staff_id": c.staff_id, "via": "subject" if c.direct else "record",
         "data": c.data if clear else mask_paths(c.data, personal)} for c in complaints]
    out["period"] = {"since": since, "until": until, "timezone": g.tenant.timezone}
    return out


@blp.route("/staff/<uuid:staff_id>/quality-file")
class StaffQualityFile(MethodView):
    @require("read")
    @blp.arguments(QualityFileArgs(), location="query")
    @blp.response(200, QualityFileSchema)
    def get(self, args, staff_id):
        """A member of staff's quality file: their records' evaluations and findings,
        complaints and praise about them, corrective actions on their records or owned by
        their user, monthly trends and their rank within their site and the tenant."""
        staff = get_staff(staff_id)
        out = _build(args, "staff", staff.id, user_id=staff.user_id, site_id=staff.site_id)
        out["subject"] = {"type": "staff", "id": staff.id, "code": staff.code, "name": staff.name,
                          "site_id": staff.site_id}
        return out


@blp.route("/sites/<uuid:site_id>/quality-file")
class SiteQualityFile(MethodView):
    @require("read")
    @blp.arguments(QualityFileArgs(), location="query")
    @blp.response(200, QualityFileSchema)
    def get(self, args, site_id):
        """A site's quality file: its records' evaluations and findings, complaints and
        praise about it, corrective actions on its records, monthly trends and its rank
        within the tenant."""
        site = get_site(site_id)
        out = _build(args, "site", site.id)
        out["subject"] = {"type": "site", "id": site.id, "code": site.code, "name": site.name,
                          "site_id": None}
        return out
