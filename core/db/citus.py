"""Citus: the same schema distributed by ``tenant_id`` over a coordinator and its workers.

Everything servq does differently on Citus lives here and behind :mod:`servq.core.db.fast`;
domain code never asks which engine it runs on. A database is "on Citus" when it has the
``citus`` extension (:func:`detect`); the engine remembers it (:func:`is_citus`).

- **Schema** (:func:`distribute`, :func:`citus_migration_hook`): the global tables become
  reference tables (a copy on every node), every tenant table (:func:`servq.core.db.tenant_tables`)
  is distributed by ``tenant_id`` and colocated with the others, and foreign keys are added
  *after* the tables they join are distributed (Citus checks a foreign key when it is
  made: between a local and a distributed table it refuses it). ``servq db upgrade``
  distributes what is not yet (an existing single-node database that got the extension),
  then runs the migrations with :func:`citus_migration_hook`: each ``op.create_table``
  creates its table without foreign keys, distributes it, then adds them. ``servq db
  distribute`` does the first step alone.
- **RLS context** (:func:`set_local_sql`): ``set_config(…, true)`` stays on the
  coordinator; ``SET LOCAL`` with ``citus.propagate_set_commands = 'local'`` (set on each
  connection, :func:`on_connect`) reaches every worker the transaction touches. Citus
  replays the *whole message* a ``SET`` came in on the workers, so on Citus the ``SET
  LOCAL`` travels alone: the one-message ``BEGIN; set_config(…); EXECUTE …`` of plain
  PostgreSQL is not used (:meth:`servq.core.db.tenancy.TenantSession.begin_with` answers
  ``None`` and the caller runs its query as usual).
- **App role**: Citus opens its worker connections as the current role, so on Citus the
  app role is created ``LOGIN`` (:func:`servq.core.db.migrate.grant_app_role`).
"""

from __future__ import annotations

import uuid
import weakref

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.schema import AddConstraint

#: Engines whose database has the ``citus`` extension (found at their first connection).
_CITUS: "weakref.WeakSet[Engine]" = weakref.WeakSet()

#: Tables Citus leaves alone: Alembic's bookkeeping stays a local table on the coordinator.
LOCAL_TABLES = frozenset({"alembic_version"})


def detect(connection: Connection) -> bool:
    """Whether the database of ``connection`` has the ``citus`` extension."""
    if connection.dialect.name != "postgresql":
        return False
    return bool(connection.execute(
        text("SELECT 1 FROM pg_extension WHERE extname = 'citus'")).scalar())


def is_citus(bind) -> bool:
    """Whether ``bind`` (an engine or a connection) is a Citus coordinator's."""
    engine = getattr(bind, "engine", bind)
    return engine in _CITUS


def watch(engine: Engine) -> None:
    """Find out at the engine's first connection whether it is on Citus, and prepare every
    connection for it (:func:`on_connect`)."""

    @event.listens_for(engine, "first_connect")
    def _detect(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'")
        found = cur.fetchone() is not None
        cur.close()
        dbapi_conn.rollback()
        if found:
            _CITUS.add(engine)

    @event.listens_for(engine, "connect")
    def _prepare(dbapi_conn, _record):
        if engine in _CITUS:
            on_connect(dbapi_conn)


def on_connect(dbapi_conn) -> None:
    """Have ``SET LOCAL`` reach the workers of each transaction on this connection."""
    cur = dbapi_conn.cursor()
    cur.execute("SET citus.propagate_set_commands TO 'local'")
    cur.close()
    dbapi_conn.commit()


def set_local_sql(setting: str, tenant_id) -> str:
    """``SET LOCAL setting = '<tenant uuid>'`` (empty: no tenant). The value is a
    :class:`uuid.UUID` written as a literal (``SET`` takes no parameters)."""
    value = str(uuid.UUID(str(tenant_id))) if tenant_id else ""
    return f"SET LOCAL {setting} = '{value}'"


# -- schema -----------------------------------------------------------------------------


def _tenant_table_names() -> set[str]:
    from servq.core.db import tenant_tables

    return set(tenant_tables())


def distribution(connection: Connection) -> dict[str, tuple[str, int | None]]:
    """Every table of the ``public`` schema and how Citus holds it: ``(kind, colocation)``,
    kind ``'distributed'``, ``'reference'``, ``'citus local'`` or ``'local'``."""
    rows = connection.execute(text(
        "SELECT c.relname, p.partmethod, p.repmodel, p.colocationid, p.autoconverted "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')")).all()
    out = {}
    for name, method, repmodel, colocation, _auto in rows:
        if method is None:
            out[name] = ("local", None)
        elif method == "h":
            out[name] = ("distributed", colocation)
        elif method == "n" and repmodel == "t":
            out[name] = ("reference", colocation)
        else:
            out[name] = ("citus local", colocation)
    return out


def _distribute_one(connection: Connection, name: str, tenant_tables: set[str]) -> str:
    """Make ``name`` a distributed (tenant table) or reference table; its kind."""
    if name in tenant_tables:
        anchor = connection.execute(text(
            "SELECT logicalrelid::regclass::text FROM pg_dist_partition "
            "WHERE partmethod = 'h' AND logicalrelid::regclass::text <> :t "
            "ORDER BY colocationid, logicalrelid LIMIT 1"), {"t": name}).scalar()
        connection.execute(text(
            "SELECT create_distributed_table(:t, 'tenant_id', colocate_with => :c)"),
            {"t": name, "c": anchor or "default"})
        return "distributed"
    connection.execute(text("SELECT create_reference_table(:t)"), {"t": name})
    return "reference"


def distribute(connection: Connection) -> dict[str, str]:
    """Distribute every table of the ``public`` schema that Citus does not hold yet:
    reference tables first, then the tenant tables by ``tenant_id``, colocated; the
    foreign keys that join them are dropped first and added back afterwards. Rows already
    there are moved to the shards. Runs in the caller's transaction; returns
    ``{table: kind}`` of what it distributed (empty when nothing was left)."""
    held = distribution(connection)
    todo = {name for name, (kind, _) in held.items()
            if kind in ("local", "citus local") and name not in LOCAL_TABLES}
    if not todo:
        return {}
    # Sequential: a transaction that moved rows into shards in parallel may not then
    # change a reference table or run DDL on the same tables.
    connection.execute(text("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"))
    fks = connection.execute(text(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE contype = 'f' "
        "AND (conrelid::regclass::text = ANY(:t) OR confrelid::regclass::text = ANY(:t)) "
        "ORDER BY conrelid::regclass::text, conname"), {"t": sorted(todo)}).all()
    for table, name, _ in fks:
        connection.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"'))
    # A table Citus converted itself (a local table with a foreign key to a reference
    # table) may have gone back to local with its keys; one still held is undistributed.
    held = distribution(connection)
    for table in sorted(todo):
        if held[table][0] == "citus local":
            connection.execute(text("SELECT undistribute_table(:t)"), {"t": table})
    tenant = _tenant_table_names()
    done = {}
    for table in sorted(todo, key=lambda t: (t in tenant, t)):  # reference tables first
        done[table] = _distribute_one(connection, table, tenant)
    for table, name, definition in fks:
        connection.execute(text(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'))
    return done


def citus_migration_hook(migration_context) -> None:
    """Make the migrations of ``migration_context`` distribute the tables they create:
    ``op.create_table`` creates the table and its indexes without foreign keys,
    distributes it (:func:`distribute`'s rule), then adds the foreign keys. Every future
    migration is covered without a line of its own."""
    impl = migration_context.impl
    plain = impl.create_table
    connection = migration_context.connection

    def create_table(table, **kw):
        fks = [fk for fk in table.foreign_key_constraints]
        plain(table, include_foreign_key_constraints=[], **kw)
        if table.name not in LOCAL_TABLES:
            connection.execute(text("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"))
            _distribute_one(connection, table.name, _tenant_table_names())
        for fk in fks:
            impl._exec(AddConstraint(fk))

    impl.create_table = create_table


__all__ = ["citus_migration_hook", "detect", "distribute", "distribution",
           "is_citus", "on_connect", "set_local_sql", "watch"]
