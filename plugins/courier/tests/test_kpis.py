"""The courier KPIs through HTTP on a small worked example."""

from __future__ import annotations

import time_machine

from servq.plugins.courier.tests.helpers import RECORDS, delivery, steps

SINCE, UNTIL = "2026-03-01T00:00:00+08:00", "2026-04-01T00:00:00+08:00"
APPOINTMENT = {"from": "2026-03-02T02:00:00+00:00", "to": "2026-03-02T04:00:00+00:00"}
IN_PERSON = {"mode": "in_person", "checked_by_recipient": True}


def kpi(client, metrics, **params):
    response = client.get("/api/v1/kpis", query_string={"metrics": metrics, "since": SINCE, "until": UNTIL,
                                                        **params})
    assert response.status_code == 200, response.json
    return {tuple(row["group"].values()): row["values"] for row in response.json["rows"]}


@time_machine.travel("2026-03-05T12:00:00+00:00", tick=False)
def test_the_courier_kpis(company, globex):
    # Four deliveries by C1 (XH): one clean (on time, in the window), one rush fee, one
    # late without notice, one failed (absent, with a photo) then delivered at attempt 2.
    clean = delivery(company, waybill_no="KXD1000", appointment=APPOINTMENT, handover=dict(IN_PERSON))
    steps(company.api, clean["id"], ("dispatch", "2026-03-02T01:30:00+00:00"),
          ("arrive", "2026-03-02T03:00:00+00:00"), ("hand_over", "2026-03-02T03:05:00+00:00"))
    delivery(company, waybill_no="KXD2000", handover=dict(IN_PERSON), conduct={"rush_fee_charged": True})
    late = delivery(company, waybill_no="KXD3000", appointment=APPOINTMENT, handover=dict(IN_PERSON))
    steps(company.api, late["id"], ("dispatch", "2026-03-02T01:30:00+00:00"),
          ("arrive", "2026-03-02T05:00:00+00:00"), ("hand_over", "2026-03-02T05:05:00+00:00"))
    failed = delivery(company, waybill_no="KXD4000", failure_reason="recipient_absent",
                      failure_evidence=["door.jpg"])
    steps(company.api, failed["id"], ("dispatch", "2026-03-02T01:30:00+00:00"),
          ("fail", "2026-03-02T02:00:00+00:00"))
    # One by C3 (PD), unreachable; and a complaint about the rush fee.
    delivery(company, staff="C3", site="STN-PD", waybill_no="KXD5000", failure_reason="unreachable")
    complaint = company.api.post(RECORDS, json={"kind": "complaint", "occurred_at": "2026-03-03T01:00:00+00:00",
                                                "staff_id": company.staff["C1"], "site_id": company.sites["STN-XH"],
                                                "data": {"channel": "phone", "description": "私自收取加急费",
                                                         "record_id": clean["id"]}})
    assert complaint.status_code == 201, complaint.json

    overall = kpi(company.api, "courier.first_attempt_success,courier.failure_reasons,courier.prohibited_conduct,"
                               "courier.appointment_attainment,courier.time_limit_attainment,"
                               "courier.complaints_per_10k")[()]
    # Decided: K1, K2, K3 (handed over at attempt 1), K4 and K5 failed.
    assert overall["courier.first_attempt_success"] == 60.0
    assert overall["courier.failure_reasons"] == {"recipient_absent": 1, "unreachable": 1}
    assert overall["courier.prohibited_conduct"]["no_private_rush_fee"] == 2000.0
    assert overall["courier.prohibited_conduct"]["appointment_kept_or_notified"] == 2000.0
    assert overall["courier.prohibited_conduct"]["no_gift_withheld"] == 0.0
    assert overall["courier.appointment_attainment"] == 50.0          # K1 kept, K3 missed
    # K1 and K3 delivered within 24 hours of shipping; K2, K4 and K5 undelivered past due.
    assert overall["courier.time_limit_attainment"] == {"same_city": 40.0}
    assert overall["courier.complaints_per_10k"] == 2000.0

    by_station = kpi(company.api, "courier.failure_reasons", group_by="site")
    assert by_station[(company.sites["STN-PD"],)]["courier.failure_reasons"] == {"unreachable": 1}
    # Another tenant has no such metric.
    assert globex.api.get("/api/v1/kpis", query_string={"metrics": "courier.failure_reasons", "since": SINCE,
                                                        "until": UNTIL}).status_code == 422
