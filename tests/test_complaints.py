"""Complaints through HTTP: the kind's data, its workflow, the shipped ``core.complaint``
standard on the tenant's calendar, masking of the customer's contact per role and the
audit of every read of it, and the linked record (``core/records/kinds/complaint.py``)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from servq.core.models import AuditEvent

# Rows dated in 2026, entered on a fixed day after them (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("present")

RECORDS = "/api/v1/records"
CUSTOMER = {"name": "张三", "phone": "13812345678", "email": "zhang@example.com"}
MASKED = {"name": "张*", "phone": "138****5678", "email": "z***@example.com"}
CN_CALENDAR = {"timezone": "Asia/Shanghai", "country": "CN",
               "working_hours": {d: ["09:00-12:00", "13:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}}
# Friday 13 February 2026, 20:00 in Shanghai: the evening before the Spring Festival
# holiday (15-23 Feb); Saturday 14 and Saturday 28 February are moved working days.
FRIDAY_EVENING = "2026-02-13T20:00:00+08:00"


def complaint(**data):
    body = {"channel": "hotline", "description": "The technician never came.", "customer": CUSTOMER}
    body.update(data)
    return {"kind": "complaint", "data": body}


def file(tenant, api=None, occurred_at=None, **data):
    payload = complaint(**data)
    if occurred_at:
        payload["occurred_at"] = occurred_at
    r = (api or tenant.api).post(RECORDS, json=payload)
    assert r.status_code == 201, r.json
    return r.json


def act(api, record_id, **body):
    etag = api.get(f"{RECORDS}/{record_id}").headers["ETag"]
    return api.post(f"{RECORDS}/{record_id}/transitions", json=body, headers={"If-Match": etag})


def evaluation(tenant, record_id):
    r = tenant.api.get(f"{RECORDS}/{record_id}/evaluations")
    assert r.status_code == 200, r.json
    (found,) = [e for e in r.json if e["standard_code"] == "core.complaint"]
    return found


def reads(tenant, record_id=None):
    with tenant.session() as s:
        stmt = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "personal_data_read")
        if record_id:
            stmt = stmt.where(AuditEvent.entity_id == uuid.UUID(record_id))
        return s.scalar(stmt)


# -- the kind -------------------------------------------------------------------------


def test_complaint_is_a_core_kind_with_its_workflow(acme):
    kind = acme.api.get("/api/v1/kinds/complaint").json
    assert kind["statuses"] == ["received", "acknowledged", "investigating", "waiting_for_customer",
                                "resolved", "closed"]
    props = kind["data_schema"]["properties"]
    assert set(props["channel"]["enum"]) == {"phone", "hotline", "email", "web", "in_person", "social", "internal"}
    assert set(props["severity"]["enum"]) == {"general", "serious"}


def test_a_complaint_with_every_field(acme):
    site = acme.api.post("/api/v1/sites", json={"code": "S1", "name": "North estate"}).json
    delivery = acme.api.post(RECORDS, json={"kind": "observation", "data": {"title": "Visit"}}).json
    body = complaint(severity="serious", category="Punctuality", record_id=delivery["id"],
                     root_cause="Schedule not updated",
                     compensation={"amount": 50, "currency": "CNY", "note": "voucher"})
    body["site_id"] = site["id"]
    r = acme.api.post(RECORDS, json=body)
    assert r.status_code == 201, r.json
    assert r.json["status"] == "received" and r.json["site_id"] == site["id"]
    assert r.json["data"]["record_id"] == delivery["id"]
    assert r.json["data"]["compensation"] == {"amount": 50, "currency": "CNY", "note": "voucher"}
    assert r.json["timestamps"] == {"received_at": r.json["occurred_at"],
                                    "serious_received_at": r.json["occurred_at"]}


@pytest.mark.parametrize("data, field", [
    ({"channel": "fax"}, "channel"),
    ({"severity": "urgent"}, "severity"),
    ({"category": "x" * 101}, "category"),
    ({"description": ""}, "description"),
    ({"customer": {"email": "not-an-email"}}, "customer"),
    ({"customer": {"phone": "call me"}}, "customer"),
    ({"compensation": {"amount": 10, "currency": "yuan"}}, "compensation"),
    ({"compensation": {"amount": -1, "currency": "CNY"}}, "compensation"),
    ({"record_id": "not-a-uuid"}, "record_id"),
])
def test_bad_complaints_are_422_naming_the_field(acme, data, field):
    r = acme.api.post(RECORDS, json=complaint(**data))
    assert r.status_code == 422
    assert field in r.json["errors"]["json"]["data"]
    assert acme.api.get(RECORDS, query_string={"kind": "complaint"}).json == []


def test_the_linked_record_must_be_a_live_record_of_this_tenant(acme, globex):
    theirs = globex.api.post(RECORDS, json={"kind": "observation", "data": {"title": "Theirs"}}).json
    r = acme.api.post(RECORDS, json=complaint(record_id=theirs["id"]))
    assert r.status_code == 422
    assert r.json["errors"]["json"]["data"]["record_id"] == ["No such record in this tenant."]
    r = acme.api.post(RECORDS, json=complaint(record_id=str(uuid.uuid4())))
    assert r.status_code == 422
    mine = acme.api.post(RECORDS, json={"kind": "observation", "data": {"title": "Mine"}}).json
    acme.api.remove(f"{RECORDS}/{mine['id']}")
    assert acme.api.post(RECORDS, json=complaint(record_id=mine["id"])).status_code == 422
    assert acme.api.get(RECORDS, query_string={"kind": "complaint"}).json == []
    # and a change to another tenant's record is refused too
    ok = file(acme)
    r = acme.api.update(f"{RECORDS}/{ok['id']}", {"data": complaint(record_id=theirs["id"])["data"]})
    assert r.status_code == 422


# -- workflow -------------------------------------------------------------------------


def test_the_whole_workflow_with_a_reopening(acme):
    c = file(acme)
    cid = c["id"]
    r = act(acme.api, cid, action="confirm")
    assert r.status_code == 409 and r.json["allowed"] == ["acknowledge"]
    assert act(acme.api, cid, action="acknowledge").json["status"] == "acknowledged"
    assert act(acme.api, cid, action="investigate").json["status"] == "investigating"
    r = act(acme.api, cid, action="wait")
    assert r.status_code == 422 and "reason" in r.json["errors"]["json"]
    r = act(acme.api, cid, action="wait", reason="Customer to send photos")
    assert r.json["status"] == "waiting_for_customer" and "waiting_at" in r.json["timestamps"]
    r = act(acme.api, cid, action="resolve")
    assert r.status_code == 409 and r.json["allowed"] == ["resume"]
    assert act(acme.api, cid, action="resume").json["status"] == "investigating"
    resolved = act(acme.api, cid, action="resolve", note="Technician rebooked").json
    assert resolved["status"] == "resolved" and "resolved_at" in resolved["timestamps"]
    closed = act(acme.api, cid, action="confirm").json
    assert closed["status"] == "closed" and "closed_at" in closed["timestamps"]
    listed = acme.api.get(f"{RECORDS}/{cid}/transitions").json
    assert listed["final"] is True and [a["action"] for a in listed["actions"]] == ["reopen"]
    reopened = act(acme.api, cid, action="reopen", note="Came back").json
    assert reopened["status"] == "investigating"
    assert "resolved_at" not in reopened["timestamps"] and "closed_at" not in reopened["timestamps"]
    assert {"received_at", "general_received_at", "acknowledged_at", "investigating_at",
            "waiting_at", "reopened_at"} <= set(reopened["timestamps"])
    assert act(acme.api, cid, action="resolve").json["status"] == "resolved"


def test_severity_keys_the_resolution_deadline(acme):
    c = file(acme, occurred_at="2026-03-02T10:00:00+08:00")
    assert "general_received_at" in c["timestamps"] and "serious_received_at" not in c["timestamps"]
    items = {i["code"]: i for i in evaluation(acme, c["id"])["items"]}
    assert items["serious_resolved_in_time"]["outcome"] == "na"
    assert items["general_resolved_in_time"]["outcome"] in ("pending", "breached")
    r = acme.api.update(f"{RECORDS}/{c['id']}", {"data": complaint(severity="serious")["data"]})
    assert r.status_code == 200
    assert set(r.json["timestamps"]) == {"received_at", "serious_received_at"}
    items = {i["code"]: i for i in evaluation(acme, c["id"])["items"]}
    assert items["general_resolved_in_time"]["outcome"] == "na"
    assert items["serious_resolved_in_time"]["evidence"]["limit"] == "2 working days"


# -- the shipped standard on the tenant's calendar ------------------------------------


def test_friday_evening_before_the_spring_festival_gets_the_hand_computed_due_times(acme):
    assert acme.api.put("/api/v1/calendar", json=CN_CALENDAR).status_code == 200
    c = file(acme, occurred_at=FRIDAY_EVENING, severity="serious")
    items = {i["code"]: i for i in evaluation(acme, c["id"])["items"]}
    # By hand: the clock starts Saturday 14 Feb 09:00 (a moved working day).
    # Acknowledge within 4 working hours: 09-12 and 13-14 → Sat 14 Feb 14:00 (06:00Z).
    assert items["acknowledged_in_time"]["evidence"]["due"] == "2026-02-14T06:00:00+00:00"
    # Serious: 2 working days, Saturday 14 counting as the first; 15-23 Feb are the
    # holiday; the second is Tuesday 24 Feb → due at its close, 18:00 (10:00Z).
    assert items["serious_resolved_in_time"]["evidence"]["due"] == "2026-02-24T10:00:00+00:00"
    # Acknowledged on Saturday at 11:00, resolved on Tuesday 24 Feb at 17:00: in time.
    assert act(acme.api, c["id"], action="acknowledge", at="2026-02-14T11:00:00+08:00").status_code == 200
    act(acme.api, c["id"], action="investigate", at="2026-02-14T11:30:00+08:00")
    act(acme.api, c["id"], action="resolve", at="2026-02-24T17:00:00+08:00")
    result = evaluation(acme, c["id"])
    assert {i["code"]: i["outcome"] for i in result["items"]} == {
        "acknowledged_in_time": "pass", "general_resolved_in_time": "na", "serious_resolved_in_time": "pass"}
    assert result["passed"] is True and result["grade"] == "A"


def test_a_general_complaint_resolved_late_fails(acme):
    assert acme.api.put("/api/v1/calendar", json=CN_CALENDAR).status_code == 200
    c = file(acme, occurred_at=FRIDAY_EVENING)
    items = {i["code"]: i for i in evaluation(acme, c["id"])["items"]}
    # 5 working days: Sat 14, Tue 24, Wed 25, Thu 26, Fri 27 Feb → due Fri 27 Feb 18:00.
    assert items["general_resolved_in_time"]["evidence"]["due"] == "2026-02-27T10:00:00+00:00"
    act(acme.api, c["id"], action="acknowledge", at="2026-02-16T10:00:00+08:00")  # a holiday: late
    act(acme.api, c["id"], action="resolve", at="2026-03-02T09:30:00+08:00")
    result = evaluation(acme, c["id"])
    outcomes = {i["code"]: i["outcome"] for i in result["items"]}
    assert outcomes == {"acknowledged_in_time": "fail", "general_resolved_in_time": "fail",
                        "serious_resolved_in_time": "na"}
    assert result["passed"] is False and result["grade"] == "C"


# -- masking and the audit of reads ----------------------------------------------------


@pytest.mark.parametrize("role, clear", [
    ("owner", True), ("admin", True), ("manager", True),
    ("inspector", False), ("agent", False), ("viewer", False),
])
def test_customer_contact_is_masked_below_manager_everywhere(acme, role, clear):
    api = acme.api if role == "owner" else acme.as_role(role)
    c = file(acme)
    expected = CUSTOMER if clear else MASKED
    one = api.get(f"{RECORDS}/{c['id']}")
    assert one.json["data"]["customer"] == expected
    listed = api.get(RECORDS, query_string={"kind": "complaint"}).json
    assert [r["data"]["customer"] for r in listed] == [expected]
    history = api.get(f"{RECORDS}/{c['id']}/history").json
    assert history[0]["changes"]["data"][1]["customer"] == expected
    if role != "viewer":
        mine = api.post(RECORDS, json=complaint()).json
        assert mine["data"]["customer"] == expected
        patched = api.update(f"{RECORDS}/{c['id']}", {"data": complaint(category="Noise")["data"]}).json
        assert patched["data"]["customer"] == expected
        moved = act(api, c["id"], action="acknowledge").json
        assert moved["data"]["customer"] == expected
    # the stored record is never changed by masking
    assert acme.api.get(f"{RECORDS}/{c['id']}").json["data"]["customer"] == CUSTOMER


@pytest.mark.parametrize("role", ["inspector", "agent"])
def test_a_role_that_sees_contacts_masked_cannot_overwrite_or_erase_them(acme, role):
    api = acme.as_role(role)
    c = file(acme)
    seen = api.get(f"{RECORDS}/{c['id']}").json
    assert seen["data"]["customer"] == MASKED
    # Sending back what it saw (masked) with one change keeps the stored contact …
    patched = api.update(f"{RECORDS}/{c['id']}", {"data": {**seen["data"], "category": "Noise"}})
    assert patched.status_code == 200, patched.json
    # … and so does leaving the contact out.
    without = {k: v for k, v in patched.json["data"].items() if k != "customer"}
    assert api.update(f"{RECORDS}/{c['id']}", {"data": {**without, "category": "Smell"}}).status_code == 200
    stored = acme.api.get(f"{RECORDS}/{c['id']}").json["data"]
    assert stored["customer"] == CUSTOMER and stored["category"] == "Smell"


def test_every_clear_read_is_audited_and_masked_reads_are_not(acme):
    c = file(acme)
    empty = file(acme, customer={})
    acme.api.post(RECORDS, json={"kind": "observation", "data": {"title": "No personal data"}})
    before = reads(acme)
    viewer = acme.as_role("viewer")
    viewer.get(f"{RECORDS}/{c['id']}")
    viewer.get(RECORDS)
    assert reads(acme) == before
    manager = acme.as_role("manager")
    assert manager.get(f"{RECORDS}/{c['id']}").status_code == 200
    assert reads(acme, c["id"]) == 1
    assert reads(acme, empty["id"]) == 0  # nothing personal in it: nothing to audit
    manager.get(RECORDS)  # one event per record holding personal data on the page
    assert reads(acme) == before + 2
    events = [e for e in acme.api.get(f"{RECORDS}/{c['id']}/history").json
              if e["action"] == "personal_data_read"]
    assert events[0]["actor"]["name"].startswith("manager-")
    assert events[0]["changes"] == {"paths": ["customer"], "via": "get"}
    assert [e["changes"]["via"] for e in events] == ["get", "list"]
    # reading the trail (which holds the data as created) was itself a read
    again = acme.api.get(f"{RECORDS}/{c['id']}/history").json
    assert [e["changes"]["via"] for e in again if e["action"] == "personal_data_read"] == [
        "get", "list", "history"]


def test_finer_personal_paths_mask_only_those_fields(app_config, factory):
    from marshmallow import Schema, fields

    from servq.core import create_app
    from servq.core.plugins import RecordKind, hookimpl

    class LeadData(Schema):
        company = fields.String()
        contact = fields.Dict()

    class LeadPlugin:
        @hookimpl
        def register_record_kinds(self):
            return [RecordKind(name="leads.lead", schema=LeadData, personal=("contact.phone",))]

    app = create_app({**app_config, "EXTRA_PLUGINS": [("leads", LeadPlugin())]})
    from tests.factories import Factory

    tenant = Factory(app, app.test_client()).tenant("initech")
    tenant.enable("leads")
    body = {"kind": "leads.lead", "data": {"company": "Initech", "contact": {"name": "Bill", "phone": "5551234567"}}}
    rid = tenant.api.post(RECORDS, json=body).json["id"]
    seen = tenant.as_role("agent").get(f"{RECORDS}/{rid}").json["data"]
    assert seen == {"company": "Initech", "contact": {"name": "Bill", "phone": "55******67"}}
    app.extensions["servq.engine"].dispose()


def test_complaints_of_another_tenant_are_invisible(acme, globex):
    c = file(acme)
    assert globex.api.get(f"{RECORDS}/{c['id']}").status_code == 404
    assert globex.api.get(RECORDS, query_string={"kind": "complaint"}).json == []
    assert reads(acme, c["id"]) == 0 and reads(globex) == 0
