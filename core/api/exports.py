"""Tenant data exports: request one, watch it being built, download the JSON document."""

from __future__ import annotations

import gzip
import uuid

from flask import Response, g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields
from sqlalchemy import select
from sqlalchemy.orm import defer

from servq.core.api.app import API_PREFIX
from servq.core.api.blueprint import Blueprint
from servq.core.api.context import actor_id, require
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.audit import audit
from servq.core.db.session import request_session
from servq.core.jobs import enqueue
from servq.core.models import TenantExport

#: The job that builds an export, registered by ``servq.tenants.export_job`` (core never
#: imports the tenant lifecycle; the job is found by its stable name).
EXPORT_JOB = "exports.build"

URL = "/tenant/exports"
PREFIX = f"{API_PREFIX}{URL}"
blp = Blueprint("exports", __name__,
                description="Exports of all of a tenant's data, built in the background.")

STATUSES = ("queued", "running", "done", "failed")


class ExportSchema(Schema):
    id = fields.UUID(dump_only=True)
    status = fields.String(dump_only=True, metadata={"enum": list(STATUSES)})
    created_at = fields.AwareDateTime(dump_only=True)
    started_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    finished_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    row_count = fields.Integer(dump_only=True, allow_none=True,
                               metadata={"description": "Tenant-owned rows in the document"})
    error = fields.String(dump_only=True, allow_none=True)
    links = fields.Method("_links", dump_only=True,
                          metadata={"type": "object", "properties": {
                              "self": {"type": "string"}, "file": {"type": "string"}}})

    def _links(self, export) -> dict:
        return {"self": f"{PREFIX}/{export.id}", "file": f"{PREFIX}/{export.id}/file"}


def get_export(export_id: uuid.UUID) -> TenantExport:
    """The current tenant's export or 404."""
    export = request_session().scalar(
        select(TenantExport).where(TenantExport.id == export_id).options(defer(TenantExport.content)))
    if export is None:
        abort(404, message="Export not found.")
    return export


@blp.route("")
class Exports(MethodView):
    @require("admin")
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, ExportSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """List exports, newest first."""
        # The documents stay in the database: a list of exports must not load them.
        stmt = (select(TenantExport).options(defer(TenantExport.content))
                .order_by(TenantExport.created_at.desc(), TenantExport.id))
        headers = {}
        return paginate(request_session(), stmt, args, headers), 200, headers

    @require("admin")
    @blp.response(202, ExportSchema)
    def post(self):
        """Request an export of all of the tenant's data.

        The export is built by a background job once this request has committed; poll
        ``links.self`` until ``status`` is ``done``, then download ``links.file``.
        """
        session = request_session()
        export = TenantExport(id=uuid.uuid4(), status="queued", requested_by=actor_id())
        session.add(export)
        session.flush()
        audit(session, "tenant_exports", export.id, "requested", actor_id())
        enqueue(session, EXPORT_JOB, g.tenant.id, str(export.id), job_id=str(export.id))
        session.commit()
        # Without Redis the job has run during commit: answer with what is true now.
        session.refresh(export, ["status", "started_at", "finished_at", "row_count", "error"])
        return export


@blp.route("/<uuid:export_id>")
class ExportById(MethodView):
    @require("admin")
    @blp.response(200, ExportSchema)
    def get(self, export_id):
        """Get an export's status."""
        return get_export(export_id)


EXPORT_DOCUMENT = {"type": "object", "additionalProperties": True,
                   "description": "servq-export version 1: every row of the tenant, by table"}


@blp.route("/<uuid:export_id>/file")
class ExportFile(MethodView):
    @require("admin")
    @blp.response(200, description="The export document (servq-export, version 1): JSON, sent "
                                   "as an attachment")
    @blp.doc(responses={200: {"content": {"application/json": {"schema": EXPORT_DOCUMENT}}}})
    @blp.alt_response(409, description="The export is not done (queued, running or failed)")
    def get(self, export_id):
        """Download an export's JSON document."""
        export = get_export(export_id)
        if export.status != "done" or export.content is None:
            if export.status == "failed":
                abort(409, message=f"The export failed ({export.error}); request a new one.")
            abort(409, message=f"The export is {export.status}, not done yet; "
                               "poll its status and try again.")
        name = f"servq-export-{g.tenant.slug}-{export.created_at:%Y%m%dT%H%M%SZ}.json"
        return Response(gzip.decompress(export.content), mimetype="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
