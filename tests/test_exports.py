"""Tenant data exports over HTTP: requested, built by a job (inline or rq), downloaded."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import select

from servq.core.jobs import make_worker, run_job
from servq.core.models import TenantExport, Token, User

URL = "/api/v1/tenant/exports"


def drain(app) -> None:
    """Run every queued job (with Redis); inline jobs have run already."""
    if app.extensions["servq.queue"] is not None:
        make_worker(app).work(burst=True)


def test_export_end_to_end(app, acme):
    r = acme.api.post(URL)
    assert r.status_code == 202, r.json
    export = r.json
    assert export["links"] == {"self": f"{URL}/{export['id']}", "file": f"{URL}/{export['id']}/file"}
    queue = app.extensions["servq.queue"]
    if queue is not None:
        # With Redis the job waits for a worker, under the export's id, with JSON args.
        assert export["status"] == "queued"
        assert acme.api.get(export["links"]["self"]).json["status"] == "queued"
        assert acme.api.get(export["links"]["file"]).status_code == 409
        job = Job.fetch(export["id"], connection=queue.connection, serializer=JSONSerializer)
        assert (job.func_name, job.args) == ("exports.build", [str(acme.id), export["id"]])
        drain(app)
    r = acme.api.get(export["links"]["self"])
    assert r.status_code == 200
    status = r.json
    assert status["status"] == "done" and status["error"] is None
    assert status["started_at"] and status["finished_at"] and status["row_count"] > 0

    r = acme.api.get(export["links"]["file"])
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="servq-export-acme-')
    doc = r.json
    assert doc["format"] == "servq-export" and doc["version"] == 1
    assert doc["tenant"]["id"] == str(acme.id) and doc["tenant"]["slug"] == "acme"
    assert [u["email"] for u in doc["users"]] == ["owner@acme.test"]
    assert sum(len(rows) for rows in doc["tables"].values()) == status["row_count"]
    assert export["id"] in {row["id"] for row in doc["tables"]["tenant_exports"]}


def test_inline_without_redis(app, acme):
    app.extensions["servq.queue"] = None  # the embedded default: no REDIS_URL
    r = acme.api.post(URL)
    assert r.status_code == 202
    # The job ran right after the request committed, in the same process.
    assert r.json["status"] == "done"
    assert acme.api.get(r.json["links"]["self"]).json["status"] == "done"
    assert acme.api.get(r.json["links"]["file"]).json["tenant"]["id"] == str(acme.id)


@pytest.mark.redis
def test_redis_leaves_job_queued_until_a_worker_runs(app, acme):
    queue = app.extensions["servq.queue"]
    r = acme.api.post(URL)
    assert r.json["status"] == "queued"
    assert queue.count == 1
    assert acme.api.get(r.json["links"]["self"]).json["started_at"] is None
    make_worker(app).work(burst=True)
    assert queue.count == 0
    assert acme.api.get(r.json["links"]["self"]).json["status"] == "done"


def test_export_leaves_out_secrets(app, acme):
    first = acme.api.post(URL).json
    second = acme.api.post(URL).json
    drain(app)
    doc = acme.api.get(f"{URL}/{second['id']}/file").json
    assert doc["tables"]["tokens"], "the owner's token is exported"
    for row in doc["tables"]["tokens"]:
        assert "token_hash" not in row
    exports = {row["id"]: row for row in doc["tables"]["tenant_exports"]}
    assert first["id"] in exports and "content" not in exports[first["id"]]
    for user in doc["users"]:
        assert "password_hash" not in user
    with acme.session() as s:
        hashes = list(s.scalars(select(Token.token_hash))) + [
            s.scalar(select(User.password_hash).where(User.email == "owner@acme.test"))]
    text = json.dumps(doc)
    for secret in hashes:
        assert secret not in text


def test_run_export_is_idempotent(app, acme):
    export_id = acme.api.post(URL).json["id"]
    drain(app)
    with acme.session() as s:
        before = s.scalar(select(TenantExport).where(TenantExport.id == uuid.UUID(export_id)))
    with app.app_context():
        assert run_job("exports.build", str(acme.id), export_id) == "done"
    with acme.session() as s:
        after = s.scalar(select(TenantExport).where(TenantExport.id == uuid.UUID(export_id)))
    assert after.finished_at == before.finished_at and after.content == before.content
    assert json.loads(gzip.decompress(after.content))["tenant"]["slug"] == "acme"


def test_file_is_409_until_done(acme):
    with acme.session() as s:
        queued = TenantExport(status="queued")
        failed = TenantExport(status="failed", error="RuntimeError: disk full")
        s.add_all([queued, failed])
        s.commit()
    r = acme.api.get(f"{URL}/{queued.id}/file")
    assert r.status_code == 409 and "queued" in r.json["message"]
    r = acme.api.get(f"{URL}/{failed.id}/file")
    assert r.status_code == 409 and "disk full" in r.json["message"]


def test_list_is_paginated_newest_first(app, acme):
    ids = [acme.api.post(URL).json["id"] for _ in range(3)]
    drain(app)
    r = acme.api.get(URL, query_string={"page_size": 2})
    assert r.status_code == 200
    assert [e["id"] for e in r.json] == ids[::-1][:2]
    meta = json.loads(r.headers["X-Pagination"])
    assert meta["total"] == 3 and meta["next_page"] == 2
    assert [e["id"] for e in acme.api.get(URL, query_string={"page": 2, "page_size": 2}).json] == ids[:1]
    assert acme.api.get(URL, query_string={"page_size": 0}).status_code == 422


@pytest.mark.cross_tenant("GET /api/v1/tenant/exports/<uuid:export_id>",
                          "GET /api/v1/tenant/exports/<uuid:export_id>/file",
                          "GET /api/v1/tenant/exports")
def test_exports_cross_tenant(app, acme, globex):
    export = acme.api.post(URL).json
    drain(app)
    assert globex.api.get(export["links"]["self"]).status_code == 404
    assert globex.api.get(export["links"]["file"]).status_code == 404
    assert globex.api.get(URL).json == []
    assert acme.api.get(export["links"]["self"]).json["status"] == "done"
    assert acme.api.get(f"{URL}/{uuid.uuid4()}").status_code == 404
    assert acme.api.get(f"{URL}/not-a-uuid").status_code == 404


@pytest.mark.cross_tenant("POST /api/v1/tenant/exports")
def test_an_export_holds_the_callers_tenant_alone(app, acme, globex):
    site = acme.api.post("/api/v1/sites", json={"code": "HQ", "name": "Acme secret HQ"}).json
    ours = acme.api.post(URL).json
    theirs = globex.api.post(URL)
    assert theirs.status_code == 202, theirs.json
    drain(app)
    doc = globex.api.get(theirs.json["links"]["file"]).json
    assert doc["tenant"]["slug"] == "globex"
    assert [u["email"] for u in doc["users"]] == ["owner@globex.test"]
    assert doc["tables"].get("sites", []) == []
    assert {row["id"] for row in doc["tables"]["tenant_exports"]} == {theirs.json["id"]}
    assert "Acme secret HQ" not in globex.api.get(theirs.json["links"]["file"]).get_data(as_text=True)
    # acme's export is its own, untouched by globex's.
    assert [e["id"] for e in acme.api.get(URL).json] == [ours["id"]]
    mine = acme.api.get(ours["links"]["file"]).json
    assert [row["id"] for row in mine["tables"]["sites"]] == [site["id"]]


def test_exports_need_admin(app, acme):
    manager = acme.as_role("manager")
    assert manager.post(URL).status_code == 403
    assert manager.get(URL).status_code == 403
    export = acme.as_role("admin").post(URL)
    assert export.status_code == 202
    assert manager.get(export.json["links"]["file"]).status_code == 403
    assert acme.api.client.post(URL).status_code == 401
    with acme.session() as s:
        assert len(list(s.scalars(select(TenantExport.id)))) == 1
