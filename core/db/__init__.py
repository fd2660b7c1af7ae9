"""Database layer: declarative base, column types, engine and session factory.

Tenancy lives in :mod:`core.db.tenancy`; this module only knows how to talk to SQLite and
PostgreSQL the same way.
"""

from __future__ import annotations

import hashlib
import re
import uuid
import weakref
from datetime import datetime, timezone
from typing import Any, NamedTuple, Sequence

from sqlalchemy import JSON, DateTime, MetaData, String, TypeDecorator, Uuid, create_engine, event
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes stored in UTC on every backend.

    SQLite keeps no offset, so values are normalised to UTC on the way in and marked
    UTC on the way out; naive datetimes are refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: servq stores only timezone-aware instants")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


JSONType = JSON().with_variant(JSONB(), "postgresql")


def contains_nul(value: Any) -> bool:
    """Whether a JSON-like value holds a NUL character anywhere (keys included).

    PostgreSQL cannot store NUL in text or jsonb; servq refuses it on every backend so
    both answer the same.
    """
    # A stack, not recursion: a body nested thousands of levels deep must not overflow.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def utcnow() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of every servq table."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        uuid.UUID: Uuid(),
        str: String(),
    }


class TenantOwned:
    """Mixin of every tenant-owned table: ``PRIMARY KEY (tenant_id, id)``.

    Rows are stamped with the session's tenant on flush and every ORM statement on these
    models is filtered to it (see :mod:`core.db.tenancy`). ``tenant_id`` comes first in the
    key so the schema can be distributed by it (Citus).
    """

    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, sort_order=-2)
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4, sort_order=-1)


def tenant_tables() -> list[str]:
    """Names of the tables that hold tenant-owned rows (for RLS, export and delete)."""
    return sorted(
        mapper.local_table.name
        for mapper in Base.registry.mappers
        if issubclass(mapper.class_, TenantOwned)
    )


SUPPORTED_URL_PREFIXES = ("sqlite", "postgresql")

#: Execution option of a connection whose transactions write (a write request's): on
#: SQLite they begin with ``BEGIN IMMEDIATE``, so write transactions run one at a time.
WRITE_TRANSACTION = "servq_write_transaction"


def dialect_insert(session):
    """The ``insert`` construct of the session's database, which has ``ON CONFLICT``
    (``on_conflict_do_nothing`` / ``on_conflict_do_update``) on both backends servq runs
    on; :func:`make_engine` refuses any other."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def make_engine(url: str, app_role: str | None = None) -> Engine:
    """Create the engine for ``url``.

    SQLite: WAL, foreign keys on, a busy timeout. PostgreSQL: ``SET ROLE app_role`` on
    every new connection when given, so row-level security applies to the application
    even when it connects as the owner.
    """
    if not url.startswith(SUPPORTED_URL_PREFIXES):
        raise ValueError(f"servq runs on SQLite or PostgreSQL; DATABASE_URL names neither: "
                         f"{url.split(':', 1)[0]}")
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        # No pre-ping: it costs a round trip per request; a dropped connection is
        # detected on use, the pool is invalidated and the request answers 503.
        kwargs.update(pool_size=10, max_overflow=20, pool_recycle=900)
    engine = create_engine(url, **kwargs)

    if engine.dialect.name == "sqlite":
        # KPIs' tenant-local periods and percentiles (PostgreSQL has its own).
        from servq.core.kpis.sql import register_sqlite_functions

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Let SQLAlchemy own transactions: pysqlite's own BEGIN handling breaks
            # SAVEPOINTs and "BEGIN IMMEDIATE".
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            register_sqlite_functions(dbapi_conn)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # A write request's connection (WRITE_TRANSACTION, see
            # core.db.session.request_session) takes the database's write lock at BEGIN:
            # SQLite writers then wait for each other (busy timeout above) instead of
            # reading, comparing an ETag, and failing to upgrade to a writer (or both
            # winning). Reads keep the plain BEGIN and run alongside (WAL).
            if conn.get_execution_options().get(WRITE_TRANSACTION):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

    else:
        _listen_for_deferred(engine)

    if engine.dialect.name != "sqlite" and app_role:

        @event.listens_for(engine, "connect")
        def _set_role(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute(f'SET ROLE "{app_role}"')
            cur.close()
            dbapi_conn.commit()

    return engine


def driver_cursor(connection):
    """The DB-API cursor kept for :func:`driver_execute` on this pooled connection."""
    fairy = connection.connection
    cursor = fairy.info.get("servq.cursor")
    if cursor is None or cursor.closed:
        cursor = fairy.info["servq.cursor"] = fairy.driver_connection.cursor()
    return cursor


def driver_execute(connection, sql: str, params):
    """Run ``sql`` straight on the DB-API (psycopg) connection under ``connection``, in its
    transaction, and return the cursor.

    For the few statements every request runs (the RLS context, the token lookup, the
    audit row): SQLAlchemy's statement machinery costs several times what the driver
    does for them. Parameters go to the driver as they are (no type processing), so the
    SQL is written for PostgreSQL. The engine's ``before_cursor_execute`` and
    ``after_cursor_execute`` listeners run as for any statement; driver errors are raised
    as SQLAlchemy's, with a lost connection invalidated, as :meth:`Connection.execute`
    would.
    """
    dialect = connection.dialect
    try:
        cursor = driver_cursor(connection)
        events = connection._has_events or connection.engine._has_events
        if events:
            # The engine's listeners see the statement as any other (statement counters,
            # core.db.fast.bulk collecting a result it left pending on the connection).
            for fn in connection.dispatch.before_cursor_execute:
                sql, params = fn(connection, cursor, sql, params, None, False)
        cursor.execute(sql, params)
        if events:
            connection.dispatch.after_cursor_execute(connection, cursor, sql, params, None, False)
    except dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy(connection, exc, sql, params) from exc
    return cursor


def _as_sqlalchemy(connection, exc, sql: str, params, *, lost: bool = False):
    """The driver error ``exc`` as SQLAlchemy would raise it from
    :meth:`Connection.execute`, ``connection`` invalidated if it was lost (``lost``: the
    caller saw it go)."""
    dialect = connection.dialect
    disconnect = lost or dialect.is_disconnect(exc, connection.connection.dbapi_connection, None)
    if disconnect:
        connection.invalidate(exc)
    return sqlalchemy_exc.DBAPIError.instance(
        sql, params, exc, dialect.loaded_dbapi.Error,
        connection_invalidated=disconnect, dialect=dialect)


class Prepared(NamedTuple):
    """A statement prepared on the PostgreSQL server once per connection, under a name
    derived from its text (so a changed statement is a new one): see
    :func:`driver_begin_with`. Make it with :func:`prepared`."""

    name: bytes
    declaration: bytes  # PREPARE name (types) AS sql


def prepared(label: str, sql: str, types: Sequence[str]) -> Prepared:
    """A :class:`Prepared` statement: ``sql`` with ``$1``, ``$2``… of ``types`` (empty:
    the server infers them)."""
    digest = hashlib.sha256(f"{types}{sql}".encode()).hexdigest()[:10]
    name = f"servq_{label}_{digest}"
    declared = f" ({', '.join(types)})" if types else ""  # none: inferred from the statement
    return Prepared(name.encode(), f"PREPARE {name}{declared} AS {sql}".encode())


_PREPARED = "servq.prepared"  # (psycopg connection, names prepared, names refused)


def driver_begin(connection, sql: str) -> bool:
    """Open the transaction of the psycopg connection under ``connection`` and run
    ``sql`` in it, both in **one** round trip; ``False`` (nothing sent) when a
    transaction is already open or the connection is in autocommit mode.

    psycopg sends its ``BEGIN`` in a round trip of its own before a transaction's first
    statement; a statement that every transaction starts with (the RLS context) can
    travel with it instead: ``BEGIN …; <sql>`` as one simple-protocol message. ``sql``
    takes no parameters: it is sent as it is, so build it from trusted values only. The
    ``BEGIN`` is psycopg's own (the connection's isolation level and read-only mode), and
    afterwards psycopg sees an open transaction, which it commits or rolls back as usual.
    The engine's cursor listeners see ``sql``; errors come out as from
    :func:`driver_execute`.
    """
    return _begin(connection, sql, None, ()) is not None


def driver_begin_with(connection, sql: str, statement: Prepared, args: Sequence[Any]
                      ) -> list[tuple] | None:
    """:func:`driver_begin`, then ``statement`` executed with ``args``, all in the same
    round trip; returns ``statement``'s rows (``None``: nothing sent, as
    :func:`driver_begin`).

    For the query every request starts with (authentication): the message reads
    ``BEGIN; <sql>; EXECUTE <name>(<args as literals>)``. The statement is prepared on
    the server the first time the connection runs it (``PREPARE`` in the same message),
    so the server plans it as rarely as a statement psycopg prepares; if the server lost
    it (``DEALLOCATE ALL``, which psycopg sends after a rollback once it has prepared
    statements of its own), the transaction is rolled back and begun again with the
    ``PREPARE``. ``args`` are quoted by psycopg's adapters; the rows come back as
    psycopg's cursors would load them.
    """
    return _begin(connection, sql, statement, args)


def _begin(connection, sql: str, statement: Prepared | None, args: Sequence[Any]
           ) -> list[tuple] | None:
    from psycopg import errors
    from psycopg.adapt import Transformer
    from psycopg.pq import ConnStatus, ExecStatus, TransactionStatus

    fairy = connection.connection
    raw = fairy.driver_connection
    if raw.autocommit or raw.pgconn.transaction_status != TransactionStatus.IDLE:
        return None
    fairy.info.pop(_CLEAN, None)
    tx_start = getattr(raw, "_get_tx_start_command", None)
    begin = tx_start() if tx_start is not None else b"BEGIN"
    dialect = connection.dialect
    transformer = None
    if statement is not None:
        transformer = Transformer(raw)
        call = _execute_call(transformer, statement, args)
        known = fairy.info.get(_PREPARED)
        if known is None or known[0] is not raw:  # a new connection under this record
            known = fairy.info[_PREPARED] = (raw, set(), set())
    try:
        events = connection._has_events or connection.engine._has_events
        seen = sql if statement is None else f"{sql}; {call.decode()}"
        if events:
            cursor = driver_cursor(connection)
            for fn in connection.dispatch.before_cursor_execute:
                seen, _ = fn(connection, cursor, seen, (), None, False)
        with raw.lock:
            if statement is None:
                result = raw.pgconn.exec_(begin + b"; " + seen.encode())
            else:
                result = _exec_prepared(raw, begin + b"; " + sql.encode(), call, statement, *known[1:])
        if result.status not in (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK):
            raise errors.error_from_result(result, encoding=raw.info.encoding)
        if events:
            connection.dispatch.after_cursor_execute(connection, cursor, seen, (), None, False)
    except dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy(connection, exc, seen, (), lost=raw.pgconn.status != ConnStatus.OK) from exc
    if transformer is None:
        return []
    if connection.engine in _DEFERRING:
        # Every statement the connection knows is on the server (the EXECUTE found its
        # own), and nothing has run since: driver_defer may hold one back.
        fairy.info[_CLEAN] = True
    transformer.set_pgresult(result)
    return transformer.load_rows(0, result.ntuples, tuple)


_PLAIN = re.compile(r"[0-9A-Za-z_-]*")


def _literal(transformer, value: Any) -> bytes:
    """``value`` as an SQL literal: uuids and plain words directly (the arguments of the
    authentication query), anything else by psycopg's adapters."""
    cls = value.__class__
    if cls is uuid.UUID:
        return b"'" + str(value).encode() + b"'::uuid"
    if cls is str and _PLAIN.fullmatch(value):
        return b"'" + value.encode() + b"'"
    return transformer.as_literal(value)


def _execute_call(transformer, statement: Prepared, args: Sequence[Any]) -> bytes:
    """``EXECUTE <statement>(<args as literals>)``."""
    return b"EXECUTE " + statement.name + b"(" + b", ".join(
        _literal(transformer, arg) for arg in args) + b")"


# The server's answers when a prepared statement is not there, or already is.
_MISSING, _DUPLICATE = b"26000", b"42P05"


def _exec_prepared(raw, head: bytes, call: bytes, statement: Prepared, known: set, refused: set):
    """Send ``head`` (``BEGIN; …``) then ``call`` (``EXECUTE <statement>(…)``) as one
    message, with a ``PREPARE`` between them of each statement the connection has not
    prepared (per ``known``): ``statement`` and those of :func:`prepare_on_begin`. If the
    server's prepared statements were not what ``known`` said, ``known`` is read from
    the server after a rollback, and the message sent again; if one of
    :func:`prepare_on_begin`'s statements cannot be prepared, it goes to ``refused``
    (never again on this connection) and the message is sent again without it."""
    from psycopg.pq import DiagnosticField, ExecStatus

    for attempt in (1, 2, 3):
        others = [other for name, other in _ON_BEGIN.items()
                  if name not in known and name not in refused and name != statement.name]
        missing = ([statement] if statement.name not in known else []) + others
        declare = b"".join(other.declaration + b"; " for other in missing)
        result = raw.pgconn.exec_(head + b"; " + declare + call)
        if result.status == ExecStatus.TUPLES_OK:
            known.update(other.name for other in missing)
            break
        if result.status != ExecStatus.FATAL_ERROR or attempt == 3:
            break
        state = result.error_field(DiagnosticField.SQLSTATE)
        if state in (_MISSING, _DUPLICATE):
            raw.pgconn.exec_(b"ROLLBACK")
            listed = raw.pgconn.exec_(b"SELECT name FROM pg_prepared_statements")
            known.clear()
            if listed.status == ExecStatus.TUPLES_OK:
                known.update(listed.get_value(row, 0) for row in range(listed.ntuples))
        elif others:  # not the authentication's fault: leave them out
            raw.pgconn.exec_(b"ROLLBACK")
            refused.update(other.name for other in others)
        else:
            break
    return result


# -- statements sent with the next one --------------------------------------------------

_CLEAN = "servq.clean"        # began with driver_begin_with, nothing run since
_DEFERRED = "servq.deferred"  # [(statement, args)] held back by driver_defer
_ON_BEGIN: dict[bytes, Prepared] = {}
_DEFERRING: "weakref.WeakSet[Engine]" = weakref.WeakSet()


def prepare_on_begin(statement: Prepared) -> None:
    """Have ``statement`` prepared on each connection by the first
    :func:`driver_begin_with` that finds it unprepared (in the same message), so that
    :func:`driver_defer` can send it."""
    _ON_BEGIN.setdefault(statement.name, statement)


def connection_used(connection) -> None:
    """Say that something was queued on ``connection`` without passing the engine's
    cursor listeners (:mod:`core.db.fast.bulk`): :func:`driver_defer` holds nothing back
    after it, which would be sent before it."""
    connection.connection.info.pop(_CLEAN, None)


def driver_defer(connection, statement: Prepared, args: Sequence[Any]) -> bool:
    """Hold back ``statement`` (executed with ``args``) until the next statement or the
    ``COMMIT`` of the transaction, and send it in the same message as the ``COMMIT``:
    one round trip fewer for a transaction that writes one statement and commits
    (creating a record). ``False`` (nothing held: run it now) unless the transaction
    began with :func:`driver_begin_with`, nothing has run since and the connection has
    ``statement`` prepared (:func:`prepare_on_begin`): the one case in which it is sure
    to be on the server still.

    Anything else sent on the connection first sends what is held (the engine's
    ``before_cursor_execute``, which the driver shortcuts of this module dispatch too),
    a rollback drops it. An error of the held statement is raised by the commit
    (``Session.commit``), as SQLAlchemy's exception, the transaction rolled back. The
    engine's cursor listeners see ``EXECUTE …; COMMIT`` as one statement, once sent.
    """
    fairy = connection.connection
    info = fairy.info
    if not info.get(_CLEAN):
        return False
    known = info.get(_PREPARED)
    if known is None or known[0] is not fairy.driver_connection or statement.name not in known[1]:
        return False
    info.setdefault(_DEFERRED, []).append((statement, args))
    return True


def _send_deferred(connection, deferred, *, commit: bool) -> None:
    from psycopg import errors
    from psycopg.adapt import Transformer
    from psycopg.pq import ConnStatus, ExecStatus

    fairy = connection.connection
    raw = fairy.driver_connection
    transformer = Transformer(raw)
    calls = [_execute_call(transformer, statement, args) for statement, args in deferred]
    if commit:
        calls.append(b"COMMIT")
    message = b"; ".join(calls)
    seen = message.decode(raw.info.encoding, "replace")
    dialect = connection.dialect
    try:
        with raw.lock:
            result = raw.pgconn.exec_(message)
            if result.status not in (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK) and commit:
                # As a failed COMMIT leaves it: the transaction over, rolled back.
                raw.pgconn.exec_(b"ROLLBACK")
        if result.status not in (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK):
            raise errors.error_from_result(result, encoding=raw.info.encoding)
        # The listeners hear of it once it is sent: one of them sending what it queued
        # meanwhile (core.db.fast.bulk) sends it after, as it was queued after.
        cursor = driver_cursor(connection)
        for fn in connection.dispatch.before_cursor_execute:
            seen, _ = fn(connection, cursor, seen, (), None, False)
        connection.dispatch.after_cursor_execute(connection, cursor, seen, (), None, False)
    except dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy(connection, exc, seen, (), lost=raw.pgconn.status != ConnStatus.OK) from exc


def _send_held(conn, *, commit: bool) -> None:
    """The connection is used: nothing more may be held back; send what is, with the
    COMMIT if ``commit`` (psycopg then finds no transaction open and sends none)."""
    info = conn.connection.info
    info.pop(_CLEAN, None)
    deferred = info.pop(_DEFERRED, None)
    if deferred:
        _send_deferred(conn, deferred, commit=commit)


def _before_statement(conn, cursor, statement, parameters, context, executemany):
    _send_held(conn, commit=False)


def _before_commit(conn):
    _send_held(conn, commit=True)


def _before_rollback(conn):
    info = conn.connection.info
    info.pop(_CLEAN, None)
    info.pop(_DEFERRED, None)


def _on_reset(dbapi_connection, record, reset_state):
    record.info.pop(_CLEAN, None)
    record.info.pop(_DEFERRED, None)


def _listen_for_deferred(engine: Engine) -> None:
    event.listen(engine, "before_cursor_execute", _before_statement)
    event.listen(engine, "commit", _before_commit)
    event.listen(engine, "rollback", _before_rollback)
    event.listen(engine.pool, "reset", _on_reset)
    _DEFERRING.add(engine)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    """A session factory bound to ``engine`` whose sessions carry tenancy (see tenancy)."""
    from servq.core.db.tenancy import TenantSession

    return sessionmaker(bind=engine, class_=TenantSession, expire_on_commit=False)
