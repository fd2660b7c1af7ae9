"""The response schemas of the quality file's grown sections (guide: docs/quality-files.md):
disputes of the listed evaluations, a manager's team, the SERVQUAL dimension index and
repeat offences. The queries are in :mod:`core.kpis.quality_people` and
:mod:`core.kpis.quality_dimensions`; :mod:`core.api.quality_files` nests these."""

from __future__ import annotations

from marshmallow import Schema, fields


class QualityFileDisputeSchema(Schema):
    id = fields.UUID()
    status = fields.String(metadata={"description": "open, decided, appealed, closed, withdrawn"})
    result = fields.String(allow_none=True, metadata={
        "description": "accepted, partially_accepted or rejected once decided"})
    original_percent = fields.Float(allow_none=True, metadata={"description": "The percent when filed"})
    final_percent = fields.Float(allow_none=True, metadata={"description": "The percent once decided"})
    filed_at = fields.AwareDateTime()


class EvaluationDisputeFields(Schema):
    """Fields the evaluation rows of a file gain (a base of their schema)."""

    original_percent = fields.Float(allow_none=True, metadata={
        "description": "The rules' percent before a decided dispute overrode items (null: none "
                       "did); percent is the final one"})
    disputed = fields.Boolean(metadata={"description": "A dispute of it is open now"})
    dispute = fields.Nested(QualityFileDisputeSchema, allow_none=True, metadata={
        "description": "Its latest dispute, if any"})


class SummaryDisputeFields(Schema):
    """Fields the summary of a file gains (a base of its schema)."""

    disputes_filed = fields.Integer(metadata={
        "description": "Disputes of the subject's records of the period"})
    disputes_open = fields.Integer(metadata={"description": "Of them, open or appealed"})
    disputes_overturned = fields.Integer(metadata={
        "description": "Of them, accepted wholly or partly by their last decision"})


class QualityFileTeamFigures(Schema):
    evaluations = fields.Integer()
    score = fields.Float(allow_none=True, metadata={"description": "Mean evaluation percent"})
    pass_rate = fields.Float(allow_none=True, metadata={"description": "% of judged evaluations passed"})
    critical_failures = fields.Integer()
    disputes_open = fields.Integer(metadata={"description": "Evaluations under an open dispute"})
    complaints = fields.Integer()


class QualityFileTeamMemberSchema(QualityFileTeamFigures):
    staff_id = fields.UUID()
    code = fields.String()
    name = fields.String()
    site_id = fields.UUID(allow_none=True)


class QualityFileTeamSummarySchema(QualityFileTeamFigures):
    members = fields.Integer(metadata={"description": "Direct reports"})


class QualityFileTeamSchema(Schema):
    summary = fields.Nested(QualityFileTeamSummarySchema)
    members = fields.List(fields.Nested(QualityFileTeamMemberSchema))


class QualityFileDimensionSchema(Schema):
    dimension = fields.String(allow_none=True, metadata={
        "description": "tangibles, reliability, responsiveness, assurance, empathy"})
    items = fields.Integer(metadata={"description": "Judged item outcomes (pass, fail, breached)"})
    failures = fields.Integer(metadata={"description": "Of them, fail or breached"})
    points = fields.Float()
    max_points = fields.Float()
    percent = fields.Float(allow_none=True, metadata={"description": "points of max_points, %"})
    lost = fields.Float(metadata={"description": "max_points - points"})


class QualityFileRepeatOffenceSchema(Schema):
    month = fields.String(metadata={"description": "Tenant-local month, e.g. 2026-03"})
    standard_code = fields.String()
    item_code = fields.String()
    failures = fields.Integer()
    threshold = fields.Integer(metadata={"description": "Failures in a month that make a repeat offence"})


class QualityFileRepeatComplaintsSchema(Schema):
    month = fields.String(metadata={"description": "Tenant-local month, e.g. 2026-03"})
    complaints = fields.Integer()
    threshold = fields.Integer(metadata={"description": "Complaints in a month that make a repeat offence"})


class FileSectionFields(Schema):
    """Sections a file gains (a base of its schema)."""

    team = fields.Nested(QualityFileTeamSchema, allow_none=True, metadata={
        "description": "A manager's direct reports (staff.reports_to); null for anyone else"})
    dimensions = fields.List(fields.Nested(QualityFileDimensionSchema), metadata={
        "description": "Staff quality index by SERVQUAL dimension"})
    repeat_offences = fields.List(fields.Nested(QualityFileRepeatOffenceSchema), metadata={
        "description": "Items failed 3 or more times in one calendar month"})
    repeat_complaints = fields.List(fields.Nested(QualityFileRepeatComplaintsSchema), metadata={
        "description": "Calendar months with 3 or more complaints about the subject"})
