"""Visits (pre-visit call, rebooking, signed sheet) and installations (five days) through HTTP."""

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


def visit_data(ticket_id, **extra):
    return {"ticket_id": ticket_id,
            "appointment": {"from": "2026-03-10T14:00:00+08:00", "to": "2026-03-10T16:00:00+08:00",
                            "agreed_at": "2026-03-10T09:00:00+08:00"}, **extra}


def test_completing_a_visit_without_a_signed_sheet_is_refused_naming_the_field(centre):
    with time_machine.travel(local(2026, 3, 10, 9, 0), tick=False):
        ticket = ok(create(centre.agent, "aftersales.ticket", TICKET))
        visit = ok(create(centre.agent, "aftersales.visit", visit_data(ticket["id"])))
    with time_machine.travel(local(2026, 3, 10, 13, 0), tick=False):
        ok(take(centre.agent, visit["id"], "confirm"))
    with time_machine.travel(local(2026, 3, 10, 15, 0), tick=False):
        ok(take(centre.agent, visit["id"], "arrive"))
        refused = take(centre.agent, visit["id"], "complete")
        assert refused.status_code == 409
        assert [u["field"] for u in refused.json["unmet"]] == ["data.service_sheet.signed"]
        assert "service_sheet.signed" in refused.json["message"]
        assert centre.agent.get(f"{RECORDS}/{visit['id']}").json["status"] == "on_site"
        ok(patch(centre.agent, visit["id"], {"work_done": "Relay replaced",
                                             "service_sheet": {"signed": True, "signed_by": "Liu Yang"}}))
        done = ok(take(centre.agent, visit["id"], "complete"))
    assert done["status"] == "completed"
    scored = evaluation(centre.agent, visit["id"], "aftersales.visit")
    outcome = {code: i["outcome"] for code, i in items(scored).items()}
    assert outcome == {"confirmed_before_visit": "pass", "arrived_in_window": "pass", "rebook_explained": "na",
                       "not_left_hanging": "na", "sheet_signed": "pass"}
    assert scored["percent"] == 100


def test_a_visit_not_confirmed_before_the_appointment_fails_and_a_late_rebooking_is_not_explained(centre):
    with time_machine.travel(local(2026, 3, 10, 9, 0), tick=False):
        ticket = ok(create(centre.agent, "aftersales.ticket", TICKET))
        visit = ok(create(centre.agent, "aftersales.visit", visit_data(ticket["id"])))
        refused = take(centre.agent, visit["id"], "rebook")
        assert refused.status_code == 409 and refused.json["unmet"][0]["field"] == "data.rebookings"
    with time_machine.travel(local(2026, 3, 10, 14, 30), tick=False):   # after the old start
        ok(patch(centre.agent, visit["id"], {
            "appointment": {"from": "2026-03-11T14:00:00+08:00", "to": "2026-03-11T16:00:00+08:00"},
            "rebookings": [{"at": "2026-03-10T14:30:00+08:00", "reason": "Engineer delayed",
                            "old_from": "2026-03-10T14:00:00+08:00", "new_from": "2026-03-11T14:00:00+08:00",
                            "new_to": "2026-03-11T16:00:00+08:00"}]}))
        rebooked = ok(take(centre.agent, visit["id"], "rebook"))
    assert rebooked["status"] == "scheduled" and rebooked["data"]["rebook_explained"] is False
    with time_machine.travel(local(2026, 3, 11, 14, 30), tick=False):   # not called before leaving
        ok(centre.manager.post(f"{RECORDS}/{visit['id']}/evaluate"))
        scored = items(evaluation(centre.agent, visit["id"], "aftersales.visit"))
    assert scored["rebook_explained"]["outcome"] == "fail"
    assert scored["confirmed_before_visit"]["outcome"] in ("breached", "fail")


def test_an_unresolved_visit_needs_an_escalation_and_a_promised_date(centre):
    ticket = ok(create(centre.agent, "aftersales.ticket", TICKET))
    visit = ok(create(centre.agent, "aftersales.visit", visit_data(ticket["id"], unresolved=True)))
    assert visit["data"]["not_left_hanging"] is False
    fixed = ok(patch(centre.agent, visit["id"], {"escalated_to": "国内市场部",
                                                 "promised_at": "2026-03-20T18:00:00+08:00"}))
    assert fixed["data"]["not_left_hanging"] is True


def test_a_visit_must_name_a_ticket_of_the_tenant(centre, globex):
    refused = create(centre.agent, "aftersales.visit", visit_data("00000000-0000-0000-0000-000000000001"))
    assert refused.status_code == 422 and "ticket_id" in str(refused.json)


def installation(client):
    return ok(create(client, "aftersales.installation", {
        "contract_ref": "HX-2026-031", "customer": {"name": "Jiangxi Water Works", "phone": "0791-86543210"},
        "contract_due_at": "2026-03-20T18:00:00+08:00",
        "plans": {"schedule": True, "materials_list": True, "cost_sheet": True},
        "delivery": {"arrived_city_at": "2026-03-02T09:00:00+08:00", "customer_called_at": "2026-03-02T10:00:00+08:00",
                     "address_confirmed": True, "quantity_confirmed": True, "signed": True}},
        occurred_at="2026-03-01T09:00:00+08:00"))


@pytest.mark.parametrize("day, outcome", [(5, "pass"), (6, "fail")])
def test_an_installation_accepted_on_day_6_fails(centre, day, outcome):
    with time_machine.travel(local(2026, 3, 2, 9, 0), tick=False):
        record = installation(centre.agent)
        for action in ("deliver", "start"):
            ok(take(centre.agent, record["id"], action))
    with time_machine.travel(local(2026, 3, 10, 12, 0), tick=False):
        ok(take(centre.agent, record["id"], "commission"))
    with time_machine.travel(local(2026, 3, 10 + day, 11, 0), tick=False):
        ok(take(centre.agent, record["id"], "accept"))
        ok(take(centre.agent, record["id"], "hand_over"))
        scored = evaluation(centre.agent, record["id"], "aftersales.installation")
    result = items(scored)
    want = "pass" if outcome == "pass" else "breached"
    assert result["accepted_within_5_days"]["outcome"] in ({want, "fail"} if outcome == "fail" else {want})
    assert result["within_contract_period"]["outcome"] == "pass"
    assert result["customer_called_on_arrival"]["outcome"] == "pass"
    assert result["training_delivered"]["outcome"] == "na"
    actions = centre.manager.get(f"/api/v1/actions?record_id={record['id']}").json
    assert bool([a for a in actions if a["item_code"] == "accepted_within_5_days"]) is (outcome == "fail")


@pytest.mark.cross_tenant
def test_another_tenant_cannot_see_visits_or_installations(centre, globex):
    ticket = ok(create(centre.agent, "aftersales.ticket", TICKET))
    visit = ok(create(centre.agent, "aftersales.visit", visit_data(ticket["id"])))
    setup = installation(centre.agent)
    for record in (visit, setup):
        assert globex.api.get(f"{RECORDS}/{record['id']}").status_code == 404
        assert globex.api.get(f"{RECORDS}/{record['id']}/transitions").status_code == 404
