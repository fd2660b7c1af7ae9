"""Item overrides: outcomes a person decided instead of the rule (accepted disputes).

An override is kept per record, standard and item (:class:`~servq.core.models.EvaluationOverride`)
and honoured by every later scoring of the record, whatever writes it (a change, a
transition, ``POST /records/<id>/evaluate``, a standard's rescore job) and whatever the
standard's version: :func:`overrides_for` reads them for a batch of records with one
query per thousand, and :func:`servq.core.evaluation.score_records` hands each record's to
the engine (:class:`servq.core.scoring.Override`). The rule's own result stays in the
item's evidence and the evaluation keeps the percent the rules alone gave
(``original_percent``).
"""

from __future__ import annotations

import uuid
from typing import Any, Iterable, Mapping

from sqlalchemy import exists, select

from servq.core.db import dialect_insert, utcnow
from servq.core.db.state import TRANSACTION, Slot
from servq.core.models import EvaluationOverride
from servq.core.scoring import Outcome, Override

CHUNK = 1000
#: The tenant whose overrides this transaction found to be none (most tenants have
#: none, most of the time): its later scorings read nothing. Writing one forgets it.
_NONE: Slot[object] = Slot("servq.evaluation.no_overrides", TRANSACTION, __name__)
#: The outcomes a person may decide for an item.
OUTCOMES = ("pass", "fail", "na")


def _override(row: EvaluationOverride) -> Override:
    return Override(Outcome(row.outcome), row.points, {
        "reason": row.reason, "dispute_id": str(row.dispute_id) if row.dispute_id else None,
        "by": str(row.created_by) if row.created_by else None, "at": row.created_at.isoformat()})


def overrides_for(session, record_ids: Iterable[uuid.UUID]) -> dict[tuple[uuid.UUID, str], dict[str, Override]]:
    """``{(record id, standard code): {item code: Override}}`` of the given records.

    When the tenant has no override at all (one ``EXISTS`` per transaction finds out),
    nothing more is read for the rest of the transaction, until :func:`set_override`
    writes one: a history replayed step by step (a demo, an import of transitions) read
    them at every step."""
    ids = list(dict.fromkeys(record_ids))
    found: dict[tuple[uuid.UUID, str], dict[str, Override]] = {}
    if not ids:
        return found
    tenant_id = session.tenant_id
    if session.state.get(_NONE) == tenant_id and tenant_id is not None:
        return found
    if session.get_transaction() is not None and not session.scalar(select(exists().select_from(EvaluationOverride))):
        session.state.set(_NONE, tenant_id)
        return found
    for start in range(0, len(ids), CHUNK):
        for row in session.scalars(select(EvaluationOverride).where(
                EvaluationOverride.record_id.in_(ids[start:start + CHUNK]))):
            found.setdefault((row.record_id, row.standard_code), {})[row.item_code] = _override(row)
    return found


def set_override(session, record_id: uuid.UUID, standard_code: str, item_code: str, *,
                 outcome: str, points: float | None, original: Mapping[str, Any],
                 reason: str | None, dispute_id: uuid.UUID | None, actor_id: uuid.UUID | None) -> None:
    """Keep (or replace) the override of one item; the caller re-scores and commits."""
    session.state.pop(_NONE)
    values = {"outcome": outcome, "points": points, "original": dict(original), "reason": reason,
              "dispute_id": dispute_id, "created_by": actor_id, "created_at": utcnow()}
    stmt = dialect_insert(session)(EvaluationOverride).values(
        tenant_id=session.tenant_id, id=uuid.uuid4(), record_id=record_id,
        standard_code=standard_code, item_code=item_code, **values)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["tenant_id", "record_id", "standard_code", "item_code"], set_=values))


__all__ = ["OUTCOMES", "overrides_for", "set_override"]
