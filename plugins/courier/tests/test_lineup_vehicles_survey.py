"""The daily appearance line-up (core inspections), vehicle checks, the manager survey and
the obligations made at onboarding, through HTTP."""

from __future__ import annotations

import time_machine

from servq.plugins.courier.tests.helpers import RECORDS, evaluation, item

NOW = "2026-03-05T12:00:00+00:00"
SMART = {"manner": {"outcome": "pass"}, "clean_clothes": {"outcome": "pass"}, "plain_hair": {"outcome": "pass"},
         "uniform": {"outcome": "pass"}, "hair_tied": {"outcome": "na"}, "kind_tone": {"outcome": "pass"}}


@time_machine.travel(NOW, tick=False)
def test_the_line_up_scores_a_courier_against_the_appearance_standard(company):
    def lineup(answers):
        response = company.manager.post(RECORDS, json={
            "kind": "inspection", "occurred_at": "2026-03-05T00:30:00+00:00",
            "staff_id": company.staff["C2"], "site_id": company.sites["STN-XH"],
            "data": {"standard": "courier.appearance", "answers": answers}})
        assert response.status_code == 201, response.json
        return response.json

    smart = evaluation(company.api, lineup(SMART)["id"], "courier.appearance")
    assert smart["passed"] is True and smart["percent"] == 100
    no_uniform = evaluation(company.api, lineup({**SMART, "uniform": {"outcome": "fail"}})["id"], "courier.appearance")
    assert no_uniform["passed"] is False and item(no_uniform, "uniform")["outcome"] == "fail"
    assert round(no_uniform["percent"], 1) == 71.4   # 5 of 7 points


@time_machine.travel(NOW, tick=False)
def test_vehicle_checks_fail_on_expired_documents(company):
    check = {"vehicle_id": "沪A·D1234", "body_clean_branded": True, "cargo_secured": True,
             "lights_tyres_brakes_ok": True, "documents_valid": False, "no_passengers": True,
             "findings": "Insurance expired 2026-02-28"}
    response = company.manager.post(RECORDS, json={"kind": "courier.vehicle_check", "data": check,
                                                   "site_id": company.sites["STN-PD"]})
    assert response.status_code == 201, response.json
    result = evaluation(company.api, response.json["id"], "courier.vehicle")
    assert result["failed_critical"] == ["documents_valid"] and result["percent"] == 0
    missing = company.manager.post(RECORDS, json={"kind": "courier.vehicle_check", "data": {"vehicle_id": "X"}})
    assert missing.status_code == 422 and "cargo_secured" in missing.json["errors"]["json"]["data"]


@time_machine.travel(NOW, tick=False)
def test_onboarding_makes_the_obligations_and_the_manager_survey_once(company, make_company, app):
    schedules = company.manager.get("/api/v1/schedules").json
    keys = sorted(s["title"] for s in schedules)
    assert keys == ["Daily appearance line-up 晨检 (STN-PD)", "Daily appearance line-up 晨检 (STN-XH)",
                    "Monthly vehicle checks 车辆月检 (STN-PD)", "Monthly vehicle checks 车辆月检 (STN-XH)"]
    surveys = [s for s in company.manager.get("/api/v1/surveys").json
               if s["instrument_code"] == "courier_manager_service"]
    assert len(surveys) == 1 and surveys[0]["title"]["zh"] == "管理人员服务评价(内部)"
    # Onboarding again changes nothing.
    from servq.tenants.onboarding import onboard
    from servq.plugins.courier.tests.conftest import manifest
    onboard(app, manifest("xunda"))
    assert len(company.manager.get("/api/v1/schedules").json) == 4
    assert len([s for s in company.manager.get("/api/v1/surveys").json
                if s["instrument_code"] == "courier_manager_service"]) == 1
    assert [v["version"] for v in company.manager.get("/api/v1/standards/courier.delivery/versions").json] == [1]


@time_machine.travel(NOW, tick=False)
def test_configured_time_limits_override_the_standard(make_company):
    company = make_company("fast", {"hotline": "95500", "time_limits": {"same_city": "12h"}})
    document = company.api.get("/api/v1/standards/courier.delivery").json["document"]
    limits = {i["code"]: i["rule"].get("limit") for i in document["items"] if i["code"].startswith("time_limit_")}
    assert limits == {"time_limit_same_city": "12h", "time_limit_intra_province": "48h",
                      "time_limit_domestic": "72h", "time_limit_international": "168h"}
    etag = company.api.get("/api/v1/plugins/courier").headers["ETag"]
    bad = company.api.put("/api/v1/plugins/courier", json={"active": True, "configuration": {"time_limits": {
        "same_city": "soon"}, "colour": "red"}}, etag=etag)
    assert bad.status_code == 422
    assert "colour" in str(bad.json["errors"]) and "time_limits" in str(bad.json["errors"])


@time_machine.travel(NOW, tick=False)
def test_the_courier_complaint_standard_replaces_cores(company, globex):
    response = company.api.post(RECORDS, json={"kind": "complaint", "occurred_at": "2026-03-05T01:00:00+00:00",
                                                "data": {"channel": "phone", "severity": "serious",
                                                         "category": "prohibited_conduct",
                                                         "description": "快递员私自收取加急费"}})
    assert response.status_code == 201, response.json
    codes = [e["standard_code"] for e in company.api.get(f"{RECORDS}/{response.json['id']}/evaluations").json]
    assert codes == ["courier.complaint"]
    clocks = {c["item"]: c for c in company.api.get(f"{RECORDS}/{response.json['id']}/clocks").json}
    assert clocks["acknowledged_in_time"]["due"] == "2026-03-06T01:00:00+00:00"
    assert clocks["serious_escalated"]["due"] == "2026-03-07T01:00:00+00:00"
    other = globex.api.post(RECORDS, json={"kind": "complaint", "data": {"channel": "phone", "description": "x"}})
    assert [e["standard_code"] for e in globex.api.get(f"{RECORDS}/{other.json['id']}/evaluations").json] == [
        "core.complaint"]


@time_machine.travel(NOW, tick=False)
def test_couriers_rate_their_station_manager_and_the_results_filter_by_manager(company):
    survey = next(s for s in company.manager.get("/api/v1/surveys").json
                  if s["instrument_code"] == "courier_manager_service")
    assert survey["form"] == "single"

    def rate(manager, courier, answers):
        rating = company.manager.post(RECORDS, json={
            "kind": "observation", "staff_id": company.staff[manager], "occurred_at": "2026-03-05T02:00:00+00:00",
            "data": {"title": "Manager service survey 管理人员服务评价", "tags": ["internal_survey"],
                     "description": f"{courier} rates the station manager"}}).json
        invitation = company.manager.post(f"/api/v1/surveys/{survey['id']}/invitations", json={
            "customer": {"name": courier}, "record_id": rating["id"], "send": False})
        assert invitation.status_code == 201, invitation.json
        answered = company.api.client.post(f"/api/v1/public/surveys/{invitation.json['token']}",
                                           json={"answers": answers})
        assert answered.status_code == 201, answered.json

    good = {"fair_honest": 5, "courteous": 4, "prompt": 4, "anticipates": 5, "cares": 4}
    rate("M1", "王强", good)
    rate("M1", "李明", good)
    rate("M2", "张伟", {**good, "fair_honest": 2})
    results = company.manager.get(f"/api/v1/surveys/{survey['id']}/results",
                                  query_string={"staff_id": company.staff["M2"]}).json
    fair = next(i for i in results["items"] if i["code"] == "fair_honest")
    assert fair["n"] == 1 and fair["perception"]["mean"] == 2
    mine = company.manager.get(f"/api/v1/surveys/{survey['id']}/results",
                               query_string={"staff_id": company.staff["M1"]}).json
    assert next(i for i in mine["items"] if i["code"] == "fair_honest")["perception"]["mean"] == 5
