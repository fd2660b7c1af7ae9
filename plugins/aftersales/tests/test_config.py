"""The plugin's settings: validated, and written into the standards at onboarding."""

from __future__ import annotations

from datetime import datetime

import time_machine

from .helpers import SHANGHAI, TICKET, create, evaluation, items, patch, take


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def ok(response):
    assert response.status_code in (200, 201), response.json
    return response.json


def test_defaults_leave_the_shipped_standards_alone(centre):
    versions = ok(centre.manager.get("/api/v1/standards/aftersales.ticket/versions"))
    assert [v["version"] for v in versions] == [1]
    plugin = ok(centre.manager.get("/api/v1/plugins/aftersales"))
    assert plugin["configuration"]["priority_targets"]["resolution"]["p1"] == "24h"
    assert plugin["configuration"]["closing_thanks"] == "感谢您的来电"


def test_priority_targets_and_speech_band_become_a_new_version(make_centre):
    centre = make_centre("tight", configuration={
        "priority_targets": {"response": {"p1": "15m", "p2": "1 working hour", "p3": "4 working hours",
                                          "p4": "1 working day"},
                             "resolution": {"p1": "8h", "p2": "2 working days", "p3": "5 working days",
                                            "p4": "10 working days"}},
        "speech_rate_min": 140, "speech_rate_max": 240})
    ticket = ok(centre.manager.get("/api/v1/standards/aftersales.ticket"))
    rules = {i["code"]: i["rule"] for i in ticket["document"]["items"]} if "document" in ticket else \
        {i["code"]: i["rule"] for i in ticket["items"]}
    assert rules["p1_acknowledged"]["limit"] == "15m" and rules["p1_resolved"]["limit"] == "8h"
    assert rules["p3_resolved"]["limit"] == "5 working days"
    qa = ok(centre.manager.get("/api/v1/standards/aftersales.call_qa"))
    band = {i["code"]: i["rule"] for i in qa.get("document", qa)["items"]}["speech_rate_tone"]
    assert (band["min"], band["max"]) == (140, 240)


def test_bad_settings_are_a_422_naming_the_field(centre):
    for configuration, field in (({"speech_rate_min": 300, "speech_rate_max": 200}, "speech_rate_max"),
                                 ({"priority_targets": {"response": {"p1": "soon"}}}, "priority_targets"),
                                 ({"colour": "red"}, "colour")):
        etag = centre.api.get("/api/v1/plugins/aftersales").headers["ETag"]
        response = centre.api.put("/api/v1/plugins/aftersales", json={"active": True, "configuration": configuration},
                                  headers={"If-Match": etag})
        assert response.status_code == 422, response.json
        assert field in str(response.json["errors"])


def test_a_ticket_open_past_half_its_limit_must_be_escalated(centre):
    p1 = {**TICKET, "importance": "high", "urgency": "high"}
    with time_machine.travel(local(2026, 3, 10, 9, 0), tick=False):
        quiet = ok(create(centre.agent, "aftersales.ticket", p1))
        loud = ok(create(centre.agent, "aftersales.ticket", p1))
        for record in (quiet, loud):
            ok(take(centre.agent, record["id"], "acknowledge"))
            ok(patch(centre.agent, record["id"], {"diagnosis": {"nature": "hw", "cause": "relay"},
                                                  "plan": {"planned_at": "2026-03-10T20:00:00+08:00", "steps": "x"}}))
            for action in ("diagnose", "plan", "start"):
                ok(take(centre.agent, record["id"], action))
    with time_machine.travel(local(2026, 3, 10, 20, 0), tick=False):
        ok(patch(centre.agent, loud["id"], {"escalation": {"to": "国内市场部",
                                                           "promised_at": "2026-03-11T09:00:00+08:00"}}))
        ok(take(centre.agent, loud["id"], "escalate"))
    with time_machine.travel(local(2026, 3, 10, 23, 0), tick=False):   # 14 h: past half of 24 h
        for record in (quiet, loud):
            ok(take(centre.agent, record["id"], "resolve"))
    assert items(evaluation(centre.agent, quiet["id"], "aftersales.ticket"))["escalated_when_stuck"]["outcome"] == "fail"
    assert items(evaluation(centre.agent, loud["id"], "aftersales.ticket"))["escalated_when_stuck"]["outcome"] == "pass"
