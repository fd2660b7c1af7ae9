"""The OpenAPI description of the weekly report's answers: the JSON document (typed, so a
generated client gets a model) and the files (CSV, Excel, PDF) as binary bodies. Only
documentation: the report is built by :mod:`core.reports.weekly` and sent as it is."""

from __future__ import annotations

from marshmallow import Schema, fields

from servq.core.api.openapi import binary_content

#: The weekly report as a file, by format; JSON is also the typed 200 of the route.
FILE_CONTENT_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


class ReportTenantSchema(Schema):
    slug = fields.String(required=True)
    name = fields.String(required=True)


class ReportPeriodSchema(Schema):
    start_date = fields.Date(required=True, metadata={"description": "Monday of the week"})
    end_date = fields.Date(required=True, metadata={"description": "Sunday of the week"})
    since = fields.String(required=True, metadata={"description": "ISO 8601 instant the week starts"})
    until = fields.String(required=True, metadata={"description": "ISO 8601 instant the week ends"})


class WeeklyReportSchema(Schema):
    """The weekly quality-meeting report (``format=json``); docs/reports.md describes each part."""

    report = fields.String(required=True, metadata={"enum": ["weekly"]})
    tenant = fields.Nested(ReportTenantSchema, required=True)
    week = fields.String(required=True, metadata={"description": "ISO week, e.g. 2026-W47"})
    language = fields.String(required=True, metadata={"enum": ["en", "zh"]})
    timezone = fields.String(required=True)
    period = fields.Nested(ReportPeriodSchema, required=True)
    as_of = fields.String(required=True, metadata={"description": "ISO 8601 instant the numbers are as of"})
    weeks = fields.List(fields.String(), required=True,
                        metadata={"description": "The report's week and the four before, oldest first"})
    kpis = fields.List(fields.Dict(), required=True,
                       metadata={"description": "One row per metric: each week's value, the change, the mean"})
    skipped_metrics = fields.List(fields.String(), required=True)
    top_failures = fields.Dict(required=True, metadata={"description": "Pareto of the week's failed items"})
    breaches = fields.Dict(required=True, metadata={"description": "The week's missed deadline clocks"})
    open_actions = fields.Dict(required=True, metadata={"description": "Corrective actions open at as_of"})
    sites = fields.Dict(required=True, metadata={"description": "Best and worst sites by mean score"})
    staff = fields.Dict(required=True, metadata={"description": "Best and worst staff by mean score"})


#: The 200 of the weekly report: the typed JSON, and the files as binary bodies.
WEEKLY_DOC = {"responses": {200: {"content": {
    "application/json": {"schema": WeeklyReportSchema},
    **binary_content(*FILE_CONTENT_TYPES.values())}}}}
#: A report run's file, by the run's format: every one binary (the JSON one too: it is a
#: file here; the binary types first, as generators take the first type they know).
RUN_FILE_DOC = {"responses": {200: {"content": binary_content(
    *reversed(FILE_CONTENT_TYPES.values()), "application/json")}}}
