"""Records through HTTP: validation, filters, ETags, soft delete, history, hooks, tenancy."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from servq.core.models import AuditEvent, Record, Staff, TenantPlugin
from servq.core.plugins import RecordKind, hookimpl

RECORDS = "/api/v1/records"


class VisitData(Schema):
    """``data`` of the test kind: a timestamp and a nested part exercise JSON storage."""

    due_at = fields.AwareDateTime(required=True)
    rating = fields.Integer(required=True, validate=validate.Range(min=1, max=5))


class TestKindsPlugin:
    """A throwaway plugin: one record kind, and event hooks that remember their calls."""

    __test__ = False  # not a test class, despite the name pytest would collect

    def __init__(self):
        self.calls: list[tuple] = []

    @hookimpl
    def register_record_kinds(self):
        return [RecordKind(name="testkinds.visit", schema=VisitData,
                           title={"en": "Visit", "zh": "访问"}, statuses=("new", "done"))]

    @hookimpl
    def record_created(self, record, actor_id):
        self.calls.append(("created", record.kind, str(record.id)))

    @hookimpl
    def record_changed(self, record, changes):
        self.calls.append(("changed", record.kind, str(record.id), sorted(changes)))


@pytest.fixture
def testkinds():
    return TestKindsPlugin()


@pytest.fixture
def app_config(app_config, testkinds):
    app_config["EXTRA_PLUGINS"] = [("testkinds", testkinds)]
    return app_config


def observation(**extra):
    body = {"kind": "observation", "data": {"title": "Lobby floor wet"}}
    body.update(extra)
    return body


def make_site(tenant, code="HQ") -> str:
    r = tenant.api.post("/api/v1/sites", json={"code": code, "name": code})
    assert r.status_code == 201, r.json
    return r.json["id"]


def make_staff(tenant, code="S1") -> str:
    with tenant.session() as s:
        staff = Staff(code=code, name=f"Staff {code}")
        s.add(staff)
        s.commit()
        return str(staff.id)


def stored(tenant) -> tuple[list[Record], list[AuditEvent]]:
    """Every record and every record audit event of ``tenant``, straight from the database."""
    with tenant.session() as s:
        return (list(s.scalars(select(Record))),
                list(s.scalars(select(AuditEvent).where(AuditEvent.entity == "records"))))


def test_create_and_get(acme):
    site, staff = make_site(acme), make_staff(acme)
    r = acme.api.post(RECORDS, json=observation(site_id=site, staff_id=staff,
                                               occurred_at="2026-03-01T09:30:00+08:00"))
    assert r.status_code == 201, r.json
    rec = r.json
    assert rec["kind"] == "observation" and rec["status"] == "open"
    assert rec["site_id"] == site and rec["staff_id"] == staff
    assert rec["occurred_at"] == "2026-03-01T01:30:00+00:00"
    # The kind's schema fills in its defaults.
    assert rec["data"] == {"title": "Lobby floor wet", "description": "", "severity": "low", "tags": []}
    r = acme.api.get(f"{RECORDS}/{rec['id']}")
    assert r.status_code == 200 and r.headers["ETag"] and r.json == rec


def test_create_defaults_occurred_at_to_now(acme):
    before = datetime.now(timezone.utc)
    r = acme.api.post(RECORDS, json=observation())
    assert r.status_code == 201
    occurred = datetime.fromisoformat(r.json["occurred_at"])
    assert before <= occurred <= datetime.now(timezone.utc)
    assert r.json["site_id"] is None and r.json["staff_id"] is None


def test_data_validation_writes_nothing(acme):
    r = acme.api.post(RECORDS, json={"kind": "observation",
                                     "data": {"severity": "apocalyptic", "colour": "red"}})
    assert r.status_code == 422
    errors = r.json["errors"]["json"]["data"]
    assert set(errors) == {"title", "severity", "colour"}
    assert stored(acme) == ([], [])


def test_unknown_kind_names_valid_kinds(acme):
    r = acme.api.post(RECORDS, json={"kind": "nope", "data": {}})
    assert r.status_code == 422
    assert "observation" in r.json["errors"]["json"]["kind"][0]
    assert stored(acme) == ([], [])


@pytest.mark.parametrize("body, field", [
    ({"status": "archived"}, "status"),
    ({"occurred_at": "2026-03-01T09:30:00"}, "occurred_at"),
    ({"tenant_id": "5d6f6a8e-1b1c-4c5e-9d55-0f6f0a2a6b1e"}, "tenant_id"),
])
def test_bad_fields(acme, body, field):
    r = acme.api.post(RECORDS, json=observation(**body))
    assert r.status_code == 422
    assert field in r.json["errors"]["json"]
    assert stored(acme) == ([], [])


@pytest.mark.parametrize("body, field", [
    ({"occurred_at": "0001-01-01T00:00:00+01:00"}, "occurred_at"),
    ({"data": {"title": "a\x00b"}}, "data"),
    ({"status": "op\x00en"}, "status"),
])
def test_values_the_database_cannot_hold(acme, body, field):
    """Out-of-range instants and NUL characters are a 422 on every backend, not a 500."""
    r = acme.api.post(RECORDS, json=observation(**body))
    assert r.status_code == 422, r.json
    assert field in r.json["errors"]["json"]
    assert stored(acme) == ([], [])
    for query in ("since=0001-01-01T00:00:00%2B01:00", "kind=a%00b", "status=a%00b"):
        assert acme.api.get(f"{RECORDS}?{query}").status_code == 422, query


@pytest.mark.cross_tenant("POST /api/v1/records")
def test_site_and_staff_of_another_tenant(acme, globex):
    site, staff = make_site(globex), make_staff(globex)
    r = acme.api.post(RECORDS, json=observation(site_id=site, staff_id=staff))
    assert r.status_code == 422
    assert set(r.json["errors"]["json"]) == {"site_id", "staff_id"}
    assert stored(acme) == ([], [])
    assert stored(globex) == ([], [])


def test_list_filters_and_order(acme):
    enable_testkinds(acme)
    hq, depot = make_site(acme, "HQ"), make_site(acme, "DEPOT")
    ann = make_staff(acme, "ANN")
    a = acme.api.post(RECORDS, json=observation(site_id=hq, staff_id=ann,
                                               occurred_at="2026-01-01T00:00:00+00:00")).json
    b = acme.api.post(RECORDS, json=observation(site_id=depot, status="closed",
                                               occurred_at="2026-02-01T00:00:00+00:00")).json
    c = acme.api.post(RECORDS, json={"kind": "testkinds.visit", "site_id": hq,
                                     "occurred_at": "2026-03-01T00:00:00+00:00",
                                     "data": {"due_at": "2026-03-02T08:00:00+08:00", "rating": 4}}).json
    assert c["data"] == {"due_at": "2026-03-02T08:00:00+08:00", "rating": 4} and c["status"] == "new"

    def ids(query=""):
        r = acme.api.get(f"{RECORDS}?{query}")
        assert r.status_code == 200, r.json
        return [x["id"] for x in r.json]

    assert ids() == [c["id"], b["id"], a["id"]]
    assert ids("kind=observation") == [b["id"], a["id"]]
    assert ids("kind=testkinds.visit") == [c["id"]]
    assert ids("status=closed") == [b["id"]]
    assert ids(f"site_id={hq}") == [c["id"], a["id"]]
    assert ids(f"staff_id={ann}") == [a["id"]]
    assert ids("since=2026-02-01T00:00:00%2B00:00") == [c["id"], b["id"]]
    assert ids("until=2026-02-01T00:00:00%2B00:00") == [a["id"]]
    assert ids("since=2026-01-15T00:00:00Z&until=2026-02-15T00:00:00Z") == [b["id"]]
    assert acme.api.get(f"{RECORDS}?since=2026-03-01T00:00:00Z&until=2026-01-01T00:00:00Z").status_code == 422
    assert acme.api.get(f"{RECORDS}?site_id=not-a-uuid").status_code == 422


def test_pagination(acme):
    made = [acme.api.post(RECORDS, json=observation(occurred_at=f"2026-01-0{i}T00:00:00Z")).json["id"]
            for i in range(1, 6)]
    r = acme.api.get(f"{RECORDS}?page=2&page_size=2")
    assert r.status_code == 200
    assert [x["id"] for x in r.json] == [made[2], made[1]]
    meta = json.loads(r.headers["X-Pagination"])
    assert meta["total"] == 5 and meta["total_pages"] == 3
    assert meta["previous_page"] == 1 and meta["next_page"] == 3


def test_pagination_beyond_the_count_limit_gives_a_lower_bound(acme, monkeypatch):
    import servq.core.api.pagination

    monkeypatch.setattr(servq.core.api.pagination, "COUNT_LIMIT", 3)
    made = [acme.api.post(RECORDS, json=observation(occurred_at=f"2026-01-0{i}T00:00:00Z")).json["id"]
            for i in range(1, 6)]
    first = json.loads(acme.api.get(f"{RECORDS}?page_size=2").headers["X-Pagination"])
    assert (first["total"], first["total_exact"], first["total_pages"], first["last_page"]) == (3, False, None, None)
    assert first["next_page"] == 2
    r = acme.api.get(f"{RECORDS}?page=3&page_size=2")
    assert [x["id"] for x in r.json] == [made[0]]
    last = json.loads(r.headers["X-Pagination"])
    assert (last["total"], last["total_exact"], last["next_page"]) == (5, False, None)
    monkeypatch.setattr(servq.core.api.pagination, "COUNT_LIMIT", 5)
    exact = json.loads(acme.api.get(f"{RECORDS}?page_size=2").headers["X-Pagination"])
    assert (exact["total"], exact["total_exact"], exact["total_pages"]) == (5, True, 3)


def test_patch_needs_if_match_and_validates(acme, globex):
    rec = acme.api.post(RECORDS, json=observation()).json
    url = f"{RECORDS}/{rec['id']}"
    assert acme.api.patch(url, json={"status": "closed"}).status_code == 428
    assert acme.api.patch(url, json={"status": "closed"}, etag='"stale"').status_code == 412
    etag = acme.api.get(url).headers["ETag"]
    # data is validated as a whole: a change must carry the required title again.
    r = acme.api.patch(url, json={"data": {"severity": "high"}}, etag=etag)
    assert r.status_code == 422 and "title" in r.json["errors"]["json"]["data"]
    assert acme.api.patch(url, json={"status": "archived"}, etag=etag).status_code == 422
    assert acme.api.patch(url, json={"kind": "other"}, etag=etag).status_code == 422
    assert acme.api.patch(url, json={"occurred_at": None}, etag=etag).status_code == 422
    r = acme.api.patch(url, json={"site_id": make_site(globex)}, etag=etag)
    assert r.status_code == 422 and "site_id" in r.json["errors"]["json"]
    assert acme.api.get(url).json == rec
    records, events = stored(acme)
    assert [e.action for e in events] == ["created"]


def test_patch_and_history(acme):
    site, staff = make_site(acme), make_staff(acme)
    rec = acme.api.post(RECORDS, json=observation()).json
    url = f"{RECORDS}/{rec['id']}"
    r = acme.api.update(url, {"status": "closed", "site_id": site, "staff_id": staff,
                              "data": {"title": "Lobby floor wet", "severity": "high"}})
    assert r.status_code == 200, r.json
    assert r.json["status"] == "closed" and r.json["data"]["severity"] == "high"
    assert r.json["site_id"] == site and r.json["staff_id"] == staff
    # Nothing new: no audit event.
    assert acme.api.update(url, {"status": "closed"}).status_code == 200
    assert acme.api.update(url, {"site_id": None}).json["site_id"] is None

    r = acme.api.get(f"{url}/history")
    assert r.status_code == 200
    assert json.loads(r.headers["X-Pagination"])["total"] == 3
    created, changed, cleared = r.json
    assert [created["action"], changed["action"], cleared["action"]] == ["created", "changed", "changed"]
    assert created["actor"]["name"] == "owner"
    assert created["changes"]["kind"] == [None, "observation"]
    assert changed["changes"]["status"] == ["open", "closed"]
    assert changed["changes"]["staff_id"] == [None, staff]
    old, new = changed["changes"]["data"]
    assert old["severity"] == "low" and new["severity"] == "high"
    assert cleared["changes"] == {"site_id": [site, None]}
    assert created["at"] <= changed["at"] <= cleared["at"]
    r = acme.api.get(f"{url}/history?page_size=1&page=3")
    assert [e["id"] for e in r.json] == [cleared["id"]]


def test_soft_delete(acme):
    rec = acme.api.post(RECORDS, json=observation()).json
    url = f"{RECORDS}/{rec['id']}"
    assert acme.api.delete(url).status_code == 428
    assert acme.api.delete(url, etag='"stale"').status_code == 412
    assert acme.api.remove(url).status_code == 204
    assert acme.api.get(url).status_code == 404
    assert acme.api.patch(url, json={"status": "closed"}, etag="*").status_code == 404
    assert acme.api.delete(url, etag="*").status_code == 404
    assert acme.api.get(RECORDS).json == []
    records, _ = stored(acme)
    assert len(records) == 1 and records[0].deleted_at is not None
    # The trail outlives the record: who deleted it, and when.
    history = acme.api.get(f"{url}/history").json
    assert [e["action"] for e in history] == ["created", "deleted"]
    assert history[1]["changes"]["deleted_at"][0] is None and history[1]["actor"]["name"] == "owner"


def test_viewer_cannot_write(acme):
    rec = acme.api.post(RECORDS, json=observation()).json
    url = f"{RECORDS}/{rec['id']}"
    viewer = acme.as_role("viewer")
    assert viewer.post(RECORDS, json=observation()).status_code == 403
    assert viewer.patch(url, json={"status": "closed"}, etag="*").status_code == 403
    assert viewer.delete(url, etag="*").status_code == 403
    assert viewer.get(url).status_code == 200
    assert viewer.get(f"{url}/history").status_code == 200
    assert len(viewer.get(RECORDS).json) == 1
    assert acme.api.get(url).json == rec
    assert acme.as_role("agent").post(RECORDS, json=observation()).status_code == 201


def test_unauthenticated(client):
    assert client.get(RECORDS).status_code == 401
    assert client.post(RECORDS, json=observation()).status_code == 401


@pytest.mark.cross_tenant("GET /api/v1/records/<uuid:record_id>",
                          "PATCH /api/v1/records/<uuid:record_id>",
                          "DELETE /api/v1/records/<uuid:record_id>",
                          "GET /api/v1/records/<uuid:record_id>/history",
                          "GET /api/v1/records")
def test_cross_tenant(acme, globex):
    rec = acme.api.post(RECORDS, json=observation()).json
    url = f"{RECORDS}/{rec['id']}"
    assert globex.api.get(url).status_code == 404
    assert globex.api.patch(url, json={"status": "closed"}, etag="*").status_code == 404
    assert globex.api.delete(url, etag="*").status_code == 404
    assert globex.api.get(f"{url}/history").status_code == 404
    assert globex.api.get(RECORDS).json == []
    assert acme.api.get(url).json == rec
    _, events = stored(acme)
    assert [e.action for e in events] == ["created"]


def enable_testkinds(tenant):
    tenant.enable("testkinds")


def visit(**extra):
    body = {"kind": "testkinds.visit", "data": {"due_at": "2026-03-02T08:00:00Z", "rating": 3}}
    body.update(extra)
    return body


def test_kind_of_a_plugin_not_enabled(acme, globex, testkinds):
    r = acme.api.post(RECORDS, json=visit())
    assert r.status_code == 422 and "kind" in r.json["errors"]["json"]
    assert stored(acme) == ([], [])

    enable_testkinds(acme)
    rec = acme.api.post(RECORDS, json=visit())
    assert rec.status_code == 201, rec.json
    url = f"{RECORDS}/{rec.json['id']}"
    r = acme.api.update(url, {"data": {"due_at": "2026-03-02T08:00:00Z", "rating": 9}})
    assert r.status_code == 422 and "rating" in r.json["errors"]["json"]["data"]
    # globex has not enabled the plugin: it cannot use the kind either.
    assert globex.api.post(RECORDS, json=visit()).status_code == 422

    # Once the tenant turns the plugin off, its records disappear from the API.
    with acme.session() as s:
        s.scalar(select(TenantPlugin).where(TenantPlugin.plugin_id == "testkinds")).active = False
        s.commit()
    assert acme.api.get(url).status_code == 404
    assert acme.api.patch(url, json={"status": "done"}, etag="*").status_code == 404
    assert acme.api.delete(url, etag="*").status_code == 404
    assert acme.api.get(f"{url}/history").status_code == 404
    assert acme.api.get(RECORDS).json == []
    assert acme.api.get(f"{RECORDS}?kind=testkinds.visit").json == []


def test_event_hooks_run_for_enabled_tenants_only(acme, globex, testkinds):
    enable_testkinds(acme)
    rec = acme.api.post(RECORDS, json=visit()).json
    url = f"{RECORDS}/{rec['id']}"
    acme.api.update(url, {"status": "done"})
    acme.api.remove(url)
    assert testkinds.calls == [
        ("created", "testkinds.visit", rec["id"]),
        ("changed", "testkinds.visit", rec["id"], ["status"]),
        ("changed", "testkinds.visit", rec["id"], ["deleted_at"]),
    ]
    # A tenant without the plugin creates observations; the plugin hears nothing.
    testkinds.calls.clear()
    other = globex.api.post(RECORDS, json=observation()).json
    globex.api.update(f"{RECORDS}/{other['id']}", {"status": "closed"})
    assert testkinds.calls == []


def test_bodies_nested_too_deeply_are_refused_and_change_nothing(acme):
    headers = {"Authorization": f"Bearer {acme.api.token}", "Content-Type": "application/json"}
    for depth, status in ((500, 422), (5000, 400)):
        for leaf in ('"\\u0000"', '"a"'):  # with and without a NUL at the bottom
            body = ('{"kind": "observation", "data": {"title": "x", "tags": '
                    + "[" * depth + leaf + "]" * depth + "}}")
            r = acme.api.client.post(RECORDS, data=body, headers=headers)
            assert r.status_code == status, (depth, leaf, r.json)
            assert r.json["message"]
    assert acme.api.get(RECORDS).json == []


def test_a_created_record_can_be_changed_with_the_etag_of_its_201(acme):
    created = acme.api.post("/api/v1/records", json={"kind": "observation", "data": {"title": "Wet floor"}})
    assert created.status_code == 201
    assert created.headers["Location"] == f"http://localhost/api/v1/records/{created.json['id']}"
    changed = acme.api.patch(created.headers["Location"], json={"data": {"title": "Dry floor"}},
                             etag=created.headers["ETag"])
    assert changed.status_code == 200 and changed.json["data"]["title"] == "Dry floor"
    assert acme.api.get(created.headers["Location"]).json["data"]["title"] == "Dry floor"
