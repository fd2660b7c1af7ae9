"""Staff: CRUD, references to sites and members, filters, ETags, audit and isolation."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from servq.core.db import utcnow
from servq.core.models import AuditEvent, Record, Staff

S = "/api/v1/staff"


def site(api, code="HQ"):
    return api.post("/api/v1/sites", json={"code": code, "name": code}).json["id"]


def test_staff_crud(acme):
    site_id = site(acme.api)
    user_id = acme.api.get("/api/v1/members").json[0]["user_id"]
    r = acme.api.post(S, json={"code": "E01", "name": "Eve", "title": "Engineer",
                               "site_id": site_id, "user_id": user_id})
    assert r.status_code == 201, r.json
    staff = r.json
    assert staff["site_id"] == site_id and staff["user_id"] == user_id and staff["active"] is True
    url = f"{S}/{staff['id']}"
    r = acme.api.get(url)
    assert r.status_code == 200 and r.headers["ETag"] and r.json["title"] == "Engineer"
    r = acme.api.update(url, {"name": "Eve Li", "site_id": None})
    assert r.status_code == 200 and r.json["name"] == "Eve Li" and r.json["site_id"] is None
    assert acme.api.patch(url, json={"name": "X"}).status_code == 428
    assert acme.api.patch(url, json={"name": "X"}, etag='"stale"').status_code == 412
    assert acme.api.delete(url).status_code == 428
    assert acme.api.remove(url).status_code == 204
    assert acme.api.get(url).status_code == 404
    with acme.session() as s:
        actions = s.scalars(select(AuditEvent.action).where(
            AuditEvent.entity == "staff", AuditEvent.entity_id == uuid.UUID(staff["id"]))).all()
        assert sorted(actions) == ["changed", "created", "deleted"]


def test_staff_list_filters_and_pages(acme):
    a, b = site(acme.api, "A"), site(acme.api, "B")
    for code, name, site_id, active in [("S1", "Ann", a, True), ("S2", "Bob", a, False),
                                        ("S3", "Cat", b, True)]:
        assert acme.api.post(S, json={"code": code, "name": name, "site_id": site_id,
                                      "active": active}).status_code == 201
    codes = lambda **q: [s["code"] for s in acme.api.get(S, query_string=q).json]  # noqa: E731
    assert codes() == ["S1", "S2", "S3"]
    assert codes(site_id=a) == ["S1", "S2"]
    assert codes(active="false") == ["S2"]
    assert codes(q="ca") == ["S3"]
    assert codes(site_id=a, active="true") == ["S1"]
    r = acme.api.get(S, query_string={"page_size": 2, "page": 2})
    assert [s["code"] for s in r.json] == ["S3"]
    meta = json.loads(r.headers["X-Pagination"])
    assert meta["total"] == 3 and meta["previous_page"] == 1 and meta["next_page"] is None
    assert acme.api.get(S, query_string={"site_id": "nope"}).status_code == 422


def test_duplicate_code_is_409(acme):
    first = acme.api.post(S, json={"code": "D1", "name": "One"}).json
    r = acme.api.post(S, json={"code": "D1", "name": "Two"})
    assert r.status_code == 409 and "D1" in r.json["message"]
    other = acme.api.post(S, json={"code": "D2", "name": "Two"}).json
    assert acme.api.update(f"{S}/{other['id']}", {"code": "D1"}).status_code == 409
    assert acme.api.update(f"{S}/{first['id']}", {"code": "D1", "name": "Same"}).status_code == 200


@pytest.mark.cross_tenant("POST /api/v1/staff")
def test_references_must_be_this_tenants(acme, globex):
    foreign_site = site(globex.api)
    foreign_user = globex.api.get("/api/v1/members").json[0]["user_id"]
    r = acme.api.post(S, json={"code": "X", "name": "X", "site_id": foreign_site})
    assert r.status_code == 422 and "site_id" in r.json["errors"]["json"]
    r = acme.api.post(S, json={"code": "X", "name": "X", "site_id": str(uuid.uuid4())})
    assert r.status_code == 422 and "site_id" in r.json["errors"]["json"]
    r = acme.api.post(S, json={"code": "X", "name": "X", "user_id": foreign_user})
    assert r.status_code == 422 and "user_id" in r.json["errors"]["json"]
    staff = acme.api.post(S, json={"code": "X", "name": "X"}).json
    r = acme.api.update(f"{S}/{staff['id']}", {"site_id": foreign_site})
    assert r.status_code == 422 and "site_id" in r.json["errors"]["json"]
    assert acme.api.get(f"{S}/{staff['id']}").json["site_id"] is None
    assert [s["code"] for s in acme.api.get(S).json] == ["X"]


def test_delete_referenced_staff_is_409(acme):
    staff = acme.api.post(S, json={"code": "R1", "name": "Rita"}).json
    with acme.session() as s:
        s.add(Record(kind="observation", staff_id=uuid.UUID(staff["id"]), occurred_at=utcnow(),
                     deleted_at=utcnow()))
        s.commit()
    r = acme.api.remove(f"{S}/{staff['id']}")
    assert r.status_code == 409 and "active" in r.json["message"]
    assert acme.api.get(f"{S}/{staff['id']}").status_code == 200
    assert acme.api.update(f"{S}/{staff['id']}", {"active": False}).json["active"] is False


def test_staff_permissions(acme):
    staff = acme.api.post(S, json={"code": "P1", "name": "Pat"}).json
    url = f"{S}/{staff['id']}"
    for role in ("viewer", "agent", "inspector"):
        api = acme.as_role(role)
        assert api.get(S).status_code == 200
        assert api.get(url).status_code == 200
        assert api.post(S, json={"code": f"N{role}", "name": "N"}).status_code == 403
        assert api.update(url, {"name": "N"}).status_code == 403
        assert api.remove(url).status_code == 403
    manager = acme.as_role("manager")
    assert manager.update(url, {"name": "Pat Lee"}).status_code == 200


@pytest.mark.cross_tenant("GET /api/v1/staff/<uuid:staff_id>",
                          "PATCH /api/v1/staff/<uuid:staff_id>",
                          "DELETE /api/v1/staff/<uuid:staff_id>",
                          "GET /api/v1/staff")
def test_staff_cross_tenant(acme, globex):
    staff = acme.api.post(S, json={"code": "C1", "name": "Cy"}).json
    url = f"{S}/{staff['id']}"
    assert globex.api.get(url).status_code == 404
    assert globex.api.patch(url, json={"name": "x"}, etag="*").status_code == 404
    assert globex.api.delete(url, etag="*").status_code == 404
    assert globex.api.get(S).json == []
    assert acme.api.get(url).json["name"] == "Cy"
    with globex.session() as s:
        assert s.scalar(select(Staff.id)) is None


def test_tenant_id_in_body_rejected(acme, globex):
    r = acme.api.post(S, json={"code": "T", "name": "T", "tenant_id": str(globex.id)})
    assert r.status_code == 422 and "tenant_id" in r.json["errors"]["json"]
    staff = acme.api.post(S, json={"code": "T", "name": "T"}).json
    r = acme.api.update(f"{S}/{staff['id']}", {"tenant_id": str(globex.id)})
    assert r.status_code == 422 and "tenant_id" in r.json["errors"]["json"]
