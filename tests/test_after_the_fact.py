"""Records whose history is entered after the fact: a complaint filed weeks late, its
workflow steps entered afterwards with their real instants (``at``), records created in
bulk (``POST /records/batch``, ``servq records import``).

A clock follows the record's stamped history whenever that history arrives: stops and
pauses entered later count, and a breach escalated at creation (the history then showed
one) that the later history disproves is withdrawn: the record's escalation level goes
back down (audited), the breach's corrective action is closed as raised in error and
``clock.breach_withdrawn`` is notified. Time is pinned with ``time_machine``.
"""

from __future__ import annotations

import json
import statistics
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from click.testing import CliRunner

from servq.cli import make_cli

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURS = ["09:00-12:00", "13:00-18:00"]
CN_CALENDAR = {"timezone": "Asia/Shanghai", "country": "CN",
               "working_hours": {day: HOURS for day in ("mon", "tue", "wed", "thu", "fri")}}
GENERAL = "general_resolved_in_time"
ACK = "acknowledged_in_time"


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def at(instant: datetime):
    return time_machine.travel(instant, tick=False)


def utc(instant: datetime) -> str:
    return instant.astimezone(ZoneInfo("UTC")).isoformat()


def set_calendar(tenant):
    response = tenant.api.put("/api/v1/calendar", json=CN_CALENDAR)
    assert response.status_code == 200, response.json


def complaint(tenant, occurred_at: datetime):
    response = tenant.api.post("/api/v1/records", json={
        "kind": "complaint", "occurred_at": occurred_at.isoformat(),
        "data": {"channel": "hotline", "description": "Water leak not fixed"}})
    assert response.status_code == 201, response.json
    return response.json


def take(tenant, record_id, action, when: datetime, **body):
    etag = tenant.api.get(f"/api/v1/records/{record_id}").headers["ETag"]
    response = tenant.api.post(f"/api/v1/records/{record_id}/transitions",
                               json={"action": action, "at": when.isoformat(), **body},
                               headers={"If-Match": etag})
    assert response.status_code == 200, response.json
    return response.json


def clocks_of(tenant, record_id):
    response = tenant.api.get(f"/api/v1/records/{record_id}/clocks")
    assert response.status_code == 200, response.json
    return {clock["item"]: clock for clock in response.json}


def run_scan(app, tenant):
    result = CliRunner().invoke(make_cli(app_factory=lambda: app),
                                ["deadlines", "scan", "--json", "--tenant", tenant.slug])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)[tenant.slug]


def notifications(tenant, kind):
    response = tenant.api.get("/api/v1/notifications", query_string={"type": kind, "page_size": 500})
    assert response.status_code == 200, response.json
    return response.json


def evaluation_items(tenant, record_id):
    response = tenant.api.get(f"/api/v1/records/{record_id}/evaluation",
                              query_string={"standard": "core.complaint"})
    assert response.status_code == 200, response.json
    return {item["code"]: item for item in response.json["items"]}


def test_the_worked_example_entered_after_the_fact_comes_out_as_documented(acme, app):
    # docs/deadlines.md and docs/calendars-and-workflows.md: filed Fri 13 Feb 2026 20:00,
    # acknowledged Sat 14 Feb (a moved working day), waiting for the customer from
    # Tue 24 Feb 10:00 to 15:30, resolved Fri 27 Feb 17:00. All of it entered on
    # 10 March, long after every due time of the complaint as filed.
    set_calendar(acme)
    with at(local(2026, 3, 10, 9, 0)):
        record = complaint(acme, local(2026, 2, 13, 20, 0))
        run_scan(app, acme)  # the history as entered shows two breaches: escalated
        assert acme.api.get(f"/api/v1/records/{record['id']}").json["escalation_level"] == 2
        take(acme, record["id"], "acknowledge", local(2026, 2, 14, 10, 0))
        take(acme, record["id"], "wait", local(2026, 2, 24, 10, 0), reason="customer to send photos")
        take(acme, record["id"], "resume", local(2026, 2, 24, 15, 30))
        take(acme, record["id"], "resolve", local(2026, 2, 27, 17, 0))
        run_scan(app, acme)
        clocks = clocks_of(acme, record["id"])
        stored = acme.api.get(f"/api/v1/records/{record['id']}").json
        items = evaluation_items(acme, record["id"])

    ack, general = clocks[ACK], clocks[GENERAL]
    assert datetime.fromisoformat(ack["due"]) == local(2026, 2, 14, 14, 0)
    assert ack["state"] == "met" and ack["breached_at"] is None
    # 4.5 working hours of pause move Fri 27 Feb 18:00 to Sat 28 Feb 14:30.
    assert datetime.fromisoformat(general["due"]) == local(2026, 2, 28, 14, 30)
    assert [{k: p[k] for k in ("start", "end", "reason")} for p in general["pauses"]] == [{"start": utc(local(2026, 2, 24, 10, 0)),
                                  "end": utc(local(2026, 2, 24, 15, 30)),
                                  "reason": "customer to send photos"}]
    assert general["state"] == "met" and general["breached_at"] is None
    assert stored["escalation_level"] == 0
    assert items[ACK]["outcome"] == "pass" and items[GENERAL]["outcome"] == "pass"


def test_a_stop_entered_afterwards_withdraws_the_breach(acme, app):
    set_calendar(acme)
    filed = local(2026, 11, 2, 9, 0)  # Monday: acknowledge by 14:00, resolve by Fri 6 Nov 18:00
    with at(local(2026, 11, 20, 9, 0)):
        record = complaint(acme, filed)
        run_scan(app, acme)  # (inline without Redis, the request's own scan did it already)
        before = clocks_of(acme, record["id"])
        level = acme.api.get(f"/api/v1/records/{record['id']}").json["escalation_level"]
        actions = acme.api.get("/api/v1/actions", query_string={"record_id": record["id"]}).json
    assert level == 2 and before[ACK]["state"] == "breached"
    assert before[GENERAL]["state"] == "breached" and before[GENERAL]["breached_at"] is not None
    assert [a["status"] for a in actions] == ["open"]
    action_id = actions[0]["id"]
    assert len(notifications(acme, "clock.breached")) == 2

    # The stop stamps arrive afterwards: acknowledged at 10:00, resolved on Thursday.
    with at(local(2026, 11, 20, 10, 0)):
        take(acme, record["id"], "acknowledge", local(2026, 11, 2, 10, 0))
        take(acme, record["id"], "resolve", local(2026, 11, 5, 11, 0))
        again = run_scan(app, acme)
        after = clocks_of(acme, record["id"])
        stored = acme.api.get(f"/api/v1/records/{record['id']}").json
        action = acme.api.get(f"/api/v1/actions/{action_id}").json
        action_history = acme.api.get(f"/api/v1/actions/{action_id}/history").json
        history = acme.api.get(f"/api/v1/records/{record['id']}/history").json
        withdrawn = notifications(acme, "clock.breach_withdrawn")
        items = evaluation_items(acme, record["id"])
        breached_list = acme.api.get("/api/v1/records?breached=true").json

    assert again["breaches"] == 0
    assert after[ACK]["state"] == "met" and after[GENERAL]["state"] == "met"
    assert after[ACK]["breached_at"] is None and after[GENERAL]["breached_at"] is None
    assert [w["breached_at"] for w in after[GENERAL]["withdrawn"]] == [utc(local(2026, 11, 6, 18, 0))]
    assert stored["escalation_level"] == 0
    assert items[ACK]["outcome"] == "pass" and items[GENERAL]["outcome"] == "pass"
    assert breached_list == []
    # The escalations are withdrawn in the record's history, one per clock.
    events = [e for e in history if e["action"] == "escalation_withdrawn"]
    assert sorted(e["changes"]["item_code"] for e in events) == [ACK, GENERAL]
    assert sorted(tuple(e["changes"]["escalation_level"]) for e in events) == [(1, 0), (2, 1)]
    # The breach's action is closed as raised in error, audited.
    assert action["status"] == "raised_in_error"
    assert any(e["action"] == "raised_in_error" and e["changes"]["status"] == ["open", "raised_in_error"]
               for e in action_history)
    # One withdrawal notification per breach notification, to the same roles.
    assert sorted(n["data"]["item_code"] for n in withdrawn) == [ACK, GENERAL]
    general_note = next(n for n in withdrawn if n["data"]["item_code"] == GENERAL)
    assert general_note["roles"] == ["manager"]
    assert general_note["data"]["breached_at"] == utc(local(2026, 11, 6, 18, 0))
    assert general_note["data"]["state"] == "met"


def test_a_pause_entered_after_the_fact_moves_the_due_time(acme, app):
    set_calendar(acme)
    # Entered on Fri 27 Feb 20:00: past the due time of the complaint as filed (Fri 27
    # Feb 18:00), before the due time once the pause counts (Sat 28 Feb 14:30).
    with at(local(2026, 2, 27, 20, 0)):
        record = complaint(acme, local(2026, 2, 13, 20, 0))
        run_scan(app, acme)
        assert clocks_of(acme, record["id"])[GENERAL]["state"] == "breached"
        take(acme, record["id"], "acknowledge", local(2026, 2, 14, 10, 0))
        take(acme, record["id"], "wait", local(2026, 2, 24, 10, 0), reason="customer to send photos")
        paused = clocks_of(acme, record["id"])[GENERAL]
        take(acme, record["id"], "resume", local(2026, 2, 24, 15, 30))
        run_scan(app, acme)
        general = clocks_of(acme, record["id"])[GENERAL]
        stored = acme.api.get(f"/api/v1/records/{record['id']}").json
    assert paused["state"] == "paused" and paused["breached_at"] is None
    assert datetime.fromisoformat(general["due"]) == local(2026, 2, 28, 14, 30)
    assert general["state"] == "running" and general["breached_at"] is None
    assert len(general["pauses"]) == 1 and general["pauses"][0]["reason"] == "customer to send photos"
    # Left: Fri 27 Feb 18:00 is past, Sat 28 Feb (moved working day) 09:00-12:00, 13:00-14:30.
    assert general["time_left_seconds"] == int(4.5 * 3600)
    assert stored["escalation_level"] == 0
    actions = acme.api.get("/api/v1/actions", query_string={"record_id": record["id"]}).json
    assert [a["status"] for a in actions] == ["raised_in_error"]
    # The watch breaches it at its new due time, and only then: a new escalation, notified
    # again, and the action closed as raised in error reopens.
    with at(local(2026, 2, 28, 14, 29)):
        assert run_scan(app, acme)["breaches"] == 0
    with at(local(2026, 2, 28, 14, 31)):
        assert run_scan(app, acme)["breaches"] == 1
        again = clocks_of(acme, record["id"])[GENERAL]
        assert acme.api.get(f"/api/v1/records/{record['id']}").json["escalation_level"] == 1
        breaches = [n for n in notifications(acme, "clock.breached") if n["data"]["item_code"] == GENERAL]
        withdrawals = notifications(acme, "clock.breach_withdrawn")
        action = acme.api.get(f"/api/v1/actions/{actions[0]['id']}").json
    assert again["state"] == "breached"
    assert datetime.fromisoformat(again["breached_at"]) == local(2026, 2, 28, 14, 30)
    assert [w["state"] for w in again["withdrawn"]] == ["paused"]
    assert sorted(n["dedupe_key"] for n in breaches) == [
        f"clock.breached:{again['id']}", f"clock.breached:{again['id']}:2"]
    assert [n["dedupe_key"] for n in withdrawals if n["data"]["item_code"] == GENERAL] == [
        f"clock.breach_withdrawn:{again['id']}:1"]
    assert action["status"] == "open"


# Eight complaints filed on Monday 2 Nov 2026 at 09:00 (general: due Fri 6 Nov 18:00),
# all acknowledged at 10:00 (due 14:00); five resolved in time, three late.
RESOLVED = [local(2026, 11, 3, 10, 0), local(2026, 11, 4, 11, 0), local(2026, 11, 5, 15, 0),
            local(2026, 11, 6, 17, 0), local(2026, 11, 6, 18, 0),                     # met
            local(2026, 11, 9, 10, 0), local(2026, 11, 10, 16, 0), local(2026, 11, 12, 9, 30)]  # late


def working_seconds(start: datetime, end: datetime) -> float:
    """Working seconds between two instants on the weekdays 09:00-12:00, 13:00-18:00 (no
    public holiday falls in November 2026 in China)."""
    total, day = 0.0, start.date()
    while day <= end.date():
        if day.weekday() < 5:
            for a, b in ((9, 12), (13, 18)):
                lo = max(start, datetime(day.year, day.month, day.day, a, tzinfo=SHANGHAI))
                hi = min(end, datetime(day.year, day.month, day.day, b, tzinfo=SHANGHAI))
                total += max(0.0, (hi - lo).total_seconds())
        day = day.fromordinal(day.toordinal() + 1)
    return total


@pytest.mark.parametrize("via", ["batch", "import"])
def test_clock_kpis_of_a_data_set_entered_after_the_fact_agree_with_the_evaluations(
        acme, app, tmp_path, via):
    set_calendar(acme)
    filed = local(2026, 11, 2, 9, 0)
    records = [{"kind": "complaint", "occurred_at": filed.isoformat(),
                "data": {"channel": "web", "description": f"Complaint {n}"}} for n in range(8)]
    with at(local(2026, 12, 1, 9, 0)):
        if via == "batch":
            response = acme.api.post("/api/v1/records/batch", json={"records": records})
            assert response.status_code == 201, response.json
            ids = [r["id"] for r in response.json["records"]]
        else:
            path = tmp_path / "complaints.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in records))
            result = CliRunner().invoke(make_cli(app_factory=lambda: app),
                                        ["records", "import", "--tenant", acme.slug, str(path)])
            assert result.exit_code == 0, result.output
            ids = [r["id"] for r in acme.api.get("/api/v1/records", query_string={
                "kind": "complaint", "page_size": 100}).json]
            assert len(ids) == 8
        run_scan(app, acme)
        # As entered, every clock is past due: escalated.
        assert len(notifications(acme, "clock.breached")) == 16
        for record_id, resolved in zip(ids, RESOLVED):
            take(acme, record_id, "acknowledge", local(2026, 11, 2, 10, 0))
            take(acme, record_id, "resolve", resolved)
        run_scan(app, acme)
        period = {"since": "2026-11-01T00:00:00+08:00", "until": "2026-12-01T00:00:00+08:00"}
        by_item = acme.api.get("/api/v1/kpis", query_string={
            **period, "metrics": "deadline_attainment,breaches,resolution_time_working,response_time_working",
            "group_by": "item"})
        overall = acme.api.get("/api/v1/kpis", query_string={**period, "metrics": "breaches"})
        outcomes = [evaluation_items(acme, record_id) for record_id in ids]
        levels = [acme.api.get(f"/api/v1/records/{i}").json["escalation_level"] for i in ids]
        open_actions = acme.api.get("/api/v1/actions", query_string={"status": "open"}).json

    assert by_item.status_code == 200, by_item.json
    got = {row["group"]["item"]: row["values"] for row in by_item.json["rows"]}
    general = got[f"core.complaint/{GENERAL}"]
    assert general["deadline_attainment"] == pytest.approx(62.5)
    assert general["breaches"] == 3
    assert overall.json["rows"][0]["values"]["breaches"] == 3
    # The evaluations say the same: 5 resolved in time, 3 late, every acknowledgement in time.
    assert [o[GENERAL]["outcome"] for o in outcomes].count("pass") == 5
    assert [o[GENERAL]["outcome"] for o in outcomes].count("fail") == 3
    assert got[f"core.complaint/{ACK}"]["deadline_attainment"] == pytest.approx(100.0)
    assert not got[f"core.complaint/{ACK}"]["breaches"]
    # Resolution and response times: the working time from filing to each stop.
    expected = [working_seconds(filed, r) for r in RESOLVED]
    assert general["resolution_time_working"]["n"] == 8
    assert general["resolution_time_working"]["mean"] == pytest.approx(statistics.mean(expected))
    assert got[f"core.complaint/{ACK}"]["response_time_working"]["mean"] == pytest.approx(3600)
    # Escalation and actions follow: one breach left per late record, nothing else.
    assert levels == [0] * 5 + [1] * 3
    assert sorted(a["record_id"] for a in open_actions) == sorted(ids[5:])
