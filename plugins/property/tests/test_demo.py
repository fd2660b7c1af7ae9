"""``servq serve --demo`` with the property manager: months of realistic, deterministic
history written through core (scores, clocks, actions and survey results are real), with
its deadlines mostly met and some missed, one month of fire patrols missed at one estate,
and owner survey answers."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine
from click.testing import CliRunner
from sqlalchemy import func, select

from servq import cli
from servq.core.db import utcnow
from servq.core.models import (Action, Clock, Evaluation, OutboxEvent, Record, Schedule, Site, Survey,
                         SurveyResponse, Tenant)
from servq.plugins.property import demo
from servq.plugins.property.kinds import CATEGORIES
from servq.tenants.onboarding import DEMO_PASSWORD, example_manifests, onboard

SHANGHAI = ZoneInfo("Asia/Shanghai")
PATROL = {"facility": "fire_equipment", "check": "patrol"}


def fingerprint(session) -> list[str]:
    """The tenant's records without their ids: what a second load must reproduce."""
    site_codes = {site.id: site.code for site in session.scalars(select(Site))}
    rows = []
    for record in session.scalars(select(Record)):
        data = {k: v for k, v in record.data.items() if k != "record_id"}
        rows.append(json.dumps([record.kind, site_codes.get(record.site_id), record.occurred_at.isoformat(),
                                record.status, data, record.timestamps], sort_keys=True))
    return sorted(rows)


def at(instant: datetime):
    return time_machine.travel(instant, tick=False)


def test_serve_demo_loads_the_property_manager(app, client, monkeypatch):
    from gunicorn.app.base import BaseApplication

    monkeypatch.setattr(BaseApplication, "run", lambda self: None)
    started = utcnow().replace(second=0, microsecond=0)
    with at(started):  # the second load below replays the same instant
        result = CliRunner().invoke(cli.make_cli(app_factory=lambda: app),
                                    ["serve", "--demo", "--workers", "1"])
    assert result.exit_code == 0, result.output
    # The demo table: the property manager first (the most records), with its industry.
    assert result.stdout.splitlines()[2].split()[:2] == ["property-demo", "property"]
    assert f"owner@property.servq.test / {DEMO_PASSWORD}" in result.stdout
    login = client.post("/api/v1/auth/token", json={"tenant": "property-demo",
                                                    "email": "manager@property.servq.test",
                                                    "password": DEMO_PASSWORD})
    assert login.status_code == 201, login.json
    headers = {"Authorization": f"Bearer {login.json['token']}"}

    from servq.core.db.session import new_session

    with app.app_context(), new_session(app) as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "property-demo"))
        session.set_tenant(tenant.id)
        records = list(session.scalars(select(Record)))
        clocks = Counter(session.execute(select(Clock.standard_code, Clock.state)).all())
        evaluated = session.scalar(select(func.count(func.distinct(Evaluation.record_id))))
        schedules = list(session.scalars(select(Schedule)))
        missed = list(session.scalars(select(OutboxEvent).where(OutboxEvent.type == "schedule.missed")))
        actions = list(session.scalars(select(Action)))
        survey = session.scalar(select(Survey))
        responses = session.scalar(select(func.count()).select_from(SurveyResponse))
        sites = {site.id: site.code for site in session.scalars(select(Site))}
        first = fingerprint(session)

    # Months of history, all in the past, all scored.
    kinds = Counter(r.kind for r in records)
    assert kinds["property.work_order"] > 100 and kinds["complaint"] > 20
    assert kinds["property.facility_check"] > 40 and kinds["observation"] >= 2
    assert evaluated == len(records) - kinds["observation"]
    now = utcnow()
    oldest = min(r.occurred_at for r in records)
    assert now - oldest > timedelta(days=120)
    for record in records:
        for value in (record.timestamps or {}).values():
            assert datetime.fromisoformat(value) <= now
    orders = [r for r in records if r.kind == "property.work_order"]
    assert {r.data["category"] for r in orders} == set(CATEGORIES)
    assert {r.data["priority"] for r in orders} == {"urgent", "normal"}
    assert {r.site_id for r in orders} == set(sites)
    assert Counter(r.status for r in orders)["closed"] > 0.9 * len(orders)
    assert any(r.data.get("fixed_first_time") is False for r in orders)
    assert any(r.data["owner"] == {} for r in orders) and any(r.data["owner"].get("phone") for r in orders)
    assert {r.data["severity"] for r in records if r.kind == "complaint"} == {"general", "serious"}
    # Most deadlines met, some missed.
    for code in ("property.work_order", "property.complaint"):
        met, breached = clocks[(code, "met")], clocks[(code, "breached")]
        assert met > 3 * breached > 0, (code, met, breached)
    assert ("core.complaint", "met") not in clocks  # the property standard replaces core's

    # One month of fire patrols missed at the first estate, and only that: reported as a
    # breach (schedule.missed) with a corrective action, visible in the compliance report.
    patrols = [s for s in schedules if s.match == PATROL]
    assert len(patrols) == 2
    outcomes = {}
    for schedule in patrols:
        report = client.get(f"/api/v1/schedules/{schedule.id}/compliance", headers=headers).json
        outcomes[sites[schedule.site_id]] = [p["outcome"] for p in report["periods"]]
    assert outcomes["EST-GL"].count("missed") == 1 and outcomes["EST-RV"].count("missed") == 0
    assert outcomes["EST-GL"].index("missed") == 2 and outcomes["EST-GL"][:2] == ["met", "met"]
    assert [e.payload["match"] for e in missed] == [PATROL]
    assert any(a.source == "deadline" and a.title.startswith("Missed: Fire equipment patrol")
               for a in actions)
    # Faults found on checks opened corrective actions too.
    assert any(a.source == "critical" and a.standard_code == "property.facility_check" for a in actions)

    # Owners answered the satisfaction survey.
    assert responses > 0
    results = client.get(f"/api/v1/surveys/{survey.id}/results", headers=headers)
    assert results.status_code == 200, results.json

    # Loading again adds nothing; onboarding again changes nothing.
    with app.app_context(), new_session(app, tenant.id) as session:
        demo.load(session, session.get(Tenant, tenant.id))
        session.commit()
        assert session.scalar(select(func.count()).select_from(Record)) == len(records)
    manifest = dict(example_manifests())["property.toml"]
    assert not onboard(app, manifest, demo=True).changed

    # Deterministic: a second property manager from the same manifest gets the same history.
    with at(started):
        report = onboard(app, {**manifest, "slug": "property-demo-2"}, demo=True)
    with app.app_context(), new_session(app, report.tenant_id) as session:
        second = fingerprint(session)
    assert second == first
