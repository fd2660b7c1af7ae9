"""The after-sales ticket through HTTP: the re-diagnosis loop, the guards, priority clocks."""

from __future__ import annotations

from datetime import datetime

import pytest
import time_machine

from .helpers import RECORDS, SHANGHAI, TICKET, create, evaluation, items, patch, take


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def ok(response):
    assert response.status_code in (200, 201), response.json
    return response.json


def clocks(client, record_id):
    response = client.get(f"{RECORDS}/{record_id}/clocks")
    assert response.status_code == 200, response.json
    return {c["item"]: c for c in response.json}


def diagnose_and_plan(client, record_id):
    ok(patch(client, record_id, {"diagnosis": {"nature": "hardware", "cause": "failed relay"},
                                 "plan": {"planned_at": "2026-03-11T10:00:00+08:00", "steps": "replace relay",
                                          "resources": "1 engineer, relay K2"}}))
    ok(take(client, record_id, "diagnose"))
    ok(take(client, record_id, "plan"))
    ok(take(client, record_id, "start"))


def test_priority_comes_from_importance_and_urgency(centre):
    cases = {("high", "high"): "p1", ("high", "normal"): "p2", ("normal", "high"): "p2",
             ("normal", "normal"): "p3", ("high", "low"): "p3", ("low", "normal"): "p4", ("low", "low"): "p4"}
    for (importance, urgency), priority in cases.items():
        record = ok(create(centre.agent, "aftersales.ticket", {**TICKET, "importance": importance,
                                                                "urgency": urgency, "priority": "p1"}))
        assert record["data"]["priority"] == priority
        assert f"{priority}_received_at" in record["timestamps"]


def test_a_rejected_resolution_loops_to_diagnosis_restarts_the_clock_and_fails_first_time_fix(centre):
    with time_machine.travel(local(2026, 3, 10, 9, 0), tick=False):
        ticket = ok(create(centre.agent, "aftersales.ticket", TICKET))
        ok(take(centre.agent, ticket["id"], "acknowledge"))
    with time_machine.travel(local(2026, 3, 10, 10, 0), tick=False):
        diagnose_and_plan(centre.agent, ticket["id"])
        ok(take(centre.agent, ticket["id"], "resolve"))
        assert clocks(centre.agent, ticket["id"])["p3_resolved"]["state"] == "met"
    with time_machine.travel(local(2026, 3, 10, 11, 0), tick=False):
        refused = take(centre.agent, ticket["id"], "confirm")
        assert refused.status_code == 409
        assert [u["field"] for u in refused.json["unmet"]] == ["data.confirmation.satisfied"]
        ok(patch(centre.agent, ticket["id"], {"confirmation": {"satisfied": False, "comment": "still E3"}}))
        refused = take(centre.agent, ticket["id"], "confirm")
        assert refused.status_code == 409 and "confirmation.satisfied" in refused.json["message"]
        looped = ok(take(centre.agent, ticket["id"], "reject"))
        assert looped["status"] == "diagnosed"
        assert "resolved_at" not in looped["timestamps"] and "rediagnosed_at" in looped["timestamps"]
        assert looped["data"]["fixed_first_time"] is False
        assert clocks(centre.agent, ticket["id"])["p3_resolved"]["state"] == "running"
        assert items(evaluation(centre.agent, ticket["id"], "aftersales.ticket"))["p3_resolved"]["outcome"] == "pending"
    with time_machine.travel(local(2026, 3, 11, 10, 0), tick=False):
        ok(take(centre.agent, ticket["id"], "plan"))
        ok(take(centre.agent, ticket["id"], "start"))
        ok(take(centre.agent, ticket["id"], "resolve"))
        ok(patch(centre.agent, ticket["id"], {"confirmation": {"satisfied": True, "rating": 4}}))
        closed = ok(take(centre.agent, ticket["id"], "confirm"))
        assert closed["status"] == "closed" and closed["data"]["fixed_first_time"] is False
        scored = items(evaluation(centre.agent, ticket["id"], "aftersales.ticket"))
        assert scored["fixed_first_time"]["outcome"] == "fail"
        assert scored["customer_confirmed"]["outcome"] == "pass"
        assert scored["p3_resolved"]["outcome"] == "pass"
        assert scored["p1_resolved"]["outcome"] == "na"
    kpi = centre.manager.get("/api/v1/kpis?metrics=first_time_fix&since=2026-03-01T00:00:00%2B08:00"
                             "&until=2026-04-01T00:00:00%2B08:00")
    assert kpi.status_code == 200, kpi.json


def test_diagnose_and_plan_are_refused_until_their_fields_are_filled(centre):
    ticket = ok(create(centre.agent, "aftersales.ticket", TICKET))
    ok(take(centre.agent, ticket["id"], "acknowledge"))
    refused = take(centre.agent, ticket["id"], "diagnose")
    assert refused.status_code == 409
    assert {u["field"] for u in refused.json["unmet"]} == {"data.diagnosis.nature", "data.diagnosis.cause"}
    assert centre.agent.get(f"{RECORDS}/{ticket['id']}").json["status"] == "acknowledged"


def test_a_p1_response_clock_does_not_pause_while_waiting_for_the_customer_but_resolution_does(centre):
    p1 = {**TICKET, "importance": "high", "urgency": "high"}
    with time_machine.travel(local(2026, 3, 10, 9, 0), tick=False):
        ticket = ok(create(centre.agent, "aftersales.ticket", p1))
    with time_machine.travel(local(2026, 3, 10, 9, 20), tick=False):
        ok(take(centre.agent, ticket["id"], "acknowledge"))
        ok(take(centre.agent, ticket["id"], "wait_for_customer", reason="Customer away until tomorrow"))
        state = clocks(centre.agent, ticket["id"])
        assert state["p1_acknowledged"]["state"] == "met"
        assert state["p1_resolved"]["state"] == "paused"
        # The response clock cannot be paused: waiting is reachable only once acknowledged.
        other = ok(create(centre.agent, "aftersales.ticket", p1))
        assert take(centre.agent, other["id"], "wait_for_customer", reason="x").status_code == 409
    with time_machine.travel(local(2026, 3, 11, 9, 20), tick=False):   # a day later
        ok(take(centre.agent, ticket["id"], "resume"))
        state = clocks(centre.agent, ticket["id"])
        assert state["p1_resolved"]["state"] == "running"
        # Due 24 h after receipt plus the 24 h paused.
        assert datetime.fromisoformat(state["p1_resolved"]["due"]) == local(2026, 3, 12, 9, 0)
    with time_machine.travel(local(2026, 3, 11, 9, 40), tick=False):
        # The other P1 ticket, never acknowledged: its response clock breached at 09:30 yesterday.
        assert items(evaluation(centre.agent, other["id"], "aftersales.ticket"))["p1_acknowledged"]["outcome"] \
            in ("breached", "pending")


def test_progress_reports_are_logged_and_the_longest_silence_is_measured(centre):
    with time_machine.travel(local(2026, 3, 9, 9, 0), tick=False):
        ticket = ok(create(centre.agent, "aftersales.ticket", TICKET))
        ok(take(centre.agent, ticket["id"], "acknowledge"))
        diagnose_and_plan(centre.agent, ticket["id"])
    with time_machine.travel(local(2026, 3, 10, 8, 0), tick=False):
        ok(take(centre.agent, ticket["id"], "report_progress"))
    with time_machine.travel(local(2026, 3, 11, 18, 0), tick=False):
        resolved = ok(take(centre.agent, ticket["id"], "resolve"))
    assert len(resolved["data"]["progress_log"]) == 1
    assert resolved["data"]["max_progress_gap_hours"] == 34.0
    scored = items(evaluation(centre.agent, ticket["id"], "aftersales.ticket"))
    assert scored["progress_reported"]["outcome"] == "fail"


def test_close_unconfirmed_needs_three_attempts_and_fails_customer_confirmed(centre):
    ticket = ok(create(centre.agent, "aftersales.ticket", TICKET))
    ok(take(centre.agent, ticket["id"], "acknowledge"))
    diagnose_and_plan(centre.agent, ticket["id"])
    ok(take(centre.agent, ticket["id"], "resolve"))
    refused = take(centre.agent, ticket["id"], "close_unconfirmed")
    assert refused.status_code == 409
    ok(patch(centre.agent, ticket["id"], {"confirmation": {"contact_attempts": 3}}))
    closed = ok(take(centre.agent, ticket["id"], "close_unconfirmed"))
    assert closed["status"] == "closed" and closed["data"]["fixed_first_time"] is True
    scored = items(evaluation(centre.agent, ticket["id"], "aftersales.ticket"))
    assert scored["customer_confirmed"]["outcome"] == "fail"


@pytest.mark.cross_tenant
def test_another_tenant_cannot_see_tickets(centre, globex):
    ticket = ok(create(centre.agent, "aftersales.ticket", TICKET))
    assert globex.api.get(f"{RECORDS}/{ticket['id']}").status_code == 404
    assert globex.api.get(f"{RECORDS}/{ticket['id']}/clocks").status_code == 404
    assert create(globex.api, "aftersales.ticket", TICKET).status_code == 422
