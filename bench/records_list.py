"""The record list endpoint with 100 records vs. 1,000,000 records in the tenant, on
PostgreSQL over HTTP (``servq serve``), in the same run.

Target (issue 2): p50 with 1,000,000 records <= 1.5 x p50 with 100 records.

    python bench/records_list.py [--big 1000000] [--requests 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from bench.harness import free_port, load, python, report, scratch_database, server  # noqa: E402
from bench.setup_tenant import make_tenant  # noqa: E402

FILL = text("""
INSERT INTO records (tenant_id, id, kind, occurred_at, status, data, created_at, updated_at)
SELECT :tenant, gen_random_uuid(), 'observation',
       now() - make_interval(secs => i * 37), CASE WHEN i % 5 = 0 THEN 'closed' ELSE 'open' END,
       jsonb_build_object('title', 'Finding ' || i, 'severity', 'low', 'tags', '[]'::jsonb),
       now(), now()
FROM generate_series(1, :n) AS i
""")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()

    from servq.core import create_app

    with scratch_database() as (url, engine):
        app = create_app({"DATABASE_URL": url, "DATABASE_APP_ROLE": "servq_app",
                          "INSTANCE_PATH": "/tmp/servq-bench"})
        small_id, small_token = make_tenant(app, "small")
        big_id, big_token = make_tenant(app, "big")
        app.extensions["servq.engine"].dispose()
        t0 = time.perf_counter()
        with engine.begin() as conn:  # the owner (a superuser here) loads the data
            conn.execute(FILL, {"tenant": small_id, "n": args.small})
            conn.execute(FILL, {"tenant": big_id, "n": args.big})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE records"))
        fill_seconds = round(time.perf_counter() - t0, 1)

        env = {"DATABASE_URL": url, "SERVQ_DB_ROLE": "servq_app", "SERVQ_INSTANCE_PATH": "/tmp/servq-bench"}
        port = free_port()
        results = {}
        with server([python(), "-c", "import cli; cli.main()", "serve", "--port", str(port), "--workers", "2"],
                    port, env, "/api/v1/openapi.json"):
            for name, token in (("small", small_token), ("big", big_token), ("small_again", small_token)):
                headers = {"Authorization": f"Bearer {token}"}
                load(port, "GET", "/api/v1/records?page_size=50", lambda: None, headers, 1, 1)
                results[name] = load(port, "GET", "/api/v1/records?page_size=50", lambda: None,
                                     headers, 1, args.seconds)
            filtered = load(port, "GET", "/api/v1/records?page_size=50&status=closed", lambda: None,
                            {"Authorization": f"Bearer {big_token}"}, 1, args.seconds)

    small_p50 = min(results["small"]["p50_ms"], results["small_again"]["p50_ms"])
    ratio = results["big"]["p50_ms"] / small_p50
    report("records_list", {"small_records": args.small, "big_records": args.big,
                            "fill_seconds": fill_seconds, **results, "big_filtered_status": filtered,
                            "p50_ratio": round(ratio, 3), "target": "<= 1.5"})


if __name__ == "__main__":
    main()
