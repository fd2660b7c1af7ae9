"""Quotas of recurring obligations through HTTP: N records a period, per staff member
(each person judged and notified on their own), working days only (holidays and weekends
of the tenant's calendar are no obligation), compliance counts in one query, bad input."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import event, select

from servq.core.models import Action, OutboxEvent, Schedule
from tests.factories import ApiClient
from tests.test_evaluations import put_standard
from tests.test_inspections import CODE, FRONT_DESK, GOOD
from tests.test_schedules import at, local, observation, run_scan, site, t

# 2026-01-05 is a Monday.
MON, TUE, WED, THU, FRI, SAT, SUN = (local(2026, 1, d) for d in range(5, 12))


def staff(tenant, code, title="Inspector", **fields):
    response = tenant.api.post("/api/v1/staff", json={"code": code, "name": f"Staff {code}",
                                                      "title": title, **fields})
    assert response.status_code == 201, response.json
    return response.json["id"]


def record(tenant, when, staff_id=None, api=None):
    response = (api or tenant.api).post("/api/v1/records", json={
        "kind": "observation", "occurred_at": when.isoformat(), "staff_id": staff_id,
        "data": {"title": "Daily check"}})
    assert response.status_code == 201, response.json
    return response.json["id"]


def create(tenant, **fields):
    body = {"title": "Daily inspections", "kind": "observation", "rrule": "FREQ=DAILY",
            "dtstart": MON.isoformat(), **fields}
    response = tenant.api.post("/api/v1/schedules", json=body)
    assert response.status_code == 201, response.json
    return response.json


def report(tenant, schedule, since, until, **query):
    response = tenant.api.get(f"/api/v1/schedules/{schedule['id']}/compliance", query_string={
        "since": since.isoformat(), "until": until.isoformat(), **query})
    assert response.status_code == 200, response.json
    return response.json


def test_two_inspectors_with_a_quota_of_two_a_day_only_the_one_short_misses(acme, app):
    with at(local(2026, 1, 4, 12)):
        ann, bob = staff(acme, "ANN"), staff(acme, "BOB")
        staff(acme, "CAT", title="Cleaner")  # not an inspector: owes nothing
        daily = create(acme, per="staff", staff={"title": "Inspector"}, min_count=2,
                       escalate_to=["manager"], action_on_miss=True)
    assert daily["per"] == "staff" and daily["min_count"] == 2
    assert daily["staff"] == {"title": "Inspector"} and daily["staff_field"] == "staff_id"
    record(acme, local(2026, 1, 5, 9), ann)
    record(acme, local(2026, 1, 5, 15), ann)
    record(acme, local(2026, 1, 5, 10), bob)
    record(acme, local(2026, 1, 5, 11))  # nobody's: counts for no one
    record(acme, local(2026, 1, 4, 10), bob)  # the day before the schedule: not Monday's
    with at(local(2026, 1, 5, 23, 59)):
        assert run_scan(app, acme)["missed_periods"] == 0
    with at(local(2026, 1, 6, 0, 1)):
        assert run_scan(app, acme)["missed_periods"] == 1
        assert run_scan(app, acme)["missed_periods"] == 0
        monday = report(acme, daily, MON, TUE)
    with acme.session() as session:
        events = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "schedule.missed")).all()
        actions = session.scalars(select(Action).where(Action.source == "deadline")).all()
    assert len(events) == 1
    payload = events[0].payload
    assert (payload["staff_id"], payload["staff_code"], payload["count"], payload["min_count"]) == (
        bob, "BOB", 1, 2)
    assert t(payload["period_start"]) == MON and events[0].roles == ["manager"]
    assert len(actions) == 1 and actions[0].title == "Missed: Daily inspections (2026-01-05, BOB)"

    [period] = monday["periods"]
    assert period["outcome"] == "missed" and period["count"] == 3
    assert [(c["code"], c["count"], c["outcome"]) for c in period["staff"]] == [
        ("ANN", 2, "met"), ("BOB", 1, "missed")]
    assert monday["summary"] == {"met": 0, "missed": 1, "open": 0}
    assert [(s["code"], s["met"], s["missed"]) for s in monday["staff"]] == [("ANN", 1, 0), ("BOB", 0, 1)]

    # Tuesday: Bob files two before midnight, Ann none yet; the day is still open.
    record(acme, local(2026, 1, 6, 9), bob)
    record(acme, local(2026, 1, 6, 10), bob)
    with at(local(2026, 1, 6, 18)):
        tuesday = report(acme, daily, TUE, WED)
        only_ann = report(acme, daily, MON, WED, staff_id=ann)
    assert [(c["code"], c["outcome"]) for c in tuesday["periods"][0]["staff"]] == [
        ("ANN", "open"), ("BOB", "met")]
    assert tuesday["periods"][0]["outcome"] == "open"
    assert [[c["code"] for c in p["staff"]] for p in only_ann["periods"]] == [["ANN"], ["ANN"]]
    assert [p["outcome"] for p in only_ann["periods"]] == ["met", "open"]


def test_a_holiday_and_the_weekend_are_no_daily_obligation_with_working_days(acme, app):
    calendar = acme.api.put("/api/v1/calendar", json={
        "timezone": "Asia/Shanghai", "extra_holidays": ["2026-01-07"]})  # Wednesday off
    assert calendar.status_code == 200, calendar.json
    with at(local(2026, 1, 4, 12)):
        working = create(acme, title="Working days", working_days=True, escalate_to=["manager"])
        every = create(acme, title="Every day")
    assert working["working_days"] is True and every["working_days"] is False
    for day in (MON, TUE, THU):
        record(acme, day.replace(hour=10))
    with at(local(2026, 1, 12, 0, 1)):
        # Friday missed by both; Wednesday (a holiday) and the weekend only by "Every day".
        assert run_scan(app, acme)["missed_periods"] == 1 + 4
        assert run_scan(app, acme)["missed_periods"] == 0
        week = report(acme, working, MON, local(2026, 1, 12))
        all_days = report(acme, every, MON, local(2026, 1, 12))
    assert [p["outcome"] for p in week["periods"]] == [
        "met", "met", "not_required", "met", "missed", "not_required", "not_required"]
    assert week["summary"] == {"met": 3, "missed": 1, "open": 0, "not_required": 3}
    assert [p["outcome"] for p in all_days["periods"]] == [
        "met", "met", "missed", "met", "missed", "missed", "missed"]
    assert all_days["summary"] == {"met": 3, "missed": 4, "open": 0}
    with acme.session() as session:
        missed = session.scalars(select(OutboxEvent).where(
            OutboxEvent.type == "schedule.missed",
            OutboxEvent.payload["schedule_id"].as_string() == working["id"])).all()
    assert [t(e.payload["period_start"]) for e in missed] == [FRI]


def test_a_quota_without_staff_needs_that_many_records_a_period(acme, app):
    with at(local(2026, 1, 4, 12)):
        daily = create(acme, min_count=3)
    for hour in (9, 10, 11):
        record(acme, local(2026, 1, 5, hour))
    for hour in (9, 10):
        record(acme, local(2026, 1, 6, hour))
    with at(local(2026, 1, 7, 0, 1)):
        assert run_scan(app, acme)["missed_periods"] == 1
        days = report(acme, daily, MON, WED)
    assert [(p["outcome"], p["count"]) for p in days["periods"]] == [("met", 3), ("missed", 2)]
    assert days["periods"][0]["record_id"] is not None and "staff" not in days


def test_inspectors_by_role_named_by_the_inspections_inspector_field(acme, factory, app):
    put_standard(acme, CODE, document=FRONT_DESK)
    emails = [acme.add_user("inspector") for _ in range(2)]
    acme.add_user("agent")  # not an inspector
    with acme.session() as session:
        from servq.core.models import User

        users = [str(session.scalar(select(User.id).where(User.email == e))) for e in emails]
    with at(local(2026, 1, 4, 12)):
        first = staff(acme, "I1", title="", user_id=users[0])
        staff(acme, "I2", title="", user_id=users[1])
        staff(acme, "NOUSER", title="")  # linked to no user: cannot be an inspector by role
        daily = create(acme, kind="inspection", per="staff", staff={"role": "inspector"},
                       staff_field="data.inspector_id")
    # The first inspector files one inspection of Monday; the owner files one naming the
    # second inspector; Tuesday nobody files.
    as_first = ApiClient(factory.client, factory.token(acme.id, emails[0]))
    for api, inspector in ((as_first, None), (acme.api, users[1])):
        response = api.post("/api/v1/records", json={
            "kind": "inspection", "occurred_at": local(2026, 1, 5, 10).isoformat(),
            "staff_id": first,
            "data": {"standard": CODE, "answers": GOOD, "inspector_id": inspector}})
        assert response.status_code == 201, response.json
    with at(local(2026, 1, 7, 0, 1)):
        days = report(acme, daily, MON, WED)
        assert run_scan(app, acme)["missed_periods"] == 2  # both inspectors on Tuesday
    assert [[(c["code"], c["count"], c["outcome"]) for c in p["staff"]] for p in days["periods"]] == [
        [("I1", 1, "met"), ("I2", 1, "met")], [("I1", 0, "missed"), ("I2", 0, "missed")]]


def test_per_staff_compliance_is_one_query_on_records(acme, app):
    with at(local(2026, 1, 4, 12)):
        people = [staff(acme, f"S{i}") for i in range(3)]
        daily = create(acme, per="staff", staff={"ids": people}, min_count=1)
    for day in range(5, 30, 2):
        record(acme, local(2026, 1, day, 9), people[day % 3])
    statements = []
    engine = app.extensions["servq.engine"]

    def count(conn, cursor, statement, *args):
        if "records" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with at(local(2026, 2, 1)):
            month = report(acme, daily, MON, local(2026, 2, 1))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(month["periods"]) == 27
    assert sum(s["met"] for s in month["staff"]) == 13
    assert sum(s["missed"] for s in month["staff"]) == 27 * 3 - 13
    assert len(statements) == 1


def test_bad_quotas_are_422_and_change_nothing(acme, globex):
    foreign = site(globex, "GLX")
    with at(local(2026, 1, 4, 12)):
        person = staff(acme, "ANN")
        stranger = staff(globex, "GLX1")
    cases = [
        ({"per": "staff", "staff": {"ids": [person, stranger]}}, "staff"),  # another tenant's
        ({"min_count": 0}, "min_count"),
        ({"min_count": -3}, "min_count"),
        ({"min_count": "2"}, "min_count"),
        ({"per": "team"}, "per"),
        ({"per": "staff"}, "staff"),
        ({"per": "staff", "staff": {"ids": [str(uuid.uuid4())]}}, "staff"),
        ({"per": "staff", "staff": {"ids": []}}, "staff"),
        ({"per": "staff", "staff": {"ids": ["not-an-id"]}}, "staff"),
        ({"per": "staff", "staff": {"role": "janitor"}}, "staff"),
        ({"per": "staff", "staff": {"colour": "blue"}}, "staff"),
        ({"per": "staff", "staff": {"site_id": foreign}}, "staff"),
        ({"per": "staff", "staff": {"title": ""}}, "staff"),
        ({"per": "staff", "staff": {}, "staff_field": "data.no-such field"}, "staff_field"),
        ({"per": "staff", "staff": {}, "staff_field": "occurred_at"}, "staff_field"),
        ({"staff": {"ids": [person]}}, "staff"),
        ({"staff_field": "staff_id"}, "staff_field"),
        ({"working_days": "sometimes"}, "working_days"),
    ]
    for change, field in cases:
        body = {"title": "Daily", "kind": "observation", "rrule": "FREQ=DAILY",
                "dtstart": MON.isoformat(), **change}
        response = acme.api.post("/api/v1/schedules", json=body)
        assert response.status_code == 422, (change, response.json)
        assert field in json.dumps(response.json["errors"]), (change, response.json)
    assert acme.api.get("/api/v1/schedules").json == []

    with at(local(2026, 1, 4, 12)):
        daily = create(acme, per="staff", staff={"ids": [person]}, min_count=2)
    url = f"/api/v1/schedules/{daily['id']}"
    for change in ({"min_count": 0}, {"staff": {"role": "janitor"}}, {"staff": None},
                   {"staff_field": "data."}):
        response = acme.api.update(url, change)
        assert response.status_code == 422, (change, response.json)
    stored = acme.api.get(url).json
    assert (stored["min_count"], stored["staff"]) == (2, {"ids": [person]})
    # Back to one obligation per period: the selector goes with it.
    plain = acme.api.update(url, {"per": "schedule"})
    assert plain.status_code == 200, plain.json
    assert (plain.json["per"], plain.json["staff"], plain.json["staff_field"]) == ("schedule", None, None)
    with acme.session() as session:
        assert session.get(Schedule, (acme.id, uuid.UUID(daily["id"]))).staff_selector is None
