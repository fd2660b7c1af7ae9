"""Owner data stays confidential (业户信息保密): masked for roles below manager in every
response, never in exports for them, and every clear read by an allowed role audited.

Core's generic mechanism (``RecordKind.personal``, ``core.personal``) proved for the
property kinds through HTTP.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from servq.core.models import AuditEvent

RECORDS = "/api/v1/records"
EXPORTS = "/api/v1/tenant/exports"
OWNER = {"name": "Zhang Wei", "phone": "13812345678"}
MASKED = {"name": "Z********", "phone": "138****5678"}


def report_repair(client, **extra):
    response = client.post(RECORDS, json={"kind": "property.work_order", "data": {
        "channel": "wechat", "unit": "5-1-0802", "category": "power", "priority": "urgent",
        "description": "No power in the whole flat", "owner": OWNER, **extra}})
    assert response.status_code == 201, response.json
    return response.json


def reads_of(estate, record_id) -> list[AuditEvent]:
    with estate.session() as session:
        return list(session.scalars(select(AuditEvent).where(
            AuditEvent.entity == "records", AuditEvent.entity_id == uuid.UUID(record_id),
            AuditEvent.action == "personal_data_read").order_by(AuditEvent.at, AuditEvent.id)))


def user_id(estate, role):
    from servq.core.models import User

    with estate.session() as session:
        return session.scalar(select(User.id).where(User.email == estate.emails[role]))


def test_roles_below_manager_see_the_owner_masked_and_leave_no_read(estate):
    created = report_repair(estate.agent)
    # The agent who took the call gets the record back masked, like everyone below manager.
    assert created["data"]["owner"] == MASKED
    record_id = created["id"]
    for role in ("viewer", "inspector", "agent"):
        client = estate.clients[role]
        one = client.get(f"{RECORDS}/{record_id}")
        assert one.status_code == 200 and one.json["data"]["owner"] == MASKED, role
        listed = client.get(RECORDS, query_string={"kind": "property.work_order"})
        assert [r["data"]["owner"] for r in listed.json] == [MASKED], role
        history = client.get(f"{RECORDS}/{record_id}/history")
        created_event = history.json[0]
        assert created_event["changes"]["data"][1]["owner"] == MASKED, role
        assert "13812345678" not in history.get_data(as_text=True)
        assert "Zhang Wei" not in listed.get_data(as_text=True) + one.get_data(as_text=True)
    # The rest of the data is in clear for them.
    assert estate.viewer.get(f"{RECORDS}/{record_id}").json["data"]["unit"] == "5-1-0802"
    assert reads_of(estate, record_id) == []   # masked reads reveal nothing: nothing to audit


def test_a_manager_sees_the_owner_and_each_read_is_audited(estate):
    record_id = report_repair(estate.agent)["id"]
    manager_id = user_id(estate, "manager")

    one = estate.manager.get(f"{RECORDS}/{record_id}")
    assert one.status_code == 200 and one.json["data"]["owner"] == OWNER
    reads = reads_of(estate, record_id)
    assert [(e.actor_user_id, e.changes) for e in reads] == [
        (manager_id, {"paths": ["owner"], "via": "get"})]

    listed = estate.manager.get(RECORDS, query_string={"kind": "property.work_order"})
    assert [r["data"]["owner"] for r in listed.json] == [OWNER]
    reads = reads_of(estate, record_id)
    assert len(reads) == 2 and reads[-1].actor_user_id == manager_id
    assert reads[-1].changes["via"] == "list"

    # The trail is readable through the API too.
    trail = estate.manager.get(f"{RECORDS}/{record_id}/history").json
    assert [e["action"] for e in trail].count("personal_data_read") >= 2
    assert {e["actor"]["id"] for e in trail if e["action"] == "personal_data_read"} == {str(manager_id)}


def test_a_work_order_without_owner_data_is_not_audited(estate):
    # A fault found on patrol has no owner: reading it reveals no personal data.
    response = estate.inspector.post(RECORDS, json={"kind": "property.work_order", "data": {
        "channel": "patrol", "unit": "Block 2 stairwell", "category": "lighting",
        "description": "Stairwell light out on floor 7"}})
    assert response.status_code == 201, response.json
    assert response.json["data"]["owner"] == {}
    assert estate.manager.get(f"{RECORDS}/{response.json['id']}").status_code == 200
    assert reads_of(estate, response.json["id"]) == []


def test_exports_never_reach_roles_below_manager_and_an_export_is_an_audited_read(app, estate):
    record_id = report_repair(estate.agent)["id"]
    for role in ("viewer", "inspector", "agent", "manager"):
        # A whole-tenant export is for admins only.
        assert estate.clients[role].post(EXPORTS).status_code == 403, role
    assert reads_of(estate, record_id) == []

    export = estate.api.post(EXPORTS)
    assert export.status_code == 202, export.json
    finished = exported(app, estate.api, export.json["id"])
    assert finished["status"] == "done", finished
    for role in ("viewer", "inspector", "agent"):
        assert estate.clients[role].get(f"{EXPORTS}/{export.json['id']}/file").status_code == 403, role
    document = estate.api.get(f"{EXPORTS}/{export.json['id']}/file").get_json()
    rows = [r for r in document["tables"]["records"] if r["kind"] == "property.work_order"]
    assert [r["data"]["owner"] for r in rows] == [OWNER]
    reads = reads_of(estate, record_id)
    owner_id = user_id_of_owner(estate)
    assert [(e.actor_user_id, e.changes) for e in reads] == [
        (owner_id, {"paths": ["owner"], "via": "export"})]


def test_owner_data_is_validated(estate):
    response = estate.agent.post(RECORDS, json={"kind": "property.work_order", "data": {
        "channel": "hotline", "unit": "1-1-0101", "category": "water", "description": "Leak",
        "owner": {"name": "Zhang Wei", "phone": "call me", "email": "z@example.com"}}})
    assert response.status_code == 422
    errors = response.json["errors"]["json"]["data"]["owner"]
    assert set(errors) == {"phone", "email"}


def user_id_of_owner(estate):
    from servq.core.models import User

    with estate.session() as session:
        return session.scalar(select(User.id).where(User.email == f"owner@{estate.slug}.test"))


def exported(app, client, export_id) -> dict:
    """The export once built: inline without Redis, by a burst worker with it."""
    from servq.core.jobs import make_worker

    if app.extensions["servq.queue"] is not None:
        make_worker(app).work(burst=True)
    return client.get(f"/api/v1/tenant/exports/{export_id}").json
