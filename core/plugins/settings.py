"""Enable, disable and configure a plugin for one tenant.

Shared by the HTTP API (``PUT /api/v1/plugins/<id>``) and tenant onboarding (manifests),
so both validate a configuration the same way: with the schema the plugin returns from
its ``register_config_schema`` hook.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError
from sqlalchemy import select

from servq.core.audit import apply_changes, audit
from servq.core.db.state import TRANSACTION, Slot
from servq.core.models import TenantPlugin
from servq.core.plugins.manager import Plugins
from servq.core.plugins.app import forget_enabled_plugins


class UnknownPlugin(LookupError):
    """No loaded plugin a tenant may enable has this id."""

    def __init__(self, plugin_id: str):
        super().__init__(f"No plugin {plugin_id!r} is installed.")
        self.plugin_id = plugin_id


class PluginConfigError(ValidationError):
    """The configuration does not satisfy the plugin's schema.

    A :class:`marshmallow.ValidationError`: ``messages`` maps each offending field to its
    messages, exactly as the plugin's schema reported them.
    """

    def __init__(self, plugin_id: str, messages: dict):
        super().__init__(messages)
        self.plugin_id = plugin_id


def config_schema(plugins: Plugins, plugin_id: str) -> Schema | None:
    """An instance of the plugin's configuration schema, or ``None`` if it has none."""
    schema = plugins.call_one(plugin_id, "register_config_schema")
    if schema is None:
        return None
    # The hook returns a class; an instance is accepted too, as plugins will get it wrong.
    return schema() if isinstance(schema, type) else schema


def _json_value(value: Any) -> Any:
    """JSON form of the few non-JSON types a marshmallow load commonly produces."""
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} cannot be stored in a plugin configuration")


def validate_configuration(plugins: Plugins, plugin_id: str, configuration: dict) -> dict:
    """Load ``configuration`` with the plugin's schema; return what is to be stored.

    Raises :class:`UnknownPlugin` and :class:`PluginConfigError`. A plugin without a schema
    accepts only ``{}``. The loaded result (defaults filled in) is made JSON-safe because
    it is stored in a JSON column.
    """
    if plugin_id not in plugins.ids():
        raise UnknownPlugin(plugin_id)
    if not isinstance(configuration, dict):
        raise PluginConfigError(plugin_id, {"_schema": ["The configuration must be an object."]})
    schema = config_schema(plugins, plugin_id)
    if schema is None:
        if configuration:
            raise PluginConfigError(plugin_id, {
                key: [f"Plugin {plugin_id!r} takes no configuration."] for key in configuration})
        return {}
    try:
        loaded = schema.load(configuration)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise PluginConfigError(plugin_id, messages) from exc
    try:
        return json.loads(json.dumps(loaded, default=_json_value))
    except (TypeError, ValueError) as exc:
        raise PluginConfigError(plugin_id, {"_schema": [str(exc)]}) from exc


#: ``{(tenant id, plugin id): stored configuration}`` read in this transaction.
_SETTINGS: Slot[dict] = Slot("servq.plugin_settings", TRANSACTION, __name__)


def plugin_settings(session, plugin_id: str) -> dict[str, Any]:
    """The stored configuration of ``plugin_id`` for the session's tenant (``{}`` when it
    has none), as :func:`configure_plugin` validated it: read once per transaction, not
    at each of the hooks that read it for every record (:func:`configure_plugin` drops
    it). A copy: the caller may change it."""
    known = session.state.get(_SETTINGS)
    if known is None:
        known = session.state.setdefault(_SETTINGS, {})
    key = (session.tenant_id, plugin_id)
    stored = known.get(key)
    if stored is None:
        row = tenant_plugin(session, plugin_id)
        stored = known[key] = json.loads(json.dumps(row.configuration or {})) if row is not None else {}
    return json.loads(json.dumps(stored)) if stored else {}


#: ``{(tenant id, plugin id): memo}`` kept for plugins in this transaction.
_MEMOS: Slot[dict] = Slot("servq.plugin_memos", TRANSACTION, __name__)


def transaction_memo(session, plugin_id: str) -> dict[str, Any]:
    """A dictionary ``plugin_id`` may keep what it read or worked out in, for the rest of
    the session's transaction: the same one at every call in the transaction, dropped when
    the outermost transaction ends (commit, rollback or close) or the session switches
    tenant. A hook that would read the same rows at every write of a bulk import (one
    call per chunk) reads them once and keeps its own additions here instead; what the
    plugin keeps must stay true for the transaction (rows it may see change, through
    writes of its own, it updates itself)."""
    memos = session.state.get(_MEMOS)
    if memos is None:
        memos = session.state.setdefault(_MEMOS, {})
    return memos.setdefault((session.tenant_id, plugin_id), {})


def tenant_plugin(session, plugin_id: str) -> TenantPlugin | None:
    """The session tenant's settings row for ``plugin_id``, if it has one."""
    return session.scalar(select(TenantPlugin).where(TenantPlugin.plugin_id == plugin_id))


def configure_plugin(session, plugins: Plugins, plugin_id: str, active: bool,
                     configuration: dict, *, actor_id: uuid.UUID | None = None) -> TenantPlugin:
    """Enable (``active``) or disable a plugin for the session's tenant with a validated
    ``configuration``; create the tenant's row on first use. Audited as ``tenant_plugins``
    (``actor_id`` ``None`` means the system, e.g. onboarding). Flushes, does not commit.

    Raises :class:`UnknownPlugin` or :class:`PluginConfigError` before changing anything.
    """
    stored = validate_configuration(plugins, plugin_id, configuration)
    forget_enabled_plugins(session)
    session.state.pop(_SETTINGS)
    row = tenant_plugin(session, plugin_id)
    if row is None:
        row = TenantPlugin(plugin_id=plugin_id, active=bool(active), configuration=stored)
        session.add(row)
        session.flush()
        audit(session, "tenant_plugins", row.id, "created", actor_id,
              {"plugin_id": [None, plugin_id], "active": [None, bool(active)],
               "configuration": [None, stored]})
        return row
    changes = apply_changes(row, {"active": bool(active), "configuration": stored})
    if changes:
        session.flush()
        audit(session, "tenant_plugins", row.id, "changed", actor_id, changes)
    return row


def plugin_view(plugins: Plugins, plugin_id: str, row: TenantPlugin | None) -> dict:
    """What the API shows of a plugin for one tenant: its description and settings."""
    view = plugins.describe(plugin_id)
    view["enabled"] = bool(row is not None and row.active)
    view["configuration"] = dict(row.configuration or {}) if row is not None else {}
    view["updated_at"] = row.updated_at if row is not None else None
    return view
