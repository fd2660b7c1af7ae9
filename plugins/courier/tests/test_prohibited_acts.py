"""The four prohibited acts (S 第四条 一至四) through HTTP: each one alone fails the delivery,
scores it 0 and opens exactly one corrective action addressed to the managers; the kept-
or-notified rule; the repeat rule (the same act three times in a month: one flag)."""

from __future__ import annotations

import time_machine

from servq.plugins.courier.tests.helpers import actions, delivery, evaluation, item, steps

NOW = "2026-03-02T12:00:00+00:00"
APPOINTMENT = {"from": "2026-03-02T02:00:00+00:00", "to": "2026-03-02T04:00:00+00:00"}
IN_PERSON = {"mode": "in_person", "checked_by_recipient": True, "signed_by": "刘女士"}
PROHIBITED = ("appointment_kept_or_notified", "no_private_rush_fee", "no_gift_withheld", "waited_for_check")


def delivered(company, **data):
    """A delivery arrived at 03:00 (in the window) and handed over in person at 03:05."""
    record = delivery(company, appointment=APPOINTMENT, handover=dict(IN_PERSON), **data)
    steps(company.api, record["id"], ("dispatch", "2026-03-02T01:30:00+00:00"),
          ("arrive", "2026-03-02T03:00:00+00:00"), ("hand_over", "2026-03-02T03:05:00+00:00"))
    return record


@time_machine.travel(NOW, tick=False)
def test_a_clean_delivery_passes_every_prohibited_act(company):
    record = delivered(company)
    result = evaluation(company.api, record["id"])
    assert {code: item(result, code)["outcome"] for code in PROHIBITED} == dict.fromkeys(PROHIBITED, "pass")
    assert result["failed_critical"] == []
    assert actions(company.api, record["id"]) == []


@time_machine.travel(NOW, tick=False)
def test_each_prohibited_act_alone_fails_the_delivery_and_opens_one_action(company):
    cases = {
        "no_private_rush_fee": {"conduct": {"rush_fee_charged": True, "source": "complaint"}},
        "no_gift_withheld": {"conduct": {"gift_withheld": True, "source": "complaint"}},
        "waited_for_check": {"conduct": {"left_before_check": True, "source": "spot_check"}},
    }
    for n, (code, data) in enumerate(cases.items()):
        record = delivered(company, waybill_no=f"XD10{n}", **data)
        result = evaluation(company.api, record["id"])
        assert result["failed_critical"] == [code], code
        assert result["passed"] is False and result["percent"] == 0
        opened = actions(company.api, record["id"])
        assert [(a["item_code"], a["source"]) for a in opened] == [(code, "critical")]
        # Scoring again never opens a second action.
        assert company.api.post(f"/api/v1/records/{record['id']}/evaluate").status_code == 200
        assert len(actions(company.api, record["id"])) == 1
    # The fourth: missed the window without telling the customer.
    record = delivery(company, waybill_no="XD1099", appointment=APPOINTMENT, handover=dict(IN_PERSON))
    steps(company.api, record["id"], ("dispatch", "2026-03-02T01:30:00+00:00"),
          ("arrive", "2026-03-02T05:00:00+00:00"), ("hand_over", "2026-03-02T05:05:00+00:00"))
    result = evaluation(company.api, record["id"])
    assert result["failed_critical"] == ["appointment_kept_or_notified"]
    assert [a["item_code"] for a in actions(company.api, record["id"])] == ["appointment_kept_or_notified"]
    # The action is addressed to the managers (the station manager's role).
    events = [e for e in company.api.get("/api/v1/notifications?type=action.opened").json
              if e["data"].get("record_id") == record["id"]]
    assert [e["roles"] for e in events] == [["manager"]]


@time_machine.travel(NOW, tick=False)
def test_a_delay_notified_before_the_window_ends_passes_and_after_it_fails(company):
    in_time = delivery(company, waybill_no="XD2001", appointment=APPOINTMENT, handover=dict(IN_PERSON))
    steps(company.api, in_time["id"], ("dispatch", "2026-03-02T01:30:00+00:00"),
          ("notify_delay", "2026-03-02T03:50:00+00:00"), ("arrive", "2026-03-02T05:00:00+00:00"),
          ("hand_over", "2026-03-02T05:05:00+00:00"))
    passed = item(evaluation(company.api, in_time["id"]), "appointment_kept_or_notified")
    assert passed["outcome"] == "pass" and passed["evidence"]["kept"] == "notified"

    late = delivery(company, waybill_no="XD2002", appointment=APPOINTMENT, handover=dict(IN_PERSON))
    steps(company.api, late["id"], ("dispatch", "2026-03-02T01:30:00+00:00"),
          ("notify_delay", "2026-03-02T04:10:00+00:00"), ("arrive", "2026-03-02T05:00:00+00:00"),
          ("hand_over", "2026-03-02T05:05:00+00:00"))
    failed = item(evaluation(company.api, late["id"]), "appointment_kept_or_notified")
    assert failed["outcome"] == "fail" and failed["evidence"]["delay_notified_at"] == "2026-03-02T04:10:00+00:00"


@time_machine.travel(NOW, tick=False)
def test_the_notice_lead_is_the_tenants(make_company):
    company = make_company("lead", {"hotline": "400-820-8888", "notice_lead_minutes": 30})
    record = delivery(company, appointment=APPOINTMENT, handover=dict(IN_PERSON))
    steps(company.api, record["id"], ("dispatch", "2026-03-02T01:30:00+00:00"),
          ("notify_delay", "2026-03-02T03:45:00+00:00"), ("arrive", "2026-03-02T05:00:00+00:00"))
    assert item(evaluation(company.api, record["id"]), "appointment_kept_or_notified")["outcome"] == "fail"
    standard = company.api.get("/api/v1/standards/courier.delivery").json
    window = next(i for i in standard["document"]["items"] if i["code"] == "appointment_kept_or_notified")
    assert window["rule"]["lead_minutes"] == 30


@time_machine.travel("2026-03-02T02:30:00+00:00", tick=False)
def test_the_window_is_pending_while_open_and_a_window_without_end_takes_the_default_width(company):
    record = delivery(company, appointment={"from": "2026-03-02T02:00:00+00:00"})
    result = item(evaluation(company.api, record["id"]), "appointment_kept_or_notified")
    assert result["outcome"] == "pending"
    assert result["evidence"]["window_end"] == "2026-03-02T04:00:00+00:00"


def test_the_third_rush_fee_in_a_month_raises_exactly_one_flag(company):
    def rush(n, date, staff="C1"):
        with time_machine.travel(f"{date}T12:00:00+00:00", tick=False):
            return delivery(company, waybill_no=f"XD3{n:03d}", staff=staff, occurred_at=f"{date}T01:00:00+00:00",
                            handover=dict(IN_PERSON), conduct={"rush_fee_charged": True, "source": "complaint"})

    def flags():
        return [e for e in company.api.get("/api/v1/notifications?type=courier.repeat_offence").json]

    rush(1, "2026-03-02")
    rush(2, "2026-03-03", staff="C2")    # another courier: not counted for C1
    rush(3, "2026-03-09")
    assert flags() == []
    third = rush(4, "2026-03-20")
    [flag] = flags()
    assert flag["roles"] == ["manager"]
    assert flag["data"]["staff_id"] == company.staff["C1"] and flag["data"]["item"] == "no_private_rush_fee"
    assert flag["data"]["month"] == "2026-03" and flag["data"]["count"] == 3
    # A fourth time, or a re-score of the third, flags nothing more; no sanction is made.
    rush(5, "2026-03-25")
    assert company.api.post(f"/api/v1/records/{third['id']}/evaluate").status_code == 200
    assert len(flags()) == 1
    # The month is the calendar month in the tenant's time zone: 1 April 07:30 in Shanghai
    # (31 March 23:30 UTC) starts April's count.
    with time_machine.travel("2026-04-02T12:00:00+00:00", tick=False):
        for n in (6, 7):
            delivery(company, waybill_no=f"XD3{n:03d}", occurred_at="2026-03-31T23:30:00+00:00",
                     handover=dict(IN_PERSON), conduct={"rush_fee_charged": True})
    assert len(flags()) == 1


@time_machine.travel(NOW, tick=False)
def test_another_tenant_neither_sees_the_deliveries_nor_uses_the_kinds(company, globex):
    record = delivered(company)
    for path in ("", "/evaluation", "/clocks", "/transitions"):
        assert globex.api.get(f"/api/v1/records/{record['id']}{path}").status_code == 404
    refused = globex.api.post("/api/v1/records", json={"kind": "courier.delivery", "data": {"waybill_no": "XD9999"}})
    assert refused.status_code == 422 and "kind" in refused.json["errors"]["json"]
    assert globex.api.get("/api/v1/standards/courier.delivery").status_code == 404
    assert company.api.get("/api/v1/standards/courier.delivery").status_code == 200


@time_machine.travel(NOW, tick=False)
def test_a_pickup_keeps_its_appointment_and_the_rush_fee_is_critical_there_too(company):
    def pickup(**data):
        response = company.api.post("/api/v1/records", json={
            "kind": "courier.pickup", "occurred_at": "2026-03-02T01:00:00+00:00", "staff_id": company.staff["C2"],
            "site_id": company.sites["STN-XH"],
            "data": {"sender": {"name": "陈先生"}, "address": "衡山路 10 号", "appointment": APPOINTMENT,
                     "content_checked": True, **data}})
        assert response.status_code == 201, response.json
        return response.json

    kept = pickup()
    steps(company.api, kept["id"], ("confirm", "2026-03-02T01:10:00+00:00"),
          ("arrive", "2026-03-02T03:30:00+00:00"), ("pick_up", "2026-03-02T03:40:00+00:00"))
    result = evaluation(company.api, kept["id"], "courier.pickup")
    assert result["failed_critical"] == [] and item(result, "appointment_kept_or_notified")["outcome"] == "pass"
    rushed = pickup(conduct={"rush_fee_charged": True})
    assert evaluation(company.api, rushed["id"], "courier.pickup")["failed_critical"] == ["no_private_rush_fee"]
    assert [a["item_code"] for a in actions(company.api, rushed["id"])] == ["no_private_rush_fee"]


@time_machine.travel(NOW, tick=False)
def test_a_prohibited_act_posts_a_doubled_penalty_to_the_ledger(company):
    rules = company.manager.put("/api/v1/ledger/rules", json={
        "failed_item": {"points": 2, "critical_multiplier": 2}, "flag_threshold": 3})
    assert rules.status_code in (200, 201), rules.json
    record = delivered(company, conduct={"rush_fee_charged": True, "source": "complaint"})
    entries = company.manager.get("/api/v1/ledger/entries", query_string={"staff_id": company.staff["C1"]}).json
    mine = [e for e in entries if e["source"]["record_id"] == record["id"]]
    assert [(e["kind"], e["points"], e["source"]["item_code"]) for e in mine] == [
        ("penalty", 4, "no_private_rush_fee")]


def test_an_import_flags_the_third_rush_fee_once_and_webhooks_may_subscribe_to_it(app, company, tmp_path):
    import json

    from click.testing import CliRunner

    from servq.cli import make_cli

    # The plugin's event type is listed, and a webhook may subscribe to it or to courier.*.
    listed = {row["type"]: row["description"] for row in company.api.get("/api/v1/webhooks/event-types").json}
    assert "flag for the station manager" in listed["courier.repeat_offence"]
    for types in (["courier.repeat_offence"], ["courier.*"]):
        r = company.api.post("/api/v1/webhooks", json={"url": "https://hooks.example.com/q", "event_types": types})
        assert r.status_code == 201, r.json
    r = company.api.post("/api/v1/webhooks", json={"url": "https://hooks.example.com/q", "event_types": ["courier.nope"]})
    assert r.status_code == 422 and "courier.nope" in json.dumps(r.json)
    # Four rush fees of one courier in March, three in one chunk of the import: one flag.
    lines = [{"kind": "courier.delivery", "occurred_at": f"2026-03-{day:02d}T01:00:00+00:00", "site": "STN-XH",
              "staff": "C1", "data": {"waybill_no": f"XD4{day:03d}", "service": "same_city",
                                      "shipped_at": "2026-03-01T22:00:00+00:00", "handover": dict(IN_PERSON),
                                      "conduct": {"rush_fee_charged": day != 4}}}
             for day in (2, 3, 4, 5, 6)]
    path = tmp_path / "deliveries.jsonl"
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    with time_machine.travel("2026-03-10T12:00:00+00:00", tick=False):
        result = CliRunner().invoke(make_cli(app_factory=lambda: app),
                                    ["records", "import", "--tenant", "xunda", "--chunk", "3", str(path)])
    assert result.exit_code == 0, result.output
    [flag] = company.api.get("/api/v1/notifications?type=courier.repeat_offence").json
    assert flag["data"]["count"] == 3 and flag["data"]["item"] == "no_private_rush_fee"
    assert flag["data"]["staff_id"] == company.staff["C1"]
