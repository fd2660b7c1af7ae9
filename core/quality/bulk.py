"""Multi-row INSERTs for the bulk paths (``servq records import``, ``POST /records/batch``,
:func:`core.quality.evaluate_records`).

On PostgreSQL, :func:`insert_rows` writes a whole chunk with **one** statement and one
parameter per column: ``INSERT INTO t (a, b, …) SELECT … FROM unnest(%s::uuid[], …)``.
psycopg sends each column as one array (binary for uuids, numbers and instants), so a
thousand rows cost one round trip and one parse instead of a thousand pipelined
executions; JSON columns travel as text, serialised once here, and are cast to
``jsonb`` by the server. Row-level security checks every row as for any INSERT (unlike
COPY, which it refuses on RLS tables). Elsewhere (SQLite), and for rows the fast path
cannot describe exactly (differing keys, an omitted column with a client-side default),
it falls back to SQLAlchemy's ``executemany``, so the result is the same either way.

With ``wait=False`` (the import's chunks) the INSERT is only *sent*: the server executes
it while Python validates and scores the next records (the machine's second core), and
its result is collected before the connection's next statement, commit or rollback (an
error, such as a row refused by row-level security, is raised there; the transaction is
then rolled back as for any failed import).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from sqlalchemy import JSON, Float, Table, event
from sqlalchemy.types import TypeDecorator

_PLANS: dict[tuple, tuple[str, tuple]] = {}


def _column_plan(table: Table, names: tuple[str, ...], dialect) -> tuple[str, tuple] | None:
    """The SQL text and the per-column converters for inserting ``names`` into ``table``."""
    key = (table.name, names, dialect.name)
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    columns = table.columns
    for column in columns:
        if column.name not in names and column.default is not None:
            return None  # SQLAlchemy would fill in a client-side default: let it
    arrays, selected, converters = [], [], []
    for n, name in enumerate(names):
        column = columns[name]
        impl = column.type.dialect_impl(dialect)
        if isinstance(column.type, TypeDecorator):
            base = column.type.impl_instance if hasattr(column.type, "impl_instance") else column.type.impl
        else:
            base = column.type
        json_like = isinstance(impl, JSON) or isinstance(base, JSON)
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
    sql = (f"INSERT INTO {table.name} ({', '.join(names)}) "
           f"SELECT {', '.join(selected)} FROM unnest({', '.join(arrays)}) AS u({aliases})")
    plan = (sql, tuple(converters))
    _PLANS[key] = plan
    return plan


_PENDING = "servq.bulk.pending"


def _raw(connection):
    """The psycopg connection under a SQLAlchemy connection."""
    return connection.connection.driver_connection


def drain(connection) -> None:
    """Collect the result of an INSERT sent with ``wait=False`` on ``connection`` (a
    SQLAlchemy connection), raising its error if it failed; a no-op when none is pending."""
    info = connection.connection.info if hasattr(connection, "connection") else connection.info
    if not info.pop(_PENDING, False):
        return
    _collect(_raw(connection))


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
    if conn.connection.info.get(_PENDING):
        drain(conn)


def _before_end(conn):
    if conn.connection.info.get(_PENDING):
        drain(conn)


def _before_rollback(conn):
    if conn.connection.info.get(_PENDING):
        try:
            drain(conn)
        except Exception:  # rolling back anyway
            pass


def _on_reset(dbapi_connection, record, reset_state):
    if record.info.pop(_PENDING, False):
        try:
            _collect(dbapi_connection)
        except Exception:  # the pool rolls back anyway
            pass


def _listen(engine) -> None:
    if not event.contains(engine, "before_cursor_execute", _before_execute):
        event.listen(engine, "before_cursor_execute", _before_execute)
        event.listen(engine, "commit", _before_end)
        event.listen(engine, "rollback", _before_rollback)
        event.listen(engine.pool, "reset", _on_reset)


def _send(connection, sql: str, params: list) -> None:
    """Send ``sql`` (``%b`` placeholders) without waiting for its result."""
    from psycopg.adapt import PyFormat, Transformer
    from psycopg.pq import TransactionStatus

    raw = _raw(connection)
    drain(connection)
    _listen(connection.engine)
    if raw.pgconn.transaction_status != TransactionStatus.INTRANS \
            or not (connection._has_events or connection.engine._has_events):
        # Outside a transaction, or a connection that would not see the event listener
        # collecting the result: wait as usual.
        connection.exec_driver_sql(sql, tuple(params))
        return
    numbered = sql
    for n in range(1, len(params) + 1):
        numbered = numbered.replace("%b", f"${n}", 1)
    transformer = Transformer(raw)
    values = transformer.dump_sequence(params, [PyFormat.BINARY] * len(params))
    raw.pgconn.send_query_params(numbered.encode(), values, transformer.types, transformer.formats)
    connection.connection.info[_PENDING] = True


def _prepared(connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> tuple[str, list] | None:
    """The unnest INSERT of ``rows`` and its parameters, or ``None`` (use executemany)."""
    dialect = connection.dialect
    names = tuple(rows[0])
    if dialect.name != "postgresql" or len(rows) < 2:
        return None
    first = rows[0].keys()
    for row in rows:
        if row.keys() != first:
            return None
    plan = _column_plan(table, names, dialect)
    if plan is None:
        return None
    sql, converters = plan
    params = []
    dumps = json.dumps
    for name, convert in zip(names, converters):
        values = [row[name] for row in rows]
        if convert == "json":
            values = [dumps(value, separators=(",", ":")) for value in values]
        elif convert == "float":
            values = [float(value) if value.__class__ is int else value for value in values]
        elif convert is not None:
            process = convert.process_bind_param
            values = [process(value, dialect) for value in values]
        params.append(values)
    return sql, params


def insert_rows(connection, table: Table, rows: Sequence[Mapping[str, Any]], *,
                wait: bool = True) -> None:
    """Insert ``rows`` (dicts keyed by column name) into ``table`` on ``connection``.

    One ``INSERT … SELECT FROM unnest(…)`` on PostgreSQL (see the module docstring);
    ``executemany`` elsewhere. Nothing is returned: the bulk paths make their ids
    client-side. ``wait=False`` only sends the INSERT (PostgreSQL; see the module
    docstring): its result is collected before the connection's next statement.
    """
    insert_tables(connection, [(table, rows)], wait=wait)


def insert_tables(connection, batches: Sequence[tuple[Table, Sequence[Mapping[str, Any]]]], *,
                  wait: bool = True) -> None:
    """:func:`insert_rows` for several tables in order; on PostgreSQL one statement for
    all of them (data-modifying ``WITH`` clauses: one round trip, one send)."""
    batches = [(table, rows) for table, rows in batches if rows]
    statements = []
    for table, rows in batches:
        prepared = _prepared(connection, table, rows)
        if prepared is None:
            drain(connection)
            connection.execute(table.insert(), list(rows))
        else:
            statements.append(prepared)
    if not statements:
        return
    *firsts, (sql, params) = statements
    if firsts:
        clauses = ", ".join(f"w{n} AS ({first})" for n, (first, _) in enumerate(firsts))
        sql = f"WITH {clauses} {sql}"
        params = [value for _, first_params in firsts for value in first_params] + params
    if wait:
        connection.exec_driver_sql(sql, tuple(params))
    else:
        _send(connection, sql, params)
