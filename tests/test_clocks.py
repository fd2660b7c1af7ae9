"""Deadline clocks of records: due times on the tenant's business calendar, pauses, the
breach watch run as a scan, and the record list filters ``breached`` / ``due_before``.

Time is frozen with ``time_machine`` so that a complaint filed before China's National
Day 2026 is judged as it would have been then.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from servq.cli import make_cli
from servq.core.models import Action, Clock, OutboxEvent, Record

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURS = ["09:00-12:00", "13:00-18:00"]
CN_CALENDAR = {"timezone": "Asia/Shanghai", "country": "CN",
               "working_hours": {day: HOURS for day in ("mon", "tue", "wed", "thu", "fri")}}


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def at(instant: datetime):
    """Freeze the clock at ``instant``."""
    return time_machine.travel(instant, tick=False)


def set_calendar(tenant, document=CN_CALENDAR):
    response = tenant.api.put("/api/v1/calendar", json=document)
    assert response.status_code == 200, response.json


def complaint(tenant, severity="general", **extra):
    response = tenant.api.post("/api/v1/records", json={
        "kind": "complaint", **extra,
        "data": {"channel": "hotline", "severity": severity, "description": "Water leak not fixed"}})
    assert response.status_code == 201, response.json
    return response.json


def clocks_of(tenant, record_id):
    response = tenant.api.get(f"/api/v1/records/{record_id}/clocks")
    assert response.status_code == 200, response.json
    return {clock["item"]: clock for clock in response.json}


def take(tenant, record_id, action, **body):
    etag = tenant.api.get(f"/api/v1/records/{record_id}").headers["ETag"]
    response = tenant.api.post(f"/api/v1/records/{record_id}/transitions",
                               json={"action": action, **body}, headers={"If-Match": etag})
    assert response.status_code == 200, response.json
    return response.json


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def run_scan(app, tenant=None):
    from click.testing import CliRunner

    args = ["deadlines", "scan", "--json"] + (["--tenant", tenant.slug] if tenant else [])
    result = CliRunner().invoke(make_cli(app_factory=lambda: app), args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_friday_evening_complaint_before_national_day_gets_the_hand_computed_due_time(acme, app):
    # The tenant works Monday to Friday 09:00-12:00 and 13:00-18:00 in Asia/Shanghai with
    # China's public holidays. In 2026 (the `holidays` library's CN data):
    #   Fri 25 Sep  Mid-Autumn Festival (a holiday; it is after hours anyway)
    #   Thu 1 Oct - Wed 7 Oct  National Day (Sun 4 Oct is a Sunday anyway)
    #   Sat 10 Oct  a working day moved onto the weekend (调休), worked with Monday's hours
    # Filed Friday 2026-09-25 19:30 local time.
    set_calendar(acme)
    with at(local(2026, 9, 25, 19, 30)):
        record = complaint(acme)
        clocks = clocks_of(acme, record["id"])
    # A general complaint has two clocks (the serious-resolution item has no start: n.a.).
    assert set(clocks) == {"acknowledged_in_time", "general_resolved_in_time"}

    ack = clocks["acknowledged_in_time"]
    # "4 working hours": nothing counts until Monday 28 Sep 09:00; 09:00-12:00 is 3 h,
    # the fourth hour is 13:00-14:00 after lunch  →  Monday 28 Sep 14:00.
    assert instant(ack["due"]) == local(2026, 9, 28, 14, 0)
    assert ack["target"] == "4 working hours" and ack["time"] == "working"
    assert ack["state"] == "running" and ack["time_left_seconds"] == 4 * 3600
    assert ack["percent_used"] == 0.0 and ack["title"]["en"].startswith("Acknowledged")

    resolve = clocks["general_resolved_in_time"]
    # "5 working days" from Friday evening: the clock starts at the opening of Monday
    # 28 Sep, which counts as day 1: Mon 28 (1), Tue 29 (2), Wed 30 (3), National Day
    # 1-7 Oct off, Thu 8 Oct (4), Fri 9 Oct (5)  →  due Friday 9 Oct at 18:00.
    assert instant(resolve["due"]) == local(2026, 10, 9, 18, 0)
    assert resolve["time_left_seconds"] == 5 * 8 * 3600  # 40 working hours
    assert instant(resolve["start"]) == local(2026, 9, 25, 19, 30)

    # Acknowledged on Monday at 10:00: the first clock is met, with 3 working hours to spare.
    with at(local(2026, 9, 28, 10, 0)):
        take(acme, record["id"], "acknowledge")
        ack = clocks_of(acme, record["id"])["acknowledged_in_time"]
    assert ack["state"] == "met" and instant(ack["stop"]) == local(2026, 9, 28, 10, 0)
    assert ack["time_left_seconds"] == 3 * 3600 and ack["percent_used"] == 25.0

    # Tuesday 29 Sep 10:00: waiting for the customer pauses the resolution clock.
    with at(local(2026, 9, 29, 10, 0)):
        take(acme, record["id"], "wait", reason="Waiting for photos of the leak")
        paused = clocks_of(acme, record["id"])["general_resolved_in_time"]
    assert paused["state"] == "paused" and paused["pause_reason"] == "Waiting for photos of the leak"
    # Used so far: Monday 8 h + Tuesday 09:00-10:00 1 h = 9 of 40 working hours.
    assert paused["percent_used"] == 22.5
    assert paused["time_left_seconds"] == 31 * 3600

    # Nothing counts while paused: a week later the clock still shows 31 h left.
    with at(local(2026, 10, 6, 12, 0)):
        still = clocks_of(acme, record["id"])["general_resolved_in_time"]
    assert still["state"] == "paused" and still["time_left_seconds"] == 31 * 3600

    # Thursday 8 Oct 11:00: the customer answered, the investigation resumes. The pause
    # held working time: Tue 29 Sep 10:00-12:00 (2 h) + 13:00-18:00 (5 h) = 7 h,
    # Wed 30 Sep 8 h, 1-7 Oct none (holidays), Thu 8 Oct 09:00-11:00 2 h: 17 h in all.
    # Due moves from Fri 9 Oct 18:00 by 17 working hours: Sat 10 Oct (moved working day)
    # 8 h → 9 h left, Sun 11 off, Mon 12 Oct 8 h → 1 h left, Tue 13 Oct 09:00-10:00
    #   →  due Tuesday 13 Oct 2026 at 10:00.
    with at(local(2026, 10, 8, 11, 0)):
        take(acme, record["id"], "resume")
        resumed = clocks_of(acme, record["id"])["general_resolved_in_time"]
    assert instant(resumed["due"]) == local(2026, 10, 13, 10, 0)
    assert resumed["state"] == "running"
    assert [{k: p[k] for k in ("start", "end", "reason")} for p in resumed["pauses"]] == [{"start": local(2026, 9, 29, 10).astimezone(timezone.utc).isoformat(),
                                  "end": local(2026, 10, 8, 11).astimezone(timezone.utc).isoformat(),
                                  "reason": "Waiting for photos of the leak"}]
    # Left: Thu 11:00-12:00 1 h + 13:00-18:00 5 h, Fri 8 h, Sat 8 h, Mon 8 h, Tue 1 h = 31 h.
    assert resumed["time_left_seconds"] == 31 * 3600 and resumed["percent_used"] == 22.5

    # The 50 % warning: 20 working hours after the start, shifted by the pause: Mon 8 h,
    # Tue 09:00-10:00 1 h (11 h to go after the pause), Thu 8 Oct 11:00-18:00 6 h (5 to
    # go), Fri 9 Oct 09:00-12:00 3 h, 13:00-15:00 2 h  →  Fri 9 Oct 15:00.
    with acme.session() as session:
        clock = session.scalar(select(Clock).where(Clock.item_code == "general_resolved_in_time"))
        assert clock.warn50_at == local(2026, 10, 9, 15, 0)
        assert clock.next_check_at == local(2026, 10, 9, 15, 0)

    # The breach watch after the due time: breached, escalated, notified, action opened.
    with at(local(2026, 10, 13, 10, 1)):
        counts = run_scan(app, acme)["acme"]
        over = clocks_of(acme, record["id"])["general_resolved_in_time"]
        stored = acme.api.get(f"/api/v1/records/{record['id']}").json
    assert counts["breaches"] == 1 and counts["escalated_records"] == 1
    assert over["state"] == "breached" and over["time_over_seconds"] == 60
    assert instant(over["breached_at"]) == local(2026, 10, 13, 10, 0)
    assert stored["escalation_level"] == 1
    with acme.session() as session:
        events = session.scalars(select(OutboxEvent).where(OutboxEvent.type.like("clock.%"))
                                 .order_by(OutboxEvent.type)).all()
        assert [(e.type, e.payload.get("level")) for e in events] == [
            ("clock.breached", None), ("clock.warning", 100)]
        breached = events[0]
        assert breached.roles == ["manager"] and breached.payload["escalation_level"] == 1
        assert breached.payload["item_code"] == "general_resolved_in_time"
        action = session.scalar(select(Action).where(Action.record_id == uuid.UUID(record["id"])))
        assert action.source == "deadline" and action.item_code == "general_resolved_in_time"
    # A second scan finds nothing more to do: each event happens once.
    with at(local(2026, 10, 13, 10, 5)):
        assert run_scan(app, acme)["acme"]["breaches"] == 0
        assert acme.api.get(f"/api/v1/records/{record['id']}").json["escalation_level"] == 1


def test_warnings_at_50_and_75_percent_are_sent_once_each(acme, app):
    set_calendar(acme)
    with at(local(2026, 11, 2, 9, 0)):  # a Monday morning: 4 working hours → 14:00
        record = complaint(acme)
    with at(local(2026, 11, 2, 10, 59)):
        assert run_scan(app, acme)["acme"]["warnings"] == 0
    with at(local(2026, 11, 2, 11, 0)):  # 2 of 4 working hours
        assert run_scan(app, acme)["acme"]["warnings"] == 1
        assert run_scan(app, acme)["acme"]["warnings"] == 0
    with at(local(2026, 11, 2, 13, 0)):  # 3 of 4 (the lunch hour does not count)
        assert run_scan(app, acme)["acme"]["warnings"] == 1
        clock = clocks_of(acme, record["id"])["acknowledged_in_time"]
    assert clock["warned"] == [50, 75] and clock["percent_used"] == 75.0
    with acme.session() as session:
        levels = sorted(e.payload["level"] for e in session.scalars(
            select(OutboxEvent).where(OutboxEvent.type == "clock.warning")))
    assert levels == [50, 75]


def test_a_warning_overtaken_is_skipped_and_a_late_stop_is_a_breach(acme, app):
    set_calendar(acme)
    with at(local(2026, 11, 2, 9, 0)):
        record = complaint(acme)
    # Nobody scanned until 13:30 (past 75 %): only the 75 % warning goes out.
    with at(local(2026, 11, 2, 13, 30)):
        assert run_scan(app, acme)["acme"]["warnings"] == 1
    # Acknowledged late, at 15:00, before the every-minute watch saw the breach: still a
    # breach. (The sync asks for a scan after its commit: inline without Redis, a queued
    # job with it; the scan below catches up in either case.)
    with at(local(2026, 11, 2, 15, 0)):
        take(acme, record["id"], "acknowledge")
        run_scan(app, acme)
        clock = clocks_of(acme, record["id"])["acknowledged_in_time"]
    assert clock["state"] == "breached" and clock["time_over_seconds"] == 3600
    assert instant(clock["breached_at"]) == local(2026, 11, 2, 14, 0)
    with acme.session() as session:
        types = sorted(e.type for e in session.scalars(select(OutboxEvent).where(
            OutboxEvent.type.like("clock.%"))))
        record_row = session.get(Record, (acme.id, uuid.UUID(record["id"])))
    # No 100 % warning for a clock already stopped; the 50 % level was overtaken.
    assert types == ["clock.breached", "clock.warning"]
    assert record_row.escalation_level == 1


#: Observations called back within two hours of wall time.
CALLBACKS = {
    "code": "acme.callbacks", "version": 1, "title": {"en": "Callbacks", "zh": "回访"},
    "applies_to": ["observation"], "method": "weighted", "pass_mark": 100,
    "items": [{"code": "called_back", "title": {"en": "Called back within 2h", "zh": "2小时内回访"},
               "dimension": "responsiveness",
               "rule": {"type": "deadline", "start": "occurred_at",
                        "stop": "timestamps.called_back_at", "limit": "2h"}}]}


def test_wall_clock_limits_count_every_minute(acme, app):
    response = acme.api.put("/api/v1/standards/acme.callbacks", json={"document": CALLBACKS})
    assert response.status_code in (200, 201), response.json
    with at(local(2026, 11, 7, 22, 0)):  # a Saturday night: wall time ignores the calendar
        record = acme.api.post("/api/v1/records", json={
            "kind": "observation", "data": {"title": "Guest asked for a call"}}).json
        clock = clocks_of(acme, record["id"])["called_back"]
    assert clock["time"] == "wall" and clock["target"] == "2h"
    assert instant(clock["due"]) == local(2026, 11, 8, 0, 0)
    assert clock["time_left_seconds"] == 7200


def test_records_filter_on_breached_and_due_before(acme, app):
    set_calendar(acme)
    with at(local(2026, 11, 2, 9, 0)):
        early = complaint(acme)
    with at(local(2026, 11, 2, 15, 0)):
        later = complaint(acme)  # acknowledgement due Tuesday 10:00
        run_scan(app, acme)  # the first one's acknowledgement is breached (due 14:00)
        breached = acme.api.get("/api/v1/records?breached=true").json
        fine = acme.api.get("/api/v1/records?breached=false").json
        due_tomorrow_noon = acme.api.get("/api/v1/records", query_string={
            "due_before": local(2026, 11, 3, 12, 0).isoformat()}).json
        due_today = acme.api.get("/api/v1/records", query_string={
            "due_before": local(2026, 11, 2, 16, 0).isoformat()}).json
        bad = acme.api.get("/api/v1/records?breached=maybe")
        naive = acme.api.get("/api/v1/records?due_before=2026-11-02T16:00:00")
    assert [r["id"] for r in breached] == [early["id"]]
    assert [r["id"] for r in fine] == [later["id"]]
    # Both have a clock still counting due before Tuesday noon (the breached one too).
    assert sorted(r["id"] for r in due_tomorrow_noon) == sorted([early["id"], later["id"]])
    assert [r["id"] for r in due_today] == [early["id"]]
    assert bad.status_code == 422 and naive.status_code == 422


@pytest.mark.cross_tenant("GET /api/v1/records/<uuid:record_id>/clocks")
def test_clocks_of_another_tenants_record_are_404_and_viewers_may_read(acme, globex, app):
    set_calendar(acme)
    with at(local(2026, 11, 2, 9, 0)):
        record = complaint(acme)
        assert globex.api.get(f"/api/v1/records/{record['id']}/clocks").status_code == 404
        viewer = acme.as_role("viewer")
        response = viewer.get(f"/api/v1/records/{record['id']}/clocks")
    assert response.status_code == 200 and len(response.json) == 2
    assert acme.api.get("/api/v1/records/00000000-0000-0000-0000-000000000000/clocks").status_code == 404
    assert globex.api.get("/api/v1/records?breached=true").json == []
    # A scan of every tenant leaves the other tenant's clocks alone.
    with at(local(2026, 11, 2, 15, 0)):
        results = run_scan(app)
    assert results["acme"]["breaches"] == 1 and results["globex"]["breaches"] == 0


def test_a_deleted_record_is_no_longer_watched(acme, app):
    set_calendar(acme)
    with at(local(2026, 11, 2, 9, 0)):
        record = complaint(acme)
        assert acme.api.remove(f"/api/v1/records/{record['id']}").status_code == 204
    with at(local(2026, 11, 3, 9, 0)):
        counts = run_scan(app, acme)["acme"]
    assert {k: counts[k] for k in ("actions", "breaches", "warnings", "notifications")} == {
        "actions": 0, "breaches": 0, "warnings": 0, "notifications": 0}


def test_the_clock_changes_with_the_records_timestamps(acme, app):
    """Reopening a resolved complaint clears ``resolved_at``: the resolution clock runs again."""
    set_calendar(acme)
    with at(local(2026, 11, 2, 9, 0)):
        record = complaint(acme)
    with at(local(2026, 11, 2, 9, 30)):
        take(acme, record["id"], "acknowledge")
        take(acme, record["id"], "resolve")
        assert clocks_of(acme, record["id"])["general_resolved_in_time"]["state"] == "met"
    with at(local(2026, 11, 2, 10, 0)):
        take(acme, record["id"], "reopen")
        clock = clocks_of(acme, record["id"])["general_resolved_in_time"]
    assert clock["state"] == "running" and clock["stop"] is None
    # 5 working days from Monday 09:00 (the opening of a day): Friday 6 Nov at 18:00.
    assert instant(clock["due"]) == local(2026, 11, 6, 18, 0)


def test_a_history_replayed_in_one_transaction_reads_its_clocks_once(acme, app):
    """A demo loader writes a record's history step by step in one transaction: the clocks
    come out as through the API, without a SELECT of clocks at every step; a savepoint
    rolled back in between (which may bring back a removed clock) makes it read them again."""
    from sqlalchemy import event

    from servq.core.plugins.app import enabled_plugin_ids, get_plugins
    from servq.core.records.pipeline import create_record
    from servq.core.records.workflows import transition

    set_calendar(acme)
    engine = app.extensions["servq.engine"]
    selects = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().startswith("SELECT") and "FROM clocks" in statement:
            selects.append(statement)

    with app.app_context(), acme.factory.session(acme.id) as s:
        kinds = get_plugins(app).kinds_for(enabled_plugin_ids(s))
        event.listen(engine, "before_cursor_execute", count)
        try:
            opened = local(2026, 11, 2, 9, 0)
            record = create_record(s, kinds, {"kind": "complaint", "occurred_at": opened, "data": {
                "channel": "hotline", "severity": "general", "description": "Water leak not fixed"}},
                None, now=opened)
            transition(s, kinds, record, "acknowledge", at=local(2026, 11, 2, 9, 30), now=local(2026, 11, 2, 9, 30))
            transition(s, kinds, record, "resolve", at=local(2026, 11, 2, 9, 40), now=local(2026, 11, 2, 9, 40))
            assert selects == []
            savepoint = s.begin_nested()
            transition(s, kinds, record, "reopen", at=local(2026, 11, 2, 9, 50), now=local(2026, 11, 2, 9, 50))
            savepoint.rollback()
            s.refresh(record)
            transition(s, kinds, record, "reopen", at=local(2026, 11, 2, 10, 0), now=local(2026, 11, 2, 10, 0))
            assert len(selects) == 1  # read again after the rollback, once
        finally:
            event.remove(engine, "before_cursor_execute", count)
        s.commit()
    with at(local(2026, 11, 2, 10, 0)):
        clocks = clocks_of(acme, record.id)
    clock = clocks["general_resolved_in_time"]
    assert clock["state"] == "running" and clock["stop"] is None
    assert instant(clock["due"]) == local(2026, 11, 6, 18, 0)
    response = acme.api.get(f"/api/v1/records/{record.id}/clocks")
    assert len(response.json) == len(clocks)  # one clock per item: none made twice


@pytest.mark.parametrize("limit", ["30m", "4h", "3 days", "5 working days", "7天"])
@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "Europe/Berlin"])
def test_unpaused_wall_clock_times_match_the_general_path(limit, zone):
    """A clock counting real time with no pause takes a short cut in clock_times; a pause
    that begins after the due time changes nothing but sends it the general way: the
    same instants (across a DST change too)."""
    from datetime import timedelta

    from servq.core.calendar import WALL, parse_limit
    from servq.core.deadlines.clocks import clock_times

    start = datetime(2026, 3, 28, 22, 17, 5, 123457, tzinfo=ZoneInfo(zone))
    parsed = parse_limit(limit)
    late = start + parsed.timedelta + timedelta(days=1)
    quick = clock_times(WALL, start, parsed, [])
    general = clock_times(WALL, start, parsed, [(late, late + timedelta(hours=1))])
    assert quick == general
    assert quick.due_at.tzinfo == timezone.utc and quick.total == parsed.timedelta
