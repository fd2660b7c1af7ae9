"""App plumbing of the HTTP API: flask-smorest, the blueprints of core and the plugins,
OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs."""

from __future__ import annotations

import threading

import swagger_ui_bundle
from flask import Blueprint as FlaskBlueprint
from flask import Flask, request, send_from_directory
from flask.sessions import NullSession, SessionInterface
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask_smorest import Api, abort
from marshmallow import Schema

from servq import __version__
from servq.core.api.errors import register_error_handlers, with_request_id
from servq.core.api.jsonio import JSONProvider
from servq.core.api.openapi import ServqMarshmallowPlugin, ServqSpecPlugin, finish_spec
from servq.core.db import contains_nul
from servq.core.plugins.app import get_plugins

API_PREFIX = "/api/v1"

API_DESCRIPTION = """\
servq scores every service record against the tenant's standards, watches every
deadline and turns failures into corrective actions.

**Authentication.** `POST /api/v1/auth/token` with `{tenant, email, password}` returns a
bearer token; send it as `Authorization: Bearer <token>`. The token decides the tenant.

**Conventions.** JSON in and out; timestamps are ISO 8601 with an offset. A query
argument is given once; several values of one are comma-separated (a repeat is a 422).
Lists take `page` and `page_size` and describe the page in an `X-Pagination` header. Writes to an
existing object need `If-Match` with the object's `ETag` (428 without it, 412 when it is
stale); of concurrent writers with the same `ETag` exactly one wins, the others get 412.
A `201 Created` carries `Location` (the new object's URL) and its `ETag` (the one a GET
returns), so it can be changed without a GET first. Errors have the shape `{code, status, message, errors, request_id}`. Another tenant's object
is a 404. Every response carries `X-Request-ID` (the client's, when it sends a sane one, or
a new one); quote it when reporting a problem. Rate-limited routes answer `RateLimit-Limit`,
`RateLimit-Remaining` and `RateLimit-Reset`, and `Retry-After` with a 429.
"""


def init_app(app: Flask) -> None:
    """Configure flask-smorest, register core's and the plugins' blueprints."""
    app.config.update(
        API_TITLE="servq",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=f"{API_PREFIX}/docs/assets/",
        # Swagger UI would otherwise send the document to validator.swagger.io and show
        # its badge: the docs must work offline and not leak the API description.
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
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
    # Responses and bodies through orjson, with Flask's results (servq.core.api.jsonio).
    app.json = JSONProvider(app)
    # Bearer tokens, never cookies: no signed cookie session to open on every request.
    app.session_interface = NoCookieSessions()
    api = LazyDocsApi(app, spec_kwargs=_spec_kwargs(app))
    app.extensions["servq.api"] = api

    from servq.core.api import (actions, auth, batch, calendar, calibration, clocks, disputes,
                                evaluations, exports, kb, kb_records, kinds, kpis, ledger, members, phrase_libraries, plugins,
                                public, quality_files, records, reports, reviews, schedules, settings, sites,
                                staff, standards, surveys, webhooks, workflows)

    # batch before records: /records/batch must not be read as a record id.
    for module in (auth, members, sites, staff, batch, records, evaluations, reviews, workflows,
                   clocks, kinds, plugins, standards, actions, calendar, schedules, webhooks, surveys,
                   public, exports, kpis, quality_files, reports, disputes, calibration,
                   phrase_libraries, kb, kb_records, ledger, settings):
        api.register_blueprint(module.blp, url_prefix=f"{API_PREFIX}{module.URL}")

    for plugin_id, blueprints in get_plugins(app).contributions("register_blueprints"):
        for blp in blueprints:
            if blp.name != plugin_id:
                raise RuntimeError(f"plugin {plugin_id!r} registered blueprint {blp.name!r}: "
                                   "a plugin's blueprint is named after the plugin")
            # The gate is attached to this app (keyed by blueprint name), not to the
            # plugin's module-level blueprint, which every app in the process shares.
            app.before_request_funcs.setdefault(blp.name, []).append(_plugin_gate(plugin_id))
            api.register_blueprint(blp, url_prefix=f"{API_PREFIX}/{plugin_id}")

    assets = FlaskBlueprint("docs_assets", __name__)

    @assets.route(f"{API_PREFIX}/docs/assets/<path:filename>")
    def docs_asset(filename):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)

    app.register_blueprint(assets)
    app.before_request(_refuse_nul_characters)
    register_error_handlers(app)
    # Probes, /metrics, request ids, the access log and CORS (docs/operations.md).
    from servq.core.api import ops

    ops.init_app(app)
    app.wsgi_app = _own_app_context(app, app.wsgi_app)


def _spec_kwargs(app: Flask) -> dict:
    """The OpenAPI document's plugins: operationIds, error responses and required
    response fields on every route, a plugin's included (:mod:`core.api.openapi`)."""
    return {"marshmallow_plugin": ServqMarshmallowPlugin(schema_name_resolver=schema_name),
            "extra_plugins": [ServqSpecPlugin(app)]}


class NoCookieSession(NullSession):
    """``flask.session`` under servq: always empty; writing to it is a programming error."""

    def _fail(self, *args, **kwargs):
        raise RuntimeError("servq keeps no cookie session: callers authenticate with bearer tokens")

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = _fail


class NoCookieSessions(SessionInterface):
    """Flask's session interface without cookies: Flask would otherwise build a signing
    serializer from ``SECRET_KEY`` on every request to look for a cookie nobody sets."""

    null_session_class = NoCookieSession

    def open_session(self, app, request):
        return self.make_null_session(app)

    def save_session(self, app, session, response) -> None:
        return None


class LazyDocsApi(Api):
    """flask-smorest's ``Api`` that documents blueprints when the OpenAPI document is
    first read rather than when they are registered.

    Resolving every schema of every route into the document is more than half of what
    ``create_app`` costs, and most apps never serve the document: a test's app, a CLI
    command's, a worker's. Routes are registered at once, as before; their documentation
    is added, in registration order, the first time ``api.spec`` is read (the
    ``/api/v1/openapi.json`` view, ``/api/v1/docs``). ``servq serve`` reads it before
    starting its workers, so a server builds it once and a broken schema stops it at
    start-up.
    """

    def __init__(self, *args, **kwargs):
        self._pending_docs: list[tuple] = []
        self._docs_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    @property
    def spec(self):
        spec = self.__dict__["_spec"]
        if self._pending_docs:
            with self._docs_lock:
                while self._pending_docs:
                    blp, name, parameters = self._pending_docs.pop(0)
                    blp.register_views_in_doc(self, self._app, spec, name=name, parameters=parameters)
                    spec.tag({"name": name, "description": blp.description})
                finish_spec(spec)
        return spec

    @spec.setter
    def spec(self, value):
        self.__dict__["_spec"] = value

    def handle_http_exception(self, error):
        """flask-smorest's JSON error, with the request's id (``request_id``)."""
        payload, code, headers = super().handle_http_exception(error)
        with_request_id(payload)
        return payload, code, headers

    def register_blueprint(self, blp, *, parameters=None, **options):
        """Register ``blp`` in the app now and in the OpenAPI document later (what
        ``Api.register_blueprint`` does, in two steps)."""
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._pending_docs.append((blp, name, parameters))


def _own_app_context(app: Flask, wsgi_app):
    """Serve every request in an application context of its own.

    Flask reuses an application context that is already pushed, and ``g`` lives there:
    under ``servq serve`` the CLI's context is inherited by every gunicorn worker, so
    without this the caller authenticated by one request (``g.membership``) and its
    session (``g.db``) would carry over to the next request, token or not. A fresh
    context gives each request its own ``g`` and closes its session when it ends.
    """

    def wsgi(environ, start_response):
        with app.app_context():
            return wsgi_app(environ, start_response)

    return wsgi


def schema_name(schema) -> str:
    """OpenAPI component name: the class name without ``Schema``; partial (PATCH) bodies
    get ``Patch`` appended so they do not clash with the full schema."""
    cls = resolve_schema_cls(schema)
    name = cls.__name__.removesuffix("Schema") or cls.__name__
    if isinstance(schema, Schema) and schema.partial:
        name += "Patch"
    return name


def _refuse_nul_characters():
    """422 for a NUL character anywhere in the query or the JSON body, naming the field.

    PostgreSQL cannot store NUL in text, and no field of servq has a use for it; refusing
    it once here keeps every schema and both databases answering the same way.
    """
    environ = request.environ
    query = environ.get("QUERY_STRING", "")
    # NUL reaches the query as %00 (or raw) and a JSON body as the escape \u0000 (or a
    # raw byte, which the parser refuses, or in UTF-16/32, which has zero bytes
    # everywhere); without those the request holds none and nothing need be parsed.
    query_may = "%00" in query or "\x00" in query
    body_may = False
    if request.is_json:
        raw = request.get_data(cache=True)
        body_may = b"\\u0000" in raw or b"\x00" in raw
    if not (query_may or body_may):
        return
    message = ["NUL characters are not allowed."]
    errors = {}
    bad_args = {k: message for k, v in request.args.items(multi=True) if "\x00" in k or "\x00" in v}
    if bad_args:
        errors["query"] = bad_args
    body = request.get_json(silent=True) if body_may else None
    if isinstance(body, dict):
        bad_fields = {k: message for k, v in body.items() if contains_nul(k) or contains_nul(v)}
        if bad_fields:
            errors["json"] = bad_fields
    elif contains_nul(body):
        errors["json"] = {"_schema": message}
    if errors:
        abort(422, message="NUL characters are not allowed.", errors=errors)


def _plugin_gate(plugin_id: str):
    """A plugin's routes answer 404 to tenants that have not enabled the plugin."""

    def gate():
        from servq.core.api.context import authenticate_request
        from servq.core.plugins.app import tenant_enabled_plugins

        authenticate_request()
        if plugin_id not in tenant_enabled_plugins():
            abort(404, message="Not found.")
        return None

    return gate
