"""The ``servq plugins`` commands: the installed plugins (assembled by ``cli.py``; each
plugin's own commands are added under its id by the root group).
"""

from __future__ import annotations

import click
from sqlalchemy import select

from servq.core.commands import get_app, open_session, tenant_by_slug


@click.group()
def plugins():
    """Installed plugins (each plugin's own commands are under its id)."""


@plugins.command("list")
@click.option("--tenant", "slug", default=None, help="Also show whether this tenant enabled each.")
def plugins_list(slug):
    """List the loaded plugins with their descriptions."""
    from servq.core.models import TenantPlugin
    from servq.core.plugins.app import get_plugins

    app = get_app(check_database=bool(slug))  # the list alone needs no database
    manager = get_plugins(app)
    enabled = None
    if slug:
        tenant = tenant_by_slug(app, slug)
        with open_session(app, tenant.id) as session:
            enabled = set(session.scalars(select(TenantPlugin.plugin_id).where(TenantPlugin.active.is_(True))))
    ids = manager.ids()
    for plugin_id in ids:
        info = manager.describe(plugin_id)
        state = "" if enabled is None else ("enabled   " if plugin_id in enabled else "disabled  ")
        click.echo(f"{plugin_id:<16} {state}{info['description']}")
    if not ids:
        click.echo("no plugins installed", err=True)
