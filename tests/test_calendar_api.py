"""The tenant's business calendar through HTTP and the manifest: the default calendar,
PUT with validation and If-Match, roles, tenancy, the preview and days endpoints, and
``tenant_calendar`` (``core/api/calendar.py``, ``core/calendar/tenant.py``)."""

from __future__ import annotations

import datetime as dt

import pytest

from servq.core.calendar import BusinessCalendar
from servq.core.calendar.tenant import forget_calendar, tenant_calendar
from servq.tenants.manifest import ManifestError, parse_manifest
from servq.tenants.onboarding import onboard

CALENDAR = "/api/v1/calendar"
LUNCH = ["09:00-12:00", "13:00-18:00"]
WEEK = {d: LUNCH for d in ("mon", "tue", "wed", "thu", "fri")}
CHINA = {"timezone": "Asia/Shanghai", "country": "CN", "working_hours": WEEK}
BERLIN = {"timezone": "Europe/Berlin", "country": "DE", "working_hours": WEEK,
          "extra_holidays": ["2026-12-24"], "extra_working_days": ["2026-12-19"]}


def test_a_tenant_without_a_calendar_works_the_default_one(acme):
    r = acme.api.get(CALENDAR)
    assert r.status_code == 200 and r.headers["ETag"]
    assert r.json == {"timezone": "Asia/Shanghai", "working_hours": WEEK, "country": None,
                      "subdivision": None, "extra_holidays": [], "extra_working_days": [],
                      "makeup_day_hours": None, "is_default": True, "updated_at": None}


def test_default_calendar_follows_the_tenants_time_zone(factory):
    berlin = factory.tenant("berlin-co", timezone="Europe/Berlin")
    assert berlin.api.get(CALENDAR).json["timezone"] == "Europe/Berlin"
    # Monday 23 Nov 2026 11:00 CET + 2 working hours: 11-12 and 13-14 (lunch).
    r = berlin.api.get(f"{CALENDAR}/preview", query_string={
        "start": "2026-11-23T11:00:00+01:00", "limit": "2 working hours"})
    assert r.json["due"] == "2026-11-23T14:00:00+01:00"


def test_put_stores_the_calendar_then_needs_if_match(acme):
    r = acme.api.put(CALENDAR, json=BERLIN)
    assert r.status_code == 200, r.json
    assert r.json["is_default"] is False and r.json["country"] == "DE"
    assert r.json["extra_holidays"] == ["2026-12-24"] and r.json["extra_working_days"] == ["2026-12-19"]
    got = acme.api.get(CALENDAR)
    assert got.json == r.json and got.headers["ETag"] == r.headers["ETag"]
    changed = {**BERLIN, "country": "AT"}
    assert acme.api.put(CALENDAR, json=changed).status_code == 428
    assert acme.api.put(CALENDAR, json=changed, etag='"stale"').status_code == 412
    assert acme.api.get(CALENDAR).json["country"] == "DE"
    r = acme.api.put(CALENDAR, json=changed, etag=got.headers["ETag"])
    assert r.status_code == 200 and r.json["country"] == "AT"
    # the same ETag is now stale
    assert acme.api.put(CALENDAR, json=BERLIN, etag=got.headers["ETag"]).status_code == 412


def test_calendar_changes_are_audited(acme):
    acme.api.put(CALENDAR, json=CHINA)
    acme.api.put(CALENDAR, json={**CHINA, "extra_holidays": ["2026-12-31"]},
                 etag=acme.api.get(CALENDAR).headers["ETag"])
    from sqlalchemy import select

    from servq.core.models import AuditEvent

    with acme.session() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.entity == "calendars")
                           .order_by(AuditEvent.at)).all()
    assert [e.action for e in events] == ["created", "changed"]
    assert events[1].changes == {"extra_holidays": [[], ["2026-12-31"]]}


@pytest.mark.parametrize("body, field", [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({}, "timezone"),
    ({"timezone": "UTC", "working_hours": {"mon": ["09:00-12:00", "11:00-13:00"]}}, "working_hours"),
    ({"timezone": "UTC", "working_hours": {"mon": ["18:00-09:00"]}}, "working_hours"),
    ({"timezone": "UTC", "working_hours": {"funday": ["09:00-17:00"]}}, "working_hours"),
    ({"timezone": "UTC", "working_hours": {}}, "working_hours"),
    ({"timezone": "UTC", "country": "XX"}, "country"),
    ({"timezone": "UTC", "subdivision": "BY"}, "subdivision"),
    ({"timezone": "UTC", "extra_holidays": ["2026-12-24"], "extra_working_days": ["2026-12-24"]},
     "extra_working_days"),
    ({"timezone": "UTC", "extra_holidays": ["24 Dec"]}, "extra_holidays"),
    ({"timezone": "UTC", "tenant_id": "x"}, "tenant_id"),
])
def test_invalid_calendars_are_422_naming_the_field_and_change_nothing(acme, body, field):
    r = acme.api.put(CALENDAR, json=body)
    assert r.status_code == 422
    assert field in r.json["errors"]["json"], r.json
    assert acme.api.get(CALENDAR).json["is_default"] is True


def test_only_managers_and_above_may_set_it(acme):
    for role in ("viewer", "agent", "inspector"):
        api = acme.as_role(role)
        assert api.get(CALENDAR).status_code == 200
        assert api.put(CALENDAR, json=CHINA).status_code == 403
    assert acme.api.get(CALENDAR).json["is_default"] is True
    assert acme.as_role("manager").put(CALENDAR, json=CHINA).status_code == 200
    assert acme.api.get(CALENDAR).json["country"] == "CN"


@pytest.mark.cross_tenant("GET /api/v1/calendar",
                          "PUT /api/v1/calendar",
                          "GET /api/v1/calendar/preview")
def test_another_tenants_calendar_is_invisible_and_untouched(acme, globex):
    assert acme.api.put(CALENDAR, json=BERLIN).status_code == 200
    assert globex.api.get(CALENDAR).json["is_default"] is True
    assert globex.api.get(CALENDAR).json["timezone"] == "Asia/Shanghai"
    assert globex.api.put(CALENDAR, json=CHINA).status_code == 200  # its own, no If-Match
    assert acme.api.get(CALENDAR).json["country"] == "DE"
    # previews count on the caller's own calendar: 24 Dec is a holiday for acme only
    q = {"start": "2026-12-24T10:00:00+01:00", "end": "2026-12-24T12:00:00+01:00"}
    assert acme.api.get(f"{CALENDAR}/preview", query_string=q).json["working_seconds"] == 0
    assert globex.api.get(f"{CALENDAR}/preview", query_string=q).json["working_seconds"] == 3600


@pytest.mark.cross_tenant("GET /api/v1/calendar/days")
def test_days_are_listed_from_the_callers_own_calendar(acme, globex):
    assert acme.api.put(CALENDAR, json={**CHINA, "extra_holidays": ["2026-02-27"]}).status_code == 200
    q = {"from": "2026-02-27", "to": "2026-02-27"}
    [ours] = acme.api.get(f"{CALENDAR}/days", query_string=q).json
    assert ours["working"] is False and ours["note"] == "extra holiday"
    # Friday 27 Feb is an ordinary working day on globex's (default) calendar.
    [theirs] = globex.api.get(f"{CALENDAR}/days", query_string=q).json
    assert theirs["working"] is True and theirs["note"] is None
    assert globex.api.get(CALENDAR).json["is_default"] is True
    assert acme.api.get(CALENDAR).json["extra_holidays"] == ["2026-02-27"]


def test_unauthenticated_is_401(client):
    assert client.get(CALENDAR).status_code == 401
    assert client.put(CALENDAR, json=CHINA).status_code == 401
    assert client.get(f"{CALENDAR}/preview?start=2026-01-01T00:00:00Z&limit=1h").status_code == 401


# -- preview and days -----------------------------------------------------------------


def test_preview_answers_due_times_and_working_time_on_the_china_calendar(acme):
    acme.api.put(CALENDAR, json=CHINA)
    # Filed Friday 13 Feb 2026 20:00, the evening before the Spring Festival holiday:
    # the clock starts on Saturday 14 Feb (a moved working day) at 09:00.
    r = acme.api.get(f"{CALENDAR}/preview", query_string={
        "start": "2026-02-13T12:00:00Z", "limit": "5个工作日", "end": "2026-02-24T10:00:00+08:00"})
    assert r.status_code == 200, r.json
    assert r.json["timezone"] == "Asia/Shanghai"
    assert r.json["start"] == "2026-02-13T20:00:00+08:00"
    assert r.json["working"] is False
    assert r.json["next_working_moment"] == "2026-02-14T09:00:00+08:00"
    assert r.json["limit"] == "5 working days"
    assert r.json["due"] == "2026-02-27T18:00:00+08:00"
    # Saturday 14 (8h) and Tuesday 24 09:00-10:00 (1h); the holiday counts nothing.
    assert r.json["working_seconds"] == 9 * 3600
    assert r.json["wall_seconds"] == (10 * 24 + 14) * 3600
    # a wall-clock limit ignores the calendar
    r = acme.api.get(f"{CALENDAR}/preview", query_string={"start": "2026-02-13T20:00:00+08:00", "limit": "48h"})
    assert r.json["due"] == "2026-02-15T20:00:00+08:00"


def test_preview_across_daylight_saving_time_and_holidays_in_berlin(acme):
    acme.api.put(CALENDAR, json={"timezone": "Europe/Berlin", "country": "DE", "working_hours": WEEK})
    # Saturday 28 March 2026, the night before the clocks go forward: counting starts on
    # Monday 30 March 09:00 CEST. Good Friday (3 Apr) and Easter Monday (6 Apr) are
    # holidays, so 5 working days are 30, 31 March, 1, 2 and 7 April.
    r = acme.api.get(f"{CALENDAR}/preview", query_string={
        "start": "2026-03-28T10:00:00+01:00", "limit": "5 working days"})
    assert r.json["next_working_moment"] == "2026-03-30T09:00:00+02:00"
    assert r.json["due"] == "2026-04-07T18:00:00+02:00"
    # Friday 17:00 CET to Monday 10:00 CEST: one working hour each side of the change.
    r = acme.api.get(f"{CALENDAR}/preview", query_string={
        "start": "2026-03-27T17:00:00+01:00", "end": "2026-03-30T10:00:00+02:00"})
    assert r.json["working_seconds"] == 2 * 3600
    assert r.json["wall_seconds"] == 64 * 3600  # 16:00Z Friday to 08:00Z Monday


@pytest.mark.parametrize("query, field", [
    ({"start": "2026-02-13T20:00:00+08:00", "limit": "soon"}, "limit"),
    ({"start": "2026-02-13T20:00:00+08:00"}, None),
    ({"start": "2026-02-13T20:00:00", "limit": "4h"}, "start"),
    ({"limit": "4h"}, "start"),
    ({"start": "0001-01-02T00:00:00+00:00", "limit": "4h"}, "start"),
    ({"start": "2026-01-01T00:00:00+00:00", "end": "2199-01-01T00:00:00+00:00"}, "end"),
])
def test_preview_refuses_what_it_cannot_answer(acme, query, field):
    r = acme.api.get(f"{CALENDAR}/preview", query_string=query)
    assert r.status_code == 422
    if field:
        assert field in r.json["errors"]["query"]


def test_days_list_holidays_and_moved_working_days(acme):
    acme.api.put(CALENDAR, json={**CHINA, "extra_holidays": ["2026-02-27"]})
    r = acme.api.get(f"{CALENDAR}/days", query_string={"from": "2026-02-13", "to": "2026-02-28"})
    assert r.status_code == 200 and len(r.json) == 16
    days = {d["date"]: d for d in r.json}
    assert days["2026-02-13"] == {"date": "2026-02-13", "weekday": "fri", "working": True, "hours": LUNCH,
                                  "working_seconds": 8 * 3600, "holiday": None, "note": None}
    assert days["2026-02-14"]["note"] == "moved working day" and days["2026-02-14"]["hours"] == LUNCH
    assert days["2026-02-17"]["working"] is False and days["2026-02-17"]["note"] == "public holiday"
    assert days["2026-02-17"]["holiday"]
    assert days["2026-02-27"] == {**days["2026-02-27"], "working": False, "note": "extra holiday"}
    assert days["2026-02-28"]["note"] == "moved working day"
    assert [d["date"] for d in r.json if d["working"]] == [
        "2026-02-13", "2026-02-14", "2026-02-24", "2026-02-25", "2026-02-26", "2026-02-28"]
    too_long = acme.api.get(f"{CALENDAR}/days", query_string={"from": "2026-01-01", "to": "2026-12-31"})
    assert too_long.status_code == 422
    backwards = acme.api.get(f"{CALENDAR}/days", query_string={"from": "2026-02-13", "to": "2026-02-01"})
    assert backwards.status_code == 422


# -- tenant_calendar ------------------------------------------------------------------


def test_tenant_calendar_is_cached_per_session_and_forgotten_on_change(acme):
    with acme.session() as s:
        first = tenant_calendar(s)
        assert first.timezone == "Asia/Shanghai" and first.country is None
        assert first.week_total == dt.timedelta(hours=40)
        assert tenant_calendar(s) is first
        acme.api.put(CALENDAR, json=CHINA)
        s.commit()  # end the session's read transaction; its cached copy stays
        assert tenant_calendar(s) is first
        forget_calendar(s)
        assert tenant_calendar(s).country == "CN"
    with acme.session() as s:
        assert tenant_calendar(s) == BusinessCalendar.from_dict(CHINA)


# -- the manifest's [calendar] ---------------------------------------------------------

MANIFEST = """
slug = "harbour"
name = "Harbour Services"
timezone = "Asia/Shanghai"
admins = [{ email = "boss@harbour.test", role = "owner" }]

[calendar]
country = "CN"
extra_holidays = [2026-12-24]

[calendar.working_hours]
mon = ["09:00-12:00", "13:30-18:00"]
tue = ["09:00-12:00", "13:30-18:00"]
sat = ["09:00-12:00"]
"""


def test_manifest_calendar_is_onboarded_once(app, factory):
    manifest = parse_manifest(MANIFEST)
    report = onboard(app, manifest)
    assert report.as_dict()["counts"]["calendar"] == {"created": 1, "updated": 0, "unchanged": 0}
    again = onboard(app, manifest)
    assert again.as_dict()["counts"]["calendar"] == {"created": 0, "updated": 0, "unchanged": 1}
    with factory.session(report.tenant_id) as s:
        calendar = tenant_calendar(s)
    assert calendar.timezone == "Asia/Shanghai"  # taken from the tenant when not given
    assert calendar.hours_on(dt.date(2026, 11, 23)) == ((540, 720), (810, 1080))
    assert calendar.hours_on(dt.date(2026, 11, 28)) == ((540, 720),)  # a Saturday
    assert calendar.hours_on(dt.date(2026, 12, 24)) == ()
    changed = parse_manifest(MANIFEST.replace("2026-12-24", "2026-12-25"))
    assert onboard(app, changed).as_dict()["counts"]["calendar"]["updated"] == 1


def test_manifest_without_calendar_keeps_the_stored_one(app, factory):
    onboard(app, parse_manifest(MANIFEST))
    plain = MANIFEST.split("[calendar]")[0]
    report = onboard(app, parse_manifest(plain))
    assert report.as_dict()["counts"]["calendar"] == {"created": 0, "updated": 0, "unchanged": 0}
    with factory.session(report.tenant_id) as s:
        assert tenant_calendar(s).country == "CN"


@pytest.mark.parametrize("section, line", [
    ('[calendar]\ntimezone = "Nowhere/City"', "calendar.timezone: Unknown time zone"),
    ('[calendar]\nworking_hours = { mon = ["09:00-13:00", "12:00-18:00"] }', "calendar.working_hours.mon:"),
    ('[calendar]\ncountry = "ZZ"', "calendar.country: Unknown country code"),
    ('[calendar]\nsurprise = 1', "calendar.surprise: Unknown field."),
])
def test_bad_manifest_calendars_name_the_field(section, line):
    text = MANIFEST.split("[calendar]")[0] + section
    with pytest.raises(ManifestError) as exc:
        parse_manifest(text)
    assert any(error.startswith(line) for error in exc.value.errors), exc.value.errors
