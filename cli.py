"""The ``servq`` command: serve, worker, database, tenants, users, tokens, plugins, records.

The app is created once per invocation, on first use, by the group's ``app_factory``
(default :func:`core.create_app`, configured from the environment); tests inject their
own: ``CliRunner().invoke(make_cli(app_factory=lambda: app), [...])``. Every error is a
one-line ``error: ...`` on stderr and a non-zero exit, never a traceback (set
``SERVQ_DEBUG=1`` to see one).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
from datetime import timedelta
from typing import Callable

import click
from flask import Flask
from marshmallow import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

DOCS_PATH = "/api/v1/docs"
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([dhms])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


class CliError(click.ClickException):
    """An error shown as one line, ``error: <message>``, on stderr (exit status 1)."""

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m`` or ``45s`` as a :class:`~datetime.timedelta`."""
    match = _DURATION_RE.match(text or "")
    if not match or int(match.group(1)) == 0:
        raise CliError(f"invalid duration {text!r}: use a positive number with d, h, m or s (e.g. 30d)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


#: How to point the command at another database (part of every database error).
WHICH_DATABASE = ("set DATABASE_URL to the database to use, or SERVQ_INSTANCE_PATH to the instance "
                  "folder holding servq.db (default: ./instance)")


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
            message = _known_error(exc, _database_label(app) if app is not None else None)
            raise CliError(message or f"unexpected {type(exc).__name__}: {exc}") from exc


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


def _database_label(app: Flask) -> str:
    """The database of ``app`` as shown to a user: a SQLite file's path, or the URL
    without its password."""
    from servq.core.db.migrate import describe_url

    return describe_url(app.config["DATABASE_URL"])


def ensure_database(app: Flask) -> None:
    """Refuse, with a :class:`CliError` naming the database and how to point at another,
    a database that is missing or not at the newest schema. Creates nothing: a missing
    SQLite file is looked for, not opened."""
    from servq.core.db.migrate import current_revision, head_revision, sqlite_file

    where = _database_label(app)
    path = sqlite_file(app.config["DATABASE_URL"])
    if path is not None and not path.is_file():
        raise CliError(f"no servq database at {path} ({where}): {WHICH_DATABASE}; "
                       f"or create one there with 'servq db upgrade'")
    engine = _owner_engine(app)
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


def _session(app: Flask, tenant_id=None):
    from servq.core.db.session import new_session

    return new_session(app, tenant_id)


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
    engine = app.extensions["servq.engine"]
    engine.dispose()  # no pooled connection may cross the fork into the workers
    workers = workers or min(8, 2 * (os.cpu_count() or 1) + 1)

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")
            self.cfg.set("post_fork", lambda _arbiter, _worker: engine.dispose(close=False))
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

    engine = _owner_engine(app)
    try:
        make_sqlite_folder(engine)
        if is_current(engine):
            return
        if engine.dialect.name != "sqlite":
            raise CliError(f"the database {_database_label(app)} is not at the newest schema: run "
                           f"`servq db upgrade` first, or {WHICH_DATABASE}")
        upgrade(engine)
        click.echo("servq: upgraded the embedded SQLite database to the newest schema", err=True)
    finally:
        engine.dispose()


def run_demo(app: Flask, host: str, port: int) -> list:
    """What ``serve --demo`` does before serving: upgrade, onboard the examples with demo
    data, print each tenant's login, token and docs address."""
    from servq.core.db.migrate import upgrade
    from servq.tenants.onboarding import setup_demo

    upgrade(_owner_engine(app), app_role=app.config.get("DATABASE_APP_ROLE") or None)
    logins = setup_demo(app)
    for login in logins:
        click.echo(f"tenant:   {login.slug} ({login.report.status})")
        click.echo(f"login:    {login.email} / {login.password or '(password changed since the demo was set up)'}")
        click.echo(f"token:    {login.token}")
        click.echo(f"docs:     http://{host}:{port}{DOCS_PATH}")
        click.echo("")
    return logins


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


@click.group()
def deadlines():
    """The deadline tick: breach watch, recurring obligations, webhook retries."""


@deadlines.command("scan")
@click.option("--tenant", "slug", default=None, help="Only this tenant (default: every tenant).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def deadlines_scan(slug, as_json):
    """Run one tick now, in this process (for cron, or a deployment without a worker)."""
    from servq.core.deadlines.watch import SCAN_JOB, run_tick
    from servq.core.jobs import run_job

    app = get_app()
    if slug:
        tenant = tenant_by_slug(app, slug)
        results = {slug: run_job(SCAN_JOB, str(tenant.id))}
    else:
        results = run_tick(app)
    if as_json:
        click.echo(json.dumps(results, indent=2, sort_keys=True))
        return
    for name, counts in results.items():
        click.echo(f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if not results:
        click.echo("no tenants", err=True)


# -- KPIs -------------------------------------------------------------------------------


@click.group()
def kpis():
    """KPI rollups (docs/kpi-rollups.md)."""


@kpis.command("refresh")
@click.option("--tenant", "slug", default=None, help="Only this tenant (default: every tenant).")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def kpis_refresh(slug, as_json):
    """Bring the daily KPI rollups up to date now (the worker does it every hour)."""
    from servq.core.kpis.rollups import refresh_kpi_rollups
    from servq.core.models import Tenant

    app = get_app()
    if slug:
        tenants = [(tenant_by_slug(app, slug).id, slug)]
    else:
        with _session(app) as session:
            tenants = session.execute(select(Tenant.id, Tenant.slug).order_by(Tenant.slug)).all()
    results = {}
    for tenant_id, name in tenants:
        with _session(app, tenant_id) as session:
            results[name] = refresh_kpi_rollups(session)
    if as_json:
        click.echo(json.dumps(results, indent=2, sort_keys=True))
        return
    for name, report in results.items():
        click.echo(f"{name}: rolled until {report['rolled_until']}, {report['days']} day(s) "
                   f"({report['dirty']} dirty) in {report['statements']} statement(s), "
                   f"{report['rows']} row(s){', rebuilt' if report['rebuilt'] else ''}")
    if not results:
        click.echo("no tenants", err=True)


# -- database ---------------------------------------------------------------------------


def _owner_engine(app: Flask):
    """An engine without ``SET ROLE``: migrations need the owner, not the app role."""
    from servq.core.db.session import make_engine

    return make_engine(app.config["DATABASE_URL"])


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
    engine = _owner_engine(app)
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



# -- tenants ----------------------------------------------------------------------------


@click.group()
def tenants():
    """Onboard, list, show, export and delete tenants."""


@tenants.command("onboard")
@click.argument("file", type=click.File("rb"))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def tenants_onboard(file, as_json):
    """Create or update a tenant from a TOML manifest (idempotent, all-or-nothing)."""
    from servq.tenants.manifest import parse_manifest
    from servq.tenants.onboarding import onboard

    report = onboard(get_app(), parse_manifest(file.read()))
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else report.summary())


@tenants.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tenants_list(as_json):
    """List the tenants."""
    from servq.core.models import Tenant

    with _session(get_app()) as session:
        rows = session.scalars(select(Tenant).order_by(Tenant.slug)).all()
    items = [{"id": str(t.id), "slug": t.slug, "name": t.name, "industry": t.industry,
              "timezone": t.timezone, "locale": t.locale} for t in rows]
    if as_json:
        click.echo(json.dumps(items, indent=2, ensure_ascii=False))
        return
    for t in items:
        click.echo(f"{t['slug']:<24} {t['industry']:<12} {t['timezone']:<20} {t['name']}")
    if not items:
        click.echo("no tenants yet (servq tenants onboard FILE)", err=True)


@tenants.command("show")
@click.argument("slug")
def tenants_show(slug):
    """Show a tenant with counts of its members, sites, staff, records and plugins."""
    from servq.core.models import Membership, Record, Site, Staff, TenantPlugin

    app = get_app()
    tenant = tenant_by_slug(app, slug)
    with _session(app, tenant.id) as session:
        counts = {name: session.scalar(select(func.count()).select_from(model).where(*where))
                  for name, model, where in (
                      ("members", Membership, ()), ("sites", Site, ()), ("staff", Staff, ()),
                      ("records", Record, (Record.deleted_at.is_(None),)),
                      ("enabled plugins", TenantPlugin, (TenantPlugin.active.is_(True),)))}
        enabled = session.scalars(select(TenantPlugin.plugin_id).where(TenantPlugin.active.is_(True))
                                  .order_by(TenantPlugin.plugin_id)).all()
    for label, value in (("slug", tenant.slug), ("id", tenant.id), ("name", tenant.name),
                         ("industry", tenant.industry), ("timezone", tenant.timezone),
                         ("locale", tenant.locale), ("created", tenant.created_at.isoformat())):
        click.echo(f"{label + ':':<17}{value}")
    for label, value in counts.items():
        click.echo(f"{label + ':':<17}{value}")
    if enabled:
        click.echo(f"{'plugins:':<17}{', '.join(enabled)}")


@tenants.command("export")
@click.argument("slug")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file instead of stdout.")
def tenants_export(slug, output):
    """Export all of a tenant's data as JSON."""
    from servq.tenants.export import dumps, export_tenant

    app = get_app()
    tenant = tenant_by_slug(app, slug)
    with _session(app, tenant.id) as session:
        document = export_tenant(session)
    data = dumps(document)
    if document.get("replaced"):
        click.echo(f"servq: replaced {len(document['replaced'])} invalid character value(s) "
                   "(lone surrogates) by U+FFFD; the export lists them under \"replaced\"",
                   err=True)
    if output:
        with open(output, "wb") as fh:
            fh.write(data)
        click.echo(f"exported tenant {slug} to {output} ({len(data)} bytes)", err=True)
    else:
        click.echo(data.decode("utf-8"))


@tenants.command("delete")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Confirm: deletion is final (export first).")
def tenants_delete(slug, yes):
    """Delete a tenant and all its data."""
    from servq.tenants.offboarding import delete_tenant

    if not yes:
        raise CliError(f"deleting tenant {slug!r} is final: export it first, then repeat with --yes")
    app = get_app()
    tenant = tenant_by_slug(app, slug)
    counts = delete_tenant(app, tenant.id)
    click.echo(f"deleted tenant {slug}: " + ", ".join(f"{n} {t}" for t, n in sorted(counts.items()) if n))


# -- users and tokens -------------------------------------------------------------------


@click.group()
def users():
    """Users and their memberships."""


@users.command("add")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(
    ["owner", "admin", "manager", "inspector", "agent", "viewer"]))
@click.option("--name", default=None, help="Display name (new users).")
@click.option("--password-stdin", is_flag=True, help="Read the user's password from stdin.")
def users_add(slug, email, role, name, password_stdin):
    """Add a user to a tenant (the user is created if new); changing a role revokes the
    member's tokens."""
    from servq.core.audit import audit
    from servq.core.auth.passwords import MIN_LENGTH, hash_password
    from servq.core.auth.tokens import revoke_tokens_of
    from servq.core.models import Membership, User

    email = email.strip().lower()
    if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
        raise CliError(f"not a valid email address: {email!r}")
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if len(password) < MIN_LENGTH:
            raise CliError(f"the password must have at least {MIN_LENGTH} characters")
    app = get_app()
    tenant = tenant_by_slug(app, slug)
    with _session(app) as session:
        user = session.scalar(select(User).where(User.email == email))
        created_user = user is None
        if created_user:
            user = User(email=email, name=name or email.split("@")[0])
            session.add(user)
            session.flush()
        if password:
            user.password_hash = hash_password(password)
        session.set_tenant(tenant.id)
        membership = session.scalar(select(Membership).where(Membership.user_id == user.id))
        if membership is None:
            membership = Membership(user_id=user.id, role=role)
            session.add(membership)
            session.flush()
            audit(session, "memberships", membership.id, "created", None, {"role": [None, role]})
            what = "added"
        elif membership.role != role:
            audit(session, "memberships", membership.id, "changed", None, {"role": [membership.role, role]})
            membership.role = role
            revoke_tokens_of(session, membership.id)
            what = "role changed (tokens revoked)"
        else:
            what = "already a member with this role"
        session.commit()
    click.echo(f"{email} ({'new user' if created_user else 'existing user'}) in {slug} as {role}: {what}")


@click.group()
def tokens():
    """Bearer tokens."""


@tokens.command("create")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--email", required=True, help="The member the token acts as.")
@click.option("--expires-in", default="30d", show_default=True, help="Lifetime: 30d, 12h, 90m.")
@click.option("--label", default="servq tokens create", show_default=True)
def tokens_create(slug, email, expires_in, label):
    """Issue a bearer token for a member; prints the token alone on stdout."""
    from servq.core.auth.tokens import issue_token
    from servq.core.models import Membership, User

    ttl = parse_duration(expires_in)
    app = get_app()
    tenant = tenant_by_slug(app, slug)
    with _session(app) as session:
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None or not user.is_active:
            raise CliError(f"no active user {email!r}")
        session.set_tenant(tenant.id)
        membership = session.scalar(select(Membership).where(Membership.user_id == user.id))
        if membership is None:
            raise CliError(f"{email} is not a member of {slug}")
        clear, row = issue_token(session, membership, ttl, label=label)
        session.commit()
    click.echo(clear)
    click.echo(f"expires {row.expires_at.isoformat()} ({membership.role} in {slug})", err=True)


# -- plugins ----------------------------------------------------------------------------


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
        with _session(app, tenant.id) as session:
            enabled = set(session.scalars(select(TenantPlugin.plugin_id).where(TenantPlugin.active.is_(True))))
    ids = manager.ids()
    for plugin_id in ids:
        info = manager.describe(plugin_id)
        state = "" if enabled is None else ("enabled   " if plugin_id in enabled else "disabled  ")
        click.echo(f"{plugin_id:<16} {state}{info['description']}")
    if not ids:
        click.echo("no plugins installed", err=True)


# -- records ----------------------------------------------------------------------------


@click.group()
def records():
    """Quality records in bulk."""


@records.command("import")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.argument("file", type=click.File("rb"))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default=None,
              help="File format (default: csv for *.csv, else jsonl).")
@click.option("--chunk", type=click.IntRange(1, 100_000), default=1000, show_default=True,
              help="Records written per bulk statement.")
@click.option("--dry-run", is_flag=True, help="Validate and score every record, write nothing.")
def records_import(slug, file, fmt, chunk, dry_run):
    """Import records from a JSON Lines or CSV FILE ('-' for stdin), validated and scored
    like POST /records; all or nothing: one bad line and nothing is written."""
    from servq.core.records.ingest import ImportRefused, guess_format, import_file

    app = get_app()
    tenant = tenant_by_slug(app, slug)
    fmt = fmt or guess_format(file.name)
    try:
        size = os.fstat(file.fileno()).st_size if file.seekable() else 0
    except (OSError, ValueError):  # stdin or a stream without a file behind it
        size = 0
    with click.progressbar(length=size or 1, label=f"importing into {slug}", file=sys.stderr,
                           hidden=not size or not sys.stderr.isatty()) as bar:
        def progress(_records: int) -> None:
            if size:
                bar.update(file.tell() - bar.pos)

        try:
            report = import_file(app, tenant.id, file, fmt, chunk=chunk, dry_run=dry_run,
                                 progress=progress)
        except ImportRefused as refused:
            bar.render_finish()
            if refused.header:
                raise CliError(f"{refused.header}; nothing was written")
            for error in refused.errors:
                for message in error.messages():
                    click.echo(f"line {error.line}: {message}", err=True)
            more = " (stopped reading there)" if refused.truncated else ""
            raise CliError(f"{len(refused.errors)} bad line(s){more}; nothing was written")
        bar.update(max(size, 1) - bar.pos)
    click.echo(report.summary())


# -- reports ----------------------------------------------------------------------------


@click.group()
def reports():
    """Reports for the quality meeting."""


@reports.command("weekly")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--week", default=None, help="ISO week, e.g. 2026-W47 (default: last week, tenant's time zone).")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "xlsx", "pdf"]), default=None,
              help="File format (default: from the output file's extension, else json).")
@click.option("--lang", type=click.Choice(["en", "zh"]), default=None,
              help="Language (default: the tenant's locale).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file (needed for xlsx and pdf); default: stdout.")
def reports_weekly(slug, week, fmt, lang, output):
    """Build the weekly quality-meeting report of a tenant (see docs/reports.md)."""
    from servq.core.db import utcnow
    from servq.core.reports import weekly_file
    from servq.core.reports.weekly import WeekError, parse_week, previous_week_key, report_timezone

    fmt = fmt or next((ext for ext in ("json", "csv", "xlsx", "pdf")
                       if output and output.lower().endswith(f".{ext}")), "json")
    if fmt in ("xlsx", "pdf") and not output:
        raise CliError(f"a {fmt} report is binary: give a file with -o")
    app = get_app()
    tenant = tenant_by_slug(app, slug)
    language = lang or ("zh" if (tenant.locale or "").lower().startswith("zh") else "en")
    with _session(app, tenant.id) as session:
        try:
            week = week or previous_week_key(utcnow(), report_timezone(session))
            parse_week(week)
        except WeekError as exc:
            raise CliError(str(exc)) from None
        built = weekly_file(session, week, fmt, language)
    if output:
        with open(output, "wb") as fh:
            fh.write(built.content)
        click.echo(f"weekly report {week} of {slug} written to {output} ({len(built.content)} bytes)", err=True)
    else:
        click.echo(built.content, nl=False)  # bytes go to the binary stdout


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
