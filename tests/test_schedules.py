"""Recurring obligations: CRUD, compliance per period, and missed periods as breaches."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from click.testing import CliRunner
from sqlalchemy import event, select

from servq.cli import make_cli
from servq.core.models import Action, OutboxEvent, Schedule

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def t(text: str) -> datetime:
    return datetime.fromisoformat(text)


def at(instant: datetime):
    return time_machine.travel(instant, tick=False)


def site(tenant, code="EST-A"):
    response = tenant.api.post("/api/v1/sites", json={"code": code, "name": f"Estate {code}"})
    assert response.status_code == 201, response.json
    return response.json["id"]


def observation(tenant, when: datetime, site_id=None, title="Fire equipment patrolled"):
    response = tenant.api.post("/api/v1/records", json={
        "kind": "observation", "occurred_at": when.isoformat(), "site_id": site_id,
        "data": {"title": title}})
    assert response.status_code == 201, response.json
    return response.json["id"]


def schedule(tenant, **fields):
    body = {"title": "Fire equipment patrol", "kind": "observation", "rrule": "FREQ=MONTHLY",
            "dtstart": local(2026, 1, 1).isoformat(), **fields}
    response = tenant.api.post("/api/v1/schedules", json=body)
    assert response.status_code == 201, response.json
    return response.json


def run_scan(app, tenant):
    result = CliRunner().invoke(make_cli(app_factory=lambda: app),
                                ["deadlines", "scan", "--json", "--tenant", tenant.slug])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)[tenant.slug]


def test_a_monthly_schedule_with_one_month_missing_reports_exactly_that_month(acme, app):
    estate = site(acme)
    other = site(acme, "EST-B")
    with at(local(2025, 12, 20)):
        patrol = schedule(acme, site_id=estate)
    jan = observation(acme, local(2026, 1, 15, 10), estate)
    observation(acme, local(2026, 1, 20, 10), estate)  # a second one in January: the first counts
    feb = observation(acme, local(2026, 2, 28, 23, 59), estate)
    observation(acme, local(2026, 3, 10), other)  # March: at another estate, does not count
    deleted = observation(acme, local(2026, 3, 12), estate)
    assert acme.api.remove(f"/api/v1/records/{deleted}").status_code == 204
    apr = observation(acme, local(2026, 4, 1, 0, 0), estate)  # local midnight opens April
    with at(local(2026, 5, 20, 12)):
        report = acme.api.get(f"/api/v1/schedules/{patrol['id']}/compliance").json
    periods = [(t(p["start"]), p["outcome"], p["record_id"]) for p in report["periods"]]
    assert periods == [
        (local(2026, 1, 1), "met", jan),
        (local(2026, 2, 1), "met", feb),
        (local(2026, 3, 1), "missed", None),
        (local(2026, 4, 1), "met", apr),
        (local(2026, 5, 1), "open", None),
    ]
    assert report["summary"] == {"met": 3, "missed": 1, "open": 1}
    assert t(report["periods"][2]["end"]) == local(2026, 4, 1)

    # A window: February to April.
    with at(local(2026, 5, 20, 12)):
        window = acme.api.get(f"/api/v1/schedules/{patrol['id']}/compliance", query_string={
            "since": local(2026, 2, 15).isoformat(), "until": local(2026, 4, 1).isoformat()}).json
    assert [(t(p["start"]), p["outcome"]) for p in window["periods"]] == [
        (local(2026, 2, 1), "met"), (local(2026, 3, 1), "missed")]


def test_the_watch_reports_a_missed_month_once_with_an_action(acme, app):
    estate = site(acme)
    with at(local(2025, 12, 20)):
        patrol = schedule(acme, site_id=estate, action_on_miss=True, escalate_to=["manager"])
    assert t(patrol["next_check_at"]) == local(2026, 2, 1)
    observation(acme, local(2026, 1, 5), estate)
    observation(acme, local(2026, 2, 5), estate)
    with at(local(2026, 3, 31, 23, 59)):
        assert run_scan(app, acme)["missed_periods"] == 0
    with at(local(2026, 4, 1, 0, 1)):
        assert run_scan(app, acme)["missed_periods"] == 1
        assert run_scan(app, acme)["missed_periods"] == 0
    with at(local(2026, 5, 1, 0, 1)):
        observation(acme, local(2026, 4, 30), estate)
        assert run_scan(app, acme)["missed_periods"] == 0
    with acme.session() as session:
        events = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "schedule.missed")).all()
        actions = session.scalars(select(Action).where(Action.source == "deadline")).all()
        stored = session.get(Schedule, (acme.id, uuid.UUID(patrol["id"])))
    assert len(events) == 1 and events[0].roles == ["manager"]
    assert t(events[0].payload["period_start"]) == local(2026, 3, 1)
    assert events[0].payload["schedule_id"] == patrol["id"]
    assert len(actions) == 1 and actions[0].title.startswith("Missed: Fire equipment patrol (2026-03-01")
    assert stored.next_check_at == local(2026, 6, 1)


def test_grace_lets_a_record_be_filed_after_the_period(acme, app):
    with at(local(2025, 12, 20)):
        patrol = schedule(acme, grace="3 days")
    assert patrol["grace"] == "3d"
    observation(acme, local(2026, 1, 10))
    with at(local(2026, 2, 3, 12)):  # January ended, but the grace runs to 4 February
        assert run_scan(app, acme)["missed_periods"] == 0
        report = acme.api.get(f"/api/v1/schedules/{patrol['id']}/compliance").json
        assert [p["outcome"] for p in report["periods"]] == ["met", "open"]
    with at(local(2026, 3, 3, 12)):
        # February's patrol happened on the 27th and was filed on 3 March: within grace.
        observation(acme, local(2026, 2, 27))
        assert run_scan(app, acme)["missed_periods"] == 0
    with at(local(2026, 4, 4, 0, 1)):
        assert run_scan(app, acme)["missed_periods"] == 1  # March


def test_twice_a_year_and_a_finite_rule(acme, app):
    # (Frozen times stay in the past: the test tokens are valid for a day from now.)
    with at(local(2024, 12, 1)):
        tanks = schedule(acme, title="Water tanks cleaned", rrule="FREQ=MONTHLY;INTERVAL=6",
                         dtstart=local(2025, 1, 1).isoformat())
        once = schedule(acme, title="Survey", rrule="RRULE:FREQ=YEARLY;COUNT=2",
                        dtstart=local(2024, 1, 1).isoformat())
    observation(acme, local(2025, 8, 1))
    with at(local(2026, 3, 1)):
        report = acme.api.get(f"/api/v1/schedules/{tanks['id']}/compliance").json
        finite = acme.api.get(f"/api/v1/schedules/{once['id']}/compliance", query_string={
            "until": local(2030, 1, 1).isoformat()}).json
    assert [(t(p["start"]), t(p["end"]), p["outcome"]) for p in report["periods"]] == [
        (local(2025, 1, 1), local(2025, 7, 1), "missed"),
        (local(2025, 7, 1), local(2026, 1, 1), "met"),
        (local(2026, 1, 1), local(2026, 7, 1), "open"),
    ]
    assert once["rrule"] == "FREQ=YEARLY;COUNT=2"
    assert [(t(p["start"]), t(p["end"]), p["outcome"]) for p in finite["periods"]] == [
        (local(2024, 1, 1), local(2025, 1, 1), "missed"), (local(2025, 1, 1), local(2026, 1, 1), "met")]


def test_periods_follow_the_tenants_time_zone_across_daylight_saving(factory, app):
    berlin = factory.tenant("berlin", timezone="Europe/Berlin")
    with at(datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))):
        weekly = schedule(berlin, rrule="FREQ=MONTHLY", dtstart="2026-02-01T00:00:00+01:00")
        report = berlin.api.get(f"/api/v1/schedules/{weekly['id']}/compliance", query_string={
            "until": "2026-05-01T00:00:00+02:00"}).json
    # March has 31 days minus the hour lost on 29 March: periods start at local midnight.
    assert [p["start"] for p in report["periods"]] == [
        "2026-01-31T23:00:00+00:00", "2026-02-28T23:00:00+00:00", "2026-03-31T22:00:00+00:00"]


def test_compliance_is_one_query_on_records(acme, app):
    with at(local(2025, 12, 20)):
        patrol = schedule(acme, rrule="FREQ=DAILY")
    for day in range(1, 29, 3):
        observation(acme, local(2026, 2, day, 9))
    statements = []
    engine = app.extensions["servq.engine"]

    def count(conn, cursor, statement, *args):
        if "records" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with at(local(2026, 3, 1)):
            report = acme.api.get(f"/api/v1/schedules/{patrol['id']}/compliance", query_string={
                "since": local(2026, 2, 1).isoformat()}).json
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(report["periods"]) == 28 and report["summary"]["met"] == 10
    assert len(statements) == 1


@pytest.mark.cross_tenant("POST /api/v1/schedules")
def test_invalid_schedules_are_422_and_change_nothing(acme, globex):
    foreign = site(globex, "GLX")
    cases = [
        ({"rrule": "FREQ=SOMETIMES"}, "rrule"),
        ({"rrule": "FREQ=HOURLY"}, "rrule"),
        ({"rrule": "INTERVAL=2"}, "rrule"),
        ({"rrule": "FREQ=MONTHLY;UNTIL=20260601T000000"}, "rrule"),
        ({"rrule": "DTSTART:20260101T000000Z\nRRULE:FREQ=MONTHLY"}, "rrule"),
        ({"dtstart": "2026-01-01T00:00:00"}, "dtstart"),
        ({"kind": "no.such_kind"}, "kind"),
        ({"site_id": foreign}, "site_id"),
        ({"standard_code": "no.such_standard"}, "standard_code"),
        ({"grace": "soon"}, "grace"),
        ({"escalate_to": ["janitor"]}, "escalate_to"),
        ({"tenant_id": str(acme.id)}, "tenant_id"),
    ]
    for change, field in cases:
        body = {"title": "Patrol", "kind": "observation", "rrule": "FREQ=MONTHLY",
                "dtstart": "2026-01-01T00:00:00+08:00", **change}
        response = acme.api.post("/api/v1/schedules", json=body)
        assert response.status_code == 422, (change, response.json)
        assert field in json.dumps(response.json["errors"]), (change, response.json)
    assert acme.api.get("/api/v1/schedules").json == []


def test_schedule_crud_with_etags_and_roles(acme, globex):
    created = schedule(acme, key="fire.patrol")
    url = f"/api/v1/schedules/{created['id']}"
    assert acme.api.post("/api/v1/schedules", json={
        "key": "fire.patrol", "title": "Again", "kind": "observation", "rrule": "FREQ=MONTHLY",
        "dtstart": "2026-01-01T00:00:00+08:00"}).status_code == 409
    listed = acme.api.get("/api/v1/schedules?kind=observation")
    assert [s["id"] for s in listed.json] == [created["id"]] and "X-Pagination" in listed.headers

    assert acme.api.patch(url, json={"title": "Monthly patrol"}).status_code == 428
    assert acme.api.patch(url, json={"title": "x"}, etag='"stale"').status_code == 412
    changed = acme.api.update(url, {"title": "Monthly patrol", "rrule": "freq=monthly;interval=2"})
    assert changed.status_code == 200 and changed.json["rrule"] == "FREQ=MONTHLY;INTERVAL=2"
    assert acme.api.update(url, {"grace": "2 days"}).json["grace"] == "2d"
    assert acme.api.update(url, {"grace": None}).json["grace"] is None
    assert acme.api.update(url, {"title": None}).status_code == 422
    assert acme.api.update(url, {"rrule": "FREQ=NEVER"}).status_code == 422
    assert acme.api.get(url).json["rrule"] == "FREQ=MONTHLY;INTERVAL=2"
    paused = acme.api.update(url, {"active": False})
    assert paused.json["active"] is False and paused.json["next_check_at"] is None

    viewer, inspector = acme.as_role("viewer"), acme.as_role("inspector")
    assert viewer.get(url).status_code == 200
    assert viewer.get(f"{url}/compliance").status_code == 200
    for client in (viewer, inspector):
        assert client.post("/api/v1/schedules", json={
            "title": "x", "kind": "observation", "rrule": "FREQ=MONTHLY",
            "dtstart": "2026-01-01T00:00:00+08:00"}).status_code == 403
        etag = client.get(url).headers["ETag"]
        assert client.patch(url, json={"title": "x"}, etag=etag).status_code == 403
        assert client.delete(url, etag=etag).status_code == 403

    # Another tenant sees nothing of it and cannot touch it.
    assert globex.api.get(url).status_code == 404
    assert globex.api.get(f"{url}/compliance").status_code == 404
    assert globex.api.patch(url, json={"title": "mine"}, etag='"x"').status_code == 404
    assert globex.api.delete(url, etag='"x"').status_code == 404
    assert globex.api.get("/api/v1/schedules").json == []

    assert acme.api.remove(url).status_code == 204
    assert acme.api.get(url).status_code == 404
    history = acme.api.get("/api/v1/schedules").json
    assert history == []


@pytest.mark.cross_tenant("GET /api/v1/schedules",
                          "GET /api/v1/schedules/<uuid:schedule_id>",
                          "PATCH /api/v1/schedules/<uuid:schedule_id>",
                          "DELETE /api/v1/schedules/<uuid:schedule_id>",
                          "GET /api/v1/schedules/<uuid:schedule_id>/compliance")
def test_another_tenants_schedule_is_404_and_unchanged(acme, globex):
    with at(local(2026, 3, 15, 12, 0)):
        created = schedule(acme, key="fire.patrol")
        url = f"/api/v1/schedules/{created['id']}"
        owner = acme.api.get(url)
        etag = owner.headers["ETag"]
        assert globex.api.get(url).status_code == 404
        assert globex.api.get(f"{url}/compliance").status_code == 404
        r = globex.api.patch(url, json={"title": "Ours now", "active": False}, etag=etag)
        assert r.status_code == 404 and r.json["message"]
        assert globex.api.delete(url, etag=etag).status_code == 404
        assert globex.api.get("/api/v1/schedules").json == []
        # globex may use the same key for a schedule of its own.
        theirs = schedule(globex, key="fire.patrol")
        assert [s["id"] for s in globex.api.get("/api/v1/schedules").json] == [theirs["id"]]
        # Nothing changed for acme.
        after = acme.api.get(url)
        assert after.status_code == 200 and after.headers["ETag"] == etag and after.json == owner.json
        assert [s["id"] for s in acme.api.get("/api/v1/schedules").json] == [created["id"]]
        assert acme.api.get(f"{url}/compliance").status_code == 200


def test_another_tenants_records_never_meet_a_schedule(acme, globex):
    with at(local(2025, 12, 20)):
        patrol = schedule(acme)
    observation(globex, local(2026, 1, 10))
    with at(local(2026, 2, 10)):
        report = acme.api.get(f"/api/v1/schedules/{patrol['id']}/compliance").json
    assert [p["outcome"] for p in report["periods"]] == ["missed", "open"]


def test_compliance_window_limits(acme):
    with at(local(2025, 12, 20)):
        daily = schedule(acme, rrule="FREQ=DAILY")
    url = f"/api/v1/schedules/{daily['id']}/compliance"
    too_long = acme.api.get(url, query_string={"until": local(2030, 1, 1).isoformat()})
    assert too_long.status_code == 422 and "narrow" in too_long.json["message"]
    backwards = acme.api.get(url, query_string={"since": local(2026, 2, 1).isoformat(),
                                                "until": local(2026, 1, 1).isoformat()})
    assert backwards.status_code == 422


def test_plugins_create_schedules_idempotently(acme, app):
    from servq.core.deadlines.schedules import ScheduleInvalid, create_schedule

    fields = dict(key="sample.fire_patrol", title="Fire patrol", kind="observation",
                  rrule="FREQ=MONTHLY", dtstart=local(2026, 1, 1))
    with app.app_context(), acme.session() as session:
        first = create_schedule(session, **fields)
        session.commit()
        again = create_schedule(session, **{**fields, "title": "Changed"})
        assert again.id == first.id and again.title == "Fire patrol"
        with pytest.raises(ScheduleInvalid) as error:
            create_schedule(session, title="x", kind="observation", rrule="FREQ=MINUTELY",
                            dtstart=local(2026, 1, 1))
        assert "rrule" in error.value.errors
    assert [s["key"] for s in acme.api.get("/api/v1/schedules").json] == ["sample.fire_patrol"]


def test_match_restricts_the_records_that_meet_a_period(acme, globex, app):
    """``match``: only records whose data has those top-level values (with their JSON
    type) meet a period, in the compliance report and in the watch."""
    def note(when, severity, tags=()):
        response = acme.api.post("/api/v1/records", json={
            "kind": "observation", "occurred_at": when.isoformat(),
            "data": {"title": "Roof check", "severity": severity, "tags": list(tags)}})
        assert response.status_code == 201, response.json
        return response.json["id"]

    with at(local(2025, 12, 20)):
        roof = schedule(acme, title="High-severity review", match={"severity": "high"})
        anything = schedule(acme, title="Any observation")
    assert roof["match"] == {"severity": "high"} and anything["match"] == {}
    note(local(2026, 1, 10), "low")
    feb = note(local(2026, 2, 10), "high")
    with at(local(2026, 3, 10)):
        report = acme.api.get(f"/api/v1/schedules/{roof['id']}/compliance").json
        assert [(p["outcome"], p["record_id"]) for p in report["periods"]] == [
            ("missed", None), ("met", feb), ("open", None)]
        assert acme.api.get(f"/api/v1/schedules/{anything['id']}/compliance").json["summary"] == {
            "met": 2, "missed": 0, "open": 1}
    with at(local(2026, 4, 1, 0, 1)):
        assert run_scan(app, acme)["missed_periods"] == 3  # January and March; March of the other
    with acme.session() as session:
        missed = [e for e in session.scalars(select(OutboxEvent).where(OutboxEvent.type == "schedule.missed"))
                  if e.payload["schedule_id"] == roof["id"]]
    assert sorted(t(e.payload["period_start"]) for e in missed) == [local(2026, 1, 1), local(2026, 3, 1)]
    assert all(e.payload["match"] == {"severity": "high"} for e in missed)

    # Changing the match is audited, judged from now on, and the type of a value counts.
    url = f"/api/v1/schedules/{roof['id']}"
    changed = acme.api.update(url, {"match": {"severity": "low", "title": "Roof check"}})
    assert changed.status_code == 200 and changed.json["match"] == {"severity": "low", "title": "Roof check"}
    with at(local(2026, 3, 10)):
        report = acme.api.get(f"{url}/compliance").json
    assert [p["outcome"] for p in report["periods"]] == ["met", "missed", "open"]
    assert acme.api.update(url, {"match": {"severity": 1}}).status_code == 200
    with at(local(2026, 3, 10)):
        assert acme.api.get(f"{url}/compliance").json["summary"]["met"] == 0
    assert acme.api.update(url, {"match": None}).json["match"] == {}

    # Bad matches are 422 naming the field, and change nothing.
    for bad in ({"a b": "x"}, {"severity": 1.5}, {"severity": ["high"]}, {"severity": None},
                {"n": 2**70}, "high", {f"k{i}": "v" for i in range(11)}):
        body = {"title": "x", "kind": "observation", "rrule": "FREQ=MONTHLY",
                "dtstart": "2026-01-01T00:00:00+08:00", "match": bad}
        response = acme.api.post("/api/v1/schedules", json=body)
        assert response.status_code == 422, (bad, response.json)
        assert "match" in response.json["errors"]["json"], (bad, response.json)
        assert acme.api.update(url, {"match": bad}).status_code == 422
    assert len(acme.api.get("/api/v1/schedules").json) == 2
    assert acme.api.get(url).json["match"] == {}
    assert globex.api.get(url).status_code == 404
