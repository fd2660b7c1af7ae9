"""Sites: CRUD, ETags, permissions and tenant isolation."""

import pytest


def test_site_crud(acme):
    r = acme.api.post("/api/v1/sites", json={"code": "HQ", "name": "Head office"})
    assert r.status_code == 201, r.json
    site = r.json
    assert site["code"] == "HQ" and site["active"] is True
    r = acme.api.get(f"/api/v1/sites/{site['id']}")
    assert r.status_code == 200 and r.headers["ETag"]
    r = acme.api.update(f"/api/v1/sites/{site['id']}", {"name": "Main office"})
    assert r.status_code == 200 and r.json["name"] == "Main office"
    r = acme.api.get("/api/v1/sites")
    assert [s["name"] for s in r.json] == ["Main office"]
    assert '"total": 1' in r.headers["X-Pagination"]
    r = acme.api.remove(f"/api/v1/sites/{site['id']}")
    assert r.status_code == 204
    assert acme.api.get(f"/api/v1/sites/{site['id']}").status_code == 404


def test_site_needs_if_match(acme):
    site = acme.api.post("/api/v1/sites", json={"code": "A", "name": "A"}).json
    url = f"/api/v1/sites/{site['id']}"
    assert acme.api.patch(url, json={"name": "B"}).status_code == 428
    assert acme.api.patch(url, json={"name": "B"}, etag='"stale"').status_code == 412
    assert acme.api.delete(url).status_code == 428
    assert acme.api.get(url).json["name"] == "A"


@pytest.mark.cross_tenant("GET /api/v1/sites/<uuid:site_id>",
                          "PATCH /api/v1/sites/<uuid:site_id>",
                          "DELETE /api/v1/sites/<uuid:site_id>",
                          "GET /api/v1/sites")
def test_site_cross_tenant(acme, globex):
    site = acme.api.post("/api/v1/sites", json={"code": "A", "name": "A"}).json
    url = f"/api/v1/sites/{site['id']}"
    assert globex.api.get(url).status_code == 404
    assert globex.api.patch(url, json={"name": "x"}, etag="*").status_code == 404
    assert globex.api.delete(url, etag="*").status_code == 404
    assert globex.api.get("/api/v1/sites").json == []
    assert acme.api.get(url).json["name"] == "A"


def test_viewer_cannot_write(acme):
    viewer = acme.as_role("viewer")
    assert viewer.post("/api/v1/sites", json={"code": "A", "name": "A"}).status_code == 403
    assert viewer.get("/api/v1/sites").status_code == 200


def test_tenant_id_in_body_rejected(acme, globex):
    r = acme.api.post("/api/v1/sites", json={"code": "A", "name": "A", "tenant_id": str(globex.id)})
    assert r.status_code == 422
    assert "tenant_id" in r.json["errors"]["json"]


@pytest.mark.cross_tenant("POST /api/v1/sites")
def test_a_new_site_lands_in_the_callers_tenant_only(acme, globex):
    ours = acme.api.post("/api/v1/sites", json={"code": "HQ", "name": "Acme HQ"}).json
    # A body cannot name another tenant; nothing is stored for either.
    r = globex.api.post("/api/v1/sites", json={"code": "X", "name": "X", "tenant_id": str(acme.id)})
    assert r.status_code == 422 and "tenant_id" in r.json["errors"]["json"]
    assert globex.api.get("/api/v1/sites").json == []
    # Codes are per tenant: globex's HQ is its own site, acme's is untouched.
    theirs = globex.api.post("/api/v1/sites", json={"code": "HQ", "name": "Globex HQ"})
    assert theirs.status_code == 201 and theirs.json["id"] != ours["id"]
    assert [s["id"] for s in globex.api.get("/api/v1/sites").json] == [theirs.json["id"]]
    assert acme.api.get("/api/v1/sites").json == [ours]


def test_nul_characters_are_refused(acme):
    r = acme.api.post("/api/v1/sites", json={"code": "A", "name": "a\u0000b"})
    assert r.status_code == 422 and "name" in r.json["errors"]["json"]
    assert acme.api.get("/api/v1/sites?q=a%00b").status_code == 422
    assert acme.api.get("/api/v1/sites").json == []
