"""The audit trail of one object as an API list: shared by every ``/<id>/history`` route."""

from __future__ import annotations

import uuid

from marshmallow import Schema, fields
from sqlalchemy import select

from servq.core.api.pagination import paginate
from servq.core.models import AuditEvent, User


class ActorSchema(Schema):
    id = fields.UUID()
    name = fields.String()


class HistoryEntrySchema(Schema):
    id = fields.UUID()
    action = fields.String(metadata={"description": "created, changed, deleted, transition, …"})
    at = fields.AwareDateTime()
    actor = fields.Nested(ActorSchema, allow_none=True)
    changes = fields.Dict(metadata={"description": "{field: [old, new]}"})


def audit_history(session, entity: str, entity_id: uuid.UUID, args: dict,
                  headers: dict) -> list[dict]:
    """One page of the audit trail of ``entity``/``entity_id``, oldest first, each event
    with its actor: two queries whatever the page size (the events, then their actors)."""
    stmt = (select(AuditEvent)
            .where(AuditEvent.entity == entity, AuditEvent.entity_id == entity_id)
            .order_by(AuditEvent.at, AuditEvent.id))
    events = paginate(session, stmt, args, headers)
    actor_ids = {e.actor_user_id for e in events if e.actor_user_id}
    actors = ({u.id: u for u in session.scalars(select(User).where(User.id.in_(actor_ids)))}
              if actor_ids else {})
    return [{
        "id": e.id, "action": e.action, "at": e.at, "changes": e.changes,
        "actor": ({"id": e.actor_user_id, "name": actors[e.actor_user_id].name}
                  if e.actor_user_id in actors else None),
    } for e in events]
