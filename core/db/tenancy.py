"""Tenant scoping of every ORM statement, and the PostgreSQL row-level-security context.

Two independent layers keep tenants apart (DESIGN.md, "Tenancy"):

1. The ORM: every SELECT, UPDATE and DELETE on a :class:`~core.db.TenantOwned` model is
   filtered to the session's tenant, new rows are stamped with it on flush, and a
   statement on a tenant-owned model with no tenant in context raises
   :class:`NoTenantContext`. No tenant never means all tenants. The check looks through
   the whole statement (subqueries, CTEs, EXISTS), so a count over a subquery of a
   tenant model is filtered too. Statements written against bare ``Table`` objects
   are refused without a tenant but not filtered: query models, not tables.
2. PostgreSQL row-level security: at the start of every transaction the session sets
   ``servq.tenant_id`` for that transaction only; the policies compare it to each row.

System code that must cross tenants opens a session with no tenant
(``core.db.session.new_session(app)``): it may read the global tables (tenants, users) and
nothing tenant-owned until it names one with :meth:`TenantSession.set_tenant`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Callable, NamedTuple, Sequence

from sqlalchemy import (JSON, Boolean, DateTime, Float, Integer, Numeric, String, Table,
                        TypeDecorator, Uuid, bindparam, event)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import ORMExecuteState, Session, make_transient_to_detached, with_loader_criteria
from sqlalchemy.sql import visitors

from servq.core.db import (Prepared, TenantOwned, UTCDateTime, driver_begin, driver_begin_with,
                     driver_defer, driver_execute, prepare_on_begin, prepared, tenant_tables)


class NoTenantContext(RuntimeError):
    """A tenant-owned table was queried from a session with no tenant set."""


class CrossTenantWrite(RuntimeError):
    """A flush tried to write a row of another tenant than the session's."""


class TenantSession(Session):
    """A session that knows its tenant (``info["tenant_id"]``)."""

    @property
    def tenant_id(self) -> uuid.UUID | None:
        """The tenant this session is scoped to; ``None`` for a system session."""
        return self.info.get("tenant_id")

    def set_tenant(self, tenant_id: uuid.UUID | None) -> None:
        """Scope this session to ``tenant_id`` from now on (both layers)."""
        self.info["tenant_id"] = tenant_id
        if self.in_transaction() and self.bind is not None and self.bind.dialect.name == "postgresql":
            _set_rls_context(self.connection(), tenant_id)

    def begin_with(self, statement: Prepared, args: Sequence[Any]) -> list[tuple] | None:
        """Begin this session's transaction with ``statement`` (executed with ``args``) in
        the same round trip as the ``BEGIN`` and the RLS context, and return its rows
        (:func:`core.db.driver_begin_with`); ``None`` when the session is already in a
        transaction or not on PostgreSQL: run the statement as usual then.

        For the one query every request starts with: authentication.
        """
        if self.in_transaction() or self.get_bind().dialect.name != "postgresql":
            return None
        self.info.pop(_BEGUN_WITH, None)
        self.info[_BEGIN_WITH] = (statement, args)
        try:
            self.connection()
        finally:
            self.info.pop(_BEGIN_WITH, None)
        return self.info.pop(_BEGUN_WITH, None)

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the current transaction has committed (dropped on rollback)."""
        self.info.setdefault("after_commit", []).append(fn)

    def insert(self, obj, *, along: Sequence[tuple[type, dict[str, Any]]] = ()) -> None:
        """INSERT the new object ``obj`` at once, with one statement, and make it
        persistent: what ``add(obj)`` then ``flush()`` do for one row, at a fraction of
        the unit of work's cost (for the hot paths, e.g. creating a record).

        Column defaults written in Python are applied as a flush would; the row is
        stamped with the session's tenant (:class:`NoTenantContext` without one,
        :class:`CrossTenantWrite` for another tenant's). Pending changes of the session
        are flushed first, so the row may refer to them. Afterwards ``obj`` is clean and
        in the session: later changes to it are flushed as usual.

        ``along`` lists rows of other models written with it, each ``(model, {column:
        value})`` (its audit event: :func:`core.audit.audit_row`), held to the same
        tenant rules but not added to the session: on PostgreSQL in the same statement
        (data-modifying ``WITH`` clauses, one round trip), elsewhere right after it.

        On PostgreSQL, right after :meth:`begin_with` (a request's authentication), the
        statement is held back and sent with the transaction's next statement or its
        ``COMMIT`` (:func:`core.db.driver_defer`): an error it meets (a foreign key gone
        meanwhile) is then raised there.
        """
        if self.new or self.deleted or self.dirty:
            self.flush()
        plan = _insert_plan(type(obj))
        tenant_id = self.info.get("tenant_id")
        if plan.tenant_owned:
            if tenant_id is None:
                raise NoTenantContext(f"writing {type(obj).__name__} with no tenant in context")
            if obj.tenant_id is None:
                obj.tenant_id = tenant_id
            elif obj.tenant_id != tenant_id:
                raise CrossTenantWrite(f"{type(obj).__name__} belongs to another tenant")
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
            if other.tenant_owned:
                if tenant_id is None:
                    raise NoTenantContext(f"writing {model.__name__} with no tenant in context")
                if row.setdefault("tenant_id", tenant_id) != tenant_id:
                    raise CrossTenantWrite(f"{model.__name__} belongs to another tenant")
            others.append((other, {column: row[column] if column in row else _default(default)
                                   for _, column, default in other.columns}))
        connection = self.connection()
        if connection.dialect.name == "postgresql" and plan.driver_sql is not None \
                and all(other.driver_sql is not None for other, _ in others):
            params = {column: convert(values[column]) if convert else values[column]
                      for column, convert in plan.converters}
            for n, (other, row) in enumerate(others):
                params.update((f"w{n}_{column}", convert(row[column]) if convert else row[column])
                              for column, convert in other.converters)
            sql = _combined_sql(plan, [other for other, _ in others])
            statement, names = _deferrable(sql)
            # Held back until the COMMIT where it can be (core.db.driver_defer): one
            # round trip for the row(s) and the COMMIT.
            if not driver_defer(connection, statement, [params[name] for name in names]):
                driver_execute(connection, sql, params)
        else:
            connection.execute(plan.table.insert(), values)
            for other, row in others:
                connection.execute(other.table.insert(), row)
        make_transient_to_detached(obj)
        self.add(obj)


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
    (:func:`core.db.prepare_on_begin`), with the parameter names in ``$n`` order."""
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


_SET_RLS = "SELECT set_config('servq.tenant_id', %s, true)"


_BEGIN_WITH = "servq.begin_with"
_BEGUN_WITH = "servq.begun_with"


def _set_rls_context(connection, tenant_id: uuid.UUID | None, *, begin: bool = False,
                     then: tuple[Prepared, Sequence[Any]] | None = None) -> list[tuple] | None:
    """Set ``servq.tenant_id`` for the current transaction only (``is_local``).

    Sent straight through the driver (:func:`core.db.driver_execute`). With ``begin``
    (a transaction starting) it travels with psycopg's ``BEGIN`` in one round trip
    (:func:`core.db.driver_begin`): the tenant id is a :class:`uuid.UUID`, written into
    the statement as a literal. ``then`` (a prepared statement and its arguments, see
    :meth:`TenantSession.begin_with`) rides along too; its rows are returned.
    """
    if begin:
        value = str(uuid.UUID(str(tenant_id))) if tenant_id else ""
        sql = f"SELECT set_config('servq.tenant_id', '{value}', true)"
        if then is not None:
            rows = driver_begin_with(connection, sql, *then)
            if rows is not None:
                return rows
        elif driver_begin(connection, sql):
            return None
    driver_execute(connection, _SET_RLS, (str(tenant_id) if tenant_id else "",))
    return None


@event.listens_for(TenantSession, "after_begin")
def _after_begin(session: TenantSession, transaction, connection) -> None:
    if connection.dialect.name == "postgresql":
        then = session.info.pop(_BEGIN_WITH, None)
        rows = _set_rls_context(connection, session.info.get("tenant_id"), begin=True, then=then)
        if then is not None and rows is not None:
            session.info[_BEGUN_WITH] = rows


#: Name of the bound parameter that carries the session's tenant into the ORM filter.
TENANT_PARAM = "servq_scope_tenant_id"


_TENANT_BIND = bindparam(TENANT_PARAM, type_=Uuid())


def _tenant_criteria(cls):
    return cls.tenant_id == _TENANT_BIND


# One option for every SELECT and every tenant: the tenant is a bound parameter (set per
# execution below), not a value captured in the criteria, so the option and the
# statements' cache keys are the same for all tenants and nothing is rebuilt per query.
_TENANT_FILTER = with_loader_criteria(TenantOwned, _tenant_criteria, include_aliases=True)


@event.listens_for(TenantSession, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    session = state.session
    tenant_id = session.info.get("tenant_id")
    if state.is_column_load or state.is_relationship_load:
        # The parent statement already carried the criteria; they travel with the
        # loader and need the tenant parameter again.
        if tenant_id is not None and not isinstance(state.parameters, list):
            state.parameters = _with_tenant(state.parameters, tenant_id)
        return
    if not (state.is_select or state.is_update or state.is_delete or state.is_insert):
        return
    outer = {m.local_table.name for m in state.all_mappers if issubclass(m.class_, TenantOwned)}
    if tenant_id is None or not outer:
        # ``all_mappers`` only names the entities of the outermost SELECT; a count over
        # a subquery (pagination) or an EXISTS hides them, so look through the whole
        # statement. Not needed when a tenant is in context and an outer entity is
        # tenant-owned: the criteria below are added either way (the walk is the most
        # expensive step of a simple query).
        tenant_scoped = outer | _tenant_tables_in(state.statement)
        if not tenant_scoped:
            return
        if tenant_id is None:
            names = ", ".join(sorted(tenant_scoped))
            raise NoTenantContext(f"query on tenant-owned {names} with no tenant in context")
    if not session.info.get("orm_filter", True):
        return  # only the tests switch this off, to prove RLS holds alone
    if state.is_select and not isinstance(state.parameters, list):
        state.statement = state.statement.options(_TENANT_FILTER)
        state.parameters = _with_tenant(state.parameters, tenant_id)
    else:
        # INSERT … SELECT, UPDATE and DELETE: their parameters may name columns (ORM
        # bulk statements), so the tenant travels inside the criteria instead.
        state.statement = state.statement.options(
            with_loader_criteria(
                TenantOwned,
                lambda cls: cls.tenant_id == tenant_id,
                include_aliases=True,
                track_closure_variables=True,
            )
        )


def _with_tenant(parameters, tenant_id: uuid.UUID) -> dict:
    """A SELECT's parameters plus the tenant of the ORM filter."""
    return {**(parameters or {}), TENANT_PARAM: tenant_id}


def _tenant_tables_in(statement) -> set[str]:
    """Names of the tenant-owned tables a statement reads or writes, at any depth."""
    owned = _tenant_table_names()
    return {
        element.name
        for element in visitors.iterate(statement)
        if isinstance(element, Table) and element.name in owned
    }


_TENANT_TABLES: frozenset[str] | None = None


def _tenant_table_names() -> frozenset[str]:
    # Computed once: the models are all imported before the first statement runs.
    global _TENANT_TABLES
    if _TENANT_TABLES is None:
        _TENANT_TABLES = frozenset(tenant_tables())
    return _TENANT_TABLES


@event.listens_for(TenantSession, "before_flush")
def _stamp_tenant(session: TenantSession, flush_context, instances) -> None:
    tenant_id = session.info.get("tenant_id")
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, TenantOwned):
            continue
        if tenant_id is None:
            raise NoTenantContext(f"writing {type(obj).__name__} with no tenant in context")
        if obj.tenant_id is None:
            obj.tenant_id = tenant_id
        elif obj.tenant_id != tenant_id:
            raise CrossTenantWrite(f"{type(obj).__name__} belongs to another tenant")
    for obj in session.deleted:
        if isinstance(obj, TenantOwned) and obj.tenant_id != tenant_id:
            raise CrossTenantWrite(f"{type(obj).__name__} belongs to another tenant")


@event.listens_for(TenantSession, "after_commit")
def _run_after_commit(session: TenantSession) -> None:
    callbacks = session.info.pop("after_commit", [])
    for fn in callbacks:
        fn()


@event.listens_for(TenantSession, "after_soft_rollback")
def _drop_after_commit(session: TenantSession, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop("after_commit", None)
