"""Record creation over HTTP with concurrent clients: ``servq serve`` against a bare
Flask + SQLAlchemy app inserting the same row, on PostgreSQL, in the same run.

Target (issue 2): servq's throughput >= 0.6 x the bare app's.

Both servers run side by side under gunicorn with the same settings (sync workers, the
same worker count, an access log) and take turns: ``--rounds`` rounds of ``--seconds``
each, alternating which goes first, so that load from other processes on the machine
and the growth of the records table weigh on both alike. The report gives the median
throughput of each and the median of the per-round ratios (``ratio``, the target's
figure), and the CPU each spends per request, split into server processes, database
backends and load generator; ``cpu_ratio`` (bare's total over servq's) is what the
throughput ratio would be on a machine running nothing else, a cross-check that holds
steady when other work on the machine makes throughput jump.

    python bench/records_http.py [--clients 8] [--seconds 4] [--rounds 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.engine import make_url  # noqa: E402

from bench.harness import CpuMeter, free_port, load, python, report, scratch_database, server  # noqa: E402
from bench.setup_tenant import make_tenant_with_owner  # noqa: E402


def body():
    return {"kind": "observation", "occurred_at": datetime.now(timezone.utc).isoformat(),
            "data": {"title": "Lobby floor wet", "severity": "low", "tags": ["lobby"]}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=4, help="length of one round")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    from servq.core import create_app

    with scratch_database() as (url, owner_engine):
        app = create_app({"DATABASE_URL": url, "DATABASE_APP_ROLE": "servq_app",
                          "INSTANCE_PATH": "/tmp/servq-bench"})
        tenant_id, user_id, token = make_tenant_with_owner(app, "bench")
        app.extensions["servq.engine"].dispose()

        env = {"DATABASE_URL": url, "SERVQ_DB_ROLE": "servq_app", "SERVQ_INSTANCE_PATH": "/tmp/servq-bench"}
        servq_port, bare_port = free_port(), free_port()
        servq_argv = [python(), "-c", "import cli; cli.main()", "serve", "--port", str(servq_port),
                      "--workers", str(args.workers)]
        # `servq serve` runs gunicorn's sync workers with an access log on stdout; so does
        # the baseline.
        bare_argv = [python(), "-m", "gunicorn", "-w", str(args.workers), "-b", f"127.0.0.1:{bare_port}",
                     "--access-logfile", "-", "bench.bare_app:app"]
        bare_env = {**env, "BENCH_TENANT_ID": str(tenant_id), "BENCH_USER_ID": str(user_id)}
        targets = {
            "servq": (servq_port, "/api/v1/records",
                      {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}),
            "bare": (bare_port, "/records", {"Content-Type": "application/json"}),
        }
        runs: dict[str, list[dict]] = {"servq": [], "bare": []}
        database = make_url(url).database
        with server(servq_argv, servq_port, env, "/api/v1/openapi.json") as servq_proc, \
                server(bare_argv, bare_port, bare_env, "/health") as bare_proc:
            meters = {"servq": CpuMeter(servq_proc.pid, owner_engine, database),
                      "bare": CpuMeter(bare_proc.pid, owner_engine, database)}
            for name, (port, path, headers) in targets.items():  # warm-up
                load(port, "POST", path, body, headers, args.clients, 2)
            for i in range(args.rounds):
                order = ("servq", "bare") if i % 2 == 0 else ("bare", "servq")
                for name in order:
                    port, path, headers = targets[name]
                    runs[name].append(meters[name].run(
                        lambda: load(port, "POST", path, body, headers, args.clients, args.seconds)))

    ratios = [s["throughput"] / b["throughput"] for s, b in zip(runs["servq"], runs["bare"])
              if b["throughput"]]
    summary = {name: {"throughput": statistics.median(r["throughput"] for r in rs),
                      "p50_ms": statistics.median(r["p50_ms"] for r in rs),
                      "requests": sum(r["requests"] for r in rs),
                      "errors": sum(r["errors"] for r in rs),
                      "rounds": [r["throughput"] for r in rs],
                      "cpu_ms_per_request": {
                          side: round(statistics.median(r["cpu_ms_per_request"][side] for r in rs), 3)
                          for side in ("server", "db", "client", "total")}}
               for name, rs in runs.items()}
    cpu = {name: summary[name]["cpu_ms_per_request"]["total"] for name in summary}
    report("records_http", {"clients": args.clients, "workers": args.workers,
                            "rounds": args.rounds, "seconds_per_round": args.seconds, **summary,
                            "round_ratios": [round(r, 3) for r in ratios],
                            "ratio": round(statistics.median(ratios), 3) if ratios else None,
                            # What throughput would be on a machine running nothing else:
                            # bare's CPU per request (server + database + load generator)
                            # over servq's. A check on `ratio`, not a replacement.
                            "cpu_ratio": round(cpu["bare"] / cpu["servq"], 3) if cpu["servq"] else None,
                            "target": ">= 0.6"})


if __name__ == "__main__":
    main()
