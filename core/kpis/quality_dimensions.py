"""Quality files: where a subject loses quality, by SERVQUAL dimension, and the items they
fail again and again.

* :func:`dimensions` (the **staff quality index by SERVQUAL dimension**): every judged item
  outcome of the subject's evaluations in the period, grouped by the ``dimension`` the item
  carries in the standard version it was scored with: points earned out of the points at
  stake, their percent, how many items and how many failed. The evaluation's items
  (``evaluations.items``) and the version's items (``standard_versions.document.items``)
  are both expanded in SQL by the dialect's JSON table function (``json_each`` on SQLite,
  ``jsonb_array_elements`` on PostgreSQL) and matched by code: one grouped query.
* :func:`repeat_offences`: the same item of the same standard failed (``fail`` or
  ``breached``) :data:`REPEAT_THRESHOLD` times or more in one tenant-local calendar month
  (当月): one grouped query. The file only lists them; whoever acts on them (a manager, the
  rewards and penalties ledger) reads them from here.

Judged items are those whose outcome is ``pass``, ``fail`` or ``breached`` (``na`` and
``pending`` items put nothing at stake).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select, true, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import column as column_named

from servq.core.db import JSONType
from servq.core.kpis.sql import period
from servq.core.models import Evaluation, Record, StandardVersion
from servq.core.scoring.standard import DIMENSIONS

if TYPE_CHECKING:
    from servq.core.kpis.quality_files import FileQuery

#: Outcomes that put an item's points at stake.
JUDGED = ("pass", "fail", "breached")
FAILED = ("fail", "breached")
#: Failures of the same item in one calendar month that make a repeat offence (S §六.4).
REPEAT_THRESHOLD = 3


def _elements(q: FileQuery, column, name: str, path: str | None = None):
    """The elements of the JSON array ``column`` (or of ``column``'s member ``path``) as
    a table with one JSON column ``value``, joined laterally to the row it comes from."""
    if q.dialect == "postgresql":
        source = type_coerce(column, JSONB)[path] if path else column
        return func.jsonb_array_elements(source).table_valued(column_named("value", JSONType), name=name)
    args = (column, f"$.{path}") if path else (column,)
    return func.json_each(*args).table_valued(column_named("value", JSONType), name=name)


def dimensions(q: FileQuery) -> list[dict[str, Any]]:
    """Per SERVQUAL dimension (in the model's order, then any other), over the judged
    items of the subject's evaluations in the period: ``items``, ``failures``, ``points``,
    ``max_points``, ``percent`` (points of max points) and ``lost`` (max points - points).
    Dimensions without a judged item are listed with zeros and ``percent: null``."""
    e, sv = Evaluation, StandardVersion
    item = _elements(q, e.items, "item")
    defined = _elements(q, sv.document, "defined", "items")
    code = item.c.value["code"].as_string()
    outcome = item.c.value["outcome"].as_string()
    dimension = defined.c.value["dimension"].as_string().label("dimension")
    rows = q.session.execute(
        select(dimension, func.count().label("items"),
               func.count(case((outcome.in_(FAILED), 1))).label("failures"),
               func.sum(item.c.value["points"].as_float()).label("points"),
               func.sum(item.c.value["max_points"].as_float()).label("max_points"))
        .select_from(Record)
        .join(e, and_(e.tenant_id == Record.tenant_id, e.record_id == Record.id))
        .join(item, true())
        .join(sv, and_(sv.tenant_id == e.tenant_id, sv.code == e.standard_code,
                       sv.version == e.standard_version))
        .join(defined, defined.c.value["code"].as_string() == code)
        .where(*q.records(), outcome.in_(JUDGED))
        .group_by(dimension)).all()
    found = {row.dimension: row for row in rows}
    out = []
    for name in [*DIMENSIONS, *sorted(k for k in found if k not in DIMENSIONS and k is not None),
                 *([None] if None in found else [])]:
        row = found.get(name)
        points = float(row.points or 0) if row else 0.0
        max_points = float(row.max_points or 0) if row else 0.0
        out.append({"dimension": name, "items": int(row.items) if row else 0,
                    "failures": int(row.failures) if row else 0,
                    "points": points, "max_points": max_points,
                    "percent": 100.0 * points / max_points if max_points else None,
                    "lost": max_points - points})
    return out


def _month_start(instant: datetime, tz: str) -> datetime:
    """The UTC instant the tenant-local month of ``instant`` starts at."""
    try:
        local = instant.astimezone(ZoneInfo(tz))
        return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return instant


def repeat_offences(q: FileQuery) -> list[dict[str, Any]]:
    """The items of a standard the subject failed at least :data:`REPEAT_THRESHOLD` times
    in one tenant-local calendar month, for the months the period touches (each counted
    from its first day, up to ``until``), oldest month first."""
    e = Evaluation
    item = _elements(q, e.items, "item")
    code = item.c.value["code"].as_string().label("item_code")
    outcome = item.c.value["outcome"].as_string()
    month = period(Record.occurred_at, "month", q.timezone, q.dialect).label("month")
    start = _month_start(q.since, q.timezone)
    rows = q.session.execute(
        select(month, e.standard_code, code, func.count().label("failures"))
        .select_from(Record)
        .join(e, and_(e.tenant_id == Record.tenant_id, e.record_id == Record.id))
        .join(item, true())
        .where(q.of_subject(), *q.live(), Record.occurred_at >= start,
               Record.occurred_at < q.until, outcome.in_(FAILED))
        .group_by(month, e.standard_code, code)
        .having(func.count() >= REPEAT_THRESHOLD)
        .order_by(month, e.standard_code, code)).all()
    return [{"month": row.month, "standard_code": row.standard_code, "item_code": row.item_code,
             "failures": int(row.failures), "threshold": REPEAT_THRESHOLD} for row in rows]


__all__ = ["dimensions", "repeat_offences", "REPEAT_THRESHOLD"]
