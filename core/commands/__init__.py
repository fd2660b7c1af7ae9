"""What the ``servq`` command's groups share: the app of the invocation, one-line errors,
the tenant named on the command line, and the database checks.

The command line is assembled in ``cli.py`` (:func:`servq.cli.make_cli`); its groups live
with their concepts (``core/db/commands.py``, ``core/kpis/commands.py``,
``tenants/commands.py``, ...) and import these helpers from here, since core never imports
``cli.py``.
"""

from __future__ import annotations

import os
from datetime import timedelta

import click
from flask import Flask
from sqlalchemy import select

from servq.core.calendar import parse_duration as calendar_duration



class CliError(click.ClickException):
    """An error shown as one line, ``error: <message>``, on stderr (exit status 1)."""

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s`` (or any duration :func:`servq.core.calendar.parse_duration`
    reads, such as ``1h30m``) as a :class:`~datetime.timedelta`."""
    try:
        return calendar_duration(text or "")
    except ValueError:
        raise CliError(f"invalid duration {text!r}: use a positive number with d, h, m or s (e.g. 30d)") from None


#: How to point the command at another database (part of every database error).
WHICH_DATABASE = ("set DATABASE_URL to the database to use, or SERVQ_INSTANCE_PATH to the instance "
                  "folder holding servq.db (default: ./instance)")


def get_app(ctx: click.Context | None = None, *, check_database: bool = True) -> Flask:
    """The app of this invocation, created on first use with an app context pushed for
    the rest of the invocation (plugin commands may use ``current_app``).

    With ``check_database`` (the default) the database must exist and be at the newest
    schema (:func:`check_database`): only ``serve`` and ``db upgrade`` create one."""
    root = (ctx or click.get_current_context()).find_root()
    if "servq.app" not in root.meta:
        factory = getattr(root.command, "app_factory", None)
        if factory is None:
            from servq.core import create_app

            factory = create_app
        try:
            app = factory()
        except Exception as exc:
            if os.environ.get("SERVQ_DEBUG"):
                raise
            raise CliError(f"cannot create the app: {exc}") from exc
        root.meta["servq.app"] = app
        root.with_resource(app.app_context())
    app = root.meta["servq.app"]
    if check_database and not root.meta.get("servq.database_checked"):
        ensure_database(app)
        root.meta["servq.database_checked"] = True
    return app


def database_label(app: Flask) -> str:
    """The database of ``app`` as shown to a user: a SQLite file's path, or the URL
    without its password."""
    from servq.core.db.migrate import describe_url

    return describe_url(app.config["DATABASE_URL"])


def ensure_database(app: Flask) -> None:
    """Refuse, with a :class:`CliError` naming the database and how to point at another,
    a database that is missing or not at the newest schema. Creates nothing: a missing
    SQLite file is looked for, not opened."""
    from servq.core.db.migrate import current_revision, head_revision, sqlite_file

    where = database_label(app)
    path = sqlite_file(app.config["DATABASE_URL"])
    if path is not None and not path.is_file():
        raise CliError(f"no servq database at {path} ({where}): {WHICH_DATABASE}; "
                       f"or create one there with 'servq db upgrade'")
    engine = owner_engine(app)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    if revision != head:
        state = "empty (never migrated)" if revision is None else f"at revision {revision}, not {head}"
        raise CliError(f"the database {where} is {state}: run 'servq db upgrade' to migrate it, "
                       f"or {WHICH_DATABASE}")


def tenant_by_slug(app: Flask, slug: str):
    """The tenant with ``slug``, or a :class:`CliError`."""
    from servq.core.db.session import new_session
    from servq.core.models import Tenant

    with new_session(app) as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise CliError(f"no tenant with slug {slug!r} (see 'servq tenants list')")
    return tenant


def open_session(app: Flask, tenant_id=None):
    """A new session of ``app`` (bound to ``tenant_id`` when given)."""
    from servq.core.db.session import new_session

    return new_session(app, tenant_id)


def owner_engine(app: Flask):
    """An engine without ``SET ROLE``: migrations need the owner, not the app role."""
    from servq.core.db.session import make_engine

    return make_engine(app.config["DATABASE_URL"])


__all__ = ["CliError", "WHICH_DATABASE", "database_label", "ensure_database", "get_app", "owner_engine",
           "open_session", "parse_duration", "tenant_by_slug"]
