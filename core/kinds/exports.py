"""Core's export job: builds a tenant's data export in the background."""

from __future__ import annotations

import gzip
import logging
import uuid

from sqlalchemy import select

from core.db import utcnow
from core.models import TenantExport
from core.plugins import hookimpl

log = logging.getLogger(__name__)

#: Longest error text kept on a failed export.
MAX_ERROR = 2000


def run_export(session, export_id: str) -> str | None:
    """Build export ``export_id`` of the session's tenant and store it gzipped.

    Idempotent (rq delivers at least once): a finished export is left alone, a failed or
    interrupted one is built again. On failure the export is marked ``failed`` with the
    error and the exception is raised again so that rq retries.

    :return: the export's final status, or ``None`` when it no longer exists.
    """
    from tenants.export import dumps, export_tenant, row_count

    export_uuid = uuid.UUID(export_id)
    export = session.scalar(select(TenantExport).where(TenantExport.id == export_uuid))
    if export is None:
        log.warning("export %s not found (tenant deleted?); nothing to do", export_id)
        return None
    if export.status == "done":
        return export.status
    export.status, export.started_at, export.error = "running", utcnow(), None
    session.commit()
    try:
        document = export_tenant(session)
        export.content = gzip.compress(dumps(document))
        export.row_count = row_count(document)
        _audit_personal_reads(session, export)
        export.status, export.finished_at = "done", utcnow()
        session.commit()
    except Exception as exc:
        session.rollback()
        export = session.scalar(select(TenantExport).where(TenantExport.id == export_uuid))
        if export is not None:
            export.status, export.finished_at = "failed", utcnow()
            export.error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
            session.commit()
        raise
    return export.status


def _audit_personal_reads(session, export: TenantExport) -> int:
    """An export reads every record's personal data in clear (only admins may request
    one): audit it per record as the API does (:func:`core.personal.audit_reads`, ``via
    "export"``), in the name of whoever requested the export. Returns the events added."""
    from core.models import Record
    from core.personal import audit_reads
    from core.plugins_ext import get_plugins

    kinds = {name: kind for name, kind in get_plugins().kinds.items() if kind.personal}
    if not kinds:
        return 0
    rows = session.execute(select(Record.id, Record.kind, Record.data)
                           .where(Record.kind.in_(sorted(kinds))))
    return audit_reads(session, rows, kinds, export.requested_by, "export")


@hookimpl
def register_jobs():
    return [run_export]
