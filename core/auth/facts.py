"""Per-tenant facts that ride along with the authentication query.

Every request starts with one query (:func:`servq.core.auth.tokens.authenticate`): the
token, its membership, user and tenant. What a request needs to know about the tenant
on every request (its standards revision, the kinds its survey triggers watch) travels
in that same query, as one more column, instead of costing a query of its own
(``docs/performance.md``). The package that owns such a fact registers it here, at
import, with :func:`tenant_fact`: the column, written once for SQLAlchemy (SQLite) and
once as the PostgreSQL text the driver sends, and a function that keeps the value on the
session (a :class:`~servq.core.db.state.Slot` of its own). Auth knows none of them.

The query is built on the first authentication, with the facts registered by then
(:func:`servq.core.create_app` has imported every package); registering one later is
an error rather than a fact silently missing.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, NamedTuple

from sqlalchemy.sql import ColumnElement


class TenantFact(NamedTuple):
    """A per-tenant fact read with the token."""

    name: str
    #: The column for SQLAlchemy Core, given the ``tenant_id`` bind parameter.
    column: Callable[[Any], ColumnElement]
    #: The same for PostgreSQL, in the driver's SQL: ``%(tenant_id)s`` for the tenant;
    #: ``t`` (tokens), ``m`` (memberships), ``u`` (users) and ``n`` (tenants) are joined.
    postgresql: str
    #: ``remember(session, tenant_id, value)``: keep the value on the session.
    remember: Callable[[Any, uuid.UUID, Any], None]


_FACTS: list[TenantFact] = []
_BUILT = False


def tenant_fact(name: str, column: Callable[[Any], ColumnElement], postgresql: str,
                remember: Callable[[Any, uuid.UUID, Any], None]) -> None:
    """Read ``column`` with every token and hand its value to ``remember``.

    Registering the same name again replaces it (a module imported twice), until the
    query is built; after that it is an error.
    """
    fact = TenantFact(name, column, postgresql, remember)
    for n, known in enumerate(_FACTS):
        if known.name == name:
            if _BUILT and known.postgresql != postgresql:
                raise RuntimeError(f"tenant fact {name!r} changed after the authentication query was built")
            _FACTS[n] = fact
            return
    if _BUILT:
        raise RuntimeError(f"tenant fact {name!r} registered after the authentication query was "
                           "built: register it when its package is imported")
    _FACTS.append(fact)


def tenant_facts() -> tuple[TenantFact, ...]:
    """The registered facts, in registration order; none may be added afterwards."""
    global _BUILT
    _BUILT = True
    return tuple(_FACTS)
