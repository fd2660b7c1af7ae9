"""Workflows through HTTP: allowed and refused actions, stamps, ``at``, waiting states,
audit, hooks, ETags, roles and tenancy (``core/records/workflows.py``, ``core/api/workflows.py``).

A throwaway plugin declares a small workflow kind so the rules are shown on a kind that
is not the complaint; the complaint's own workflow is in ``tests/test_complaints.py``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from marshmallow import Schema, fields
from sqlalchemy import select

import servq.core.deadlines.clocks
from servq.core.models import AuditEvent
from servq.core.plugins import RecordKind, Transition, Workflow, hookimpl

RECORDS = "/api/v1/records"
UTC = timezone.utc


class TicketData(Schema):
    title = fields.String(required=True)
    priority = fields.String(load_default="low")


TICKET_FLOW = Workflow(
    transitions=(
        Transition("start", ("new",), "working", "started_at", {"en": "Start", "zh": "开始"}),
        Transition("hold", ("working",), "on_hold", "held_at", {"en": "Put on hold", "zh": "挂起"},
                   restamp=True),
        Transition("continue", ("on_hold",), "working", "started_at", {"en": "Continue", "zh": "继续"}),
        Transition("finish", ("working",), "done", "done_at", {"en": "Finish", "zh": "完成"}),
        Transition("redo", ("done",), "working", "redone_at", {"en": "Redo", "zh": "返工"},
                   clears=("done_at",), restamp=True),
    ),
    initial_stamp="opened_at",
    stamp_by="priority",
    waiting=("on_hold",),
    final=("done",),
)


class FlowPlugin:
    """Tickets with a workflow (test plugin)."""

    __test__ = False

    def __init__(self):
        self.changes: list[dict] = []

    @hookimpl
    def register_record_kinds(self):
        return [RecordKind(name="flow.ticket", schema=TicketData, title={"en": "Ticket", "zh": "工单"},
                           statuses=("new", "working", "on_hold", "done"), workflow=TICKET_FLOW)]

    @hookimpl
    def record_changed(self, record, changes):
        self.changes.append(changes)


@pytest.fixture
def flow():
    return FlowPlugin()


@pytest.fixture
def app_config(app_config, flow):
    app_config["EXTRA_PLUGINS"] = [("flow", flow)]
    return app_config


@pytest.fixture
def clocks(monkeypatch):
    """Records the calls the workflow makes into the clocks (servq.core.deadlines.clocks)
    instead of making them."""
    calls = []

    def recorder(name):
        return lambda session, record, at, *rest: calls.append((name, str(record.id), at, *rest))

    for name in ("pause_clocks", "resume_clocks"):
        monkeypatch.setattr(servq.core.deadlines.clocks, name, recorder(name))
    return calls


def new_ticket(tenant, **extra):
    tenant.enable("flow")
    body = {"kind": "flow.ticket", "data": {"title": "Leaking tap", "priority": "high"},
            "occurred_at": (datetime.now(UTC) - timedelta(hours=5)).isoformat(), **extra}
    r = tenant.api.post(RECORDS, json=body)
    assert r.status_code == 201, r.json
    return r.json


def act(api, record_id, **body):
    """POST a transition with the record's current ETag."""
    etag = api.get(f"{RECORDS}/{record_id}").headers["ETag"]
    return api.post(f"{RECORDS}/{record_id}/transitions", json=body, headers={"If-Match": etag})


def test_creation_stamps_the_initial_stamp_and_its_keyed_copy(acme):
    ticket = new_ticket(acme)
    assert ticket["status"] == "new"
    assert ticket["timestamps"] == {"opened_at": ticket["occurred_at"], "high_opened_at": ticket["occurred_at"]}


def test_a_workflow_kind_starts_in_its_initial_status(acme):
    acme.enable("flow")
    r = acme.api.post(RECORDS, json={"kind": "flow.ticket", "status": "done", "data": {"title": "x"}})
    assert r.status_code == 422
    assert "transitions" in r.json["errors"]["json"]["status"][0]


def test_allowed_actions_are_listed_with_titles(acme):
    ticket = new_ticket(acme)
    r = acme.api.get(f"{RECORDS}/{ticket['id']}/transitions")
    assert r.status_code == 200
    assert r.json == {"status": "new", "waiting": False, "final": False, "actions": [
        {"action": "start", "title": {"en": "Start", "zh": "开始"}, "target": "working",
         "stamp": "started_at", "needs_reason": False, "requires": {}, "satisfied": True,
         "unmet": []}]}


def test_transition_sets_status_stamps_audits_and_fires_the_hook(acme, flow):
    ticket = new_ticket(acme)
    at = datetime.now(UTC) - timedelta(hours=1)
    r = act(acme.api, ticket["id"], action="start", note="on it", at=at.isoformat())
    assert r.status_code == 200, r.json
    assert r.json["status"] == "working"
    assert r.json["timestamps"]["started_at"] == at.isoformat()
    assert r.headers["ETag"] == acme.api.get(f"{RECORDS}/{ticket['id']}").headers["ETag"]
    assert flow.changes[-1] == {"status": ["new", "working"],
                                "timestamps.started_at": [None, at.isoformat()]}
    history = acme.api.get(f"{RECORDS}/{ticket['id']}/history").json
    event = [e for e in history if e["action"] == "transition"][0]
    assert event["changes"]["action"] == "start" and event["changes"]["note"] == "on it"
    assert event["changes"]["status"] == ["new", "working"] and event["actor"]["name"] == "owner"
    # now the list of allowed actions follows the new state
    listed = acme.api.get(f"{RECORDS}/{ticket['id']}/transitions").json
    assert [a["action"] for a in listed["actions"]] == ["hold", "finish"]


def test_an_action_not_allowed_now_is_409_listing_the_allowed_ones(acme):
    ticket = new_ticket(acme)
    r = act(acme.api, ticket["id"], action="finish")
    assert r.status_code == 409
    assert r.json["allowed"] == ["start"]
    assert "'finish' is not allowed from status 'new'" in r.json["message"]
    r = act(acme.api, ticket["id"], action="fly")
    assert r.status_code == 409 and r.json["allowed"] == ["start"]
    assert "Unknown action 'fly'" in r.json["message"]
    assert acme.api.get(f"{RECORDS}/{ticket['id']}").json["status"] == "new"


def test_at_may_not_be_in_the_future_nor_before_the_record(acme):
    ticket = new_ticket(acme)
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    r = act(acme.api, ticket["id"], action="start", at=future)
    assert r.status_code == 422 and "in the future" in r.json["errors"]["json"]["at"][0]
    early = (datetime.fromisoformat(ticket["occurred_at"]) - timedelta(minutes=1)).isoformat()
    r = act(acme.api, ticket["id"], action="start", at=early)
    assert r.status_code == 422 and "before the record's" in r.json["errors"]["json"]["at"][0]
    r = act(acme.api, ticket["id"], action="start", at="2026-01-01T10:00:00")  # naive
    assert r.status_code == 422
    after = acme.api.get(f"{RECORDS}/{ticket['id']}").json
    assert after["status"] == "new" and "started_at" not in after["timestamps"]


def test_a_later_step_may_not_be_dated_before_an_earlier_one(acme):
    ticket = new_ticket(acme)
    started = datetime.now(UTC) - timedelta(hours=1)
    assert act(acme.api, ticket["id"], action="start", at=started.isoformat()).status_code == 200
    r = act(acme.api, ticket["id"], action="finish", at=(started - timedelta(minutes=10)).isoformat())
    assert r.status_code == 422 and "started_at" in r.json["errors"]["json"]["at"][0]


def test_waiting_needs_a_reason_and_pauses_then_resumes_the_clocks(acme, clocks):
    ticket = new_ticket(acme)
    assert act(acme.api, ticket["id"], action="start").status_code == 200
    listed = acme.api.get(f"{RECORDS}/{ticket['id']}/transitions").json
    assert [a["needs_reason"] for a in listed["actions"]] == [True, False]
    r = act(acme.api, ticket["id"], action="hold")
    assert r.status_code == 422 and "reason" in r.json["errors"]["json"]
    assert clocks == []
    held = datetime.now(UTC)
    r = act(acme.api, ticket["id"], action="hold", reason="waiting for a part", at=held.isoformat())
    assert r.status_code == 200 and r.json["status"] == "on_hold"
    assert clocks == [("pause_clocks", ticket["id"], held, "waiting for a part", "on_hold")]
    assert acme.api.get(f"{RECORDS}/{ticket['id']}/transitions").json["waiting"] is True
    r = act(acme.api, ticket["id"], action="continue")
    assert r.status_code == 200 and r.json["status"] == "working"
    assert [c[0] for c in clocks] == ["pause_clocks", "resume_clocks"]
    history = acme.api.get(f"{RECORDS}/{ticket['id']}/history").json
    hold = [e for e in history if e["action"] == "transition" and e["changes"]["action"] == "hold"][0]
    assert hold["changes"]["reason"] == "waiting for a part"


def test_stamps_are_written_once_unless_restamped_and_clears_remove_them(acme):
    ticket = new_ticket(acme)
    first = act(acme.api, ticket["id"], action="start").json["timestamps"]["started_at"]
    act(acme.api, ticket["id"], action="hold", reason="part")
    again = act(acme.api, ticket["id"], action="continue").json["timestamps"]
    assert again["started_at"] == first
    done = act(acme.api, ticket["id"], action="finish").json
    assert done["status"] == "done" and "done_at" in done["timestamps"]
    redone = act(acme.api, ticket["id"], action="redo").json
    assert "done_at" not in redone["timestamps"] and "redone_at" in redone["timestamps"]
    assert act(acme.api, ticket["id"], action="finish").status_code == 200


def test_status_of_a_workflow_kind_cannot_be_patched(acme):
    ticket = new_ticket(acme)
    url = f"{RECORDS}/{ticket['id']}"
    r = acme.api.update(url, {"status": "done"})
    assert r.status_code == 409
    assert f"POST /api/v1/records/{ticket['id']}/transitions" in r.json["message"]
    assert r.json["allowed"] == ["start"]
    # other fields still change; the unchanged status may be sent along
    r = acme.api.update(url, {"data": {"title": "Leaking tap, 2nd floor", "priority": "high"}, "status": "new"})
    assert r.status_code == 200 and r.json["status"] == "new"


def test_keyed_stamp_follows_the_data_and_occurred_at_follows_into_the_stamps(acme):
    ticket = new_ticket(acme)
    url = f"{RECORDS}/{ticket['id']}"
    r = acme.api.update(url, {"data": {"title": "Leaking tap", "priority": "low"}})
    assert r.status_code == 200
    assert set(r.json["timestamps"]) == {"opened_at", "low_opened_at"}
    earlier = (datetime.fromisoformat(ticket["occurred_at"]) - timedelta(hours=1)).astimezone(UTC)
    r = acme.api.update(url, {"occurred_at": earlier.isoformat()})
    assert r.json["timestamps"] == {"opened_at": earlier.isoformat(), "low_opened_at": earlier.isoformat()}
    started = act(acme.api, ticket["id"], action="start").json["timestamps"]["started_at"]
    r = acme.api.update(url, {"occurred_at": (datetime.fromisoformat(started) + timedelta(minutes=1)).isoformat()})
    assert r.status_code == 422 and "started_at" in r.json["errors"]["json"]["occurred_at"][0]


def test_a_kind_without_workflow_has_no_transitions(acme):
    obs = acme.api.post(RECORDS, json={"kind": "observation", "data": {"title": "Wet floor"}}).json
    assert acme.api.get(f"{RECORDS}/{obs['id']}/transitions").json["actions"] == []
    r = act(acme.api, obs["id"], action="close")
    assert r.status_code == 409 and r.json["allowed"] == [] and "no workflow" in r.json["message"]


def test_transition_needs_if_match_and_a_fresh_etag(acme):
    ticket = new_ticket(acme)
    url = f"{RECORDS}/{ticket['id']}/transitions"
    assert acme.api.post(url, json={"action": "start"}).status_code == 428
    r = acme.api.post(url, json={"action": "start"}, headers={"If-Match": '"stale"'})
    assert r.status_code == 412
    assert acme.api.get(f"{RECORDS}/{ticket['id']}").json["status"] == "new"
    assert acme.api.post(url, json={"action": "start", "extra": 1},
                         headers={"If-Match": acme.api.get(f"{RECORDS}/{ticket['id']}").headers["ETag"]}
                         ).status_code == 422


def test_viewer_may_list_but_not_act(acme):
    ticket = new_ticket(acme)
    viewer = acme.as_role("viewer")
    assert viewer.get(f"{RECORDS}/{ticket['id']}/transitions").status_code == 200
    assert act(viewer, ticket["id"], action="start").status_code == 403
    agent = acme.as_role("agent")
    assert act(agent, ticket["id"], action="start").status_code == 200


@pytest.mark.cross_tenant("GET /api/v1/records/<uuid:record_id>/transitions",
                          "POST /api/v1/records/<uuid:record_id>/transitions")
def test_another_tenants_record_is_404_and_unchanged(acme, globex):
    ticket = new_ticket(acme)
    globex.enable("flow")
    url = f"{RECORDS}/{ticket['id']}/transitions"
    assert globex.api.get(url).status_code == 404
    etag = acme.api.get(f"{RECORDS}/{ticket['id']}").headers["ETag"]
    assert globex.api.post(url, json={"action": "start"}, headers={"If-Match": etag}).status_code == 404
    assert acme.api.get(f"{RECORDS}/{ticket['id']}").json["status"] == "new"
    with acme.session() as s:
        assert s.scalars(select(AuditEvent.action).where(AuditEvent.entity_id == uuid.UUID(ticket["id"]))).all() \
            == ["created"]


def test_bad_workflows_are_refused_when_the_kind_is_declared():
    with pytest.raises(ValueError, match="unknown state 'gone'"):
        RecordKind(name="x.y", schema=TicketData, statuses=("a", "b"),
                   workflow=Workflow((Transition("go", ("a",), "gone"),)))
    with pytest.raises(ValueError, match="initial state cannot be a waiting state"):
        RecordKind(name="x.y", schema=TicketData, statuses=("a", "b"),
                   workflow=Workflow((Transition("go", ("a",), "b"),), waiting=("a",)))
    with pytest.raises(ValueError, match="declared twice"):
        RecordKind(name="x.y", schema=TicketData, statuses=("a", "b"),
                   workflow=Workflow((Transition("go", ("a",), "b"), Transition("go", ("a",), "a"))))
    with pytest.raises(ValueError, match="personal paths"):
        RecordKind(name="x.y", schema=TicketData, personal=("customer..phone",))
