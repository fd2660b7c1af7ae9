"""The binary array path of :func:`servq.core.db.fast.bulk.insert_rows` (PostgreSQL): a
chunk's values, column by column, encoded here as PostgreSQL arrays in their binary form,
which the server reads without parsing text; with the plans shared by both array paths
(which columns the server fills, each column's base type). A chunk these arrays cannot
carry exactly raises :class:`_Refused` and takes psycopg's arrays instead (see the
module docstring of :mod:`.bulk`)."""

from __future__ import annotations

import json
import struct
import uuid
from datetime import date, datetime, timedelta, timezone
from operator import itemgetter
from typing import Any, Mapping, NamedTuple, Sequence

import orjson
from sqlalchemy import (JSON, BigInteger, Boolean, Date, DateTime, Enum, Float, Integer, SmallInteger,
                        String, Table, Uuid)
from sqlalchemy.types import TypeDecorator

from servq.core.db import UTCDateTime

_UTC = timezone.utc
_UUID = uuid.UUID


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


def _fragment(value: Any) -> Any:
    """orjson's ``default``: a :class:`JsonText` goes in as it is; nothing else is taken."""
    if value.__class__ is JsonText:
        return orjson.Fragment(value.text)
    raise TypeError




# -- shared by the array paths ------------------------------------------------------


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


# -- the binary array path (PostgreSQL) -------------------------------------------------


class _Array(bytes):
    """A one-dimensional PostgreSQL array in its binary form (a ``%b`` parameter); its
    subclasses carry the array type's ``oid`` (see :func:`_array_class`)."""

    __slots__ = ()
    oid = 0


_ARRAY_CLASSES: dict[int, type] = {}


def _array_class(oid: int) -> type:
    """The :class:`_Array` subclass of the array type ``oid``; its ``dumper`` is a psycopg
    dumper that sends its bytes as they are (see :func:`_execute`)."""
    cls = _ARRAY_CLASSES.get(oid)
    if cls is None:
        from psycopg.adapt import Dumper
        from psycopg.pq import Format

        dumper = type(f"_Array{oid}Dumper", (Dumper,),
                      {"format": Format.BINARY, "oid": oid, "dump": lambda self, obj: obj})
        cls = type(f"_Array{oid}", (_Array,), {"__slots__": (), "oid": oid, "dumper": dumper})
        _ARRAY_CLASSES[oid] = cls
    return cls


class _Refused(Exception):
    """A value the binary encoder does not write exactly: the chunk takes another path."""


_I32 = struct.Struct(">i")
_I32_I32 = struct.Struct(">ii")
_I32_I64 = struct.Struct(">iq")
_I32_F64 = struct.Struct(">id")
_HEADER = struct.Struct(">iiIii")  # dimensions, has nulls, element type, length, lower bound
_NULL = b"\xff\xff\xff\xff"
_LEN16 = b"\x00\x00\x00\x10"
_TRUE, _FALSE = b"\x00\x00\x00\x01\x01", b"\x00\x00\x00\x01\x00"
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=_UTC)
_PG_EPOCH_DAY = date(2000, 1, 1).toordinal()
_MICROSECOND = timedelta(microseconds=1)


# The encoders below repeat one loop on purpose: one per type, each with its own type
# check and conversion inline. A shared loop calling a per-type function costs 50-80 ns
# more per value (measured on 200,000 uuids, integers and texts: 251 -> 331, 149 -> 205,
# 260 -> 307 ns), about 2 % of an import's CPU.


def _uuids(values, column, dialect) -> list[bytes]:
    out = []
    append = out.append
    for value in values:
        if value.__class__ is _UUID:
            append(_LEN16 + value.int.to_bytes(16, "big"))
        elif value is None:
            append(_NULL)
        else:
            raise _Refused
    return out


def _texts(values, column, dialect) -> list[bytes]:
    out = []
    append = out.append
    pack = _I32.pack
    try:
        for value in values:
            if value.__class__ is str:
                data = value.encode()
                append(pack(len(data)) + data)
            elif value is None:
                append(_NULL)
            else:
                raise _Refused
    except UnicodeEncodeError:  # a lone surrogate: psycopg refuses it, as before
        raise _Refused from None
    return out


def _instants(values, column, dialect) -> list[bytes]:
    out = []
    append = out.append
    pack = _I32_I64.pack
    for value in values:
        if value.__class__ is datetime and value.tzinfo is _UTC:
            append(pack(8, (value - _PG_EPOCH) // _MICROSECOND))
        elif value is None:
            append(_NULL)
        else:
            # Not a UTC datetime: the column type converts it (or refuses it) as usual.
            value = column.type.process_bind_param(value, dialect)
            if value.__class__ is not datetime or value.tzinfo is not _UTC:
                raise _Refused
            append(pack(8, (value - _PG_EPOCH) // _MICROSECOND))
    return out


def _integers(values, column, dialect) -> list[bytes]:
    out = []
    append = out.append
    pack = _I32_I32.pack
    try:
        for value in values:
            if value.__class__ is int:
                append(pack(4, value))
            elif value is None:
                append(_NULL)
            else:
                raise _Refused
    except struct.error:  # beyond 32 bits: PostgreSQL words the error, as before
        raise _Refused from None
    return out


def _floats(values, column, dialect) -> list[bytes]:
    out = []
    append = out.append
    pack = _I32_F64.pack
    for value in values:
        if value.__class__ is float or value.__class__ is int:
            append(pack(8, value))
        elif value is None:
            append(_NULL)
        else:
            raise _Refused
    return out


def _booleans(values, column, dialect) -> list[bytes]:
    out = []
    append = out.append
    for value in values:
        if value is True:
            append(_TRUE)
        elif value is False:
            append(_FALSE)
        elif value is None:
            append(_NULL)
        else:
            raise _Refused
    return out


def _dates(values, column, dialect) -> list[bytes]:
    out = []
    append = out.append
    pack = _I32_I32.pack
    for value in values:
        if value.__class__ is date:
            append(pack(4, value.toordinal() - _PG_EPOCH_DAY))
        elif value is None:
            append(_NULL)
        else:
            raise _Refused
    return out


def _json_texts(values, column, dialect) -> list[bytes]:
    """JSON values as text (the statement casts them): orjson's, unless it refuses one
    (an integer beyond 64 bits, a key that is not a string, …), which ``json`` writes."""
    out = []
    append = out.append
    pack = _I32.pack
    dumps = orjson.dumps
    for value in values:
        if value.__class__ is JsonText:
            data = value.text
        else:
            try:
                data = dumps(value, default=_fragment)
            except orjson.JSONEncodeError:
                data = _dump_json(value).encode()
        append(pack(len(data)) + data)
    return out


# Per column type: (array type oid, element type oid, SQL type of the array, encoder).
_UUID_ARRAY = (2951, 2950, "uuid[]", _uuids)
_TEXT_ARRAY = (1009, 25, "text[]", _texts)
_INSTANT_ARRAY = (1185, 1184, "timestamptz[]", _instants)
_INT_ARRAY = (1007, 23, "int4[]", _integers)
_FLOAT_ARRAY = (1022, 701, "float8[]", _floats)
_BOOL_ARRAY = (1000, 16, "bool[]", _booleans)
_DATE_ARRAY = (1182, 1082, "date[]", _dates)
_JSON_ARRAY = (1009, 25, "text[]", _json_texts)


def _array_kind(column, dialect):
    """The binary array a column's values go in, or ``None`` (another path decides)."""
    column_type = column.type
    impl = column_type.dialect_impl(dialect)
    if isinstance(impl, JSON) or isinstance(_base_type(column_type), JSON):
        return _JSON_ARRAY
    if isinstance(column_type, UTCDateTime):
        return _INSTANT_ARRAY
    if isinstance(column_type, TypeDecorator):
        return None  # a conversion of its own: the psycopg path applies it
    if isinstance(column_type, Uuid) and column_type.as_uuid:
        return _UUID_ARRAY
    if isinstance(column_type, Boolean):
        return _BOOL_ARRAY
    if isinstance(column_type, Float):
        return _FLOAT_ARRAY
    if isinstance(column_type, Integer) and not isinstance(column_type, (BigInteger, SmallInteger)):
        return _INT_ARRAY
    if isinstance(column_type, Date) and not isinstance(column_type, DateTime):
        return _DATE_ARRAY
    if isinstance(column_type, String) and not isinstance(column_type, Enum):
        return _TEXT_ARRAY
    return None


class _BinaryPlan(NamedTuple):
    sql: str
    columns: tuple  # (column, array kind) per name


_BINARY_PLANS: dict[tuple, _BinaryPlan | None] = {}


def _binary_plan(table: Table, names: tuple[str, ...], dialect) -> _BinaryPlan | None:
    """The ``unnest`` INSERT of ``names`` into ``table`` with one binary array per column,
    or ``None`` when a column needs what it does not do."""
    key = (table.name, names, dialect.name)
    if key in _BINARY_PLANS:
        return _BINARY_PLANS[key]
    plan = None
    made = _server_made(table, names)
    if made is not None:
        quote = dialect.identifier_preparer.quote
        columns, arrays, selected = [], [], []
        for n, name in enumerate(names):
            column = table.columns[name]
            kind = _array_kind(column, dialect)
            if kind is None:
                break
            columns.append((column, kind))
            arrays.append(f"%b::{kind[2]}")
            if kind is _JSON_ARRAY:
                impl = column.type.dialect_impl(dialect).compile(dialect=dialect)
                selected.append(f"c{n}::{'jsonb' if impl.upper() == 'JSONB' else 'json'}")
            else:
                selected.append(f"c{n}")
        else:
            aliases = ", ".join(f"c{n}" for n in range(len(names)))
            plan = _BinaryPlan(
                f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, (*names, *made)))}) "
                f"SELECT {', '.join(selected + ['gen_random_uuid()'] * len(made))} "
                f"FROM unnest({', '.join(arrays)}) AS u({aliases})",
                tuple(columns))
    _BINARY_PLANS[key] = plan
    return plan


def _binary(connection, table: Table, rows: Sequence[Mapping[str, Any]],
            names: tuple[str, ...]) -> tuple[str, list] | None:
    """The binary ``unnest`` INSERT of ``rows`` and its parameters, or ``None``."""
    dialect = connection.dialect
    plan = _binary_plan(table, names, dialect)
    if plan is None:
        return None
    count = len(rows)
    params = []
    try:
        for name, (column, (array_oid, element_oid, _, encode)) in zip(names, plan.columns):
            values = list(map(itemgetter(name), rows))
            first = values[0]
            if len(set(map(id, values))) == 1:
                # The same object in every row (the tenant, an instant, None): encoded once.
                elements = encode([first], column, dialect) * count
            else:
                elements = encode(values, column, dialect)
            has_null = _NULL in elements
            params.append(_array_class(array_oid)(
                _HEADER.pack(1, has_null, element_oid, count, 1) + b"".join(elements)))
    except _Refused:
        return None
    return plan.sql, params


def _dump_json(value: Any) -> str:
    if value.__class__ is JsonText:
        return value.text.decode()
    return json.dumps(value, separators=(",", ":"))
