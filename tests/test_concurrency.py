"""Concurrent writes never lose an update: of N writers sending the same ``If-Match``
at the same moment exactly one wins, the others get 412 (DESIGN.md, "HTTP API").

The race needs a real server: ``servq serve`` (gunicorn, several worker processes) on
the test database (an SQLite file, or PostgreSQL as the app role with RLS), and threads
released together by a barrier, each with its own connection.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
import time_machine

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(app, app_config, tmp_path):
    """``servq serve`` with several workers on the test database; yields its port."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": app_config["DATABASE_URL"],
           "SERVQ_INSTANCE_PATH": str(tmp_path / "server"), "SECRET_KEY": "test",
           "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)  # jobs inline: the race is about the database only
    if app_config.get("DATABASE_APP_ROLE"):
        env["SERVQ_DB_ROLE"] = app_config["DATABASE_APP_ROLE"]
    log_path = tmp_path / "server.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import cli; cli.main(['serve', '--port', '{port}', "
                               f"'--workers', '{WORKERS}'])"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _, _ = _call(port, "GET", "/api/v1/openapi.json", None, {})
                if status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the server did not start:\n"
                                     + log_path.read_text(errors="replace")[-4000:])
            time.sleep(0.2)
        yield port
    finally:
        proc.send_signal(signal.SIGINT)  # gunicorn's quick shutdown: nothing is in flight
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()
        log.close()


def _call(port, method, path, body, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        payload = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=payload,
                     headers={**headers, **({"Content-Type": "application/json"} if payload else {})})
        response = conn.getresponse()
        data = response.read()
        return response.status, dict(response.getheaders()), data
    finally:
        conn.close()


def race(port, token, method, path, bodies, etag=None, methods=None):
    """Send one request per body at the same moment (a barrier releases the threads,
    each on a connection of its own, already open) and return the statuses."""
    headers = {"Authorization": f"Bearer {token}"}
    if etag:
        headers["If-Match"] = etag
    barrier = threading.Barrier(len(bodies))
    statuses: list = [None] * len(bodies)

    def send(n, body):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.connect()
            payload = None if body is None else json.dumps(body).encode()
            barrier.wait()
            conn.request(methods[n] if methods else method, path, body=payload,
                         headers={**headers, **({"Content-Type": "application/json"} if payload else {})})
            response = conn.getresponse()
            response.read()
            statuses[n] = response.status
        except Exception as exc:  # pragma: no cover - reported by the assertion
            statuses[n] = repr(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=send, args=(n, body)) for n, body in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def rounds_of_patches(port, token, url, field, writers, rounds, values=None):
    """``rounds`` races of ``writers`` PATCHes of ``url`` with one ETag each; returns the
    statuses of every round and checks the winner's write is what is stored."""
    results = []
    for n in range(rounds):
        status, headers, _ = _call(port, "GET", url, None, {"Authorization": f"Bearer {token}"})
        assert status == 200
        values_ = [values(n, w) if values else f"round {n} writer {w}" for w in range(writers)]
        statuses = race(port, token, "PATCH", url, [{field: v} for v in values_], headers["ETag"])
        results.append(statuses)
        status, _, data = _call(port, "GET", url, None, {"Authorization": f"Bearer {token}"})
        stored = json.loads(data)[field]
        winners = [v for v, s in zip(values_, statuses) if s == 200]
        if len(winners) == 1:
            assert stored == winners[0], (statuses, stored)
    return results


def assert_one_winner(results, loser=412):
    distribution = Counter(sum(1 for s in statuses if s == 200) for statuses in results)
    print(f"winners per round: {dict(sorted(distribution.items()))}")
    for statuses in results:
        assert sorted(statuses) == [200] + [loser] * (len(statuses) - 1), results


def test_one_of_concurrent_record_patches_wins(acme, server):
    created = acme.api.post("/api/v1/records", json={"kind": "observation", "data": {"title": "Wet floor"}})
    assert created.status_code == 201
    url = f"/api/v1/records/{created.json['id']}"
    wins = 0
    for writers, rounds in ((2, 8), (3, 6)):
        # ``data`` is replaced whole; the title is what each writer changes.
        results = []
        for n in range(rounds):
            status, headers, _ = _call(server, "GET", url, None, {"Authorization": f"Bearer {acme.api.token}"})
            assert status == 200
            values = [f"{writers} writers, round {n}, writer {w}" for w in range(writers)]
            statuses = race(server, acme.api.token, "PATCH", url,
                            [{"data": {"title": v}} for v in values], headers["ETag"])
            results.append(statuses)
            stored = acme.api.get(url).json["data"]["title"]
            winners = [v for v, s in zip(values, statuses) if s == 200]
            assert stored in values and (len(winners) != 1 or stored == winners[0])
        assert_one_winner(results)
        wins += sum(s.count(200) for s in results)
    # Every winning write is in the history, and only those.
    history = acme.api.get(f"{url}/history?page_size=100").json
    assert [e["action"] for e in history].count("changed") == wins


def test_one_of_concurrent_writes_of_other_resources_wins(acme, server):
    """Sites, schedules, members, surveys and the calendar, three writers a round."""
    site = acme.api.post("/api/v1/sites", json={"code": "HQ", "name": "Head office"})
    assert site.status_code == 201
    results = rounds_of_patches(server, acme.api.token, f"/api/v1/sites/{site.json['id']}",
                                "name", 3, 5)
    assert_one_winner(results)
    created = acme.api.post("/api/v1/schedules", json={
        "title": "Fire equipment patrol", "kind": "observation", "rrule": "FREQ=MONTHLY",
        "dtstart": "2026-01-01T09:00:00+08:00"})
    assert created.status_code == 201, created.json
    results = rounds_of_patches(server, acme.api.token, f"/api/v1/schedules/{created.json['id']}",
                                "title", 3, 5)
    assert_one_winner(results)
    # A view of two rows (membership and user) and one built with a query (a survey
    # and its triggers): the main row is locked before the view is built.
    member = acme.api.post("/api/v1/members", json={"email": "ines@acme.test", "role": "agent"})
    assert member.status_code == 201, member.json
    results = rounds_of_patches(server, acme.api.token, f"/api/v1/members/{member.json['id']}",
                                "name", 3, 3)
    assert_one_winner(results)
    survey = acme.api.post("/api/v1/surveys", json={"title": {"en": "Quick"}, "instrument": "csat"})
    assert survey.status_code == 201, survey.json
    results = rounds_of_patches(server, acme.api.token, f"/api/v1/surveys/{survey.json['id']}",
                                "link_lifetime_days", 3, 3, values=lambda n, w: 10 + 3 * n + w)
    assert_one_winner(results)
    # A DELETE and two PATCHes of one site: one of them wins. A PATCH that finds the
    # row gone once it holds the lock is a 412 (PostgreSQL); one that runs after the
    # DELETE (SQLite runs writes one at a time) finds no site: 404. Never a 500.
    results = []
    for n in range(3):
        site = acme.api.post("/api/v1/sites", json={"code": f"GONE{n}", "name": "Gone"})
        url = f"/api/v1/sites/{site.json['id']}"
        results.append(race(server, acme.api.token, None, url, [None, {"name": "a"}, {"name": "b"}],
                            site.headers["ETag"], methods=["DELETE", "PATCH", "PATCH"]))
    for statuses in results:
        winners = [s for s in statuses if s in (200, 204)]
        losers = {412, 404} if statuses[0] == 204 else {412}
        assert len(winners) == 1 and all(s in losers for s in statuses if s not in winners), results
    # The calendar: a PUT, with If-Match once one is stored.
    week = {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    calendar = {"timezone": "Asia/Shanghai", "country": "CN", "working_hours": week}
    assert acme.api.put("/api/v1/calendar", json=calendar).status_code == 200
    results = []
    for n in range(3):
        etag = acme.api.get("/api/v1/calendar").headers["ETag"]
        bodies = [{**calendar, "extra_holidays": [f"2027-0{n + 1}-1{w}"]} for w in range(3)]
        results.append(race(server, acme.api.token, "PUT", "/api/v1/calendar", bodies, etag))
    assert_one_winner(results)


def test_one_of_concurrent_action_transitions_wins(acme, server):
    """Each round a fresh action; three callers start it at once: one moves it, the
    others find it already started (409), or stale when they sent its ETag (412)."""
    for with_etag, loser in ((False, 409), (True, 412)):
        results = []
        for n in range(3):
            created = acme.api.post("/api/v1/actions", json={"title": f"Fix the door {n}"})
            assert created.status_code == 201, created.json
            url = f"/api/v1/actions/{created.json['id']}"
            etag = acme.api.get(url).headers["ETag"] if with_etag else None
            results.append(race(server, acme.api.token, "POST", f"{url}/transitions",
                                [{"action": "start"}] * 3, etag))
            history = acme.api.get(f"{url}/history?page_size=100").json
            assert [e["action"] for e in history].count("start") == 1, history
        assert_one_winner(results, loser)


# -- 201 Created: ETag and Location ---------------------------------------------------

INSTRUMENT = {
    "code": "mini", "title": {"en": "Mini"}, "scale": {"min": 1, "max": 5},
    "dimensions": [{"code": "a", "title": {"en": "A"}}],
    "items": [{"code": "x1", "dimension": "a", "text": {"en": "X one"}}],
}


def _holds(value, expected) -> bool:
    """Whether ``value`` has every key of ``expected`` with its value (nested dicts too)."""
    if isinstance(expected, dict):
        return isinstance(value, dict) and all(k in value and _holds(value[k], v) for k, v in expected.items())
    return value == expected


def _created(api, url, body):
    response = api.post(url, json=body)
    assert response.status_code == 201, response.json
    return response


def test_every_201_carries_the_etag_of_a_get_and_the_location(acme):
    """What a POST creates can be changed with the 201's ETag, without a GET, and the
    ETag is the one a GET of ``Location`` returns."""
    api = acme.api
    site = _created(api, "/api/v1/sites", {"code": "HQ", "name": "Head office"}).json
    survey = _created(api, "/api/v1/surveys", {"title": {"en": "How did we do?"}, "instrument": "nps"}).json
    cases = [  # (collection, body of the POST, method and body of the write after it)
        ("/api/v1/records", {"kind": "observation", "data": {"title": "Wet floor"}},
         "patch", {"data": {"title": "Dry floor"}}),
        ("/api/v1/sites", {"code": "B", "name": "Branch"}, "patch", {"name": "Branch office"}),
        ("/api/v1/staff", {"code": "W1", "name": "Wang Wei", "site_id": site["id"]},
         "patch", {"name": "Wang Wei (lead)"}),
        ("/api/v1/actions", {"title": "Fix the door"}, "patch", {"title": "Fix the front door"}),
        ("/api/v1/schedules", {"title": "Fire equipment patrol", "kind": "observation",
                               "rrule": "FREQ=MONTHLY", "dtstart": "2026-01-01T09:00:00+08:00"},
         "patch", {"title": "Fire patrol"}),
        ("/api/v1/webhooks", {"url": "https://example.com/hook", "event_types": ["clock.breached"]},
         "patch", {"description": "Ops channel"}),
        ("/api/v1/members", {"email": "ines@acme.test", "role": "inspector", "name": "Ines"},
         "patch", {"role": "agent"}),
        ("/api/v1/surveys/instruments", INSTRUMENT, "patch", {"title": {"en": "Mini survey"}}),
        ("/api/v1/surveys", {"title": {"en": "Quick"}, "instrument": "csat"},
         "patch", {"title": {"en": "Quick check"}}),
        (f"/api/v1/surveys/{survey['id']}/invitations", {"customer": {"name": "Jane Doe"}},
         "delete", None),
    ]
    with time_machine.travel(datetime(2026, 12, 4, 9, 0, tzinfo=timezone.utc), tick=False):
        for collection, body, method, change in cases:
            created = _created(api, collection, body)
            etag = created.headers.get("ETag")
            location = created.headers.get("Location")
            key = created.json["code"] if collection.endswith("/instruments") else created.json["id"]
            assert etag and location == f"http://localhost{collection}/{key}", (collection, created.headers)
            assert api.get(location).headers["ETag"] == etag, collection
            if method == "patch":
                changed = api.patch(location, json=change, etag=etag)
                assert changed.status_code == 200, (collection, changed.json)
                assert _holds(changed.json, change), (collection, changed.json)
                # The 201's ETag is spent: a second write with it is stale.
                assert api.patch(location, json=change, etag=etag).status_code == 412, collection
            else:
                assert api.delete(location, etag=etag).status_code == 204, collection
                assert api.get(location).json["status"] == "revoked"
