"""``POST /api/v1/records/batch``: up to 1,000 records, validated and scored like
``POST /records``, all or nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

import tests.sample_plugin as sample
from servq.core.models import Action, AuditEvent, Evaluation, Record, Site
from servq.core.standards import change_standard

BATCH = "/api/v1/records/batch"
NOTE = "sample.note"


# Every test here runs with tests/sample_plugin.py loaded as ``sample`` (conftest.py).
pytestmark = pytest.mark.sample_plugin


def note(text="Guest asked for towels", **data):
    return {"kind": NOTE, "occurred_at": "2026-03-02T09:00:00+08:00",
            "data": {"text": text, "priority": 2, **data}}


def observation(title="Wet floor", *, data=None, **fields):
    return {"kind": "observation", "data": {"title": title, **(data or {})}, **fields}


def count(tenant, model, *where) -> int:
    with tenant.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def nothing_written(tenant) -> bool:
    return (all(count(tenant, model) == 0 for model in (Record, Evaluation, Action))
            and count(tenant, AuditEvent, AuditEvent.entity == "records") == 0)


def test_batch_creates_scores_and_audits_every_record(acme):
    acme.enable("sample")
    with acme.session() as s:
        site = Site(code="lobby", name="Lobby")
        s.add(site)
        s.commit()
    body = {"records": [note(reviewed=True, priority=4), note("不知道"),
                        observation(site="lobby"), observation("Lamp", site_id=str(site.id))]}
    r = acme.api.post(BATCH, json=body)
    assert r.status_code == 201, r.json
    created = r.json["records"]
    assert [c["kind"] for c in created] == [NOTE, NOTE, "observation", "observation"]
    assert [c["data"].get("text") or c["data"]["title"] for c in created] == \
        ["Guest asked for towels", "不知道", "Wet floor", "Lamp"]
    assert created[2]["site_id"] == created[3]["site_id"] == str(site.id)
    assert created[2]["data"] == {"title": "Wet floor", "description": "", "severity": "low", "tags": []}
    # each is a record like any other: readable, with its history and its evaluation
    for record in created:
        assert acme.api.get(f"/api/v1/records/{record['id']}").json == record
        history = acme.api.get(f"/api/v1/records/{record['id']}/history").json
        assert [(h["action"], h["actor"]["name"]) for h in history] == [("created", "owner")]
    first = acme.api.get(f"/api/v1/records/{created[0]['id']}/evaluation").json
    assert (first["standard_code"], first["percent"], first["passed"]) == ("sample.note_quality", 100, True)
    rude = acme.api.get(f"/api/v1/records/{created[1]['id']}/evaluation").json
    assert (rude["percent"], rude["failed_critical"]) == (0, ["polite"])
    with acme.session() as s:
        assert [(str(a.record_id), a.item_code) for a in s.scalars(select(Action))] == \
            [(created[1]["id"], "polite")]
    assert (count(acme, Record), count(acme, Evaluation)) == (4, 2)
    assert len(sample.calls("record_created")) == 4


def test_bad_records_are_named_by_index_and_field_and_nothing_is_written(acme):
    acme.enable("sample")
    body = {"records": [note(),
                        {**note(), "occurred_at": "2026-03-02T09:00:00"},   # naive
                        note(),
                        {"kind": NOTE, "data": {"priority": 2}},             # no text
                        observation(site="attic", colour="red"),
                        {"kind": "hotel.room", "data": {}},
                        "not an object"]}
    r = acme.api.post(BATCH, json=body)
    assert r.status_code == 422, r.json
    assert r.json["message"] == "5 of 7 records are not valid; nothing was created."
    errors = r.json["errors"]["json"]["records"]
    assert set(errors) == {"1", "3", "4", "5", "6"}
    assert errors["1"] == {"occurred_at": ["Not a valid aware datetime."]}
    assert errors["3"] == {"data": {"text": ["Missing data for required field."]}}
    assert errors["4"] == {"colour": ["Unknown field."], "site": ["No site with code 'attic' in this tenant."]}
    assert "Unknown record kind 'hotel.room'" in errors["5"]["kind"][0]
    assert errors["6"] == {"_schema": ["A record is a JSON object."]}
    assert nothing_written(acme) and sample.calls("record_created") == []


def test_a_value_the_standard_cannot_judge_is_a_422_naming_index_and_field(app, acme):
    with app.app_context(), acme.session() as s:
        change_standard(s, "acme.observations", document={
            "title": {"en": "Observations", "zh": "观察"}, "applies_to": ["observation"],
            "method": "weighted", "pass_mark": 50,
            "items": [{"code": "verdict", "title": {"en": "Verdict", "zh": "结论"},
                       "dimension": "reliability", "rule": {"type": "check", "field": "description"}}]})
        s.commit()
    for records, bad in (([observation(data={"description": "pass"}), observation(data={"description": "maybe"})], "1"),
                         ([observation(data={"description": "maybe"})], "0")):
        r = acme.api.post(BATCH, json={"records": records})
        assert r.status_code == 422, r.json
        assert list(r.json["errors"]["json"]["records"]) == [bad]
        assert "a check is answered" in r.json["errors"]["json"]["records"][bad]["data"]["description"][0]
        assert nothing_written(acme)
    r = acme.api.post(BATCH, json={"records": [observation(data={"description": "pass"})]})
    assert r.status_code == 201
    assert acme.api.get(f"/api/v1/records/{r.json['records'][0]['id']}/evaluation").json["percent"] == 100


def test_more_than_1000_records_or_none_or_no_list_is_a_422(acme):
    r = acme.api.post(BATCH, json={"records": [observation()] * 1001})
    assert r.status_code == 422
    assert "records" in r.json["errors"]["json"] and "1000" in str(r.json["errors"]["json"]["records"])
    for body in ({"records": []}, {"records": {"0": observation()}}, {}, {"records": [], "extra": 1}):
        assert acme.api.post(BATCH, json=body).status_code == 422, body
    assert nothing_written(acme)
    r = acme.api.post(BATCH, json={"records": [observation(f"n{n}") for n in range(1000)]})
    assert r.status_code == 201 and len(r.json["records"]) == 1000
    assert count(acme, Record) == 1000 and count(acme, AuditEvent) == 1000


def test_viewer_may_not_create_a_batch(acme):
    viewer = acme.as_role("viewer")
    r = viewer.post(BATCH, json={"records": [observation()]})
    assert r.status_code == 403
    assert nothing_written(acme)


@pytest.mark.cross_tenant("POST /api/v1/records/batch")
def test_another_tenants_site_is_a_422_and_created_records_stay_in_the_tenant(acme, globex):
    with globex.session() as s:
        theirs = Site(code="hq", name="Globex HQ")
        s.add(theirs)
        s.commit()
    r = acme.api.post(BATCH, json={"records": [observation(), observation(site_id=str(theirs.id)),
                                               observation(site="hq")]})
    assert r.status_code == 422
    assert r.json["errors"]["json"]["records"] == {
        "1": {"site_id": ["No such site in this tenant."]},
        "2": {"site": ["No site with code 'hq' in this tenant."]}}
    assert nothing_written(acme) and nothing_written(globex)

    r = acme.api.post(BATCH, json={"records": [observation("acme only")]})
    assert r.status_code == 201
    record_id = r.json["records"][0]["id"]
    assert globex.api.get(f"/api/v1/records/{record_id}").status_code == 404
    assert globex.api.get("/api/v1/records").json == []
    assert globex.api.post(BATCH, json={"records": [observation()]}).status_code == 201
    assert [rec["data"]["title"] for rec in acme.api.get("/api/v1/records").json] == ["acme only"]


def test_a_disabled_plugins_kind_is_refused(acme):
    r = acme.api.post(BATCH, json={"records": [note()]})
    assert r.status_code == 422
    assert "Unknown record kind 'sample.note'" in r.json["errors"]["json"]["records"]["0"]["kind"][0]


def _without(mapping, *keys):
    return {k: v for k, v in mapping.items() if k not in keys}


def test_a_batch_stores_exactly_what_post_records_stores(acme):
    """Same payloads, one by one and as a batch: the same records, audit changes,
    evaluations, corrective actions and deadline clocks (workflow kinds included)."""
    from servq.core.models import Clock

    acme.enable("sample")
    payloads = [note("不知道", reviewed=True),
                observation(data={"tags": ["a", "b"]}, occurred_at="2026-03-02T10:00:00+00:00"),
                {"kind": "complaint", "occurred_at": "2026-03-02T09:00:00+08:00",
                 "data": {"channel": "phone", "description": "Room not cleaned"}}]
    one_by_one = []
    for payload in payloads:
        r = acme.api.post("/api/v1/records", json=payload)
        assert r.status_code == 201, r.json
        one_by_one.append(r.json)
    r = acme.api.post(BATCH, json={"records": payloads})
    assert r.status_code == 201, r.json
    batch = r.json["records"]
    volatile = ("id", "created_at", "updated_at")
    for single, bulk in zip(one_by_one, batch):
        assert _without(single, *volatile) == _without(bulk, *volatile)
    assert batch[2]["timestamps"]["received_at"] == "2026-03-02T01:00:00+00:00"
    with acme.session() as s:
        by_record = {}
        for model, drop in ((Evaluation, ("id", "record_id", "evaluated_at", "tenant_id")),
                            (AuditEvent, ("id", "entity_id", "at", "tenant_id")),
                            (Action, ("id", "record_id", "source_key", "description", "created_at", "updated_at",
                                      "due_at", "tenant_id")),
                            (Clock, ("id", "record_id", "tenant_id", "updated_at", "next_check_at"))):
            column = model.entity_id if model is AuditEvent else model.record_id
            for row in s.scalars(select(model).where(column.isnot(None))):
                key = str(row.entity_id if model is AuditEvent else row.record_id)
                values = {c.key: getattr(row, c.key) for c in model.__table__.columns if c.key not in drop}
                by_record.setdefault(key, {}).setdefault(model.__name__, []).append(values)
    for single, bulk in zip(one_by_one, batch):
        one, many = by_record.get(single["id"]), by_record.get(bulk["id"])
        assert one == many, [(k, n, x[n], y[n]) for k in one for x, y in zip(one[k], many.get(k, []))
                             for n in x if x[n] != y.get(n)]
    assert set(by_record[batch[2]["id"]]) >= {"Evaluation", "AuditEvent", "Clock"}
    assert set(by_record[batch[0]["id"]]) >= {"Evaluation", "AuditEvent", "Action"}
