"""A KPI query grouped by site and month over 1,000,000 records of one tenant, with 10
other tenants holding as many, on PostgreSQL, against one hand-written SQL query
computing the same numbers, in the same run.

Every tenant gets ``--records`` records over the last 12 months on 20 sites and 200
staff (each at one site): 60 % inspections, each with an evaluation (a percent, pass or
fail, now and then a failed critical item or nothing judged), 40 % observations. The
data are generated in SQL (``INSERT … SELECT … generate_series``) by the database owner;
the measured tenant's calendar is in Asia/Shanghai, the others' in UTC. Then the daily
rollups of every tenant are refreshed (``core.kpis.rollups.refresh``, as the application
role: the time and rows of the measured tenant's are reported). Measured:

* ``api``: ``GET /api/v1/kpis?metrics=records,score,pass_rate&group_by=site,month``
  over the last 365 days (so the first day is cut: read raw, as are the two last days)
  over HTTP (``servq serve``), as the application role with row-level security on;
* ``sql``: one hand-written statement computing the same numbers straight from
  ``records`` ⋈ ``evaluations``, run by psycopg as the same role with the same tenant
  setting.

Both sides run the same number of calls in ``--rounds`` rounds alternating which side
goes first (as ``records_http.py`` does), each block after a warm-up call of its own.

The numbers of both are compared (counts equal, the pass rate to 1e-9, the score to its
6 decimals) and the p50 ratio api/sql is reported. Targets (issue 7): the API's p50
under 300 ms and at most 1.5 times the hand-written query's.

    python bench/kpis.py [--records 1000000] [--tenants 11] [--calls 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.harness import free_port, percentiles, python, report, scratch_database, server  # noqa: E402
from bench.setup_tenant import make_tenant  # noqa: E402
from servq.core.db.session import new_session  # noqa: E402
from servq.core.db import utcnow  # noqa: E402
from servq.core.kpis.rollups import refresh  # noqa: E402

TARGET_MS = 300
TARGET_RATIO = 1.5
SITES = 20
STAFF = 200
DAYS = 365
TIMEZONE = "Asia/Shanghai"

FILL = [
    """CREATE TEMP TABLE bench_site AS
       SELECT k, gen_random_uuid() AS id FROM generate_series(0, :sites - 1) AS k""",
    """CREATE TEMP TABLE bench_staff AS
       SELECT g.k, gen_random_uuid() AS id, s.id AS site_id
       FROM generate_series(0, :staff - 1) AS g(k) JOIN bench_site s ON s.k = g.k % :sites""",
    """INSERT INTO sites (tenant_id, id, code, name, address, active, created_at, updated_at)
       SELECT :t, id, 'S' || k, 'Site ' || k, '', true, now(), now() FROM bench_site""",
    """INSERT INTO staff (tenant_id, id, code, name, title, site_id, active, created_at, updated_at)
       SELECT :t, id, 'E' || k, 'Staff ' || k, '', site_id, true, now(), now() FROM bench_staff""",
    # Record i: staff i·7919 mod 200 (at that staff member's site), spread evenly over
    # the last 365 days; 3 in 5 are inspections (by i / 200, so every member of staff
    # records both kinds).
    """CREATE TEMP TABLE bench_rec AS
       SELECT i, gen_random_uuid() AS id, st.id AS staff_id, st.site_id,
              CAST(:end AS timestamptz) - make_interval(secs => i * :step) AS at,
              (i / 200) % 5 < 3 AS inspection
       FROM generate_series(1, :n) AS i JOIN bench_staff st ON st.k = (i::bigint * 7919) % :staff""",
    """INSERT INTO records (tenant_id, id, kind, site_id, staff_id, occurred_at, status, data,
                           timestamps, escalation_level, created_at, updated_at)
       SELECT :t, id, CASE WHEN inspection THEN 'inspection' ELSE 'observation' END,
              site_id, staff_id, at, 'open',
              CASE WHEN inspection THEN jsonb_build_object('standard', 'bench.desk', 'answers', '{}'::jsonb)
                   ELSE jsonb_build_object('title', 'Finding ' || i, 'severity', 'low', 'tags', '[]'::jsonb) END,
              '{}'::jsonb, 0, at, at
       FROM bench_rec""",
    # One evaluation per inspection, against one of two standards: a percent from 0 to
    # 100 (nothing judged for 1 in 97, a failed critical item and 0 % for 1 in 13),
    # passed from 75 %.
    """INSERT INTO evaluations (tenant_id, id, record_id, standard_code, standard_version,
                               evaluated_at, total, max_total, percent, grade, passed, complete,
                               failed_critical, items)
       SELECT :t, gen_random_uuid(), id, CASE WHEN (i / 200) % 10 = 0 THEN 'bench.room' ELSE 'bench.desk' END, 1,
              at, coalesce(p, 0) / 10, CASE WHEN p IS NULL THEN 0 ELSE 10 END, p, NULL,
              CASE WHEN p IS NULL THEN NULL ELSE p >= 75 AND NOT critical END, true,
              CASE WHEN critical THEN '["b"]'::jsonb ELSE '[]'::jsonb END, '[]'::jsonb
       FROM (SELECT i, id, at, i % 13 = 0 AS critical,
                    CASE WHEN i % 97 = 0 THEN NULL WHEN i % 13 = 0 THEN 0.0
                         ELSE ((i * 37) % 101)::float8 END AS p
             FROM bench_rec WHERE inspection) AS x""",
    "DROP TABLE bench_rec",
    "DROP TABLE bench_staff",
    "DROP TABLE bench_site",
]

#: One statement, straight from the raw tables: the numbers the endpoint reports. Each
#: record has at most one evaluation here, so count(*) of the outer join counts records.
HAND_WRITTEN = """
SELECT r.site_id, to_char(timezone(%(tz)s, r.occurred_at), 'YYYY-MM') AS month,
       count(*) AS records, avg(e.percent) AS score,
       100.0 * count(*) FILTER (WHERE e.passed) / nullif(count(e.passed), 0) AS pass_rate
FROM records r
LEFT JOIN evaluations e ON e.tenant_id = r.tenant_id AND e.record_id = r.id
WHERE r.tenant_id = %(t)s AND r.deleted_at IS NULL
  AND r.occurred_at >= %(since)s AND r.occurred_at < %(until)s
GROUP BY 1, 2
ORDER BY 1, 2
"""


def fill(engine, tenant_ids: list, n: int, end) -> float:
    """Every tenant's sites, staff, records and evaluations (the owner, a superuser here).

    The plain indexes of ``records`` and ``evaluations`` are dropped during the load and
    built again afterwards, as ``pg_restore`` does: twice as fast, the same schema in the
    end."""
    step = DAYS * 86400 / n
    t0 = time.perf_counter()
    with engine.begin() as conn:
        indexes = conn.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('records', 'evaluations') "
            "AND indexname LIKE 'ix\\_%'")).all()
        for name, _ in indexes:
            conn.execute(text(f'DROP INDEX "{name}"'))
    for number, tenant_id in enumerate(tenant_ids, start=1):
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            for statement in FILL:
                conn.execute(text(statement), {"t": tenant_id, "n": n, "sites": SITES, "staff": STAFF,
                                               "step": step, "end": end})
        print(f"  tenant {number}/{len(tenant_ids)} filled ({time.perf_counter() - t0:.0f} s)", flush=True)
    with engine.begin() as conn:
        for _, definition in indexes:
            conn.execute(text(definition))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("sites", "staff", "records", "evaluations"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    return round(time.perf_counter() - t0, 1)


def refresh_all(app, tenant_ids: list, measured) -> dict:
    """Refresh every tenant's rollups as the app role; the measured tenant's figures."""
    out = {}
    for tenant_id in tenant_ids:
        t0 = time.perf_counter()
        with new_session(app, tenant_id) as session:
            done = refresh(session)
            session.commit()
        if tenant_id == measured:
            out = {"seconds": round(time.perf_counter() - t0, 1), "rows": done.rows,
                   "days": done.days, "statements": done.statements}
    return out


def measure(port: int, path: str, headers: dict, conninfo: str, tenant_id, params: dict,
            calls: int, rounds: int) -> tuple[dict, dict, dict, list]:
    """``calls`` API requests and as many hand-written queries, in ``rounds`` rounds that
    alternate which side goes first (so that other load on the machine weighs on both
    alike), each side's block of a round after one warm-up call of its own (the other
    side's block has just pushed its pages out of the shared buffers):
    ``(api stats, api body, sql stats, sql rows)``."""
    samples: dict[str, list[float]] = {"api": [], "sql": []}
    per_round = -(-calls // rounds)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    out: dict[str, object] = {}

    def api() -> None:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        assert resp.status == 200, raw[:500]
        out["api"] = raw

    with psycopg.connect(conninfo, autocommit=True) as db:
        db.execute('SET ROLE "servq_app"')
        db.execute("SELECT set_config('servq.tenant_id', %s, false)", (str(tenant_id),))

        def sql() -> None:
            out["sql"] = db.execute(HAND_WRITTEN, params).fetchall()

        for number in range(rounds):
            for side, call in (("api", api), ("sql", sql))[::1 if number % 2 == 0 else -1]:
                call()  # warm-up
                for _ in range(per_round):
                    t0 = time.perf_counter()
                    call()
                    samples[side].append(time.perf_counter() - t0)
    return ({"requests": len(samples["api"]), **percentiles(samples["api"])}, json.loads(out["api"]),
            {"requests": len(samples["sql"]), **percentiles(samples["sql"])}, out["sql"])


def compare(body: dict, rows) -> float:
    """Check the API's rows against the hand-written query's; the largest relative
    difference of a mean."""
    api = {(row["group"]["site"], row["group"]["month"]): row["values"] for row in body["rows"]}
    sql = {(str(site), month): (records, score, pass_rate) for site, month, records, score, pass_rate in rows}
    assert set(api) == set(sql), sorted(map(str, set(api) ^ set(sql)))[:10]
    worst = 0.0
    for key, (records, score, pass_rate) in sql.items():
        got = api[key]
        assert got["records"] == records, (key, got, records)
        for name, want in (("score", score), ("pass_rate", pass_rate)):
            if want is None:
                assert got[name] is None, (key, name, got[name])
                continue
            diff = abs(got[name] - float(want)) / max(1.0, abs(float(want)))
            # score is rounded to 6 decimals (core.kpis.records.SCORE_DIGITS)
            assert diff <= (5e-7 if name == "score" else 1e-9), (key, name, got[name], want)
            worst = max(worst, diff)
    return worst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000, help="records per tenant")
    ap.add_argument("--tenants", type=int, default=11, help="tenants, the measured one included")
    ap.add_argument("--calls", type=int, default=30, help="measured calls of each (at least 20)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds alternating which side goes first")
    args = ap.parse_args()
    if args.calls < 20:
        ap.error("--calls must be at least 20")

    from servq.core import create_app

    end = utcnow()
    until = end + timedelta(seconds=1)
    since = until - timedelta(days=DAYS)
    with scratch_database() as (url, engine):
        app = create_app({"DATABASE_URL": url, "DATABASE_APP_ROLE": "servq_app",
                          "INSTANCE_PATH": "/tmp/servq-bench"})
        tenant_id, token = make_tenant(app, "kpis")
        others = [make_tenant(app, f"other{n}")[0] for n in range(1, args.tenants)]
        app.extensions["servq.engine"].dispose()
        with engine.begin() as conn:
            conn.execute(text("UPDATE tenants SET timezone = :tz WHERE id = :t"),
                         {"tz": TIMEZONE, "t": tenant_id})
        print(f"filling {args.tenants} tenants with {args.records} records each", flush=True)
        fill_seconds = fill(engine, [tenant_id, *others], args.records, end)
        rollup = refresh_all(app, [tenant_id, *others], tenant_id)
        app.extensions["servq.engine"].dispose()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE kpi_days"))
        with engine.connect() as conn:
            total = conn.execute(text("SELECT count(*) FROM records")).scalar()
            evaluations = conn.execute(text("SELECT count(*) FROM evaluations WHERE tenant_id = :t"),
                                       {"t": tenant_id}).scalar()

        env = {"DATABASE_URL": url, "SERVQ_DB_ROLE": "servq_app", "SERVQ_INSTANCE_PATH": "/tmp/servq-bench"}
        port = free_port()
        path = "/api/v1/kpis?" + urlencode({"metrics": "records,score,pass_rate", "group_by": "site,month",
                                            "since": since.isoformat(), "until": until.isoformat()})
        conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        params = {"tz": TIMEZONE, "t": tenant_id, "since": since, "until": until}
        with server([python(), "-c", "import cli; cli.main()", "serve", "--port", str(port), "--workers", "2"],
                    port, env, "/api/v1/openapi.json"):
            api, body, sql, rows = measure(port, path, {"Authorization": f"Bearer {token}"}, conninfo,
                                           tenant_id, params, args.calls, args.rounds)
        worst = compare(body, rows)

    ratio = api["p50_ms"] / sql["p50_ms"]
    met = api["p50_ms"] < TARGET_MS and ratio <= TARGET_RATIO
    print(f"api  p50 {api['p50_ms']} ms (p90 {api['p90_ms']}) over {api['requests']} calls")
    print(f"sql  p50 {sql['p50_ms']} ms (p90 {sql['p90_ms']}) over {sql['requests']} calls")
    print(f"ratio api/sql {ratio:.2f}; {len(rows)} site-months agree (largest difference {worst:.1e}); "
          f"rollup refresh of the measured tenant {rollup['seconds']} s, {rollup['rows']} rows")
    report("kpis", {
        "records_per_tenant": args.records, "tenants": args.tenants, "records_total": total,
        "evaluations_measured_tenant": evaluations, "fill_seconds": fill_seconds,
        "rollup_refresh": rollup, "groups": len(rows), "api": api, "hand_written_sql": sql,
        "p50_ratio_api_over_sql": round(ratio, 3), "largest_difference": worst,
        "target": f"api p50 < {TARGET_MS} ms and <= {TARGET_RATIO} x sql", "met": met,
    })
    if not met:
        sys.exit(1)


if __name__ == "__main__":
    main()
