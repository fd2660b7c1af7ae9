"""Delete a tenant and everything it owns (the end of a tenant's lifecycle).

Export first (:mod:`tenants.export`): deletion is final.
"""

from __future__ import annotations

import logging
import uuid

from flask import Flask
from sqlalchemy import delete, select

from servq.core.db.session import new_session
from servq.core.db import Base
from servq.tenants.export import owned_tables

log = logging.getLogger(__name__)


def delete_tenant(app: Flask, tenant_id: uuid.UUID) -> dict[str, int]:
    """Delete tenant ``tenant_id``: its rows in every tenant-owned table, the tenant
    itself, and the users who are left with no membership in any tenant.

    Everything happens in one transaction of a session scoped to the tenant, so on
    PostgreSQL row-level security admits exactly this tenant's rows. Children are
    deleted before their parents (reverse dependency order), so no foreign key has to
    cascade.

    :return: rows deleted per table (``tenants`` and ``users`` included).
    :raises LookupError: when there is no such tenant.
    """
    tenant_id = uuid.UUID(str(tenant_id))
    meta = Base.metadata.tables
    tenants, users, memberships = meta["tenants"], meta["users"], meta["memberships"]
    counts: dict[str, int] = {}
    with new_session(app, tenant_id) as session, session.begin():
        if session.scalar(select(tenants.c.id).where(tenants.c.id == tenant_id)) is None:
            raise LookupError(f"tenant {tenant_id} does not exist")
        members = set(session.scalars(
            select(memberships.c.user_id).where(memberships.c.tenant_id == tenant_id)))
        for table in reversed(owned_tables()):
            result = session.execute(delete(table).where(table.c.tenant_id == tenant_id))
            counts[table.name] = result.rowcount
        counts["tenants"] = session.execute(delete(tenants).where(tenants.c.id == tenant_id)).rowcount
        orphans = members - _users_with_memberships(session, members, tenant_id)
        counts["users"] = 0
        if orphans:
            counts["users"] = session.execute(delete(users).where(users.c.id.in_(orphans))).rowcount
    log.info("tenant %s deleted: %s", tenant_id, counts)
    return counts


def _users_with_memberships(session, user_ids: set[uuid.UUID], deleted: uuid.UUID) -> set[uuid.UUID]:
    """Which of ``user_ids`` are still members of some tenant.

    Deleting a user would cascade into its memberships everywhere, so a user is kept
    while any tenant still has it. Row-level security shows a transaction only one
    tenant's memberships, so on PostgreSQL each remaining tenant is asked in turn (still
    in the same transaction, with the tenant setting switched and put back); elsewhere one
    query sees them all.
    """
    if not user_ids:
        return set()
    memberships = Base.metadata.tables["memberships"]
    tenants = Base.metadata.tables["tenants"]
    wanted = select(memberships.c.user_id).where(memberships.c.user_id.in_(user_ids)).distinct()
    if session.get_bind().dialect.name != "postgresql":
        return set(session.scalars(wanted))
    found: set[uuid.UUID] = set()
    try:
        for other in session.scalars(select(tenants.c.id).order_by(tenants.c.id)).all():
            session.set_tenant(other)
            found |= set(session.scalars(wanted.where(memberships.c.tenant_id == other)))
            if found >= user_ids:
                break
    finally:
        session.set_tenant(deleted)
    return found
