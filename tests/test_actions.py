"""Corrective actions through HTTP: by hand, the workflow (409 with what is allowed),
ETags, filters (overdue above all), history, notifications, tenancy and roles."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from servq.core.models import Action, AuditEvent, OutboxEvent
from tests.test_evaluations import put_standard
from tests.test_inspections import CODE, FRONT_DESK, GOOD, inspection, user_id

ACTIONS = "/api/v1/actions"
NOW = datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def make(tenant, client=None, **body):
    r = (client or tenant.api).post(ACTIONS, json={"title": "Fix the lobby door", **body})
    assert r.status_code == 201, r.json
    return r.json


def step(tenant, action_id, name, client=None, **extra):
    return (client or tenant.api).post(f"{ACTIONS}/{action_id}/transitions", json={"action": name, **extra})


def count(tenant) -> int:
    with tenant.session() as s:
        return s.scalar(select(func.count()).select_from(Action))


def test_open_by_hand(acme):
    owner = user_id(acme, acme.add_user("manager"))
    record = acme.api.post("/api/v1/records", json={"kind": "observation", "data": {"title": "Door"}}).json
    due = NOW + timedelta(days=2)
    action = make(acme, description="It squeaks", owner_id=owner, due_at=iso(due), record_id=record["id"])
    assert (action["source"], action["status"], action["owner_id"], action["record_id"]) == \
        ("manual", "open", owner, record["id"])
    assert datetime.fromisoformat(action["due_at"]) == due
    assert action["overdue"] is False and action["allowed_actions"] == ["start", "complete"]
    assert action["created_by"] == user_id(acme) and action["source_key"] is None
    r = acme.api.get(f"{ACTIONS}/{action['id']}")
    assert r.status_code == 200 and r.headers["ETag"] and r.json == action
    with acme.session() as s:
        [event] = s.scalars(select(OutboxEvent).where(OutboxEvent.type == "action.opened")).all()
        assert event.payload["id"] == action["id"] and event.payload["title"] == "Fix the lobby door"


@pytest.mark.parametrize("body, field", [
    ({}, "title"),
    ({"title": ""}, "title"),
    ({"due_at": "2026-01-01T00:00:00"}, "due_at"),
    ({"status": "done"}, "status"),
    ({"source": "critical"}, "source"),
])
def test_bad_input_is_422(acme, body, field):
    r = acme.api.post(ACTIONS, json={"title": "x", **body} if field != "title" else body)
    assert r.status_code == 422 and field in r.json["errors"]["json"], r.json
    assert count(acme) == 0


@pytest.mark.cross_tenant("POST /api/v1/actions")
def test_owner_and_record_must_be_of_this_tenant(acme, globex):
    foreign = globex.api.post("/api/v1/records", json={"kind": "observation", "data": {"title": "x"}}).json
    r = acme.api.post(ACTIONS, json={"title": "x", "owner_id": user_id(globex), "record_id": foreign["id"]})
    assert r.status_code == 422
    assert set(r.json["errors"]["json"]) == {"owner_id", "record_id"}
    assert count(acme) == 0


def test_workflow_and_409(acme):
    action = make(acme)
    aid = action["id"]
    r = step(acme, aid, "verify")
    assert r.status_code == 409
    assert r.json["errors"]["allowed"] == ["start", "complete"] and "verify" in r.json["message"]
    r = step(acme, aid, "start", note="On it")
    assert r.status_code == 200 and r.json["status"] == "in_progress"
    assert r.json["allowed_actions"] == ["complete"]
    assert step(acme, aid, "start").json["errors"]["allowed"] == ["complete"]
    r = step(acme, aid, "complete", note="New hinge")
    assert r.status_code == 200 and r.json["status"] == "done" and r.json["done_at"]
    # Agents do the work; verifying it is for inspectors and managers.
    agent = acme.as_role("agent")
    assert step(acme, aid, "verify", client=agent).status_code == 403
    r = step(acme, aid, "verify", client=acme.as_role("inspector"))
    assert r.status_code == 200 and r.json["status"] == "verified" and r.json["verified_at"]
    assert r.json["allowed_actions"] == ["reopen"]
    r = step(acme, aid, "reopen", client=agent, note="Squeaks again")
    assert r.status_code == 200 and r.json["status"] == "open"
    assert r.json["done_at"] is None and r.json["verified_at"] is None
    assert step(acme, aid, "reopen").status_code == 409
    assert step(acme, aid, "explode").status_code == 422
    history = acme.api.get(f"{ACTIONS}/{aid}/history").json
    assert [h["action"] for h in history] == ["created", "start", "complete", "verify", "reopen"]
    assert history[1]["changes"]["status"] == ["open", "in_progress"]
    assert history[1]["changes"]["note"] == [None, "On it"]
    assert history[4]["changes"]["note"] == [None, "Squeaks again"]
    assert history[0]["actor"]["id"] == user_id(acme)


def test_patch_needs_if_match_and_is_audited(acme):
    aid = make(acme)["id"]
    url = f"{ACTIONS}/{aid}"
    assert acme.api.patch(url, json={"title": "y"}).status_code == 428
    assert acme.api.patch(url, json={"title": "y"}, etag='"stale"').status_code == 412
    owner = user_id(acme, acme.add_user("agent"))
    due = "2026-12-01T09:00:00+08:00"
    r = acme.api.update(url, {"title": "Replace the hinge", "owner_id": owner, "due_at": due})
    assert r.status_code == 200, r.json
    assert (r.json["title"], r.json["owner_id"], r.json["due_at"]) == \
        ("Replace the hinge", owner, "2026-12-01T01:00:00+00:00")
    assert acme.api.update(url, {"owner_id": user_id(acme, "nobody@elsewhere.test")}).status_code == 422
    assert acme.api.update(url, {"status": "done"}).status_code == 422
    assert acme.api.update(url, {"title": None}).status_code == 422
    history = acme.api.get(f"{url}/history").json
    assert [h["action"] for h in history] == ["created", "changed"]
    assert set(history[1]["changes"]) == {"title", "owner_id", "due_at"}


def test_filters_and_overdue(acme):
    past, future = NOW - timedelta(days=1), NOW + timedelta(days=1)
    late = make(acme, title="late", due_at=iso(past))["id"]
    soon = make(acme, title="soon", due_at=iso(future))["id"]
    undated = make(acme, title="undated")["id"]
    done_late = make(acme, title="done late", due_at=iso(past - timedelta(hours=1)))["id"]
    assert step(acme, done_late, "complete").status_code == 200
    owner = user_id(acme, acme.add_user("manager"))
    owned = make(acme, title="owned", owner_id=owner, due_at=iso(future + timedelta(days=1)))["id"]

    def ids(query=""):
        r = acme.api.get(f"{ACTIONS}?{query}")
        assert r.status_code == 200, r.json
        return [a["id"] for a in r.json]

    # Soonest due first, undated last.
    assert ids() == [done_late, late, soon, owned, undated]
    assert ids("overdue=true") == [late]
    assert ids("overdue=false") == [done_late, soon, owned, undated]
    flags = {a["id"]: a["overdue"] for a in acme.api.get(ACTIONS).json}
    assert flags == {late: True, soon: False, undated: False, done_late: False, owned: False}
    assert ids("status=done") == [done_late]
    assert ids(f"owner_id={owner}") == [owned]
    assert ids("source=manual") == ids() and ids("source=critical") == []
    assert ids(f"due_before={quote(iso(NOW))}") == [done_late, late]
    assert acme.api.get(f"{ACTIONS}?status=lost").status_code == 422
    assert acme.api.get(f"{ACTIONS}?due_before=2026-01-01T00:00:00").status_code == 422
    r = acme.api.get(f"{ACTIONS}?page_size=2")
    assert len(r.json) == 2 and '"total": 5' in r.headers["X-Pagination"]


def test_filter_by_record_and_source(app, acme):
    put_standard(acme, CODE, document=FRONT_DESK)
    rid = inspection(acme, {**GOOD, "uniform": {"outcome": "fail"}}).json["id"]
    make(acme, title="unrelated")
    [auto] = acme.api.get(f"{ACTIONS}?record_id={rid}").json
    assert auto["source"] == "critical"
    assert [a["id"] for a in acme.api.get(f"{ACTIONS}?source=critical").json] == [auto["id"]]
    # The item escalates to managers: the event is addressed to them.
    with acme.session() as s:
        [event] = s.scalars(select(OutboxEvent).where(OutboxEvent.type == "action.opened")
                            .where(OutboxEvent.dedupe_key == f"action.opened:{auto['id']}")).all()
        assert event.roles == ["manager"] and event.payload["item_code"] == "uniform"
    # Moving on the automatic action works like any other; re-scoring leaves it alone.
    assert step(acme, auto["id"], "complete").status_code == 200
    assert acme.api.post(f"/api/v1/records/{rid}/evaluate").status_code == 200
    assert acme.api.get(f"{ACTIONS}/{auto['id']}").json["status"] == "done"


@pytest.mark.cross_tenant("GET /api/v1/actions/<uuid:action_id>",
                          "PATCH /api/v1/actions/<uuid:action_id>",
                          "POST /api/v1/actions/<uuid:action_id>/transitions",
                          "GET /api/v1/actions/<uuid:action_id>/history",
                          "GET /api/v1/actions")
def test_cross_tenant_404(acme, globex):
    aid = make(acme)["id"]
    url = f"{ACTIONS}/{aid}"
    etag = acme.api.get(url).headers["ETag"]
    assert globex.api.get(url).status_code == 404
    assert globex.api.patch(url, json={"title": "mine"}, etag=etag).status_code == 404
    assert step(globex, aid, "start").status_code == 404
    assert globex.api.get(f"{url}/history").status_code == 404
    assert globex.api.get(ACTIONS).json == []
    r = acme.api.get(url).json
    assert (r["title"], r["status"]) == ("Fix the lobby door", "open")
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)
                        .where(AuditEvent.entity == "actions")) == 1


def test_viewer_cannot_write(acme):
    aid = make(acme)["id"]
    viewer = acme.as_role("viewer")
    assert viewer.get(ACTIONS).status_code == 200
    assert viewer.get(f"{ACTIONS}/{aid}").status_code == 200
    assert viewer.get(f"{ACTIONS}/{aid}/history").status_code == 200
    assert viewer.post(ACTIONS, json={"title": "x"}).status_code == 403
    assert viewer.update(f"{ACTIONS}/{aid}", {"title": "x"}).status_code == 403
    assert step(acme, aid, "start", client=viewer).status_code == 403
    assert count(acme) == 1 and acme.api.get(f"{ACTIONS}/{aid}").json["status"] == "open"


def test_a_transition_with_a_stale_if_match_changes_nothing(acme):
    """``If-Match`` is optional on a step; when sent it must be the action's ETag."""
    created = acme.api.post("/api/v1/actions", json={"title": "Fix the door"})
    assert created.status_code == 201
    url = created.headers["Location"]
    etag = created.headers["ETag"]
    assert acme.api.patch(url, json={"title": "Fix the front door"}, etag=etag).status_code == 200
    stale = acme.api.post(f"{url}/transitions", json={"action": "start"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.json["message"]
    assert acme.api.get(url).json["status"] == "open"
    fresh = acme.api.get(url).headers["ETag"]
    started = acme.api.post(f"{url}/transitions", json={"action": "start"}, headers={"If-Match": fresh})
    assert started.status_code == 200 and started.json["status"] == "in_progress"
    assert acme.api.post(f"{url}/transitions", json={"action": "start"}).status_code == 409
