"""One tenant on a Citus cluster against the same tenant on plain PostgreSQL, in the same
run: record creation over HTTP (``POST /api/v1/records``, one record per request, the
API's own path: validation, audit, scoring, clocks) and a KPI query
(``GET /api/v1/kpis?metrics=records,score,pass_rate&group_by=site,month`` over the last
120 days, read from the daily rollups), plus the ``EXPLAIN`` on Citus of the statements
the KPI query and a record read (``GET /api/v1/records/<id>``) send, which must be
routed to one shard (``Task Count: 1``).

Both sides run ``servq serve`` (gunicorn, ``--workers``) as the application role with
row-level security, side by side, and take turns: ``--rounds`` rounds of ``--seconds``
per measure, alternating which side goes first, so that the machine's other load weighs
on both alike. Reported: the median throughput of each side and the ratio Citus / plain.
On one machine the ratio is the *cost* of Citus (a coordinator that plans and forwards,
two more round trips per transaction for the tenant context, workers that are three more
PostgreSQL servers sharing the same CPUs), not its gain: the gain comes from workers on
machines of their own (docs/scaling.md).

* plain PostgreSQL: a scratch database on ``BENCH_DATABASE_URL`` (default
  ``127.0.0.1:5432/test``'s server), dropped afterwards;
* Citus: the cluster's database, ``BENCH_CITUS_URL`` (default
  ``postgresql+psycopg://postgres@127.0.0.1:15432/servq``, the coordinator of
  ``../shared/citus/cluster.sh start``), migrated with ``servq db upgrade``'s code
  (distributed by tenant) and given a tenant of its own (a new slug each run). Citus needs
  the extension and the workers in every database, so no scratch database here: point it
  at a throwaway cluster (the tests' cluster is one: they drop every table when they start).

Without a Citus cluster answering there, the benchmark says so and skips (exit 0).

Each tenant first gets ``--seed`` records over the last 120 days (``POST
/api/v1/records/batch``) and its rollups refreshed (``core.kpis.rollups.refresh_all``).

    python bench/citus_compare.py [--seed 5000] [--clients 4] [--workers 2] [--seconds 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.harness import free_port, load, python, report, scratch_database, server  # noqa: E402
from bench.setup_tenant import make_tenant_with_owner  # noqa: E402

CITUS_URL = os.environ.get("BENCH_CITUS_URL", "postgresql+psycopg://postgres@127.0.0.1:15432/servq")
APP_ROLE = "servq_app"
DAYS = 120
SITES = 10
KPI_QUERY = "metrics=records,score,pass_rate&group_by=site,month"


def citus_answers(url: str) -> str | None:
    """Why there is no usable Citus cluster at ``url`` (None: there is one)."""
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            version = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'citus'")).scalar()
            if version is None:
                return f"{make_url(url).render_as_string()} answers but has no citus extension"
            workers = conn.execute(text("SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' "
                                        "AND isactive AND groupid <> 0")).scalar()
        engine.dispose()
    except Exception as exc:  # unreachable, refused, no such database
        return f"no Citus cluster answers at {make_url(url).render_as_string()} ({type(exc).__name__})"
    if not workers:
        return f"the Citus coordinator at {make_url(url).render_as_string()} has no active worker"
    return None


def body():
    return {"kind": "observation", "occurred_at": datetime.now(timezone.utc).isoformat(),
            "data": {"title": "Lobby floor wet", "severity": "low", "tags": ["lobby"]}}


def request(port: int, method: str, path: str, token: str, payload=None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(payload) if payload is not None else None, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, json.loads(data) if data else {}


def prepare(url: str, slug: str, seed: int, now: datetime) -> dict:
    """Migrate, make the tenant with its sites and ``seed`` past records, refresh its
    rollups; returns what the measures need."""
    from servq.core import create_app
    from servq.core.db.migrate import upgrade
    from servq.core.kpis.rollups import refresh_all

    owner = create_engine(url)
    upgrade(owner)
    owner.dispose()
    app = create_app({"DATABASE_URL": url, "DATABASE_APP_ROLE": APP_ROLE, "INSTANCE_PATH": "/tmp/servq-bench"})
    tenant_id, _user, token = make_tenant_with_owner(app, slug)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    sites = [client.post("/api/v1/sites", json={"code": f"S{n}", "name": f"Site {n}"}, headers=auth).json["id"]
             for n in range(SITES)]
    rng = random.Random(7)
    record_id = None
    for start in range(0, seed, 1000):
        records = [{"kind": "observation", "site_id": rng.choice(sites),
                    "occurred_at": (now - timedelta(seconds=rng.randrange(1, DAYS * 86400))).isoformat(),
                    "data": {"title": f"Finding {start + n}", "severity": rng.choice(["low", "medium", "high"])}}
                   for n in range(min(1000, seed - start))]
        r = client.post("/api/v1/records/batch", json={"records": records}, headers=auth)
        if r.status_code != 201:
            raise RuntimeError(f"seeding failed: {r.status_code} {r.json}")
        record_id = record_id or r.json["records"][0]["id"]
    done = refresh_all(app, tenants=[(tenant_id, slug)])
    if done.failed:
        raise RuntimeError(f"KPI refresh failed: {done.failed}")
    return {"app": app, "tenant_id": tenant_id, "token": token, "record_id": record_id,
            "kpi_path": f"/api/v1/kpis?{KPI_QUERY}&since={(now - timedelta(days=DAYS)).isoformat()}"
                        .replace("+", "%2B")}


def explain(side: dict, path: str, markers: tuple[str, ...]) -> list[str]:
    """The ``EXPLAIN`` of each statement reading one of ``markers`` (tables) that ``GET path`` sends (run
    in-process, its statements caught on the engine), each explained in a session of the
    tenant (row-level security on, as in the request)."""
    from servq.core.db.session import new_session

    app = side["app"]
    engine = app.extensions["servq.engine"]
    seen: list[tuple[str, object]] = []

    def catch(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and any(m in statement for m in markers):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", catch)
    try:
        r = app.test_client().get(path, headers={"Authorization": f"Bearer {side['token']}"})
        if r.status_code != 200:
            raise RuntimeError(f"GET {path}: {r.status_code} {r.json}")
    finally:
        event.remove(engine, "before_cursor_execute", catch)
    plans = []
    with new_session(app, side["tenant_id"]) as session:
        connection = session.connection()
        for statement, parameters in seen:
            rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
            plans.append("\n".join(rows))
        session.rollback()
    return plans


def task_counts(plans: list[str]) -> list[int]:
    return [int(line.split(":")[1]) for plan in plans for line in plan.splitlines()
            if line.strip().startswith("Task Count:")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=5000, help="past records of the tenant, for the KPI query")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers of each server")
    ap.add_argument("--seconds", type=float, default=8, help="length of one round of one measure")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)

    why = citus_answers(CITUS_URL)
    if why:
        print(f"SKIPPED: {why}. Start one with ../shared/citus/build.sh and ../shared/citus/cluster.sh start "
              "(see docs/citus.md), or set BENCH_CITUS_URL.")
        return 0

    slug = f"bench-{uuid.uuid4().hex[:8]}"
    with scratch_database("servq_citus_cmp") as (plain_url, _engine):
        now = datetime.now(timezone.utc)  # the same records on both sides (but for their ids)
        sides = {"citus": prepare(CITUS_URL, slug, args.seed, now),
                 "plain": prepare(plain_url, slug, args.seed, now)}
        # The EXPLAINs on Citus: the KPI query's statements, a record read's.
        kpi_plans = explain(sides["citus"], sides["citus"]["kpi_path"], ("FROM kpi_days", "FROM records"))
        read_plans = explain(sides["citus"], f"/api/v1/records/{sides['citus']['record_id']}", ("FROM records",))
        for side in sides.values():
            side["app"].extensions["servq.engine"].dispose()
        ports = {name: free_port() for name in sides}
        env = {name: {"DATABASE_URL": url, "SERVQ_DB_ROLE": APP_ROLE, "SERVQ_INSTANCE_PATH": "/tmp/servq-bench"}
               for name, url in (("citus", CITUS_URL), ("plain", plain_url))}
        argv = {name: [python(), "-c", "import cli; cli.main()", "serve", "--port", str(ports[name]),
                       "--workers", str(args.workers)] for name in sides}
        runs: dict[str, dict[str, list[dict]]] = {m: {"citus": [], "plain": []} for m in ("create", "kpi")}
        with server(argv["citus"], ports["citus"], env["citus"], "/api/v1/openapi.json"), \
                server(argv["plain"], ports["plain"], env["plain"], "/api/v1/openapi.json"):
            for name, side in sides.items():  # same answer on both, and a warm-up
                status, answer = request(ports[name], "GET", side["kpi_path"], side["token"])
                if status != 200:
                    raise RuntimeError(f"{name}: KPI query {status} {answer}")
                # Sites have other ids on each side: compared by month and values.
                side["kpi_answer"] = sorted(json.dumps([row["group"].get("month"), row["values"]], sort_keys=True)
                                            for row in answer["rows"])
            if sides["citus"]["kpi_answer"] != sides["plain"]["kpi_answer"]:
                raise RuntimeError("the KPI answers of Citus and plain PostgreSQL differ")
            for name, side in sides.items():
                headers = {"Authorization": f"Bearer {side['token']}", "Content-Type": "application/json"}
                load(ports[name], "POST", "/api/v1/records", body, headers, args.clients, 2)
                load(ports[name], "GET", side["kpi_path"], lambda: None, headers, args.clients, 2)
            for i in range(args.rounds):
                order = ("citus", "plain") if i % 2 == 0 else ("plain", "citus")
                for measure, method, path in (("create", "POST", "/api/v1/records"), ("kpi", "GET", None)):
                    for name in order:
                        side = sides[name]
                        headers = {"Authorization": f"Bearer {side['token']}", "Content-Type": "application/json"}
                        runs[measure][name].append(load(
                            ports[name], method, path or side["kpi_path"], body if method == "POST" else lambda: None,
                            headers, args.clients, args.seconds))

    summary: dict[str, dict] = {}
    for measure, by_side in runs.items():
        summary[measure] = {name: {"throughput": statistics.median(r["throughput"] for r in rs),
                                   "p50_ms": statistics.median(r["p50_ms"] for r in rs),
                                   "requests": sum(r["requests"] for r in rs),
                                   "errors": sum(r["errors"] for r in rs),
                                   "rounds": [r["throughput"] for r in rs]}
                            for name, rs in by_side.items()}
        plain = summary[measure]["plain"]["throughput"]
        summary[measure]["ratio"] = round(summary[measure]["citus"]["throughput"] / plain, 3) if plain else None
    kpi_tasks, read_tasks = task_counts(kpi_plans), task_counts(read_plans)
    routed = bool(kpi_tasks) and bool(read_tasks) and set(kpi_tasks + read_tasks) == {1}

    print(f"\nEXPLAIN on Citus of the KPI query's statements ({len(kpi_plans)}):")
    for plan in kpi_plans:
        print(plan, end="\n\n")
    print(f"EXPLAIN on Citus of a record read's statements ({len(read_plans)}):")
    for plan in read_plans:
        print(plan, end="\n\n")
    load_avg = os.getloadavg()[0]
    print(f"{'':34}{'Citus':>10}{'plain PG':>10}{'ratio':>8}   (median of {args.rounds} rounds of "
          f"{args.seconds:g} s, {args.clients} clients, {args.workers} gunicorn workers each)")
    for measure, label in (("create", "POST /records (records/s)"), ("kpi", "GET /kpis one tenant (req/s)")):
        s = summary[measure]
        print(f"{label:34}{s['citus']['throughput']:>10.1f}{s['plain']['throughput']:>10.1f}{s['ratio']:>8.2f}"
              f"   p50 {s['citus']['p50_ms']} / {s['plain']['p50_ms']} ms, errors "
              f"{s['citus']['errors']} / {s['plain']['errors']}")
    print(f"single-shard routing: KPI task counts {kpi_tasks}, record read task counts {read_tasks} -> "
          f"{'routed to one shard' if routed else 'NOT routed to one shard'}; load average {load_avg:.1f} "
          f"on {os.cpu_count()} CPUs")
    report("citus_compare", {"seed": args.seed, "clients": args.clients, "workers": args.workers,
                             "rounds": args.rounds, "seconds_per_round": args.seconds, **summary,
                             "kpi_task_counts": kpi_tasks, "record_read_task_counts": read_tasks,
                             "single_shard": routed, "load_average": round(load_avg, 1),
                             "cpus": os.cpu_count()})
    return 0 if routed else 1


if __name__ == "__main__":
    sys.exit(main())
