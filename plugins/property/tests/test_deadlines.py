"""Deadlines of the property plugin through HTTP: the 24-hour repair service counts
wall-clock time, serious complaints count the tenant's working days, and each item of
the work-order standard runs only for the work orders it names.

Time is frozen with ``time_machine``: the estate is in Asia/Shanghai and works Monday to
Friday 09:00-12:00 and 13:00-18:00 with China's public holidays (``conftest.CALENDAR``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine

SHANGHAI = ZoneInfo("Asia/Shanghai")
RECORDS = "/api/v1/records"


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def at(instant: datetime):
    """Freeze the clock at ``instant``."""
    return time_machine.travel(instant, tick=False)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def order_data(**data):
    return {"channel": "hotline", "unit": "3-2-1201", "category": "water",
            "description": "Burst pipe under the kitchen sink",
            "owner": {"name": "Zhang Wei", "phone": "13812345678"}, **data}


def work_order(client, **data):
    body = order_data(**data)
    response = client.post(RECORDS, json={"kind": "property.work_order", "data": body})
    assert response.status_code == 201, response.json
    return response.json


def complaint(client, severity: str):
    response = client.post(RECORDS, json={"kind": "complaint", "data": {
        "channel": "hotline", "severity": severity, "category": "noise",
        "description": "Renovation noise after 22:00 every night",
        "customer": {"name": "Li Na", "phone": "13900001111"}}})
    assert response.status_code == 201, response.json
    return response.json


def clocks_of(client, record_id) -> dict[str, dict]:
    response = client.get(f"{RECORDS}/{record_id}/clocks")
    assert response.status_code == 200, response.json
    return {clock["item"]: clock for clock in response.json}


def take(client, record_id, action, **body):
    etag = client.get(f"{RECORDS}/{record_id}").headers["ETag"]
    response = client.post(f"{RECORDS}/{record_id}/transitions", json={"action": action, **body},
                           headers={"If-Match": etag})
    assert response.status_code == 200, response.json
    return response.json


def outcomes(client, record_id) -> dict[str, dict[str, str]]:
    """``{standard code: {item code: outcome}}`` of the record's evaluations."""
    response = client.get(f"{RECORDS}/{record_id}/evaluations")
    assert response.status_code == 200, response.json
    return {e["standard_code"]: {item["code"]: item["outcome"] for item in e["items"]}
            for e in response.json}


def test_sunday_2350_urgent_repair_due_on_site_at_0020_serious_complaint_five_working_days(estate):
    sunday = local(2026, 3, 8, 23, 50)  # a Sunday; no public holiday that week
    with at(sunday):
        repair = work_order(estate.agent, priority="urgent", category="drainage")
        serious = complaint(estate.agent, "serious")
        general = complaint(estate.agent, "general")

        repair_clocks = clocks_of(estate.agent, repair["id"])
        assert set(repair_clocks) == {"responded_in_time", "reported_back_in_time", "urgent_on_site_in_time"}
        on_site = repair_clocks["urgent_on_site_in_time"]
        assert on_site["standard_code"] == "property.work_order"
        assert instant(on_site["due"]) == local(2026, 3, 9, 0, 20)   # Monday 00:20: wall time
        assert on_site["time"] == "wall" and on_site["state"] == "running"
        assert instant(repair_clocks["responded_in_time"]["due"]) == local(2026, 3, 9, 3, 50)

        serious_clocks = clocks_of(estate.agent, serious["id"])
        # Scored by the property standard only: core's default complaint standard is replaced.
        assert {c["standard_code"] for c in serious_clocks.values()} == {"property.complaint"}
        assert set(serious_clocks) == {"on_site_in_time", "feedback_in_time", "serious_resolved_in_time"}
        resolution = serious_clocks["serious_resolved_in_time"]
        # Filed Sunday night: the five working days are Monday to Friday; due at Friday's close.
        assert instant(resolution["due"]) == local(2026, 3, 13, 18, 0)
        assert resolution["time"] == "working"
        assert instant(serious_clocks["on_site_in_time"]["due"]) == local(2026, 3, 9, 0, 50)
        assert instant(serious_clocks["feedback_in_time"]["due"]) == local(2026, 3, 9, 3, 50)

        general_clocks = clocks_of(estate.agent, general["id"])
        assert set(general_clocks) == {"on_site_in_time", "feedback_in_time", "general_resolved_in_time"}
        assert instant(general_clocks["general_resolved_in_time"]["due"]) == local(2026, 3, 9, 7, 50)

    # The technician arrives at 00:15 (in time); the complaint team is late on site.
    with at(local(2026, 3, 9, 0, 15)):
        take(estate.agent, repair["id"], "respond")
        take(estate.agent, repair["id"], "arrive")
    with at(local(2026, 3, 9, 1, 5)):
        take(estate.agent, serious["id"], "acknowledge")
        take(estate.agent, serious["id"], "investigate")
        repair_clocks = clocks_of(estate.agent, repair["id"])
        assert repair_clocks["urgent_on_site_in_time"]["state"] == "met"
        assert repair_clocks["responded_in_time"]["state"] == "met"
        assert repair_clocks["reported_back_in_time"]["state"] == "running"
        serious_clocks = clocks_of(estate.agent, serious["id"])
        assert serious_clocks["on_site_in_time"]["state"] == "breached"   # 1 h 15 min
        assert serious_clocks["feedback_in_time"]["state"] == "met"
        assert serious_clocks["serious_resolved_in_time"]["state"] == "running"


def test_serious_complaint_before_national_day_skips_the_holidays(estate):
    # Sunday 27 September 2026, 23:50: working days Mon 28, Tue 29, Wed 30 September, then
    # National Day (1-7 October), then Thursday 8 and Friday 9 October.
    with at(local(2026, 9, 27, 23, 50)):
        serious = complaint(estate.agent, "serious")
        repair = work_order(estate.agent, priority="urgent", category="elevator")
        due = instant(clocks_of(estate.agent, serious["id"])["serious_resolved_in_time"]["due"])
        assert due == local(2026, 10, 9, 18, 0)
        repair_clocks = clocks_of(estate.agent, repair["id"])
        # An urgent elevator fault: both 30-minute items run, on wall time through the night.
        assert instant(repair_clocks["urgent_on_site_in_time"]["due"]) == local(2026, 9, 28, 0, 20)
        assert instant(repair_clocks["facility_fault_on_site_in_time"]["due"]) == local(2026, 9, 28, 0, 20)


def test_items_apply_only_to_their_category_and_priority(estate):
    with at(local(2026, 3, 10, 14, 0)):
        normal_plumbing = work_order(estate.agent, category="drainage")
        power = work_order(estate.agent, category="power")
        lamp = work_order(estate.agent, category="lighting", unit="Block 3 path")
        big_lamp = work_order(estate.agent, category="lighting", complexity="complex", unit="Main gate")

        assert set(clocks_of(estate.agent, normal_plumbing["id"])) == {"responded_in_time", "reported_back_in_time"}
        assert set(clocks_of(estate.agent, power["id"])) == {
            "responded_in_time", "reported_back_in_time", "facility_fault_on_site_in_time"}
        assert lamp["data"]["complexity"] == "simple"   # the default for lighting
        lamp_clocks = clocks_of(estate.agent, lamp["id"])
        assert set(lamp_clocks) == {"responded_in_time", "reported_back_in_time", "lighting_simple_fixed_in_time"}
        assert instant(lamp_clocks["lighting_simple_fixed_in_time"]["due"]) == local(2026, 3, 10, 22, 0)
        big_clocks = clocks_of(estate.agent, big_lamp["id"])
        assert instant(big_clocks["lighting_complex_fixed_in_time"]["due"]) == local(2026, 3, 12, 14, 0)

        scored = outcomes(estate.agent, normal_plumbing["id"])
        assert set(scored) == {"property.work_order"}
        assert scored["property.work_order"] == {
            "responded_in_time": "pending", "reported_back_in_time": "pending",
            "urgent_on_site_in_time": "na", "facility_fault_on_site_in_time": "na",
            "lighting_simple_fixed_in_time": "na", "lighting_complex_fixed_in_time": "na",
            "owner_signed_off": "na"}

    # Found to be complex after all: the 8-hour clock gives way to the 48-hour one.
    with at(local(2026, 3, 10, 15, 0)):
        etag = estate.manager.get(f"{RECORDS}/{lamp['id']}").headers["ETag"]
        response = estate.manager.patch(f"{RECORDS}/{lamp['id']}", etag=etag, json={"data": order_data(
            category="lighting", unit="Block 3 path", complexity="complex")})
        assert response.status_code == 200, response.json
        lamp_clocks = clocks_of(estate.agent, lamp["id"])
        assert "lighting_simple_fixed_in_time" not in lamp_clocks
        assert instant(lamp_clocks["lighting_complex_fixed_in_time"]["due"]) == local(2026, 3, 12, 14, 0)


def test_waiting_for_parts_pauses_the_repair_clock_and_needs_a_reason(estate):
    with at(local(2026, 3, 10, 10, 0)):
        lamp = work_order(estate.agent, category="lighting", unit="Block 3 path")
    with at(local(2026, 3, 10, 10, 30)):
        take(estate.agent, lamp["id"], "respond")
        take(estate.agent, lamp["id"], "report_back")
        take(estate.agent, lamp["id"], "arrive")
    with at(local(2026, 3, 10, 11, 0)):
        etag = estate.agent.get(f"{RECORDS}/{lamp['id']}").headers["ETag"]
        refused = estate.agent.post(f"{RECORDS}/{lamp['id']}/transitions", json={"action": "wait_for_parts"},
                                    headers={"If-Match": etag})
        assert refused.status_code == 422 and "reason" in refused.json["errors"]["json"]
        waiting = take(estate.agent, lamp["id"], "wait_for_parts", reason="New ballast ordered; owner told")
        assert waiting["status"] == "waiting_for_parts"
        # Reporting back keeps the status (and the pause).
        assert take(estate.agent, lamp["id"], "report_back")["status"] == "waiting_for_parts"
        assert clocks_of(estate.agent, lamp["id"])["lighting_simple_fixed_in_time"]["state"] == "paused"
    with at(local(2026, 3, 11, 9, 0)):   # 22 hours later
        take(estate.agent, lamp["id"], "resume")
        clock = clocks_of(estate.agent, lamp["id"])["lighting_simple_fixed_in_time"]
        assert clock["state"] == "running"
        assert instant(clock["due"]) == local(2026, 3, 10, 18, 0) + timedelta(hours=22)
    with at(local(2026, 3, 11, 10, 0)):
        done = take(estate.agent, lamp["id"], "complete")
        # report_back stamps feedback_at the first time only.
        assert instant(done["timestamps"]["feedback_at"]) == local(2026, 3, 10, 10, 30)
        clocks = clocks_of(estate.agent, lamp["id"])
        assert clocks["lighting_simple_fixed_in_time"]["state"] == "met"
        assert clocks["reported_back_in_time"]["state"] == "met"
