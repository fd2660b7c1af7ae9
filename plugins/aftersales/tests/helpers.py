"""Small HTTP helpers of the after-sales tests."""

from __future__ import annotations

from zoneinfo import ZoneInfo

RECORDS = "/api/v1/records"
SHANGHAI = ZoneInfo("Asia/Shanghai")
TICKET = {"channel": "phone", "request_type": "repair", "importance": "normal", "urgency": "normal",
          "description": "Water-treatment controller shows E3 and stops the pump",
          "customer": {"name": "Liu Yang", "phone": "13912345678"},
          "product": {"item_code": "WTC-200", "name": "Water-treatment controller", "serial_no": "WTC2-0001"}}


def create(client, kind, data, **extra):
    return client.post(RECORDS, json={"kind": kind, "data": data, **extra})


def take(client, record_id, action, **body):
    etag = client.get(f"{RECORDS}/{record_id}").headers["ETag"]
    return client.post(f"{RECORDS}/{record_id}/transitions", json={"action": action, **body},
                       headers={"If-Match": etag})


def patch(client, record_id, data):
    current = client.get(f"{RECORDS}/{record_id}")
    return client.patch(f"{RECORDS}/{record_id}", json={"data": {**current.json["data"], **data}},
                        headers={"If-Match": current.headers["ETag"]})


def evaluation(client, record_id, code):
    found = [e for e in client.get(f"{RECORDS}/{record_id}/evaluations").json if e["standard_code"] == code]
    assert found, client.get(f"{RECORDS}/{record_id}/evaluations").json
    return found[0]


def items(evaluation_):
    return {i["code"]: i for i in evaluation_["items"]}
