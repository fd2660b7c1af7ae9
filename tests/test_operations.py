"""What operators rely on (docs/operations.md): /healthz, /readyz, /metrics, request ids,
the access log (plain and JSON), CORS, the RateLimit-* headers and the ``servq db``
commands; through HTTP and the CLI, on SQLite and (with TEST_DATABASE_URL) PostgreSQL."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import uuid

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from servq import cli
from servq.core import create_app
from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL

HEX_ID = re.compile(r"[0-9a-f]{32}")
METRICS_TOKEN = "scrape-me-3f9a"


# -- health and readiness -------------------------------------------------------------------


def test_healthz_answers_without_authentication(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}
    assert HEX_ID.fullmatch(response.headers["X-Request-ID"])


def test_readyz_checks_the_database_schema_and_redis(app, client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    expected = {"database": "ok", "schema": "ok"}
    if app.config.get("REDIS_URL"):
        expected["redis"] = "ok"
    assert response.json == {"status": "ok", "checks": expected}


@pytest.fixture
def unreachable_url(tmp_path):
    """A database URL nothing answers at, of the suite's database kind."""
    if ON_POSTGRES:
        return make_url(TEST_DATABASE_URL).set(port=1, database="nothing").render_as_string(hide_password=False)
    return f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'servq.db'}"


def test_readyz_is_503_when_the_database_is_unreachable(app_config, unreachable_url):
    app = create_app({**app_config, "DATABASE_URL": unreachable_url, "REDIS_URL": None})
    try:
        response = app.test_client().get("/readyz")
    finally:
        app.extensions["servq.engine"].dispose()
    assert response.status_code == 503
    body = response.json
    assert body["status"] == "unavailable" and body["checks"] == {"database": "unreachable"}
    assert "database unreachable" in body["reason"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    # The process itself is alive.
    assert app.test_client().get("/healthz").status_code == 200


def test_readyz_is_503_when_the_schema_is_not_at_head(app, client):
    owner = create_engine(app.config["DATABASE_URL"])
    try:
        with owner.begin() as conn:
            head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
        try:
            response = client.get("/readyz")
        finally:
            with owner.begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    finally:
        owner.dispose()
    assert response.status_code == 503
    assert response.json["checks"]["database"] == "ok" and response.json["checks"]["schema"] == "behind"
    assert f"at 0003, not at {head}" in response.json["reason"] and "servq db upgrade" in response.json["reason"]
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_when_redis_is_unreachable(app_config):
    app = create_app({**app_config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    try:
        response = app.test_client().get("/readyz")
    finally:
        app.extensions["servq.engine"].dispose()
    assert response.status_code == 503
    assert response.json["checks"] == {"database": "ok", "schema": "ok", "redis": "unreachable"}


# -- request ids -----------------------------------------------------------------------------


def test_a_sane_client_request_id_is_kept_and_returned(acme):
    rid = str(uuid.uuid4())
    response = acme.api.get("/api/v1/me", headers={"X-Request-ID": rid})
    assert response.status_code == 200 and response.headers["X-Request-ID"] == rid


@pytest.mark.parametrize("given", ["", "has space", "x" * 129, "semi;colon", "new\u00e9line"])
def test_an_odd_client_request_id_is_replaced(client, given):
    response = client.get("/healthz", headers={"X-Request-ID": given})
    assert HEX_ID.fullmatch(response.headers["X-Request-ID"])


def test_every_error_body_has_the_request_id(client, acme):
    answers = [
        client.get("/api/v1/me"),  # 401
        client.get("/api/v1/no-such-route"),  # 404 of no route
        acme.api.get(f"/api/v1/records/{uuid.uuid4()}"),  # 404 of a view
        acme.api.post("/api/v1/records", json={"kind": "nope"}),  # 422
        acme.api.post("/api/v1/records", json={"kind": "observation", "data": {"title": "a\u0000"}}),
        client.delete("/healthz"),  # 405
    ]
    for response in answers:
        assert response.status_code >= 400 and response.is_json, response.status_code
        assert response.json["request_id"] == response.headers["X-Request-ID"], response.json
        assert HEX_ID.fullmatch(response.json["request_id"])
    given = client.get("/api/v1/me", headers={"X-Request-ID": "trace-42"})
    assert given.json["request_id"] == "trace-42" == given.headers["X-Request-ID"]


# -- metrics ---------------------------------------------------------------------------------


def test_metrics_are_off_by_default(client):
    response = client.get("/metrics")
    assert response.status_code == 404 and response.json["request_id"]


@pytest.fixture
def metered(app_config):
    app = create_app({**app_config, "METRICS_TOKEN": METRICS_TOKEN})
    yield app
    app.extensions["servq.engine"].dispose()


def scrape(client) -> dict:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    samples["_text"] = response.get_data(as_text=True)
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_need_the_token(metered):
    client = metered.test_client()
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")


def test_metrics_count_requests_by_endpoint_and_status_without_tenant_data(metered, tmp_path):
    from tests.factories import Factory

    client = metered.test_client()
    acme = Factory(metered, client).tenant("acme")
    record_rule = "/api/v1/records/<uuid:record_id>"
    before = scrape(client)
    created = acme.api.post("/api/v1/records", json={"kind": "observation",
                                                      "data": {"title": "Lobby wet", "severity": "low"}})
    assert created.status_code == 201, created.json
    record_id = created.json["id"]
    assert acme.api.get(f"/api/v1/records/{record_id}").status_code == 200
    assert acme.api.get(f"/api/v1/records/{uuid.uuid4()}").status_code == 404

    # Jobs (a tenant export, queued; the deadline scan of each tenant, run by the CLI),
    # the breach watch and an import.
    assert acme.api.post("/api/v1/tenant/exports").status_code == 202
    servq = cli.make_cli(app_factory=lambda: metered)
    assert CliRunner().invoke(servq, ["deadlines", "scan"]).exit_code == 0
    lines = tmp_path / "records.jsonl"
    lines.write_text("".join(json.dumps({"kind": "observation", "data": {"title": f"t{n}"}}) + "\n"
                             for n in range(3)))
    result = CliRunner().invoke(servq, ["records", "import", "--tenant", "acme", str(lines)])
    assert result.exit_code == 0, result.output

    after = scrape(client)
    grew = lambda name, **labels: value(after, name, **labels) - value(before, name, **labels)  # noqa: E731
    assert grew("servq_http_requests_total", method="POST", endpoint="/api/v1/records", status="201") == 1
    assert grew("servq_http_requests_total", method="GET", endpoint=record_rule, status="200") == 1
    assert grew("servq_http_requests_total", method="GET", endpoint=record_rule, status="404") == 1
    assert grew("servq_http_request_duration_seconds_count", method="GET", endpoint=record_rule) == 2
    assert grew("servq_jobs_enqueued_total", job="exports.build") == 1
    assert grew("servq_jobs_finished_total", job="deadlines.scan") >= 1
    assert grew("servq_breach_watch_duration_seconds_count") >= 1
    assert grew("servq_records_imported_total") == 3
    assert ("servq_breach_watch_clocks_scanned_total", ()) in after
    assert ("servq_db_pool_checked_out", ()) in after
    assert value(after, "servq_tenants") == 1
    # Never a raw path, a record id or a tenant id in a label.
    body = after["_text"]
    assert record_id not in body and str(acme.id) not in body and acme.slug not in body


# -- the access log --------------------------------------------------------------------------


@pytest.fixture
def log_lines(capsys):
    """The log lines written to stderr by the test; the log handler is removed after."""
    yield lambda: [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    from servq.core.api.ops import _StdHandler

    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StdHandler)]:
        root.removeHandler(handler)
    logging.getLogger("servq").setLevel(logging.NOTSET)


def test_json_access_log_has_one_line_per_request_with_request_tenant_and_user(app_config, log_lines):
    from tests.factories import Factory

    app = create_app({**app_config, "LOG_FORMAT": "json"})
    try:
        client = app.test_client()
        acme = Factory(app, client).tenant("acme")
        log_lines()  # forget what setting up wrote
        response = acme.api.get("/api/v1/me", headers={"X-Request-ID": "req-1"})
        anonymous = client.get("/api/v1/me")
        lines = [json.loads(line) for line in log_lines()]
    finally:
        app.extensions["servq.engine"].dispose()
    access = [line for line in lines if line["logger"] == "servq.access"]
    assert len(access) == 2, lines
    first, second = access
    assert first["request_id"] == "req-1" == response.headers["X-Request-ID"]
    assert first["tenant_id"] == str(acme.id) and first["user_id"] in response.get_data(as_text=True)
    assert (first["method"], first["path"], first["status"]) == ("GET", "/api/v1/me", 200)
    assert isinstance(first["latency_ms"], float) and first["level"] == "INFO" and first["time"]
    assert second["request_id"] == anonymous.headers["X-Request-ID"] and second["status"] == 401
    assert second["tenant_id"] is None and second["user_id"] is None


def test_plain_access_log_names_the_request_id(app_config, log_lines):
    app = create_app({**app_config, "LOG_FORMAT": "plain"})
    try:
        log_lines()
        response = app.test_client().get("/healthz")
        lines = log_lines()
    finally:
        app.extensions["servq.engine"].dispose()
    assert len(lines) == 1 and "servq.access: GET /healthz 200" in lines[0]
    assert f"request_id={response.headers['X-Request-ID']}" in lines[0]
    with pytest.raises(ValueError):
        json.loads(lines[0])


# -- CORS ------------------------------------------------------------------------------------


def test_cors_is_off_by_default(acme):
    response = acme.api.get("/api/v1/me", headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_allows_the_configured_origins_and_exposes_the_headers_clients_read(app_config):
    from tests.factories import Factory

    app = create_app({**app_config, "CORS_ORIGINS": "https://app.example, https://admin.example"})
    try:
        client = app.test_client()
        acme = Factory(app, client).tenant("acme")
        preflight = client.options("/api/v1/records", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Authorization, If-Match, Content-Type"})
        assert preflight.status_code == 200
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
        allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "if-match", "content-type"} <= allowed
        response = acme.api.get("/api/v1/records", headers={"Origin": "https://admin.example"})
        assert response.headers["Access-Control-Allow-Origin"] == "https://admin.example"
        exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"ETag", "Location", "X-Pagination", "X-Request-ID", "RateLimit-Limit",
                "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"} <= exposed
        other = acme.api.get("/api/v1/records", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
    finally:
        app.extensions["servq.engine"].dispose()


# -- rate limits -----------------------------------------------------------------------------


def test_login_rate_limit_answers_ratelimit_headers_and_retry_after(app_config):
    app = create_app({**app_config, "LOGIN_RATE_LIMIT": "2 per minute"})
    try:
        if app.extensions.get("servq.redis") is not None:
            app.extensions["servq.redis"].flushdb()
        client = app.test_client()
        attempt = lambda: client.post("/api/v1/auth/token", json={  # noqa: E731
            "tenant": "acme", "email": "who@acme.test", "password": "wrong-password"})
        first, second, third = attempt(), attempt(), attempt()
    finally:
        app.extensions["servq.engine"].dispose()
    assert first.status_code == second.status_code == 401
    assert (first.headers["RateLimit-Limit"], first.headers["RateLimit-Remaining"]) == ("2", "1")
    assert (second.headers["RateLimit-Limit"], second.headers["RateLimit-Remaining"]) == ("2", "0")
    assert 1 <= int(first.headers["RateLimit-Reset"]) <= 60
    assert first.headers["RateLimit-Policy"] == "2;w=60"
    assert third.status_code == 429
    assert third.headers["RateLimit-Limit"] == "2" and third.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(third.headers["Retry-After"]) <= 60
    assert third.headers["RateLimit-Reset"] == third.headers["Retry-After"]
    assert third.json["request_id"] == third.headers["X-Request-ID"]


# -- servq db current / history / downgrade --------------------------------------------------


@pytest.fixture
def scratch_database(tmp_path, monkeypatch):
    """An empty database of the suite's kind, named by DATABASE_URL; dropped after."""
    for name in ("DATABASE_URL", "SERVQ_INSTANCE_PATH", "REDIS_URL", "SERVQ_DB_ROLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    if not ON_POSTGRES:
        sqlite3.connect(tmp_path / "scratch.db").close()  # an empty file, never migrated
        url = f"sqlite:///{tmp_path / 'scratch.db'}"
        monkeypatch.setenv("DATABASE_URL", url)
        yield url
        return
    admin = create_engine(make_url(TEST_DATABASE_URL), isolation_level="AUTOCOMMIT")
    name = f"servq_ops_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def servq(*args):
    return CliRunner().invoke(cli.make_cli(), list(args))


def test_db_current_history_and_downgrade(scratch_database):
    from alembic.script import ScriptDirectory

    from servq.core.db.migrate import alembic_config, head_revision

    head = head_revision()
    previous = ScriptDirectory.from_config(alembic_config()).get_revision(head).down_revision
    shown = make_url(scratch_database).render_as_string(hide_password=True)
    empty = servq("db", "current")
    assert empty.exit_code == 0 and "empty (never migrated)" in empty.stdout, empty.output
    assert servq("db", "upgrade").exit_code == 0
    current = servq("db", "current")
    assert current.stdout == f"{shown}: revision {head} (head)\n"

    history = servq("db", "history")
    assert history.exit_code == 0, history.output
    lines = history.stdout.splitlines()
    assert lines[0].startswith(f"{previous} -> {head} (head) (current), ")
    assert lines[-1].startswith("<base> -> 0001, ")

    refused = servq("db", "downgrade", "0003")
    assert refused.exit_code == 1 and "--yes" in refused.stderr and "data" in refused.stderr
    assert servq("db", "current").stdout == current.stdout  # nothing done

    unknown = servq("db", "downgrade", "nope", "--yes")
    assert unknown.exit_code == 1 and unknown.stderr.startswith("error: cannot downgrade to 'nope'")

    down = servq("db", "downgrade", "0003", "--yes")
    assert down.exit_code == 0, down.output
    assert f"downgraded from revision {head} to 0003" in down.stdout
    behind = servq("db", "current")
    assert behind.stdout == f"{shown}: revision 0003; newest is {head}: run 'servq db upgrade'\n"
    assert "0002 -> 0003 (current)" in servq("db", "history").stdout
    # Other commands refuse the database until it is upgraded again.
    assert servq("tenants", "list").exit_code == 1

    again = servq("db", "upgrade")
    assert again.exit_code == 0 and f"upgraded from 0003 to revision {head}" in again.stdout
    assert servq("tenants", "list").exit_code == 0


@pytest.mark.skipif(not ON_POSTGRES, reason="column compression is PostgreSQL's")
def test_large_json_columns_are_compressed_with_lz4(scratch_database):
    """Migration 0015: the JSON columns a bulk import writes most of compress with lz4 (where
    the server has it); downgrading before 0015 gives them back the default."""
    engine = create_engine(scratch_database)
    query = text("SELECT c.relname, a.attname, a.attcompression FROM pg_attribute a "
                 "JOIN pg_class c ON c.oid = a.attrelid WHERE (c.relname, a.attname) IN "
                 "(('records', 'data'), ('audit_events', 'changes'), ('evaluations', 'items'))")
    try:
        with engine.connect() as conn:
            has_lz4 = conn.execute(text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                                        "WHERE name = 'default_toast_compression'")).scalar()
        assert servq("db", "upgrade").exit_code == 0
        with engine.connect() as conn:
            methods = {(table, column): method for table, column, method in conn.execute(query)}
        assert len(methods) == 3
        assert set(methods.values()) == ({"l"} if has_lz4 else {""})
        assert servq("db", "downgrade", "0014", "--yes").exit_code == 0
        with engine.connect() as conn:
            assert {method for _, _, method in conn.execute(query)} == {""}
    finally:
        engine.dispose()


def test_db_current_refuses_a_missing_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SERVQ_INSTANCE_PATH", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'missing.db'}")
    for args in (["db", "current"], ["db", "history"], ["db", "downgrade", "0003", "--yes"]):
        result = servq(*args)
        assert result.exit_code == 1 and result.stderr.startswith("error: no servq database at")
    assert not (tmp_path / "missing.db").exists()
