"""Core's record and evaluation KPIs, read from the daily rollups.

* ``records``: live records that occurred in the period (grouped by standard: the
  records evaluated against each standard);
* ``score``: the mean evaluation percent of those records' evaluations that have one;
* ``pass_rate``: the percentage passed of the evaluations judged pass or fail;
* ``critical_failures``: evaluations with at least one failed critical item.

All four come from the same sums (:func:`core.kpis.rollup_reads.record_sums`): whole days
from ``kpi_days``, the rest from ``records`` ⋈ ``evaluations``; the sums of one request
are computed once, whatever the number of these metrics asked. The answer equals the
raw tables' to the last digit (``score`` is rounded to :data:`SCORE_DIGITS` decimals:
sums of floating-point percents added in another order differ in the 15th digit).
Guide: ``docs/kpi-rollups.md``.
"""

from __future__ import annotations

from typing import Any

from servq.core.kpis import KpiQuery, Metric
from servq.core.kpis.rollup_reads import record_sums
from servq.core.kpis.rollups import REFRESH_JOB, refresh_kpi_rollups
from servq.core.plugins import Job

#: Decimals of ``score``.
SCORE_DIGITS = 6
GROUPINGS = frozenset({"day", "week", "month", "site", "staff", "kind", "standard"})


def _by_key(q: KpiQuery, value, empty) -> dict[tuple, Any]:
    sums = record_sums(q)
    if not sums and not q.group_by:
        return {(): empty}
    return {key: value(row) for key, row in sums.items()}


def compute_records(q: KpiQuery) -> dict[tuple, Any]:
    return _by_key(q, lambda s: int(s["records"]), 0)


def compute_score(q: KpiQuery) -> dict[tuple, Any]:
    return _by_key(q, lambda s: round(s["sum_percent"] / s["scored"], SCORE_DIGITS)
                   if s["scored"] else None, None)


def compute_pass_rate(q: KpiQuery) -> dict[tuple, Any]:
    return _by_key(q, lambda s: 100.0 * s["passed"] / s["judged"] if s["judged"] else None, None)


def compute_critical_failures(q: KpiQuery) -> dict[tuple, Any]:
    return _by_key(q, lambda s: int(s["failed_critical"]), 0)


METRICS: list[Metric] = [
    Metric(
        name="records",
        title={"en": "Records", "zh": "记录数"},
        unit="count",
        groupings=GROUPINGS,
        compute=compute_records,
        description="Number of live records that occurred in the period; grouped by standard, "
                    "the number of them evaluated against each standard.",
        better=None,
    ),
    Metric(
        name="score",
        title={"en": "Mean score", "zh": "平均得分"},
        unit="percent",
        groupings=GROUPINGS,
        compute=compute_score,
        description="Mean evaluation percent of the evaluations (one per record and standard) of "
                    "live records that occurred in the period; null when none has a percent.",
    ),
    Metric(
        name="pass_rate",
        title={"en": "Pass rate", "zh": "合格率"},
        unit="percent",
        groupings=GROUPINGS,
        compute=compute_pass_rate,
        description="Percentage of those evaluations that passed, among the ones judged pass or "
                    "fail; null when none was judged.",
    ),
    Metric(
        name="critical_failures",
        title={"en": "Critical failures", "zh": "关键项不合格数"},
        unit="count",
        groupings=GROUPINGS,
        compute=compute_critical_failures,
        description="Number of those evaluations with at least one failed critical item.",
        better="lower",
    ),
]

JOBS = [Job(REFRESH_JOB, refresh_kpi_rollups)]

__all__ = ["JOBS", "METRICS", "SCORE_DIGITS"]
