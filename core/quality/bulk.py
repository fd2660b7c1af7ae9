"""Multi-row INSERTs for the bulk paths (``servq records import``, ``POST /records/batch``,
:func:`core.quality.evaluate_records`).

On PostgreSQL, :func:`insert_rows` writes a whole chunk with **one** statement and **one**
parameter: the rows as one JSON document (an array of objects keyed by column name),
serialised by orjson, which the server turns back into rows::

    INSERT INTO t (a, b, …) SELECT a, b, … FROM json_to_recordset($1::json) AS x(a uuid, b jsonb, …)

A thousand rows cost one round trip, one parse and one serialisation in C; a JSON column
takes its value's nested JSON as it is. Row-level security checks every row as for any
INSERT (unlike COPY, which it refuses on RLS tables). What orjson writes is what the other
paths store: uuids as their text, instants (UTC, as their column type makes them) with
their offset, numbers and text as JSON; a ``None`` in a JSON column is stored as JSON
``null``, as SQLAlchemy stores it. A JSON value may also be a :class:`JsonText`, JSON
serialised beforehand, which goes into the document as it is. The values of JSON columns
are expected to be JSON data already (the callers' are: validated record data, audit
changes, evaluation items), on which orjson and ``json`` agree. An id column left out of
the rows whose Python default is :func:`uuid.uuid4` (``id`` of every tenant-owned table)
is filled by the statement with ``gen_random_uuid()``, the same kind of id, made by the
server (elsewhere SQLAlchemy fills it in as usual); the callers that need no ids back
leave them out.

A chunk the JSON document cannot describe exactly takes the previous path instead:
``INSERT … SELECT … FROM unnest(%b::uuid[], …)``, one array parameter per column (binary
for uuids, numbers and instants; JSON values serialised by ``json`` and cast by the
server). That is a value orjson refuses (an integer beyond 64 bits, a dict key that is not
a string, text that is not valid Unicode), a value of an instant column that its type
does not turn into a UTC ``datetime``, a number that is not finite (or not a number) in a
float column, or a column type with conversions of its own. Elsewhere (SQLite), and for
rows neither describes exactly (differing keys, a left-out column with another
client-side default, a single row), it falls back to SQLAlchemy's ``executemany``, so
the result is the same either way.

With ``wait=False`` (the import's chunks) the INSERT is only *sent*: the server executes
it while Python validates and scores the next records (the machine's second core), and
its result is collected before the connection's next statement, commit or rollback (an
error, such as a row refused by row-level security, is raised there; the transaction is
then rolled back as for any failed import).

:func:`new_ids` makes the ids the bulk paths need client-side (records, whose ids their
audit events and evaluations refer to) several times faster than :func:`uuid.uuid4`.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import datetime, timezone
from operator import attrgetter, itemgetter, methodcaller
from typing import Any, Mapping, NamedTuple, Sequence

import orjson
from sqlalchemy import JSON, Float, Table, event
from sqlalchemy.types import TypeDecorator

from core.db import UTCDateTime

_UTC = timezone.utc
_UTC_ONLY = frozenset({_UTC})
_INSTANT_TYPES = frozenset({datetime, type(None)})
_TZINFO = attrgetter("tzinfo")
_keys = methodcaller("keys")


class JsonText:
    """A JSON value serialised beforehand (``text``: UTF-8 JSON), for a JSON column of
    :func:`insert_rows`: it goes into the statement as it is, without being serialised
    again."""

    __slots__ = ("text",)

    def __init__(self, text: bytes):
        self.text = text

    def value(self) -> Any:
        """The JSON value, parsed (for the paths that serialise values themselves)."""
        return json.loads(self.text)


class RowView:
    """A row (a dict keyed by column name) read as attributes, like the ORM object of that
    row: ``view.kind`` is ``row["kind"]``. The bulk paths read rows this way where no ORM
    object is needed, at the cost of a dict lookup per attribute."""

    __slots__ = ("__dict__",)

    def __init__(self, row: dict[str, Any]):
        self.__dict__ = row


def _fragment(value: Any) -> Any:
    """orjson's ``default``: a :class:`JsonText` goes in as it is; nothing else is taken."""
    if value.__class__ is JsonText:
        return orjson.Fragment(value.text)
    raise TypeError


_new_object = object.__new__
_set = object.__setattr__
_UUID, _UNKNOWN = uuid.UUID, uuid.SafeUUID.unknown
# uuid.UUID(bytes=…, version=4): the version (4) and variant (RFC 4122) bits.
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (4 << 76) | (0x8000 << 48)


def new_ids(count: int) -> list[uuid.UUID]:
    """``count`` random ids, as :func:`uuid.uuid4` makes them (from ``os.urandom``), made
    several times faster: one read of random bytes for all of them, and each object built
    as ``uuid.UUID.__init__`` builds it, without its checks of arguments."""
    data = os.urandom(16 * count)
    from_bytes = int.from_bytes
    ids = []
    append = ids.append
    for start in range(0, 16 * count, 16):
        value = _new_object(_UUID)
        _set(value, "int", from_bytes(data[start:start + 16]) & _V4_CLEAR | _V4_SET)
        _set(value, "is_safe", _UNKNOWN)
        append(value)
    return ids


# -- the JSON document path (PostgreSQL) ------------------------------------------------


class _RecordsetPlan(NamedTuple):
    sql: str
    instants: tuple[str, ...]   # UTCDateTime columns: checked to hold UTC datetimes
    floats: tuple[str, ...]     # float columns: checked to hold finite numbers


_RECORDSET_PLANS: dict[tuple, _RecordsetPlan | None] = {}


def _base_type(column_type):
    if isinstance(column_type, TypeDecorator):
        return column_type.impl_instance if hasattr(column_type, "impl_instance") else column_type.impl
    return column_type


def _server_made(table: Table, names: tuple[str, ...]) -> tuple[str, ...] | None:
    """The columns left out of ``names`` whose Python default is :func:`uuid.uuid4` (an id
    the statement makes with ``gen_random_uuid()``, the same kind of id), or ``None`` when
    a left-out column has another Python default (SQLAlchemy's ``executemany`` fills that
    in)."""
    made = []
    for column in table.columns:
        if column.name in names or column.default is None:
            continue
        default = column.default
        if not (default.is_callable and getattr(default.arg, "__wrapped__", None) is uuid.uuid4):
            return None
        made.append(column.name)
    return tuple(made)


def _recordset_plan(table: Table, names: tuple[str, ...], dialect) -> _RecordsetPlan | None:
    """The ``json_to_recordset`` INSERT of ``names`` into ``table``, or ``None`` when the
    columns need what it does not do (see the module docstring)."""
    key = (table.name, names, dialect.name)
    if key in _RECORDSET_PLANS:
        return _RECORDSET_PLANS[key]
    plan = None
    columns = table.columns
    made = _server_made(table, names)
    if made is not None:
        quote = dialect.identifier_preparer.quote
        definitions, selected, instants, floats = [], [], [], []
        for name in names:
            column = columns[name]
            impl = column.type.dialect_impl(dialect)
            if isinstance(column.type, TypeDecorator):
                if not isinstance(column.type, UTCDateTime):
                    break  # a conversion of its own: the unnest path applies it
                instants.append(name)
                impl = impl.impl if isinstance(impl, TypeDecorator) else impl
            sql_type = impl.compile(dialect=dialect)
            if isinstance(impl, JSON) or isinstance(_base_type(column.type), JSON):
                sql_type = "jsonb" if sql_type.upper() == "JSONB" else "json"
                # A JSON null comes out of the record set as SQL NULL: stored as JSON null,
                # as SQLAlchemy stores None in a JSON column.
                selected.append(f"coalesce(x.{quote(name)}, 'null'::{sql_type})")
            else:
                if isinstance(impl, Float):
                    floats.append(name)
                selected.append(f"x.{quote(name)}")
            definitions.append(f"{quote(name)} {sql_type}")
        else:
            plan = _RecordsetPlan(
                f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, (*names, *made)))}) "
                f"SELECT {', '.join(selected + ['gen_random_uuid()'] * len(made))} "
                f"FROM json_to_recordset(%t::json) AS x({', '.join(definitions)})",
                tuple(instants), tuple(floats))
    _RECORDSET_PLANS[key] = plan
    return plan


class _Document(bytes):
    """A statement's JSON document (UTF-8), sent as one text parameter."""


def _recordset(connection, table: Table, rows: Sequence[Mapping[str, Any]],
               names: tuple[str, ...]) -> tuple[str, list] | None:
    """The ``json_to_recordset`` INSERT of ``rows`` and its parameter, or ``None``."""
    dialect = connection.dialect
    plan = _recordset_plan(table, names, dialect)
    if plan is None:
        return None
    for name in plan.instants:
        values = list(map(itemgetter(name), rows))
        if set(map(type, values)) <= _INSTANT_TYPES and set(map(_TZINFO, filter(None, values))) <= _UTC_ONLY:
            continue  # UTC datetimes (and None): as the column type would send them
        odd = [n for n, value in enumerate(values)
               if value is not None and (value.__class__ is not datetime or value.tzinfo is not _UTC)]
        if odd:
            # Not a UTC datetime: the column type converts it (or refuses it) as usual.
            process = table.columns[name].type.process_bind_param
            rows = list(rows)
            for n in odd:
                value = process(rows[n][name], dialect)
                if value.__class__ is not datetime or value.tzinfo is not _UTC:
                    return None
                rows[n] = {**rows[n], name: value}
    for name in plan.floats:
        for row in rows:
            value = row[name]
            if value is not None and value.__class__ is not int \
                    and not (value.__class__ is float and value - value == 0.0):
                return None  # not finite (JSON has no NaN), or not a plain number
    try:
        document = orjson.dumps(rows, default=_fragment)
    except orjson.JSONEncodeError:
        return None
    return plan.sql, [_Document(document)]


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


def _dump_json(value: Any) -> str:
    if value.__class__ is JsonText:
        return value.text.decode()
    return json.dumps(value, separators=(",", ":"))


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


_PLACEHOLDER = re.compile(r"%[bt]")


def _execute(connection, sql: str, params: list) -> None:
    """Run ``sql`` (``%b`` / ``%t`` placeholders) through SQLAlchemy and wait for it."""
    connection.exec_driver_sql(sql, tuple(param.decode() if param.__class__ is _Document else param
                                          for param in params))


def _send(connection, sql: str, params: list) -> None:
    """Send ``sql`` (``%b`` / ``%t`` placeholders) without waiting for its result."""
    from psycopg.adapt import PyFormat, Transformer
    from psycopg.pq import TransactionStatus

    raw = _raw(connection)
    drain(connection)
    _listen(connection.engine)
    if raw.pgconn.transaction_status != TransactionStatus.INTRANS \
            or not (connection._has_events or connection.engine._has_events) \
            or raw.info.encoding != "utf-8":
        # Outside a transaction, or a connection that would not see the event listener
        # collecting the result: wait as usual.
        _execute(connection, sql, params)
        return
    numbers = iter(range(1, len(params) + 1))
    numbered = _PLACEHOLDER.sub(lambda match: f"${next(numbers)}", sql)
    arrays = [param for param in params if param.__class__ is not _Document]
    dumped = iter(())
    if arrays:
        transformer = Transformer(raw)
        dumped = iter(zip(transformer.dump_sequence(arrays, [PyFormat.BINARY] * len(arrays)),
                          transformer.types, transformer.formats))
    values, types, formats = [], [], []
    for param in params:
        if param.__class__ is _Document:
            # UTF-8 JSON text, as it is; its type comes from the statement's cast.
            value, oid, fmt = param, 0, 0
        else:
            value, oid, fmt = next(dumped)
        values.append(value)
        types.append(oid)
        formats.append(fmt)
    raw.pgconn.send_query_params(numbered.encode(), values, types, formats)
    connection.connection.info[_PENDING] = True


def _plain(rows: Sequence[Mapping[str, Any]]) -> list:
    """``rows`` with every :class:`JsonText` parsed (for ``executemany``)."""
    out = []
    for row in rows:
        if any(value.__class__ is JsonText for value in row.values()):
            row = {name: value.value() if value.__class__ is JsonText else value
                   for name, value in row.items()}
        out.append(row)
    return out


def insert_rows(connection, table: Table, rows: Sequence[Mapping[str, Any]], *,
                wait: bool = True) -> None:
    """Insert ``rows`` (dicts keyed by column name) into ``table`` on ``connection``.

    One ``INSERT … SELECT FROM json_to_recordset(…)`` on PostgreSQL (see the module
    docstring); ``executemany`` elsewhere. Nothing is returned: the bulk paths make their
    ids client-side (:func:`new_ids`) or leave them out for the database to make.
    ``wait=False`` only sends the INSERT (PostgreSQL; see the module docstring): its result
    is collected before the connection's next statement.
    """
    insert_tables(connection, [(table, rows)], wait=wait)


def insert_tables(connection, batches: Sequence[tuple[Table, Sequence[Mapping[str, Any]]]], *,
                  wait: bool = True) -> None:
    """:func:`insert_rows` for several tables in order; on PostgreSQL one statement for
    all of them (data-modifying ``WITH`` clauses: one round trip, one send)."""
    batches = [(table, rows) for table, rows in batches if rows]
    statements = []
    postgresql = connection.dialect.name == "postgresql"
    for table, rows in batches:
        prepared = None
        if postgresql and len(rows) >= 2:
            first = rows[0].keys()
            if all(map(first.__eq__, map(_keys, rows))):
                names = tuple(first)
                prepared = _recordset(connection, table, rows, names) \
                    or _unnest(connection, table, rows, names)
        if prepared is None:
            drain(connection)
            connection.execute(table.insert(), _plain(rows))
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
        _execute(connection, sql, params)
    else:
        _send(connection, sql, params)
