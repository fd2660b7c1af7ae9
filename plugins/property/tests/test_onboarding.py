"""Onboarding a property manager: the standards, the recurring obligations of every estate
and the owner satisfaction survey, created once (a second onboarding changes nothing);
a tenant without the plugin gets none of it and cannot use the kinds."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from servq.core.models import AuditEvent, Schedule, StandardVersion, Survey
from servq.plugins.property.onboarding import OBLIGATIONS, SURVEY_ROUND_TITLE
from servq.plugins.property.tests.conftest import estate_manifest
from servq.tenants.manifest import ManifestError, parse_manifest
from servq.tenants.onboarding import example_manifests, onboard

PROPERTY_STANDARDS = {"property.complaint", "property.facility_check", "property.work_order"}
FACILITY_RULES = {
    ("fire_equipment", "patrol"): ("FREQ=MONTHLY", True),
    ("fire_equipment", "test"): ("FREQ=YEARLY", True),
    ("water_tank", "cleaning"): ("FREQ=MONTHLY;INTERVAL=6", False),
    ("drainage", "inspection"): ("FREQ=MONTHLY", False),
    ("septic_tank", "emptying"): ("FREQ=YEARLY", False),
}


def snapshot(estate) -> dict:
    """Everything onboarding writes for the plugin, and the audit trail's length."""
    with estate.session() as session:
        return {
            "schedules": sorted((s.key, s.title, s.kind, s.rrule, str(s.site_id), s.dtstart.isoformat(),
                                 sorted(s.match.items()), s.action_on_miss, tuple(s.escalate_to),
                                 s.updated_at.isoformat()) for s in session.scalars(select(Schedule))),
            "standards": sorted(session.execute(select(StandardVersion.code, StandardVersion.version)).all()),
            "surveys": sorted((str(s.id), s.instrument_code, s.form)
                              for s in session.scalars(select(Survey))),
            "audit": session.scalar(select(func.count()).select_from(AuditEvent)),
        }


def test_onboarding_gives_the_standards_obligations_and_survey_once(app, estate):
    # The standards are adopted during onboarding: stored before anything reads them.
    with estate.session() as session:
        stored = set(session.scalars(select(StandardVersion.code).where(StandardVersion.version == 1)))
    assert PROPERTY_STANDARDS <= stored
    codes = {s["code"] for s in estate.viewer.get("/api/v1/standards").json}
    assert PROPERTY_STANDARDS <= codes

    schedules = estate.viewer.get("/api/v1/schedules", query_string={"page_size": 100}).json
    assert len(schedules) == 2 * (len(OBLIGATIONS) + 1)
    by_site: dict[str, dict] = {}
    for schedule in schedules:
        by_site.setdefault(schedule["site_id"], {})[schedule["key"]] = schedule
    assert set(by_site) == set(estate.sites.values())
    for code, site_id in estate.sites.items():
        mine = by_site[site_id]
        facility = {(s["match"]["facility"], s["match"]["check"]): (s["rrule"], s["action_on_miss"])
                    for s in mine.values() if s["kind"] == "property.facility_check"}
        assert facility == FACILITY_RULES
        assert all(s["escalate_to"] == ["manager"] and s["grace"] is None and s["active"]
                   for s in mine.values())
        assert all(code in s["title"] for s in mine.values())
        survey = mine[f"property.owner_survey.{site_id}"]
        assert (survey["kind"], survey["match"]) == ("observation", {"title": SURVEY_ROUND_TITLE})
        assert survey["rrule"] == "FREQ=YEARLY;BYMONTH=6,12;BYMONTHDAY=1"  # the default months
        # Periods are cut from the first day of the month of onboarding, Shanghai time.
        assert all(s["dtstart"].endswith("T16:00:00+00:00") for s in mine.values())

    surveys = estate.viewer.get("/api/v1/surveys").json
    assert [(s["instrument"]["code"], s["form"], s["title"]["zh"]) for s in surveys] == [
        ("servqual", "two_column", "业主满意度调查")]

    # A second onboarding of the same manifest changes nothing.
    before = snapshot(estate)
    onboard(app, estate_manifest(estate.slug))
    assert snapshot(estate) == before


def test_a_tenant_without_the_plugin_has_none_of_it(app, estate, globex):
    plain = estate_manifest("plain-homes")
    plain["plugins"] = {}
    report = onboard(app, plain)
    with app.app_context():
        from servq.core.db.session import new_session

        with new_session(app, report.tenant_id) as session:
            assert session.scalar(select(func.count()).select_from(Schedule)) == 0
            assert session.scalar(select(func.count()).select_from(Survey)) == 0
            assert not session.scalar(select(func.count()).select_from(StandardVersion)
                                      .where(StandardVersion.code.like("property.%")))
    assert globex.api.get("/api/v1/schedules").json == []
    assert globex.api.get("/api/v1/standards/property.work_order").status_code == 404
    response = globex.api.post("/api/v1/records", json={"kind": "property.facility_check", "data": {
        "facility": "fire_equipment", "check": "patrol", "result": "ok"}})
    assert response.status_code == 422 and "kind" in response.json["errors"]["json"]
    # Its schedules may not name the plugin's kinds either.
    response = globex.api.post("/api/v1/schedules", json={
        "title": "Patrol", "kind": "property.facility_check", "rrule": "FREQ=MONTHLY",
        "dtstart": "2026-01-01T00:00:00+08:00", "match": {"facility": "fire_equipment"}})
    assert response.status_code == 422 and "kind" in response.json["errors"]["json"]
    # The estate's obligations are invisible to it.
    some = estate.api.get("/api/v1/schedules").json[0]
    assert globex.api.get(f"/api/v1/schedules/{some['id']}").status_code == 404


def test_the_configuration_is_followed_on_every_onboarding(app, make_estate):
    config = {"facility_fault_categories": ["elevator", "power", "water", "fire"],
              "satisfaction_survey": "nps", "survey_months": [3, 9]}
    estate = make_estate("towers", configuration=config)
    fault = estate.api.get("/api/v1/standards/property.work_order").json
    item = next(i for i in fault["items"] if i["code"] == "facility_fault_on_site_in_time")
    assert item["rule"]["when"] == {"category": ["elevator", "power", "water", "fire"]}
    assert fault["version"] == 2
    surveys = estate.api.get("/api/v1/surveys").json
    assert [(s["instrument"]["code"], s["form"]) for s in surveys] == [("nps", "single")]
    rules = {s["rrule"] for s in estate.api.get("/api/v1/schedules").json if s["kind"] == "observation"}
    assert rules == {"FREQ=YEARLY;BYMONTH=3,9;BYMONTHDAY=1"}
    before = snapshot(estate)
    onboard(app, estate_manifest("towers", config))
    assert snapshot(estate) == before

    # New survey months move the survey obligation; new fault categories are a new version.
    onboard(app, estate_manifest("towers", {**config, "survey_months": [1, 7],
                                            "facility_fault_categories": ["elevator"]}))
    rules = {s["rrule"] for s in estate.api.get("/api/v1/schedules").json if s["kind"] == "observation"}
    assert rules == {"FREQ=YEARLY;BYMONTH=1,7;BYMONTHDAY=1"}
    fault = estate.api.get("/api/v1/standards/property.work_order").json
    assert fault["version"] == 3
    assert next(i for i in fault["items"] if i["code"] == "facility_fault_on_site_in_time"
                )["rule"]["when"] == {"category": ["elevator"]}
    repair = estate.api.post("/api/v1/records", json={"kind": "property.work_order", "data": {
        "channel": "hotline", "unit": "1-1-101", "category": "power", "description": "No power"}})
    clocks = {c["item"] for c in estate.api.get(f"/api/v1/records/{repair.json['id']}/clocks").json}
    assert "facility_fault_on_site_in_time" not in clocks and "responded_in_time" in clocks


def test_an_unknown_survey_instrument_fails_the_onboarding_and_writes_nothing(app):
    manifest = estate_manifest("broken", {"satisfaction_survey": "owners_2026"})
    with pytest.raises(ManifestError, match=r"plugins\.property\.satisfaction_survey: No instrument"):
        onboard(app, manifest)
    from servq.core.db.session import new_session
    from servq.core.models import Tenant

    with new_session(app) as session:
        assert session.scalar(select(Tenant.id).where(Tenant.slug == "broken")) is None


def test_the_example_property_manager_onboards_cleanly(app):
    manifests = dict(example_manifests())
    manifest = manifests["property.toml"]
    assert manifest["industry"] == "property" and "property" in manifest["plugins"]
    assert {a["role"] for a in manifest["admins"]} == {
        "owner", "admin", "manager", "inspector", "agent", "viewer"}
    assert len(manifest["sites"]) == 2 and manifest["calendar"]["timezone"] == "Asia/Shanghai"
    titles = " ".join(s.get("title", "") for s in manifest["staff"])
    assert all(word in titles for word in ("engineer", "Housekeeper", "Customer service"))
    report = onboard(app, manifest)
    assert report.tenant_created and report.counts["calendar"]["created"] == 1
    assert not onboard(app, parse_manifest(_example_text())).changed
    from servq.core.db.session import new_session

    with new_session(app, report.tenant_id) as session:
        assert session.scalar(select(func.count()).select_from(Schedule)) == 12


def _example_text() -> bytes:
    from importlib import resources

    return (resources.files("servq.tenants") / "examples" / "property.toml").read_bytes()
