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
(``core.database.new_session(app)``): it may read the global tables (tenants, users) and
nothing tenant-owned until it names one with :meth:`TenantSession.set_tenant`.
"""

from __future__ import annotations

import uuid
from typing import Callable

from sqlalchemy import Table, event, text
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.sql import visitors

from core.db import TenantOwned, tenant_tables


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

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the current transaction has committed (dropped on rollback)."""
        self.info.setdefault("after_commit", []).append(fn)


def _set_rls_context(connection, tenant_id: uuid.UUID | None) -> None:
    connection.execute(
        text("SELECT set_config('servq.tenant_id', :tid, true)"),
        {"tid": str(tenant_id) if tenant_id else ""},
    )


@event.listens_for(TenantSession, "after_begin")
def _after_begin(session: TenantSession, transaction, connection) -> None:
    if connection.dialect.name == "postgresql":
        _set_rls_context(connection, session.info.get("tenant_id"))


@event.listens_for(TenantSession, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete or state.is_insert):
        return
    if state.is_column_load or state.is_relationship_load:
        return  # the parent statement already carried the criteria
    # ``all_mappers`` only names the entities of the outermost SELECT; a count over a
    # subquery (pagination) or an EXISTS hides them, so look through the whole statement.
    tenant_scoped = {m.local_table.name for m in state.all_mappers if issubclass(m.class_, TenantOwned)}
    tenant_scoped |= _tenant_tables_in(state.statement)
    if not tenant_scoped:
        return
    session = state.session
    tenant_id = session.info.get("tenant_id")
    if tenant_id is None:
        names = ", ".join(sorted(tenant_scoped))
        raise NoTenantContext(f"query on tenant-owned {names} with no tenant in context")
    if not session.info.get("orm_filter", True):
        return  # only the tests switch this off, to prove RLS holds alone
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantOwned,
            lambda cls: cls.tenant_id == tenant_id,
            include_aliases=True,
            track_closure_variables=True,
        )
    )


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
