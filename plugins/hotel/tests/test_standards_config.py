"""The hotel's configuration (validated, applied to its standards) and the etiquette
standard's taboo fragments on core's inspection kind, through HTTP."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import time_machine

T0 = datetime(2026, 3, 10, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
ANSWERS = {c: {"outcome": "pass"} for c in ("smile", "attitude", "dress", "civil_conduct", "taboo_reviewed")}


def put_config(client, configuration):
    etag = client.get("/api/v1/plugins/hotel").headers["ETag"]
    return client.put("/api/v1/plugins/hotel", headers={"If-Match": etag},
                      json={"active": True, "configuration": configuration})


def test_bad_configuration_is_refused_naming_the_field(hotel):
    for configuration, field in (({"refill_interval_minutes": 0}, "refill_interval_minutes"),
                                 ({"office_ready_by": "8:30am"}, "office_ready_by"),
                                 ({"damage_price_list": {"carpet_burn": {"price": 50}}}, "damage_price_list"),
                                 ({"outlets": ["spa", "spa"]}, "outlets"),
                                 ({"colour": "blue"}, "colour")):
        refused = put_config(hotel.api, configuration)
        assert refused.status_code == 422, (configuration, refused.json)
        assert field in str(refused.json), refused.json
    assert hotel.api.get("/api/v1/plugins/hotel").json["configuration"]["refill_interval_minutes"] == 15


def test_the_configuration_moves_the_standards_at_onboarding(make_hotel):
    hotel = make_hotel("strict", {"refill_interval_minutes": 10, "office_ready_by": "08:00"})
    meeting = hotel.api.get("/api/v1/standards/hotel.meeting_service").json
    office = hotel.api.get("/api/v1/standards/hotel.office_service").json
    refill = next(i for i in meeting["document"]["items"] if i["code"] == "refill_every_15_min")
    ready = next(i for i in office["document"]["items"] if i["code"] == "ready_by_0830")
    assert refill["rule"]["max"] == 10 and ready["rule"]["due_time"] == "08:00"


def test_the_standards_are_bilingual_with_dimensions(hotel):
    codes = {s["code"] for s in hotel.api.get("/api/v1/standards").json}
    expected = {"hotel.guest_room", "hotel.checkout_inspection", "hotel.meeting_service", "hotel.office_service",
                "hotel.housekeeping_task", "hotel.dish_check", "hotel.repair", "hotel.service_etiquette",
                "hotel.restaurant_service", "hotel.spa_service"}
    assert expected <= codes
    for code in expected:
        document = hotel.api.get(f"/api/v1/standards/{code}").json["document"]
        assert document["title"]["en"] and document["title"]["zh"]
        for item in document["items"]:
            assert item["title"]["en"] and item["title"]["zh"] and item["dimension"], (code, item["code"])


def test_a_taboo_fragment_fails_the_etiquette_check(hotel):
    with time_machine.travel(T0, tick=False):
        results = {}
        for said in ("您好,请稍等,我帮您确认一下。", "这个我不清楚,你问别人去吧。"):
            created = hotel.inspector.post("/api/v1/records", json={"kind": "inspection", "data": {
                "standard": "hotel.service_etiquette", "mode": "surprise", "visibility": "mystery",
                "answers": {**ANSWERS, "no_taboo_language": {"text": said}}}})
            assert created.status_code == 201, created.json
            evaluation = hotel.api.get(f"/api/v1/records/{created.json['id']}/evaluations").json[0]
            item = next(i for i in evaluation["items"] if i["code"] == "no_taboo_language")
            results[said[-6:]] = (item["outcome"], evaluation["passed"])
        assert list(results.values()) == [("pass", True), ("fail", False)]


def test_kpi_parameters_are_checked(hotel):
    refused = hotel.api.get("/api/v1/kpis", query_string={
        "metrics": "hotel.inspection_pass_first_time", "by": "colour",
        "since": "2026-03-01T00:00:00Z", "until": "2026-04-01T00:00:00Z"})
    assert refused.status_code == 422 and "by" in str(refused.json)


def test_another_tenant_has_no_hotel_kpis_or_standards(hotel, globex):
    assert globex.api.get("/api/v1/standards/hotel.guest_room").status_code == 404
    refused = globex.api.get("/api/v1/kpis", query_string={
        "metrics": "hotel.damage_charges", "since": "2026-03-01T00:00:00Z", "until": "2026-04-01T00:00:00Z"})
    assert refused.status_code == 422


def test_mystery_open_gap(hotel):
    with time_machine.travel(T0, tick=False):
        for visibility, said in (("open", "您好,请稍等。"), ("mystery", "你问别人去吧。")):
            created = hotel.inspector.post("/api/v1/records", json={"kind": "inspection", "data": {
                "standard": "hotel.service_etiquette", "visibility": visibility,
                "answers": {**ANSWERS, "no_taboo_language": {"text": said}}}})
            assert created.status_code == 201, created.json
        kpi = hotel.api.get("/api/v1/kpis", query_string={
            "metrics": "hotel.mystery_open_gap", "since": "2026-03-01T00:00:00Z", "until": "2026-04-01T00:00:00Z"})
        assert kpi.status_code == 200, kpi.json
        assert kpi.json["rows"][0]["values"]["hotel.mystery_open_gap"] == 100.0


def test_onboarding_creates_the_schedules_and_surveys(hotel):
    schedules = hotel.api.get("/api/v1/schedules", query_string={"page_size": 100}).json
    by_title = {s["title"]: s for s in schedules}
    weekly = by_title["Tea sets washed and disinfected 茶具大洗、消毒 (多功能厅)"]
    assert weekly["rrule"] == "FREQ=WEEKLY" and weekly["match"] == {"task": "teaware_disinfection", "area": "多功能厅"}
    assert weekly["action_on_miss"] is True
    assert by_title["Meeting room daily cleaning 会议室每天保洁 (多功能厅)"]["rrule"] == "FREQ=DAILY"
    assert by_title["Follow-up visit to the leaders 定期回访 (HTL)"]["rrule"] == "FREQ=MONTHLY"
    quota = by_title["Daily appraisal inspections 逐日考核记录"]
    assert quota["per"] == "staff" and quota["min_count"] == 3 and quota["working_days"] is True
    titles = {s["title"]["en"] for s in hotel.api.get("/api/v1/surveys").json}
    assert {"Guest comment form", "Back-office service (rated by the front office)",
            "Host units and banquet bookers"} <= titles
