"""The breach watch over 100,000 open clocks with pauses and pause caps, against the same
watch over as many clocks without any, in the same run.

Target (issue 17, N8/N9): the scan over 100,000 open clocks, half of them paused with
caps, takes under 2 s. Benchmarks report a ratio against a baseline measured in the same
run (``bench/harness.py``); the absolute figure is the target's.

The database is ``BENCH_DATABASE_URL`` when it names PostgreSQL (a scratch database is
made and dropped there, and the scans run as the application role with row-level
security), else a scratch SQLite file (the embedded default). Two sets of tenants are
filled with ``--clocks`` clocks each:

* ``baseline``: every clock running with a 4-hour target; ``--due-percent`` (default 1 %)
  of them need the watch (a third each: past due, past 75 %, past 50 %);
* ``pauses``: the same running clocks for half of them; the other half paused in a
  waiting state, with ``pauses_in`` and ``pause_cap`` (2 h in the state, 3 h in all) and
  an earlier closed pause; their ``next_check_at`` is the cap instant, and
  ``--due-percent`` of them reached it (the watch resumes them: pause closed at the cap,
  audit, ``clock.pause_capped``), the others still have time.

Measured per set: one :func:`core.deadlines.breaches.scan` per tenant, committed
(``scan_seconds``), then the next one with nothing left to do (``idle_scan_seconds``).

    python bench/clock_scan.py [--clocks 100000] [--tenants 4] [--due-percent 1] [--profile]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, insert, select  # noqa: E402

from bench.harness import report  # noqa: E402
from bench.setup_tenant import make_tenant  # noqa: E402

TARGET_SECONDS = 2.0
ITEM = {"code": "answered", "title": {"en": "Answered within 4 hours", "zh": "4小时内答复"},
        "dimension": "responsiveness", "weight": 1, "escalate_to": ["manager"],
        "rule": {"type": "deadline", "start": "occurred_at", "stop": "timestamps.answered_at",
                 "limit": "4h", "pauses_in": ["waiting_customer"],
                 "pause_cap": {"waiting_customer": "2h", "total": "3h"}}}
DOCUMENT = {"code": "bench.response", "version": 1, "title": {"en": "Response", "zh": "响应"},
            "applies_to": ["observation"], "method": "weighted", "pass_mark": 100, "items": [ITEM]}
RULES = {"in": ["waiting_customer"], "cap": {"waiting_customer": "2h", "total": "3h"}}
H = timedelta(hours=1)
M = timedelta(minutes=1)


@contextmanager
def database():
    """``(url, engine, app role or None)``: a scratch PostgreSQL database or SQLite file."""
    url = os.environ.get("BENCH_DATABASE_URL", "")
    if url.startswith("postgresql"):
        from bench.harness import scratch_database

        with scratch_database("servq_bench_pauses") as (scratch, engine):
            yield scratch, engine, "servq_app"
        return
    from servq.core.db.migrate import upgrade

    with tempfile.TemporaryDirectory() as folder:
        scratch = f"sqlite:///{folder}/bench.db"
        engine = create_engine(scratch)
        upgrade(engine)
        try:
            yield scratch, engine, None
        finally:
            engine.dispose()


def _iso(instant):
    return instant.isoformat()


def clock_rows(tenant, records, now, due_percent: int, paused: bool):
    """The clocks of one tenant, one per record (see the module docstring)."""
    rows = []
    for i, record_id in enumerate(records):
        due = i % 100 < due_percent
        row = {"tenant_id": tenant, "id": uuid.uuid4(), "record_id": record_id,
               "standard_code": "bench.response", "standard_version": 1, "item_code": "answered",
               "target": "4h", "business": False, "stop_at": None, "breached_at": None,
               "withdrawals": [], "pause_rules": RULES if paused else None, "paused_seconds": 0.0,
               "cap_hits": 0, "updated_at": now, "paused_since": None, "pause_reason": None,
               "pauses": []}
        if paused and i % 2 == 1:
            due = (i // 2) % 100 < due_percent
            # Paused: a closed 10-minute pause of the state, then the open one; the state's
            # cap (2 h) comes 110 minutes after the open pause began.
            start = now - (3 * H + 20 * M if due else H + (i % 40) * M)
            since = start + 20 * M
            row.update(start_at=start, state="paused", paused_since=since, pause_reason="customer away",
                       pauses=[{"start": _iso(start + 5 * M), "end": _iso(start + 15 * M),
                                "reason": "customer away", "state": "waiting_customer", "seconds": 600.0},
                               {"start": _iso(since), "end": None, "reason": "customer away",
                                "state": "waiting_customer"}],
                       paused_seconds=600.0, due_at=start + 4 * H + 10 * M, warned=[],
                       warn50_at=start + 2 * H + 10 * M, warn75_at=start + 3 * H + 10 * M,
                       next_check_at=since + 110 * M)
            rows.append(row)
            continue
        group = ("breach", "w75", "w50")[i % 3] if due else "quiet"
        start = now - {"breach": 5 * H, "w75": 210 * M, "w50": 150 * M}.get(group, timedelta(seconds=i % 6000))
        row.update(start_at=start, state="running", due_at=start + 4 * H,
                   warn50_at=start + 2 * H, warn75_at=start + 3 * H,
                   warned={"breach": [50, 75], "w75": [50]}.get(group, []),
                   next_check_at={"breach": start + 4 * H, "w75": start + 3 * H}.get(group, start + 2 * H))
        rows.append(row)
    return rows


def fill(engine, tenants, per_tenant: int, now, due_percent: int, paused: bool) -> None:
    from servq.core.models import Clock, Record, StandardVersion

    with engine.begin() as conn:  # the owner loads the data
        for tenant in tenants:
            conn.execute(insert(StandardVersion.__table__), [{
                "tenant_id": tenant, "id": uuid.uuid4(), "code": "bench.response", "version": 1,
                "document": DOCUMENT, "overrides": {}, "created_at": now}])
            records = [uuid.uuid4() for _ in range(per_tenant)]
            for start in range(0, per_tenant, 10_000):
                conn.execute(insert(Record.__table__), [{
                    "tenant_id": tenant, "id": rid, "kind": "observation", "status": "open",
                    "occurred_at": now - H, "data": {"title": "Request"}, "timestamps": {},
                    "escalation_level": 0, "created_at": now, "updated_at": now}
                    for rid in records[start:start + 10_000]])
            rows = clock_rows(tenant, records, now, due_percent, paused)
            for start in range(0, len(rows), 10_000):
                conn.execute(insert(Clock.__table__), rows[start:start + 10_000])


def scan_all(app, tenants, now) -> tuple[float, dict]:
    from servq.core.db.session import new_session
    from servq.core.deadlines.breaches import scan

    done: dict = {}
    t0 = time.perf_counter()
    for tenant in tenants:
        with new_session(app, tenant) as s:
            for key, value in scan(s, now).as_dict().items():
                done[key] = round(done.get(key, 0) + value, 3)
    return time.perf_counter() - t0, done


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clocks", type=int, default=100_000)
    ap.add_argument("--tenants", type=int, default=4)
    ap.add_argument("--due-percent", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="Print where the pauses' scan spends its time.")
    args = ap.parse_args()

    from servq.core import create_app
    from servq.core.db import utcnow
    from servq.core.db.session import new_session
    from servq.core.models import Clock, OutboxEvent

    with database() as (url, engine, role):
        config = {"DATABASE_URL": url, "INSTANCE_PATH": tempfile.mkdtemp(prefix="servq-bench-"),
                  "REDIS_URL": None}
        if role:
            config["DATABASE_APP_ROLE"] = role
        app = create_app(config)
        per_tenant = args.clocks // args.tenants
        sets = {name: [make_tenant(app, f"{name}{n}")[0] for n in range(args.tenants)]
                for name in ("baseline", "pauses")}
        now = utcnow()
        t0 = time.perf_counter()
        fill(engine, sets["baseline"], per_tenant, now, args.due_percent, paused=False)
        fill(engine, sets["pauses"], per_tenant, now, args.due_percent, paused=True)
        if engine.dialect.name == "postgresql":
            from sqlalchemy import text

            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in ("records", "clocks", "standard_versions"):
                    conn.execute(text(f"VACUUM ANALYZE {table}"))
        fill_seconds = round(time.perf_counter() - t0, 1)

        out: dict = {}
        with app.app_context():
            for name, tenants in sets.items():
                with new_session(app, tenants[0]) as s:  # warm up: connections, imports
                    s.execute(select(Clock.id).limit(1)).all()
                profiler = None
                if args.profile and name == "pauses":
                    import cProfile

                    profiler = cProfile.Profile()
                    profiler.enable()
                seconds, done = scan_all(app, tenants, now)
                if profiler is not None:
                    import pstats

                    profiler.disable()
                    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumtime").print_stats(40)
                idle_seconds, idle = scan_all(app, tenants, now)
                paused = capped = events = 0
                for tenant in tenants:
                    with new_session(app, tenant) as s:
                        paused += s.scalar(select(func.count()).select_from(Clock).where(Clock.state == "paused"))
                        capped += s.scalar(select(func.coalesce(func.sum(Clock.cap_hits), 0)))
                        events += s.scalar(select(func.count()).select_from(OutboxEvent).where(
                            OutboxEvent.type == "clock.pause_capped"))
                out[name] = {"scan_seconds": round(seconds, 3), "idle_scan_seconds": round(idle_seconds, 3),
                             "done": done, "idle_done": {k: idle.get(k, 0) for k in
                                                         ("warnings", "breaches", "pause_caps")},
                             "paused_after": paused, "cap_hits": capped, "pause_capped_events": events}
        app.extensions["servq.engine"].dispose()
        dialect = engine.dialect.name

    scan_seconds = out["pauses"]["scan_seconds"]
    base = out["baseline"]["scan_seconds"]
    report("clock_scan", {
        "database": dialect, "clocks_per_set": args.clocks, "tenants": args.tenants,
        "due_percent": args.due_percent, "fill_seconds": fill_seconds, **out,
        "scan_seconds": scan_seconds,
        "ratio_to_baseline": round(scan_seconds / base, 2) if base else None,
        "target": f"pauses scan_seconds < {TARGET_SECONDS}",
        "met": scan_seconds < TARGET_SECONDS,
        "load_average": [round(x, 1) for x in os.getloadavg()], "cpus": os.cpu_count(),
    })


if __name__ == "__main__":
    main()
