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


def _existing_engine(app):
    """The owner engine of a database that exists (a missing SQLite file is refused, not
    created)."""
    from servq.core.commands import CliError, WHICH_DATABASE, database_label
    from servq.core.db.migrate import sqlite_file

    path = sqlite_file(app.config["DATABASE_URL"])
    if path is not None and not path.is_file():
        raise CliError(f"no servq database at {path} ({database_label(app)}): {WHICH_DATABASE}")
    return owner_engine(app)


@db.command("current")
def db_current():
    """Print the database's schema revision and whether it is the newest."""
    from servq.core.commands import database_label
    from servq.core.db.migrate import current_revision, head_revision

    app = get_app(check_database=False)
    engine = _existing_engine(app)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    where = database_label(app)
    if revision is None:
        click.echo(f"{where}: empty (never migrated); newest is {head}: run 'servq db upgrade'")
    elif revision == head:
        click.echo(f"{where}: revision {revision} (head)")
    else:
        click.echo(f"{where}: revision {revision}; newest is {head}: run 'servq db upgrade'")


@db.command("history")
def db_history():
    """List the schema revisions shipped with this servq, newest first, marking the
    database's current one (Alembic's history)."""
    from alembic.script import ScriptDirectory

    from servq.core.db.migrate import alembic_config, current_revision

    app = get_app(check_database=False)
    engine = _existing_engine(app)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    script = ScriptDirectory.from_config(alembic_config())
    heads = set(script.get_heads())
    for rev in script.walk_revisions():
        marks = "".join([" (head)" if rev.revision in heads else "",
                         " (current)" if rev.revision == current else ""])
        click.echo(f"{rev.down_revision or '<base>'} -> {rev.revision}{marks}, {rev.doc}")


@db.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Confirm: the data of dropped tables and columns is lost.")
def db_downgrade(revision, yes):
    """Migrate the database back to REVISION (an id of `servq db history`, or `-1`).

    Every migration undone drops what it added: the data of those tables and columns is
    lost, and upgrading again does not bring it back. Back up first."""
    from alembic import command
    from alembic.util import CommandError

    from servq.core.commands import CliError, database_label
    from servq.core.db.migrate import alembic_config, current_revision

    if not yes:
        raise CliError("downgrading drops the tables and columns of the migrations undone, and "
                       "their data: back up the database, then run again with --yes")
    app = get_app(check_database=False)
    engine = _existing_engine(app)
    try:
        before = current_revision(engine)
        if before is None:
            raise CliError(f"the database {database_label(app)} is empty (never migrated): nothing to undo")
        try:
            with engine.begin() as conn:
                command.downgrade(alembic_config(conn), revision)
        except CommandError as exc:
            raise CliError(f"cannot downgrade to {revision!r}: {exc}") from exc
        after = current_revision(engine)
    finally:
        engine.dispose()
    click.echo(f"{database_label(app)}: downgraded from revision {before} to "
               f"{after or 'an empty database (base)'}; `servq db upgrade` migrates it forward again")


@db.command("distribute")
@click.option("--app-role", default=None,
              help="PostgreSQL role the app runs as, granted afterwards (default: servq_app).")
def db_distribute(app_role):
    """Distribute a single-node database on Citus (docs/citus.md): reference tables for the
    global tables, every tenant table by tenant_id, colocated, rows moved to the shards.
    Run it on the coordinator after CREATE EXTENSION citus; running it again does nothing."""
    from servq.core.commands import CliError, database_label
    from servq.core.db.migrate import DEFAULT_APP_ROLE, distribute, grant_app_role

    app = get_app()
    engine = _existing_engine(app)
    try:
        if engine.dialect.name != "postgresql":
            raise CliError(f"{database_label(app)} is not PostgreSQL: only a Citus coordinator "
                           "can be distributed")
        try:
            done = distribute(engine)
        except RuntimeError as exc:
            raise CliError(f"{database_label(app)}: {exc}") from exc
        role = app_role or app.config.get("DATABASE_APP_ROLE") or DEFAULT_APP_ROLE
        with engine.begin() as conn:
            grant_app_role(conn, role)
    finally:
        engine.dispose()
    if not done:
        click.echo(f"{database_label(app)}: every table is distributed already; nothing to do")
        return
    kinds = sorted(done.values())
    click.echo(f"{database_label(app)}: {kinds.count('reference')} reference tables, "
               f"{kinds.count('distributed')} tables distributed by tenant_id")
