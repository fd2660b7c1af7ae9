"""Attach a plugin manager to the app and answer per-tenant plugin questions."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import select

from core.models import TenantPlugin
from core.plugins.manager import Plugins, TenantHooks


def init_app(app: Flask) -> None:
    """Load ``PLUGINS`` (and entry points) into a manager owned by ``app``."""
    app.extensions["servq.plugins"] = Plugins(
        app.config["PLUGINS"],
        load_entry_points=app.config["LOAD_ENTRY_POINTS"],
        extra=app.config.get("EXTRA_PLUGINS", ()),
    )


def get_plugins(app: Flask | None = None) -> Plugins:
    """The plugin manager of ``app`` (default: the current app)."""
    return (app or current_app).extensions["servq.plugins"]


def enabled_plugin_ids(session) -> set[str]:
    """Ids of the plugins the session's tenant has enabled and that are loaded."""
    loaded = set(get_plugins().ids())
    rows = session.scalars(select(TenantPlugin.plugin_id).where(TenantPlugin.active.is_(True)))
    return {pid for pid in rows if pid in loaded}


def tenant_enabled_plugins() -> set[str]:
    """Enabled plugin ids of the current request's tenant (one query per request)."""
    if "enabled_plugins" not in g:
        g.enabled_plugins = enabled_plugin_ids(g.db)
    return g.enabled_plugins


def hooks_for_session(session) -> TenantHooks:
    """Hook callers restricted to what the session's tenant has enabled."""
    return get_plugins().hooks_for(enabled_plugin_ids(session))
