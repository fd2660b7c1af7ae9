"""The recurring facility obligations: a month without a fire-equipment patrol at one
estate is a breach (``servq deadlines scan``), reaches the tenant's webhook as a signed
``schedule.missed`` and opens a corrective action; the other estate, which patrolled, is
not reported, and another kind of check never meets the patrol."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import time_machine
from click.testing import CliRunner
from sqlalchemy import select

from servq.cli import make_cli
from servq.core.models import Action
from tests.factories import ApiClient
from tests.test_notifications import SECRET, Receiver, drain

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def at(instant: datetime):
    return time_machine.travel(instant, tick=False)


def check(client, site_id, when, facility="fire_equipment", kind_of_check="patrol", result="ok"):
    response = client.post("/api/v1/records", json={
        "kind": "property.facility_check", "site_id": site_id, "occurred_at": when.isoformat(),
        "data": {"facility": facility, "check": kind_of_check, "result": result}})
    assert response.status_code == 201, response.json
    return response.json["id"]


def scan(app, slug):
    result = CliRunner().invoke(make_cli(app_factory=lambda: app),
                                ["deadlines", "scan", "--json", "--tenant", slug])
    assert result.exit_code == 0, result.output
    drain(app)  # with Redis the deliveries are jobs
    return json.loads(result.output)[slug]


def test_a_month_without_a_fire_patrol_is_a_breach_that_reaches_the_webhook(app, factory, make_estate):
    receiver = Receiver()
    try:
        # Onboarded on 10 January 2026: the obligations' periods start on 1 January.
        with at(local(2026, 1, 10, 9)):
            estate = make_estate("estate")
            hook = estate.api.post("/api/v1/webhooks", json={
                "url": receiver.url, "event_types": ["schedule.missed"], "secret": SECRET})
            assert hook.status_code == 201, hook.json
            garden, river = estate.sites["GARDEN"], estate.sites["RIVER"]
            check(estate.inspector, garden, local(2026, 1, 8, 10))
            check(estate.inspector, river, local(2026, 1, 9, 15))
        # February: the Riverside estate patrols; at Garden Court only the drainage is
        # checked, which does not meet the fire patrol.
        with at(local(2026, 2, 20, 9)):
            inspector = ApiClient(factory.client, factory.token(estate.id, estate.emails["inspector"]))
            check(inspector, river, local(2026, 2, 12, 10))
            check(inspector, garden, local(2026, 2, 14, 10), facility="drainage", kind_of_check="inspection")
            check(inspector, garden, local(2026, 2, 15, 10), kind_of_check="test")
        with at(local(2026, 2, 28, 23, 59)):
            # January's drainage checks were missed at both estates; February is not over.
            assert scan(app, estate.slug)["missed_periods"] == 2
        with at(local(2026, 3, 1, 0, 1)):
            # February: Garden Court's fire patrol and Riverside's drainage check.
            assert scan(app, estate.slug)["missed_periods"] == 2
            assert scan(app, estate.slug)["missed_periods"] == 0  # each is reported once
        receiver.wait_for(4)

        events = [r["json"] for r in receiver.requests]
        assert all(r["verified"] for r in receiver.requests)
        assert len(events) == 4
        patrols = [e for e in events
                   if e["data"]["match"] == {"facility": "fire_equipment", "check": "patrol"}]
        assert len(patrols) == 1
        missed = patrols[0]
        assert missed["type"] == "schedule.missed"
        assert missed["data"]["site_id"] == garden and missed["data"]["key"].endswith(garden)
        assert datetime.fromisoformat(missed["data"]["period_start"]) == local(2026, 2, 1)
        assert datetime.fromisoformat(missed["data"]["period_end"]) == local(2026, 3, 1)
        drainage = sorted((e["data"]["site_id"], e["data"]["period_start"]) for e in events
                          if e["data"]["match"].get("facility") == "drainage")
        assert [site for site, _ in drainage] == sorted([garden, river, river])  # Garden checked in Feb

        # The missed patrol opened a corrective action (fire equipment misses do), the
        # drainage misses did not; both show in the estate's compliance report.
        with estate.session() as session:
            actions = list(session.scalars(select(Action).where(Action.source == "deadline")))
        assert [a.title for a in actions] == ["Missed: Fire equipment patrol 消防设施巡查 (GARDEN) (2026-02-01)"]
        with at(local(2026, 3, 1, 9)):
            manager = ApiClient(factory.client, factory.token(estate.id, estate.emails["manager"]))
            schedules = manager.get("/api/v1/schedules", query_string={
                "site_id": garden, "kind": "property.facility_check"}).json
            patrol = next(s for s in schedules if s["match"] == {"facility": "fire_equipment",
                                                                 "check": "patrol"})
            report = manager.get(f"/api/v1/schedules/{patrol['id']}/compliance").json
            assert [p["outcome"] for p in report["periods"]] == ["met", "missed", "open"]
            assert report["summary"] == {"met": 1, "missed": 1, "open": 1}
            test = next(s for s in schedules if s["match"] == {"facility": "fire_equipment",
                                                               "check": "test"})
            assert manager.get(f"/api/v1/schedules/{test['id']}/compliance").json["summary"] == {
                "met": 1, "missed": 0, "open": 0}
            deliveries = manager.get(f"/api/v1/webhooks/{hook.json['id']}/deliveries",
                                     query_string={"event_type": "schedule.missed"}).json
            assert sorted(d["status"] for d in deliveries) == ["delivered"] * 4
    finally:
        receiver.close()
