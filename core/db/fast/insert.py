"""One row, one statement: :meth:`servq.core.db.tenancy.TenantSession.insert`'s INSERT.

Part of the fast lane: import it through :mod:`servq.core.db.fast` (its door), which
lists each trick with its measured gain and its fallback. Tenancy (stamping the row,
refusing another tenant's) is the caller's: :class:`~servq.core.db.tenancy.TenantSession`
applies it before calling :func:`insert_one`.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple, Sequence

from sqlalchemy import (JSON, Boolean, DateTime, Float, Integer, Numeric, String, Table,
                        TypeDecorator, Uuid)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import make_transient_to_detached

from servq.core.db import TenantOwned, UTCDateTime
from servq.core.db.fast.driver import Prepared, driver_defer, driver_execute, prepare_on_begin, prepared


def insert_one(session, obj, along: Sequence[tuple[type, dict[str, Any]]] = ()) -> None:
    """INSERT the new object ``obj`` (and the ``along`` rows) with one statement and make
    it persistent in ``session``: the body of :meth:`TenantSession.insert
    <servq.core.db.tenancy.TenantSession.insert>`, which documents it, run after the
    session flushed what was pending and stamped the rows with its tenant.

    PostgreSQL, every column of a type the driver takes as it is: one driver statement
    (``along`` as data-modifying ``WITH`` clauses), held back until the ``COMMIT`` when it
    can be (:func:`~servq.core.db.fast.driver.driver_defer`). Elsewhere, or with a
    column type this shortcut does not know: SQLAlchemy's ``Connection.execute`` per row.
    """
    plan = _insert_plan(type(obj))
    state = obj.__dict__
    values = {}
    for key, column, default in plan.columns:
        if key in state:
            value = state[key]
        else:
            value = _default(default)
            # A transient object has no history to keep: set the value as loaded
            # (make_transient_to_detached below commits what the object holds).
            state[key] = value
        values[column] = value
    others = []
    for model, row in along:
        other = _insert_plan(model)
        others.append((other, {column: row[column] if column in row else _default(default)
                               for _, column, default in other.columns}))
    connection = session.connection()
    if connection.dialect.name == "postgresql" and plan.driver_sql is not None \
            and all(other.driver_sql is not None for other, _ in others):
        params = {column: convert(values[column]) if convert else values[column]
                  for column, convert in plan.converters}
        for n, (other, row) in enumerate(others):
            params.update((f"w{n}_{column}", convert(row[column]) if convert else row[column])
                          for column, convert in other.converters)
        sql = _combined_sql(plan, [other for other, _ in others])
        statement, names = _deferrable(sql)
        # Held back until the COMMIT where it can be (driver_defer): one round trip for
        # the row(s) and the COMMIT.
        if not driver_defer(connection, statement, [params[name] for name in names]):
            driver_execute(connection, sql, params)
    else:
        connection.execute(plan.table.insert(), values)
        for other, row in others:
            connection.execute(other.table.insert(), row)
    make_transient_to_detached(obj)
    session.add(obj)


def _default(default):
    """The value of a column's Python default (``None`` without one)."""
    if default is None:
        return None
    return default.arg(None) if default.is_callable else default.arg


_COMBINED: dict[tuple, str] = {}


def _combined_sql(plan: "_InsertPlan", others: list["_InsertPlan"]) -> str:
    """``plan``'s driver INSERT with ``others``' as ``WITH`` clauses (parameters of the
    n-th prefixed ``w<n>_``)."""
    if not others:
        return plan.driver_sql
    key = (plan.table.name, *(other.table.name for other in others))
    sql = _COMBINED.get(key)
    if sql is None:
        clauses = []
        for n, other in enumerate(others):
            names = [name for _, name, _ in other.columns]
            clauses.append(f"w{n} AS (INSERT INTO {other.table.name} ({', '.join(names)}) "
                           f"VALUES ({', '.join(f'%(w{n}_{name})s' for name in names)}))")
        sql = _COMBINED[key] = f"WITH {', '.join(clauses)} {plan.driver_sql}"
    return sql


_DEFERRABLE: dict[str, tuple[Prepared, tuple[str, ...]]] = {}
_NAMED = re.compile(r"%\((\w+)\)s")


def _deferrable(sql: str) -> tuple[Prepared, tuple[str, ...]]:
    """``sql`` (``%(name)s`` placeholders) as a statement prepared on the server
    (:func:`~servq.core.db.fast.driver.prepare_on_begin`), with the parameter names in ``$n`` order."""
    found = _DEFERRABLE.get(sql)
    if found is None:
        names: list[str] = []

        def number(match):
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        statement = prepared("insert", _NAMED.sub(number, sql), ())
        prepare_on_begin(statement)
        found = _DEFERRABLE[sql] = (statement, tuple(names))
    return found


class _InsertPlan(NamedTuple):
    table: Table
    tenant_owned: bool
    columns: tuple          # (attribute key, column name, Python default or None)
    driver_sql: str | None  # PostgreSQL INSERT for the driver, when every type allows it
    converters: tuple       # (column name, converter or None)


_INSERT_PLANS: dict[type, _InsertPlan] = {}


def _insert_plan(cls) -> _InsertPlan:
    """How :meth:`TenantSession.insert` writes a ``cls`` (computed once per model)."""
    plan = _INSERT_PLANS.get(cls)
    if plan is not None:
        return plan
    mapper = sa_inspect(cls)
    table = mapper.local_table
    columns, converters, driver_ok = [], [], True
    for column in table.columns:
        prop = mapper.get_property_by_column(column)
        default = column.default
        if default is not None and not (default.is_scalar or default.is_callable):
            raise TypeError(f"{cls.__name__}.{prop.key}: only Python defaults are supported")
        if default is None and column.server_default is not None:
            # The database would fill it in; the object must know it without a query.
            raise TypeError(f"{cls.__name__}.{prop.key} has only a server default: give it "
                            "a Python default too")
        columns.append((prop.key, column.name, default))
        convert = _driver_converter(column.type)
        if convert is False:
            driver_ok = False
        converters.append((column.name, convert or None))
    driver_sql = None
    if driver_ok:
        names = [name for _, name, _ in columns]
        driver_sql = (f"INSERT INTO {table.name} ({', '.join(names)}) "
                      f"VALUES ({', '.join(f'%({name})s' for name in names)})")
    plan = _INSERT_PLANS[cls] = _InsertPlan(table, issubclass(cls, TenantOwned), tuple(columns),
                                            driver_sql, tuple(converters))
    return plan


def _driver_converter(type_):
    """How a value of ``type_`` goes to psycopg as is: ``None`` (unchanged), a function,
    or ``False`` (a type this shortcut does not know: use SQLAlchemy)."""
    from psycopg.types.json import Jsonb

    impl = type_.impl_instance if isinstance(type_, TypeDecorator) else type_
    if isinstance(impl, JSON):
        return Jsonb
    if isinstance(type_, UTCDateTime):
        return None  # psycopg sends aware datetimes as they are (timestamptz)
    if isinstance(type_, TypeDecorator):
        return False
    if isinstance(type_, (Uuid, String, Integer, Boolean, DateTime, Float, Numeric)):
        return None
    return False
