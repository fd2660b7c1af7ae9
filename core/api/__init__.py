"""The HTTP API: flask-smorest, OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs."""

from __future__ import annotations

import logging

import swagger_ui_bundle
from flask import Blueprint as FlaskBlueprint
from flask import Flask, g, send_from_directory
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask_smorest import Api, abort
from marshmallow import Schema
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

import core
from core.plugins_ext import get_plugins

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

API_DESCRIPTION = """\
servq scores every service record against the tenant's standards, watches every
deadline and turns failures into corrective actions.

**Authentication.** `POST /api/v1/auth/token` with `{tenant, email, password}` returns a
bearer token; send it as `Authorization: Bearer <token>`. The token decides the tenant.

**Conventions.** JSON in and out; timestamps are ISO 8601 with an offset. Lists take
`page` and `page_size` and describe the page in an `X-Pagination` header. Writes to an
existing object need `If-Match` with the object's `ETag` (428 without it, 412 when it is
stale). Errors have the shape `{code, status, message, errors}`. Another tenant's object
is a 404.
"""


def init_app(app: Flask) -> None:
    """Configure flask-smorest, register core's and the plugins' blueprints."""
    app.config.update(
        API_TITLE="servq",
        API_VERSION=core.__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=f"{API_PREFIX}/docs/assets/",
        API_SPEC_OPTIONS={
            "info": {"description": API_DESCRIPTION},
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer",
                                   "description": "A token from POST /api/v1/auth/token"}
                }
            },
        },
    )
    app.json.sort_keys = False
    api = Api(app, spec_kwargs={"marshmallow_plugin": MarshmallowPlugin(schema_name_resolver=schema_name)})
    app.extensions["servq.api"] = api

    from core.api import auth, exports, kinds, members, plugins, records, sites, staff

    for module in (auth, members, sites, staff, records, kinds, plugins, exports):
        api.register_blueprint(module.blp, url_prefix=f"{API_PREFIX}{module.URL}")

    for plugin_id, blueprints in get_plugins(app).contributions("register_blueprints"):
        for blp in blueprints:
            if blp.name != plugin_id:
                raise RuntimeError(f"plugin {plugin_id!r} registered blueprint {blp.name!r}: "
                                   "a plugin's blueprint is named after the plugin")
            blp.before_request(_plugin_gate(plugin_id))
            api.register_blueprint(blp, url_prefix=f"{API_PREFIX}/{plugin_id}")

    assets = FlaskBlueprint("docs_assets", __name__)

    @assets.route(f"{API_PREFIX}/docs/assets/<path:filename>")
    def docs_asset(filename):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)

    app.register_blueprint(assets)
    _register_error_handlers(app)


def schema_name(schema) -> str:
    """OpenAPI component name: the class name without ``Schema``; partial (PATCH) bodies
    get ``Patch`` appended so they do not clash with the full schema."""
    cls = resolve_schema_cls(schema)
    name = cls.__name__.removesuffix("Schema") or cls.__name__
    if isinstance(schema, Schema) and schema.partial:
        name += "Patch"
    return name


def _plugin_gate(plugin_id: str):
    """A plugin's routes answer 404 to tenants that have not enabled the plugin."""

    def gate():
        from core.api.context import authenticate_request
        from core.plugins_ext import tenant_enabled_plugins

        authenticate_request()
        if plugin_id not in tenant_enabled_plugins():
            abort(404, message="Not found.")
        return None

    return gate


def _register_error_handlers(app: Flask) -> None:
    api = app.extensions["servq.api"]

    @app.errorhandler(IntegrityError)
    def _integrity(exc):
        session = g.get("db")
        if session is not None:
            session.rollback()
        log.info("integrity error: %s", exc.orig)
        return api.handle_http_exception(_http(409, "This conflicts with existing data "
                                                    "(a duplicate code or a missing reference)."))

    @app.errorhandler(OperationalError)
    def _operational(exc):
        session = g.get("db")
        if session is not None:
            session.rollback()
        log.exception("database unavailable")
        return api.handle_http_exception(_http(503, "The database is busy or unavailable; retry."))

    @app.errorhandler(Exception)
    def _unexpected(exc):
        if isinstance(exc, HTTPException):
            return api.handle_http_exception(exc)
        session = g.get("db")
        if session is not None:
            session.rollback()
        log.exception("unhandled error")
        return api.handle_http_exception(_http(500, "Internal error."))


def _http(code: int, message: str) -> HTTPException:
    try:
        abort(code, message=message)
    except HTTPException as exc:
        return exc
    raise AssertionError("unreachable")
