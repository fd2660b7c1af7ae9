"""``/api/v1/webhooks``: registration, validation, secrets shown once, roles, If-Match,
the delivery log, ping, redelivery and tenant isolation."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from servq.core.models import AuditEvent, Webhook, WebhookDelivery
from tests.test_notifications import SECRET, add_webhook, deliveries, drain, emit, receivers  # noqa: F401

URL = "/api/v1/webhooks"


def test_create_generates_a_secret_shown_once(acme):
    r = acme.api.post(URL, json={"url": "https://hooks.example.com/servq", "event_types": ["clock.*"],
                                 "description": "Ops pager"})
    assert r.status_code == 201, r.json
    hook = r.json
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 40
    assert hook["url"] == "https://hooks.example.com/servq" and hook["event_types"] == ["clock.*"]
    assert hook["active"] is True and hook["description"] == "Ops pager"
    assert hook["created_at"].endswith("+00:00")

    got = acme.api.get(f"{URL}/{hook['id']}")
    assert got.status_code == 200 and got.headers["ETag"]
    assert "secret" not in got.json
    assert {k: v for k, v in hook.items() if k != "secret"} == got.json
    listed = acme.api.get(URL)
    assert [h["id"] for h in listed.json] == [hook["id"]] and "secret" not in listed.json[0]
    assert hook["secret"] not in json.dumps(listed.json) + json.dumps(got.json)
    with acme.session() as s:
        assert s.scalar(select(Webhook.secret)) == hook["secret"]
        audit = s.scalar(select(AuditEvent).where(AuditEvent.entity == "webhooks"))
        assert audit.action == "created" and audit.changes["secret"] == [None, "[hidden]"]
        assert hook["secret"] not in json.dumps(audit.changes)


def test_create_with_the_clients_secret(acme):
    r = acme.api.post(URL, json={"url": "http://127.0.0.1:9/x", "event_types": ["*"], "secret": SECRET})
    assert r.status_code == 201 and r.json["secret"] == SECRET


def test_duplicate_event_types_are_stored_once(acme):
    r = acme.api.post(URL, json={"url": "http://localhost/h", "event_types": ["*", "*", "clock.warning"]})
    assert r.json["event_types"] == ["*", "clock.warning"]


@pytest.mark.parametrize("body, field", [
    ({"url": "ftp://example.com/x", "event_types": ["*"]}, "url"),
    ({"url": "not a url", "event_types": ["*"]}, "url"),
    ({"url": "javascript:alert(1)", "event_types": ["*"]}, "url"),
    ({"url": "http://user:pw@example.com/x", "event_types": ["*"]}, "url"),
    ({"url": "http://example.com/" + "x" * 2000, "event_types": ["*"]}, "url"),
    ({"event_types": ["*"]}, "url"),
    ({"url": "https://example.com/x"}, "event_types"),
    ({"url": "https://example.com/x", "event_types": []}, "event_types"),
    ({"url": "https://example.com/x", "event_types": ["clock.exploded"]}, "event_types"),
    ({"url": "https://example.com/x", "event_types": ["nothing.*"]}, "event_types"),
    ({"url": "https://example.com/x", "event_types": ["ping"]}, "event_types"),
    ({"url": "https://example.com/x", "event_types": "clock.breached"}, "event_types"),
    ({"url": "https://example.com/x", "event_types": ["*"], "secret": "short"}, "secret"),
    ({"url": "https://example.com/x", "event_types": ["*"], "secret": "with spaces in it, 1234"}, "secret"),
    ({"url": "https://example.com/x", "event_types": ["*"], "active": "perhaps"}, "active"),
    ({"url": "https://example.com/x", "event_types": ["*"], "tenant_id": str(uuid.uuid4())}, "tenant_id"),
    ({"url": "https://example.com/x", "event_types": ["*"], "id": str(uuid.uuid4())}, "id"),
])
def test_invalid_webhooks_are_422_and_nothing_is_stored(acme, body, field):
    r = acme.api.post(URL, json=body)
    assert r.status_code == 422, r.json
    assert field in r.json["errors"]["json"], r.json
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(Webhook)) == 0


def test_unknown_event_type_error_names_the_choices(acme):
    r = acme.api.post(URL, json={"url": "https://example.com/x", "event_types": ["clock.*", "bogus"]})
    message = r.json["errors"]["json"]["event_types"]["1"][0]
    assert "bogus" in message and "clock.breached" in message and "'*'" in message


def test_event_types_are_listed(acme):
    r = acme.as_role("viewer").get(f"{URL}/event-types")
    assert r.status_code == 200
    types = {t["type"]: t["description"] for t in r.json}
    assert {"clock.warning", "clock.breached", "schedule.missed", "action.opened", "record.escalated",
            "survey.invited"} <= types.keys()
    assert all(types.values())


def test_patch_needs_if_match_and_changes_the_webhook(acme):
    hook = add_webhook(acme, "https://example.com/a", ["clock.breached"])
    url = f"{URL}/{hook['id']}"
    assert acme.api.patch(url, json={"active": False}).status_code == 428
    etag = acme.api.get(url).headers["ETag"]
    r = acme.api.patch(url, json={"event_types": ["clock.*", "action.opened"], "active": False,
                                  "url": "https://example.com/b"}, etag=etag)
    assert r.status_code == 200, r.json
    assert r.json["event_types"] == ["clock.*", "action.opened"] and r.json["active"] is False
    assert r.json["url"] == "https://example.com/b" and "secret" not in r.json
    assert acme.api.patch(url, json={"active": True}, etag=etag).status_code == 412
    assert acme.api.get(url).json["active"] is False
    for bad in ({"url": "gopher://x"}, {"event_types": []}, {"secret": "x"}, {"tenant_id": str(uuid.uuid4())}):
        r = acme.api.update(url, bad)
        assert r.status_code == 422, (bad, r.json)
    assert acme.api.get(url).json["url"] == "https://example.com/b"


def test_rotating_the_secret_is_audited_without_the_secret(acme):
    hook = add_webhook(acme, "https://example.com/a")
    r = acme.api.update(f"{URL}/{hook['id']}", {"secret": "a-brand-new-secret-value-42"})
    assert r.status_code == 200 and "secret" not in r.json
    with acme.session() as s:
        assert s.scalar(select(Webhook.secret)) == "a-brand-new-secret-value-42"
        changed = s.scalar(select(AuditEvent).where(AuditEvent.action == "changed"))
        assert changed.changes == {"secret": ["[hidden]", "[changed]"]}


def test_delete_needs_if_match_and_removes_the_delivery_log(app, acme, receivers):
    receiver = receivers(200)
    hook = add_webhook(acme, receiver.url)
    event_id = emit(app, acme)
    url = f"{URL}/{hook['id']}"
    assert acme.api.delete(url).status_code == 428
    assert acme.api.delete(url, etag='"stale"').status_code == 412
    assert acme.api.remove(url).status_code == 204
    assert acme.api.get(url).status_code == 404
    assert acme.api.get(f"{url}/deliveries").status_code == 404
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    # The notification stays in the outbox.
    assert [e["id"] for e in acme.api.get("/api/v1/notifications").json] == [str(event_id)]


def test_roles(acme):
    hook = add_webhook(acme, "https://example.com/a")
    url = f"{URL}/{hook['id']}"
    body = {"url": "https://example.com/b", "event_types": ["*"]}
    for role in ("viewer", "agent", "inspector", "manager"):
        client = acme.as_role(role)
        assert client.post(URL, json=body).status_code == 403, role
        etag = acme.api.get(url).headers["ETag"]
        assert client.patch(url, json={"active": False}, etag=etag).status_code == 403, role
        assert client.delete(url, etag=etag).status_code == 403, role
        assert client.post(f"{url}/ping").status_code == 403, role
    # Reading webhooks (their URLs may carry tokens) needs the manage permission.
    for role in ("viewer", "agent", "inspector"):
        client = acme.as_role(role)
        assert client.get(URL).status_code == 403
        assert client.get(url).status_code == 403
        assert client.get(f"{url}/deliveries").status_code == 403
    assert acme.as_role("manager").get(f"{url}/deliveries").status_code == 200
    admin = acme.as_role("admin")
    assert admin.post(URL, json=body).status_code == 201
    assert admin.update(url, {"active": False}).status_code == 200
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(Webhook)) == 2


@pytest.mark.cross_tenant("GET /api/v1/webhooks",
                          "GET /api/v1/webhooks/<uuid:webhook_id>",
                          "PATCH /api/v1/webhooks/<uuid:webhook_id>",
                          "DELETE /api/v1/webhooks/<uuid:webhook_id>",
                          "GET /api/v1/webhooks/<uuid:webhook_id>/deliveries",
                          "GET /api/v1/webhooks/<uuid:webhook_id>/deliveries/<uuid:delivery_id>",
                          "POST /api/v1/webhooks/<uuid:webhook_id>/deliveries/<uuid:delivery_id>/redeliver",
                          "POST /api/v1/webhooks/<uuid:webhook_id>/ping")
def test_cross_tenant_webhooks_and_deliveries_are_404(app, acme, globex, receivers):
    receiver = receivers(200)
    hook = add_webhook(acme, receiver.url)
    emit(app, acme)
    [delivery] = deliveries(acme, hook["id"])
    url = f"{URL}/{hook['id']}"
    other = globex.api
    assert other.get(URL).json == []
    assert other.get(url).status_code == 404
    etag = acme.api.get(url).headers["ETag"]
    assert other.patch(url, json={"active": False}, etag=etag).status_code == 404
    assert other.delete(url, etag=etag).status_code == 404
    assert other.get(f"{url}/deliveries").status_code == 404
    assert other.get(f"{url}/deliveries/{delivery['id']}").status_code == 404
    assert other.post(f"{url}/deliveries/{delivery['id']}/redeliver").status_code == 404
    assert other.post(f"{url}/ping").status_code == 404
    # Globex's own webhook cannot reach acme's delivery either.
    own = add_webhook(globex, receiver.url)
    assert other.get(f"{URL}/{own['id']}/deliveries/{delivery['id']}").status_code == 404
    assert other.post(f"{URL}/{own['id']}/deliveries/{delivery['id']}/redeliver").status_code == 404
    # Nothing changed at acme, nothing more was sent.
    assert acme.api.get(url).json["active"] is True
    assert len(receiver.requests) == 1 and len(deliveries(acme, hook["id"])) == 1


@pytest.mark.cross_tenant("POST /api/v1/webhooks")
def test_a_new_webhook_lands_in_the_callers_tenant_only(acme, globex):
    body = {"url": "https://hooks.example.com/servq", "event_types": ["clock.*"]}
    ours = acme.api.post(URL, json=body)
    assert ours.status_code == 201, ours.json
    r = globex.api.post(URL, json={**body, "tenant_id": str(acme.id)})
    assert r.status_code == 422 and "tenant_id" in r.json["errors"]["json"]
    assert globex.api.get(URL).json == []
    theirs = globex.api.post(URL, json={**body, "event_types": ["*"]})
    assert theirs.status_code == 201 and theirs.json["secret"] != ours.json["secret"]
    assert [h["id"] for h in globex.api.get(URL).json] == [theirs.json["id"]]
    listed = acme.api.get(URL).json
    assert [(h["id"], h["event_types"]) for h in listed] == [(ours.json["id"], ["clock.*"])]


def test_delivery_of_another_webhook_is_404(app, acme, receivers):
    one = add_webhook(acme, receivers(200).url)
    two = add_webhook(acme, receivers(200).url)
    emit(app, acme)
    [delivery] = deliveries(acme, one["id"])
    assert acme.api.get(f"{URL}/{one['id']}/deliveries/{delivery['id']}").status_code == 200
    assert acme.api.get(f"{URL}/{two['id']}/deliveries/{delivery['id']}").status_code == 404
    assert acme.api.post(f"{URL}/{two['id']}/deliveries/{delivery['id']}/redeliver").status_code == 404
    assert acme.api.get(f"{URL}/{one['id']}/deliveries/{uuid.uuid4()}").status_code == 404


def test_delivery_log_is_paginated_and_filtered(app, acme, receivers):
    receiver = receivers(200)
    hook = add_webhook(acme, receiver.url, ["clock.*", "action.opened"])
    for event_type in ("clock.warning", "clock.breached", "action.opened"):
        emit(app, acme, event_type)
    url = f"{URL}/{hook['id']}/deliveries"
    r = acme.api.get(url, query_string={"page_size": 2})
    assert r.status_code == 200 and len(r.json) == 2
    meta = json.loads(r.headers["X-Pagination"])
    assert meta["total"] == 3 and meta["next_page"] == 2
    assert [d["event_type"] for d in r.json] == ["action.opened", "clock.breached"]
    assert [d["event_type"] for d in acme.api.get(url, query_string={"event_type": "clock.warning"}).json] \
        == ["clock.warning"]
    assert len(acme.api.get(url, query_string={"status": "delivered"}).json) == 3
    assert acme.api.get(url, query_string={"status": "pending"}).json == []
    assert acme.api.get(url, query_string={"status": "lost"}).status_code == 422


def test_ping(app, acme, receivers):
    receiver = receivers(200)
    hook = add_webhook(acme, receiver.url, ["action.opened"])
    r = acme.api.post(f"{URL}/{hook['id']}/ping")
    assert r.status_code == 202, r.json
    assert r.json["event_type"] == "ping" and r.json["webhook_id"] == hook["id"]
    if app.extensions["servq.queue"] is None:
        assert r.json["status"] == "delivered"  # inline: attempted before the answer
    drain(app)
    [request] = receiver.requests
    assert request["verified"] and request["headers"]["x-servq-event"] == "ping"
    assert request["headers"]["x-servq-delivery"] == r.json["id"]
    assert deliveries(acme, hook["id"])[0]["status"] == "delivered"


def test_ping_and_redeliver_refuse_an_inactive_webhook(app, acme, receivers):
    receiver = receivers(200)
    hook = add_webhook(acme, receiver.url)
    emit(app, acme)
    [delivery] = deliveries(acme, hook["id"])
    acme.api.update(f"{URL}/{hook['id']}", {"active": False})
    r = acme.api.post(f"{URL}/{hook['id']}/ping")
    assert r.status_code == 409 and "inactive" in r.json["message"]
    r = acme.api.post(f"{URL}/{hook['id']}/deliveries/{delivery['id']}/redeliver")
    assert r.status_code == 409
    assert len(receiver.requests) == 1 and len(deliveries(acme, hook["id"])) == 1


def test_a_pending_delivery_cannot_be_redelivered(app, acme, receivers):
    receiver = receivers(500)
    hook = add_webhook(acme, receiver.url)
    emit(app, acme)
    [delivery] = deliveries(acme, hook["id"])
    r = acme.api.post(f"{URL}/{hook['id']}/deliveries/{delivery['id']}/redeliver")
    assert r.status_code == 409 and "pending" in r.json["message"]
    assert len(deliveries(acme, hook["id"])) == 1


def test_exports_leave_out_webhook_secrets(app, acme):
    hook = add_webhook(acme, "https://example.com/a")
    r = acme.api.post("/api/v1/tenant/exports")
    drain(app)
    doc = acme.api.get(f"/api/v1/tenant/exports/{r.json['id']}/file").json
    [row] = doc["tables"]["webhooks"]
    assert row["id"] == hook["id"] and row["url"] == "https://example.com/a"
    assert "secret" not in row and SECRET not in json.dumps(doc)
