"""The ``servq db`` commands: the database schema (assembled by ``cli.py``)."""

from __future__ import annotations

import click

from servq.core.commands import get_app, owner_engine


@click.group()
def db():
    """Database schema."""


@db.command("upgrade")
@click.option("--app-role", default=None,
              help="PostgreSQL role the app runs as, created and granted (default: servq_app).")
def db_upgrade(app_role):
    """Migrate the database to the newest schema."""
    from sqlalchemy.engine import make_url

    from servq.core.db.migrate import DEFAULT_APP_ROLE, current_revision, make_sqlite_folder, upgrade

    app = get_app(check_database=False)
    engine = owner_engine(app)
    try:
        make_sqlite_folder(engine)
        before = current_revision(engine)
        role = app_role or app.config.get("DATABASE_APP_ROLE") or DEFAULT_APP_ROLE
        upgrade(engine, app_role=role)
        after = current_revision(engine)
    finally:
        engine.dispose()
    where = make_url(app.config["DATABASE_URL"]).render_as_string(hide_password=True)
    if before == after:
        click.echo(f"{where}: already at revision {after}; nothing to do")
    else:
        click.echo(f"{where}: upgraded from {before or 'an empty database'} to revision {after}")
    if engine.dialect.name == "postgresql":
        click.echo(f"granted data access to role {role!r} (row-level security applies to it)")
