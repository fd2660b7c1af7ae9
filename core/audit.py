"""Audit events, written in the same transaction as the change they describe."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from servq.core.db import utcnow
from servq.core.db.fast import driver_execute
from servq.core.models import AuditEvent
from servq.core.db.tenancy import NoTenantContext


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of a value, the one converter of every concept: datetimes and
    dates as ISO 8601, UUIDs and Decimals as text, sets as lists; anything else as it is
    (the audit trail's column values, the outbox's payloads via ``json.dumps(default=)``)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    return value


def json_default(value: Any) -> Any:
    """``json.dumps``'s ``default=``: :func:`jsonable`'s conversion of a value JSON has no
    type for, or ``TypeError`` for one it leaves as it is (so an unknown type is refused,
    not stored as ``repr``)."""
    converted = jsonable(value)
    if converted is value:
        raise TypeError(f"a value of type {type(value).__name__} is not JSON")
    return converted


def apply_changes(obj: Any, values: dict[str, Any]) -> dict[str, list]:
    """Set ``values`` on ``obj``; return ``{field: [old, new]}`` for what really changed."""
    changes = {}
    for key, new in values.items():
        old = getattr(obj, key)
        if old != new:
            changes[key] = [jsonable(old), jsonable(new)]
            setattr(obj, key, new)
    return changes


def audit_row(session, entity: str, entity_id: uuid.UUID, action: str,
              actor_id: uuid.UUID | None, changes: dict | None = None) -> dict[str, Any]:
    """The row of an audit event stamped with the session's tenant, not yet written:
    for a caller that writes it with the change itself (``TenantSession.insert(obj,
    along=[(AuditEvent, row)])``, one statement on PostgreSQL).

    :raises NoTenantContext: the session has no tenant.
    """
    tenant_id = session.tenant_id
    if tenant_id is None:
        raise NoTenantContext(f"writing an audit event of {entity} with no tenant in context")
    return {"tenant_id": tenant_id, "id": uuid.uuid4(), "entity": entity,
            "entity_id": entity_id, "action": action, "actor_user_id": actor_id,
            "at": utcnow(), "changes": changes or {}}


def audit(session, entity: str, entity_id: uuid.UUID, action: str,
          actor_id: uuid.UUID | None, changes: dict | None = None) -> uuid.UUID:
    """Write an audit event for ``entity``/``entity_id`` in the session's transaction.

    The row is inserted at once with one ``INSERT`` on the session's connection (not
    added to the unit of work, whose flush costs several times more; on PostgreSQL
    straight through the driver), so it commits or rolls back with the change it
    describes. It is stamped with the
    session's tenant; row-level security checks it on PostgreSQL. Returns the event's id.

    :raises NoTenantContext: the session has no tenant.
    """
    values = audit_row(session, entity, entity_id, action, actor_id, changes)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        driver_execute(connection, _INSERT_POSTGRESQL, {**values, "changes": Jsonb(values["changes"])})
    else:
        connection.execute(_INSERT, values)
    return values["id"]


_INSERT = AuditEvent.__table__.insert()
# The same INSERT as PostgreSQL runs it through the driver (every write runs it).
_INSERT_POSTGRESQL = (
    "INSERT INTO audit_events (tenant_id, id, entity, entity_id, action, actor_user_id, at, changes) "
    "VALUES (%(tenant_id)s, %(id)s, %(entity)s, %(entity_id)s, %(action)s, %(actor_user_id)s, "
    "%(at)s, %(changes)s)"
)
