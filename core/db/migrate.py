"""Schema management: Alembic upgrades, PostgreSQL row-level security and the app role."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine, make_url

from servq.core.db import citus

RLS_SETTING = "servq.tenant_id"
DEFAULT_APP_ROLE = "servq_app"


def alembic_config(connection: Connection | None = None, *, citus: bool = False) -> Config:
    """Alembic configuration pointing at the migrations shipped inside ``core`` (``citus``:
    the migrations distribute the tables they create, :mod:`servq.core.db.citus`)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("servq.core.db") / "migrations"))
    cfg.attributes["connection"] = connection
    cfg.attributes["citus"] = citus
    return cfg


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite ``url`` (absolute), or ``None`` for another database or an
    in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:") \
            or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database).resolve()


def describe_url(url: str) -> str:
    """``url`` as it may be shown to a user: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def make_sqlite_folder(engine: Engine) -> None:
    """Create the folder of a SQLite database file when missing (SQLite creates the file
    itself, not its folder)."""
    path = sqlite_file(engine.url.render_as_string(hide_password=False))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def upgrade(engine: Engine, revision: str = "head", app_role: str | None = DEFAULT_APP_ROLE) -> None:
    """Bring the database to ``revision``; on PostgreSQL also (re)grant ``app_role``.

    The only code that creates a database: a SQLite file's folder (the instance folder of
    the embedded default) is made when missing.

    On a database with the ``citus`` extension the tables are distributed by
    ``tenant_id`` (:mod:`servq.core.db.citus`): what an older servq made is distributed
    first (:func:`distribute`), then each migration distributes the tables it creates.
    """
    make_sqlite_folder(engine)
    with engine.begin() as conn:
        on_citus = citus.detect(conn)
        if on_citus:
            conn.execute(text("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"))
            citus.distribute(conn)
        command.upgrade(alembic_config(conn, citus=on_citus), revision)
        if on_citus:
            citus.distribute(conn)  # anything a migration made with raw SQL
    if engine.dialect.name == "postgresql" and app_role:
        with engine.begin() as conn:
            grant_app_role(conn, app_role)


def distribute(engine: Engine) -> dict[str, str]:
    """Distribute the tables of a database that has the ``citus`` extension but whose
    tables are still local (a single-node servq database moved onto a Citus coordinator):
    ``servq db distribute``. Returns ``{table: kind}`` of what it distributed; raises
    ``RuntimeError`` when the database has no ``citus`` extension."""
    with engine.begin() as conn:
        if not citus.detect(conn):
            raise RuntimeError("the database has no citus extension (CREATE EXTENSION citus)")
        return citus.distribute(conn)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest migration shipped with this version of servq."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def is_current(engine: Engine) -> bool:
    """Whether the database is at the newest schema."""
    return current_revision(engine) == head_revision()


def enable_rls(op, table: str) -> None:
    """Turn on row-level security for a tenant-owned ``table`` (PostgreSQL only).

    ``FORCE`` makes the policy apply to the table owner too; the policy admits only rows
    of the tenant named by the transaction-local setting ``servq.tenant_id``: with no
    tenant set, no row is visible and no row can be written.
    """
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
    op.execute(f'DROP POLICY IF EXISTS tenant_isolation ON "{table}"')
    op.execute(
        f'CREATE POLICY tenant_isolation ON "{table}" '
        f"USING (tenant_id = NULLIF(current_setting('{RLS_SETTING}', true), '')::uuid) "
        f"WITH CHECK (tenant_id = NULLIF(current_setting('{RLS_SETTING}', true), '')::uuid)"
    )


def grant_app_role(conn: Connection, role: str) -> None:
    """Create ``role`` if missing (NOLOGIN: connect as a login role that is granted it, or
    have the owner ``SET ROLE`` to it) and grant it data access, nothing more.

    The role is neither superuser, nor owner, nor ``BYPASSRLS``, so row-level security
    holds for it.
    """
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
    on_citus = citus.detect(conn)
    if not exists:
        conn.execute(text(f'CREATE ROLE "{role}" NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE'))
    if on_citus:
        # One node after another: a GRANT on reference and distributed tables in one
        # transaction is refused in parallel mode.
        conn.execute(text("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"))
        # Citus opens its connections to the workers as the current role: after the
        # owner's SET ROLE, the app role, which must therefore be able to log in (give
        # it a password, or trust/cert authentication between the nodes).
        conn.execute(text(f'ALTER ROLE "{role}" LOGIN'))
    conn.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
    tables = conn.execute(text(
        "SELECT string_agg(format('%I', tablename), ', ' ORDER BY tablename) FROM pg_tables "
        "WHERE schemaname = 'public' AND tablename <> 'alembic_version'")).scalar()
    if tables:
        # Named one by one rather than ON ALL TABLES IN SCHEMA: Citus propagates a GRANT
        # on named distributed tables to their shards.
        conn.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO "{role}"'))
    conn.execute(text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
    conn.execute(text(f'REVOKE ALL ON TABLE alembic_version FROM "{role}"'))
    conn.execute(text(f'GRANT SELECT ON TABLE alembic_version TO "{role}"'))
