"""KPIs of clock pauses: how long deadline clocks stood paused, and how often a pause cap
ended a pause.

Both read plain columns of the clocks, kept up to date when a pause closes
(:func:`core.deadlines.pauses.close_pause`): ``paused_seconds`` (real seconds of the
clock's closed pauses) and ``cap_hits`` (pauses ended by a cap). Like the other clock
KPIs (:mod:`core.kpis.timing`), a clock is placed in its period by its record's
``occurred_at`` and filtered on the record's site, staff and kind; one grouped query.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func

from servq.core.kpis import KpiQuery, Metric
from servq.core.kpis.timing import ALL, STANDARD_PARAM, _clock_keys, _clocks, _only_standard, _t
from servq.core.models import Clock


def _summed(column, *, integer: bool):
    def compute(q: KpiQuery) -> dict[tuple, Any]:
        keys = _clock_keys(q)
        stmt = _clocks(q, keys, func.coalesce(func.sum(column), 0).label("n")).where(
            column > 0, *_only_standard(q, Clock.standard_code))
        out = {key: (int(row.n) if integer else float(row.n)) for key, row in q.grouped(stmt).items()}
        if not q.group_by:
            out.setdefault((), 0 if integer else 0.0)
        return out

    return compute


def paused_time(q: KpiQuery) -> dict[tuple, Any]:
    return _summed(Clock.paused_seconds, integer=False)(q)


def pause_cap_hits(q: KpiQuery) -> dict[tuple, Any]:
    return _summed(Clock.cap_hits, integer=True)(q)


METRICS: list[Metric] = [
    Metric("paused_time", _t("Paused time", "暂停时长"), "seconds", ALL, paused_time,
           description="Real seconds the deadline clocks of the period's records stood paused "
                       "in waiting states (closed pauses), summed.",
           params=STANDARD_PARAM, better="lower"),
    Metric("pause_cap_hits", _t("Pause cap hits", "暂停超限次数"), "count", ALL, pause_cap_hits,
           description="Pauses of the period's records' deadline clocks that reached a pause "
                       "cap, so the clock resumed by itself.",
           params=STANDARD_PARAM, better="lower"),
]
