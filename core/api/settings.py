"""The tenant's settings: its own values of core's [P] defaults (``core.settings``).

``GET /settings`` shows every setting as it applies (``effective``), the defaults and what
the tenant set itself (``own``); ``PATCH /settings`` (an admin, with If-Match once the
tenant has settings) merges a JSON merge patch into ``own``: a value set to ``null`` goes
back to its default. A refused value is a 422 naming the field; nothing is changed.
"""

from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, ValidationError, fields
from werkzeug.http import quote_etag

from servq.core.api.blueprint import Blueprint
from servq.core.api.context import actor_id, enabled_kinds, require
from servq.core.audit import audit
from servq.core.db.session import request_session
from servq.core.models import TenantSettings
from servq.core.settings import (defaults, effective, forget_settings, load_settings, merged,
                                 validate_settings)

URL = "/settings"
blp = Blueprint("settings", __name__, description="The tenant's own values of core's defaults: "
                                                  "dispute windows, stalled-record limits.")

_DOCUMENT = {"type": "object", "properties": {
    "disputes": {"type": "object", "properties": {"windows": {
        "type": "object", "description": "Limits by step: file, decide, appeal, decide_appeal "
                                         "('3 working days'); null: the default",
        "additionalProperties": {"type": "string", "nullable": True}}}},
    "stalled_after": {"type": "object", "description": "By record kind (with a workflow): a limit for "
                                                       "every state that is not final, or {state: limit}",
                      "additionalProperties": {}}}}


class SettingsSchema(Schema):
    own = fields.Dict(dump_only=True, metadata={"description": "What the tenant set itself"})
    effective = fields.Dict(dump_only=True, metadata={"description": "Every setting as it applies: own over defaults"})
    defaults = fields.Dict(dump_only=True, metadata={"description": "Core's defaults and the kinds' declared limits"})
    version = fields.Integer(dump_only=True, metadata={"description": "Counts the tenant's changes (0: none yet)"})
    updated_at = fields.AwareDateTime(dump_only=True, allow_none=True)


def _view(session, row: TenantSettings | None) -> dict:
    kinds = enabled_kinds()
    return {"own": row.document if row is not None else {}, "effective": effective(session, kinds),
            "defaults": defaults(kinds), "version": row.version if row is not None else 0,
            "updated_at": row.updated_at if row is not None else None}


@blp.route("")
class Settings(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, SettingsSchema)
    def get(self):
        """The tenant's settings: as they apply, the defaults, and its own values."""
        session = request_session()
        return _view(session, load_settings(session))

    @require("admin")
    @blp.response(200, SettingsSchema)
    @blp.alt_response(422, description="A value was refused; `errors.json` names the field")
    @blp.alt_response(428, description="The tenant has settings and If-Match was not sent")
    @blp.alt_response(412, description="The settings changed since they were read")
    @blp.doc(requestBody={"content": {"application/json": {"schema": _DOCUMENT}}})
    def patch(self):
        """Change settings with a JSON merge patch (``null`` restores a default; sent as
        ``application/json`` or ``application/merge-patch+json``); once the tenant has
        settings, If-Match with the ETag of ``GET /settings`` is required."""
        session = request_session()
        row = load_settings(session)
        if row is not None:
            blp.check_if_match(row, lambda: SettingsSchema().dump(_view(session, row)), what="the settings",
                               stale="The settings changed since you read them; GET them again.")
        body = request.get_json(silent=True, force=True)
        if not isinstance(body, dict):
            abort(422, message="Send the changes as a JSON object (a JSON merge patch).")
        before = row.document if row is not None else {}
        try:
            document = validate_settings(merged(before, body), enabled_kinds())
        except ValidationError as error:
            session.rollback()
            abort(422, message="The settings were refused.", errors={"json": error.messages})
        if row is None:
            row = TenantSettings(document=document, version=1, updated_by=actor_id())
            session.add(row)
        elif document != before:
            row.document, row.version, row.updated_by = document, row.version + 1, actor_id()
        session.flush()
        if document != before:
            audit(session, "tenant_settings", row.id, "changed", actor_id(), {"document": [before, document]})
        forget_settings(session)
        view = _view(session, row)
        session.commit()
        return view, 200, {"ETag": quote_etag(blp._generate_etag(SettingsSchema().dump(view)))}
