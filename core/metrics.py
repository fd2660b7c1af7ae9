"""servq's Prometheus metrics (prometheus-client): the collectors every layer counts into.

Outside the layers (pyproject.toml's import contracts): it imports nothing of servq, so
any package may count into it (jobs, the breach watch, ingestion, the API). Labels never
hold a tenant id or a raw path: an endpoint is the Flask URL rule, a job its stable name.

The collectors live in prometheus-client's default registry, shared by every app of the
process. Under gunicorn each worker is a process of its own: set
``PROMETHEUS_MULTIPROC_DIR`` to an empty folder (wiped at each start) and ``/metrics``
aggregates every worker's values (prometheus-client's multiprocess mode; see
docs/operations.md).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST  # noqa: F401  (the exposition's media type)

HTTP_REQUESTS = Counter(
    "servq_http_requests_total", "HTTP requests answered, by method, endpoint (URL rule) and status",
    ["method", "endpoint", "status"])
HTTP_LATENCY = Histogram(
    "servq_http_request_duration_seconds", "Time to answer an HTTP request, by method and endpoint",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

JOBS_ENQUEUED = Counter("servq_jobs_enqueued_total", "Jobs handed to rq (or run inline), by job name", ["job"])
JOBS_FINISHED = Counter("servq_jobs_finished_total", "Jobs that ran to the end, by job name", ["job"])
JOBS_FAILED = Counter("servq_jobs_failed_total", "Jobs that raised, by job name", ["job"])

BREACH_WATCH_SECONDS = Histogram(
    "servq_breach_watch_duration_seconds", "Time of one tenant's breach-watch scan",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60))
CLOCKS_SCANNED = Counter("servq_breach_watch_clocks_scanned_total",
                         "Deadline clocks the breach watch selected and acted on")

RECORDS_IMPORTED = Counter("servq_records_imported_total",
                           "Records committed by bulk file imports (servq records import)")

TENANTS = Gauge("servq_tenants", "Tenants in the database (read at each scrape)", multiprocess_mode="max")

DB_POOL_CHECKED_OUT = Gauge("servq_db_pool_checked_out", "Database connections checked out of the pool",
                            multiprocess_mode="livesum")


def render() -> bytes:
    """The text exposition of every metric: this process's, or every worker's when
    ``PROMETHEUS_MULTIPROC_DIR`` is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


def watch_pool(engine) -> None:
    """Count ``engine``'s connections in and out of its pool in
    :data:`DB_POOL_CHECKED_OUT` (SQLAlchemy pool events)."""
    from sqlalchemy import event

    if getattr(engine, "_servq_pool_watched", False):
        return
    engine._servq_pool_watched = True
    event.listen(engine, "checkout", lambda *a: DB_POOL_CHECKED_OUT.inc())
    event.listen(engine, "checkin", lambda *a: DB_POOL_CHECKED_OUT.dec())
