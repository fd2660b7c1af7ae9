"""Disputes of evaluations through HTTP: filed by the staff member whose record it is,
decided per item, appealed once; accepted items become overrides that every later
scoring (and a standard's rescore) honours."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import time_machine
from sqlalchemy import func, select

from servq.core.models import AuditEvent, Dispute, EvaluationOverride, OutboxEvent, User
from tests.factories import ApiClient
from tests.test_evaluations import put_standard
from tests.test_inspections import CODE, FRONT_DESK, GOOD

RECORDS = "/api/v1/records"
DISPUTES = "/api/v1/disputes"
# Monday 2 March 2026, Shanghai time; the tenant's calendar counts Mon-Fri.
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)


def _user_id(tenant, email) -> str:
    with tenant.session() as s:
        return str(s.scalar(select(User.id).where(User.email == email)))


@pytest.fixture
def shop(acme):
    """acme with the front-desk standard, an agent linked to staff W1, an inspector, and
    an inspection of W1's work by that inspector (failing 'uniform' and 'greeting')."""
    with time_machine.travel(MONDAY, tick=False):
        put_standard(acme, CODE, document=FRONT_DESK)
        agent_email = acme.add_user("agent")
        inspector_email = acme.add_user("inspector")
        client = acme.factory.client
        agent = ApiClient(client, acme.factory.token(acme.id, agent_email))
        inspector = ApiClient(client, acme.factory.token(acme.id, inspector_email))
        staff = acme.api.post("/api/v1/staff", json={
            "code": "W1", "name": "Wang Wei", "user_id": _user_id(acme, agent_email)}).json
        other = acme.api.post("/api/v1/staff", json={"code": "W2", "name": "Li Na"}).json
        answers = {**GOOD, "greeting": {"outcome": "fail"}, "wait": {"value": 9}}
        r = inspector.post(RECORDS, json={"kind": "inspection", "occurred_at": "2026-03-02T09:00:00+08:00",
                                          "staff_id": staff["id"],
                                          "data": {"standard": CODE, "answers": answers}})
        assert r.status_code == 201, r.json
        theirs = acme.api.post(RECORDS, json={"kind": "inspection", "occurred_at": "2026-03-02T09:00:00+08:00",
                                              "staff_id": other["id"],
                                              "data": {"standard": CODE, "answers": GOOD}}).json
    return {"agent": agent, "inspector": inspector, "record": r.json, "theirs": theirs,
            "inspector_id": _user_id(acme, inspector_email)}


def evaluation(tenant, record_id):
    return tenant.api.get(f"{RECORDS}/{record_id}/evaluation?standard={CODE}").json


def file(client, record_id, **body):
    payload = {"record_id": record_id, "standard_code": CODE, "type": "score",
               "reason": "The guest was greeted; the recording shows it.",
               "items": [{"item": "greeting", "proposed": {"outcome": "pass"},
                          "reason": "Greeted at 09:00:12 in the recording",
                          "evidence": ["https://recordings.example.com/1.mp3"]},
                         {"item": "wait", "proposed": {"outcome": "pass"},
                          "reason": "The wait was measured from the wrong moment"}], **body}
    return client.post(DISPUTES, json=payload)


def decide(client, dispute, **body):
    return client.post(f"{DISPUTES}/{dispute['id']}/decision", json=body,
                       headers={"If-Match": client.get(f"{DISPUTES}/{dispute['id']}").headers["ETag"]})


def test_a_dispute_accepted_on_one_item_changes_the_final_score_and_survives_a_rescore(acme, shop):
    record = shop["record"]
    before = evaluation(acme, record["id"])
    assert before["original_percent"] is None and before["disputed"] is False
    with time_machine.travel(datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc), tick=False):
        r = file(shop["agent"], record["id"])
        assert r.status_code == 201, r.json
        dispute = r.json
        assert dispute["status"] == "open" and dispute["level"] == 1
        assert dispute["arbitrator_id"] == shop["inspector_id"]  # the reviewer by default
        assert dispute["original_percent"] == before["percent"]
        assert r.headers["Location"].endswith(f"/disputes/{dispute['id']}")
        assert evaluation(acme, record["id"])["disputed"] is True
        # One open dispute per evaluation.
        assert file(shop["agent"], record["id"]).status_code == 409

        r = decide(shop["inspector"], dispute, result="partially_accepted", note="Greeting heard",
                   items=[{"item": "greeting", "accepted": True},
                          {"item": "wait", "accepted": False, "note": "Measured correctly"}])
        assert r.status_code == 200, r.json
        decided = r.json
    assert decided["status"] == "decided" and decided["result"] == "partially_accepted"
    after = evaluation(acme, record["id"])
    assert after["disputed"] is False
    assert after["original_percent"] == before["percent"]
    assert after["percent"] > before["percent"]
    assert decided["final_percent"] == after["percent"]
    greeting = next(i for i in after["items"] if i["code"] == "greeting")
    assert greeting["outcome"] == "pass"
    assert greeting["evidence"]["override"]["original"]["outcome"] == "fail"
    assert greeting["evidence"]["override"]["dispute_id"] == dispute["id"]
    assert next(i for i in after["items"] if i["code"] == "wait")["outcome"] == "fail"

    # A new version of the standard re-scores every record: the override stays.
    with time_machine.travel(datetime(2026, 3, 10, 2, 0, tzinfo=timezone.utc), tick=False):
        put_standard(acme, CODE, document={**FRONT_DESK, "pass_mark": 70})
        acme.api.post(f"{RECORDS}/{record['id']}/evaluate")
    again = evaluation(acme, record["id"])
    assert again["standard_version"] == 2
    assert next(i for i in again["items"] if i["code"] == "greeting")["outcome"] == "pass"
    assert again["percent"] == after["percent"] and again["original_percent"] == before["percent"]
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(EvaluationOverride)) == 1
        actions = [a for a, in s.execute(select(AuditEvent.action).where(AuditEvent.entity == "disputes"))]
        assert sorted(actions) == ["decided", "filed"]
        assert {e for e, in s.execute(select(OutboxEvent.type))} >= {"dispute.filed", "dispute.decided"}


def test_a_rejected_dispute_changes_nothing_and_can_be_appealed_once(acme, shop):
    record = shop["record"]
    before = evaluation(acme, record["id"])
    manager = acme.as_role("manager")
    with time_machine.travel(datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc), tick=False):
        dispute = file(shop["agent"], record["id"]).json
        r = decide(shop["inspector"], dispute, result="rejected", note="The recording shows no greeting")
        assert r.status_code == 200, r.json
        assert r.json["status"] == "decided" and r.json["appeal_by"] is not None
    after = evaluation(acme, record["id"])
    assert {k: after[k] for k in ("percent", "items", "original_percent")} == \
        {k: before[k] for k in ("percent", "items", "original_percent")}

    with time_machine.travel(datetime(2026, 3, 4, 2, 0, tzinfo=timezone.utc), tick=False):
        etag = shop["agent"].get(f"{DISPUTES}/{dispute['id']}").headers["ETag"]
        r = shop["agent"].post(f"{DISPUTES}/{dispute['id']}/appeal", json={"reason": "Please listen again"},
                               headers={"If-Match": etag})
        assert r.status_code == 200, r.json
        assert r.json["status"] == "appealed" and r.json["level"] == 2
        assert evaluation(acme, record["id"])["disputed"] is True
        # The first arbitrator does not decide the appeal.
        assert decide(shop["inspector"], dispute, result="accepted").status_code == 403
        r = decide(manager, dispute, result="accepted", note="Greeting audible at 0:12")
        assert r.status_code == 200, r.json
        assert r.json["status"] == "closed" and len(r.json["decisions"]) == 2
        etag = shop["agent"].get(f"{DISPUTES}/{dispute['id']}").headers["ETag"]
        r = shop["agent"].post(f"{DISPUTES}/{dispute['id']}/appeal", json={"reason": "again"},
                               headers={"If-Match": etag})
        assert r.status_code == 409
    final = evaluation(acme, record["id"])
    assert final["percent"] > before["percent"]


def test_who_may_dispute_what(acme, globex, shop):
    agent = shop["agent"]
    with time_machine.travel(datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc), tick=False):
        # Another person's evaluation: 404, nothing written.
        assert file(agent, shop["theirs"]["id"]).status_code == 404
        # Another tenant cannot see it at all.
        globex_agent = globex.as_role("manager")
        assert file(globex_agent, shop["record"]["id"]).status_code == 404
        # Items the evaluation lacks, no items, items on a whole dispute: 422.
        r = file(agent, shop["record"]["id"], items=[{"item": "nope", "proposed": {"outcome": "pass"},
                                                    "reason": "x"}])
        assert r.status_code == 422 and "items.0.item" in r.json["errors"]["json"]
        assert file(agent, shop["record"]["id"], items=[]).status_code == 422
        assert file(agent, shop["record"]["id"], type="wrong_subject").status_code == 422
        assert file(agent, shop["record"]["id"], reason="").status_code == 422
    # Past the window (3 working days after the record was entered: Thursday 5 March).
    with time_machine.travel(datetime(2026, 3, 6, 2, 0, tzinfo=timezone.utc), tick=False):
        r = file(agent, shop["record"]["id"])
        assert r.status_code == 422 and "window" in r.json["message"]
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(Dispute)) == 0


def test_mystery_inspections_are_disputable_only_once_revealed(acme, shop):
    with time_machine.travel(MONDAY, tick=False):
        staff_id = shop["record"]["staff_id"]
        mystery = acme.api.post(RECORDS, json={"kind": "inspection", "occurred_at": "2026-03-02T09:30:00+08:00",
                                               "staff_id": staff_id,
                                               "data": {"standard": CODE, "answers": GOOD,
                                                        "visibility": "mystery"}}).json
    with time_machine.travel(datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc), tick=False):
        assert file(shop["agent"], mystery["id"], items=[
            {"item": "uniform", "proposed": {"outcome": "fail"}, "reason": "x"}]).status_code == 404
        # Even a manager filing on the agent's behalf must reveal it first.
        manager = acme.as_role("manager")
        assert file(manager, mystery["id"], type="not_applicable", items=[]).status_code == 409
        etag = acme.api.get(f"{RECORDS}/{mystery['id']}").headers["ETag"]
        r = acme.api.patch(f"{RECORDS}/{mystery['id']}", json={"data": {**mystery["data"], "visibility": "open"}},
                           etag=etag)
        assert r.status_code == 200, r.json
        r = file(shop["agent"], mystery["id"], type="not_applicable", items=[])
        assert r.status_code == 201, r.json
        r = decide(manager, r.json, result="accepted")
        assert r.status_code == 200 and r.json["status"] == "closed"
    final = evaluation(acme, mystery["id"])
    assert final["percent"] is None and {i["outcome"] for i in final["items"]} <= {"na"}


@pytest.mark.cross_tenant("GET /api/v1/disputes", "POST /api/v1/disputes", "GET /api/v1/disputes/summary",
                          "GET /api/v1/disputes/<uuid:dispute_id>",
                          "POST /api/v1/disputes/<uuid:dispute_id>/decision",
                          "POST /api/v1/disputes/<uuid:dispute_id>/appeal",
                          "POST /api/v1/disputes/<uuid:dispute_id>/close",
                          "POST /api/v1/disputes/<uuid:dispute_id>/withdraw")
def test_disputes_of_another_tenant_are_invisible(acme, globex, shop):
    with time_machine.travel(datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc), tick=False):
        dispute = file(shop["agent"], shop["record"]["id"]).json
        etag = acme.api.get(f"{DISPUTES}/{dispute['id']}").headers["ETag"]
        assert globex.api.get(f"{DISPUTES}/{dispute['id']}").status_code == 404
        assert globex.api.get(DISPUTES).json == []
        # Filing against another tenant's record, or summing up its disputes: nothing seen.
        assert file(globex.api, shop["record"]["id"]).status_code == 404
        period = "since=2026-03-01T00:00:00Z&until=2026-04-01T00:00:00Z"
        assert globex.api.get(f"{DISPUTES}/summary?{period}").json == []
        assert len(acme.api.get(f"{DISPUTES}/summary?{period}").json) == 1
        for step, body in (("decision", {"result": "accepted"}), ("appeal", {"reason": "x"}),
                           ("close", None), ("withdraw", None)):
            r = globex.api.post(f"{DISPUTES}/{dispute['id']}/{step}", json=body, headers={"If-Match": etag})
            assert r.status_code == 404, step
        # Another agent of the same tenant does not see it either.
        assert acme.as_role("agent").get(f"{DISPUTES}/{dispute['id']}").status_code == 404
        # Steps need If-Match.
        assert shop["agent"].post(f"{DISPUTES}/{dispute['id']}/withdraw").status_code == 428
        r = shop["agent"].post(f"{DISPUTES}/{dispute['id']}/withdraw", headers={"If-Match": etag})
        assert r.status_code == 200 and r.json["status"] == "withdrawn"
    assert evaluation(acme, shop["record"]["id"])["disputed"] is False


def test_the_summary_gives_dispute_and_overturn_rates(acme, shop):
    with time_machine.travel(datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc), tick=False):
        dispute = file(shop["agent"], shop["record"]["id"]).json
        decide(shop["inspector"], dispute, result="partially_accepted",
               items=[{"item": "greeting", "accepted": True}, {"item": "wait", "accepted": False}])
    period = "since=2026-03-01T00:00:00Z&until=2026-04-01T00:00:00Z"
    manager = acme.as_role("manager")
    rows = manager.get(f"{DISPUTES}/summary?{period}").json
    assert rows == [{"standard": CODE, "evaluations": 2, "disputes": 1, "decided": 1, "overturned": 1,
                     "dispute_rate": 50.0, "overturn_rate": 100.0, "mean_hours_to_decide": 0.0}]
    items = manager.get(f"{DISPUTES}/summary?{period}&by=item").json
    assert [(r["item"], r["disputes"], r["overturned"]) for r in items] == [("greeting", 1, 1), ("wait", 1, 0)]
    reviewers = manager.get(f"{DISPUTES}/summary?{period}&by=reviewer").json
    assert reviewers[0]["reviewer"] == shop["inspector_id"] and reviewers[0]["overturn_rate"] == 100.0
    assert shop["agent"].get(f"{DISPUTES}/summary?{period}").status_code == 403
    assert manager.get(f"{DISPUTES}/summary?since=2026-03-01T00:00:00Z&until=2026-02-01T00:00:00Z").status_code == 422
