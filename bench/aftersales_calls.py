"""Automatic call QA in bulk: ``servq records import`` of calls with transcripts, each scored
against ``aftersales.call_qa`` (issue 21). Target: >= 5,000 calls per second on PostgreSQL.

    python bench/aftersales_calls.py [--count 100000] [--chunk 1000]

A tenant with the ``aftersales`` plugin enabled (onboarded from a manifest, so the standards
are adopted and the scripts filled in) imports ``count`` ``aftersales.call`` records, each
with a five-turn transcript whose numbers are masked at ingestion; every call is scored by
deductions (opening and closing phrases on the agent's first and last turns, the
colloquialism deduction, the speech-rate band, the patience phrases and the red-line taboo
library). 8 % change the closing phrase (98 points) and one in 1,000 says a red-line phrase
(0 points and a corrective action). The import runs as the console script in a subprocess,
as the application role with row-level security, in a fresh database after a checkpoint.

The baseline, measured in the same run in a fresh database of its own: psycopg's
``executemany`` of the same calls' record rows (parsed and resolved beforehand; numbers
not masked) as the same role, one transaction: no validation, audit or scoring, one row
per call where the import writes three (record, audit event, evaluation).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import checkpoint, report, scratch_database  # noqa: E402
from bench.records_import import APP_ROLE, import_with_cli, plain_baseline  # noqa: E402

TARGET = 5_000
AGENTS = 40
OPENING = "您好，很高兴为您服务，请问有什么可以帮您？"
CLOSING = "感谢您的来电，再见。"
MIDDLES = ["好的，控制器显示E3是继电器故障，我们安排工程师明天下午两点上门更换。",
           "您说的加药泵不启动，请先检查一下电源端子是否松动，如果还不行我们派人过去。",
           "电导率读数漂移一般是探头结垢，我给您登记一下，工程师会联系您。"]


def write_file(path: Path, count: int, seed: int = 21) -> None:
    rng = random.Random(seed)
    start = datetime(2026, 3, 2, 9, tzinfo=timezone(timedelta(hours=8)))
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            middle = "你爱投诉就投诉，我就这态度。" if n % 1000 == 999 else rng.choice(MIDDLES)
            closing = "谢谢，拜拜。" if rng.random() < 0.08 else CLOSING
            phone = f"139{rng.randint(10_000_000, 99_999_999)}"
            turns = [("agent", OPENING), ("customer", f"我的控制器坏了，电话{phone}"), ("agent", middle),
                     ("customer", "好的，谢谢"), ("agent", closing)]
            transcript, t = [], 0.0
            for speaker, text in turns:
                length = len(text) * 60 / rng.uniform(170, 250)
                transcript.append({"speaker": speaker, "text": text, "start_s": round(t, 1),
                                   "end_s": round(t + length, 1)})
                t += length + 1
            record = {"kind": "aftersales.call", "occurred_at": (start + timedelta(seconds=7 * n)).isoformat(),
                      "staff": f"A{n % AGENTS:02d}",
                      "data": {"call_id": f"C{n:07d}", "customer": {"phone": phone}, "duration_s": int(t),
                               "transcript": transcript, "colloquialisms": rng.choice((0, 0, 0, 1, 2))}}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def setup(url: str) -> None:
    from servq.core import create_app
    from servq.tenants.onboarding import onboard

    app = create_app({"DATABASE_URL": url, "DATABASE_APP_ROLE": APP_ROLE, "INSTANCE_PATH": "/tmp/servq-bench"})
    onboard(app, {"slug": "bench", "name": "Bench after-sales", "industry": "aftersales",
                  "timezone": "Asia/Shanghai", "locale": "zh", "plugins": {"aftersales": {"reviews_per_agent": 0}},
                  "admins": [{"email": "owner@bench.test", "role": "owner", "name": "Owner"}],
                  "sites": [{"code": "NC-SC", "name": "Nanchang"}],
                  "staff": [{"code": f"A{n:02d}", "name": f"Agent {n}", "site": "NC-SC", "title": "Call agent"}
                            for n in range(AGENTS)]})
    app.extensions["servq.engine"].dispose()


def counts(engine) -> dict:
    from sqlalchemy import text

    with engine.connect() as conn:
        out = {table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
               for table in ("records", "evaluations", "actions")}
        out["mean_total"] = float(conn.execute(text(
            "SELECT avg(total) FROM evaluations WHERE standard_code = 'aftersales.call_qa'")).scalar() or 0)
        out["zero"] = conn.execute(text(
            "SELECT count(*) FROM evaluations WHERE standard_code = 'aftersales.call_qa' AND total = 0")).scalar()
        return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=1000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "calls.jsonl"
        write_file(path, args.count)
        with scratch_database() as (url, engine):
            setup(url)
            checkpoint()
            plain_seconds = plain_baseline(url, engine, path, "bench", args.chunk, "recorded")
        with scratch_database() as (url, engine):
            setup(url)
            checkpoint()
            seconds, cpu, mb = import_with_cli(url, path, args.chunk)
            rows = counts(engine)
    if rows["evaluations"] < args.count:
        raise RuntimeError(f"unexpected rows: {rows}")
    rate, plain_rate = args.count / seconds, args.count / plain_seconds
    load = os.getloadavg()[0]
    print(f"calls scored: {args.count:,} in {seconds:.1f} s = {rate:,.0f} calls/s (target {TARGET:,}); "
          f"CPU {cpu:.1f} s ({args.count / cpu:,.0f} per CPU second), peak {mb:,.0f} MB; "
          f"mean {rows['mean_total']:.2f} points, {rows['zero']} red-line calls, {rows['actions']} actions; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"plain executemany of the same record rows: {plain_seconds:.1f} s = {plain_rate:,.0f} records/s; "
          f"ratio {rate / plain_rate:.2f} (scored import / executemany)")
    result = {"count": args.count, "chunk": args.chunk, "rows": rows, "seconds": round(seconds, 2),
              "executemany": {"seconds": round(plain_seconds, 2), "records_per_s": round(plain_rate)},
              "ratio": round(rate / plain_rate, 3),
              "calls_per_s": round(rate), "cpu_seconds": round(cpu, 2), "calls_per_cpu_s": round(args.count / cpu),
              "peak_mb": round(mb), "target": f">= {TARGET} calls/s", "load_average": round(load, 1),
              "cpus": os.cpu_count()}
    report("aftersales_calls", result)
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["calls_per_s"] >= TARGET else 1)
