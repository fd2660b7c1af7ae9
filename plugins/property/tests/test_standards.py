"""The property standards (shipped as data, bilingual, with the seed's numbers), how a
property tenant's complaints are scored by them alone, and the plugin's configuration."""

from __future__ import annotations

import pytest

API = "/api/v1/standards"
RECORDS = "/api/v1/records"
PLUGIN = "/api/v1/plugins/property"

#: The seed's numbers (物业管理服务标准, seed 002): item → (start, stop, limit, clock, when, kpi).
WORK_ORDER = {
    "responded_in_time": ("reported_at", "responded_at", "4h", "wall", None, "response"),
    "reported_back_in_time": ("reported_at", "feedback_at", "4h", "wall", None, None),
    "urgent_on_site_in_time": ("reported_at", "on_site_at", "30m", "wall", {"priority": ["urgent"]}, None),
    "facility_fault_on_site_in_time": ("reported_at", "on_site_at", "30m", "wall",
                                       {"category": ["elevator", "power", "water"]}, None),
    "lighting_simple_fixed_in_time": ("reported_at", "completed_at", "8h", "wall",
                                      {"category": ["lighting"], "complexity": ["simple"]}, "resolution"),
    "lighting_complex_fixed_in_time": ("reported_at", "completed_at", "48h", "wall",
                                       {"category": ["lighting"], "complexity": ["complex"]}, "resolution"),
}
COMPLAINT = {
    "on_site_in_time": ("received_at", "investigating_at", "1h", "wall", None, None),
    "feedback_in_time": ("received_at", "acknowledged_at", "4h", "wall", None, "response"),
    "general_resolved_in_time": ("general_received_at", "resolved_at", "8h", "wall", None, "resolution"),
    "serious_resolved_in_time": ("serious_received_at", "resolved_at", "5 working days", "business", None,
                                 "resolution"),
}


def deadlines(document) -> dict[str, tuple]:
    out = {}
    for item in document["items"]:
        rule = item["rule"]
        if rule["type"] == "deadline":
            out[item["code"]] = (rule["start"].removeprefix("timestamps."), rule["stop"].removeprefix("timestamps."),
                                 rule["limit"], rule["clock"], rule.get("when"), item.get("kpi"))
    return out


def test_the_standards_carry_the_seeds_numbers_in_both_languages(estate):
    listed = {s["code"]: s for s in estate.viewer.get(API).json}
    assert {"property.work_order", "property.complaint", "property.facility_check"} <= set(listed)
    for code, kinds in (("property.work_order", ["property.work_order"]), ("property.complaint", ["complaint"]),
                        ("property.facility_check", ["property.facility_check"])):
        assert listed[code]["plugin"] == "property" and listed[code]["applies_to"] == kinds
    order = estate.viewer.get(f"{API}/property.work_order").json
    assert deadlines(order["document"]) == WORK_ORDER
    complaint = estate.viewer.get(f"{API}/property.complaint").json
    assert deadlines(complaint["document"]) == COMPLAINT
    assert complaint["document"]["replaces"] == ["core.complaint"]
    facilities = estate.viewer.get(f"{API}/property.facility_check").json
    rules = {item["code"]: (item["rule"], item["critical"]) for item in facilities["items"]}
    # Exact shares of the counts, never rounded percentages.
    assert rules["road_lighting_working"] == ({"type": "measure", "field": "lights_working",
                                               "per": "lights_total", "percent": True,
                                               "min": 99.0, "unit": "%"}, False)
    assert rules["fire_water_working"] == ({"type": "measure", "field": "points_working",
                                            "per": "points_total", "percent": True,
                                            "min": 100.0, "unit": "%"}, True)
    assert rules["no_fault"] == ({"type": "check", "field": "no_fault"}, True)
    assert rules["water_tank_test_report"] == ({"type": "check", "field": "test_report_filed"}, False)
    for body in (order, complaint, facilities):
        document = body["document"]
        assert document["title"]["en"] and document["title"]["zh"]
        for item in document["items"]:
            assert item["title"]["en"] and item["title"]["zh"], item["code"]
            assert any("\u4e00" <= ch <= "\u9fff" for ch in item["title"]["zh"]), item["code"]
    zh = estate.viewer.get(f"{API}/property.complaint", headers={"Accept-Language": "zh"}).json
    assert zh["title"] == "业户投诉处理" and zh["items"][3]["title"] == "严重投诉5个工作日内解决"


def complaint(client, severity="general"):
    response = client.post(RECORDS, json={"kind": "complaint", "data": {
        "channel": "hotline", "severity": severity, "description": "Lift out of order for two days"}})
    assert response.status_code == 201, response.json
    return response.json


def scored_by(client, record_id) -> list[str]:
    return [e["standard_code"] for e in client.get(f"{RECORDS}/{record_id}/evaluations").json]


def clock_codes(client, record_id) -> set[str]:
    return {c["standard_code"] for c in client.get(f"{RECORDS}/{record_id}/clocks").json}


def test_a_property_tenants_complaints_are_scored_by_the_property_standard_alone(estate, globex):
    ours = complaint(estate.agent)
    assert scored_by(estate.agent, ours["id"]) == ["property.complaint"]
    assert clock_codes(estate.agent, ours["id"]) == {"property.complaint"}
    # A tenant without the plugin keeps core's default.
    theirs = complaint(globex.api)
    assert scored_by(globex.api, theirs["id"]) == ["core.complaint"]
    assert clock_codes(globex.api, theirs["id"]) == {"core.complaint"}
    # core.complaint is still listed (a tenant may keep or change it), just not applied.
    assert "core.complaint" in {s["code"] for s in estate.viewer.get(API).json}


def test_a_tenant_may_take_core_complaint_back_by_overriding_replaces(estate):
    etag = estate.manager.get(f"{API}/property.complaint").headers["ETag"]
    changed = estate.manager.put(f"{API}/property.complaint", etag=etag,
                                 json={"overrides": {"replaces": []}, "note": "score both"})
    assert changed.status_code == 200, changed.json
    record = complaint(estate.agent, "serious")
    assert scored_by(estate.agent, record["id"]) == ["core.complaint", "property.complaint"]
    etag = estate.manager.get(f"{API}/property.complaint").headers["ETag"]
    bad = estate.manager.put(f"{API}/property.complaint", etag=etag,
                             json={"overrides": {"replaces": ["property.complaint"]}})
    assert bad.status_code == 422 and "replaces" in str(bad.json["errors"])


def test_a_tenant_may_count_drainage_as_a_facility_fault(estate):
    etag = estate.manager.get(f"{API}/property.work_order").headers["ETag"]
    changed = estate.manager.put(f"{API}/property.work_order", etag=etag, json={"overrides": {"items": {
        "facility_fault_on_site_in_time": {"rule": {"when": {"category": ["elevator", "power", "water",
                                                                          "drainage"]}}}}}})
    assert changed.status_code == 200, changed.json
    order = estate.agent.post(RECORDS, json={"kind": "property.work_order", "data": {
        "channel": "app", "unit": "B2 car park", "category": "drainage", "description": "Sump pump failed"}})
    assert order.status_code == 201, order.json
    items = {c["item"] for c in estate.agent.get(f"{RECORDS}/{order.json['id']}/clocks").json}
    assert "facility_fault_on_site_in_time" in items
    etag = estate.manager.get(f"{API}/property.work_order").headers["ETag"]
    for when in ({"category": []}, {"category": "drainage"}, {"category": [None]}):
        bad = estate.manager.put(f"{API}/property.work_order", etag=etag, json={"overrides": {"items": {
            "facility_fault_on_site_in_time": {"rule": {"when": when}}}}})
        assert bad.status_code == 422, (when, bad.json)


# -- configuration ------------------------------------------------------------------------------


def test_the_configuration_is_stored_with_its_defaults(estate):
    shown = estate.viewer.get(PLUGIN).json
    assert shown["enabled"] is True
    assert shown["configuration"] == {"facility_fault_categories": ["elevator", "power", "water"],
                                      "satisfaction_survey": "servqual", "survey_months": [6, 12]}
    response = estate.api.put(PLUGIN, etag=estate.api.get(PLUGIN).headers["ETag"], json={
        "active": True, "configuration": {"facility_fault_categories": ["elevator", "water"],
                                          "satisfaction_survey": "csat", "survey_months": [3, 9]}})
    assert response.status_code == 200, response.json
    assert estate.viewer.get(PLUGIN).json["configuration"] == {
        "facility_fault_categories": ["elevator", "water"], "satisfaction_survey": "csat",
        "survey_months": [3, 9]}


@pytest.mark.parametrize("configuration, field", [
    ({"facility_fault_categorys": ["elevator"]}, "facility_fault_categorys"),   # a typo: refused
    ({"facility_fault_categories": []}, "facility_fault_categories"),
    ({"facility_fault_categories": ["roof"]}, "facility_fault_categories"),
    ({"facility_fault_categories": ["power", "power"]}, "facility_fault_categories"),
    ({"satisfaction_survey": "Owner Survey!"}, "satisfaction_survey"),
    ({"satisfaction_survey": 7}, "satisfaction_survey"),
    ({"survey_months": [0, 6]}, "survey_months"),
    ({"survey_months": [13]}, "survey_months"),
    ({"survey_months": [12, 6]}, "survey_months"),
    ({"survey_months": [6, 6]}, "survey_months"),
    ({"survey_months": ["6"]}, "survey_months"),
    ({"survey_months": []}, "survey_months"),
])
def test_a_bad_configuration_is_a_422_naming_the_field_and_changes_nothing(estate, configuration, field):
    before = estate.viewer.get(PLUGIN).json["configuration"]
    response = estate.api.put(PLUGIN, etag=estate.api.get(PLUGIN).headers["ETag"],
                              json={"active": True, "configuration": configuration})
    assert response.status_code == 422, response.json
    assert field in str(response.json["errors"]), response.json
    assert estate.viewer.get(PLUGIN).json["configuration"] == before


def test_a_bad_configuration_in_a_manifest_fails_the_onboarding(app, make_estate):
    from sqlalchemy import select

    from servq.core.db.session import new_session
    from servq.core.models import Tenant
    from servq.plugins.property.config import PropertyConfig
    from servq.tenants.manifest import ManifestError

    with pytest.raises(ManifestError) as caught:
        make_estate("broken", configuration={"survey_months": [14]})
    assert "plugins.property.survey_months" in str(caught.value)
    with new_session(app) as session:   # all or nothing: no tenant was created
        assert session.scalar(select(Tenant.id).where(Tenant.slug == "broken")) is None
    assert PropertyConfig().load({}) == {"facility_fault_categories": ["elevator", "power", "water"],
                                         "satisfaction_survey": "servqual", "survey_months": [6, 12]}
