"""The property plugin's record kinds through HTTP: who may use them, their data, the
work-order workflow and the facility checks' validation and derived values."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import time_machine

RECORDS = "/api/v1/records"
SHANGHAI = ZoneInfo("Asia/Shanghai")
REPAIR = {"channel": "hotline", "unit": "3-2-1201", "category": "drainage", "priority": "normal",
          "description": "Blocked floor drain in the bathroom",
          "owner": {"name": "Zhang Wei", "phone": "13812345678"}}


def create(client, kind, data, **extra):
    return client.post(RECORDS, json={"kind": kind, "data": data, **extra})


def take(client, record_id, action, **body):
    etag = client.get(f"{RECORDS}/{record_id}").headers["ETag"]
    return client.post(f"{RECORDS}/{record_id}/transitions", json={"action": action, **body},
                       headers={"If-Match": etag})


def check(client, **data):
    response = create(client, "property.facility_check", data)
    return response


# -- who may use the kinds ----------------------------------------------------------------


def test_a_tenant_without_the_plugin_cannot_use_its_kinds_or_routes(estate, globex):
    for kind, data in (("property.work_order", REPAIR),
                       ("property.facility_check", {"facility": "drainage", "check": "patrol", "result": "ok"})):
        refused = create(globex.api, kind, data)
        assert refused.status_code == 422, refused.json
        assert "Unknown record kind" in refused.json["errors"]["json"]["kind"][0]
        assert globex.api.get(f"/api/v1/kinds/{kind}").status_code == 404
        assert create(estate.api, kind, data).status_code == 201
    assert not [k for k in globex.api.get("/api/v1/kinds").json if k["name"].startswith("property.")]
    assert globex.api.get(RECORDS).json == []
    # The plugin has no routes of its own: /api/v1/property/... is a 404 for everyone.
    for client in (globex.api, estate.api):
        assert client.get("/api/v1/property/work_orders").status_code == 404
    # Its standards are not the other tenant's either.
    assert globex.api.get("/api/v1/standards/property.work_order").status_code == 404
    assert estate.api.get("/api/v1/standards/property.work_order").status_code == 200


def test_records_of_the_estate_are_not_found_by_another_tenant(estate, globex):
    record = create(estate.agent, "property.work_order", REPAIR).json
    assert globex.api.get(f"{RECORDS}/{record['id']}").status_code == 404
    assert globex.api.get(f"{RECORDS}/{record['id']}/clocks").status_code == 404
    assert globex.api.get(f"{RECORDS}/{record['id']}/transitions").status_code == 404
    assert globex.api.post(f"{RECORDS}/{record['id']}/transitions", json={"action": "respond"},
                           headers={"If-Match": '"x"'}).status_code == 404


def test_the_estate_lists_both_kinds_with_their_statuses(estate):
    kinds = {k["name"]: k for k in estate.viewer.get("/api/v1/kinds").json}
    order = kinds["property.work_order"]
    assert order["plugin"] == "property" and order["title"] == {"en": "Work order", "zh": "报事报修"}
    assert order["statuses"] == ["reported", "responded", "on_site", "waiting_for_parts", "completed", "closed"]
    assert set(order["data_schema"]["properties"]) == {
        "channel", "unit", "category", "priority", "complexity", "description", "owner", "sign_off",
        "fixed_first_time"}
    assert kinds["property.facility_check"]["statuses"] == ["recorded", "reviewed"]


# -- work orders ----------------------------------------------------------------------------


def test_work_order_data_is_validated(estate):
    cases = [
        ({**REPAIR, "channel": "fax"}, "channel"),
        ({**REPAIR, "category": "roof"}, "category"),
        ({**REPAIR, "priority": "high"}, "priority"),
        ({**REPAIR, "complexity": "complex"}, "complexity"),   # lighting only
        ({**REPAIR, "unit": ""}, "unit"),
        ({k: v for k, v in REPAIR.items() if k != "description"}, "description"),
        ({**REPAIR, "sign_off": {"rating": 5}}, "sign_off"),
        ({**REPAIR, "sign_off": {"signed": True, "rating": 6}}, "sign_off"),
        ({**REPAIR, "colour": "red"}, "colour"),
    ]
    for data, field in cases:
        response = create(estate.agent, "property.work_order", data)
        assert response.status_code == 422, (field, response.json)
        assert field in response.json["errors"]["json"]["data"], (field, response.json)
    assert estate.agent.get(RECORDS).json == []   # nothing was stored

    stored = create(estate.manager, "property.work_order", REPAIR).json
    assert stored["status"] == "reported"
    assert stored["data"] == {**REPAIR, "complexity": None, "sign_off": None, "fixed_first_time": None}


def test_a_work_order_goes_from_report_to_the_owners_sign_off(estate):
    with time_machine.travel(datetime(2026, 3, 10, 9, 0, tzinfo=SHANGHAI), tick=False):
        order = create(estate.agent, "property.work_order", REPAIR).json
        assert order["timestamps"] == {"reported_at": "2026-03-10T01:00:00+00:00"}
        listed = estate.agent.get(f"{RECORDS}/{order['id']}/transitions").json
        assert listed["status"] == "reported" and [a["action"] for a in listed["actions"]] == ["respond"]
        # PATCHing the status is refused: the workflow moves it.
        etag = estate.agent.get(f"{RECORDS}/{order['id']}").headers["ETag"]
        assert estate.agent.patch(f"{RECORDS}/{order['id']}", json={"status": "closed"},
                                  etag=etag).status_code == 409
        wrong = take(estate.agent, order["id"], "complete")
        assert wrong.status_code == 409 and wrong.json["allowed"] == ["respond"]

    steps = [("respond", "responded", 9, 20), ("report_back", "responded", 9, 25),
             ("arrive", "on_site", 10, 0), ("complete", "completed", 10, 40)]
    for action, status, hour, minute in steps:
        with time_machine.travel(datetime(2026, 3, 10, hour, minute, tzinfo=SHANGHAI), tick=False):
            response = take(estate.agent, order["id"], action)
            assert response.status_code == 200, response.json
            assert response.json["status"] == status
    with time_machine.travel(datetime(2026, 3, 10, 11, 0, tzinfo=SHANGHAI), tick=False):
        listed = estate.agent.get(f"{RECORDS}/{order['id']}/transitions").json
        assert [a["action"] for a in listed["actions"]] == ["report_back", "close", "reopen"]
        # The owner signs off (recorded by a manager, who sees the owner's data), then close.
        etag = estate.manager.get(f"{RECORDS}/{order['id']}").headers["ETag"]
        signed = estate.manager.patch(f"{RECORDS}/{order['id']}", etag=etag, json={"data": {
            **REPAIR, "sign_off": {"signed": True, "rating": 5, "comment": "Quick and tidy"},
            "fixed_first_time": True}})
        assert signed.status_code == 200, signed.json
        closed = take(estate.agent, order["id"], "close")
        assert closed.status_code == 200 and closed.json["status"] == "closed"
    stamps = closed.json["timestamps"]
    assert set(stamps) == {"reported_at", "responded_at", "feedback_at", "on_site_at", "completed_at", "closed_at"}
    assert stamps["closed_at"] == "2026-03-10T03:00:00+00:00"
    scored = estate.agent.get(f"{RECORDS}/{order['id']}/evaluation").json
    assert scored["standard_code"] == "property.work_order" and scored["passed"] is True
    assert {i["code"]: i["outcome"] for i in scored["items"]}["owner_signed_off"] == "pass"
    history = [e["action"] for e in estate.agent.get(f"{RECORDS}/{order['id']}/history").json]
    assert history.count("transition") == 5


def test_reopening_clears_completion_and_the_owner_can_refuse_to_sign(estate):
    order = create(estate.agent, "property.work_order", {**REPAIR, "category": "lighting",
                                                         "unit": "Block 1 lobby"}).json
    for action in ("respond", "arrive", "complete", "close"):
        assert take(estate.agent, order["id"], action).status_code == 200
    reopened = take(estate.agent, order["id"], "reopen")
    assert reopened.status_code == 200 and reopened.json["status"] == "responded"
    assert "completed_at" not in reopened.json["timestamps"]
    assert "closed_at" not in reopened.json["timestamps"]
    assert "reopened_at" in reopened.json["timestamps"]
    # The lighting repair clock runs again until the new completion.
    clocks = {c["item"]: c for c in estate.agent.get(f"{RECORDS}/{order['id']}/clocks").json}
    assert clocks["lighting_simple_fixed_in_time"]["state"] == "running"
    for action in ("arrive", "complete"):
        assert take(estate.agent, order["id"], action).status_code == 200
    etag = estate.manager.get(f"{RECORDS}/{order['id']}").headers["ETag"]
    refused = estate.manager.patch(f"{RECORDS}/{order['id']}", etag=etag, json={"data": {
        **REPAIR, "category": "lighting", "unit": "Block 1 lobby",
        "sign_off": {"signed": False, "comment": "Still flickers"}, "fixed_first_time": False}})
    assert refused.status_code == 200, refused.json
    scored = estate.agent.get(f"{RECORDS}/{order['id']}/evaluation").json
    assert {i["code"]: i["outcome"] for i in scored["items"]}["owner_signed_off"] == "fail"
    assert scored["passed"] is False


# -- facility checks --------------------------------------------------------------------------


def test_facility_check_validation_by_facility(estate):
    cases = [
        ({"facility": "lighting", "check": "patrol", "result": "ok"}, {"lights_total", "lights_working"}),
        ({"facility": "lighting", "check": "patrol", "result": "ok", "lights_total": 100,
          "lights_working": 101}, {"lights_working"}),
        ({"facility": "lighting", "check": "patrol", "result": "ok", "lights_total": 0,
          "lights_working": 0}, {"lights_total"}),
        ({"facility": "water_tank", "check": "cleaning", "result": "ok"}, {"test_report_ref"}),
        ({"facility": "fire_water", "check": "test", "result": "ok"}, {"points_total", "points_working"}),
        ({"facility": "drainage", "check": "patrol", "result": "ok", "lights_total": 3,
          "lights_working": 3}, {"lights_total", "lights_working"}),
        ({"facility": "elevator", "check": "inspection", "result": "broken"}, {"result"}),
        ({"facility": "pool", "check": "patrol", "result": "ok"}, {"facility"}),
        ({"facility": "lighting", "check": "patrol", "result": "ok", "lights_total": 10.5,
          "lights_working": 10}, {"lights_total"}),
    ]
    for data, fields in cases:
        response = check(estate.inspector, **data)
        assert response.status_code == 422, (data, response.json)
        assert set(response.json["errors"]["json"]["data"]) == fields, (data, response.json)
    assert estate.inspector.get(RECORDS).json == []


def test_facility_checks_derive_what_the_standard_measures(estate):
    lighting = check(estate.inspector, facility="lighting", check="patrol", result="ok",
                     lights_total=400, lights_working=397)
    assert lighting.status_code == 201, lighting.json
    data = lighting.json["data"]
    assert data["lights_working_percent"] == 99.25 and data["no_fault"] is True
    assert data["points_working_percent"] is None and data["test_report_filed"] is None

    tank = check(estate.inspector, facility="water_tank", check="cleaning", result="ok",
                 test_report_ref="SH-CDC-2026-0412", no_fault=False, test_report_filed=False)
    assert tank.status_code == 201, tank.json
    # Derived values sent by the client are recomputed.
    assert tank.json["data"]["test_report_filed"] is True and tank.json["data"]["no_fault"] is True

    scored = {i["code"]: i["outcome"] for i in
              estate.inspector.get(f"{RECORDS}/{lighting.json['id']}/evaluation").json["items"]}
    assert scored == {"no_fault": "pass", "road_lighting_working": "pass", "fire_water_working": "na",
                      "water_tank_test_report": "na"}
    scored = {i["code"]: i["outcome"] for i in
              estate.inspector.get(f"{RECORDS}/{tank.json['id']}/evaluation").json["items"]}
    assert scored["water_tank_test_report"] == "pass" and scored["road_lighting_working"] == "na"


def test_a_fault_is_critical_and_opens_a_corrective_action(estate):
    fault = check(estate.inspector, facility="fire_equipment", check="patrol", result="fault",
                  findings="Extinguisher B3-07 pressure gauge in the red")
    assert fault.status_code == 201, fault.json
    scored = estate.inspector.get(f"{RECORDS}/{fault.json['id']}/evaluation").json
    assert scored["passed"] is False and scored["failed_critical"] == ["no_fault"] and scored["percent"] == 0
    actions = estate.manager.get("/api/v1/actions", query_string={"record_id": fault.json["id"]}).json
    assert [(a["source"], a["item_code"], a["status"]) for a in actions] == [("critical", "no_fault", "open")]

    dim = check(estate.inspector, facility="lighting", check="patrol", result="ok",
                lights_total=200, lights_working=197)   # 98.5 %
    scored = estate.inspector.get(f"{RECORDS}/{dim.json['id']}/evaluation").json
    assert {i["code"]: i["outcome"] for i in scored["items"]}["road_lighting_working"] == "fail"
    assert scored["passed"] is False and scored["failed_critical"] == []
    actions = estate.manager.get("/api/v1/actions", query_string={"record_id": dim.json["id"]}).json
    assert [(a["source"], a["item_code"]) for a in actions] == [("item", "road_lighting_working")]

    pumps = check(estate.inspector, facility="fire_water", check="test", result="ok",
                  points_total=24, points_working=23)
    scored = estate.inspector.get(f"{RECORDS}/{pumps.json['id']}/evaluation").json
    assert scored["failed_critical"] == ["fire_water_working"]
    whole = check(estate.inspector, facility="fire_water", check="test", result="ok",
                  points_total=24, points_working=24)
    assert estate.inspector.get(f"{RECORDS}/{whole.json['id']}/evaluation").json["passed"] is True


def test_shares_of_working_lights_and_fire_water_points_are_compared_exactly(estate):
    """2,473 of 2,498 lights is 98.9992 %: below the 99 % of road lighting, though it
    rounds to 99.00; 39,999 of 40,000 fire water points is 99.9975 %, not 100 % (critical)."""
    def outcomes(response):
        assert response.status_code == 201, response.json
        scored = estate.inspector.get(f"{RECORDS}/{response.json['id']}/evaluation").json
        return scored, {i["code"]: i for i in scored["items"]}

    scored, items = outcomes(check(estate.inspector, facility="lighting", check="patrol", result="ok",
                                   lights_total=2498, lights_working=2473))
    lights = items["road_lighting_working"]
    assert lights["outcome"] == "fail" and scored["passed"] is False
    assert lights["evidence"]["value"] == 247300 / 2498 and lights["evidence"]["min"] == 99
    assert (lights["evidence"]["part"], lights["evidence"]["whole"]) == (2473, 2498)
    _, items = outcomes(check(estate.inspector, facility="lighting", check="patrol", result="ok",
                              lights_total=2500, lights_working=2475))   # 99 % exactly
    assert items["road_lighting_working"]["outcome"] == "pass"

    scored, items = outcomes(check(estate.inspector, facility="fire_water", check="test", result="ok",
                                   points_total=40000, points_working=39999))
    assert items["fire_water_working"]["outcome"] == "fail"
    assert scored["failed_critical"] == ["fire_water_working"] and scored["percent"] == 0
    scored, _ = outcomes(check(estate.inspector, facility="fire_water", check="test", result="ok",
                               points_total=40000, points_working=40000))
    assert scored["passed"] is True


def test_first_time_fix_names_the_work_orders_field(app):
    from servq.core.plugins.app import get_plugins

    kinds = get_plugins(app).kinds
    assert kinds["property.work_order"].first_time_fix == "fixed_first_time"
    assert kinds["property.work_order"].personal == ("owner",)
    assert kinds["property.facility_check"].personal == ()
