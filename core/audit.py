"""Audit events, written in the same transaction as the change they describe."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from core.models import AuditEvent


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of a column value for the audit trail."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def apply_changes(obj: Any, values: dict[str, Any]) -> dict[str, list]:
    """Set ``values`` on ``obj``; return ``{field: [old, new]}`` for what really changed."""
    changes = {}
    for key, new in values.items():
        old = getattr(obj, key)
        if old != new:
            changes[key] = [jsonable(old), jsonable(new)]
            setattr(obj, key, new)
    return changes


def audit(session, entity: str, entity_id: uuid.UUID, action: str,
          actor_id: uuid.UUID | None, changes: dict | None = None) -> AuditEvent:
    """Add an audit event for ``entity``/``entity_id`` to ``session`` (not committed)."""
    event = AuditEvent(entity=entity, entity_id=entity_id, action=action,
                       actor_user_id=actor_id, changes=changes or {})
    session.add(event)
    return event
