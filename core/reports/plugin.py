"""Reports' core plugin: the job that builds a report too large for a request.

Registered in ``DEFAULT_PLUGINS``. ``GET /api/v1/reports/weekly`` stores a ``report_runs``
row and enqueues :func:`build_report_run` with its id (tenant id first, as every job);
the job builds the file with the same code as the request would have
(:func:`core.reports.weekly_file`), counted as of the instant the report was asked for,
so the file is the one the request would have answered with.
"""

from __future__ import annotations

from servq.core.jobs import build_row
from servq.core.models import ReportRun
from servq.core.plugins import Job, hookimpl


def build_report_run(session, run_id: str) -> str | None:
    """Build report run ``run_id`` of the session's tenant and store its file
    (:func:`core.jobs.build_row`: idempotent, a failure is recorded and retried).

    :return: the run's final status, or ``None`` when it no longer exists.
    """
    from servq.core.reports import weekly_file

    def build(run: ReportRun) -> None:
        if run.report != "weekly":
            raise ValueError(f"unknown report {run.report!r}")
        built = weekly_file(session, run.period, run.format, run.language, now=run.created_at)
        run.content, run.content_type, run.filename = built.content, built.content_type, built.filename

    return build_row(session, ReportRun, run_id, build)


@hookimpl
def register_jobs():
    return [Job("reports.build", build_report_run)]
