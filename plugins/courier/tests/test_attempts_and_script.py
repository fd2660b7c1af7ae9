"""Failed attempts (reason, photo, first attempt), the reschedule's pause, and the call
script's phrases, through HTTP."""

from __future__ import annotations

import time_machine

from servq.plugins.courier.tests.helpers import RECORDS, delivery, evaluation, item, patch, steps, take

NOW = "2026-03-05T12:00:00+00:00"
APPOINTMENT = {"from": "2026-03-02T02:00:00+00:00", "to": "2026-03-02T04:00:00+00:00"}


@time_machine.travel(NOW, tick=False)
def test_a_failed_attempt_needs_a_reason_and_for_some_reasons_a_photo(company):
    record = delivery(company, appointment=APPOINTMENT)
    steps(company.api, record["id"], ("dispatch", "2026-03-02T01:30:00+00:00"),
          ("arrive", "2026-03-02T03:00:00+00:00"))
    no_reason = take(company.api, record["id"], "fail", at="2026-03-02T03:10:00+00:00")
    assert no_reason.status_code == 409
    assert [u["field"] for u in no_reason.json["unmet"]] == ["data.failure_reason"]
    patch(company.api, record["id"], {**_data(company, record), "failure_reason": "recipient_absent"})
    no_photo = take(company.api, record["id"], "fail", at="2026-03-02T03:10:00+00:00")
    assert no_photo.status_code == 409, no_photo.json
    assert "needs a photo" in no_photo.json["message"]
    assert [u["field"] for u in no_photo.json["unmet"]] == ["data.failure_evidence"]
    assert company.api.get(f"{RECORDS}/{record['id']}").json["status"] == "at_door"   # nothing changed
    patch(company.api, record["id"], {**_data(company, record), "failure_reason": "recipient_absent",
                                      "failure_evidence": ["photos/door-1.jpg"]})
    failed = take(company.api, record["id"], "fail", at="2026-03-02T03:10:00+00:00")
    assert failed.status_code == 200 and failed.json["status"] == "attempt_failed"
    assert failed.json["data"]["delivered_first_attempt"] is False
    result = evaluation(company.api, record["id"])
    assert item(result, "failure_evidenced")["outcome"] == "pass"
    assert item(result, "appointment_kept_or_notified")["outcome"] == "pass"   # arrived in the window


@time_machine.travel(NOW, tick=False)
def test_a_reason_the_tenant_does_not_name_needs_no_photo(company):
    record = delivery(company, failure_reason="unreachable")
    steps(company.api, record["id"], ("dispatch", "2026-03-02T01:30:00+00:00"),
          ("fail", "2026-03-02T03:10:00+00:00"))
    assert item(evaluation(company.api, record["id"]), "failure_evidenced")["outcome"] == "fail"


def _data(company, record):
    data = dict(company.api.get(f"{RECORDS}/{record['id']}").json["data"])
    for derived in ("no_rush_fee", "no_gift_withheld", "waited_for_check", "failure_evidenced",
                    "delivered_first_attempt"):
        data.pop(derived, None)
    return data


def test_a_reschedule_pauses_the_time_limit_and_not_the_appointment(company):
    # Same city: 24 hours from shipped_at 2026-03-01 22:00 UTC, due 2026-03-02 22:00. Each
    # step is taken when it happens (time_machine at each instant).
    def at(instant, action, **body):
        with time_machine.travel(instant, tick=False):
            response = take(company.api, record["id"], action, **body)
            assert response.status_code == 200, response.json

    with time_machine.travel("2026-03-02T01:00:00+00:00", tick=False):
        record = delivery(company, appointment=APPOINTMENT, failure_reason="rescheduled_by_recipient")
    at("2026-03-02T01:30:00+00:00", "dispatch")
    at("2026-03-02T02:30:00+00:00", "fail")
    at("2026-03-02T02:40:00+00:00", "reschedule", reason="Recipient asked for tomorrow")
    at("2026-03-03T00:40:00+00:00", "redeliver")
    with time_machine.travel(NOW, tick=False):
        clocks = company.api.get(f"{RECORDS}/{record['id']}/clocks").json
        limit = next(c for c in clocks if c["item"] == "time_limit_same_city")
        # Paused 22 hours (02:40 → 00:40): due 22 hours later than 2026-03-02T22:00.
        assert limit["due"] == "2026-03-03T20:00:00+00:00", limit["pauses"]
        assert limit["pauses_in"] == ["waiting_for_recipient"]
        # The appointment is no clock: the window stays the customer's (04:00), and the
        # attempt that ended without arrival or notice is judged as it was.
        assert not [c for c in clocks if c["item"] == "appointment_kept_or_notified"]
        window = item(evaluation(company.api, record["id"]), "appointment_kept_or_notified")
        assert window["evidence"]["window_end"] == "2026-03-02T04:00:00+00:00"


SCRIPT = [
    {"speaker": "courier", "text": "您好。我是迅达快递公司的,您的顺丰快件已到,请问今天有时间接收吗?"},
    {"speaker": "customer", "text": "有的。"},
    {"speaker": "courier", "text": "请问什么时候上门方便?"},
    {"speaker": "customer", "text": "下午三点。"},
    {"speaker": "courier", "text": "好的。请仔细查收你的快件。对快件有疑问请拨打400-820-8888。"},
    {"speaker": "courier", "text": "再见!"},
]
PHRASES = ("greeting_script", "appointment_phrase", "handover_phrase", "hotline_phrase", "farewell")


@time_machine.travel(NOW, tick=False)
def test_the_call_script_is_scored_phrase_by_phrase_on_the_couriers_turns(company):
    record = delivery(company, call_transcript=SCRIPT)
    result = evaluation(company.api, record["id"])
    assert {code: item(result, code)["outcome"] for code in PHRASES} == dict.fromkeys(PHRASES, "pass")
    # 请仔细查收你的快件 (the seed's 你) passes the hand-over phrase.
    handover = item(result, "handover_phrase")["evidence"]["phrases"][0]
    assert handover["found"] and "请仔细查收你的快件" in handover["matched"]
    assert item(result, "kind_tone")["outcome"] == "pass"

    # The customer, not the courier, says goodbye: the farewell does not pass.
    customer_bye = [*SCRIPT[:-1], {"speaker": "customer", "text": "再见。"}]
    other = delivery(company, waybill_no="XD0002", call_transcript=customer_bye)
    other_result = evaluation(company.api, other["id"])
    assert item(other_result, "farewell")["outcome"] == "fail"
    assert item(other_result, "handover_phrase")["outcome"] == "pass"

    # A taboo phrase said by the courier fails the tone; no transcript: the phrases are n.a.
    rude = delivery(company, waybill_no="XD0003",
                    call_transcript=[*SCRIPT, {"speaker": "courier", "text": "有完没完?"}])
    assert item(evaluation(company.api, rude["id"]), "kind_tone")["outcome"] == "fail"
    silent = delivery(company, waybill_no="XD0004")
    assert {item(evaluation(company.api, silent["id"]), c)["outcome"] for c in PHRASES} == {"na"}


@time_machine.travel(NOW, tick=False)
def test_the_hotline_phrase_is_na_until_the_tenant_sets_its_hotline(make_company):
    company = make_company("nohotline", {})
    record = delivery(company, call_transcript=SCRIPT)
    hotline = item(evaluation(company.api, record["id"]), "hotline_phrase")
    assert hotline["outcome"] == "na" and "hotline" in str(hotline["evidence"]["unfilled"])


@time_machine.travel(NOW, tick=False)
def test_delivered_first_attempt_feeds_first_time_fix(company):
    first = delivery(company, handover={"mode": "locker"})
    assert first["data"]["delivered_first_attempt"] is True
    assert first["data"]["waited_for_check"] is None      # n.a. for lockers
    second = delivery(company, waybill_no="XD0009", attempt_no=2, handover={"mode": "in_person",
                                                                             "checked_by_recipient": True})
    assert second["data"]["delivered_first_attempt"] is False
    neighbour = company.api.post(RECORDS, json={"kind": "courier.delivery", "data": {
        "waybill_no": "XD0010", "handover": {"mode": "neighbour", "signed_by": "隔壁"}}})
    assert neighbour.status_code == 422 and "photo" in str(neighbour.json["errors"])
