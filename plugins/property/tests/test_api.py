"""``GET /api/v1/property/sites/<id>/obligations``: an estate's recurring obligations with
their compliance, the same outcomes as core's schedule compliance report; 404 for a
tenant without the plugin and for another tenant's site, 422 for a bad window."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from servq.plugins.property.onboarding import OBLIGATIONS
from tests.factories import ApiClient

SHANGHAI = ZoneInfo("Asia/Shanghai")
PATROL = {"facility": "fire_equipment", "check": "patrol"}
#: February 2026 in Shanghai, as the API writes it (UTC).
FEBRUARY = {"start": "2026-01-31T16:00:00+00:00", "end": "2026-02-28T16:00:00+00:00"}


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def at(instant: datetime):
    return time_machine.travel(instant, tick=False)


def url(site_id: str) -> str:
    return f"/api/v1/property/sites/{site_id}/obligations"


def patrol(client, site_id: str, when: datetime, **data) -> str:
    response = client.post("/api/v1/records", json={
        "kind": "property.facility_check", "site_id": site_id, "occurred_at": when.isoformat(),
        "data": {**PATROL, "result": "ok", **data}})
    assert response.status_code == 201, response.json
    return response.json["id"]


def by_match(obligations: list[dict]) -> dict[tuple, dict]:
    return {(o["facility"], o["check"]): o for o in obligations}


def test_a_site_s_obligations_with_their_compliance(factory, make_estate):
    # Onboarded on 10 January 2026: the periods start on 1 January (Shanghai time).
    with at(local(2026, 1, 10, 9)):
        estate = make_estate("estate")
        garden, river = estate.sites["GARDEN"], estate.sites["RIVER"]
        january = patrol(estate.inspector, garden, local(2026, 1, 8, 10))
        patrol(estate.inspector, river, local(2026, 1, 9, 10))
    with at(local(2026, 2, 14, 10)):
        inspector = ApiClient(factory.client, factory.token(estate.id, estate.emails["inspector"]))
        patrol(inspector, river, local(2026, 2, 12, 10))
        # A fire-equipment *test* at Garden Court does not meet its February patrol.
        patrol(inspector, garden, local(2026, 2, 14, 10), check="test")

    with at(local(2026, 3, 1, 9)):
        viewer = ApiClient(factory.client, factory.token(estate.id, estate.emails["viewer"]))
        response = viewer.get(url(garden))
        assert response.status_code == 200, response.json
        body = response.json
        # Default window: the last 12 months up to now.
        assert body["site_id"] == garden
        assert datetime.fromisoformat(body["until"]) == local(2026, 3, 1, 9)
        assert datetime.fromisoformat(body["since"]) == local(2025, 3, 1, 9)

        obligations = body["obligations"]
        assert [o["title"] for o in obligations] == sorted(o["title"] for o in obligations)
        assert all(o["key"].startswith("property.") and o["key"].endswith(garden) for o in obligations)
        matches = by_match(obligations)
        assert set(matches) == {(o.facility, o.check) for o in OBLIGATIONS} | {(None, None)}
        assert matches[(None, None)]["kind"] == "observation"  # the owner survey round
        assert {(o.facility, o.check): o.rrule for o in OBLIGATIONS} == {
            key: o["rrule"] for key, o in matches.items() if key != (None, None)}

        fire = matches[("fire_equipment", "patrol")]
        assert fire["title"] == "Fire equipment patrol 消防设施巡查 (GARDEN)"
        assert fire["compliance"] == {
            "periods": 3, "met": 1, "missed": 1, "open": 1, "percent": 50.0,
            "last_missed": FEBRUARY}
        test = matches[("fire_equipment", "test")]["compliance"]
        assert (test["met"], test["missed"], test["open"], test["percent"], test["last_missed"]) == (
            1, 0, 0, 100.0, None)
        drainage = matches[("drainage", "inspection")]["compliance"]
        assert (drainage["met"], drainage["missed"], drainage["open"], drainage["percent"]) == (0, 2, 1, 0.0)
        septic = matches[("septic_tank", "emptying")]["compliance"]
        assert (septic["periods"], septic["open"], septic["percent"], septic["last_missed"]) == (1, 1, None, None)

        # Each obligation agrees with core's compliance report of the same window.
        window = {"since": body["since"], "until": body["until"]}
        for obligation in obligations:
            core = viewer.get(f"/api/v1/schedules/{obligation['schedule_id']}/compliance",
                              query_string=window)
            assert core.status_code == 200, core.json
            summary = obligation["compliance"]
            assert core.json["summary"] == {k: summary[k] for k in ("met", "missed", "open")}
            assert len(core.json["periods"]) == summary["periods"]
        core = viewer.get(f"/api/v1/schedules/{fire['schedule_id']}/compliance", query_string=window).json
        assert [(p["outcome"], p["record_id"]) for p in core["periods"]] == [
            ("met", january), ("missed", None), ("open", None)]

        # An explicit window: February alone.
        feb = viewer.get(url(garden), query_string={"since": local(2026, 2, 1).isoformat(),
                                                    "until": local(2026, 3, 1).isoformat()}).json
        assert by_match(feb["obligations"])[("fire_equipment", "patrol")]["compliance"] == {
            "periods": 1, "met": 0, "missed": 1, "open": 0, "percent": 0.0,
            "last_missed": FEBRUARY}

        # The other estate patrolled both months: its own schedules, fully met.
        other = by_match(viewer.get(url(river)).json["obligations"])
        assert other[("fire_equipment", "patrol")]["schedule_id"] != fire["schedule_id"]
        assert other[("fire_equipment", "patrol")]["compliance"]["percent"] == 100.0


def test_a_tenant_without_the_plugin_gets_404(factory, globex, make_estate):
    estate = make_estate("estate")
    site = globex.api.post("/api/v1/sites", json={"code": "HQ", "name": "Head office"})
    assert site.status_code == 201, site.json
    mine = globex.api.get(url(site.json["id"]))
    assert mine.status_code == 404 and mine.json["message"] == "Not found."
    assert globex.api.get(url(estate.sites["GARDEN"])).status_code == 404
    # The 404 is the plugin gate's: once enabled, the same site answers (no obligations
    # until an onboarding creates them).
    globex.enable("property")
    enabled = globex.api.get(url(site.json["id"]))
    assert enabled.status_code == 200, enabled.json
    assert enabled.json["obligations"] == []
    assert globex.api.get(url(estate.sites["GARDEN"])).status_code == 404


@pytest.mark.cross_tenant("GET /api/v1/property/sites/<uuid:site_id>/obligations")
def test_another_tenant_s_site_or_an_unknown_site_is_404(make_estate):
    estate, other = make_estate("estate"), make_estate("other")
    response = other.api.get(url(estate.sites["GARDEN"]))
    assert response.status_code == 404 and response.json["message"] == "Site not found."
    assert other.api.get(url("6f1c3c1e-0000-4000-8000-000000000000")).status_code == 404
    assert other.api.get(url(other.sites["GARDEN"])).status_code == 200


def test_a_bad_window_is_422(make_estate):
    estate = make_estate("estate")
    garden = url(estate.sites["GARDEN"])
    cases = [
        {"since": "2026-03-01T00:00:00+08:00", "until": "2026-03-01T00:00:00+08:00"},
        {"since": "2026-04-01T00:00:00+08:00", "until": "2026-03-01T00:00:00+08:00"},
        {"since": "last month"},
        {"until": "2026-13-01T00:00:00+08:00"},
        {"since": "2026-03-01T00:00:00"},  # no offset
        {"since": "2999-01-01T00:00:00+00:00"},  # after the default 'until' (now)
    ]
    for query in cases:
        response = estate.viewer.get(garden, query_string=query)
        assert response.status_code == 422, (query, response.json)
        named = set(response.json["errors"]["query"])
        assert named and named <= set(query), (query, response.json)


def test_the_route_is_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").json
    op = spec["paths"]["/api/v1/property/sites/{site_id}/obligations"]["get"]
    assert {p["name"] for p in op["parameters"] if p["in"] == "query"} == {"since", "until"}
    assert op["security"] == [{"bearerAuth": []}]
    assert "PropertySiteObligations" in spec["components"]["schemas"]
