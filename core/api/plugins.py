"""Plugins: which industry plugins are installed, and this tenant's settings for each."""

from __future__ import annotations

import hashlib
import json

from flask import request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields
from sqlalchemy import select

from servq.core.api.blueprint import Blueprint, lock_for_write
from servq.core.api.context import actor_id, require
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs
from servq.core.db.session import request_session
from servq.core.models import TenantPlugin
from servq.core.plugins.settings import (PluginConfigError, UnknownPlugin, configure_plugin,
                                  plugin_view, tenant_plugin)
from servq.core.plugins.app import get_plugins

URL = "/plugins"
blp = Blueprint("plugins", __name__,
                description="Installed plugins and this tenant's settings: enable, configure.")


class PluginSchema(Schema):
    id = fields.String(dump_only=True)
    description = fields.String(dump_only=True)
    package = fields.String(dump_only=True, allow_none=True)
    version = fields.String(dump_only=True, allow_none=True)
    kinds = fields.List(fields.String(), dump_only=True)
    enabled = fields.Boolean(dump_only=True, metadata={"description": "Active for this tenant"})
    configuration = fields.Dict(keys=fields.String(), dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True, allow_none=True)


class PluginSettingsSchema(Schema):
    active = fields.Boolean(required=True)
    configuration = fields.Dict(keys=fields.String(), load_default=dict,
                                metadata={"description": "Validated by the plugin's own schema"})


def view_etag(view: dict) -> str:
    """The ETag of a plugin view; the same value flask-smorest's ``@blp.etag`` derives from
    the GET response (SHA-1 of the sorted JSON dump), which the PUT cannot use as it must
    accept a first write without ``If-Match`` (see :meth:`PluginById.put`)."""
    data = json.dumps(PluginSchema().dump(view), sort_keys=True)
    return hashlib.sha1(data.encode()).hexdigest()


def _known(plugin_id: str) -> None:
    if plugin_id not in get_plugins().ids():
        abort(404, message=f"No plugin {plugin_id!r} is installed.")


@blp.route("")
class Plugins(MethodView):
    @require("read")
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, PluginSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """List the installed plugins with this tenant's settings, by id."""
        plugins = get_plugins()
        ids = plugins.ids()
        page, size = args["page"], args["page_size"]
        chosen = ids[(page - 1) * size: page * size]
        # One query for the page; the plugin list itself lives in memory, not in SQL.
        rows = {row.plugin_id: row for row in request_session().scalars(
            select(TenantPlugin).where(TenantPlugin.plugin_id.in_(chosen)))} if chosen else {}
        total_pages = max(1, -(-len(ids) // size))
        headers = {"X-Pagination": json.dumps({
            "page": page, "page_size": size, "total": len(ids), "total_exact": True,
            "total_pages": total_pages, "first_page": 1, "last_page": total_pages,
            "previous_page": page - 1 if page > 1 else None,
            "next_page": page + 1 if page * size < len(ids) else None,
        })}
        return [plugin_view(plugins, pid, rows.get(pid)) for pid in chosen], 200, headers


@blp.route("/<string:plugin_id>")
class PluginById(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, PluginSchema)
    def get(self, plugin_id):
        """Get a plugin with this tenant's settings."""
        _known(plugin_id)
        return plugin_view(get_plugins(), plugin_id, tenant_plugin(request_session(), plugin_id))

    @require("admin")
    @blp.arguments(PluginSettingsSchema())
    @blp.response(200, PluginSchema)
    @blp.alt_response(412, description="If-Match does not match the plugin's current ETag")
    @blp.alt_response(428, description="If-Match is required once the plugin has settings")
    @blp.doc(parameters=[{"in": "header", "name": "If-Match", "required": False,
                          "schema": {"type": "string"},
                          "description": "ETag of GET /plugins/<id>; required once settings exist"}])
    def put(self, body, plugin_id):
        """Enable or disable a plugin and set its configuration.

        ``configuration`` is validated by the plugin's own schema (a plugin without one
        accepts only ``{}``); a field it rejects is a 422 under
        ``errors.json.configuration.<field>``. The stored value is the loaded result,
        defaults included, and replaces the previous configuration as a whole.

        Concurrency: once the tenant has settings for the plugin, ``If-Match`` with the
        ETag of ``GET /plugins/<id>`` is required (428 without, 412 when stale). The very
        first PUT needs none, since there is nothing to overwrite; if it does send
        ``If-Match`` it is checked against the unconfigured view, so a concurrent first
        write is detected too.
        """
        _known(plugin_id)
        session = request_session()
        plugins = get_plugins()
        row = tenant_plugin(session, plugin_id)
        if row is not None:
            lock_for_write(row)
        if row is not None or request.if_match:
            if not request.if_match:
                abort(428, message="This plugin already has settings: send If-Match with "
                                   "the ETag of GET /api/v1/plugins/" + plugin_id + ".")
            if view_etag(plugin_view(plugins, plugin_id, row)) not in request.if_match:
                abort(412, message="The plugin's settings changed since you read them.")
        try:
            row = configure_plugin(session, plugins, plugin_id, body["active"],
                                   body["configuration"], actor_id=actor_id())
        except UnknownPlugin as exc:
            abort(404, message=str(exc))
        except PluginConfigError as exc:
            session.rollback()
            abort(422, message=f"The configuration of plugin {plugin_id!r} is not valid.",
                  errors={"json": {"configuration": exc.messages}})
        session.commit()
        view = plugin_view(plugins, plugin_id, row)
        return view, 200, {"ETag": f'"{view_etag(view)}"'}
