"""Fair pauses (N8, N9): per-clock choice of the waiting states that pause it, pause caps
that resume a clock by itself at the right minute, and the reporting of paused time.

A test plugin (``waits``) declares, as data, a workflow kind with two waiting states
(``waiting_customer``, ``rescheduling``); the standard with two deadline items goes in
with ``PUT /standards``. The watch runs as ``servq deadlines scan`` (tests/test_clocks.py).
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from marshmallow import Schema, fields
from sqlalchemy import select

from servq import RecordKind, Transition, Workflow, hookimpl
from servq.core.models import AuditEvent, OutboxEvent
from tests.test_clocks import at, clocks_of, instant, run_scan, set_calendar, take

UTC = timezone.utc
CALENDAR = {"timezone": "UTC",
            "working_hours": {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}}


def t(en):
    return {"en": en, "zh": en}


class TicketData(Schema):
    subject = fields.String(load_default="")


class WaitsPlugin:
    """A plugin as data: the kind ``waits.ticket`` and its workflow."""

    @hookimpl
    def register_record_kinds(self):
        return [RecordKind(
            name="waits.ticket", schema=TicketData, title=t("Ticket"), description="A ticket.",
            statuses=("open", "waiting_customer", "rescheduling", "resolved"),
            workflow=Workflow(transitions=(
                Transition("wait_customer", ("open", "rescheduling"), "waiting_customer", "waiting_at",
                           t("Wait for the customer"), restamp=True),
                Transition("reschedule", ("open", "waiting_customer"), "rescheduling", "rescheduling_at",
                           t("Reschedule"), restamp=True),
                Transition("resume", ("waiting_customer", "rescheduling"), "open", "resumed_at",
                           t("Resume"), restamp=True),
                Transition("resolve", ("open",), "resolved", "resolved_at", t("Resolve")),
            ), waiting=("waiting_customer", "rescheduling"), final=("resolved",)))]


STANDARD = {
    "code": "acme.sla", "version": 1, "title": t("Ticket times"), "applies_to": ["waits.ticket"],
    "method": "weighted", "pass_mark": 100,
    "items": [
        {"code": "respond", "title": t("Answered within 1 working day"), "dimension": "responsiveness",
         "escalate_to": ["manager"],
         "rule": {"type": "deadline", "start": "occurred_at", "stop": "timestamps.resolved_at",
                  "limit": "1 working day", "pauses_in": []}},
        {"code": "resolve", "title": t("Resolved within 3 working days"), "dimension": "reliability",
         "escalate_to": ["manager"],
         "rule": {"type": "deadline", "start": "occurred_at", "stop": "timestamps.resolved_at",
                  "limit": "3 working days", "pauses_in": ["waiting_customer"],
                  "pause_cap": {"waiting_customer": "5 working days", "total": "10 working days"}}},
    ]}


@pytest.fixture
def app_config(app_config):
    app_config["EXTRA_PLUGINS"] = [("waits", WaitsPlugin())]
    return app_config


@pytest.fixture
def tenant(acme):
    acme.enable("waits")
    set_calendar(acme, CALENDAR)
    response = acme.api.put(f"/api/v1/standards/{STANDARD['code']}", json={"document": STANDARD})
    assert response.status_code in (200, 201), response.json
    return acme


def ticket(tenant):
    response = tenant.api.post("/api/v1/records", json={"kind": "waits.ticket", "data": {"subject": "x"}})
    assert response.status_code == 201, response.json
    return response.json["id"]


def capped_events(app, tenant):
    with tenant.session() as s:
        return s.scalars(select(OutboxEvent).where(OutboxEvent.type == "clock.pause_capped")).all()


def test_only_the_naming_clock_pauses_and_a_cap_resumes_it_on_the_minute(tenant, app):
    with at(datetime(2026, 11, 5, 10, tzinfo=UTC)):  # Thursday
        rid = ticket(tenant)
    with at(datetime(2026, 11, 5, 11, tzinfo=UTC)):
        take(tenant, rid, "wait_customer", reason="Customer abroad")
        clocks = clocks_of(tenant, rid)
    assert clocks["resolve"]["state"] == "paused" and clocks["resolve"]["pause_reason"] == "Customer abroad"
    assert clocks["resolve"]["pauses"][0]["state"] == "waiting_customer"
    assert clocks["respond"]["state"] == "running" and clocks["respond"]["pauses"] == []

    with at(datetime(2026, 11, 6, 10, 1, tzinfo=UTC)):  # the never-pausing clock breaches
        run_scan(app, tenant)
        clocks = clocks_of(tenant, rid)
    assert clocks["respond"]["state"] == "breached"
    assert clocks["resolve"]["state"] == "paused"

    # 5 working days from Thursday 11:00, across the weekend: Thursday 12 November 11:00.
    with at(datetime(2026, 11, 12, 10, 59, tzinfo=UTC)):
        run_scan(app, tenant)
        assert clocks_of(tenant, rid)["resolve"]["state"] == "paused"
        assert capped_events(app, tenant) == []
    with at(datetime(2026, 11, 12, 11, 0, tzinfo=UTC)):
        assert run_scan(app, tenant)
        clock = clocks_of(tenant, rid)["resolve"]
    assert clock["state"] == "running"
    pause = clock["pauses"][0]
    assert instant(pause["end"]) == datetime(2026, 11, 12, 11, tzinfo=UTC)
    assert pause["capped"] is True and pause["cap"] == "waiting_customer"
    # Due: Tue 10 Nov 10:00 moved by the 40 working hours the pause held.
    assert instant(clock["due"]) == datetime(2026, 11, 17, 10, tzinfo=UTC)
    assert clock["pause_totals"]["cap_hits"] == 1
    assert clock["pause_totals"]["by_state"] == {"waiting_customer": 7 * 86400.0}
    with at(datetime(2026, 11, 12, 11, 5, tzinfo=UTC)):
        run_scan(app, tenant)
    events = capped_events(app, tenant)
    assert len(events) == 1 and events[0].payload["cap"] == "waiting_customer"
    assert tuple(events[0].roles) == ("manager",)
    with at(datetime(2026, 11, 20, tzinfo=UTC)):
        kpis = tenant.api.get("/api/v1/kpis", query_string={
            "metrics": "paused_time,pause_cap_hits", "since": "2026-11-01T00:00:00+00:00",
            "until": "2026-11-08T00:00:00+00:00"})
        report = tenant.api.get("/api/v1/reports/weekly", query_string={"week": "2026-W45"})
    assert kpis.json["rows"] == [{"group": {}, "values": {"paused_time": 7 * 86400.0, "pause_cap_hits": 1}}]
    assert report.json["pauses"]["cap_hits"] == 1
    assert report.json["pauses"]["rows"] == [{"state": "waiting_customer", "reason": "Customer abroad",
                                              "pauses": 1, "seconds": 7 * 86400.0, "cap_hits": 1}]
    # The record is still waiting; leaving and waiting again does not pause it past its cap.
    with at(datetime(2026, 11, 12, 14, tzinfo=UTC)):
        assert tenant.api.get(f"/api/v1/records/{rid}").json["status"] == "waiting_customer"
        take(tenant, rid, "resume")
        take(tenant, rid, "wait_customer", reason="Again")
        assert clocks_of(tenant, rid)["resolve"]["state"] == "running"
    with tenant.session() as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.entity == "records")
                                               .order_by(AuditEvent.at))]
    assert "clock_paused" in actions and "clock_pause_capped" in actions


def test_moving_between_waiting_states_and_the_totals(tenant, app):
    with at(datetime(2026, 11, 2, 9, tzinfo=UTC)):  # Monday
        rid = ticket(tenant)
    with at(datetime(2026, 11, 2, 10, tzinfo=UTC)):
        take(tenant, rid, "wait_customer", reason="No answer")
    with at(datetime(2026, 11, 2, 12, tzinfo=UTC)):  # rescheduling does not pause `resolve`
        take(tenant, rid, "reschedule", reason="New slot")
        assert clocks_of(tenant, rid)["resolve"]["state"] == "running"
    with at(datetime(2026, 11, 2, 13, tzinfo=UTC)):
        take(tenant, rid, "wait_customer", reason="Parts from customer")
    with at(datetime(2026, 11, 2, 16, tzinfo=UTC)):
        take(tenant, rid, "resume")
        take(tenant, rid, "resolve")
        clock = clocks_of(tenant, rid)["resolve"]
    assert clock["state"] == "met"
    assert [(p["state"], p["reason"], p["seconds"]) for p in clock["pauses"]] == [
        ("waiting_customer", "No answer", 7200.0), ("waiting_customer", "Parts from customer", 10800.0)]
    assert clock["pause_totals"] == {"seconds": 18000.0, "by_state": {"waiting_customer": 18000.0},
                                     "by_reason": {"No answer": 7200.0, "Parts from customer": 10800.0},
                                     "cap_hits": 0}
    with at(datetime(2026, 11, 20, tzinfo=UTC)):
        kpis = tenant.api.get("/api/v1/kpis", query_string={
            "metrics": "paused_time,pause_cap_hits", "since": "2026-11-01T00:00:00+00:00",
            "until": "2026-11-08T00:00:00+00:00"})
        assert kpis.status_code == 200, kpis.json
        report = tenant.api.get("/api/v1/reports/weekly", query_string={"week": "2026-W45"})
        assert report.status_code == 200, report.json
    assert kpis.json["rows"] == [{"group": {}, "values": {"paused_time": 18000.0, "pause_cap_hits": 0}}]
    part = report.json["pauses"]
    assert part["total_seconds"] == 18000.0 and part["cap_hits"] == 0
    assert {(r["state"], r["reason"]): r["seconds"] for r in part["rows"]} == {
        ("waiting_customer", "No answer"): 7200.0, ("waiting_customer", "Parts from customer"): 10800.0}
    with tenant.session() as s:
        audited = [(e.action, e.changes.get("state"), e.changes.get("reason"))
                   for e in s.scalars(select(AuditEvent).where(AuditEvent.action.in_(
                       ("clock_paused", "clock_resumed"))).order_by(AuditEvent.at))]
    assert ("clock_paused", "waiting_customer", "No answer") in audited
    assert ("clock_resumed", "waiting_customer", None) in audited


@pytest.mark.parametrize("rule, field", [
    ({"pause_cap": {"waiting_customer": "five days"}}, "pause_cap"),
    ({"pauses_in": ["waiting_customer"], "pause_cap": {"rescheduling": "2h"}}, "pause_cap"),
    ({"pauses_in": "waiting_customer"}, "pauses_in"),
])
def test_bad_pause_rules_are_refused_and_nothing_changes(tenant, rule, field):
    document = {**STANDARD, "items": [{**STANDARD["items"][1], "rule": {
        **STANDARD["items"][1]["rule"], **rule}}]}
    got = tenant.api.get(f"/api/v1/standards/{STANDARD['code']}")
    before = got.json
    response = tenant.api.put(f"/api/v1/standards/{STANDARD['code']}", json={"document": document},
                              headers={"If-Match": got.headers["ETag"]})
    assert response.status_code == 422, response.json
    assert field in str(response.json["errors"])
    assert tenant.api.get(f"/api/v1/standards/{STANDARD['code']}").json == before
