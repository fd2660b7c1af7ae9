"""Bad input is a 4xx with flask-smorest's JSON error shape, a clear message and nothing
written, on every database: text that is not Unicode (lone surrogates), numbers too
large to read or store, LIKE wildcards in search filters, and requests the HTTP server
itself refuses."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from servq import cli
from servq.core.models import Action, Record, Site

ROOT = Path(__file__).resolve().parent.parent


def error_shape(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True))
    body = r.json
    assert body["code"] == status and isinstance(body["status"], str)
    return body


def count(tenant, model) -> int:
    with tenant.session() as s:
        return s.scalar(select(func.count()).select_from(model))


# -- lone surrogates ---------------------------------------------------------------------

# A JSON escape of half a surrogate pair: valid JSON syntax, but no Unicode character.
LONE = '"a\\ud800b"'


def raw_post(api, url, body: str):
    return api.post(url, data=body.encode("utf-8"), content_type="application/json")


@pytest.mark.parametrize("url,body,model", [
    ("/api/v1/sites", '{"code": "A", "name": %s}' % LONE, Site),
    ("/api/v1/sites", '{"code": %s, "name": "A"}' % LONE, Site),
    ("/api/v1/actions", '{"title": %s}' % LONE, Action),
    ("/api/v1/records", '{"kind": "observation", "data": {"title": %s}}' % LONE, Record),
    ("/api/v1/records", '{"kind": "observation", "data": {"title": "x", %s: 1}}' % LONE, Record),
    ("/api/v1/records/batch", '[{"kind": "observation", "data": {"title": [%s]}}]' % LONE, Record),
])
def test_a_lone_surrogate_in_a_body_is_a_400(acme, url, body, model):
    r = raw_post(acme.api, url, body)
    err = error_shape(r, 400)
    assert "surrogate" in json.dumps(err["errors"]), err
    assert count(acme, model) == 0


def test_a_body_in_another_encoding_than_utf8_is_still_a_400(acme):
    r = acme.api.post("/api/v1/sites", data=json.dumps({"code": "A", "name": "é"}).encode("utf-16"),
                      content_type="application/json")
    error_shape(r, 400)
    r = acme.api.post("/api/v1/sites", data=json.dumps({"code": "A", "name": "A"}).encode("utf-16-le"),
                      content_type="application/json")
    error_shape(r, 400)
    assert count(acme, Site) == 0


def test_a_surrogate_pair_is_a_character(acme):
    """An escaped pair is one character beyond U+FFFF, and welcome."""
    r = raw_post(acme.api, "/api/v1/sites", '{"code": "A", "name": "smile \\ud83d\\ude00"}')
    assert r.status_code == 201, r.json
    assert r.json["name"] == "smile \U0001F600"


def test_a_surrogate_in_the_query_or_path_is_an_ordinary_miss(acme):
    """Percent-encoded, a surrogate is not UTF-8: Werkzeug decodes query strings and
    paths with errors replaced, so it arrives as U+FFFD, a character like any other,
    and can neither reach the database as a surrogate nor fail a request."""
    assert acme.api.post("/api/v1/sites", json={"code": "A", "name": "A"}).status_code == 201
    r = acme.api.get("/api/v1/sites?q=%ED%A0%80")
    assert r.status_code == 200 and r.json == []
    r = acme.api.get("/api/v1/standards/%ED%A0%80/diff")
    error_shape(r, 404)


def test_a_lone_surrogate_in_record_data_is_refused_on_every_database(acme):
    """Record data went to SQLite as it came (PostgreSQL refuses such text): then
    every export of the tenant failed."""
    r = raw_post(acme.api, "/api/v1/records",
                 '{"kind": "observation", "data": {"title": "Door", "note": "\\udfff"}}')
    error_shape(r, 400)
    assert count(acme, Record) == 0
    assert acme.api.post("/api/v1/tenant/exports").status_code == 202


def _store_a_lone_surrogate(acme) -> str:
    """A record holding a lone surrogate, written straight to the database as an
    earlier version let it through on SQLite."""
    with acme.session() as s:
        record = Record(kind="observation", occurred_at=datetime(2026, 12, 1, tzinfo=timezone.utc),
                        data={"title": "Door \ud800 left open"})
        s.add(record)
        s.commit()
        return str(record.id)


def test_export_survives_a_stored_lone_surrogate(app, acme):
    if app.extensions["servq.engine"].dialect.name != "sqlite":
        pytest.skip("PostgreSQL cannot store a lone surrogate")
    record_id = _store_a_lone_surrogate(acme)

    # The command line: exit 0, valid UTF-8 JSON, the code point replaced, and said so.
    result = CliRunner().invoke(cli.make_cli(app_factory=lambda: app), ["tenants", "export", "acme"])
    assert result.exit_code == 0, (result.output, result.exception)
    doc = json.loads(result.stdout)
    [row] = [r for r in doc["tables"]["records"] if r["id"] == record_id]
    assert row["data"]["title"] == "Door \ufffd left open"
    assert doc["replaced"] == [{"table": "records", "id": record_id, "column": "data",
                                "reason": "lone surrogate replaced by U+FFFD"}]
    assert "replaced 1 invalid character value(s)" in result.stderr

    # The API: the export is done and its file is the same document.
    r = acme.api.post("/api/v1/tenant/exports")
    assert r.status_code == 202, r.json
    status = acme.api.get(r.json["links"]["self"])
    if status.json["status"] != "done" and app.extensions["servq.queue"] is not None:
        from servq.core.jobs import make_worker

        make_worker(app).work(burst=True)
        status = acme.api.get(r.json["links"]["self"])
    assert status.json["status"] == "done" and status.json["error"] is None, status.json
    file = acme.api.get(r.json["links"]["file"])
    assert file.status_code == 200
    doc = file.json
    [row] = [r for r in doc["tables"]["records"] if r["id"] == record_id]
    assert row["data"]["title"] == "Door \ufffd left open"
    assert doc["replaced"][0]["id"] == record_id


def test_an_export_of_clean_data_says_nothing_was_replaced(app, acme):
    acme.api.post("/api/v1/records", json={"kind": "observation", "data": {"title": "Door"}})
    result = CliRunner().invoke(cli.make_cli(app_factory=lambda: app), ["tenants", "export", "acme"])
    assert result.exit_code == 0
    assert "replaced" not in json.loads(result.stdout)


def test_records_import_refuses_a_lone_surrogate_and_huge_numbers(app, acme, tmp_path):
    """``servq records import`` writes records too: the same limits, the same words."""
    lines = tmp_path / "records.jsonl"
    lines.write_text('{"kind": "observation", "data": {"title": "a\\ud800b"}}\n'
                     '{"kind": "observation", "data": {"title": "x", "tags": [%s]}}\n'
                     '{"kind": "observation", "data": {"title": 1e999}}\n' % ("9" * 5000))
    table = tmp_path / "records.csv"
    table.write_text('kind,data.title,data\nobservation,x,"{""description"": ""\\udc00""}"\n')
    servq = cli.make_cli(app_factory=lambda: app)
    result = CliRunner().invoke(servq, ["records", "import", "--tenant", "acme", str(lines)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.splitlines() == [
        "line 1: record: Text must be Unicode characters: a string holds a lone surrogate "
        "(half of a UTF-16 pair, e.g. \\ud800) at data.title.",
        "line 2: record: A number may be written with at most 100 characters; this one has 5,000.",
        "line 3: record: The number 1e999 is too large (beyond ±1.8e308).",
        "error: 3 bad line(s); nothing was written"]
    result = CliRunner().invoke(servq, ["records", "import", "--tenant", "acme", str(table)])
    assert result.exit_code == 1 and result.stderr.splitlines()[0] == (
        "line 2: data: Text must be Unicode characters: a string holds a lone surrogate "
        "(half of a UTF-16 pair, e.g. \\ud800) at description.")
    assert count(acme, Record) == 0


# -- numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize("number", [
    "9" * 5000,            # beyond Python's 4,300-digit limit for reading an integer
    "-" + "9" * 5000,
    "1" * 400,             # readable, but no database column or JSON reader takes it
    "1e999",               # a float beyond double precision: read as infinity
    "-1e999",
    "1." + "0" * 5000 + "1",
    "1e" + "9" * 5000,
])
def test_a_huge_number_in_record_data_is_a_400(acme, number):
    r = raw_post(acme.api, "/api/v1/records",
                 '{"kind": "observation", "data": {"title": "x", "n": %s}}' % number)
    err = error_shape(r, 400)
    assert "number" in json.dumps(err["errors"]), err
    assert count(acme, Record) == 0


def test_large_but_ordinary_numbers_are_kept(app):
    from servq.core.jsonparse import MAX_NUMBER_CHARS

    longest = "9" * MAX_NUMBER_CHARS
    with app.app_context():
        doc = app.json.loads('{"n": 123456789012345678, "f": 1.5e300, "g": -2.5e-300, '
                             '"big": %s, "x": 1.7976931348623157e308}' % longest)
    assert doc == {"n": 123456789012345678, "f": 1.5e300, "g": -2.5e-300, "big": int(longest),
                   "x": 1.7976931348623157e308}


def test_the_path_of_a_lone_surrogate_is_named(acme):
    r = raw_post(acme.api, "/api/v1/records",
                 '{"kind": "observation", "data": {"title": "x", "tags": ["ok", %s]}}' % LONE)
    err = error_shape(r, 400)
    assert err["errors"]["json"] == [
        "Text must be Unicode characters: a string holds a lone surrogate (half of a UTF-16 "
        "pair, e.g. \\ud800) at data.tags.1."]


@pytest.mark.parametrize("url", [
    "/api/v1/standards/core.observation/diff?version=3448743901184497352179712",
    "/api/v1/standards/core.observation/diff?version=2147483648",
    "/api/v1/sites?page=3448743901184497352179712",
    "/api/v1/sites?page_size=99999999999999999999999",
    "/api/v1/kpis/pareto/items?limit=3448743901184497352179712",
    "/api/v1/records?page=" + "9" * 5000,
])
def test_an_integer_too_large_in_the_query_is_a_422(acme, url):
    r = acme.api.get(url)
    err = error_shape(r, 422)
    assert err["errors"]["query"], err


@pytest.mark.parametrize("url, name", [
    ("/api/v1/kpis?metrics=records&metrics=score", "metrics"),
    ("/api/v1/records?kind=complaint&kind=observation", "kind"),
    ("/api/v1/sites?page=1&page=2&page_size=5", "page"),
])
def test_a_parameter_given_twice_is_a_422_not_its_first_value(acme, url, name):
    # webargs alone answered the first value and dropped the rest without a word.
    err = error_shape(acme.api.get(url), 422)
    assert err["errors"]["query"] == {name: ["Given 2 times; give it once (where it takes several "
                                             "values, they are comma-separated)."]}, err
    assert acme.api.get(url.split("&")[0]).status_code == 200


def test_an_argument_the_endpoint_does_not_take_is_judged_the_same_repeated_or_not(acme):
    once, twice = acme.api.get("/api/v1/sites?utm=a"), acme.api.get("/api/v1/sites?utm=a&utm=b")
    assert once.status_code == twice.status_code and once.json == twice.json


# -- LIKE wildcards ----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/sites", "/api/v1/staff"])
def test_wildcards_in_a_search_match_themselves(acme, url):
    for code, name in (("A0", "Zero"), ("A1", "One"), ("A2", "50%_off \\ sale")):
        assert acme.api.post(url, json={"code": code, "name": name}).status_code == 201
    for q, expected in (("%", ["A2"]), ("_", ["A2"]), ("0%", ["A2"]), ("%_", ["A2"]),
                        ("\\", ["A2"]), ("\\%", []), ("1", ["A1"]), ("a", ["A0", "A1", "A2"]),
                        ("", ["A0", "A1", "A2"])):
        r = acme.api.get(url, query_string={"q": q})
        assert r.status_code == 200, r.json
        assert [x["code"] for x in r.json] == expected, q


# -- the HTTP server ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``servq serve`` on a free loopback port, its embedded SQLite database fresh."""
    port = _free_port()
    instance = tmp_path_factory.mktemp("served")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(SERVQ_INSTANCE_PATH=str(instance), SECRET_KEY="test")
    log = instance / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import cli; cli.main()", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"servq serve did not start: {log.read_text()}")
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _raw(port: int, request: bytes) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET /api/v1/sites?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET /api/v1/sites HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n", 400),
    (b"GET /api/v1/sites HTTP/1.1\r\nHost: x\r\nX-Bad\x07: ab\r\n\r\n", 400),
    (b"GET /api/v1/sites HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (b"GET /api/v1/sites SPDY/3\r\nHost: x\r\n\r\n", 400),
])
def test_the_server_refuses_malformed_requests_in_json(server, request_bytes, status):
    got, headers, body = _raw(server, request_bytes)
    assert got == status, body
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    doc = json.loads(body)
    assert doc["code"] == status and doc["status"] and doc["message"], doc


def test_the_served_app_answers_json_errors_too(server):
    """Errors of the app itself (here a 401) keep flask-smorest's shape."""
    got, headers, body = _raw(server, b"GET /api/v1/sites HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert got == 401 and json.loads(body)["code"] == 401
