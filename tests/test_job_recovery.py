"""A job whose worker dies is picked up again within a minute or two, and done once.

Real ``servq worker`` processes on Redis and PostgreSQL: the first worker's tenant export
is held inside the export (the test locks a table the export reads), the worker is
killed with SIGKILL, and a second worker must find the abandoned job (heartbeats stop,
the started-job registry entry expires, a registry cleanup hands the job to its
``Retry``) and finish it. The intervals are shortened with the documented settings
``SERVQ_JOB_HEARTBEAT_INTERVAL``, ``SERVQ_JOB_ABANDONED_AFTER`` and
``SERVQ_JOB_MAINTENANCE_INTERVAL`` (defaults 15, 45 and 30 s).

PostgreSQL only: holding a job mid-export needs a lock that blocks readers (SQLite's
WAL lets readers through).
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy import create_engine, text

from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[1]
EXPORTS = "/api/v1/tenant/exports"


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited, only its parent has not reaped it


def _wait(predicate, seconds: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.mark.redis
@pytest.mark.postgres
def test_an_export_whose_worker_was_killed_is_finished_once_by_another_worker(
        app, app_config, acme, database, tmp_path):
    env = {**os.environ,
           "PYTHONPATH": str(ROOT),
           "DATABASE_URL": app_config["DATABASE_URL"],
           "SERVQ_DB_ROLE": app_config["DATABASE_APP_ROLE"],
           "REDIS_URL": TEST_REDIS_URL,
           "SERVQ_QUEUE": app.config["JOB_QUEUE"],
           "SERVQ_INSTANCE_PATH": str(tmp_path / "worker"),
           "SECRET_KEY": "worker",
           "SERVQ_JOB_HEARTBEAT_INTERVAL": "1",
           "SERVQ_JOB_ABANDONED_AFTER": "3",
           "SERVQ_JOB_MAINTENANCE_INTERVAL": "2"}

    def start_worker(name: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "wb")
        return subprocess.Popen([sys.executable, "-m", "servq.cli", "worker"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)

    def export_status(export_id: str) -> str:
        r = acme.api.get(f"{EXPORTS}/{export_id}")
        assert r.status_code == 200, r.json
        return r.json["status"]

    def logs() -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("*.log")))

    # Queued before the lock: the request's connection may prepare statements on sites (a
    # statement prepared on BEGIN, see core.db.fast), which the lock would hold up.
    r = acme.api.post(EXPORTS)
    assert r.status_code == 202, r.json
    export_id = r.json["id"]
    owner = create_engine(database["url"])
    blocker = owner.connect()
    held = blocker.begin()
    blocker.execute(text("LOCK TABLE sites IN ACCESS EXCLUSIVE MODE"))  # the export reads sites
    first = second = None
    try:
        first = start_worker("first")
        assert _wait(lambda: export_status(export_id) == "running", 30), logs()
        assert _wait(lambda: len(_children(first.pid)) == 1, 10), logs()  # rq's scheduler
        [scheduler] = _children(first.pid)
        time.sleep(1.5)  # a heartbeat or two while the export waits for the lock

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = time.monotonic()
        held.rollback()  # the dead worker's database connection goes away with it
        assert _wait(lambda: not _alive(scheduler), 10), "the killed worker's scheduler is still running"
        assert export_status(export_id) == "running"

        second = start_worker("second")
        assert _wait(lambda: export_status(export_id) in ("done", "failed"), 90, step=0.5), logs()
        recovered_in = time.monotonic() - killed_at
    finally:
        if held.is_active:
            held.rollback()
        blocker.close()
        owner.dispose()
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()

    assert export_status(export_id) == "done", logs()
    print(f"export recovered {recovered_in:.1f} s after its worker was killed")
    assert recovered_in < 60, recovered_in
    file = acme.api.get(f"{EXPORTS}/{export_id}/file")
    assert file.status_code == 200
    body = file.data
    document = json.loads(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)
    assert document["tenant"]["slug"] == "acme"

    redis = app.extensions["servq.redis"]
    job = Job.fetch(export_id, connection=redis, serializer=JSONSerializer)
    assert job.get_status() == "finished"
    assert job.retries_left == 2  # one retry: the abandoned run, then the finished one
    assert export_id not in FailedJobRegistry(app.config["JOB_QUEUE"], connection=redis).get_job_ids()
    # The second worker stopped cleanly, and its scheduler with it.
    assert second.returncode is not None and _children(second.pid) == []
