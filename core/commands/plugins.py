"""The ``servq plugins`` commands: the installed plugins (assembled by ``cli.py``; each
plugin's own commands are added under its id by the root group).
"""

from __future__ import annotations

import click
from sqlalchemy import select

from servq.core.commands import CliError, get_app, open_session, tenant_by_slug


@click.group()
def plugins():
    """Installed plugins (each plugin's own commands are under its id)."""


@plugins.command("list")
@click.option("--tenant", "slug", default=None, help="Also show whether this tenant enabled each.")
def plugins_list(slug):
    """List the loaded plugins with their descriptions.

    A plugin that stops the app from starting (it cannot be imported, or a hook of it
    raises at start-up) is listed as ``broken`` with its error, among the others."""
    from servq.core.models import TenantPlugin
    from servq.core.plugins.app import get_plugins

    try:
        app = get_app(check_database=bool(slug))  # the list alone needs no database
    except CliError as exc:
        if slug or not _list_each_alone(exc):
            raise
        return
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
        package = f" ({info['package']} {info['version']})" if info["package"] else ""
        click.echo(f"{plugin_id:<16} {state}{info['description']}{package}")
    if not ids:
        click.echo("no plugins installed", err=True)


def _list_each_alone(error: CliError) -> bool:
    """When the app cannot start: each plugin loaded alone, the broken ones with their
    error (:func:`servq.core.plugins.manager.inspect_plugins`). ``False`` when the
    settings cannot even be read (then the app's error is the answer)."""
    from servq.core.config import load_settings
    from servq.core.plugins.manager import inspect_plugins

    try:
        settings = load_settings()
    except Exception:
        return False
    rows = inspect_plugins(settings["PLUGINS"], settings["LOAD_ENTRY_POINTS"], settings.get("EXTRA_PLUGINS", ()))
    for row in rows:
        if row["status"] == "ok":
            click.echo(f"{row['id']:<16} {row['description']}")
        else:
            click.echo(f"{row['id']:<16} broken    {row['error']}")
    click.echo(f"warning: the app cannot start ({error.format_message()}); fix or uninstall the "
               "broken plugin(s)", err=True)
    return True
