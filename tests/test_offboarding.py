"""Offboarding: a tenant's export holds all of its rows and nobody else's; deleting the
tenant removes every one of its rows and leaves the other tenants untouched."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from servq.core.db.session import new_session
from servq.core.db import Base, tenant_tables
from servq.core.jobs import make_worker
from servq.core.models import User
from servq.tenants.offboarding import delete_tenant
from tests.factories import PASSWORD

#: Tables the test fills for each tenant; every one must hold rows before the export.
POPULATED = {"audit_events", "memberships", "records", "sites", "staff", "tenant_exports",
             "tenant_plugins", "tokens"}


def drain(app) -> None:
    if app.extensions["servq.queue"] is not None:
        make_worker(app).work(burst=True)


def owner_engine(app, database):
    """A connection that no tenant filter or row-level security narrows."""
    return database["engine"] if database["kind"] == "postgresql" else app.extensions["servq.engine"]


def counts(engine, tenant_id) -> dict[str, int]:
    """Rows of ``tenant_id`` per tenant-owned table, counted in SQL."""
    out = {}
    with engine.connect() as conn:
        for name in tenant_tables():
            table = Base.metadata.tables[name]
            out[name] = conn.scalar(select(func.count()).select_from(table)
                                    .where(table.c.tenant_id == tenant_id))
    return out


def row_ids(engine, tenant_id) -> set[str]:
    ids = set()
    with engine.connect() as conn:
        for name in tenant_tables():
            table = Base.metadata.tables[name]
            ids |= {str(i) for i in conn.scalars(select(table.c.id).where(table.c.tenant_id == tenant_id))}
    return ids


def populate(app, tenant, tag: str) -> str:
    """Rows in every table for ``tenant``, through the API where it exists (plugin
    settings straight in the database: no industry plugin is loaded in these tests).

    :return: the email of a second member.
    """
    api = tenant.api
    site = api.post("/api/v1/sites", json={"code": f"{tag}-1", "name": f"{tag} site"})
    assert site.status_code == 201, site.json
    site = site.json
    assert api.update(f"/api/v1/sites/{site['id']}", {"name": f"{tag} main site"}).status_code == 200
    staff = api.post("/api/v1/staff", json={"code": f"{tag}-ST", "name": f"{tag} staff",
                                            "site_id": site["id"]})
    assert staff.status_code == 201, staff.json
    record = api.post("/api/v1/records", json={
        "kind": "observation", "site_id": site["id"], "staff_id": staff.json["id"],
        "occurred_at": "2026-03-01T09:00:00+08:00", "data": {"title": f"{tag} lobby dusty"}})
    assert record.status_code == 201, record.json
    member = f"inspector@{tag.lower()}.example"
    r = api.post("/api/v1/members", json={"email": member, "role": "inspector", "name": "Ines",
                                          "password": PASSWORD})
    assert r.status_code == 201, r.json
    r = tenant.factory.client.post("/api/v1/auth/token", json={
        "tenant": tenant.slug, "email": member, "password": PASSWORD})
    assert r.status_code == 201, r.json
    tenant.enable("hotel", {"stars": 4})
    assert api.post("/api/v1/tenant/exports").status_code == 202
    drain(app)
    return member


@pytest.fixture
def two_tenants(app, acme, globex):
    acme_member = populate(app, acme, "A")
    populate(app, globex, "G")
    # A person in both tenants: deleting acme must not delete their account.
    r = globex.api.post("/api/v1/members", json={"email": acme_member, "role": "viewer"})
    assert r.status_code == 201, r.json
    return acme, globex, acme_member


def test_export_holds_every_row_of_the_tenant_and_nothing_else(app, database, two_tenants):
    acme, globex, _ = two_tenants
    r = acme.api.post("/api/v1/tenant/exports")
    drain(app)
    r = acme.api.get(r.json["links"]["file"])
    assert r.status_code == 200
    doc = r.json

    engine = owner_engine(app, database)
    expected = counts(engine, acme.id)
    assert {name for name, n in expected.items() if n} >= POPULATED, expected
    assert {name: len(rows) for name, rows in doc["tables"].items()} == expected
    exported_ids = {row["id"] for rows in doc["tables"].values() for row in rows}
    assert exported_ids == row_ids(engine, acme.id)
    for rows in doc["tables"].values():
        assert {row["tenant_id"] for row in rows} <= {str(acme.id)}
    assert doc["tables"]["tenant_plugins"][0]["configuration"] == {"stars": 4}
    assert len(doc["users"]) == expected["memberships"]

    text = json.dumps(doc)
    assert str(globex.id) not in text
    assert not any(row_id in text for row_id in row_ids(engine, globex.id))
    assert "owner@globex.test" not in text


def test_delete_tenant_removes_every_row(app, database, two_tenants):
    acme, globex, shared_member = two_tenants
    engine = owner_engine(app, database)
    before = counts(engine, acme.id)
    globex_before = counts(engine, globex.id)
    globex_ids = row_ids(engine, globex.id)

    deleted = delete_tenant(app, acme.id)

    assert {name: deleted[name] for name in before} == before
    assert deleted["tenants"] == 1
    assert deleted["users"] == 1  # acme's owner; the shared member stays
    # Nothing of acme's is left, seen without any filter (the owner) …
    assert counts(engine, acme.id) == dict.fromkeys(tenant_tables(), 0)
    # … nor from a session scoped to acme (row-level security on PostgreSQL).
    with new_session(app, acme.id) as s:
        for name in tenant_tables():
            table = Base.metadata.tables[name]
            assert s.scalar(select(func.count()).select_from(table)
                            .where(table.c.tenant_id == acme.id)) == 0, name
    with engine.connect() as conn:
        tenants = Base.metadata.tables["tenants"]
        assert conn.scalar(select(func.count()).select_from(tenants).where(tenants.c.id == acme.id)) == 0
    with new_session(app) as s:
        emails = set(s.scalars(select(User.email)))
    assert "owner@acme.test" not in emails and shared_member in emails

    # globex is untouched and still works.
    assert counts(engine, globex.id) == globex_before
    assert row_ids(engine, globex.id) == globex_ids
    assert [s["code"] for s in globex.api.get("/api/v1/sites").json] == ["G-1"]
    assert acme.api.get("/api/v1/sites").status_code == 401


def test_delete_unknown_tenant(app, acme):
    with pytest.raises(LookupError):
        delete_tenant(app, uuid.uuid4())
    assert acme.api.get("/api/v1/sites").status_code == 200
