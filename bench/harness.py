"""Shared pieces of the benchmarks: a scratch PostgreSQL database, servers in
subprocesses, an HTTP load generator and percentiles. Benchmarks report ratios against a
baseline measured in the same run, never absolute pass/fail timings."""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def scratch_database(prefix: str = "servq_bench"):
    """A new PostgreSQL database migrated to head (with the app role); dropped afterwards."""
    from servq.core.db.migrate import upgrade

    admin_url = make_url(PG_URL)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        upgrade(engine)
        yield url, engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def checkpoint() -> None:
    """``CHECKPOINT`` (as the administrator of ``PG_URL``): a timed phase that starts
    after one does not write back, or log whole pages for, what an earlier phase left
    dirty."""
    admin = create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("CHECKPOINT"))
    finally:
        admin.dispose()


class BackendCpu:
    """The CPU seconds PostgreSQL's backends spent for the database ``url`` while the
    context ran (a thread polls ``pg_stat_activity`` for their pids and reads each one's
    ``/proc/<pid>/stat``): what the server did for a benchmark's client. ``None`` when the
    server is not on this machine (no ``/proc`` entry for its backends)."""

    def __init__(self, url: str, every: float = 0.1):
        self.url, self.every = url, every
        self.seconds: float | None = None

    def __enter__(self):
        self._stop = threading.Event()
        self._cpu: dict[int, float] = {}
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)
        self.seconds = round(sum(self._cpu.values()), 2) if self._cpu else None

    def _watch(self) -> None:
        engine = create_engine(self.url)
        tick = os.sysconf("SC_CLK_TCK")
        try:
            with engine.connect() as conn:
                own = conn.execute(text("SELECT pg_backend_pid()")).scalar()
                database = conn.execute(text("SELECT current_database()")).scalar()
                while not self._stop.is_set():
                    pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> :o"),
                                        {"d": database, "o": own}).scalars().all()
                    conn.rollback()
                    for pid in pids:
                        try:
                            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                        except OSError:
                            continue
                        self._cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
                    self._stop.wait(self.every)
        finally:
            engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(argv: list[str], port: int, env: dict[str, str], health: str):
    """Run a server subprocess until ``health`` answers; stop it afterwards."""
    proc = subprocess.Popen(argv, env={**os.environ, **env}, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", health)
                conn.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def load(port: int, method: str, path: str, body_factory, headers: dict, clients: int,
         seconds: float) -> dict:
    """``clients`` threads with keep-alive connections send requests for ``seconds``.

    Returns throughput and latency percentiles; non-2xx answers are counted as errors.
    """
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.monotonic() < stop:
            body = body_factory()
            data = json.dumps(body).encode() if body is not None else None
            t0 = time.perf_counter()
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            resp.read()
            mine.append(time.perf_counter() - t0)
            if resp.status >= 300:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return {"requests": len(latencies), "errors": errors[0], "seconds": round(elapsed, 2),
            "throughput": round(len(latencies) / elapsed, 1), **percentiles(latencies)}


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a process, from /proc; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def process_tree_cpu(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its live descendants (Linux /proc)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                stats[int(entry)] = st
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            total += stats[p][1]
            todo.extend(c for c, (parent, _) in stats.items() if parent == p)
    return total


def backends_cpu(admin_engine, database: str) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend connected to ``database``
    (the server must run on this machine)."""
    with admin_engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
                            {"d": database}).scalars().all()
    out = {}
    for pid in pids:
        st = _stat(pid)
        if st is not None:
            out[pid] = st[1]
    return out


class CpuMeter:
    """CPU used per request by each side of a load run: the server processes, the
    database backends and the load generator (this process), in milliseconds.

    Throughput on a busy machine depends on what else runs; CPU per request much less
    so, and the sum over the three sides is what bounds throughput on a machine that
    runs them all.
    """

    def __init__(self, server_pid: int, admin_engine=None, database: str | None = None):
        self.server_pid, self.admin, self.database = server_pid, admin_engine, database

    def _sample(self):
        db = backends_cpu(self.admin, self.database) if self.admin is not None else {}
        return process_tree_cpu(self.server_pid), db

    def run(self, requests_fn) -> dict:
        """Call ``requests_fn`` (returning a :func:`load` result); add its CPU figures."""
        server0, db0 = self._sample()
        client0 = time.process_time()
        result = requests_fn()
        client1 = time.process_time()
        server1, db1 = self._sample()
        n = max(1, result["requests"])
        db = sum(cpu - db0.get(pid, 0.0) for pid, cpu in db1.items())
        cpu = {"server": (server1 - server0) * 1000 / n, "db": db * 1000 / n,
               "client": (client1 - client0) * 1000 / n}
        cpu["total"] = sum(cpu.values())
        return {**result, "cpu_ms_per_request": {k: round(v, 3) for k, v in cpu.items()}}


def percentiles(samples: list[float]) -> dict:
    if not samples:
        return {"p50_ms": None, "p90_ms": None}
    q = statistics.quantiles(samples, n=10) if len(samples) > 1 else [samples[0]] * 9
    return {"p50_ms": round(statistics.median(samples) * 1000, 2), "p90_ms": round(q[8] * 1000, 2)}


def report(name: str, result: dict) -> None:
    """Print the result as one JSON line and keep it under bench/results/."""
    line = json.dumps({"bench": name, **result})
    print(line)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(line + "\n")


def python() -> str:
    return sys.executable
