"""Calibration sessions through HTTP: blind reviews of the same records against one pinned
standard version, agreement per item, deviations and IRR checked against a hand
computation, and a proposed change previewed on the last 30 days."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import time_machine
from sqlalchemy import func, select

from servq.core.models import Action, Evaluation, Record, User
from tests.factories import ApiClient
from tests.test_evaluations import put_standard

SESSIONS = "/api/v1/calibration-sessions"
RECORDS = "/api/v1/records"
CODE = "hq.calls_qa"
NOW = datetime(2026, 3, 20, 2, 0, tzinfo=timezone.utc)
ITEMS = ("greet", "verify", "solve", "close")
QA = {
    "title": {"en": "Call QA", "zh": "通话质检"}, "applies_to": ["inspection"],
    "method": "weighted", "pass_mark": 80,
    "items": [{"code": code, "title": {"en": code, "zh": code}, "dimension": "assurance",
               "rule": {"type": "check"}} for code in ITEMS],
}


def answers(*failed):
    return {code: {"outcome": "fail" if code in failed else "pass"} for code in ITEMS}


def _member(tenant, role):
    email = tenant.add_user(role)
    with tenant.session() as s:
        uid = str(s.scalar(select(User.id).where(User.email == email)))
    return uid, ApiClient(tenant.factory.client, tenant.factory.token(tenant.id, email))


@pytest.fixture
def calib(acme):
    with time_machine.travel(NOW, tick=False):
        put_standard(acme, CODE, document=QA)
        subjects = [acme.api.post(RECORDS, json={"kind": "observation", "occurred_at": "2026-03-19T09:00:00+08:00",
                                                 "data": {"title": f"Call {n}"}}).json["id"] for n in (1, 2, 3)]
        people = {name: _member(acme, role) for name, role in
                  (("expert", "manager"), ("a", "inspector"), ("b", "inspector"))}
        r = acme.api.post(SESSIONS, json={
            "title": "March calls", "standard_code": CODE, "subject_record_ids": subjects,
            "participant_ids": [people["a"][0], people["b"][0]], "expert_id": people["expert"][0]})
        assert r.status_code == 201, r.json
    return {"session": r.json, "subjects": subjects, "people": people}


def review(client, session, subject, body):
    return client.put(f"{SESSIONS}/{session['id']}/reviews/{subject}", json={"answers": body})


def test_a_designed_session_matches_the_hand_computation(acme, calib):
    session, (s1, s2, s3), people = calib["session"], calib["subjects"], calib["people"]
    assert session["standard_version"] == 1 and session["status"] == "open" and session["blind"] is True
    counts_before = _counts(acme)
    plan = {  # the expert: 100, 75, 50
        "expert": {s1: answers(), s2: answers("greet"), s3: answers("greet", "verify")},
        "a": {s1: answers(), s2: answers("greet"), s3: answers("greet", "verify")},          # 100, 75, 50
        "b": {s1: answers(), s2: answers("greet", "solve"), s3: answers("greet", "verify", "solve")},  # 100, 50, 25
    }
    with time_machine.travel(NOW, tick=False):
        for name in ("a", "b"):
            for subject, body in plan[name].items():
                r = review(people[name][1], session, subject, body)
                assert r.status_code == 200, r.json
        # Blind: nothing shows until every review is in; each sees only their own.
        assert acme.api.get(f"{SESSIONS}/{session['id']}/results").status_code == 409
        mine = people["b"][1].get(f"{SESSIONS}/{session['id']}/reviews").json
        assert {r["participant_id"] for r in mine} == {people["b"][0]}
        for subject, body in plan["expert"].items():
            assert review(people["expert"][1], session, subject, body).status_code == 200
    assert acme.api.get(f"{SESSIONS}/{session['id']}").json["status"] == "review"
    r = acme.api.get(f"{SESSIONS}/{session['id']}/results")
    assert r.status_code == 200, r.json
    figures = r.json
    # Subjects within ±10 points of the expert: only s1 (b is 25 off on s2 and s3).
    assert figures["irr"] == 33.3
    assert [s["within_tolerance"] for s in figures["subjects"]] == [True, False, False]
    assert [s["reference_percent"] for s in figures["subjects"]] == [100.0, 75.0, 50.0]
    deviation = {p["participant_id"]: p["mean_deviation"] for p in figures["participants"]}
    assert deviation == {people["a"][0]: 0.0, people["b"][0]: 16.7}  # b: (0 + 25 + 25) / 3
    agreement = {i["item"]: i["agreement"] for i in figures["items"]}
    assert agreement == {"greet": 100.0, "verify": 100.0, "solve": 66.7, "close": 100.0}  # solve: 4 of 6
    # Calibration reviews are no records, evaluations or actions: they count nowhere.
    assert _counts(acme) == counts_before
    # Reviews are closed now.
    with time_machine.travel(NOW, tick=False):
        assert review(people["a"][1], session, s1, answers()).status_code == 409
        etag = acme.api.get(f"{SESSIONS}/{session['id']}").headers["ETag"]
        r = acme.api.post(f"{SESSIONS}/{session['id']}/close", headers={"If-Match": etag},
                          json={"decisions": [{"item": "solve", "note": "Solved = the customer confirms"}]})
        assert r.status_code == 200 and r.json["status"] == "closed"


def _counts(tenant):
    with tenant.session() as s:
        return [s.scalar(select(func.count()).select_from(m)) for m in (Record, Evaluation, Action)]


def test_without_an_expert_the_consensus_is_the_reference(acme, calib):
    subjects, people = calib["subjects"], calib["people"]
    with time_machine.travel(NOW, tick=False):
        r = acme.api.post(SESSIONS, json={"title": "Peers", "standard_code": CODE, "blind": False,
                                          "subject_record_ids": subjects[:1],
                                          "participant_ids": [people["a"][0], people["b"][0]]})
        session = r.json
        review(people["a"][1], session, subjects[0], answers())              # 100
        review(people["b"][1], session, subjects[0], answers("greet"))       # 75
    figures = acme.api.get(f"{SESSIONS}/{session['id']}/results").json
    subject = figures["subjects"][0]
    assert subject["reference"] == "consensus" and subject["reference_percent"] == 87.5
    assert figures["irr"] == 0.0  # each is 12.5 points off the mean
    # greet: pass vs fail is a tie, so no consensus: it agrees with no one.
    assert {i["item"]: i["agreement"] for i in figures["items"]}["greet"] == 0.0


def test_who_sees_and_does_what(acme, globex, calib):
    session, subjects, people = calib["session"], calib["subjects"], calib["people"]
    agent = acme.as_role("agent")
    assert agent.get(f"{SESSIONS}/{session['id']}").status_code == 404
    assert agent.get(SESSIONS).json == []
    with time_machine.travel(NOW, tick=False):
        outsider = acme.as_role("inspector")
        assert review(outsider, session, subjects[0], answers()).status_code in (403, 404)
        r = review(people["a"][1], session, subjects[0], {"greet": {"outcome": "pass"}})
        assert r.status_code == 422 and "verify" in r.json["errors"]["json"]["answers"]
        # A review is changed with If-Match only (428 without, 412 when stale).
        first = review(people["a"][1], session, subjects[0], answers())
        assert first.status_code == 200 and first.headers["ETag"]
        assert review(people["a"][1], session, subjects[0], answers("greet")).status_code == 428
        url = f"{SESSIONS}/{session['id']}/reviews/{subjects[0]}"
        r = people["a"][1].put(url, json={"answers": answers("greet")}, headers={"If-Match": first.headers["ETag"]})
        assert r.status_code == 200 and r.json["percent"] == 75.0
        r = people["a"][1].put(url, json={"answers": answers()}, headers={"If-Match": first.headers["ETag"]})
        assert r.status_code == 412
        r = acme.api.post(SESSIONS, json={"title": "x", "standard_code": "hq.none",
                                          "subject_record_ids": subjects, "participant_ids": [people["a"][0]]})
        assert r.status_code == 422
        assert people["a"][1].post(SESSIONS, json={"title": "x"}).status_code == 403


@pytest.mark.cross_tenant("GET /api/v1/calibration-sessions", "POST /api/v1/calibration-sessions",
                          "GET /api/v1/calibration-sessions/<uuid:session_id>",
                          "GET /api/v1/calibration-sessions/<uuid:session_id>/reviews",
                          "PUT /api/v1/calibration-sessions/<uuid:session_id>/reviews/<uuid:record_id>",
                          "GET /api/v1/calibration-sessions/<uuid:session_id>/results",
                          "POST /api/v1/calibration-sessions/<uuid:session_id>/stop",
                          "POST /api/v1/calibration-sessions/<uuid:session_id>/close",
                          "POST /api/v1/calibration-sessions/<uuid:session_id>/preview")
def test_another_tenants_sessions_are_invisible(acme, globex, calib):
    sid, subject = calib["session"]["id"], calib["subjects"][0]
    etag = acme.api.get(f"{SESSIONS}/{sid}").headers["ETag"]
    for method, url, body in (("get", f"{SESSIONS}/{sid}", None), ("get", f"{SESSIONS}/{sid}/reviews", None),
                              ("put", f"{SESSIONS}/{sid}/reviews/{subject}", {"answers": answers()}),
                              ("get", f"{SESSIONS}/{sid}/results", None),
                              ("post", f"{SESSIONS}/{sid}/stop", None), ("post", f"{SESSIONS}/{sid}/close", {}),
                              ("post", f"{SESSIONS}/{sid}/preview", {"document": QA})):
        kwargs = {"json": body} if body is not None else {}
        r = getattr(globex.api, method)(url, headers={"If-Match": etag}, **kwargs)
        assert r.status_code == 404, (method, url, r.status_code)
    assert globex.api.get(SESSIONS).json == []
    # A session over another tenant's records is refused: they do not exist here.
    r = globex.api.post(SESSIONS, json={"title": "x", "standard_code": CODE, "subject_record_ids": [subject],
                                        "participant_ids": [calib["people"]["a"][0], calib["people"]["b"][0]]})
    assert r.status_code == 422 and "subject_record_ids" in r.json["errors"]["json"]
    # The facilitator stops the reviews (If-Match required); results then show.
    assert acme.api.post(f"{SESSIONS}/{sid}/stop").status_code == 428
    r = acme.api.post(f"{SESSIONS}/{sid}/stop", headers={"If-Match": etag})
    assert r.status_code == 200 and r.json["status"] == "review"
    assert acme.api.get(f"{SESSIONS}/{sid}/results").status_code == 200


def test_a_proposed_change_is_previewed_on_the_last_30_days(acme, calib):
    with time_machine.travel(NOW, tick=False):
        for body in (answers("greet"), answers()):  # 75 % (fails the pass mark of 80), 100 %
            r = acme.api.post(RECORDS, json={"kind": "inspection", "occurred_at": "2026-03-10T09:00:00+08:00",
                                             "data": {"standard": CODE, "answers": body}})
            assert r.status_code == 201, r.json
        # Older than 30 days: left out.
        acme.api.post(RECORDS, json={"kind": "inspection", "occurred_at": "2026-02-01T09:00:00+08:00",
                                     "data": {"standard": CODE, "answers": answers("greet")}})
        sid = calib["session"]["id"]
        r = acme.api.post(f"{SESSIONS}/{sid}/preview", json={"document": {**QA, "pass_mark": 70}})
        assert r.status_code == 200, r.json
        preview = r.json
        assert preview["records"] == 2
        assert preview["mean_percent"] == [87.5, 87.5]
        assert preview["pass_rate"] == [50.0, 100.0]
        assert preview["flipped"] == 1 and preview["flips"][0]["passed"] == [False, True]
        r = acme.api.post(f"{SESSIONS}/{sid}/preview", json={"document": {**QA, "method": "bogus"}})
        assert r.status_code == 422
    # Nothing was written: the stored evaluations still fail the 75 % one.
    with acme.session() as s:
        assert sorted(p for p, in s.execute(select(Evaluation.passed).where(Evaluation.standard_code == CODE))) \
            == [False, False, True]
