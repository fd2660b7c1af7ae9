"""Guarded workflow transitions through HTTP (``Transition(requires=...)``: conditions on
the record's ``data``, ``core/plugins/conditions.py``): a refused action is a 409 naming
the failing fields and changes nothing (status, stamps, audit, clocks); once the data is
filled it passes; ``GET /kinds`` and ``GET /records/<id>/transitions`` show the guards;
a malformed guard is refused when the kind is declared.

The kind is the test-only plugin ``gated`` (``tests/gated_plugin.py``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from marshmallow import Schema, fields

from servq.core import create_app
from servq.core.plugins import RecordKind, Transition, Workflow
from servq.core.plugins.manager import PluginError
from tests.gated_plugin import KIND, GatedPlugin

RECORDS = "/api/v1/records"
UTC = timezone.utc
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai


@pytest.fixture
def app_config(app_config):
    app_config["EXTRA_PLUGINS"] = [("gated", GatedPlugin())]
    return app_config


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def new_job(tenant, **data):
    tenant.enable("gated")
    r = tenant.api.post(RECORDS, json={"kind": KIND, "occurred_at": (NOW - timedelta(hours=1)).isoformat(),
                                       "data": {"title": "Boiler service", **data}})
    assert r.status_code == 201, r.json
    return r.json


def act(api, record_id, **body):
    etag = api.get(f"{RECORDS}/{record_id}").headers["ETag"]
    return api.post(f"{RECORDS}/{record_id}/transitions", json=body, headers={"If-Match": etag})


def patch_data(api, record_id, data):
    etag = api.get(f"{RECORDS}/{record_id}").headers["ETag"]
    r = api.patch(f"{RECORDS}/{record_id}", json={"data": data}, headers={"If-Match": etag})
    assert r.status_code == 200, r.json
    return r.json


def snapshot(api, record_id):
    """What a refused transition must leave as it was."""
    record = api.get(f"{RECORDS}/{record_id}")
    return {"record": record.json, "etag": record.headers["ETag"],
            "history": api.get(f"{RECORDS}/{record_id}/history").json,
            "clocks": api.get(f"{RECORDS}/{record_id}/clocks").json}


def deadline_standard(tenant):
    """A deadline on the job (opened → closed within 8h) so that it has a clock."""
    document = {"code": "acme.jobs", "version": 1, "title": {"en": "Jobs", "zh": "工单"},
                "applies_to": [KIND], "method": "weighted", "pass_mark": 100,
                "items": [{"code": "closed_in_time", "title": {"en": "Closed in time", "zh": "按时关闭"},
                           "dimension": "responsiveness",
                           "rule": {"type": "deadline", "start": "timestamps.opened_at",
                                    "stop": "timestamps.closed_at", "limit": "8h"}}]}
    r = tenant.api.put("/api/v1/standards/acme.jobs", json={"document": document})
    assert r.status_code in (200, 201), r.json


def test_a_refused_guard_is_409_naming_the_field_and_changes_nothing(acme, clock):
    deadline_standard(acme)
    job = new_job(acme)
    assert act(acme.api, job["id"], action="start").status_code == 200
    clock.shift(timedelta(minutes=30))
    before = snapshot(acme.api, job["id"])
    assert len(before["clocks"]) == 1 and before["clocks"][0]["state"] == "running"

    r = act(acme.api, job["id"], action="submit", note="done")
    assert r.status_code == 409, r.json
    assert "data.service_sheet.signed" in r.json["message"]
    assert r.json["unmet"] == [{"field": "data.service_sheet.signed", "requires": [True],
                                "message": "data.service_sheet.signed must be true"}]
    assert "submit" in r.json["allowed"]
    assert snapshot(acme.api, job["id"]) == before

    # A signed sheet that says false is no better; true passes.
    patch_data(acme.api, job["id"], {"title": "Boiler service", "service_sheet": {"signed": False}})
    assert act(acme.api, job["id"], action="submit").status_code == 409
    patch_data(acme.api, job["id"], {"title": "Boiler service", "service_sheet": {"signed": True}})
    r = act(acme.api, job["id"], action="submit")
    assert r.status_code == 200, r.json
    assert r.json["status"] == "review" and "submitted_at" in r.json["timestamps"]


def test_a_guard_on_a_waiting_state_leaves_the_clocks_running_until_it_passes(acme, clock):
    deadline_standard(acme)
    job = new_job(acme, service_sheet={"signed": True})
    assert act(acme.api, job["id"], action="start").status_code == 200
    before = snapshot(acme.api, job["id"])
    r = act(acme.api, job["id"], action="waive", reason="customer cancelled")
    assert r.status_code == 409
    assert [u["field"] for u in r.json["unmet"]] == ["data.waiver.reason", "data.waiver.approver_id"]
    assert "data.waiver.reason is missing" in r.json["message"]
    assert snapshot(acme.api, job["id"]) == before
    # An empty text is not there either.
    patch_data(acme.api, job["id"], {"title": "Boiler service", "waiver": {"reason": "", "approver_id": "u-7"}})
    r = act(acme.api, job["id"], action="waive")
    assert r.status_code == 409 and [u["field"] for u in r.json["unmet"]] == ["data.waiver.reason"]
    patch_data(acme.api, job["id"], {"title": "Boiler service",
                                     "waiver": {"reason": "customer cancelled", "approver_id": "u-7"}})
    r = act(acme.api, job["id"], action="waive")
    assert r.status_code == 200 and r.json["status"] == "closed"
    assert acme.api.get(f"{RECORDS}/{job['id']}/clocks").json[0]["state"] == "met"


def test_not_and_one_of_guards(acme, clock):
    job = new_job(acme, service_sheet={"signed": True})
    assert act(acme.api, job["id"], action="start").status_code == 200
    assert act(acme.api, job["id"], action="submit").status_code == 200
    data = {"title": "Boiler service", "service_sheet": {"signed": True}}
    r = act(acme.api, job["id"], action="close")
    assert r.status_code == 409
    assert [u["field"] for u in r.json["unmet"]] == ["data.satisfied"]  # a missing result is not 'rejected'
    patch_data(acme.api, job["id"], {**data, "satisfied": True, "result": "rejected"})
    r = act(acme.api, job["id"], action="close")
    assert r.status_code == 409 and r.json["unmet"] == [{
        "field": "data.result", "requires": {"not": ["rejected"]},
        "message": "data.result must not be 'rejected'"}]
    patch_data(acme.api, job["id"], {**data, "satisfied": True, "result": "accepted"})
    assert act(acme.api, job["id"], action="close").json["status"] == "closed"


def test_the_listing_shows_each_guard_and_whether_it_holds_now(acme, clock):
    job = new_job(acme)
    assert act(acme.api, job["id"], action="start").status_code == 200
    listed = {a["action"]: a for a in acme.api.get(f"{RECORDS}/{job['id']}/transitions").json["actions"]}
    assert set(listed) == {"hold", "submit", "waive"}
    assert listed["hold"]["requires"] == {} and listed["hold"]["satisfied"] is True
    assert listed["submit"]["requires"] == {"service_sheet.signed": [True]}
    assert listed["submit"]["satisfied"] is False
    assert listed["submit"]["unmet"][0]["field"] == "data.service_sheet.signed"
    patch_data(acme.api, job["id"], {"title": "Boiler service", "service_sheet": {"signed": True}})
    listed = {a["action"]: a for a in acme.api.get(f"{RECORDS}/{job['id']}/transitions").json["actions"]}
    assert listed["submit"]["satisfied"] is True and listed["submit"]["unmet"] == []


def test_kinds_show_the_guards_and_the_stall_rule(acme):
    acme.enable("gated")
    kind = acme.api.get(f"/api/v1/kinds/{KIND}").json
    flow = kind["workflow"]
    by_action = {t["action"]: t for t in flow["transitions"]}
    assert by_action["submit"]["requires"] == {"service_sheet.signed": [True]}
    assert by_action["waive"]["requires"] == {"waiver.reason": {"present": True},
                                              "waiver.approver_id": {"present": True}}
    assert by_action["start"]["requires"] == {} and by_action["start"]["sources"] == ["open"]
    assert flow["final"] == ["closed"] and flow["waiting"] == ["on_hold"]
    assert flow["stalled"] == {"after": {"open": "4h", "working": "1 working day", "review": "4h"},
                               "notify": ["manager"], "action": True}
    observation = acme.api.get("/api/v1/kinds/observation").json
    assert observation["workflow"] is None


def test_another_tenants_record_cannot_be_acted_on(acme, globex, clock):
    job = new_job(acme, service_sheet={"signed": True})
    globex.enable("gated")
    url = f"{RECORDS}/{job['id']}/transitions"
    assert globex.api.get(url).status_code == 404
    etag = acme.api.get(f"{RECORDS}/{job['id']}").headers["ETag"]
    assert globex.api.post(url, json={"action": "start"}, headers={"If-Match": etag}).status_code == 404
    assert acme.api.get(f"{RECORDS}/{job['id']}").json["status"] == "open"


class _Data(Schema):
    x = fields.String()


@pytest.mark.parametrize("requires, message", [
    ({}, "non-empty mapping"),
    ({"a b": [True]}, "not a field of data"),
    ({"signed": True}, "signed: give a non-empty list"),
    ({"signed": []}, "signed: give a non-empty list"),
    ({"signed": [None]}, "texts, numbers or true/false"),
    ({"signed": {"present": "yes"}}, "present is true or false"),
    ({"signed": {"equals": 1}}, "tests are present, not"),
    ({"result": {"not": "rejected"}}, "not needs a non-empty list"),
])
def test_a_malformed_guard_is_refused_when_the_kind_is_declared(requires, message):
    with pytest.raises(ValueError) as caught:
        RecordKind(name="x.y", schema=_Data, statuses=("a", "b"), workflow=Workflow(
            transitions=(Transition("go", ("a",), "b", requires=requires),)))
    assert "action 'go': requires" in str(caught.value) and message in str(caught.value)


@pytest.mark.parametrize("workflow, message", [
    (dict(stalled_after={"b": "4h"}), "final state 'b'"),
    (dict(stalled_after={"zz": "4h"}), "unknown state 'zz'"),
    (dict(stalled_after=""), "stalled_after is empty"),
    (dict(stalled_after=4), "stalled_after is a limit"),
    (dict(stalled_notify=("manager",)), "need stalled_after"),
])
def test_a_malformed_stall_rule_is_refused_when_the_kind_is_declared(workflow, message):
    with pytest.raises(ValueError) as caught:
        RecordKind(name="x.y", schema=_Data, statuses=("a", "b"), workflow=Workflow(
            transitions=(Transition("go", ("a",), "b"),), final=("b",), **workflow))
    assert message in str(caught.value)


@pytest.mark.parametrize("workflow, message", [
    (dict(stalled_after="three days"), "Cannot read the limit 'three days'"),
    (dict(stalled_after="4h", stalled_notify=("boss",)), "unknown roles ['boss']"),
])
def test_an_unreadable_stall_limit_or_role_stops_the_app(app_config, workflow, message):
    class Plugin:
        from servq.core.plugins import hookimpl

        @hookimpl
        def register_record_kinds(self):
            return [RecordKind(name="bad.kind", schema=_Data, statuses=("a", "b"), workflow=Workflow(
                transitions=(Transition("go", ("a",), "b"),), final=("b",), **workflow))]

    app_config["EXTRA_PLUGINS"] = [("bad", Plugin())]
    with pytest.raises(PluginError) as caught:
        create_app(app_config)
    assert "record kind 'bad.kind'" in str(caught.value) and message in str(caught.value)
