"""The property KPIs through ``GET /api/v1/kpis``: worked examples with known answers,
the ``by`` parameter, groupings and errors, a constant number of queries, tenants without
the plugin; and over the demo tenant's data, values that are non-trivial (some targets
met, some not) and equal to a count made independently from the rows."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import event, select

from servq.core.calendar import due
from servq.core.calendar.tenant import tenant_calendar
from servq.core.db import utcnow
from servq.core.kpis import KpiQuery, registered_metrics
from servq.core.models import Record, Schedule
from servq.core.plugins.app import get_plugins
from tests.factories import ApiClient
from servq.tenants.onboarding import example_manifests, onboard

# Rows dated in 2026, entered on a fixed day after them (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("present")

SHANGHAI = ZoneInfo("Asia/Shanghai")
KPIS = "/api/v1/kpis"
NAMES = ("property.response_attainment", "property.on_site_attainment",
         "property.complaint_resolution", "property.schedule_compliance",
         "property.lighting_availability")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def kpi(client, metrics, since, until, **params):
    response = client.get(KPIS, query_string={"metrics": metrics, "since": since.isoformat(),
                                              "until": until.isoformat(), **params})
    assert response.status_code == 200, response.json
    return response.json


def values(result, name):
    return {tuple(row["group"].values()): row["values"][name] for row in result["rows"]}


# -- worked examples --------------------------------------------------------------------------


def at(instant: datetime):
    """Each step is taken when it happens (the breach watch runs after each write: a record
    filed later than its deadline would be escalated as breached at once)."""
    return time_machine.travel(instant, tick=False)


def step(client, record_id, action, when):
    url = f"/api/v1/records/{record_id}"
    with at(when):
        moved = client.post(f"{url}/transitions", json={"action": action},
                            headers={"If-Match": client.get(url).headers["ETag"]})
    assert moved.status_code == 200, moved.json


def create(client, body, when):
    with at(when):
        response = client.post("/api/v1/records", json={**body, "occurred_at": when.isoformat()})
    assert response.status_code == 201, response.json
    return response


def repair(client, site, reported, category, priority, steps, **data):
    """A work order reported at ``reported`` and taken through ``steps`` ((action, minutes after
    the report), ...)."""
    response = create(client, {
        "kind": "property.work_order", "site_id": site,
        "data": {"channel": "hotline", "unit": "1-1-0101", "category": category, "priority": priority,
                 "description": "Fault", **data}}, reported)
    for action, minutes in steps:
        step(client, response.json["id"], action, reported + timedelta(minutes=minutes))
    return response.json["id"]


def complaint(client, site, received, severity, steps):
    response = create(client, {
        "kind": "complaint", "site_id": site,
        "data": {"channel": "hotline", "severity": severity, "description": "Noise at night"}}, received)
    for action, minutes in steps:
        step(client, response.json["id"], action, received + timedelta(minutes=minutes))
    return response.json["id"]


def facility(client, site, when, facility_, check, **data):
    create(client, {"kind": "property.facility_check", "site_id": site,
                    "data": {"facility": facility_, "check": check, "result": "ok", **data}}, when)


@pytest.fixture
def worked(make_estate, factory):
    """An estate with a known set of records in March 2026 (onboarded on 1 March, so the
    obligations' periods start then)."""
    with at(local(2026, 3, 1, 9)):
        estate = make_estate("kpi-estate")
    # Tokens issued back then have expired by now: new ones.
    estate.handle.api = ApiClient(factory.client, factory.token(estate.id, estate.handle.owner_email))
    for role, email in estate.emails.items():
        estate.clients[role] = ApiClient(factory.client, factory.token(estate.id, email))
    garden, river = estate.sites["GARDEN"], estate.sites["RIVER"]
    api = estate.api
    day = local(2026, 3, 2, 10)
    # Urgent repairs (on-site target 30 min): on time, late, on time at the river.
    repair(api, garden, day, "elevator", "urgent", [("respond", 2), ("arrive", 20)])
    repair(api, garden, day + timedelta(hours=1), "power", "urgent", [("respond", 3), ("arrive", 45)])
    repair(api, river, day + timedelta(hours=2), "drainage", "urgent", [("respond", 3), ("arrive", 25)])
    # Normal repairs: answered in 1 hour, in 5 hours (late), never (late by now: decided).
    repair(api, garden, day + timedelta(days=1), "cleaning", "normal", [("respond", 60)])
    repair(api, garden, day + timedelta(days=1, hours=1), "water", "normal", [("respond", 300)])
    repair(api, river, day + timedelta(days=2), "other", "normal", [])
    # Complaints: a general one resolved in 3 h, one in 10 h (late); a serious one in 2 days.
    complaint(api, garden, day, "general", [("acknowledge", 10), ("investigate", 30), ("resolve", 180)])
    complaint(api, garden, day + timedelta(hours=3), "general",
              [("acknowledge", 10), ("investigate", 30), ("resolve", 600)])
    complaint(api, river, day, "serious", [("acknowledge", 10), ("investigate", 30), ("resolve", 2880)])
    # Lighting: two checks at the garden (the later counts), one at the river.
    facility(api, garden, local(2026, 3, 5, 10), "lighting", "patrol", lights_total=200, lights_working=190)
    facility(api, garden, local(2026, 3, 20, 10), "lighting", "patrol", lights_total=200, lights_working=199)
    facility(api, river, local(2026, 3, 12, 10), "lighting", "patrol", lights_total=100, lights_working=97)
    # March's fire patrol at the garden only; the river's drainage check.
    facility(api, garden, local(2026, 3, 15, 10), "fire_equipment", "patrol")
    facility(api, river, local(2026, 3, 16, 10), "drainage", "inspection")
    return estate


def test_worked_example(worked):
    api, garden, river = worked.api, worked.sites["GARDEN"], worked.sites["RIVER"]
    since, until = local(2026, 3, 1), local(2026, 4, 1)
    response = values(kpi(api, "property.response_attainment", since, until), "property.response_attainment")
    # Urgent: 3 of 3 answered in time; normal: 1 of 3 (one late, one never answered).
    assert response[()] == {"urgent": 100.0, "normal": pytest.approx(100 / 3)}
    by_category = values(kpi(api, "property.response_attainment", since, until, by="category"),
                         "property.response_attainment")[()]
    assert by_category == {"elevator": 100.0, "power": 100.0, "drainage": 100.0, "cleaning": 100.0,
                           "water": 0.0, "other": 0.0}
    plain = values(kpi(api, "property.response_attainment", since, until, by="none"),
                   "property.response_attainment")
    assert plain[()] == pytest.approx(400 / 6)

    on_site = kpi(api, "property.on_site_attainment", since, until, group_by="site")
    assert values(on_site, "property.on_site_attainment") == {
        (garden,): {"urgent": 50.0, "normal": 0.0},  # the power fault late; the water fault never
        (river,): {"urgent": 100.0}}
    assert set(on_site["labels"]["site"]) == {garden, river}

    resolution = values(kpi(api, "property.complaint_resolution", since, until),
                        "property.complaint_resolution")
    assert resolution[()] == {"general": 50.0, "serious": 100.0}
    by_site = values(kpi(api, "property.complaint_resolution", since, until, group_by="site", by="none"),
                     "property.complaint_resolution")
    assert by_site == {(garden,): 50.0, (river,): 100.0}

    lighting = values(kpi(api, "property.lighting_availability", since, until, group_by="site"),
                      "property.lighting_availability")
    assert lighting == {(garden,): 99.5, (river,): 97.0}
    assert values(kpi(api, "property.lighting_availability", since, until),
                  "property.lighting_availability")[()] == pytest.approx(100 * 296 / 300)
    weekly = values(kpi(api, "property.lighting_availability", since, until, group_by="week,site"),
                    "property.lighting_availability")
    assert weekly[("2026-W10", garden)] == 95.0 and weekly[("2026-W12", garden)] == 99.5

    # March's periods are over on 1 April: the garden did its fire patrol, the river not;
    # the drainage check the other way round; the half-yearly and yearly ones are open.
    with at(local(2026, 4, 1, 0, 5)):
        manager = ApiClient(worked.handle.factory.client,
                            worked.handle.factory.token(worked.id, worked.emails["manager"]))
        compliance = kpi(manager, "property.schedule_compliance", since, until, group_by="site",
                         by="obligation")
        plain = kpi(manager, "property.schedule_compliance", since, until, group_by="month")
    assert values(compliance, "property.schedule_compliance") == {
        (garden,): {"fire_equipment/patrol": 100.0, "drainage/inspection": 0.0},
        (river,): {"fire_equipment/patrol": 0.0, "drainage/inspection": 100.0}}
    assert values(plain, "property.schedule_compliance") == {("2026-03",): 50.0}


def test_parameters_groupings_and_other_tenants(worked, globex):
    api = worked.api
    since, until = local(2026, 3, 1), local(2026, 4, 1)
    bad = api.get(KPIS, query_string={"metrics": "property.complaint_resolution", "by": "priority",
                                      "since": since.isoformat(), "until": until.isoformat()})
    assert bad.status_code == 422 and "by" in bad.json["errors"]["query"]
    bad = api.get(KPIS, query_string={"metrics": "property.lighting_availability", "group_by": "staff"})
    assert bad.status_code == 422 and "group_by" in bad.json["errors"]["query"]
    bad = api.get(KPIS, query_string={"metrics": "property.on_site_attainment", "group_by": "kind"})
    assert bad.status_code == 422
    listed = {m["name"]: m for m in worked.viewer.get(f"{KPIS}/metrics").json}
    assert set(NAMES) <= set(listed) and listed["property.on_site_attainment"]["plugin"] == "property"
    assert listed["property.response_attainment"]["unit"] == "percent"
    # A tenant without the plugin has none of these metrics.
    assert not set(NAMES) & {m["name"] for m in globex.api.get(f"{KPIS}/metrics").json}
    refused = globex.api.get(KPIS, query_string={"metrics": "property.response_attainment"})
    assert refused.status_code == 422 and "metrics" in refused.json["errors"]["query"]
    # Filters: one site, and a kind the metric does not read.
    garden = worked.sites["GARDEN"]
    one = values(kpi(api, "property.response_attainment", since, until, site_id=garden),
                 "property.response_attainment")
    assert one[()] == {"urgent": 100.0, "normal": 50.0}
    nothing = values(kpi(api, "property.response_attainment", since, until, kind="complaint"),
                     "property.response_attainment")
    assert nothing[()] == {}


def test_each_metric_is_one_query_whatever_the_data(app, worked):
    """The number of statements does not grow with the records or the schedules."""
    engine = app.extensions["servq.engine"]
    metrics = registered_metrics(get_plugins(app))

    def statements(name, since, until):
        seen = []

        def count(conn, cursor, statement, *args):
            if "records" in statement or "schedules" in statement or "clocks" in statement:
                seen.append(statement)

        with app.app_context(), worked.session() as session:
            tenant_calendar(session)  # the calendar is read once per request anyway
            query = KpiQuery(session=session, since=since, until=until, timezone="Asia/Shanghai",
                             group_by=("site", "month"), now=local(2026, 4, 1, 1))
            event.listen(engine, "before_cursor_execute", count)
            try:
                metrics[name].compute(query)
            finally:
                event.remove(engine, "before_cursor_execute", count)
        return len(seen)

    for name in NAMES:
        short = statements(name, local(2026, 3, 1), local(2026, 3, 3))
        long = statements(name, local(2026, 1, 1), local(2026, 4, 1))
        expected = 2 if name == "property.schedule_compliance" else 1  # + the schedules
        assert short <= expected and long == expected, name


# -- the demo tenant --------------------------------------------------------------------------


def test_demo_kpis_are_non_trivial_and_match_an_independent_count(app, factory):
    manifest = dict(example_manifests())["property.toml"]
    report = onboard(app, manifest, demo=True)
    assert report.demo_loaded
    now = utcnow()
    token = factory.token(report.tenant_id, "manager@property.servq.test")
    manager = ApiClient(factory.client, token)
    first = now.astimezone(SHANGHAI).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    since = (first - timedelta(days=1)).replace(day=1)
    for _ in range(3):
        since = (since - timedelta(days=1)).replace(day=1)  # four full months back
    until = first

    with app.app_context(), factory.session(report.tenant_id) as session:
        records = list(session.scalars(select(Record).where(
            Record.occurred_at >= since, Record.occurred_at < until, Record.deleted_at.is_(None))))
        schedules = list(session.scalars(select(Schedule)))
        calendar = tenant_calendar(session)
    work_orders = [r for r in records if r.kind == "property.work_order"]
    complaints = [r for r in records if r.kind == "complaint"]
    assert len(work_orders) > 100 and len(complaints) > 20

    def stamp(record, name):
        value = (record.timestamps or {}).get(name)
        return datetime.fromisoformat(value) if value else None

    def attainment(rows, start, stop, limit_of, key_of):
        counts: dict[str, list[int]] = {}
        for row in rows:
            limit = limit_of(row)
            if limit is None:
                continue
            began, ended = stamp(row, start), stamp(row, stop)
            deadline = due(began, limit, calendar) if isinstance(limit, str) else began + limit
            if ended is None and now < deadline:
                continue  # still in time: not decided
            on_time = ended is not None and ended <= deadline
            counts.setdefault(key_of(row), [0, 0])[0 if on_time else 1] += 1
        return {key: 100.0 * good / (good + bad) for key, (good, bad) in counts.items()}

    faults = ("elevator", "power", "water")
    expected = {
        ("property.response_attainment", "priority"): attainment(
            work_orders, "reported_at", "responded_at", lambda r: timedelta(hours=4),
            lambda r: r.data["priority"]),
        ("property.response_attainment", "category"): attainment(
            work_orders, "reported_at", "responded_at", lambda r: timedelta(hours=4),
            lambda r: r.data["category"]),
        ("property.on_site_attainment", "priority"): attainment(
            work_orders, "reported_at", "on_site_at",
            lambda r: timedelta(minutes=30) if r.data["priority"] == "urgent"
            or r.data["category"] in faults else None, lambda r: r.data["priority"]),
        ("property.complaint_resolution", "severity"): attainment(
            complaints, "received_at", "resolved_at",
            lambda r: timedelta(hours=8) if r.data["severity"] == "general" else "5 working days",
            lambda r: r.data["severity"]),
    }
    for (name, by), wanted in expected.items():
        got = values(kpi(manager, name, since, until, by=by), name)[()]
        assert got == pytest.approx(wanted), (name, by)
        assert any(v < 100 for v in got.values()) and any(v > 50 for v in got.values()), (name, got)
    assert 0 < expected[("property.on_site_attainment", "priority")]["urgent"] < 100
    assert 0 < expected[("property.complaint_resolution", "severity")]["general"] < 100

    # Lighting: the latest lighting check of each estate in the window.
    latest: dict = {}
    for row in sorted((r for r in records if r.kind == "property.facility_check"
                       and r.data["facility"] == "lighting"), key=lambda r: (r.occurred_at, r.id)):
        latest[row.site_id] = row
    lights = values(kpi(manager, "property.lighting_availability", since, until, group_by="site"),
                    "property.lighting_availability")
    assert lights == {(str(site),): pytest.approx(100 * r.data["lights_working"] / r.data["lights_total"])
                      for site, r in latest.items()}

    # Schedule compliance: what core's compliance report says of each schedule, period by
    # period (another code path), and one month of fire patrols missed at the first estate.
    met = missed = 0
    per_site: dict[str, list[int]] = {}
    for schedule in schedules:
        report_ = manager.get(f"/api/v1/schedules/{schedule.id}/compliance",
                              query_string={"since": since.isoformat(), "until": until.isoformat()}).json
        for period in report_["periods"]:
            end = datetime.fromisoformat(period["end"]) - timedelta(seconds=1)
            if not since <= end < until or period["outcome"] == "open":
                continue
            met += period["outcome"] == "met"
            missed += period["outcome"] == "missed"
            if schedule.match == {"facility": "fire_equipment", "check": "patrol"}:
                counts = per_site.setdefault(str(schedule.site_id), [0, 0])
                counts[0 if period["outcome"] == "met" else 1] += 1
    overall = values(kpi(manager, "property.schedule_compliance", since, until),
                     "property.schedule_compliance")[()]
    assert overall == pytest.approx(100.0 * met / (met + missed)) and 0 < overall < 100
    patrols = values(kpi(manager, "property.schedule_compliance", since, until, group_by="site",
                         by="obligation"), "property.schedule_compliance")
    assert {site: v["fire_equipment/patrol"] for (site,), v in patrols.items()} == {
        site: 100.0 * good / (good + bad) for site, (good, bad) in per_site.items()}
    assert sorted(bad for _good, bad in per_site.values()) == [0, 1]
