"""``servq records import`` of courier deliveries with call transcripts on PostgreSQL.

Target (issue 20): >= 10,000 records per second for 100,000 deliveries with transcripts.

    python bench/courier_import.py [--count 100000] [--chunk 1000]

The tenant is onboarded from a manifest with the ``courier`` plugin (20 stations, 50
couriers, hotline set), so every delivery is validated by ``courier.delivery``'s schema
(derived fields included), scored against ``courier.delivery`` (the four critical acts,
the ``courier.window`` rule, five phrase items on the courier's turns, the taboo library,
the time-limit deadline with its clock) and stored with its audit event, evaluation and
clock; the plugin's ``record_evaluated`` (the repeat rule) hears every record. A workflow
record is imported in its initial status (``received``; later steps are transitions), with
its appointment, hand-over and conduct; one in five has a transcript of six turns, one in
a hundred a rush fee (a critical failure, an action and, the third time in a month for a
courier, a flag). The import runs as the console script in a subprocess, as the
application role with row-level security.

It also reports the CPU time PostgreSQL's backends spent for the import (read from
``/proc`` when the server is on this machine) beside the importing process's, and the
rate the two together allow on this machine's CPUs: the ceiling of one import here,
however it overlaps its work with the server's.

The baseline, measured in the same run in a fresh database of its own: psycopg's
``executemany`` of the same deliveries' record rows (parsed and resolved beforehand) as
the same role, one transaction: no validation, audit, scoring, clock, action; one row
per delivery where the import writes four (record, audit event, evaluation, clock).
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, BackendCpu, checkpoint, python, report, scratch_database
from bench.records_import import plain_baseline

APP_ROLE = "servq_app"
TARGET = 10_000
SITES, STAFF = 20, 50
SCRIPT = [
    {"speaker": "courier", "text": "您好。我是迅达快递公司的,您的快件已到,请问今天有时间接收吗?"},
    {"speaker": "customer", "text": "有的,下午在家。"},
    {"speaker": "courier", "text": "请问什么时候上门方便?"},
    {"speaker": "customer", "text": "三点以后吧。"},
    {"speaker": "courier", "text": "好的。到时请仔细查收您的快件,对快件有疑问请拨打400-820-8888。"},
    {"speaker": "courier", "text": "再见!"},
]


def manifest() -> dict:
    return {"slug": "bench", "name": "Bench Express", "industry": "courier", "timezone": "Asia/Shanghai",
            "locale": "zh", "plugins": {"courier": {"company_name": "迅达", "hotline": "400-820-8888"}},
            "admins": [{"email": "owner@bench.test", "role": "owner", "name": "Owner"}],
            "sites": [{"code": f"S{n:02d}", "name": f"Station {n}"} for n in range(SITES)],
            "staff": [{"code": f"E{n:03d}", "name": f"Courier {n}", "site": f"S{n % SITES:02d}"}
                      for n in range(STAFF)]}


def write_file(path: Path, count: int, seed: int = 20) -> None:
    rng = random.Random(seed)
    # The last few hours before now (a day's intake of a large network): the time-limit
    # clocks are running, as for an import of the current day, not all breached at once.
    start = datetime.now(UTC) - timedelta(seconds=0.1 * count + 60)
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            received = start + timedelta(seconds=0.1 * n)
            begin = received + timedelta(hours=2)
            data = {"waybill_no": f"XD{n:010d}", "service": rng.choice(["same_city", "intra_province", "domestic"]),
                    "shipped_at": (received - timedelta(hours=rng.randint(2, 12))).isoformat(),
                    "recipient": {"name": "刘女士", "phone": "13800001111", "address": "漕溪北路 88 号"},
                    "appointment": {"from": begin.isoformat(), "to": (begin + timedelta(hours=2)).isoformat()},
                    "handover": {"mode": "in_person", "checked_by_recipient": True, "signed_by": "刘女士"},
                    "conduct": {"rush_fee_charged": n % 100 == 7}}
            if n % 5 == 0:
                data["call_transcript"] = SCRIPT
            record = {"kind": "courier.delivery", "occurred_at": received.isoformat(),
                      "site": f"S{n % SITES:02d}", "staff": f"E{n % STAFF:03d}", "data": data}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def setup(url: str) -> None:
    from servq.core import create_app
    from servq.tenants.onboarding import onboard

    app = create_app({"DATABASE_URL": url, "DATABASE_APP_ROLE": APP_ROLE, "INSTANCE_PATH": "/tmp/servq-bench"})
    onboard(app, manifest())
    app.extensions["servq.engine"].dispose()


def import_with_cli(url: str, path: Path, chunk: int) -> tuple[float, float, float, str]:
    env = {**os.environ, "DATABASE_URL": url, "SERVQ_DB_ROLE": APP_ROLE, "SERVQ_INSTANCE_PATH": "/tmp/servq-bench"}
    env.pop("REDIS_URL", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([python(), "-c", "import cli; cli.main()", "records", "import", "--tenant", "bench",
                           "--chunk", str(chunk), str(path)], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"servq records import failed:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, after.ru_maxrss / 1024, done.stdout.strip()


def counts(engine) -> dict:
    from sqlalchemy import text

    with engine.connect() as conn:
        out = {table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
               for table in ("records", "evaluations", "actions", "clocks")}
        out["flags"] = conn.execute(text(
            "SELECT count(*) FROM outbox_events WHERE type = 'courier.repeat_offence'")).scalar()
        return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=1000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "deliveries.jsonl"
        write_file(path, args.count)
        with scratch_database() as (url, engine):
            setup(url)
            checkpoint()
            plain_seconds = plain_baseline(url, engine, path, "bench", args.chunk, "received")
        with scratch_database() as (url, engine):
            setup(url)
            checkpoint()
            with BackendCpu(url) as server:
                seconds, cpu, mb, output = import_with_cli(url, path, args.chunk)
            rows = counts(engine)
    print(output)
    rate, plain_rate = args.count / seconds, args.count / plain_seconds
    load = os.getloadavg()[0]
    print(f"servq records import: {args.count:,} deliveries in {seconds:.1f} s = {rate:,.0f} records/s "
          f"(target {TARGET:,}/s); CPU {cpu:.1f} s ({args.count / cpu:,.0f} per CPU second), peak {mb:,.0f} MB; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs; rows {rows}")
    if server.seconds is not None:
        print(f"PostgreSQL's backends for the import: {server.seconds:.1f} CPU s "
              f"({server.seconds * 1e6 / args.count:,.0f} microseconds per delivery; the importing process "
              f"{cpu * 1e6 / args.count:,.0f}): on {os.cpu_count()} CPUs the two together allow at most "
              f"{os.cpu_count() * args.count / (server.seconds + cpu):,.0f} records/s")
    print(f"plain executemany of the same record rows: {plain_seconds:.1f} s = {plain_rate:,.0f} records/s; "
          f"ratio {rate / plain_rate:.2f} (import / executemany)")
    result = {"count": args.count, "chunk": args.chunk, "rows": rows, "seconds": round(seconds, 2),
              "executemany": {"seconds": round(plain_seconds, 2), "records_per_s": round(plain_rate)},
              "ratio": round(rate / plain_rate, 3),
              "records_per_s": round(rate), "cpu_seconds": round(cpu, 2), "records_per_cpu_s": round(args.count / cpu),
              "server_cpu_seconds": server.seconds, "peak_mb": round(mb), "target": f">= {TARGET} records/s", "load_average": round(load, 1),
              "cpus": os.cpu_count()}
    report("courier_import", result)
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["records_per_s"] >= TARGET else 1)
