"""The weekly report's pause section: how long the week's deadline clocks stood paused,
by waiting state and reason, and how many pauses a cap ended.

One grouped query: the clocks' ``pauses`` (a JSON array, :mod:`core.deadlines.pauses`)
expanded in SQL (``jsonb_array_elements`` on PostgreSQL, ``json_each`` on SQLite), for
the clocks of the week's records (by ``occurred_at``, like every section) that have paused
(``paused_seconds > 0``, the clocks' plain column). Closed pauses only: a pause still
open at the as-of instant counts once it ends.
"""

from __future__ import annotations

from sqlalchemy import Float, and_, case, column, func, select, true

from servq.core.db import JSONType
from servq.core.models import Clock, Record


def pause_section(session, since, until, digits: int = 4) -> dict:
    """``{total_seconds, cap_hits, pauses, rows: [{state, reason, pauses, seconds, cap_hits}]}``
    of the clocks of the records that occurred in ``[since, until)``; rows by seconds, most first."""
    name = "jsonb_array_elements" if session.get_bind().dialect.name == "postgresql" else "json_each"
    element = getattr(func, name)(Clock.pauses).table_valued(column("value", JSONType), name="pause")
    value = element.c.value
    state = func.coalesce(value["state"].as_string(), "")
    reason = func.coalesce(value["reason"].as_string(), "")
    seconds = value["seconds"].as_float()
    capped = case((value["capped"].as_boolean() == true(), 1), else_=0)
    rows = session.execute(
        select(state.label("state"), reason.label("reason"), func.count().label("pauses"),
               func.sum(func.cast(seconds, Float)).label("seconds"), func.sum(capped).label("cap_hits"))
        .select_from(Clock)
        .join(Record, and_(Record.tenant_id == Clock.tenant_id, Record.id == Clock.record_id))
        .join(element, true())
        .where(Record.occurred_at >= since, Record.occurred_at < until, Record.deleted_at.is_(None),
               Clock.paused_seconds > 0, seconds.is_not(None))
        .group_by(state, reason)).all()
    out = sorted(({"state": r.state or None, "reason": r.reason or None, "pauses": int(r.pauses),
                   "seconds": round(float(r.seconds or 0), digits), "cap_hits": int(r.cap_hits or 0)}
                  for r in rows), key=lambda r: (-r["seconds"], r["state"] or "", r["reason"] or ""))
    by_state: dict[str, float] = {}
    for r in out:
        by_state[r["state"] or ""] = round(by_state.get(r["state"] or "", 0.0) + r["seconds"], digits)
    return {"total_seconds": round(sum(r["seconds"] for r in out), digits),
            "cap_hits": sum(r["cap_hits"] for r in out), "pauses": sum(r["pauses"] for r in out),
            "by_state": by_state, "rows": out}
