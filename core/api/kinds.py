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

URL = "/kinds"
blp = Blueprint("kinds", __name__,
                description="The record kinds this tenant may use and the shape of their data.")

OPENAPI_VERSION = "3.0.3"


class KindTitleSchema(Schema):
    en = fields.String()
    zh = fields.String()


class KindSchema(Schema):
    name = fields.String(metadata={"description": "The value of a record's kind"})
    plugin = fields.String(metadata={"description": "Id of the plugin that registered it"})
    title = fields.Nested(KindTitleSchema)
    description = fields.String()
    statuses = fields.List(fields.String(), metadata={"description": "The first is the initial one"})
    data_schema = fields.Dict(metadata={"description": "JSON schema of a record's data"})


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
