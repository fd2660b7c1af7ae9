"""Standards that apply to some records only: a deadline item's ``when`` (n.a. and no
clock for the records it leaves out) and a standard that ``replaces`` others for the
records it scores; and the audit of the personal data an export reads."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from servq.core.models import AuditEvent
from servq.core.scoring import StandardError, compile_standard, dump_standard, evaluate, parse_standard
from servq.core.scoring.registry import deadline_applies

UTC = timezone.utc
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
RECORDS = "/api/v1/records"
API = "/api/v1/standards"


def standard(when=None, **extra):
    rule = {"type": "deadline", "start": "occurred_at", "stop": "timestamps.done_at", "limit": "2h"}
    if when is not None:
        rule["when"] = when
    return {"code": "acme.jobs", "version": 1, "title": {"en": "Jobs", "zh": "工单"},
            "applies_to": ["observation"], "method": "weighted", "pass_mark": 100,
            "items": [{"code": "fast", "title": {"en": "Fast", "zh": "快"},
                       "dimension": "responsiveness", "rule": rule}], **extra}


def outcome(document, values, now=START + timedelta(hours=1)):
    compiled = compile_standard(parse_standard(document))
    return evaluate(compiled, values, now).items[0]


def test_when_makes_a_deadline_apply_only_to_the_records_it_names():
    document = standard({"severity": ["high", "critical"], "flags.night": [True]})
    urgent = {"occurred_at": START, "severity": "high", "flags": {"night": True}, "timestamps": {}}
    assert outcome(document, urgent).outcome == "pending"
    assert outcome(document, {**urgent, "severity": "low"}).outcome == "na"
    assert outcome(document, {**urgent, "severity": "low"}).evidence["applies"] is False
    assert outcome(document, {**urgent, "flags": {"night": 1}}).outcome == "na"   # 1 is not true
    assert outcome(document, {**urgent, "flags": {}}).outcome == "na"
    done = {**urgent, "timestamps": {"done_at": (START + timedelta(minutes=90)).isoformat()}}
    assert outcome(document, done).outcome == "pass"
    # Without `when` the item applies to every record, as before.
    assert outcome(standard(), {**urgent, "severity": "low"}).outcome == "pending"
    assert deadline_applies({}, {}) is True
    assert deadline_applies({"when": {"n": [2]}}, {"n": 2.0}) is True


@pytest.mark.parametrize("when", [{}, {"severity": []}, {"severity": "high"}, {"severity": [None]},
                                  {"severity": [["high"]]}, {"severity": [float("nan")]},
                                  {f"k{n}": ["x"] for n in range(21)}])
def test_a_bad_when_is_refused(when):
    with pytest.raises(StandardError) as caught:
        parse_standard(standard(when))
    assert "when" in str(caught.value.messages)


def test_when_and_replaces_survive_the_canonical_form():
    document = standard({"severity": ["high"]}, replaces=["core.complaint"])
    loaded = parse_standard(document)
    assert loaded.replaces == ("core.complaint",)
    dumped = dump_standard(loaded)
    assert dumped["replaces"] == ["core.complaint"]
    assert dumped["items"][0]["rule"]["when"] == {"severity": ["high"]}
    assert parse_standard(dumped) == loaded
    # An empty `replaces` is left out, so existing canonical documents do not change.
    assert "replaces" not in dump_standard(parse_standard(standard()))
    with pytest.raises(StandardError) as caught:
        parse_standard(standard(replaces=["acme.jobs"]))
    assert "replaces" in caught.value.messages


def observation(client, severity):
    response = client.post(RECORDS, json={"kind": "observation",
                                          "data": {"title": "Lobby floor wet", "severity": severity}})
    assert response.status_code == 201, response.json
    return response.json


def test_records_a_when_leaves_out_get_no_clock(acme):
    response = acme.api.put(f"{API}/acme.jobs", json={"document": standard({"severity": ["high"]})})
    assert response.status_code == 201, response.json
    high, low = observation(acme.api, "high"), observation(acme.api, "low")
    assert [c["item"] for c in acme.api.get(f"{RECORDS}/{high['id']}/clocks").json] == ["fast"]
    assert acme.api.get(f"{RECORDS}/{low['id']}/clocks").json == []
    scored = acme.api.get(f"{RECORDS}/{low['id']}/evaluation").json
    assert scored["items"][0]["outcome"] == "na"
    # The record changes so that the item no longer applies: its clock goes.
    etag = acme.api.get(f"{RECORDS}/{high['id']}").headers["ETag"]
    changed = acme.api.patch(f"{RECORDS}/{high['id']}", etag=etag,
                             json={"data": {"title": "Lobby floor wet", "severity": "low"}})
    assert changed.status_code == 200, changed.json
    assert acme.api.get(f"{RECORDS}/{high['id']}/clocks").json == []


def complaint(client):
    response = client.post(RECORDS, json={"kind": "complaint", "data": {
        "channel": "hotline", "description": "Nobody called back",
        "customer": {"name": "Wang Fang", "phone": "13700001234"}}})
    assert response.status_code == 201, response.json
    return response.json


def test_a_standard_in_force_replaces_the_standards_it_names(acme, globex):
    own = {**standard(replaces=["core.complaint"]), "code": "acme.complaints", "applies_to": ["complaint"]}
    own["items"][0]["rule"] = {"type": "deadline", "start": "timestamps.received_at",
                               "stop": "timestamps.acknowledged_at", "limit": "1h"}
    response = acme.api.put(f"{API}/acme.complaints", json={"document": own})
    assert response.status_code == 201, response.json
    ours, theirs = complaint(acme.api), complaint(globex.api)
    assert [e["standard_code"] for e in acme.api.get(f"{RECORDS}/{ours['id']}/evaluations").json] \
        == ["acme.complaints"]
    assert {c["standard_code"] for c in acme.api.get(f"{RECORDS}/{ours['id']}/clocks").json} \
        == {"acme.complaints"}
    assert [e["standard_code"] for e in globex.api.get(f"{RECORDS}/{theirs['id']}/evaluations").json] \
        == ["core.complaint"]
    # Taking `replaces` out brings core's standard back for new scorings.
    etag = acme.api.get(f"{API}/acme.complaints").headers["ETag"]
    own.pop("replaces")
    assert acme.api.put(f"{API}/acme.complaints", json={"document": own}, etag=etag).status_code == 200
    again = complaint(acme.api)
    assert [e["standard_code"] for e in acme.api.get(f"{RECORDS}/{again['id']}/evaluations").json] \
        == ["acme.complaints", "core.complaint"]


def test_an_export_is_an_audited_read_of_the_personal_data(app, acme):
    record = complaint(acme.api)
    plain = observation(acme.api, "low")
    export = acme.api.post("/api/v1/tenant/exports")
    assert export.status_code == 202, export.json
    finished = exported(app, acme.api, export.json["id"])
    assert finished["status"] == "done", finished
    with acme.session() as session:
        reads = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "personal_data_read")))
    assert [(str(e.entity_id), e.changes) for e in reads] == [
        (record["id"], {"paths": ["customer"], "via": "export"})]
    assert reads[0].actor_user_id is not None and str(reads[0].entity_id) != plain["id"]


def exported(app, client, export_id) -> dict:
    """The export once built: inline without Redis, by a burst worker with it."""
    from servq.core.jobs import make_worker

    if app.extensions["servq.queue"] is not None:
        make_worker(app).work(burst=True)
    return client.get(f"/api/v1/tenant/exports/{export_id}").json
