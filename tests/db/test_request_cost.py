"""What creating a record costs the database, and JSON in and out of the API
(docs/performance.md): the round trips of a request on PostgreSQL, orjson with Flask's
results, bodies loaded by the fast path or by marshmallow alike."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event


@pytest.mark.postgres
@pytest.mark.plain_postgres
def test_creating_an_observation_is_two_round_trips(app, acme):
    from psycopg._connection_base import BaseConnection

    statements, commands = [], []
    engine = app.extensions["servq.engine"]
    real = BaseConnection._exec_command  # psycopg's own BEGIN / COMMIT / ROLLBACK

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()))

    def spy(self, command, *args, **kwargs):
        commands.append(bytes(command))
        return real(self, command, *args, **kwargs)

    # The first request writes the token's last use and caches the tenant's standards.
    acme.api.post("/api/v1/records", json={"kind": "observation", "data": {"title": "First"}})
    event.listen(engine, "before_cursor_execute", seen)
    BaseConnection._exec_command = spy
    try:
        created = acme.api.post("/api/v1/records", json={"kind": "observation",
                                                         "data": {"title": "Wet floor"}})
    finally:
        BaseConnection._exec_command = real
        event.remove(engine, "before_cursor_execute", seen)
    assert created.status_code == 201, created.json
    # BEGIN travels with the RLS context and the (prepared) authentication query (no
    # BEGIN of psycopg's); the record with its audit event (a prepared data-modifying
    # WITH) travels with the COMMIT (none of psycopg's).
    assert len(statements) == 2, statements
    assert statements[0].startswith("SELECT set_config('servq.tenant_id', '")
    assert "; EXECUTE servq_auth_" in statements[0]
    assert statements[1].startswith("EXECUTE servq_insert_")
    assert statements[1].endswith("; COMMIT")
    assert commands == []
    history = acme.api.get(f"/api/v1/records/{created.json['id']}/history")
    assert [entry["action"] for entry in history.json] == ["created"]


@pytest.mark.postgres
def test_authentication_outlives_the_servers_prepared_statements(app, acme):
    """The authentication query and the record's INSERT are prepared on the server once
    per connection. When the server drops them (psycopg's DEALLOCATE ALL after a
    rollback, once it has prepared statements of its own), the next request prepares
    them again, creates its record, and still tells a good token from a revoked one."""
    from psycopg._connection_base import BaseConnection

    commands = []
    real = BaseConnection._exec_command

    def spy(self, command, *args, **kwargs):
        commands.append(bytes(command))
        return real(self, command, *args, **kwargs)

    assert acme.api.post("/api/v1/records", json={
        "kind": "observation", "data": {"title": "Before"}}).status_code == 201
    for n in range(7):  # psycopg prepares the site's INSERT from its sixth use
        assert acme.api.post("/api/v1/sites", json={
            "code": f"S{n}", "name": f"Site {n}"}).status_code == 201
    BaseConnection._exec_command = spy
    try:
        assert acme.api.get("/api/v1/records").status_code == 200  # ends in ROLLBACK
    finally:
        BaseConnection._exec_command = real
    assert b"DEALLOCATE ALL" in commands, commands
    created = acme.api.post("/api/v1/records", json={"kind": "observation",
                                                     "data": {"title": "After"}})
    assert created.status_code == 201, created.json
    assert acme.api.get(f"/api/v1/records/{created.json['id']}").json["data"]["title"] == "After"
    assert acme.api.get("/api/v1/me").status_code == 200
    assert acme.api.delete("/api/v1/auth/token").status_code == 204
    assert acme.api.get("/api/v1/me").status_code == 401


def _begin_with(connection, statement, *args):
    from servq.core.db.fast import driver_begin_with

    connection.begin()  # SQLAlchemy's transaction: psycopg's BEGIN is ours
    return driver_begin_with(connection, "SELECT 1", statement, args)


@pytest.mark.postgres
def test_a_prepared_statement_is_prepared_again_whatever_the_server_holds(app):
    """core.db.fast.driver_begin_with: prepared once per connection; prepared again after the
    server lost it; not prepared twice when the connection's own record of it is lost."""
    from servq.core.db.fast.driver import _PREPARED, prepared

    statement = prepared("test", "SELECT $1::int + 1, $2::text", ("int", "text"))
    engine = app.extensions["servq.engine"]
    with engine.connect() as connection:
        assert _begin_with(connection, statement, 41, "it's") == [(42, "it's")]
        connection.rollback()
        connection.exec_driver_sql("DEALLOCATE ALL")
        connection.commit()
        assert _begin_with(connection, statement, 1, "b") == [(2, "b")]
        connection.rollback()
        connection.connection.info[_PREPARED][1].clear()  # forgets, the server has it
        assert _begin_with(connection, statement, 2, "c") == [(3, "c")]
        assert connection.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements "
                                          "WHERE starts_with(name, 'servq_test_')").scalar() == 1
        connection.rollback()
        connection.exec_driver_sql("SELECT 1")  # a transaction already open: nothing sent
        from servq.core.db.fast import driver_begin_with
        assert driver_begin_with(connection, "SELECT 1", statement, (3, "d")) is None
        connection.rollback()


@pytest.mark.postgres
def test_a_statement_that_cannot_be_prepared_does_not_stop_the_begin(app, monkeypatch):
    """A prepare_on_begin statement the server refuses (a table gone) is left out, on
    this connection for good, and never held back: the BEGIN's own statement runs."""
    import servq.core.db.fast.driver as db

    begin = db.prepared("testbegin", "SELECT $1::int", ("int",))
    broken = db.prepared("testbroken", "SELECT * FROM no_such_table WHERE 1 = $1", ("int",))
    monkeypatch.setitem(db._ON_BEGIN, broken.name, broken)
    engine = app.extensions["servq.engine"]
    with engine.connect() as connection:
        for n in (1, 2):
            assert _begin_with(connection, begin, n) == [(n,)]
            assert broken.name in connection.connection.info[db._PREPARED][2]
            assert not db.driver_defer(connection, broken, [1])
            connection.rollback()


@pytest.mark.postgres
def test_a_held_back_statement_goes_first_with_the_commit_or_not_at_all(app, monkeypatch):
    """core.db.fast.driver_defer: held only right after driver_begin_with; sent before the
    next statement, with the COMMIT otherwise; dropped by a rollback; its error raised
    by the commit, nothing written."""
    from sqlalchemy.exc import DataError

    import servq.core.db.fast.driver as db

    begin = db.prepared("testbegin", "SELECT $1::int", ("int",))
    mark = db.prepared("testmark", "SELECT set_config('servq.test_mark', $1, false)", ("text",))
    divide = db.prepared("testdivide", "SELECT 1 / $1", ("int",))
    for statement in (mark, divide):
        monkeypatch.setitem(db._ON_BEGIN, statement.name, statement)
    engine = app.extensions["servq.engine"]
    sent = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    with engine.connect() as connection:
        def current():
            return connection.exec_driver_sql(
                "SELECT current_setting('servq.test_mark', true)").scalar()

        assert _begin_with(connection, begin, 1) == [(1,)]  # prepares mark and divide
        assert db.driver_defer(connection, mark, ["first"])
        assert current() == "first"  # sent before the statement that came next
        assert not db.driver_defer(connection, mark, ["late"])  # not right after BEGIN
        connection.commit()

        event.listen(engine, "before_cursor_execute", seen)
        try:
            _begin_with(connection, begin, 2)
            assert db.driver_defer(connection, mark, ["with commit"])
            connection.commit()
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        assert sent[-1].startswith("EXECUTE servq_testmark_") and sent[-1].endswith("; COMMIT")
        assert current() == "with commit"
        connection.commit()

        _begin_with(connection, begin, 3)
        assert db.driver_defer(connection, mark, ["rolled back"])
        connection.rollback()
        assert current() == "with commit"
        connection.commit()

        _begin_with(connection, begin, 4)
        assert db.driver_defer(connection, mark, ["never"])
        assert db.driver_defer(connection, divide, [0])
        with pytest.raises(DataError, match="division by zero"):
            connection.commit()
        connection.rollback()  # what SQLAlchemy asks after a failed commit
        assert current() == "with commit"  # rolled back as a whole: the connection goes on
        connection.commit()


def test_the_rls_context_and_the_audit_event_hold_without_the_shortcuts(app, acme, globex):
    """Records created through the one-round-trip paths are the tenant's alone and
    carry their audit event, on either backend."""
    created = acme.api.post("/api/v1/records", json={"kind": "observation", "data": {"title": "A"}})
    assert created.status_code == 201
    record_id = created.json["id"]
    assert globex.api.get(f"/api/v1/records/{record_id}").status_code == 404
    assert globex.api.get(f"/api/v1/records/{record_id}/history").status_code == 404
    assert acme.api.get(f"/api/v1/records/{record_id}/history").json[0]["action"] == "created"
    assert [r["id"] for r in globex.api.get("/api/v1/records").json] == []


def test_responses_are_utf8_json_with_the_same_values(acme):
    title = "您好，前台地面有水"
    created = acme.api.post("/api/v1/records", json={"kind": "observation", "data": {"title": title}})
    assert created.status_code == 201
    assert created.headers["Content-Type"] == "application/json"
    assert title.encode("utf-8") in created.data
    assert json.loads(created.data)["data"]["title"] == title
    fetched = acme.api.get(f"/api/v1/records/{created.json['id']}")
    assert json.loads(fetched.data) == json.loads(created.data)


@pytest.mark.parametrize("raw, field", [
    # Python's parser accepts NaN and integers beyond 64 bits, orjson does not: the body
    # is still read, and the kind's schema words the error as before.
    ('{"kind": "observation", "data": {"title": "x", "severity": NaN}}', "severity"),
    ('{"kind": "observation", "data": {"title": "x", "severity": 123456789012345678901234567890}}',
     "severity"),
])
def test_bodies_orjson_refuses_are_parsed_as_before(acme, raw, field):
    response = acme.api.client.post("/api/v1/records", data=raw, headers=acme.api._headers(
        {"Content-Type": "application/json"}))
    assert response.status_code == 422, response.json
    assert field in response.json["errors"]["json"]["data"]


def test_long_integers_in_a_body_stay_exact(app):
    big = 123456789012345678901234567890
    with app.app_context():
        assert app.json.loads(f'{{"n": {big}, "m": [-{big}], "x": 1.5}}') == {"n": big, "m": [-big], "x": 1.5}
        assert app.json.loads(b'{"n": 9223372036854775807}') == {"n": 9223372036854775807}


def test_not_json_is_still_a_clear_400(acme):
    response = acme.api.client.post("/api/v1/records", data="{not json", headers=acme.api._headers(
        {"Content-Type": "application/json"}))
    assert response.status_code == 400
    assert response.is_json


@pytest.mark.parametrize("body, path", [
    ({"kind": "observation", "data": {"title": "x"}, "tenant_id": "x"}, ("tenant_id",)),
    ({"kind": "", "data": {"title": "x"}}, ("kind",)),
    ({"kind": "observation", "occurred_at": "2026-11-21T10:00:00"}, ("occurred_at",)),
    ({"kind": "observation", "data": {"title": "x"}, "status": 3}, ("status",)),
    ({"kind": "observation", "data": ["title"]}, ("data",)),
])
def test_bodies_the_fast_path_declines_get_marshmallows_errors(acme, body, path):
    from servq.core.records.pipeline import RecordInputSchema
    from marshmallow import ValidationError

    with pytest.raises(ValidationError) as expected:
        RecordInputSchema().load(body)
    response = acme.api.post("/api/v1/records", json=body)
    assert response.status_code == 422
    assert response.json["errors"]["json"] == expected.value.messages
    assert path[0] in response.json["errors"]["json"]


def test_the_openapi_document_is_built_on_first_read_with_every_route(app, client):
    api = app.extensions["servq.api"]
    assert api._pending_docs, "documented at registration instead of on first read"
    document = client.get("/api/v1/openapi.json").json
    assert not api._pending_docs
    assert "/api/v1/records" in document["paths"] and "/api/v1/kpis" in document["paths"]
    assert {tag["name"] for tag in document["tags"]} >= {"records", "kpis"}
