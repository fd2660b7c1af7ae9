"""The ``servq`` command: serve, worker, database, tenants, users, tokens, plugins, records.

The app is created once per invocation, on first use, by the group's ``app_factory``
(default :func:`core.create_app`, configured from the environment); tests inject their
own: ``CliRunner().invoke(make_cli(app_factory=lambda: app), [...])``. Every error is a
one-line ``error: ...`` on stderr and a non-zero exit, never a traceback (set
``SERVQ_DEBUG=1`` to see one).

This module holds the root group, ``serve`` and ``worker``, and assembles the other groups
(:func:`make_cli`), one module per concept in ``core/commands/``: ``db``, ``deadlines``,
``kpis``, ``users`` and ``tokens`` (``auth.py``), ``plugins``, ``records``, ``reports``; and
``tenants`` (``tenants/commands.py``). What they share (:func:`get_app`, :class:`CliError`,
:func:`tenant_by_slug`, ...) is ``core/commands/__init__.py``. The commands build apps, so
they sit above every other package of core, not inside the packages they drive.
"""

from __future__ import annotations

import os
import sys
import tomllib
from typing import Callable

import click
from flask import Flask
from marshmallow import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from servq.core.commands.auth import tokens, users
from servq.core.commands import (  # noqa: F401 (ensure_database, parse_duration, tenant_by_slug: cli.<name>)
    WHICH_DATABASE, CliError, database_label, ensure_database, get_app, owner_engine, parse_duration,
    tenant_by_slug)
from servq.core.commands.db import db
from servq.core.commands.deadlines import deadlines
from servq.core.commands.kpis import kpis
from servq.core.commands.plugins import plugins
from servq.core.commands.records import records
from servq.core.commands.reports import reports
from servq.tenants.commands import tenants

DOCS_PATH = "/api/v1/docs"


def _known_error(exc: Exception, database: str | None = None) -> str | None:
    """The one-line message of an exception the commands expect, or ``None``;
    ``database`` names the database the command used, for database errors."""
    from servq.core.jobs import UnknownJob
    from servq.core.plugins.settings import PluginConfigError, UnknownPlugin
    from servq.core.db.tenancy import CrossTenantWrite, NoTenantContext
    from servq.tenants.manifest import ManifestError, error_lines

    if isinstance(exc, ManifestError):
        return "invalid manifest: " + "; ".join(exc.errors)
    if isinstance(exc, PluginConfigError):
        return f"invalid configuration of plugin {exc.plugin_id!r}: " + "; ".join(error_lines(exc.messages))
    if isinstance(exc, ValidationError):
        return "; ".join(error_lines(exc.messages))
    if isinstance(exc, (UnknownPlugin, UnknownJob, LookupError)):
        return str(exc.args[0] if exc.args else exc)
    if isinstance(exc, (NoTenantContext, CrossTenantWrite)):
        return f"tenancy violation: {exc}"
    if isinstance(exc, SQLAlchemyError):
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        where = f" of {database}" if database else ""
        return (f"database error{where}: {detail} (is it reachable and upgraded? try 'servq db upgrade', "
                f"or {WHICH_DATABASE})")
    if isinstance(exc, (OSError, tomllib.TOMLDecodeError)):
        return str(exc)
    return None


class ServqGroup(click.Group):
    """The root group: builds the app lazily, adds the plugins' command groups, and turns
    every exception into a one-line error."""

    def __init__(self, *args, app_factory: Callable[[], Flask] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.app_factory = app_factory

    def _plugin_groups(self, ctx: click.Context) -> dict[str, click.Group]:
        if "servq.plugin_groups" not in ctx.meta:
            from servq.core.plugins.app import get_plugins

            plugins = get_plugins(get_app(ctx, check_database=False))
            groups = {}
            for plugin_id, commands in plugins.contributions("register_commands"):
                if not commands or plugin_id in self.commands:
                    continue
                group = click.Group(plugin_id, help=plugins.describe(plugin_id)["description"])
                for command in commands:
                    group.add_command(command)
                groups[plugin_id] = group
            ctx.meta["servq.plugin_groups"] = groups
        return ctx.meta["servq.plugin_groups"]

    def list_commands(self, ctx):
        names = super().list_commands(ctx)
        try:
            extra = list(self._plugin_groups(ctx))
        except Exception:  # help must work even when the app cannot be built
            extra = []
        return names + sorted(extra)

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None and not ctx.resilient_parsing:
            command = self._plugin_groups(ctx).get(name)
        return command

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("SERVQ_DEBUG"):
                raise
            app = ctx.meta.get("servq.app")
            message = _known_error(exc, database_label(app) if app is not None else None)
            raise CliError(message or f"unexpected {type(exc).__name__}: {exc}") from exc


# -- serve and worker -------------------------------------------------------------------


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes (default: 2 x CPUs + 1, at most 8).")
@click.option("--demo", is_flag=True, help="Upgrade the database, onboard the example tenants "
              "with demo data and print how to log in, then serve.")
def serve(host, port, workers, demo):
    """Serve the HTTP API with gunicorn (a production WSGI server)."""
    from gunicorn.app.base import BaseApplication

    from servq.core.server import JSONErrorWorker

    app = get_app(check_database=False)  # the embedded default is created and upgraded
    if demo:
        run_demo(app, host, port)
    else:
        _ensure_schema(app)
    app.extensions["servq.api"].spec  # the OpenAPI document, built once before the fork
    # The app writes one access-log line per request (with its request id; JSON with
    # SERVQ_LOG_FORMAT=json) on stdout, so gunicorn writes none (docs/operations.md).
    from servq.core.api.ops import configure_logging, warm_up

    configure_logging(app.config.get("LOG_FORMAT") or "plain", stdout=True)
    warm_up()  # /readyz's newest revision, read once before the fork
    engine = app.extensions["servq.engine"]
    engine.dispose()  # no pooled connection may cross the fork into the workers
    workers = workers or min(8, 2 * (os.cpu_count() or 1) + 1)

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("post_fork", lambda _arbiter, _worker: engine.dispose(close=False))
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                # A dead worker's live gauges (the pool's connections) stop counting.
                from prometheus_client import multiprocess

                self.cfg.set("child_exit", lambda _arbiter, w: multiprocess.mark_process_dead(w.pid))
            # Errors gunicorn answers itself (414, 400, 431) in servq's JSON shape.
            self.cfg.set("worker_class", JSONErrorWorker)

        def load(self):
            return app

    click.echo(f"servq: serving on http://{host}:{port} with {workers} worker(s)", err=True)
    Server().run()


def _ensure_schema(app: Flask) -> None:
    """Serve only a database at the newest schema. The embedded default (SQLite) is
    upgraded in place; a shared database is upgraded deliberately by an operator."""
    from servq.core.db.migrate import is_current, make_sqlite_folder, upgrade

    engine = owner_engine(app)
    try:
        make_sqlite_folder(engine)
        if is_current(engine):
            return
        if engine.dialect.name != "sqlite":
            raise CliError(f"the database {database_label(app)} is not at the newest schema: run "
                           f"`servq db upgrade` first, or {WHICH_DATABASE}")
        upgrade(engine)
        click.echo("servq: upgraded the embedded SQLite database to the newest schema", err=True)
    finally:
        engine.dispose()


def run_demo(app: Flask, host: str, port: int) -> list:
    """What ``serve --demo`` does before serving: upgrade, onboard the examples with demo
    data, print a table of the demo tenants (the richest first) and the docs address."""
    from servq.core.db.migrate import upgrade
    from servq.tenants.onboarding import setup_demo

    upgrade(owner_engine(app), app_role=app.config.get("DATABASE_APP_ROLE") or None)
    logins = setup_demo(app)
    rows = sorted((_demo_row(app, login) for login in logins), key=lambda row: (-row["records"], row["slug"]))
    click.echo(demo_table(rows))
    click.echo("")
    click.echo(f"docs:  http://{host}:{port}{DOCS_PATH}   (authorize with a token above: "
               "'Authorization: Bearer <token>'; or POST /api/v1/auth/token with a login)")
    click.echo("")
    return logins


def _demo_row(app: Flask, login) -> dict:
    """One demo tenant as the table shows it."""
    from sqlalchemy import func, select

    from servq.core.db.session import new_session
    from servq.core.models import Record, Tenant

    with new_session(app) as session:
        industry = session.scalar(select(Tenant.industry).where(Tenant.id == login.report.tenant_id))
    with new_session(app, login.report.tenant_id) as session:
        records = session.scalar(select(func.count()).select_from(Record).where(Record.deleted_at.is_(None)))
    password = login.password or "(password changed since the demo was set up)"
    return {"slug": login.slug, "industry": industry or "", "records": records or 0,
            "login": f"{login.email} / {password}", "token": login.token, "status": login.report.status}


def demo_table(rows: list[dict]) -> str:
    """The demo tenants as a plain-text table: slug, industry, records, login, token."""
    columns = (("slug", "tenant"), ("industry", "industry"), ("records", "records"), ("login", "login"),
               ("token", "token"))
    widths = [max(len(title), *(len(str(row[key])) for row in rows)) if rows else len(title)
              for key, title in columns]
    def line(values):
        return "  ".join(str(v).rjust(w) if key == "records" else str(v).ljust(w)
                         for (key, _), v, w in zip(columns, values, widths)).rstrip()
    out = [line([title for _, title in columns]), line(["-" * w for w in widths])]
    out += [line([row[key] for key, _ in columns]) for row in rows]
    return "\n".join(out)


@click.command()
def worker():
    """Run an rq worker (with its scheduler) for the job queue; needs REDIS_URL. The
    workers also keep the every-minute deadline tick going (core/deadlines/watch.py)."""
    from servq.core.deadlines.watch import start_ticking
    from servq.core.jobs import make_worker

    app = get_app()
    if app.extensions.get("servq.queue") is None:
        raise CliError("REDIS_URL is not set: without Redis, jobs run inline and need no worker")
    start_ticking(app)
    make_worker(app).work(with_scheduler=True)


def make_cli(app_factory: Callable[[], Flask] | None = None) -> click.Group:
    """Build the ``servq`` command group; ``app_factory`` makes the app (tests inject one)."""
    @click.group(cls=ServqGroup, app_factory=app_factory,
                 context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(package_name="servq", prog_name="servq")
    def servq():
        """servq: multi-tenant service quality management."""

    for command in (serve, worker, deadlines, kpis, db, tenants, users, tokens, plugins, records, reports):
        servq.add_command(command)
    return servq


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``servq`` console script."""
    make_cli()(args=argv, prog_name="servq")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
