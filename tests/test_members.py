"""Members: adding people, roles, the owner rules, tokens, audit and tenant isolation."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from servq.core.models import AuditEvent, Membership, Token, User
from tests.factories import PASSWORD, ApiClient

M = "/api/v1/members"


def login(client, tenant: str, email: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/token", json={"tenant": tenant, "email": email, "password": password})


def member_url(api, email):
    members = api.get(M, query_string={"page_size": 500}).json
    return f"{M}/{next(m['id'] for m in members if m['email'] == email)}"


def test_add_new_user_who_can_log_in(acme, client):
    r = acme.api.post(M, json={"email": "Ann@Acme.test", "role": "inspector", "name": "Ann",
                               "password": "s3cret-pass"})
    assert r.status_code == 201, r.json
    member = r.json
    assert member["email"] == "ann@acme.test" and member["role"] == "inspector"
    assert member["name"] == "Ann" and member["user_id"]
    assert "password" not in member and "password_hash" not in member
    assert login(client, "acme", "ann@acme.test", "s3cret-pass").status_code in (200, 201)

    r = acme.api.get(M)
    assert r.status_code == 200
    assert [m["email"] for m in r.json] == ["ann@acme.test", "owner@acme.test"]
    assert json.loads(r.headers["X-Pagination"])["total"] == 2
    assert all(set(m) >= {"id", "email", "name", "role", "user_id", "created_at"} for m in r.json)
    assert not any("password" in key for m in r.json for key in m)
    assert acme.api.get(M, query_string={"role": "owner"}).json[0]["email"] == "owner@acme.test"
    r = acme.api.get(M, query_string={"page_size": 1, "page": 2})
    assert [m["email"] for m in r.json] == ["owner@acme.test"]

    with acme.session() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.entity == "memberships",
                                                  AuditEvent.action == "created"))
        assert event.changes["role"] == [None, "inspector"]
        assert "password" not in json.dumps(event.changes)


def test_password_rules(acme):
    r = acme.api.post(M, json={"email": "short@acme.test", "role": "viewer", "password": "1234567"})
    assert r.status_code == 422 and "password" in r.json["errors"]["json"]
    r = acme.api.post(M, json={"email": "not-an-email", "role": "viewer"})
    assert r.status_code == 422 and "email" in r.json["errors"]["json"]
    r = acme.api.post(M, json={"email": "x@acme.test", "role": "emperor"})
    assert r.status_code == 422 and "role" in r.json["errors"]["json"]
    assert len(acme.api.get(M).json) == 1


@pytest.mark.cross_tenant("POST /api/v1/members")
def test_existing_user_gets_membership_only(acme, globex, client):
    email = globex.add_user("manager", "shared@example.test")
    r = acme.api.post(M, json={"email": email, "role": "agent", "name": "Other name"})
    assert r.status_code == 201, r.json
    assert r.json["name"] == "shared"  # an existing account keeps its own name
    # Their password stays theirs: nobody else may set it.
    r = acme.api.post(M, json={"email": email, "role": "agent", "password": "takeover-pass"})
    assert r.status_code == 422
    assert login(client, "acme", email).status_code in (200, 201)
    r = acme.api.post(M, json={"email": email.upper(), "role": "viewer"})
    assert r.status_code == 409
    with acme.session() as s:
        assert len(s.scalars(select(User).where(User.email == email)).all()) == 1


def test_member_get_patch_delete(acme, client):
    created = acme.api.post(M, json={"email": "bob@acme.test", "role": "agent",
                                     "password": "bob-password"}).json
    url = f"{M}/{created['id']}"
    r = acme.api.get(url)
    assert r.status_code == 200 and r.headers["ETag"] and r.json["email"] == "bob@acme.test"
    assert acme.api.patch(url, json={"role": "manager"}).status_code == 428
    assert acme.api.patch(url, json={"role": "manager"}, etag='"stale"').status_code == 412
    r = acme.api.update(url, {"role": "manager", "name": "Bob"})
    assert r.status_code == 200 and r.json["role"] == "manager" and r.json["name"] == "Bob"
    assert acme.api.update(url, {"email": "x@acme.test"}).status_code == 422

    token = login(client, "acme", "bob@acme.test", "bob-password").json["token"]
    bob = ApiClient(client, token)
    assert bob.get("/api/v1/sites").status_code == 200

    staff = acme.api.post("/api/v1/staff", json={"code": "B1", "name": "Bob",
                                                 "user_id": created["user_id"]}).json
    assert acme.api.delete(url).status_code == 428
    assert acme.api.remove(url).status_code == 204
    assert acme.api.get(f"/api/v1/staff/{staff['id']}").json["user_id"] is None
    assert acme.api.get(url).status_code == 404
    assert bob.get("/api/v1/sites").status_code == 401
    with acme.session() as s:
        assert s.scalar(select(Token).where(Token.membership_id == uuid.UUID(created["id"]))) is None
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.entity == "memberships")).all()
        assert sorted(actions) == ["changed", "created", "deleted"]
        # The account survives: it may belong to other tenants.
        s.set_tenant(None)
        assert s.scalar(select(User.id).where(User.email == "bob@acme.test")) is not None


def test_only_admins_and_owners(acme):
    for role in ("viewer", "agent", "manager"):
        api = acme.as_role(role)
        assert api.get(M).status_code == 403
        assert api.post(M, json={"email": f"{role}x@acme.test", "role": "viewer"}).status_code == 403
        assert api.get(member_url(acme.api, "owner@acme.test")).status_code == 403
    admin = acme.as_role("admin")
    assert admin.get(M).status_code == 200
    assert admin.post(M, json={"email": "v@acme.test", "role": "viewer"}).status_code == 201


def test_admin_cannot_touch_owner_role(acme):
    admin = acme.as_role("admin")
    assert admin.post(M, json={"email": "boss@acme.test", "role": "owner"}).status_code == 403
    viewer_url = f"{M}/{admin.post(M, json={'email': 'v@acme.test', 'role': 'viewer'}).json['id']}"
    assert admin.update(viewer_url, {"role": "owner"}).status_code == 403
    owner_url = member_url(acme.api, "owner@acme.test")
    assert admin.update(owner_url, {"role": "viewer"}).status_code == 403
    assert admin.remove(owner_url).status_code == 403
    assert acme.api.get(owner_url).json["role"] == "owner"
    assert acme.api.get(viewer_url).json["role"] == "viewer"
    # An owner may make someone else owner.
    assert acme.api.update(viewer_url, {"role": "owner"}).json["role"] == "owner"


def test_last_owner_is_protected(acme):
    owner_url = member_url(acme.api, "owner@acme.test")
    r = acme.api.update(owner_url, {"role": "admin"})
    assert r.status_code == 409 and "last owner" in r.json["message"]
    assert acme.api.remove(owner_url).status_code == 409
    assert acme.api.get(owner_url).json["role"] == "owner"
    second = acme.api.post(M, json={"email": "co@acme.test", "role": "owner"}).json
    assert acme.api.update(owner_url, {"role": "admin"}).json["role"] == "admin"
    # The first owner is now an admin (403 on owners); the second, the last owner, may
    # not leave either.
    second_url = f"{M}/{second['id']}"
    assert acme.api.remove(second_url).status_code == 403
    co = ApiClient(acme.api.client, acme.factory.token(acme.id, "co@acme.test"))
    assert co.remove(second_url).status_code == 409
    assert co.update(second_url, {"role": "viewer"}).status_code == 409
    assert co.update(owner_url, {"role": "owner"}).json["role"] == "owner"
    assert co.remove(second_url).status_code == 204


@pytest.mark.cross_tenant("GET /api/v1/members/<uuid:membership_id>",
                          "PATCH /api/v1/members/<uuid:membership_id>",
                          "DELETE /api/v1/members/<uuid:membership_id>",
                          "GET /api/v1/members")
def test_members_cross_tenant(acme, globex):
    created = acme.api.post(M, json={"email": "c@acme.test", "role": "agent"}).json
    url = f"{M}/{created['id']}"
    assert globex.api.get(url).status_code == 404
    assert globex.api.patch(url, json={"role": "viewer"}, etag="*").status_code == 404
    assert globex.api.delete(url, etag="*").status_code == 404
    assert [m["email"] for m in globex.api.get(M).json] == ["owner@globex.test"]
    assert acme.api.get(url).json["role"] == "agent"
    with globex.session() as s:
        assert s.scalar(select(Membership.id).where(Membership.id == uuid.UUID(created["id"]))) is None


def test_tenant_id_in_body_rejected(acme, globex):
    r = acme.api.post(M, json={"email": "t@acme.test", "role": "viewer", "tenant_id": str(globex.id)})
    assert r.status_code == 422 and "tenant_id" in r.json["errors"]["json"]
    r = acme.api.update(member_url(acme.api, "owner@acme.test"), {"tenant_id": str(globex.id)})
    assert r.status_code == 422 and "tenant_id" in r.json["errors"]["json"]
