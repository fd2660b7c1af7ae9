"""Driver-level shortcuts on PostgreSQL (psycopg): statements sent straight on the DB-API
connection, statements prepared on the server once per connection, a statement sent with
the transaction's ``BEGIN``, and a statement held back until the ``COMMIT``.

Part of the fast lane: import it through :mod:`servq.core.db.fast` (its door), which
lists each trick with its measured gain and its fallback.
"""

from __future__ import annotations

import hashlib
import re
import uuid
import weakref
from typing import Any, NamedTuple, Sequence

from sqlalchemy import event
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy.engine import Engine


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


def listen_for_deferred(engine: Engine) -> None:
    event.listen(engine, "before_cursor_execute", _before_statement)
    event.listen(engine, "commit", _before_commit)
    event.listen(engine, "rollback", _before_rollback)
    event.listen(engine.pool, "reset", _on_reset)
    _DEFERRING.add(engine)
