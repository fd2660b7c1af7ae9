"""Shared helpers of the courier tests: records through HTTP."""

from __future__ import annotations

RECORDS = "/api/v1/records"


def delivery(company, client=None, *, staff="C1", site="STN-XH", occurred_at="2026-03-02T01:00:00+00:00", **data):
    body = {"waybill_no": data.pop("waybill_no", "XD0001"), "service": "same_city",
            "shipped_at": "2026-03-01T22:00:00+00:00",
            "recipient": {"name": "刘女士", "phone": "13800001111", "address": "漕溪北路 88 号"}, **data}
    response = (client or company.api).post(RECORDS, json={
        "kind": "courier.delivery", "data": body, "occurred_at": occurred_at,
        "staff_id": company.staff[staff], "site_id": company.sites[site]})
    assert response.status_code == 201, response.json
    return response.json


def take(client, record_id, action, **body):
    etag = client.get(f"{RECORDS}/{record_id}").headers["ETag"]
    return client.post(f"{RECORDS}/{record_id}/transitions", json={"action": action, **body},
                       headers={"If-Match": etag})


def steps(client, record_id, *actions):
    """Take ``(action, at)`` steps, asserting each succeeds."""
    for action, at in actions:
        response = take(client, record_id, action, at=at)
        assert response.status_code == 200, (action, response.json)
    return response.json


def patch(client, record_id, data):
    etag = client.get(f"{RECORDS}/{record_id}").headers["ETag"]
    response = client.patch(f"{RECORDS}/{record_id}", json={"data": data}, headers={"If-Match": etag})
    assert response.status_code == 200, response.json
    return response.json


def evaluation(client, record_id, standard="courier.delivery"):
    response = client.get(f"{RECORDS}/{record_id}/evaluation?standard={standard}")
    assert response.status_code == 200, response.json
    return response.json


def item(evaluation_, code):
    return next(i for i in evaluation_["items"] if i["code"] == code)


def actions(client, record_id):
    return client.get(f"/api/v1/actions?record_id={record_id}").json
