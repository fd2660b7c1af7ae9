"""``servq records import`` of a JSON Lines file on PostgreSQL, with scoring, against a
plain ``executemany`` of the same rows into the same table, in the same run.

Target (issue 3): >= 10,000 records per second with scoring (1,000,000 records).

    python bench/records_import.py [--count 1000000] [--chunk 1000]

The tenant has a standard of its own for ``observation`` records (a critical forbidden
phrase with a corrective action, a required greeting, a deduction per tag), so every
imported record is validated by the kind's schema, scored and stored with its audit
event and evaluation; one in a hundred fails the critical item and opens a corrective
action.
The import runs as ``servq records import`` in a subprocess (the console script's code
path, app start-up included), as the application role with row-level security; its CPU
time is reported too, since on a shared machine the wall clock also measures the
neighbours. The baseline inserts the same record rows (parsed and resolved beforehand,
a chunk at a time) with psycopg's ``executemany`` as the same role, in one transaction:
no validation, no audit, no scoring, one row per record where the import writes three
(record, audit event, evaluation). Each runs in a fresh database of its own (the first
dropped before the second starts), right after a checkpoint, so that neither pays for
the other's rows, dirty pages or autovacuum.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, checkpoint, python, report, scratch_database  # noqa: E402
from bench.setup_tenant import make_tenant  # noqa: E402

APP_ROLE = "servq_app"
TARGET = 10_000
SITES, STAFF = 20, 50
STANDARD = {
    "title": {"en": "Observation write-ups", "zh": "观察记录规范"},
    "applies_to": ["observation"], "method": "weighted", "pass_mark": 60,
    "grades": [{"grade": "A", "min": 90}, {"grade": "B", "min": 60}, {"grade": "C", "min": 0}],
    "items": [
        {"code": "polite", "title": {"en": "No rude words", "zh": "无禁语"}, "dimension": "empathy",
         "weight": 3, "critical": True, "fix_within": "24h",
         "rule": {"type": "phrases", "field": "description", "forbidden": ["不知道", "问别人去", "我就这态度"]}},
        {"code": "greeting", "title": {"en": "Greets the guest", "zh": "问候客人"},
         "dimension": "assurance", "weight": 2,
         "rule": {"type": "phrases", "field": "description", "required": ["您好"]}},
        {"code": "few_tags", "title": {"en": "Few findings", "zh": "问题少"}, "dimension": "tangibles",
         "weight": 5, "rule": {"type": "deduction", "field": "tags", "points": 1, "cap": 3}},
    ],
}
DESCRIPTIONS = [
    "您好，前台地面有水，已放置警示牌并通知保洁。",
    "您好，客房灯泡损坏，已报修，预计两小时内更换。",
    "大堂空调温度偏高，客人反映闷热，已调低两度。",
    "您好！电梯按钮失灵，已联系维保单位上门检修。",
]
RUDE = "客人询问早餐时间，员工回答：不知道，问别人去！"


def write_file(path: Path, count: int, seed: int = 3) -> None:
    """``count`` observation records as JSON Lines, sites and staff by code."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=8)))
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            record = {"kind": "observation",
                      "occurred_at": (start + timedelta(seconds=37 * n)).isoformat(),
                      "site": f"S{n % SITES:02d}", "staff": f"E{n % STAFF:03d}",
                      "status": "closed" if n % 5 == 0 else "open",
                      "data": {"title": f"Finding {n}",
                               "description": RUDE if n % 100 == 7 else rng.choice(DESCRIPTIONS),
                               "severity": rng.choice(["low", "low", "medium", "high"]),
                               "tags": rng.sample(["lobby", "room", "lift", "noise", "clean"], rng.randrange(0, 4))}}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def setup(url: str) -> tuple[uuid.UUID, uuid.UUID, dict, dict]:
    """Two tenants (import, baseline) with sites and staff; the import tenant's standard."""
    from servq.core import create_app
    from servq.core.db.session import new_session
    from servq.core.models import Site, Staff
    from servq.core.standards import change_standard

    app = create_app({"DATABASE_URL": url, "DATABASE_APP_ROLE": APP_ROLE,
                      "INSTANCE_PATH": "/tmp/servq-bench"})
    codes = {}
    tenants = []
    for slug in ("bench", "baseline"):
        tenant_id, _ = make_tenant(app, slug)
        tenants.append(tenant_id)
        with app.app_context(), new_session(app, tenant_id) as s:
            sites = [Site(code=f"S{n:02d}", name=f"Site {n}") for n in range(SITES)]
            staff = [Staff(code=f"E{n:03d}", name=f"Staff {n}") for n in range(STAFF)]
            s.add_all(sites + staff)
            if slug == "bench":
                change_standard(s, "bench.observation", document=STANDARD)
            s.commit()
            codes[tenant_id] = ({x.code: x.id for x in sites}, {x.code: x.id for x in staff})
    app.extensions["servq.engine"].dispose()
    return tenants[0], tenants[1], codes[tenants[1]][0], codes[tenants[1]][1]


def baseline_chunks(path: Path, tenant_id, sites: dict, staff: dict, chunk: int, status: str = "open"):
    """The record rows of the file, parsed and resolved, ``chunk`` at a time (a record
    without a status gets ``status``, its kind's initial one)."""
    from psycopg.types.json import Jsonb

    now = datetime.now(timezone.utc)
    rows = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            r = json.loads(line)
            rows.append((tenant_id, uuid.uuid4(), r["kind"], sites.get(r.get("site")), staff.get(r.get("staff")),
                         datetime.fromisoformat(r["occurred_at"]), r.get("status", status), Jsonb(r["data"]),
                         Jsonb({}), 0, now, now))
            if len(rows) == chunk:
                yield rows
                rows = []
    if rows:
        yield rows


def executemany(url: str, tenant_id, chunks) -> float:
    """Insert the rows of ``chunks`` with psycopg's executemany as the app role in one
    transaction; the seconds spent in executemany and the commit (parsing the file and
    building the rows are not counted)."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    sql = ("INSERT INTO records (tenant_id, id, kind, site_id, staff_id, occurred_at, status, data, "
           "timestamps, escalation_level, created_at, updated_at) "
           "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
    seconds = 0.0
    with psycopg.connect(dsn) as conn:
        conn.execute(f'SET ROLE "{APP_ROLE}"')
        conn.commit()
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('servq.tenant_id', %s, true)", (str(tenant_id),))
            for rows in chunks:
                t0 = time.perf_counter()
                cur.executemany(sql, rows)
                seconds += time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.commit()
        return seconds + time.perf_counter() - t0


def plain_baseline(url: str, engine, path: Path, slug: str, chunk: int, status: str) -> float:
    """:func:`executemany` of the file's record rows into the tenant ``slug`` (its sites
    and staff resolved by code, read as the owner): the seconds it took."""
    from sqlalchemy import text

    with engine.connect() as conn:
        tenant_id = conn.execute(text("SELECT id FROM tenants WHERE slug = :s"), {"s": slug}).scalar()
        sites = dict(conn.execute(text("SELECT code, id FROM sites WHERE tenant_id = :t"), {"t": tenant_id}).all())
        staff = dict(conn.execute(text("SELECT code, id FROM staff WHERE tenant_id = :t"), {"t": tenant_id}).all())
    return executemany(url, tenant_id, baseline_chunks(path, tenant_id, sites, staff, chunk, status))


def import_with_cli(url: str, path: Path, chunk: int) -> tuple[float, float, float]:
    """``servq records import --tenant bench FILE`` in a subprocess: (wall seconds, CPU
    seconds of the importing process, its peak memory in MB)."""
    env = {**os.environ, "DATABASE_URL": url, "SERVQ_DB_ROLE": APP_ROLE,
           "SERVQ_INSTANCE_PATH": "/tmp/servq-bench"}
    env.pop("REDIS_URL", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([python(), "-c", "import cli; cli.main()", "records", "import",
                           "--tenant", "bench", "--chunk", str(chunk), str(path)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"servq records import failed:\n{done.stderr[-3000:]}")
    print(done.stdout.strip())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, after.ru_maxrss / 1024


def counts(engine, tenant_id) -> dict:
    """Rows of the tenant per table (read as the owner)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        return {table: conn.execute(text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"),
                                    {"t": tenant_id}).scalar()
                for table in ("records", "audit_events", "evaluations", "actions")}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1_000_000, help="records to import")
    ap.add_argument("--chunk", type=int, default=1000, help="records per bulk statement")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "records.jsonl"
        write_file(path, args.count)
        # Each in a database of its own, dropped before the other runs, each after a
        # checkpoint: neither meets the other's rows in its indexes, the autovacuum they
        # set off, or the dirty pages they leave.
        with scratch_database() as (url, engine):
            _, baseline_id, sites, staff = setup(url)
            checkpoint()
            plain_seconds = executemany(url, baseline_id,
                                        baseline_chunks(path, baseline_id, sites, staff, args.chunk))
            plain = counts(engine, baseline_id)
        with scratch_database() as (url, engine):
            bench_id, _, _, _ = setup(url)
            checkpoint()
            servq_seconds, servq_cpu, servq_mb = import_with_cli(url, path, args.chunk)
            imported = counts(engine, bench_id)

    if imported["records"] != args.count or imported["evaluations"] != args.count \
            or imported["audit_events"] < args.count or plain["records"] != args.count:
        raise RuntimeError(f"unexpected rows: import {imported}, baseline {plain}")
    servq_rate, plain_rate = args.count / servq_seconds, args.count / plain_seconds
    load = os.getloadavg()[0]
    print(f"{'':26}{'seconds':>10}{'records/s':>12}")
    print(f"{'servq records import':26}{servq_seconds:>10.1f}{servq_rate:>12,.0f}   "
          f"validated, audited, scored (target {TARGET:,}/s)")
    print(f"{'plain executemany':26}{plain_seconds:>10.1f}{plain_rate:>12,.0f}   same rows, records only")
    print(f"{'ratio':26}{'':>10}{servq_rate / plain_rate:>12.2f}   import / executemany")
    print(f"import process CPU: {servq_cpu:.1f} s ({args.count / servq_cpu:,.0f} records per CPU "
          f"second), peak memory {servq_mb:,.0f} MB; load average {load:.1f} on {os.cpu_count()} CPUs")
    result = {"count": args.count, "chunk": args.chunk, "rows": imported,
              "servq": {"seconds": round(servq_seconds, 2), "records_per_s": round(servq_rate),
                        "cpu_seconds": round(servq_cpu, 2),
                        "records_per_cpu_s": round(args.count / servq_cpu),
                        "peak_mb": round(servq_mb)},
              "executemany": {"seconds": round(plain_seconds, 2), "records_per_s": round(plain_rate)},
              "ratio": round(servq_rate / plain_rate, 3), "target": f">= {TARGET} records/s",
              "load_average": round(load, 1), "cpus": os.cpu_count()}
    report("records_import", result)
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["servq"]["records_per_s"] >= TARGET else 1)
