"""KPIs' core plugin: core's metrics and the rollup refresh job.

Registered in ``DEFAULT_PLUGINS``, so core's metrics are there for every tenant.
"""

from __future__ import annotations

from servq.core.kpis import feedback, pauses, records, timing
from servq.core.plugins import hookimpl


@hookimpl
def register_kpis():
    return [*records.METRICS, *timing.METRICS, *pauses.METRICS, *feedback.METRICS]


@hookimpl
def register_jobs():
    return list(records.JOBS)
