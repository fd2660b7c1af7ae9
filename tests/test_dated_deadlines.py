"""Deadlines due at a moment (``due``, ``before``), at a local time of day (``due_time``,
``days_after``, ``working_day``) and stopped by the first of several stamps
(``stop_any``): through HTTP, on the tenant's calendar, the evaluation and the clock
agreeing on the due instant, and the breach watch run as a scan.

A small plugin in this module (``dated``) gives a record kind whose ``data`` holds the
moments (an appointment, a delivery window) and whose workflow stamps arrivals, notices
and deliveries; time is frozen with ``time_machine``.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import time_machine
from marshmallow import Schema, fields, validate

from servq.cli import make_cli
from servq.core.plugins import RecordKind, Transition, Workflow, hookimpl

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
API = "/api/v1/standards"
RECORDS = "/api/v1/records"
KIND = "dated.visit"
DE_CALENDAR = {"timezone": "Europe/Berlin", "country": "DE",
               "working_hours": {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}}


# -- the test plugin ---------------------------------------------------------------------------


def _iso(value):
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.utcoffset() is None:
        raise validate.ValidationError("an ISO 8601 instant with an offset")


class Span(Schema):
    start = fields.String(validate=_iso)
    to = fields.String(validate=_iso)


class VisitData(Schema):
    title = fields.String(required=True)
    appointment = fields.Nested(Span)
    window = fields.Nested(Span)


WORKFLOW = Workflow(
    transitions=(
        Transition("arrive", ("booked",), "arrived", "arrived_at"),
        Transition("notify", ("booked",), "booked", "notified_at"),
        Transition("deliver", ("booked", "arrived"), "done", "delivered_at"),
        Transition("wait", ("booked",), "waiting", "waiting_at"),
        Transition("resume", ("waiting",), "booked", "resumed_at", restamp=True),
    ),
    waiting=("waiting",),
    final=("done",),
)


@hookimpl
def register_record_kinds():
    return [RecordKind(name=KIND, schema=VisitData, title={"en": "Visit", "zh": "上门"},
                       description="A visit with an appointment (tests of dated deadlines).",
                       statuses=("booked", "arrived", "waiting", "done"), workflow=WORKFLOW)]


@pytest.fixture
def app_config(app_config):
    app_config["EXTRA_PLUGINS"] = [("dated", sys.modules[__name__])]
    return app_config


@pytest.fixture
def tenant(factory):
    handle = factory.tenant("acme", timezone="Europe/Berlin", plugins=("dated",))
    response = handle.api.put("/api/v1/calendar", json=DE_CALENDAR)
    assert response.status_code == 200, response.json
    return handle


# -- helpers -----------------------------------------------------------------------------------


def item(code, **rule):
    return {"code": code, "title": {"en": code, "zh": code}, "dimension": "responsiveness",
            "rule": {"type": "deadline", "start": "occurred_at", **rule}}


def document(*items):
    return {"code": "acme.visits", "version": 1, "title": {"en": "Visits", "zh": "上门"},
            "applies_to": [KIND], "method": "weighted", "pass_mark": 100, "items": list(items)}


def put_standard(tenant, *items):
    response = tenant.api.put(f"{API}/acme.visits", json={"document": document(*items)})
    assert response.status_code == 201, response.json


def at(instant):
    return time_machine.travel(instant, tick=False)


def visit(tenant, occurred_at, **data):
    response = tenant.api.post(RECORDS, json={"kind": KIND, "occurred_at": occurred_at.isoformat(),
                                              "data": {"title": "Boiler service", **data}})
    assert response.status_code == 201, response.json
    return response.json["id"]


def take(tenant, record_id, action, **body):
    etag = tenant.api.get(f"{RECORDS}/{record_id}").headers["ETag"]
    response = tenant.api.post(f"{RECORDS}/{record_id}/transitions", json={"action": action, **body},
                               headers={"If-Match": etag})
    assert response.status_code == 200, response.json


def clocks(tenant, record_id):
    response = tenant.api.get(f"{RECORDS}/{record_id}/clocks")
    assert response.status_code == 200, response.json
    return {clock["item"]: clock for clock in response.json}


def items(tenant, record_id):
    response = tenant.api.get(f"{RECORDS}/{record_id}/evaluation")
    assert response.status_code == 200, response.json
    return {entry["code"]: entry for entry in response.json["items"]}


def scan(app):
    from click.testing import CliRunner

    result = CliRunner().invoke(make_cli(app_factory=lambda: app), ["deadlines", "scan", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def instant(text):
    return datetime.fromisoformat(text)


T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # a Monday, 10:00 in Berlin
APPOINTMENT = {"start": (T0 + timedelta(hours=3)).isoformat(), "to": (T0 + timedelta(hours=4)).isoformat()}


# -- due at a moment held in the record ------------------------------------------------------


def test_a_clock_due_at_the_appointment_breaches_one_minute_after_it(app, tenant):
    put_standard(tenant, item("on_time", stop="timestamps.arrived_at", due="data.appointment.to"))
    with at(T0):
        record = visit(tenant, T0, appointment=APPOINTMENT)
        clock = clocks(tenant, record)["on_time"]
    due = T0 + timedelta(hours=4)
    assert instant(clock["due"]) == due and clock["target"] == "at data.appointment.to"
    assert clock["state"] == "running" and clock["time"] == "wall"
    assert clock["time_left_seconds"] == 4 * 3600 and clock["percent_used"] == 0.0
    with at(T0 + timedelta(hours=3)):
        assert clocks(tenant, record)["on_time"]["percent_used"] == 75.0
        assert items(tenant, record)["on_time"]["outcome"] == "pending"
    with at(due + timedelta(minutes=1)):
        scan(app)
        clock = clocks(tenant, record)["on_time"]
        assert clock["state"] == "breached" and instant(clock["breached_at"]) == due
        assert clock["time_over_seconds"] == 60
        assert tenant.api.get(f"{RECORDS}/{record}").json["escalation_level"] == 1


def test_a_clock_due_at_the_appointment_is_met_when_stopped_before_and_agrees_with_the_evaluation(app, tenant):
    put_standard(tenant, item("on_time", stop="timestamps.arrived_at", due="data.appointment.to"))
    with at(T0):
        record = visit(tenant, T0, appointment=APPOINTMENT)
    with at(T0 + timedelta(hours=3, minutes=59)):
        take(tenant, record, "arrive")
        clock = clocks(tenant, record)["on_time"]
        scored = items(tenant, record)["on_time"]
    assert clock["state"] == "met" and clock["time_left_seconds"] == 60
    assert scored["outcome"] == "pass"
    assert instant(scored["evidence"]["due"]) == instant(clock["due"]) == T0 + timedelta(hours=4)
    with at(T0 + timedelta(days=1)):
        scan(app)
        assert clocks(tenant, record)["on_time"]["state"] == "met"


def test_arriving_after_the_appointment_fails_and_a_record_without_one_has_no_clock(app, tenant):
    put_standard(tenant, item("on_time", stop="timestamps.arrived_at", due="data.appointment.to"))
    with at(T0):
        late, none = visit(tenant, T0, appointment=APPOINTMENT), visit(tenant, T0)
    with at(T0 + timedelta(hours=4, seconds=1)):
        take(tenant, late, "arrive")
        assert clocks(tenant, late)["on_time"]["state"] == "breached"
        assert items(tenant, late)["on_time"]["outcome"] == "fail"
    assert clocks(tenant, none) == {}
    assert items(tenant, none)["on_time"]["outcome"] == "na"


def test_when_still_decides_which_records_a_dated_item_applies_to(app, tenant):
    put_standard(tenant, item("on_time", stop="timestamps.arrived_at", due="data.appointment.to",
                              when={"title": ["Boiler service"]}))
    with at(T0):
        boiler = visit(tenant, T0, appointment=APPOINTMENT)
        other = tenant.api.post(RECORDS, json={"kind": KIND, "occurred_at": T0.isoformat(), "data": {
            "title": "Window cleaning", "appointment": APPOINTMENT}}).json["id"]
        assert set(clocks(tenant, boiler)) == {"on_time"} and clocks(tenant, other) == {}
        assert items(tenant, other)["on_time"]["outcome"] == "na"


def test_a_pause_moves_a_moment_due_later_as_it_moves_a_limit(app, tenant):
    put_standard(tenant, item("on_time", stop="timestamps.arrived_at", due="data.appointment.to"))
    with at(T0):
        record = visit(tenant, T0, appointment=APPOINTMENT)
    with at(T0 + timedelta(hours=1)):
        take(tenant, record, "wait", reason="Customer asked to wait")
        assert clocks(tenant, record)["on_time"]["state"] == "paused"
    with at(T0 + timedelta(hours=1, minutes=30)):
        take(tenant, record, "resume")
        clock = clocks(tenant, record)["on_time"]
    assert clock["state"] == "running"
    assert instant(clock["due"]) == T0 + timedelta(hours=4, minutes=30)
    # The watch recomputes from the clock's row alone: nothing due yet at 4 h 15 m.
    with at(T0 + timedelta(hours=4, minutes=15)):
        scan(app)
        assert clocks(tenant, record)["on_time"]["state"] == "running"


def test_before_makes_a_notice_due_a_limit_ahead_of_the_window(app, tenant):
    put_standard(tenant, item("notice", stop="timestamps.notified_at", due="data.window.to",
                              before="30 minutes"),
                 item("notice_working", stop="timestamps.notified_at", due="data.window.to",
                      before="2 working hours"))
    # The window ends Monday 8 June 10:00 Berlin (08:00 UTC); the record is from Friday.
    window = {"to": datetime(2026, 6, 8, 10, 0, tzinfo=BERLIN).isoformat()}
    friday = datetime(2026, 6, 5, 12, 0, tzinfo=BERLIN)
    with at(friday):
        record = visit(tenant, friday, window=window)
        shown = clocks(tenant, record)
    notice, working = shown["notice"], shown["notice_working"]
    assert notice["target"] == "30m before data.window.to"
    assert instant(notice["due"]) == datetime(2026, 6, 8, 9, 30, tzinfo=BERLIN)
    # Two working hours before Monday 10:00: Monday 09:00-10:00 and Friday 16:00-17:00.
    assert working["target"] == "2 working hours before data.window.to" and working["time"] == "working"
    assert instant(working["due"]) == datetime(2026, 6, 5, 16, 0, tzinfo=BERLIN)
    with at(datetime(2026, 6, 5, 16, 30, tzinfo=BERLIN)):
        take(tenant, record, "notify")
        shown, scored = clocks(tenant, record), items(tenant, record)
    assert shown["notice"]["state"] == "met" and scored["notice"]["outcome"] == "pass"
    assert shown["notice_working"]["state"] == "breached" and scored["notice_working"]["outcome"] == "fail"


def test_stop_any_stops_at_the_earliest_stamp(app, tenant):
    put_standard(tenant, item("told", stop_any=["timestamps.delivered_at", "timestamps.notified_at"],
                              limit="2h"),
                 item("told_by_appointment", stop_any=["timestamps.delivered_at", "timestamps.notified_at"],
                      due="data.appointment.to"))
    with at(T0):
        record = visit(tenant, T0, appointment=APPOINTMENT)
    # Notified (the second stamp listed) at 30 minutes, delivered at 1 h: the earliest stops
    # the clocks, whichever comes first in the list.
    with at(T0 + timedelta(minutes=30)):
        take(tenant, record, "notify")
        assert clocks(tenant, record)["told"]["state"] == "met"
    with at(T0 + timedelta(hours=1)):
        take(tenant, record, "deliver")
        shown, scored = clocks(tenant, record), items(tenant, record)
    for code in ("told", "told_by_appointment"):
        assert instant(shown[code]["stop"]) == T0 + timedelta(minutes=30), code
        assert shown[code]["state"] == "met" and scored[code]["outcome"] == "pass"
    assert shown["told"]["percent_used"] == 25.0
    assert shown["told_by_appointment"]["percent_used"] == 12.5


# -- due at a local time of day --------------------------------------------------------------


@pytest.mark.parametrize("local_day, due_utc", [
    (datetime(2026, 3, 27, 7, 0, tzinfo=BERLIN), datetime(2026, 3, 27, 7, 30, tzinfo=UTC)),  # CET
    (datetime(2026, 3, 30, 7, 0, tzinfo=BERLIN), datetime(2026, 3, 30, 6, 30, tzinfo=UTC)),  # CEST
])
def test_an_0830_item_is_due_at_0830_berlin_time_either_side_of_the_clock_change(app, tenant, local_day, due_utc):
    put_standard(tenant, item("by_0830", stop="timestamps.arrived_at", due_time="08:30"))
    with at(local_day):
        record = visit(tenant, local_day)
        clock, scored = clocks(tenant, record)["by_0830"], items(tenant, record)["by_0830"]
    assert clock["target"] == "08:30 local"
    assert instant(clock["due"]) == due_utc == instant(scored["evidence"]["due"])
    assert clock["time_left_seconds"] == 90 * 60
    with at(due_utc + timedelta(minutes=1)):
        scan(app)
        assert clocks(tenant, record)["by_0830"]["state"] == "breached"


def test_a_local_time_that_does_not_exist_resolves_forward(app, tenant):
    put_standard(tenant, item("by_0230", stop="timestamps.arrived_at", due_time="02:30"))
    start = datetime(2026, 3, 29, 0, 30, tzinfo=BERLIN)  # the night clocks go forward at 02:00
    with at(start):
        record = visit(tenant, start)
        clock = clocks(tenant, record)["by_0230"]
    assert instant(clock["due"]) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 summer time


def test_a_start_after_the_time_is_due_that_day_and_breached(app, tenant):
    put_standard(tenant, item("by_0830", stop="timestamps.arrived_at", due_time="08:30"))
    start = datetime(2026, 6, 2, 9, 0, tzinfo=BERLIN)
    with at(start):
        record = visit(tenant, start)
        clock, scored = clocks(tenant, record)["by_0830"], items(tenant, record)["by_0830"]
    assert instant(clock["due"]) == datetime(2026, 6, 2, 8, 30, tzinfo=BERLIN)
    assert clock["state"] == "breached" and scored["outcome"] == "breached"
    assert clock["percent_used"] == 100.0


def test_working_day_rolls_over_easter_to_the_next_working_day(app, tenant):
    put_standard(tenant, item("next_morning", stop="timestamps.arrived_at", due_time="09:00",
                              days_after=1, working_day=True),
                 item("next_day", stop="timestamps.arrived_at", due_time="09:00", days_after=1))
    # Thursday 2 April 2026; Good Friday 3 April and Easter Monday 6 April are German holidays.
    start = datetime(2026, 4, 2, 15, 0, tzinfo=BERLIN)
    with at(start):
        record = visit(tenant, start)
        shown, scored = clocks(tenant, record), items(tenant, record)
    assert shown["next_morning"]["target"] == "09:00 local +1 day, working day"
    assert instant(shown["next_morning"]["due"]) == datetime(2026, 4, 7, 7, 0, tzinfo=UTC)
    assert instant(scored["next_morning"]["evidence"]["due"]) == datetime(2026, 4, 7, 7, 0, tzinfo=UTC)
    assert instant(shown["next_day"]["due"]) == datetime(2026, 4, 3, 9, 0, tzinfo=BERLIN)


# -- what is refused -------------------------------------------------------------------------


@pytest.mark.parametrize("rule, field", [
    ({"stop": "timestamps.arrived_at"}, "limit"),
    ({"stop": "timestamps.arrived_at", "limit": "1h", "due": "data.appointment.to"}, "limit"),
    ({"stop": "timestamps.arrived_at", "due": "data.appointment.to", "due_time": "08:30"}, "limit"),
    ({"stop": "timestamps.arrived_at", "stop_any": ["timestamps.notified_at"], "limit": "1h"}, "stop"),
    ({"limit": "1h"}, "stop"),
    ({"stop_any": [], "limit": "1h"}, "stop_any"),
    ({"stop": "timestamps.arrived_at", "limit": "1h", "before": "30m"}, "before"),
    ({"stop": "timestamps.arrived_at", "due": "data.window.to", "before": "2 working days"}, "before"),
    ({"stop": "timestamps.arrived_at", "due": "data.window.to", "days_after": 1}, "days_after"),
    ({"stop": "timestamps.arrived_at", "due_time": "8.30"}, "due_time"),
    ({"stop": "timestamps.arrived_at", "due_time": "25:00"}, "due_time"),
    ({"stop": "timestamps.arrived_at", "due_time": "08:30", "days_after": -1}, "days_after"),
    ({"stop": "timestamps.arrived_at", "due_time": "08:30", "clock": "business"}, "clock"),
])
def test_invalid_combinations_are_refused_and_nothing_is_stored(app, tenant, rule, field):
    response = tenant.api.put(f"{API}/acme.visits", json={"document": document(item("x", **rule))})
    assert response.status_code == 422, response.json
    assert field in json.dumps(response.json), response.json
    assert tenant.api.get(f"{API}/acme.visits").status_code == 404
