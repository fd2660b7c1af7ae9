"""What issue 19 says the hotel plugin must show, through HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import time_machine

RECORDS = "/api/v1/records"
SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 10, 10, 0, tzinfo=SH)
CHECKLIST = {c: "pass" for c in ("surfaces_clean", "fixtures_wiped", "plants_bins_floor", "bathroom_clean",
                                 "toilet_paper", "facilities_working", "no_dead_corners", "bed_made",
                                 "amenities", "no_previous_guest_traces")}


def create(client, kind, data, **extra):
    return client.post(RECORDS, json={"kind": kind, "data": data, **extra})


def take(client, record_id, action, **body):
    etag = client.get(f"{RECORDS}/{record_id}").headers["ETag"]
    return client.post(f"{RECORDS}/{record_id}/transitions", json={"action": action, **body},
                       headers={"If-Match": etag})


def patch_data(client, record_id, data):
    got = client.get(f"{RECORDS}/{record_id}")
    return client.patch(f"{RECORDS}/{record_id}", json={"data": {**got.json["data"], **data}},
                        headers={"If-Match": got.headers["ETag"]})


def evaluation(client, record_id, code):
    got = client.get(f"{RECORDS}/{record_id}/evaluations").json
    return next(e for e in got if e["standard_code"] == code)


def item(ev, code):
    return next(i for i in ev["items"] if i["code"] == code)


def test_failed_inspection_returns_to_dirty_and_scores_first_pass_false(hotel):
    with time_machine.travel(T0, tick=False) as clock:
        room = create(hotel.api, "hotel.room_turnover", {"room": "1208", "clean_type": "departure",
                                                          "checklist": CHECKLIST})
        assert room.status_code == 201, room.json
        rid = room.json["id"]
        for action in ("start", "finish"):
            assert take(hotel.api, rid, action).status_code == 200
        refused = take(hotel.api, rid, "fail")
        assert refused.status_code == 409 and "fail_reason" in str(refused.json)
        assert patch_data(hotel.api, rid, {"fail_reason": "Hair in the basin 面盆有头发"}).status_code == 200
        clock.shift(600)
        failed = take(hotel.api, rid, "fail")
        assert failed.status_code == 200, failed.json
        got = hotel.api.get(f"{RECORDS}/{rid}").json
        assert got["status"] == "dirty" and got["data"]["passed_first_time"] is False
        for action in ("start", "finish", "pass"):
            clock.shift(300)
            assert take(hotel.api, rid, action).status_code == 200
        got = hotel.api.get(f"{RECORDS}/{rid}").json
        assert got["status"] == "inspected" and got["data"]["passed_first_time"] is False
        kpi = hotel.api.get("/api/v1/kpis", query_string={
            "metrics": "hotel.inspection_pass_first_time", "since": "2026-03-01T00:00:00Z",
            "until": "2026-04-01T00:00:00Z"})
        assert kpi.status_code == 200, kpi.json
        assert kpi.json["values"][0]["value"] == 0.0 if "values" in kpi.json else True


def test_a_clean_first_pass_is_true(hotel):
    with time_machine.travel(T0, tick=False):
        rid = create(hotel.api, "hotel.room_turnover", {"room": "1209", "checklist": CHECKLIST}).json["id"]
        for action in ("start", "finish", "pass"):
            assert take(hotel.api, rid, action).status_code == 200
        got = hotel.api.get(f"{RECORDS}/{rid}").json
        assert got["data"]["passed_first_time"] is True
        assert evaluation(hotel.api, rid, "hotel.guest_room")["passed"] is True


def test_charge_priced_from_the_list_in_force_and_kept_when_the_list_changes(hotel):
    with time_machine.travel(T0, tick=False):
        line = {"code": "carpet_burn", "quantity": 3, "description": "烟洞", "witness_id": "小王"}
        rec = create(hotel.api, "hotel.checkout_inspection", {"room": "1606", "damages": [line]})
        assert rec.status_code == 201, rec.json
        rid = rec.json["id"]
        data = rec.json["data"]
        assert data["damages"][0]["list_price"] == 50 and data["damages"][0]["amount"] == 150
        assert data["damage_total"] == 150 and data["priced_per_list"] is True
        etag = hotel.api.get("/api/v1/plugins/hotel").headers["ETag"]
        changed = hotel.api.put("/api/v1/plugins/hotel", headers={"If-Match": etag}, json={"active": True, "configuration": {
            "damage_price_list": {"carpet_burn": {"title": {"en": "Carpet burn", "zh": "烟洞"},
                                                  "price": 80, "currency": "CNY"}}}})
        assert changed.status_code == 200, changed.json
        assert patch_data(hotel.api, rid, {"handled_privately": True}).status_code == 200
        data = hotel.api.get(f"{RECORDS}/{rid}").json["data"]
        assert data["damages"][0]["list_price"] == 50 and data["damage_total"] == 150
        assert data["priced_per_list"] is True
        # A new charge is priced at the new list.
        new = create(hotel.api, "hotel.checkout_inspection", {"room": "1507", "damages": [line]}).json
        assert new["data"]["damage_total"] == 240


def test_a_charge_without_evidence_fails_its_critical_item(hotel):
    with time_machine.travel(T0, tick=False):
        rid = create(hotel.api, "hotel.checkout_inspection", {"room": "1606", "damages": [
            {"code": "carpet_burn", "quantity": 1}]}).json["id"]
        ev = evaluation(hotel.api, rid, "hotel.checkout_inspection")
        assert item(ev, "evidence_recorded")["outcome"] == "fail"
        assert ev["passed"] is False


def test_a_waiver_needs_reason_and_approver(hotel):
    with time_machine.travel(T0, tick=False):
        rid = create(hotel.api, "hotel.checkout_inspection", {"room": "1606", "damages": [
            {"code": "carpet_burn", "evidence": ["https://example.test/p.jpg"]}]}).json["id"]
        assert take(hotel.api, rid, "find_damage").status_code == 200
        refused = take(hotel.api, rid, "waive")
        assert refused.status_code == 409
        assert {u["field"] for u in refused.json["unmet"]} == {"data.waiver.reason", "data.waiver.approved_by"}


def _meeting(hotel, refills):
    start = datetime(2026, 3, 10, 9, 0, tzinfo=SH)
    data = {"meeting_room": "多功能厅", "start_at": start.isoformat(),
            "end_at": datetime(2026, 3, 10, 10, 0, tzinfo=SH).isoformat(),
            "refills": [datetime(2026, 3, 10, 9, m, tzinfo=SH).isoformat() for m in refills]}
    rid = create(hotel.api, "hotel.meeting_service", data).json["id"]
    return item(evaluation(hotel.api, rid, "hotel.meeting_service"), "refill_every_15_min")


def test_a_20_minute_refill_gap_fails_and_15_passes(hotel):
    with time_machine.travel(T0, tick=False):
        assert _meeting(hotel, [15, 30, 45])["outcome"] == "pass"
        assert _meeting(hotel, [15, 35, 50])["outcome"] == "fail"


def test_an_office_finished_at_0831_fails(hotel):
    day = datetime(2026, 3, 10, 0, 0, tzinfo=SH)
    results = {}
    for minute in (29, 31):
        with time_machine.travel(day, tick=False):
            rid = create(hotel.api, "hotel.office_service", {"room": "301", "service_date": "2026-03-10"}).json["id"]
        with time_machine.travel(datetime(2026, 3, 10, 8, minute, tzinfo=SH), tick=False):
            assert take(hotel.api, rid, "complete").status_code == 200
            results[minute] = item(evaluation(hotel.api, rid, "hotel.office_service"), "ready_by_0830")["outcome"]
    assert results == {29: "pass", 31: "fail"}


def test_a_rejected_dish_cannot_be_served(hotel):
    with time_machine.travel(T0, tick=False):
        bad = create(hotel.api, "hotel.dish_check", {"outlet": "restaurant", "dish": "清蒸鱼", "result": "reject",
                                                     "reject_reason": "Not fresh", "served": True})
        assert bad.status_code == 422 and "决不出厨房" in str(bad.json)
        rid = create(hotel.api, "hotel.dish_check", {"outlet": "restaurant", "dish": "清蒸鱼", "result": "reject",
                                                     "reject_reason": "Not fresh"}).json["id"]
        refused = take(hotel.api, rid, "serve")
        assert refused.status_code == 409 and "result" in str(refused.json)
        assert take(hotel.api, rid, "reject").status_code == 200


def test_a_maintenance_defect_opens_exactly_one_repair(hotel):
    with time_machine.travel(T0, tick=False):
        defect = {"area": "bathroom", "description": "Tap leaking 水龙头漏水", "kind": "maintenance"}
        rid = create(hotel.api, "hotel.room_turnover", {"room": "1010", "defects": [
            defect, {"area": "desk", "description": "Dust", "kind": "housekeeping"}]}).json["id"]
        assert take(hotel.api, rid, "start").status_code == 200
        assert patch_data(hotel.api, rid, {"room_type": "king"}).status_code == 200
        repairs = hotel.api.get(RECORDS, query_string={"kind": "hotel.repair"}).json
        assert len(repairs) == 1
        data = hotel.api.get(f"{RECORDS}/{rid}").json["data"]
        assert data["repair_ids"] == [repairs[0]["id"]] and data["faults_dispatched"] is True
        assert repairs[0]["data"]["source_record_id"] == rid


def test_another_tenant_sees_none_of_it(hotel, globex):
    with time_machine.travel(T0, tick=False):
        rid = create(hotel.api, "hotel.room_turnover", {"room": "1"}).json["id"]
        assert globex.api.get(f"{RECORDS}/{rid}").status_code == 404
        refused = create(globex.api, "hotel.room_turnover", {"room": "1"})
        assert refused.status_code == 422


def test_self_check_only_for_a_role_with_cadence_0(make_hotel):
    hotel = make_hotel("cadence", {"inspection_cadence": {"attendant": 1, "supervisor": 0}})
    staff = {s["code"]: s["id"] for s in hotel.api.get("/api/v1/staff").json}
    with time_machine.travel(T0, tick=False):
        outcomes = {}
        for code in ("HK-01", "SV-01"):
            rid = create(hotel.api, "hotel.room_turnover", {"room": "1101", "checklist": CHECKLIST},
                         staff_id=staff[code]).json["id"]
            for action in ("start", "finish"):
                assert take(hotel.api, rid, action).status_code == 200
            outcomes[code] = take(hotel.api, rid, "self_check").status_code
        assert outcomes == {"HK-01": 409, "SV-01": 200}


def test_dnd_does_not_move_the_guest_arrival(hotel):
    arrival = datetime(2026, 3, 10, 14, 0, tzinfo=SH)
    with time_machine.travel(T0, tick=False) as clock:
        rid = create(hotel.api, "hotel.room_turnover", {"room": "1301", "checklist": CHECKLIST,
                                                         "guest_arrival_at": arrival.isoformat()}).json["id"]
        assert take(hotel.api, rid, "dnd", reason="Guest asked not to be disturbed").status_code == 200
        clock.shift(4 * 3600)  # 14:00: DND until now
        for action in ("resume", "start", "finish", "pass"):
            clock.shift(300)
            assert take(hotel.api, rid, action).status_code == 200
        item_ = item(evaluation(hotel.api, rid, "hotel.guest_room"), "ready_before_arrival")
        assert item_["outcome"] == "fail"  # inspected 14:20, the guest came at 14:00
