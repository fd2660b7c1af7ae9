"""Standards: the shipped catalogue, the tenant's versions, overrides and diffs.

Reading the catalogue adopts the shipped standards the tenant sees and has not adopted
yet (each becomes the tenant's version 1), so every list is one SQL query over stored
versions. ``title`` fields come in the request's ``Accept-Language`` (``en`` or ``zh``;
default: the tenant's locale), with both languages in ``titles``.
"""

from __future__ import annotations

import uuid
from typing import Any, Mapping

from flask import g, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select
from werkzeug.http import quote_etag

from servq.core.api.args import Int
from servq.core.api.blueprint import CREATED_HEADERS_DOC, Blueprint
from servq.core.api.context import actor_id, require
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.audit import audit
from servq.core.db.session import request_session
from servq.core.jobs import enqueue
from servq.core.models import StandardRescore, StandardVersion
from servq.core.records.pipeline import utc_instant
from servq.core.standards import catalogue
from servq.core.standards.overrides import diff
from servq.core.records.rescore import rescore_standard
from servq.core.standards.changes import baseline_document, change_standard, visible_row
from servq.core.standards.store import (StandardConflict, StandardInvalid, StandardNotFound,
                                  adopt_visible, in_force_stmt, standard_in_force, visible_filter)

URL = "/standards"
blp = Blueprint("standards", __name__, description="Standards: the shipped catalogue, the tenant's versions, overrides and diffs.")

LANGUAGES = ("en", "zh")
SOURCES = ("shipped", "custom")
RESCORE_STATUSES = ("queued", "running", "done", "failed")


@blp.record_once
def _load_catalogue(state) -> None:
    """Load rule types and shipped standards when the app is made: a plugin that breaks
    the contract stops ``create_app``."""
    catalogue.init_app(state.app)


# -- schemas ------------------------------------------------------------------------------


class TitlesSchema(Schema):
    en = fields.String()
    zh = fields.String()


class StandardSummarySchema(Schema):
    code = fields.String()
    title = fields.String(metadata={"description": "In the request's Accept-Language"})
    titles = fields.Nested(TitlesSchema)
    version = fields.Integer(metadata={"description": "The version in force"})
    applies_to = fields.List(fields.String(), metadata={"description": "Record kinds"})
    source = fields.String(metadata={"enum": list(SOURCES)})
    plugin = fields.String(allow_none=True, metadata={"description": "The shipping plugin"})
    baseline = fields.String(allow_none=True,
                             metadata={"description": "<plugin>:<code>@<shipped version>"})
    item_count = fields.Integer()
    updated_at = fields.AwareDateTime(metadata={"description": "When the version in force was stored"})


class GradeViewSchema(Schema):
    grade = fields.String()
    min = fields.Float()
    title = fields.String(allow_none=True)
    titles = fields.Nested(TitlesSchema, allow_none=True)


class ItemViewSchema(Schema):
    code = fields.String()
    title = fields.String()
    titles = fields.Nested(TitlesSchema)
    dimension = fields.String()
    weight = fields.Float()
    critical = fields.Boolean()
    bonus = fields.Boolean()
    fix_within = fields.String(allow_none=True)
    escalate_to = fields.List(fields.String())
    action_on_failure = fields.Boolean()
    kpi = fields.String(allow_none=True, metadata={
        "description": "response or resolution: which KPI times this deadline item feeds (GET /kpis)"})
    rule = fields.Dict(metadata={"description": "type and parameters"})


class StandardViewSchema(StandardSummarySchema):
    in_force = fields.Boolean()
    method = fields.String()
    pass_mark = fields.Float()
    base = fields.Float()
    grades = fields.List(fields.Nested(GradeViewSchema))
    items = fields.List(fields.Nested(ItemViewSchema))
    shipped_version = fields.Integer(allow_none=True, metadata={
        "description": "Version of the file the loaded plugin ships now (null: not shipped)"})
    overrides = fields.Dict(metadata={"description": "The tenant's overrides of the baseline"})
    note = fields.String(allow_none=True)
    created_by = fields.UUID(allow_none=True)
    document = fields.Dict(metadata={"description": "The whole stored document, both languages"})


class VersionSummarySchema(Schema):
    code = fields.String()
    version = fields.Integer()
    in_force = fields.Boolean()
    baseline = fields.String(allow_none=True)
    overrides = fields.Dict()
    note = fields.String(allow_none=True)
    created_by = fields.UUID(allow_none=True)
    created_at = fields.AwareDateTime()


class ChangeSchema(Schema):
    path = fields.String(metadata={"description": "e.g. items.response.rule.limit"})
    baseline = fields.Raw(allow_none=True)
    tenant = fields.Raw(allow_none=True)


class DiffSchema(Schema):
    code = fields.String()
    version = fields.Integer()
    baseline = fields.String(allow_none=True, metadata={
        "description": "What the version derives from; null for a standard of the tenant's own"})
    changes = fields.List(fields.Nested(ChangeSchema))


class DiffQuery(Schema):
    version = Int(min=1, metadata={"description": "Default: the version in force"})


class StandardListQuery(PageArgs):
    source = fields.String(validate=validate.OneOf(SOURCES))


class StandardChangeInSchema(Schema):
    overrides = fields.Dict(keys=fields.String(), metadata={
        "description": "Shipped standards: the whole override document (a merge patch over "
                       "the shipped standard; see docs/standards.md). Replaces the previous "
                       "overrides."})
    document = fields.Dict(keys=fields.String(), metadata={
        "description": "Standards of the tenant's own: the whole standard document"})
    note = fields.String(allow_none=True, validate=validate.Length(max=2000),
                         metadata={"description": "Why: stored with the new version"})

    @validates_schema
    def _one(self, data, **kwargs):
        if ("overrides" in data) == ("document" in data):
            raise ValidationError("Send either 'overrides' (shipped standards) or 'document' "
                                  "(standards of your own).")


class RescoreInSchema(Schema):
    since = fields.AwareDateTime(required=True, validate=utc_instant,
                                 metadata={"description": "occurred_at at or after"})
    until = fields.AwareDateTime(required=True, validate=utc_instant,
                                 metadata={"description": "occurred_at before"})

    @validates_schema
    def _ordered(self, data, **kwargs):
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError("'since' must be before 'until'.", "since")


class RescoreSchema(Schema):
    id = fields.UUID()
    job_id = fields.Function(lambda job: str(job.id))
    code = fields.String()
    version = fields.Integer(allow_none=True)
    since = fields.AwareDateTime()
    until = fields.AwareDateTime()
    status = fields.String(metadata={"enum": list(RESCORE_STATUSES)})
    total = fields.Integer(allow_none=True, metadata={"description": "Records in the range"})
    processed = fields.Integer(metadata={"description": "Records walked so far"})
    skipped = fields.Integer(metadata={
        "description": "Of those, records a rule cannot judge (they keep their evaluation)"})
    error = fields.String(allow_none=True)
    created_by = fields.UUID(allow_none=True)
    created_at = fields.AwareDateTime()
    started_at = fields.AwareDateTime(allow_none=True)
    finished_at = fields.AwareDateTime(allow_none=True)


# -- rendering ----------------------------------------------------------------------------


def language() -> str:
    """``en`` or ``zh``: the request's Accept-Language, else the tenant's locale."""
    if request.accept_languages:
        best = request.accept_languages.best_match(LANGUAGES)
        if best:
            return best
    locale = (getattr(g, "tenant", None) and g.tenant.locale) or "en"
    return "zh" if locale.lower().startswith("zh") else "en"


def _title(titles: Mapping[str, str] | None, lang: str) -> str | None:
    if not titles:
        return None
    return titles.get(lang) or titles.get("en") or titles.get("zh")


def _plugin(row: StandardVersion) -> str | None:
    return row.baseline.split(":", 1)[0] if row.baseline else None


def summary(row: StandardVersion, lang: str) -> dict[str, Any]:
    """The list entry of a version in force."""
    document = row.document
    return {
        "code": row.code, "title": _title(document.get("title"), lang),
        "titles": document.get("title"), "version": row.version,
        "applies_to": document.get("applies_to", []),
        "source": "shipped" if row.baseline else "custom", "plugin": _plugin(row),
        "baseline": row.baseline, "item_count": len(document.get("items") or []),
        "updated_at": row.created_at,
    }


def view(row: StandardVersion, lang: str, in_force: bool) -> dict[str, Any]:
    """The whole of one version, titles rendered in ``lang``."""
    document = row.document
    shipped = catalogue.shipped_standards().get(row.code)
    items = [{
        **{key: value for key, value in item.items() if key != "title"},
        "title": _title(item.get("title"), lang), "titles": item.get("title"),
        "fix_within": item.get("fix_within"), "escalate_to": item.get("escalate_to", []),
        "action_on_failure": item.get("action_on_failure", False), "kpi": item.get("kpi"),
    } for item in document.get("items") or []]
    grades = [{**grade, "title": _title(grade.get("title"), lang), "titles": grade.get("title")}
              for grade in document.get("grades") or []]
    return {
        **summary(row, lang), "in_force": in_force,
        "method": document.get("method"), "pass_mark": document.get("pass_mark"),
        "base": document.get("base"), "grades": grades, "items": items,
        "shipped_version": shipped.version if shipped is not None and row.baseline else None,
        "overrides": row.overrides or {}, "note": row.note, "created_by": row.created_by,
        "document": document,
    }


def etag_of(code: str, version: int) -> str:
    """The ETag of a standard: its version in force (versions never change)."""
    return blp._generate_etag({"code": code, "version": version})


def _vary(headers: dict) -> dict:
    headers["Vary"] = "Accept-Language"
    headers["Content-Language"] = language()
    return headers


def _adopt_for_read(session) -> None:
    """Store the shipped standards the tenant sees and has not adopted (first read)."""
    if adopt_visible(session, actor_id()):
        session.commit()


def in_force_or_404(session, code: str) -> StandardVersion:
    """The version in force of a standard the tenant sees (adopting on first read), or 404."""
    _adopt_for_read(session)
    row = visible_row(session, code)
    if row is None:
        abort(404, message=f"Standard {code!r} not found.")
    return row


# -- routes -------------------------------------------------------------------------------


@blp.route("")
class Standards(MethodView):
    @require("read")
    @blp.arguments(StandardListQuery(), location="query")
    @blp.response(200, StandardSummarySchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """List the tenant's standards (shipped ones it sees, and its own) by code."""
        session = request_session()
        _adopt_for_read(session)
        stmt = in_force_stmt(session).where(visible_filter(session))
        if args.get("source") == "shipped":
            stmt = stmt.where(StandardVersion.baseline.is_not(None))
        elif args.get("source") == "custom":
            stmt = stmt.where(StandardVersion.baseline.is_(None))
        headers: dict = {}
        rows = paginate(session, stmt, args, headers)
        lang = language()
        return [summary(row, lang) for row in rows], 200, _vary(headers)


@blp.route("/<code>")
class StandardByCode(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, StandardViewSchema)
    def get(self, code):
        """The version in force of a standard; send its ETag as If-Match to change it."""
        row = in_force_or_404(request_session(), code)
        blp.set_etag({"code": row.code, "version": row.version})
        return view(row, language(), True), 200, _vary({})

    @require("manage")
    @blp.arguments(StandardChangeInSchema())
    @blp.response(200, StandardViewSchema)
    @blp.alt_response(201, schema=StandardViewSchema, headers=CREATED_HEADERS_DOC,
                      description="A new standard of the tenant's own was defined")
    @blp.alt_response(428, description="The standard exists: send If-Match with its ETag")
    @blp.alt_response(412, description="The version in force changed since the ETag was read "
                                       "(or If-Match was sent for a standard that does not exist)")
    def put(self, body, code):
        """Store the next version of a standard.

        A shipped standard takes ``overrides`` (the whole override document, applied to
        the shipped baseline); a standard of the tenant's own takes its whole
        ``document``, and a new code defines a new one (no If-Match then). A result equal
        to the version in force stores nothing and answers that version.
        """
        session = request_session()
        _adopt_for_read(session)
        row = visible_row(session, code)
        expected = None
        if row is None and (code in catalogue.shipped_standards() or session.scalar(
                select(StandardVersion.id).where(StandardVersion.code == code).limit(1))):
            # Shipped by a plugin the tenant has not enabled (the ones it sees were
            # adopted above), or stored but hidden since the plugin was disabled.
            abort(404, message=f"Standard {code!r} not found.")
        if row is not None:
            if not request.if_match:
                abort(428, message=f"Standard {code!r} exists: send If-Match with the ETag of "
                                   f"GET /api/v1/standards/{code}.")
            if etag_of(code, row.version) not in request.if_match:
                abort(412, message=f"Standard {code!r} changed since you read it "
                                   f"(version {row.version} is in force); GET it again.")
            expected = row.version
        elif request.if_match:
            abort(412, message=f"There is no standard {code!r} to match If-Match; "
                               "send no If-Match to define it.")
        try:
            outcome, stored = change_standard(
                session, code, overrides=body.get("overrides"), document=body.get("document"),
                note=body.get("note"), actor_id=actor_id(), expected_version=expected)
        except StandardNotFound:
            session.rollback()
            abort(404, message=f"Standard {code!r} not found.")
        except StandardInvalid as error:
            session.rollback()
            abort(422, message=error.message, errors={"json": error.errors})
        except StandardConflict:
            session.rollback()
            abort(412, message=f"Standard {code!r} changed meanwhile; GET it again.")
        session.commit()
        headers = _vary({"ETag": quote_etag(etag_of(code, stored.version))})
        if outcome == "created":
            headers["Location"] = request.base_url
        return view(stored, language(), True), 201 if outcome == "created" else 200, headers


@blp.route("/<code>/versions")
class StandardVersions(MethodView):
    @require("read")
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, VersionSummarySchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args, code):
        """Every version of a standard, newest first."""
        session = request_session()
        current = in_force_or_404(session, code)
        stmt = (select(StandardVersion).where(StandardVersion.code == code)
                .order_by(StandardVersion.version.desc()))
        headers: dict = {}
        rows = paginate(session, stmt, args, headers)
        return [{"code": row.code, "version": row.version,
                 "in_force": row.version == current.version, "baseline": row.baseline,
                 "overrides": row.overrides or {}, "note": row.note,
                 "created_by": row.created_by, "created_at": row.created_at}
                for row in rows], 200, headers


def _version_or_404(session, code: str, version: int) -> tuple[StandardVersion, StandardVersion]:
    current = in_force_or_404(session, code)
    row = current if version == current.version else session.scalar(
        select(StandardVersion).where(StandardVersion.code == code,
                                      StandardVersion.version == version))
    if row is None:
        abort(404, message=f"Standard {code!r} has no version {version}.")
    return current, row


@blp.route("/<code>/versions/<version>", parameters=[
    {"in": "path", "name": "version", "description": "A version number (1, 2, …)",
     "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"}}])
class StandardVersionByNumber(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, StandardViewSchema)
    def get(self, code, version):
        """One version of a standard."""
        # A plain path segment (not <int:>), so that authentication answers first.
        if not version.isdigit() or not 0 < int(version) < 2**31:
            abort(404, message=f"Standard {code!r} has no version {version!r}.")
        current, row = _version_or_404(request_session(), code, int(version))
        blp.set_etag({"code": row.code, "version": row.version})
        return view(row, language(), row.version == current.version), 200, _vary({})


@blp.route("/<code>/diff")
class StandardDiff(MethodView):
    @require("read")
    @blp.arguments(DiffQuery(), location="query")
    @blp.response(200, DiffSchema)
    def get(self, args, code):
        """How the version in force (or ``?version=n``) differs from the shipped baseline.

        For a standard of the tenant's own ``baseline`` is null and ``changes`` empty.
        """
        session = request_session()
        if "version" in args:
            _, row = _version_or_404(session, code, args["version"])
        else:
            row = in_force_or_404(session, code)
        base = baseline_document(session, row)
        return {"code": row.code, "version": row.version, "baseline": row.baseline,
                "changes": diff(base, row.document) if base is not None else []}


@blp.route("/<code>/rescore")
class StandardRescoreRequest(MethodView):
    @require("manage")
    @blp.arguments(RescoreInSchema())
    @blp.response(202, RescoreSchema)
    def post(self, body, code):
        """Score again the records of the standard's kinds that occurred in ``[since, until)``.

        A background job; poll ``GET .../rescores/<job_id>`` for its progress.
        """
        session = request_session()
        found = standard_in_force(session, code)
        if found is None:
            abort(404, message=f"Standard {code!r} not found.")
        version, _ = found
        job = StandardRescore(id=uuid.uuid4(), code=code, version=version.version,
                              since=body["since"], until=body["until"], status="queued",
                              processed=0, skipped=0, created_by=actor_id())
        session.add(job)
        session.flush()
        audit(session, "standard_rescores", job.id, "requested", actor_id(),
              {"code": [None, code], "since": [None, body["since"].isoformat()],
               "until": [None, body["until"].isoformat()]})
        enqueue(session, rescore_standard, g.tenant.id, str(job.id), job_id=str(job.id))
        session.commit()
        # Without Redis the job has run during commit: answer with what is true now.
        session.refresh(job)
        return job


def _visible_code_or_404(session, code: str) -> None:
    in_force_or_404(session, code)


@blp.route("/<code>/rescores")
class StandardRescores(MethodView):
    @require("read")
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, RescoreSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args, code):
        """The re-score jobs of a standard, newest first."""
        session = request_session()
        _visible_code_or_404(session, code)
        stmt = (select(StandardRescore).where(StandardRescore.code == code)
                .order_by(StandardRescore.created_at.desc(), StandardRescore.id))
        headers: dict = {}
        return paginate(session, stmt, args, headers), 200, headers


@blp.route("/<code>/rescores/<uuid:rescore_id>")
class StandardRescoreById(MethodView):
    @require("read")
    @blp.response(200, RescoreSchema)
    def get(self, code, rescore_id):
        """A re-score job's status and progress."""
        session = request_session()
        _visible_code_or_404(session, code)
        job = session.scalar(select(StandardRescore).where(StandardRescore.id == rescore_id,
                                                           StandardRescore.code == code))
        if job is None:
            abort(404, message="Re-score job not found.")
        return job
