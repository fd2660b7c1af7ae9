"""Record creation over HTTP with concurrent clients: ``servq serve`` against a bare
Flask + SQLAlchemy app inserting the same row, on PostgreSQL, in the same run.

Target (issue 2): servq's throughput >= 0.6 x the bare app's.

    python bench/records_http.py [--clients 8] [--seconds 15] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import free_port, load, python, report, scratch_database, server  # noqa: E402
from bench.setup_tenant import make_tenant  # noqa: E402


def body():
    return {"kind": "observation", "occurred_at": datetime.now(timezone.utc).isoformat(),
            "data": {"title": "Lobby floor wet", "severity": "low", "tags": ["lobby"]}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    from core import create_app

    with scratch_database() as (url, _engine):
        app = create_app({"DATABASE_URL": url, "DATABASE_APP_ROLE": "servq_app",
                          "INSTANCE_PATH": "/tmp/servq-bench"})
        tenant_id, token = make_tenant(app, "bench")
        app.extensions["servq.engine"].dispose()

        env = {"DATABASE_URL": url, "SERVQ_DB_ROLE": "servq_app", "SERVQ_INSTANCE_PATH": "/tmp/servq-bench"}
        port = free_port()
        with server([python(), "-c", "import cli; cli.main()", "serve", "--port", str(port), "--workers", str(args.workers)],
                    port, env, "/api/v1/openapi.json"):
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            load(port, "POST", "/api/v1/records", body, headers, args.clients, 2)  # warm-up
            servq = load(port, "POST", "/api/v1/records", body, headers, args.clients, args.seconds)

        port = free_port()
        bare_env = {**env, "BENCH_TENANT_ID": str(tenant_id)}
        with server([python(), "-m", "gunicorn", "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
                     "bench.bare_app:app"], port, bare_env, "/health"):
            headers = {"Content-Type": "application/json"}
            load(port, "POST", "/records", body, headers, args.clients, 2)
            bare = load(port, "POST", "/records", body, headers, args.clients, args.seconds)

    ratio = servq["throughput"] / bare["throughput"] if bare["throughput"] else None
    report("records_http", {"clients": args.clients, "workers": args.workers, "servq": servq,
                            "bare": bare, "ratio": round(ratio, 3) if ratio else None,
                            "target": ">= 0.6"})


if __name__ == "__main__":
    main()
