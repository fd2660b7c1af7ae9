"""Multi-row INSERTs for the bulk paths (``servq records import``, ``POST /records/batch``,
the scoring step :func:`core.records.evaluate.evaluate_records`).

On PostgreSQL, :func:`insert_rows` writes a whole chunk with **one** statement and one
parameter per column: the column's values as one PostgreSQL array in its binary form,
encoded here, which the server reads without parsing text::

    INSERT INTO t (a, b, …) SELECT c0, c1::jsonb, … FROM unnest($1::uuid[], $2::text[], …) AS u(c0, c1, …)

A thousand rows cost one round trip and no parsing but that of JSON values (the
server's ``jsonb`` input of each). Row-level security checks every row as for any INSERT
(unlike COPY, which it refuses on RLS tables). The arrays carry exactly what the other
paths store: uuids, text, 32-bit integers, floats (non-finite ones too), booleans and
dates as themselves; instants as their UTC microseconds (a datetime in another zone or
naive is converted by its column type first, as SQLAlchemy does); JSON values as their
text, serialised by orjson (where orjson refuses a value, an integer beyond 64 bits or a
key that is not a string, by ``json``), so a ``None`` in a JSON column is JSON ``null``,
as SQLAlchemy stores it. A JSON value may also be a :class:`JsonText`, JSON serialised
beforehand, which goes in as it is. The values of JSON columns are expected to be JSON
data already (the callers' are: validated record data, audit changes, evaluation items).
An id column left out of the rows whose Python default is :func:`uuid.uuid4` (``id`` of
every tenant-owned table) is filled by the statement with ``gen_random_uuid()``, the same
kind of id, made by the server (elsewhere SQLAlchemy fills it in as usual); the callers
that need no ids back leave them out.

A chunk these arrays cannot carry exactly (a value of another type than its column's,
an integer beyond 32 bits, a column type with conversions of its own) takes psycopg's
arrays instead (``_unnest``), which adapt such values as psycopg always does. Elsewhere
(SQLite), and for rows neither describes (differing keys, a left-out column with
another client-side default, a single row not to be queued), it falls back to
SQLAlchemy's ``executemany``, so the result is the same either way.

With ``wait=False`` the INSERT is *queued* on the connection instead (PostgreSQL): the
queued INSERTs go to the server as **one** statement (data-modifying ``WITH`` clauses),
sent by :func:`send_queued` or, at the latest, before the connection's next statement,
commit or rollback. A sent statement is not waited for either: the server executes it
while Python goes on (the machine's second core), and its result is collected before the
connection's next statement, commit or rollback (an error, such as a row refused by
row-level security, is raised there; the transaction is then rolled back as for any
failed import). A bulk import queues everything one chunk writes (records, audit events,
evaluations, corrective actions, notifications, KPI day marks) and sends it when the
chunk is done, so that the server writes chunk *n* while Python validates and scores
chunk *n + 1*. Rollback drops what is queued. ``on_conflict`` (PostgreSQL only) appends
an ``ON CONFLICT`` clause to a queued INSERT.

:func:`new_ids` makes the ids the bulk paths need client-side, time-ordered, several times
faster than :func:`uuid.uuid4`.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager

import os
import re
import struct
import time
import uuid
from datetime import timezone
from operator import methodcaller
from typing import Any, Mapping, Sequence

from sqlalchemy import JSON, Float, Table, event
from sqlalchemy.types import TypeDecorator

from servq.core.db.fast.arrays import JsonText, _Array, _base_type, _binary, _dump_json, _server_made
from servq.core.db.citus import is_citus
from servq.core.db.fast.driver import connection_used, driver_cursor

_UTC = timezone.utc
_keys = methodcaller("keys")


class RowView:
    """A row (a dict keyed by column name) read as attributes, like the ORM object of that
    row: ``view.kind`` is ``row["kind"]``. The bulk paths read rows this way where no ORM
    object is needed, at the cost of a dict lookup per attribute."""

    __slots__ = ("__dict__",)

    def __init__(self, row: dict[str, Any]):
        self.__dict__ = row


_new_object = object.__new__
_set = object.__setattr__
_UUID, _UNKNOWN = uuid.UUID, uuid.SafeUUID.unknown
_RAND_B = (1 << 62) - 1
_V7 = (7 << 76) | (2 << 62)  # version 7, variant RFC 9562
_last_tick = 0


def new_ids(count: int) -> list[uuid.UUID]:
    """``count`` new ids, time-ordered (UUIDv7, RFC 9562): the Unix time in milliseconds,
    a 12-bit counter within the millisecond (so that ids of one process only increase)
    and 62 random bits (from ``os.urandom``).

    The bulk paths write thousands of rows at once; ids that follow each other put each
    chunk's index entries at the end of the primary key and of the indexes on ``record_id``
    instead of on random pages all over them. On a million-record import that cut the
    pages PostgreSQL logs whole after its checkpoints by three quarters and its time per
    record by a sixth. Each object is built as ``uuid.UUID.__init__`` builds it, without
    its checks.
    """
    global _last_tick
    tick = max(time.time_ns() // 1_000_000 << 12, _last_tick + 1)
    _last_tick = tick + count - 1
    ids = []
    append = ids.append
    new, set_, cls, unknown, mask = _new_object, _set, _UUID, _UNKNOWN, _RAND_B
    for at, rand in enumerate(struct.unpack(f">{count}Q", os.urandom(8 * count)), tick):
        value = new(cls)
        set_(value, "int", ((at >> 12) << 80 | (at & 0xFFF) << 64 | _V7) | rand & mask)
        set_(value, "is_safe", unknown)
        append(value)
    return ids


# -- the unnest path (PostgreSQL) -------------------------------------------------------


_PLANS: dict[tuple, tuple[str, tuple]] = {}


def _column_plan(table: Table, names: tuple[str, ...], dialect) -> tuple[str, tuple] | None:
    """The SQL text and the per-column converters for inserting ``names`` into ``table``."""
    key = (table.name, names, dialect.name)
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    columns = table.columns
    made = _server_made(table, names)
    if made is None:
        return None  # SQLAlchemy would fill in a client-side default: let it
    arrays, selected, converters = [], [], []
    for n, name in enumerate(names):
        column = columns[name]
        impl = column.type.dialect_impl(dialect)
        json_like = isinstance(impl, JSON) or isinstance(_base_type(column.type), JSON)
        if json_like:
            arrays.append("%b::text[]")
            selected.append(f"c{n}::jsonb")
            converters.append("json")
        else:
            sql_type = impl.compile(dialect=dialect) if not isinstance(impl, TypeDecorator) \
                else impl.impl.compile(dialect=dialect)
            arrays.append(f"%b::{sql_type}[]")
            selected.append(f"c{n}")
            if isinstance(column.type, TypeDecorator):
                converters.append(column.type)
            elif isinstance(impl, Float):
                converters.append("float")  # psycopg refuses arrays mixing int and float
            else:
                converters.append(None)
    aliases = ", ".join(f"c{n}" for n in range(len(names)))
    sql = (f"INSERT INTO {table.name} ({', '.join((*names, *made))}) "
           f"SELECT {', '.join(selected + ['gen_random_uuid()'] * len(made))} "
           f"FROM unnest({', '.join(arrays)}) AS u({aliases})")
    plan = (sql, tuple(converters))
    _PLANS[key] = plan
    return plan


def _unnest(connection, table: Table, rows: Sequence[Mapping[str, Any]],
            names: tuple[str, ...]) -> tuple[str, list] | None:
    """The unnest INSERT of ``rows`` and its parameters, or ``None`` (use executemany)."""
    dialect = connection.dialect
    plan = _column_plan(table, names, dialect)
    if plan is None:
        return None
    sql, converters = plan
    params = []
    for name, convert in zip(names, converters):
        values = [row[name] for row in rows]
        if convert == "json":
            values = [_dump_json(value) for value in values]
        elif convert == "float":
            values = [float(value) if value.__class__ is int else value for value in values]
        elif convert is not None:
            process = convert.process_bind_param
            values = [process(value, dialect) for value in values]
        params.append(values)
    return sql, params


# -- sending ----------------------------------------------------------------------------


_PENDING = "servq.bulk.pending"
_QUEUED = "servq.bulk.queued"


def _raw(connection):
    """The psycopg connection under a SQLAlchemy connection."""
    return connection.connection.driver_connection


def drain(connection) -> None:
    """Send what is queued on ``connection`` (a SQLAlchemy connection) and collect the
    result of what was sent without waiting, raising its error if it failed; a no-op when
    nothing is queued or pending."""
    if connection.connection.info.get(_QUEUED):
        send_queued(connection)
    _collect_pending(connection)


def _collect_pending(connection) -> None:
    if connection.connection.info.pop(_PENDING, False):
        _collect(_raw(connection))


def send_queued(connection) -> None:
    """Send the INSERTs queued on ``connection`` (``wait=False``) as one statement, without
    waiting for it (after collecting the result of the one sent before it)."""
    queued = connection.connection.info.pop(_QUEUED, None)
    if queued:
        _send(connection, *_combined(queued))


def _combined(statements: Sequence[tuple[str, list]]) -> tuple[str, list]:
    """One statement (and its parameters) doing all of ``statements`` (INSERTs): the last
    one with the others as data-modifying ``WITH`` clauses."""
    *firsts, (sql, params) = statements
    if firsts:
        clauses = ", ".join(f"w{n} AS ({first})" for n, (first, _) in enumerate(firsts))
        sql = f"WITH {clauses} {sql}"
        params = [value for _, first_params in firsts for value in first_params] + params
    return sql, params


def _collect(raw) -> None:
    from psycopg import errors
    from psycopg.pq import ExecStatus

    pgconn = raw.pgconn
    failed = None
    while True:
        result = pgconn.get_result()
        if result is None:
            break
        if result.status != ExecStatus.COMMAND_OK and failed is None:
            failed = result
    if failed is not None:
        raise errors.error_from_result(failed, encoding=raw.info.encoding)


def _before_execute(conn, cursor, statement, parameters, context, executemany):
    info = conn.connection.info
    if info.get(_PENDING) or info.get(_QUEUED):
        drain(conn)


def _before_end(conn):
    info = conn.connection.info
    if info.get(_PENDING) or info.get(_QUEUED):
        drain(conn)


def _before_rollback(conn):
    info = conn.connection.info
    info.pop(_QUEUED, None)  # never sent: nothing to undo
    if info.get(_PENDING):
        try:
            _collect_pending(conn)
        except Exception:  # rolling back anyway
            pass


def _on_reset(dbapi_connection, record, reset_state):
    record.info.pop(_QUEUED, None)
    if record.info.pop(_PENDING, False):
        try:
            _collect(dbapi_connection)
        except Exception:  # the pool rolls back anyway
            pass


def _listen(engine) -> None:
    if not event.contains(engine, "before_cursor_execute", _before_execute):
        event.listen(engine, "before_cursor_execute", _before_execute)
        # First among the commit listeners: what is queued here is sent before the
        # COMMIT that core.db.driver_defer may send with a held-back statement.
        event.listen(engine, "commit", _before_end, insert=True)
        event.listen(engine, "rollback", _before_rollback)
        event.listen(engine.pool, "reset", _on_reset)


_PLACEHOLDER = re.compile(r"%b")


def _in_transaction(raw) -> bool:
    """Whether the psycopg connection ``raw`` is in an open transaction block."""
    from psycopg.pq import TransactionStatus

    return raw.pgconn.transaction_status == TransactionStatus.INTRANS


def _execute(connection, sql: str, params: list) -> None:
    """Run ``sql`` (``%b`` placeholders) through SQLAlchemy and wait for it. The
    connection's psycopg adapters learn the dumpers of its :class:`_Array` parameters
    first (the connection's own map: SQLAlchemy gives each connection a copy)."""
    from psycopg.adapt import PyFormat

    adapters = _raw(connection).adapters
    for cls in {param.__class__ for param in params if isinstance(param, _Array)}:
        if adapters.get_dumper(cls, PyFormat.BINARY) is not cls.dumper:
            adapters.register_dumper(cls, cls.dumper)
    connection.exec_driver_sql(sql, tuple(params))


def _send(connection, sql: str, params: list) -> None:
    """Send ``sql`` (``%b`` placeholders) without waiting for its result. The engine's
    cursor listeners see it as any other statement (see :func:`core.db.driver_execute`)."""
    from psycopg.adapt import PyFormat, Transformer

    raw = _raw(connection)
    _collect_pending(connection)
    _listen(connection.engine)
    if not _in_transaction(raw) \
            or not (connection._has_events or connection.engine._has_events) \
            or raw.info.encoding != "utf-8":
        # Outside a transaction, or a connection that would not see the event listener
        # collecting the result: wait as usual.
        _execute(connection, sql, params)
        return
    cursor = driver_cursor(connection)
    for fn in connection.dispatch.before_cursor_execute:
        sql, params = fn(connection, cursor, sql, params, None, False)
    numbers = iter(range(1, len(params) + 1))
    numbered = _PLACEHOLDER.sub(lambda match: f"${next(numbers)}", sql)
    lists = [param for param in params if not isinstance(param, _Array)]
    dumped = iter(())
    if lists:
        transformer = Transformer(raw)
        dumped = iter(zip(transformer.dump_sequence(lists, [PyFormat.BINARY] * len(lists)),
                          transformer.types, transformer.formats))
    values, types, formats = [], [], []
    for param in params:
        if isinstance(param, _Array):
            value, oid, fmt = param, param.oid, 1  # encoded already
        else:
            value, oid, fmt = next(dumped)
        values.append(value)
        types.append(oid)
        formats.append(fmt)
    raw.pgconn.send_query_params(numbered.encode(), values, types, formats)
    connection.connection.info[_PENDING] = True
    connection.dispatch.after_cursor_execute(connection, cursor, sql, params, None, False)


def _plain(rows: Sequence[Mapping[str, Any]]) -> list:
    """``rows`` with every :class:`JsonText` parsed (for ``executemany``)."""
    out = []
    for row in rows:
        if any(value.__class__ is JsonText for value in row.values()):
            row = {name: value.value() if value.__class__ is JsonText else value
                   for name, value in row.items()}
        out.append(row)
    return out


#: Parameters per multi-row INSERT on Citus (psycopg and the server take at most 65,535).
_VALUES_PARAMETERS = 30_000


def _insert_values(connection, table: Table, rows: Sequence[Mapping[str, Any]],
                   on_conflict: str | None) -> None:
    """Citus: ``rows`` as plain multi-row ``INSERT … VALUES`` statements, executed at once.

    Citus routes such an INSERT to the shard of each row's ``tenant_id`` (one shard: the
    rows of a session are its tenant's), where row-level security checks it; the unnest
    ``INSERT … SELECT`` of plain PostgreSQL is not pushed down to a shard: Citus runs its
    SELECT on the coordinator and copies the rows into the shards with COPY, which
    row-level security refuses. Column defaults and types are SQLAlchemy's, as for
    ``executemany``."""
    from sqlalchemy import text
    from sqlalchemy.dialects.postgresql import insert

    groups: dict[tuple, list] = {}
    for row in _plain(rows):
        groups.setdefault(tuple(row), []).append(row)
    for names, group in groups.items():
        size = max(1, _VALUES_PARAMETERS // max(1, len(table.columns)))
        for start in range(0, len(group), size):
            stmt = insert(table).values(group[start:start + size])
            if on_conflict is not None:
                # The caller's clause as it is (what on_conflict_do_* would build).
                stmt._post_values_clause = text(on_conflict)
            connection.execute(stmt)


def insert_rows(connection, table: Table, rows: Sequence[Mapping[str, Any]], *,
                wait: bool = True, on_conflict: str | None = None) -> None:
    """Insert ``rows`` (dicts keyed by column name) into ``table`` on ``connection``.

    One ``INSERT … SELECT … FROM unnest(…)`` on PostgreSQL (see the module
    docstring); ``executemany`` elsewhere. Nothing is returned: the bulk paths make their
    ids client-side (:func:`new_ids`) or leave them out for the database to make.
    ``wait=False`` queues the INSERT (PostgreSQL; see the module docstring): it is sent
    with the connection's other queued INSERTs by :func:`send_queued` or before the
    connection's next statement. ``on_conflict``: an ``ON CONFLICT …`` clause for the
    INSERT, on PostgreSQL only.
    """
    insert_tables(connection, [(table, rows)], wait=wait, on_conflict=on_conflict)


def insert_tables(connection, batches: Sequence[tuple[Table, Sequence[Mapping[str, Any]]]], *,
                  wait: bool = True, on_conflict: str | None = None) -> None:
    """:func:`insert_rows` for several tables in order; on PostgreSQL one statement for
    all of them (data-modifying ``WITH`` clauses: one round trip, one send)."""
    batches = [(table, rows) for table, rows in batches if rows]
    statements = []
    postgresql = connection.dialect.name == "postgresql"
    if on_conflict is not None and not postgresql:
        raise ValueError("on_conflict is for PostgreSQL only")
    if postgresql and is_citus(connection):
        drain(connection)
        for table, rows in batches:
            _insert_values(connection, table, rows, on_conflict)
        return
    for table, rows in batches:
        prepared = None
        # A lone row is as quick through executemany, unless it is to be queued.
        if postgresql and (len(rows) >= 2 or not wait):
            first = rows[0].keys()
            if all(map(first.__eq__, map(_keys, rows))):
                names = tuple(first)
                prepared = _binary(connection, table, rows, names) \
                    or _unnest(connection, table, rows, names)
        if prepared is None:
            if on_conflict is not None:
                raise ValueError(f"rows for {table.name} that only executemany can insert "
                                 "take no on_conflict clause")
            drain(connection)
            connection.execute(table.insert(), _plain(rows))
        else:
            if on_conflict is not None:
                prepared = (f"{prepared[0]} {on_conflict}", prepared[1])
            statements.append(prepared)
    if not statements:
        return
    # Queued only in a transaction block (one was sent without waiting: in one still).
    if not wait and (connection.connection.info.get(_PENDING) or _in_transaction(_raw(connection))):
        _listen(connection.engine)
        connection_used(connection)  # nothing may be held back to go before it
        connection.connection.info.setdefault(_QUEUED, []).extend(statements)
        return
    drain(connection)
    _execute(connection, *_combined(statements))


@contextmanager
def bulk_gc():
    """Fewer garbage collections while a command writes a great deal at once (a file
    imported, the demo tenants loaded).

    Such work allocates millions of short-lived objects; with the default thresholds the
    collector runs full passes over the app's own few hundred thousand long-lived objects
    again and again, which cost about 30 % of an import's CPU time. The objects that exist
    before are frozen (never scanned) and the thresholds raised; both are restored
    afterwards. Meant for a one-command process (the CLI), not a web worker.
    """
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(previous[0], 50_000), max(previous[1], 20), max(previous[2], 100))
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
