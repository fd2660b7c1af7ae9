"""Attach a plugin manager to the app and answer per-tenant plugin questions."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import select

from servq.core.db.state import TENANT, Slot
from servq.core.models import TenantPlugin
from servq.core.plugins.manager import Plugins, TenantHooks


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


#: (tenant id, the tenant's enabled plugin ids loaded in this app).
ENABLED_PLUGINS: Slot[tuple] = Slot("enabled_plugins", TENANT, __name__)


def enabled_plugin_ids(session) -> set[str]:
    """Ids of the plugins the session's tenant has enabled and that are loaded.

    Cached on the session (one query per request or job); changing a tenant's plugins
    through :func:`core.plugins.settings.configure_plugin` clears the cache.
    """
    cached = session.state.get(ENABLED_PLUGINS)
    if cached is not None and cached[0] == session.tenant_id:
        return cached[1]
    rows = session.scalars(select(TenantPlugin.plugin_id).where(TenantPlugin.active.is_(True)))
    return remember_enabled_plugins(session, set(rows))


def remember_enabled_plugins(session, plugin_ids: set[str]) -> set[str]:
    """Cache the tenant's active plugin ids (those loaded in this app) on the session."""
    enabled = plugin_ids & get_plugins().enableable
    session.state.set(ENABLED_PLUGINS, (session.tenant_id, enabled))
    return enabled


def forget_enabled_plugins(session) -> None:
    """Drop the session's cached plugin list after a tenant's plugins changed."""
    session.state.pop(ENABLED_PLUGINS)


def tenant_enabled_plugins() -> set[str]:
    """Enabled plugin ids of the current request's tenant."""
    return enabled_plugin_ids(g.db)


def hooks_for_session(session) -> TenantHooks:
    """Hook callers restricted to what the session's tenant has enabled."""
    return get_plugins().hooks_for(enabled_plugin_ids(session))
