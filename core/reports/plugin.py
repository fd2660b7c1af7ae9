"""Reports' core plugin: the job that builds a report too large for a request.

Registered in ``DEFAULT_PLUGINS``. ``GET /api/v1/reports/weekly`` stores a ``report_runs``
row and enqueues :func:`build_report_run` with its id (tenant id first, as every job);
the job builds the file with the same code as the request would have
(:func:`core.reports.weekly_file`), counted as of the instant the report was asked for,
so the file is the one the request would have answered with.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select

from core.db import utcnow
from core.models import ReportRun
from core.plugins import hookimpl

log = logging.getLogger(__name__)

#: Longest error text kept on a failed run.
MAX_ERROR = 2000


def build_report_run(session, run_id: str) -> str | None:
    """Build report run ``run_id`` of the session's tenant and store its file.

    Idempotent (rq delivers at least once): a finished run is left alone; a failed or
    interrupted one is built again. On failure the run is marked ``failed`` with the
    error and the exception raised again, so that rq retries.

    :return: the run's final status, or ``None`` when it no longer exists.
    """
    from core.reports import weekly_file

    run_uuid = uuid.UUID(run_id)
    run = session.scalar(select(ReportRun).where(ReportRun.id == run_uuid))
    if run is None:
        log.warning("report run %s not found (tenant deleted?); nothing to do", run_id)
        return None
    if run.status == "done":
        return run.status
    if run.report != "weekly":
        raise ValueError(f"unknown report {run.report!r}")
    run.status, run.error = "running", None
    session.commit()
    try:
        built = weekly_file(session, run.period, run.format, run.language, now=run.created_at)
        run.content, run.content_type, run.filename = built.content, built.content_type, built.filename
        run.status, run.finished_at = "done", utcnow()
        session.commit()
    except Exception as exc:
        session.rollback()
        run = session.scalar(select(ReportRun).where(ReportRun.id == run_uuid))
        if run is not None:
            run.status, run.finished_at = "failed", utcnow()
            run.error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
            session.commit()
        raise
    return run.status


@hookimpl
def register_jobs():
    return [build_report_run]
