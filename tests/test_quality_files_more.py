"""Quality files grown (``core/kpis/quality_people.py``, ``core/kpis/quality_dimensions.py``)
through HTTP: staff ``reports_to`` and its rules, a manager's team section, original and
final scores of disputed evaluations, the staff quality index by SERVQUAL dimension and
repeat offences. Every expected number is computed by hand from the rows the test creates."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import time_machine

from tests.test_evaluations import put_standard
from tests.test_quality_files import CODE, DESK, complaint, inspection, make, quality_file

STAFF = "/api/v1/staff"
DISPUTES = "/api/v1/disputes"
# Monday 2 March 2026, 10:00 in Shanghai (the tenant's zone): inside every dispute window.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)
MARCH = {"since": "2026-03-01T00:00:00+08:00", "until": "2026-04-01T00:00:00+08:00"}


def staff(api, code, reports_to=None, **extra) -> str:
    return make(api, STAFF, {"code": code, "name": code, "reports_to": reports_to, **extra})["id"]


def patch_staff(api, staff_id, **body):
    etag = api.get(f"{STAFF}/{staff_id}").headers["ETag"]
    return api.patch(f"{STAFF}/{staff_id}", json=body, headers={"If-Match": etag})


def evaluation(api, record_id) -> dict:
    r = api.get(f"/api/v1/records/{record_id}/evaluation?standard={CODE}")
    assert r.status_code == 200, r.json
    return r.json


def dispute(api, record_id, item) -> dict:
    r = api.post(DISPUTES, json={
        "record_id": record_id, "standard_code": CODE, "type": "score",
        "reason": "It was done; the photo shows it.",
        "items": [{"item": item, "proposed": {"outcome": "pass"}, "reason": "See the photo"}]})
    assert r.status_code == 201, r.json
    return r.json


def accept(api, filed) -> dict:
    etag = api.get(f"{DISPUTES}/{filed['id']}").headers["ETag"]
    r = api.post(f"{DISPUTES}/{filed['id']}/decision", json={"result": "accepted", "note": "Seen"},
                 headers={"If-Match": etag})
    assert r.status_code == 200, r.json
    return r.json


def evaluation_count(api, staff_id) -> int:
    records = api.get(f"/api/v1/records?staff_id={staff_id}&page_size=100").json
    return sum(len(api.get(f"/api/v1/records/{r['id']}/evaluations").json) for r in records)


@pytest.fixture
def desk(acme):
    with time_machine.travel(MONDAY, tick=False):
        put_standard(acme, CODE, document=DESK)
    return CODE


# -- reports_to ---------------------------------------------------------------------------------


def test_reports_to_is_validated_and_cycles_are_refused(acme, globex):
    api = acme.api
    boss = staff(api, "M")
    alice = staff(api, "A", reports_to=boss)
    carol = staff(api, "C", reports_to=alice)
    assert api.get(f"{STAFF}/{alice}").json["reports_to"] == boss
    assert {s["id"] for s in api.get(f"{STAFF}?reports_to={boss}").json} == {alice}

    foreign = staff(globex.api, "G")

    def refused(staff_id, manager, message):
        before = api.get(f"{STAFF}/{staff_id}").json
        r = patch_staff(api, staff_id, reports_to=manager)
        assert r.status_code == 422, r.json
        assert "reports_to" in r.json["errors"]["json"] and message in r.json["message"]
        assert api.get(f"{STAFF}/{staff_id}").json == before  # nothing changed

    refused(boss, boss, "themselves")
    refused(boss, alice, "cycle")    # M -> A -> M
    refused(boss, carol, "cycle")    # M -> C -> A -> M
    refused(alice, foreign, "Unknown reference")  # another tenant's member of staff
    refused(alice, "00000000-0000-0000-0000-000000000000", "Unknown reference")
    r = api.post(STAFF, json={"code": "X", "name": "X", "reports_to": foreign})
    assert r.status_code == 422 and "reports_to" in r.json["errors"]["json"]
    assert api.get(f"{STAFF}?q=X").json == []
    # Another tenant lists none of ours, and sees no report of its staff here.
    assert globex.api.get(f"{STAFF}?reports_to={boss}").json == []

    # Allowed: a longer chain, a move, and clearing it.
    assert patch_staff(api, carol, reports_to=boss).status_code == 200
    assert patch_staff(api, boss, reports_to=None).status_code == 200
    # A manager with reports cannot be deleted before they are moved.
    etag = api.get(f"{STAFF}/{boss}").headers["ETag"]
    r = api.delete(f"{STAFF}/{boss}", headers={"If-Match": etag})
    assert r.status_code == 409 and "reports_to" in r.json["message"]


# -- a manager's file ---------------------------------------------------------------------------


def test_team_and_disputed_evaluations(acme, globex, desk):
    api = acme.api
    with time_machine.travel(MONDAY, tick=False):
        boss = staff(api, "M")
        alice = staff(api, "A", reports_to=boss)
        bob = staff(api, "B", reports_to=boss)
        other = staff(api, "O")  # reports to nobody: never in the team
        # Alice: a perfect inspection (100) and one failing 'tidy' (3 of 4 items: 75);
        # Bob: one failing the critical 'badge' (0); the boss and Other one each.
        perfect = inspection(api, alice)
        untidy = inspection(api, alice, failed=("tidy",))
        no_badge = inspection(api, bob, failed=("badge",))
        inspection(api, boss, failed=("greet",))
        inspection(api, other, failed=("badge",))
        assert [evaluation(api, r["id"])["percent"] for r in (perfect, untidy, no_badge)] == [100, 75, 0]
        # A complaint against Alice, one about Bob's record, one against Other.
        complaint(api, alice)
        complaint(api, record_id=no_badge["id"])
        complaint(api, other)
        # Alice's 'tidy' is disputed and accepted: 75 -> 100. Bob's dispute stays open.
        accepted = accept(api, dispute(api, untidy["id"], "tidy"))
        dispute(api, no_badge["id"], "badge")

    # Another tenant's same shapes never count, and its manager's file is 404 here.
    g_boss = staff(globex.api, "M")
    staff(globex.api, "A", reports_to=g_boss)
    assert api.get(f"{STAFF}/{g_boss}/quality-file").status_code == 404

    f = quality_file(api, "staff", boss, **MARCH)
    team = f["team"]
    # By hand: Alice 100 and 100 (after the dispute), Bob 0 (critical, not passed); the
    # complaint against Alice is her record too, evaluated by its deadline standard with
    # no percent yet (an evaluation, neither scored nor judged).
    assert evaluation_count(api, alice) == 3
    assert team["summary"] == {"members": 2, "evaluations": 4, "score": pytest.approx(200 / 3),
                               "pass_rate": pytest.approx(200 / 3), "critical_failures": 1,
                               "disputes_open": 1, "complaints": 2}
    members = {m["code"]: m for m in team["members"]}
    assert members["A"] == {"staff_id": alice, "code": "A", "name": "A", "site_id": None,
                            "evaluations": 3, "score": 100.0, "pass_rate": 100.0,
                            "critical_failures": 0, "disputes_open": 0, "complaints": 1}
    assert members["B"] == {"staff_id": bob, "code": "B", "name": "B", "site_id": None,
                            "evaluations": 1, "score": 0.0, "pass_rate": 0.0,
                            "critical_failures": 1, "disputes_open": 1, "complaints": 1}
    # The boss's own figures stay their own.
    assert f["summary"]["evaluations"] == 1 and f["summary"]["score"] == 75.0
    # Not a manager: no team.
    assert quality_file(api, "staff", alice, **MARCH)["team"] is None
    assert quality_file(api, "sites", make(api, "/api/v1/sites", {"code": "S", "name": "S"})["id"],
                        **MARCH)["team"] is None

    # Alice's file: the disputed evaluation shows original and final.
    mine = quality_file(api, "staff", alice, **MARCH)
    assert mine["summary"]["disputes_filed"] == 1 and mine["summary"]["disputes_overturned"] == 1
    assert mine["summary"]["disputes_open"] == 0
    rows = {e["record_id"]: e for e in mine["evaluations"]["items"]}
    assert rows[untidy["id"]]["original_percent"] == 75 and rows[untidy["id"]]["percent"] == 100
    assert rows[untidy["id"]]["disputed"] is False
    assert rows[untidy["id"]]["dispute"]["id"] == accepted["id"]
    assert rows[untidy["id"]]["dispute"]["result"] == "accepted"
    assert (rows[untidy["id"]]["dispute"]["original_percent"],
            rows[untidy["id"]]["dispute"]["final_percent"]) == (75, 100)
    assert rows[perfect["id"]]["original_percent"] is None and rows[perfect["id"]]["dispute"] is None
    # Bob's: open, nothing overridden yet.
    bobs = quality_file(api, "staff", bob, **MARCH)
    assert bobs["summary"]["disputes_filed"] == 1 and bobs["summary"]["disputes_open"] == 1
    assert bobs["summary"]["disputes_overturned"] == 0
    [row] = bobs["evaluations"]["items"]
    assert row["disputed"] is True and row["original_percent"] is None and row["percent"] == 0
    assert row["dispute"]["status"] == "open"


# -- SERVQUAL dimensions and repeat offences ----------------------------------------------------


def test_servqual_index_and_repeat_offences(acme, desk):
    api = acme.api
    with time_machine.travel(MONDAY, tick=False):
        carol = staff(api, "C")
        # March (Shanghai): tidy failed 3 times (a repeat offence), speed twice (not one).
        for failed in (("tidy",), ("tidy", "speed"), ("tidy", "speed", "badge")):
            inspection(api, carol, failed=failed, when=datetime(2026, 3, 2, 1, tzinfo=timezone.utc))
        # 1 March 00:30 Shanghai is still February 28 in UTC: counts in March.
        inspection(api, carol, when=datetime(2026, 2, 28, 16, 30, tzinfo=timezone.utc))
        # February: tidy failed twice more, never three times in one month.
        feb = [inspection(api, carol, failed=("tidy",), when=datetime(2026, 2, 10, 2, tzinfo=timezone.utc))
               for _ in range(2)]
        # Complaints about her records: three in March (a repeat), two in February.
        for when in (datetime(2026, 3, 1, 2, tzinfo=timezone.utc),) * 3 + \
                    (datetime(2026, 2, 11, 2, tzinfo=timezone.utc),) * 2:
            complaint(api, record_id=feb[0]["id"], when=when)

    f = quality_file(api, "staff", carol, **MARCH)
    # Four evaluations in March, every item judged, a check item worth 1 point:
    # tangibles: tidy x4 (3 failed) + badge x4 (1 failed) = 8 items, 4 failures, 4/8;
    # responsiveness: speed x4, 2 failed, 2/4; assurance: greet x4, none failed, 4/4.
    by = {d["dimension"]: d for d in f["dimensions"]}
    assert [d["dimension"] for d in f["dimensions"]] == [
        "tangibles", "reliability", "responsiveness", "assurance", "empathy"]
    assert by["tangibles"] == {"dimension": "tangibles", "items": 8, "failures": 4, "points": 4.0,
                               "max_points": 8.0, "percent": 50.0, "lost": 4.0}
    assert by["responsiveness"] == {"dimension": "responsiveness", "items": 4, "failures": 2,
                                    "points": 2.0, "max_points": 4.0, "percent": 50.0, "lost": 2.0}
    assert by["assurance"] == {"dimension": "assurance", "items": 4, "failures": 0, "points": 4.0,
                               "max_points": 4.0, "percent": 100.0, "lost": 0.0}
    assert by["reliability"] == {"dimension": "reliability", "items": 0, "failures": 0, "points": 0.0,
                                 "max_points": 0.0, "percent": None, "lost": 0.0}
    assert f["repeat_offences"] == [{"month": "2026-03", "standard_code": CODE, "item_code": "tidy",
                                     "failures": 3, "threshold": 3}]

    assert f["repeat_complaints"] == [{"month": "2026-03", "complaints": 3, "threshold": 3}]

    # From mid-February: the whole of February counts (2 tidy failures: no offence) and March.
    wide = quality_file(api, "staff", carol, since="2026-02-15T00:00:00+08:00",
                        until=MARCH["until"])
    assert wide["repeat_offences"] == f["repeat_offences"]
    assert wide["repeat_complaints"] == f["repeat_complaints"]
    # A third February failure, and a third complaint, make February a repeat too.
    with time_machine.travel(MONDAY, tick=False):
        inspection(api, carol, failed=("tidy",), when=datetime(2026, 2, 20, 2, tzinfo=timezone.utc))
        complaint(api, record_id=feb[1]["id"], when=datetime(2026, 2, 12, 2, tzinfo=timezone.utc))
    wide = quality_file(api, "staff", carol, since="2026-02-15T00:00:00+08:00",
                        until=MARCH["until"])
    assert [(m["month"], m["complaints"]) for m in wide["repeat_complaints"]] == [
        ("2026-02", 3), ("2026-03", 3)]
    assert [(o["month"], o["item_code"], o["failures"]) for o in wide["repeat_offences"]] == [
        ("2026-02", "tidy", 3), ("2026-03", "tidy", 3)]


# -- cost ---------------------------------------------------------------------------------------


def test_a_managers_file_costs_the_same_whatever_the_team(app, acme, desk):
    from sqlalchemy import event

    api = acme.api
    viewer = acme.as_role("viewer")
    boss = staff(api, "M")
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def queries() -> int:
        quality_file(viewer, "staff", boss, **MARCH)  # warm: the token's last use is recorded once
        engine = app.extensions["servq.engine"]
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            quality_file(viewer, "staff", boss, **MARCH)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    def grow(first, n):
        for i in range(first, first + n):
            report = staff(api, f"R{i}", reports_to=boss)
            record = inspection(api, report, failed=("tidy",))
            inspection(api, boss, failed=("tidy",))
            complaint(api, report)
            complaint(api, record_id=record["id"])

    with time_machine.travel(MONDAY, tick=False):  # every record in one month
        grow(0, 1)
        small = queries()
        grow(1, 5)
        assert queries() == small
        f = quality_file(viewer, "staff", boss, **MARCH)
    # Six reports, each with an inspection and a complaint against them (evaluated too), and
    # a complaint about their inspection.
    team = f["team"]["summary"]
    assert (team["members"], team["evaluations"], team["complaints"]) == (6, 12, 12)
    assert f["repeat_offences"] == [{"month": "2026-03", "standard_code": CODE, "item_code": "tidy",
                                     "failures": 6, "threshold": 3}]
