"""How disputes fare: dispute and overturn rates by standard, item and reviewer, and the
time to decide, in SQL (one grouped query per grouping, whatever the number of disputes).

A dispute *overturns* when its last decision accepted it wholly or partly; an item is
overturned when that decision left an override of it. Rates are over the evaluations of
records that occurred in the period (dispute rate) and over the decided disputes
(overturn rate).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, literal_column, select

from servq.core.models import Dispute, Evaluation, EvaluationOverride, Record

GROUPINGS = ("standard", "item", "reviewer")
OVERTURNED = ("accepted", "partially_accepted")


def _hours(session, start, end):
    """``end - start`` in hours, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start) / 3600.0
    return (func.julianday(end) - func.julianday(start)) * 24.0


def _rate(part, whole) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def summary(session, since: datetime, until: datetime, by: str = "standard") -> list[dict[str, Any]]:
    """One row per standard, item or reviewer of the disputes of records that occurred in
    ``[since, until)``: ``disputes``, ``decided``, ``overturned``, ``overturn_rate`` (%),
    ``mean_hours_to_decide``; by standard also ``evaluations`` and ``dispute_rate`` (%)."""
    in_period = and_(Record.occurred_at >= since, Record.occurred_at < until)
    decided = Dispute.decided_at.is_not(None)
    overturned = Dispute.result.in_(OVERTURNED)
    hours = _hours(session, Dispute.filed_at, Dispute.decided_at)
    if by == "item":
        return _by_item(session, in_period)
    key = Dispute.standard_code if by == "standard" else Dispute.reviewer_id
    rows = session.execute(
        select(key.label("key"), func.count().label("disputes"),
               func.count(case((decided, 1))).label("decided"),
               func.count(case((overturned, 1))).label("overturned"),
               func.avg(case((decided, cast(hours, Float)))).label("hours"))
        .join(Record, and_(Record.tenant_id == Dispute.tenant_id, Record.id == Dispute.record_id))
        .where(in_period).group_by(key).order_by(key)).all()
    evaluations = {}
    if by == "standard":
        evaluations = dict(session.execute(
            select(Evaluation.standard_code, func.count())
            .join(Record, and_(Record.tenant_id == Evaluation.tenant_id, Record.id == Evaluation.record_id))
            .where(in_period).group_by(Evaluation.standard_code)).all())
    out = []
    for row in rows:
        entry = {by: row.key, "disputes": row.disputes, "decided": row.decided,
                 "overturned": row.overturned, "overturn_rate": _rate(row.overturned, row.decided),
                 "mean_hours_to_decide": round(row.hours, 2) if row.hours is not None else None}
        if by == "standard":
            entry["evaluations"] = evaluations.get(row.key, 0)
            entry["dispute_rate"] = _rate(row.disputes, entry["evaluations"])
        out.append(entry)
    return out


def _by_item(session, in_period) -> list[dict[str, Any]]:
    """Disputed and overturned items, per standard and item: the disputed items are the
    elements of ``disputes.items`` (a JSON table function per dialect), the overturned ones
    the overrides the disputes left."""
    if session.get_bind().dialect.name == "postgresql":
        elements = func.jsonb_array_elements(Dispute.items).table_valued("value").alias("element")
        item = elements.c.value.op("->>")(literal_column("'item'"))
    else:
        elements = func.json_each(Dispute.items).table_valued("value").alias("element")
        item = func.json_extract(elements.c.value, "$.item")
    overridden = (select(EvaluationOverride.id).where(
        EvaluationOverride.dispute_id == Dispute.id, EvaluationOverride.item_code == item)
        .correlate(Dispute, elements).exists())
    rows = session.execute(
        select(Dispute.standard_code, item.label("item"), func.count().label("disputes"),
               func.count(case((Dispute.decided_at.is_not(None), 1))).label("decided"),
               func.count(case((overridden, 1))).label("overturned"))
        .select_from(Dispute).join(elements, literal_column("true"))
        .join(Record, and_(Record.tenant_id == Dispute.tenant_id, Record.id == Dispute.record_id))
        .where(in_period).group_by(Dispute.standard_code, item)
        .order_by(Dispute.standard_code, item)).all()
    return [{"standard": row.standard_code, "item": row.item, "disputes": row.disputes,
             "decided": row.decided, "overturned": row.overturned,
             "overturn_rate": _rate(row.overturned, row.decided)} for row in rows]
