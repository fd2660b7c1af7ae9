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

import uuid
from typing import Any, Callable, Sequence

from sqlalchemy import Table, Uuid, bindparam, event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.sql import visitors

from servq.core.db import CrossTenantWrite, NoTenantContext, TenantOwned, tenant_tables
from servq.core.db.citus import is_citus, set_local_sql
from servq.core.db.state import SESSION, TENANT, TRANSACTION, SessionState, Slot
from servq.core.db.fast.driver import Prepared, driver_begin, driver_begin_with, driver_execute
from servq.core.db.fast.insert import insert_one

__all__ = ["CrossTenantWrite", "NoTenantContext", "TENANT_PARAM", "TenantSession"]

#: The session's tenant (``None``: a system session).
TENANT_ID: Slot[uuid.UUID | None] = Slot("tenant_id", SESSION, __name__)
#: Whether the ORM filter applies (only the tests switch it off, to prove RLS holds alone).
ORM_FILTER: Slot[bool] = Slot("orm_filter", SESSION, __name__)
#: Functions to run once the transaction has committed: run by its commit, dropped by
#: its rollback (below), kept otherwise (one registered by such a function waits for
#: the next commit).
AFTER_COMMIT: Slot[list[Callable[[], None]]] = Slot("after_commit", SESSION, __name__)
#: The statement to run with the next BEGIN, then its rows (:meth:`TenantSession.begin_with`).
_BEGIN_WITH: Slot[tuple] = Slot("servq.begin_with", SESSION, __name__)
_BEGUN_WITH: Slot[list[tuple]] = Slot("servq.begun_with", SESSION, __name__)


class TenantSession(Session):
    """A session that knows its tenant (``info["tenant_id"]``) and keeps typed state
    (:attr:`state`, :mod:`servq.core.db.state`) whose slots it drops when their lifetime
    ends: a tenant switch, a rollback, the end of the transaction."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: The session's typed state: declared slots only (:class:`~servq.core.db.state.Slot`).
        self.state = SessionState(self.info)

    @property
    def tenant_id(self) -> uuid.UUID | None:
        """The tenant this session is scoped to; ``None`` for a system session."""
        return self.info.get(TENANT_ID)

    def set_tenant(self, tenant_id: uuid.UUID | None) -> None:
        """Scope this session to ``tenant_id`` from now on (both layers)."""
        if self.info.get(TENANT_ID) != tenant_id:
            self.state.end(TENANT)  # nothing kept for one tenant is seen by another
        self.info[TENANT_ID] = tenant_id
        if self.in_transaction() and self.bind is not None and self.bind.dialect.name == "postgresql":
            _set_rls_context(self.connection(), tenant_id)

    def begin_with(self, statement: Prepared, args: Sequence[Any]) -> list[tuple] | None:
        """Begin this session's transaction with ``statement`` (executed with ``args``) in
        the same round trip as the ``BEGIN`` and the RLS context, and return its rows
        (:func:`servq.core.db.fast.driver.driver_begin_with`); ``None`` when the session is already in a
        transaction or not on PostgreSQL: run the statement as usual then.

        For the one query every request starts with: authentication.
        """
        bind = self.get_bind()
        if self.in_transaction() or bind.dialect.name != "postgresql" or is_citus(bind):
            # Citus replays a SET LOCAL's whole message on the workers: no one-message
            # BEGIN there (servq.core.db.citus).
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
        self.info.setdefault(AFTER_COMMIT, []).append(fn)

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
        ``COMMIT`` (:func:`servq.core.db.fast.driver.driver_defer`): an error it meets (a foreign key gone
        meanwhile) is then raised there.
        """
        if self.new or self.deleted or self.dirty:
            self.flush()
        tenant_id = self.info.get(TENANT_ID)
        if isinstance(obj, TenantOwned):
            if tenant_id is None:
                raise NoTenantContext(f"writing {type(obj).__name__} with no tenant in context")
            if obj.tenant_id is None:
                obj.tenant_id = tenant_id
            elif obj.tenant_id != tenant_id:
                raise CrossTenantWrite(f"{type(obj).__name__} belongs to another tenant")
        for model, row in along:
            if issubclass(model, TenantOwned):
                if tenant_id is None:
                    raise NoTenantContext(f"writing {model.__name__} with no tenant in context")
                if row.setdefault("tenant_id", tenant_id) != tenant_id:
                    raise CrossTenantWrite(f"{model.__name__} belongs to another tenant")
        insert_one(self, obj, along)



RLS_SETTING = "servq.tenant_id"
_SET_RLS = "SELECT set_config('servq.tenant_id', %s, true)"




def _set_rls_context(connection, tenant_id: uuid.UUID | None, *, begin: bool = False,
                     then: tuple[Prepared, Sequence[Any]] | None = None) -> list[tuple] | None:
    """Set ``servq.tenant_id`` for the current transaction only (``is_local``).

    Sent straight through the driver (:func:`servq.core.db.fast.driver.driver_execute`). With ``begin``
    (a transaction starting) it travels with psycopg's ``BEGIN`` in one round trip
    (:func:`servq.core.db.fast.driver.driver_begin`): the tenant id is a :class:`uuid.UUID`, written into
    the statement as a literal. ``then`` (a prepared statement and its arguments, see
    :meth:`TenantSession.begin_with`) rides along too; its rows are returned.
    """
    if is_citus(connection):
        # Alone in its message, so that Citus can replay it on the workers.
        driver_execute(connection, set_local_sql(RLS_SETTING, tenant_id), None)
        return None
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
        rows = _set_rls_context(connection, session.info.get(TENANT_ID), begin=True, then=then)
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
    tenant_id = session.info.get(TENANT_ID)
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
    if not session.info.get(ORM_FILTER, True):
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
    tenant_id = session.info.get(TENANT_ID)
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
    callbacks = session.info.pop(AFTER_COMMIT, [])
    for fn in callbacks:
        fn()


@event.listens_for(TenantSession, "after_soft_rollback")
def _drop_after_commit(session: TenantSession, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(AFTER_COMMIT, None)
        # What was read in the transaction may come from its rolled-back writes.
        session.state.end(TENANT)


@event.listens_for(TenantSession, "after_transaction_end")
def _end_transaction_state(session: TenantSession, transaction) -> None:
    if transaction.parent is None:
        session.state.end(TRANSACTION)
