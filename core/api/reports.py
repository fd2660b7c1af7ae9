"""Reports: the weekly quality-meeting report as JSON, CSV, Excel or PDF.

A week with many records (more than ``REPORT_INLINE_MAX_RECORDS``), or a request with
``async=true``, is built by a job: the answer is ``202`` with the run and a ``Location``
to poll; its file is at ``/reports/runs/<id>/file`` once ``done``. See docs/reports.md.
"""

from __future__ import annotations

import uuid

from flask import Response, current_app, g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validate, validates
from sqlalchemy import select
from sqlalchemy.orm import defer

from servq.core.api.app import API_PREFIX
from servq.core.api.blueprint import Blueprint
from servq.core.api.context import actor_id, require
from servq.core.api.report_schemas import RUN_FILE_DOC, WEEKLY_DOC
from servq.core.db.session import request_session
from servq.core.db import utcnow
from servq.core.jobs import enqueue
from servq.core.kpis import KpiError
from servq.core.models import ReportRun
from servq.core.reports import FORMATS, ReportFile, render
from servq.core.reports.plugin import build_report_run
from servq.core.reports.weekly import (LANGUAGES, WeekError, build_weekly, parse_week, previous_week_key,
                                 report_timezone, week_bounds, week_record_count)

URL = "/reports"
PREFIX = f"{API_PREFIX}{URL}"
blp = Blueprint("reports", __name__,
                description="Reports for the weekly quality meeting, as JSON, CSV, Excel or PDF.")

STATUSES = ("queued", "running", "done", "failed")


class WeeklyArgs(Schema):
    week = fields.String(metadata={"description": "ISO week, e.g. 2026-W47, in the tenant's time "
                                                  "zone (default: the week before the current one)"})
    fmt = fields.String(data_key="format", load_default="json", validate=validate.OneOf(FORMATS),
                        metadata={"description": "json, csv, xlsx or pdf"})
    lang = fields.String(validate=validate.OneOf(LANGUAGES),
                         metadata={"description": "en or zh (default: the tenant's locale)"})
    run_async = fields.Boolean(data_key="async", load_default=False,
                               metadata={"description": "Build it as a job even when small"})

    @validates("week")
    def _week(self, value, **_kwargs):
        try:
            parse_week(value)
        except WeekError as exc:
            raise ValidationError(str(exc)) from None


class ReportRunSchema(Schema):
    id = fields.UUID(dump_only=True)
    report = fields.String(dump_only=True)
    period = fields.String(dump_only=True, metadata={"description": "The week, e.g. 2026-W47"})
    format = fields.String(dump_only=True)
    language = fields.String(dump_only=True)
    status = fields.String(dump_only=True, metadata={"enum": list(STATUSES)})
    filename = fields.String(dump_only=True, allow_none=True)
    error = fields.String(dump_only=True, allow_none=True)
    created_at = fields.AwareDateTime(dump_only=True)
    finished_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    links = fields.Method("_links", dump_only=True,
                          metadata={"type": "object", "properties": {
                              "self": {"type": "string"}, "file": {"type": "string"}}})

    def _links(self, run) -> dict:
        return {"self": f"{PREFIX}/runs/{run.id}", "file": f"{PREFIX}/runs/{run.id}/file"}


def default_language() -> str:
    locale = (g.tenant.locale or "").lower()
    return "zh" if locale.startswith("zh") else "en"


def file_response(built: ReportFile) -> Response:
    if built.content_type == "application/json":
        return Response(built.content, mimetype="application/json")
    return Response(built.content, content_type=built.content_type,
                    headers={"Content-Disposition": f'attachment; filename="{built.filename}"'})


@blp.route("/weekly")
class Weekly(MethodView):
    @require("read")
    @blp.arguments(WeeklyArgs(), location="query")
    # Documented, not dumped (WEEKLY_DOC): the view answers a ready Response or the 202.
    @blp.response(200, description="The report: JSON, or the file (CSV, xlsx, PDF) as an attachment")
    @blp.doc(**WEEKLY_DOC)
    @blp.alt_response(202, schema=ReportRunSchema,
                      description="Built by a job: poll the run at Location, then fetch its file",
                      headers={"Location": {"description": "The run's URL, to poll",
                                            "schema": {"type": "string"}}})
    def get(self, args):
        """The weekly quality-meeting report.

        The week's KPIs against the four weeks before, the Pareto of failed items, the
        deadline breaches, the open corrective actions, and the best and worst sites and
        staff by mean score. A week with more records than the inline limit, or
        ``async=true``, is built by a job (``202``).
        """
        session = request_session()
        now = utcnow()
        tz = report_timezone(session)
        week = args.get("week") or previous_week_key(now, tz)
        language = args.get("lang") or default_language()
        fmt = args["fmt"]
        limit = int(current_app.config.get("REPORT_INLINE_MAX_RECORDS") or 20000)
        if args["run_async"] or week_record_count(session, week_bounds(week, tz)) > limit:
            return queue_run(session, week, fmt, language)
        try:
            data = build_weekly(session, week, language, now)
        except KpiError as exc:  # a metric refused the request: nothing a client can fix but say so
            abort(422, message=str(exc), errors=exc.errors)
        return file_response(render(data, fmt))


def queue_run(session, week: str, fmt: str, language: str):
    """Store a run and enqueue its job (after commit); answer 202 with where to poll."""
    run = ReportRun(id=uuid.uuid4(), report="weekly", period=week, format=fmt, language=language,
                    status="queued", created_by=actor_id(), created_at=utcnow())
    session.add(run)
    session.flush()
    enqueue(session, build_report_run, g.tenant.id, str(run.id), job_id=str(run.id))
    session.commit()
    # Without Redis the job has run during commit: answer with what is true now.
    session.refresh(run, ["status", "finished_at", "error", "filename"])
    location = f"{PREFIX}/runs/{run.id}"
    return ReportRunSchema().dump(run), 202, {"Location": location}


def get_run(run_id: uuid.UUID) -> ReportRun:
    """The current tenant's report run (without its file) or 404."""
    run = request_session().scalar(
        select(ReportRun).where(ReportRun.id == run_id).options(defer(ReportRun.content)))
    if run is None:
        abort(404, message="Report run not found.")
    return run


@blp.route("/runs/<uuid:run_id>")
class RunById(MethodView):
    @require("read")
    @blp.response(200, ReportRunSchema)
    def get(self, run_id):
        """A report run's status."""
        return get_run(run_id)


@blp.route("/runs/<uuid:run_id>/file")
class RunFile(MethodView):
    @require("read")
    @blp.response(200, description="The report file")
    @blp.doc(**RUN_FILE_DOC)
    @blp.alt_response(409, description="The run is not done (queued, running or failed)")
    def get(self, run_id):
        """Download a finished report run's file."""
        run = get_run(run_id)
        if run.status != "done":
            if run.status == "failed":
                abort(409, message=f"The report failed ({run.error}); request it again.")
            abort(409, message=f"The report is {run.status}, not done yet; poll its status and try again.")
        content = request_session().scalar(select(ReportRun.content).where(ReportRun.id == run_id))
        return file_response(ReportFile(content or b"", run.content_type or "application/octet-stream",
                                        run.filename or f"report-{run.id}"))
