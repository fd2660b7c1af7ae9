"""The export job (``exports.build``): builds a tenant's data export in the background.

Registered as the core plugin ``core.kinds.exports`` (its stored id, see
``servq.core.config.CORE_PLUGINS``) from here, beside the export it builds, so that core
itself never imports the tenant lifecycle: ``POST /tenant/exports`` enqueues it by name."""

from __future__ import annotations

import gzip

from sqlalchemy import select

from servq.core.jobs import build_row
from servq.core.models import TenantExport
from servq.core.plugins import Job, hookimpl
from servq.tenants import export as tenant_export

#: The stable name the export job is queued under.
EXPORT_JOB = "exports.build"


def run_export(session, export_id: str) -> str | None:
    """Build export ``export_id`` of the session's tenant and store it gzipped
    (:func:`core.jobs.build_row`: idempotent, a failure is recorded and retried).

    :return: the export's final status, or ``None`` when it no longer exists.
    """
    def build(export: TenantExport) -> None:
        document = tenant_export.export_tenant(session)
        export.content = gzip.compress(tenant_export.dumps(document))
        export.row_count = tenant_export.row_count(document)
        _audit_personal_reads(session, export)

    return build_row(session, TenantExport, export_id, build)


def _audit_personal_reads(session, export: TenantExport) -> int:
    """An export reads every record's personal data in clear (only admins may request
    one): audit it per record as the API does (:func:`core.personal.audit_reads`, ``via
    "export"``), in the name of whoever requested the export. Returns the events added."""
    from servq.core.models import Record
    from servq.core.personal import audit_reads
    from servq.core.plugins.app import get_plugins

    kinds = {name: kind for name, kind in get_plugins().kinds.items() if kind.personal}
    if not kinds:
        return 0
    rows = session.execute(select(Record.id, Record.kind, Record.data)
                           .where(Record.kind.in_(sorted(kinds))))
    return audit_reads(session, rows, kinds, export.requested_by, "export")


@hookimpl
def register_jobs():
    return [Job(EXPORT_JOB, run_export)]
