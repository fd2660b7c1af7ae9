"""The breach watch over 100,000 open clocks on PostgreSQL, against a plain indexed query
for the due clocks, in the same run.

Target (issue 4): the scheduled scan over 100,000 open clocks takes under 5 s.

The clocks are spread over a few tenants. Most are running and not due; a share of them
(``--due-percent``, default 1 %: a third past their due time, a third past 75 % and a
third past 50 % of their target) need the watch. With targets of a few hours, 1 % of
100,000 clocks is about what one minute brings (each clock crosses three thresholds in
its life: 100,000 x 3 / 240 minutes = 1,250 a minute for 4-hour targets).
Measured, each as the application role with row-level security on:

* ``plain_query``: ``SELECT`` of the due clocks of every tenant (the indexed query the
  scan starts from) and nothing else;
* ``scan``: one full tick (:func:`core.deadlines.watch.run_tick`, every tenant in turn): the
  warnings, the breaches (state, escalation of the records, audit events, outbox
  notifications), the recurring obligations and the webhook retries, committed;
* ``idle_scan``: the next tick, with nothing left to do.

    python bench/clock_scan.py [--clocks 100000] [--tenants 4] [--due-percent 1] [--profile]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text  # noqa: E402

from bench.harness import report, scratch_database  # noqa: E402
from bench.setup_tenant import make_tenant  # noqa: E402

STANDARD = """
INSERT INTO standard_versions (tenant_id, id, code, version, document, overrides, created_at)
VALUES (:tenant, gen_random_uuid(), 'bench.response', 1, CAST(:document AS jsonb), '{}'::jsonb, now())
"""
DOCUMENT = """{"code": "bench.response", "version": 1, "title": {"en": "Response", "zh": "响应"},
 "applies_to": ["observation"], "method": "weighted", "pass_mark": 100,
 "items": [{"code": "answered", "title": {"en": "Answered within 4 hours", "zh": "4小时内答复"},
            "dimension": "responsiveness", "weight": 1, "escalate_to": ["manager"],
            "rule": {"type": "deadline", "start": "occurred_at", "stop": "timestamps.answered_at",
                     "limit": "4h"}}]}"""

RECORDS = text("""
INSERT INTO records (tenant_id, id, kind, occurred_at, status, data, timestamps,
                     escalation_level, created_at, updated_at)
SELECT :tenant, gen_random_uuid(), 'observation', now() - make_interval(secs => i), 'open',
       jsonb_build_object('title', 'Request ' || i), '{}'::jsonb, 0, now(), now()
FROM generate_series(1, :n) AS i
""")

# Clock i (by record order): i % 100 below `due` is due (a third each: breach, 75 %, 50 %),
# the others started up to 100 minutes ago with a 4-hour target, their 50 % still ahead.
CLOCKS = text("""
INSERT INTO clocks (tenant_id, id, record_id, standard_code, standard_version, item_code, target,
                    business, start_at, due_at, stop_at, state, pauses, warned, next_check_at,
                    warn50_at, warn75_at, breached_at, updated_at)
SELECT :tenant, gen_random_uuid(), r.id, 'bench.response', 1, 'answered', '4h', false,
       s.start_at, s.start_at + interval '4 hours', NULL, 'running', '[]'::jsonb,
       CASE s.grp WHEN 'breach' THEN '[50, 75]'::jsonb WHEN 'w75' THEN '[50]'::jsonb ELSE '[]'::jsonb END,
       CASE s.grp WHEN 'breach' THEN s.start_at + interval '4 hours'
                  WHEN 'w75' THEN s.start_at + interval '3 hours'
                  ELSE s.start_at + interval '2 hours' END,
       s.start_at + interval '2 hours', s.start_at + interval '3 hours', NULL, now()
FROM (SELECT id, row_number() OVER (ORDER BY id) AS i FROM records WHERE tenant_id = :tenant) AS r
CROSS JOIN LATERAL (
    SELECT CASE WHEN r.i % 100 < :due AND r.i % 3 = 0 THEN 'breach'
                WHEN r.i % 100 < :due AND r.i % 3 = 1 THEN 'w75'
                WHEN r.i % 100 < :due THEN 'w50' ELSE 'quiet' END AS grp
) AS g
CROSS JOIN LATERAL (
    SELECT g.grp,
           now() - CASE g.grp WHEN 'breach' THEN interval '5 hours'
                              WHEN 'w75' THEN interval '210 minutes'
                              WHEN 'w50' THEN interval '150 minutes'
                              ELSE make_interval(secs => (r.i % 6000)) END AS start_at
) AS s
""")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clocks", type=int, default=100_000)
    ap.add_argument("--tenants", type=int, default=4)
    ap.add_argument("--due-percent", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="Print where the scan spends its time.")
    args = ap.parse_args()

    from servq.core import create_app
    from servq.core.db.session import new_session
    from servq.core.db import utcnow
    from servq.core.deadlines.watch import run_tick
    from servq.core.models import AuditEvent, Clock, OutboxEvent, Record

    with scratch_database("servq_bench_clocks") as (url, engine):
        app = create_app({"DATABASE_URL": url, "DATABASE_APP_ROLE": "servq_app",
                          "INSTANCE_PATH": "/tmp/servq-bench", "REDIS_URL": None})
        tenants = [make_tenant(app, f"t{n}")[0] for n in range(args.tenants)]
        per_tenant = args.clocks // args.tenants
        t0 = time.perf_counter()
        with engine.begin() as conn:  # the owner (a superuser here) loads the data
            for tenant in tenants:
                conn.execute(text(STANDARD), {"tenant": tenant, "document": DOCUMENT})
                conn.execute(RECORDS, {"tenant": tenant, "n": per_tenant})
                conn.execute(CLOCKS, {"tenant": tenant, "due": args.due_percent})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("records", "clocks", "standard_versions"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))
        fill_seconds = round(time.perf_counter() - t0, 1)

        def counts():
            out = {"open_clocks": 0, "due_clocks": 0}
            now = utcnow()
            for tenant in tenants:
                with new_session(app, tenant) as s:
                    out["open_clocks"] += s.scalar(select(func.count()).select_from(Clock).where(
                        Clock.state.in_(("running", "paused"))))
                    out["due_clocks"] += s.scalar(select(func.count()).select_from(Clock).where(
                        Clock.state.in_(("running", "breached")), Clock.next_check_at <= now))
            return out

        before = counts()
        with app.app_context():
            # Warm up: connections, the plugin manager, imports.
            with new_session(app, tenants[0]) as s:
                s.execute(select(Clock.id).limit(1)).all()

            now = utcnow()
            t0 = time.perf_counter()
            due_rows = 0
            for tenant in tenants:
                with new_session(app, tenant) as s:
                    due_rows += len(s.execute(
                        select(Clock.id, Clock.record_id, Clock.state, Clock.due_at, Clock.warned,
                               Clock.warn50_at, Clock.warn75_at)
                        .where(Clock.state.in_(("running", "breached")), Clock.next_check_at <= now)
                        .order_by(Clock.next_check_at)).all())
            plain_seconds = time.perf_counter() - t0

            profiler = None
            if args.profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            t0 = time.perf_counter()
            results = run_tick(app, now)
            scan_seconds = time.perf_counter() - t0
            if profiler is not None:
                import pstats

                profiler.disable()
                pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)

            t0 = time.perf_counter()
            idle = run_tick(app, utcnow())
            idle_seconds = time.perf_counter() - t0

        done = {"warnings": 0, "breaches": 0, "escalated_records": 0, "notifications": 0,
                "notify_seconds": 0.0}
        for counts_ in results.values():
            for key in done:
                done[key] += counts_.get(key, 0)
        done["notify_seconds"] = round(done["notify_seconds"], 3)
        after = counts()
        outbox = escalated = audits = 0
        for tenant in tenants:
            with new_session(app, tenant) as s:
                outbox += s.scalar(select(func.count()).select_from(OutboxEvent))
                escalated += s.scalar(select(func.count()).select_from(Record).where(
                    Record.escalation_level > 0))
                audits += s.scalar(select(func.count()).select_from(AuditEvent).where(
                    AuditEvent.action == "escalated"))
        app.extensions["servq.engine"].dispose()

    report("clock_scan", {
        "clocks": args.clocks, "tenants": args.tenants, "fill_seconds": fill_seconds,
        "open_clocks_before": before["open_clocks"], "due_clocks_before": before["due_clocks"],
        "plain_query_rows": due_rows, "plain_query_seconds": round(plain_seconds, 3),
        "scan_seconds": round(scan_seconds, 3), "idle_scan_seconds": round(idle_seconds, 3),
        "scan_to_plain_ratio": round(scan_seconds / plain_seconds, 1) if plain_seconds else None,
        "done": done, "outbox_events": outbox, "records_escalated": escalated,
        "escalation_audit_events": audits, "due_clocks_after": after["due_clocks"],
        "scan_seconds_without_outbox": round(scan_seconds - done["notify_seconds"], 3),
        "outbox_ms_per_event": round(1000 * done["notify_seconds"] / done["notifications"], 2)
        if done["notifications"] else None,
        "idle_scan_did": {k: sum(v.get(k, 0) for v in idle.values())
                          for k in ("warnings", "breaches", "escalated_records")},
        "load_average": [round(x, 1) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "target": "scan_seconds < 5",
    })


if __name__ == "__main__":
    main()
