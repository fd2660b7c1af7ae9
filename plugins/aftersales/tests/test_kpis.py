"""The after-sales KPIs through HTTP, on a handful of tickets, visits and installations."""

from __future__ import annotations

from datetime import datetime

import time_machine

from .helpers import SHANGHAI, TICKET, create, patch, take

KPIS = "/api/v1/kpis"


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def ok(response):
    assert response.status_code in (200, 201), response.json
    return response.json


def kpi(client, metrics, **params):
    response = client.get(KPIS, query_string={"metrics": metrics, "since": local(2026, 3, 1).isoformat(),
                                              "until": local(2026, 4, 1).isoformat(), **params})
    assert response.status_code == 200, response.json
    return response.json["rows"][0]["values"]


def test_ticket_rates_backlog_and_pain(centre):
    with time_machine.travel(local(2026, 3, 2, 9, 0), tick=False):
        ids = [ok(create(centre.agent, "aftersales.ticket", {**TICKET, "product": {
            "item_code": "WTC-200", "serial_no": f"S{n}"}}))["id"] for n in range(4)]
        for record_id in ids[:2]:
            ok(take(centre.agent, record_id, "acknowledge"))
            ok(patch(centre.agent, record_id, {"diagnosis": {"nature": "hw", "cause": "relay"},
                                               "plan": {"planned_at": "2026-03-03T10:00:00+08:00", "steps": "swap"}}))
            for action in ("diagnose", "plan", "start", "resolve"):
                ok(take(centre.agent, record_id, action))
        ok(take(centre.agent, ids[1], "reject"))
        ok(patch(centre.agent, ids[0], {"confirmation": {"satisfied": True, "rating": 4}}))
        ok(take(centre.agent, ids[0], "confirm"))
        # The same customer calls again about serial S3: the earlier ticket is a repeat contact.
        ok(create(centre.agent, "aftersales.ticket", {**TICKET, "product": {"item_code": "WTC-200",
                                                                            "serial_no": "S3"}}))
    with time_machine.travel(local(2026, 3, 6, 9, 0), tick=False):
        values = kpi(centre.manager, "aftersales.resolution_rate,aftersales.closure_rate,"
                     "aftersales.rediagnosis_rate,aftersales.repeat_contact_rate,aftersales.satisfaction,"
                     "aftersales.backlog_age,aftersales.pain_index")
    assert values["aftersales.resolution_rate"] == 20.0     # 1 of 5 (the rejected one is open again)
    assert values["aftersales.closure_rate"] == 20.0
    assert values["aftersales.rediagnosis_rate"] == 20.0
    assert values["aftersales.repeat_contact_rate"] == 20.0
    assert values["aftersales.satisfaction"] == 4.0
    assert values["aftersales.backlog_age"] == {"0-1d": 0, "1-3d": 0, "3-7d": 4, "7d+": 0}
    assert values["aftersales.pain_index"] >= 60.0           # 2 (re-diagnosis) + 1 (repeat), + breaches
    by_product = kpi(centre.manager, "aftersales.repeat_contact_rate", by="product")
    assert by_product["aftersales.repeat_contact_rate"] == {"WTC-200": 20.0}


def test_a_tenant_without_the_plugin_does_not_have_its_kpis(globex):
    response = globex.api.get(KPIS, query_string={"metrics": "aftersales.closure_rate",
                                                   "since": local(2026, 3, 1).isoformat(),
                                                   "until": local(2026, 4, 1).isoformat()})
    assert response.status_code == 422
