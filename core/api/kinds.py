"""Record kinds: what a tenant may record, with the JSON schema of each kind's ``data``."""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields

from servq.core.api.blueprint import Blueprint
from servq.core.api.context import enabled_kinds, require
from servq.core.plugins import RecordKind
from servq.core.plugins.conditions import jsonable_conditions

URL = "/kinds"
blp = Blueprint("kinds", __name__,
                description="The record kinds this tenant may use and the shape of their data.")

OPENAPI_VERSION = "3.0.3"


class KindTitleSchema(Schema):
    en = fields.String()
    zh = fields.String()


class KindTransitionSchema(Schema):
    action = fields.String()
    title = fields.Nested(KindTitleSchema)
    sources = fields.List(fields.String(), metadata={"description": "The states it may be taken from"})
    target = fields.String()
    stamp = fields.String(allow_none=True, metadata={"description": "The timestamp it records"})
    requires = fields.Dict(metadata={
        "description": "Guards on the record's data, all of which must hold: {path: [values]} "
                       "(one of them) or {path: {present: bool, not: [values]}}; empty: none"})


class KindStalledSchema(Schema):
    after = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "{state: limit}: a record not moved for this long in the state is stalled"})
    notify = fields.List(fields.String(), metadata={"description": "Roles record.stalled goes to"})
    action = fields.Boolean(metadata={"description": "A stall also opens a corrective action"})


class KindWorkflowSchema(Schema):
    transitions = fields.List(fields.Nested(KindTransitionSchema))
    waiting = fields.List(fields.String(), metadata={"description": "States that pause the deadlines"})
    final = fields.List(fields.String(), metadata={"description": "States after which nothing runs"})
    stalled = fields.Nested(KindStalledSchema, allow_none=True, metadata={
        "description": "The stalled-record watch, or null"})


class KindSchema(Schema):
    name = fields.String(metadata={"description": "The value of a record's kind"})
    plugin = fields.String(metadata={"description": "Id of the plugin that registered it"})
    title = fields.Nested(KindTitleSchema)
    description = fields.String()
    statuses = fields.List(fields.String(), metadata={"description": "The first is the initial one"})
    data_schema = fields.Dict(metadata={"description": "JSON schema of a record's data"})
    workflow = fields.Nested(KindWorkflowSchema, allow_none=True, metadata={
        "description": "How its records move (POST /records/<id>/transitions), or null: "
                       "the status is set freely"})


def data_json_schema(kind: RecordKind) -> dict:
    """The JSON schema (OpenAPI flavour) of ``kind``'s data, nested schemas inlined."""
    # No name resolver: nested schemas are written in place, so the result stands alone
    # rather than pointing into components of a spec the client does not have.
    spec = APISpec("servq kinds", "1", OPENAPI_VERSION)
    converter = OpenAPIConverter(OPENAPI_VERSION, lambda _schema: None, spec)
    return converter.schema2jsonschema(kind.schema)


def describe(kind: RecordKind) -> dict:
    """What the API says about one kind."""
    return {
        "name": kind.name,
        "plugin": kind.plugin,
        "title": {"en": kind.title.get("en", kind.name), "zh": kind.title.get("zh", kind.title.get("en", kind.name))},
        "description": kind.description,
        "statuses": list(kind.statuses),
        "data_schema": data_json_schema(kind),
        "workflow": describe_workflow(kind),
    }


def _title(title: dict, default: str) -> dict:
    return {"en": title.get("en", default), "zh": title.get("zh", title.get("en", default))}


def describe_workflow(kind: RecordKind) -> dict | None:
    """The kind's workflow: its transitions (with their guards), waiting and final states
    and its stalled-record watch; ``None`` without a workflow."""
    workflow = kind.workflow
    if workflow is None:
        return None
    limits = workflow.stall_limits(tuple(kind.statuses))
    return {
        "transitions": [{"action": t.action, "title": _title(t.title, t.action), "sources": list(t.sources),
                         "target": t.target, "stamp": t.stamp,
                         "requires": jsonable_conditions(t.requires)} for t in workflow.transitions],
        "waiting": list(workflow.waiting),
        "final": list(workflow.final),
        "stalled": {"after": limits, "notify": list(workflow.stalled_notify),
                    "action": bool(workflow.stalled_action)} if limits else None,
    }


@blp.route("")
class Kinds(MethodView):
    @require("read")
    @blp.response(200, KindSchema(many=True))
    def get(self):
        """List the record kinds this tenant may use, by name (a short list: unpaginated)."""
        kinds = enabled_kinds()
        return [describe(kinds[name]) for name in sorted(kinds)]


@blp.route("/<string:name>")
class KindByName(MethodView):
    @require("read")
    @blp.response(200, KindSchema)
    def get(self, name):
        """One record kind; 404 when this tenant may not use it."""
        kind = enabled_kinds().get(name)
        if kind is None:
            abort(404, message=f"Record kind {name!r} not found.")
        return describe(kind)
