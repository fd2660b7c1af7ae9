"""Inspections through HTTP: answers scored against the standard they name, refused
answers, failed critical items opening one corrective action, mystery visibility."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from servq.core.models import Action, AuditEvent, Evaluation, Record, User
from tests.test_evaluations import put_standard

RECORDS = "/api/v1/records"
CODE = "hq.front_desk"
OCCURRED = "2026-03-02T10:00:00+08:00"


def _title(en: str, zh: str) -> dict:
    return {"en": en, "zh": zh}


FRONT_DESK = {
    "title": _title("Front desk", "前台"),
    "applies_to": ["inspection"],
    "method": "weighted", "pass_mark": 80,
    "grades": [{"grade": "A", "min": 90}, {"grade": "B", "min": 75}, {"grade": "C", "min": 0}],
    "items": [
        {"code": "greeting", "title": _title("Greets the guest", "问候客人"), "dimension": "assurance",
         "weight": 2, "rule": {"type": "check"}},
        {"code": "uniform", "title": _title("Wears the uniform", "着装规范"), "dimension": "tangibles",
         "critical": True, "fix_within": "24h", "escalate_to": ["manager"], "rule": {"type": "check"}},
        {"code": "wait", "title": _title("Wait under 5 minutes", "等候少于5分钟"),
         "dimension": "responsiveness", "weight": 2, "rule": {"type": "measure", "max": 5}},
        {"code": "lapses", "title": _title("Lapses", "差错"), "dimension": "reliability",
         "rule": {"type": "deduction", "points": 0.5, "cap": 1}},
        # For other kinds this item reads "transcript"; an inspection answers it with a text.
        {"code": "script", "title": _title("Standard greeting", "标准问候语"), "dimension": "empathy",
         "action_on_failure": True, "fix_within": "3 days",
         "rule": {"type": "phrases", "field": "transcript", "required": ["您好"]}},
        {"code": "smile", "title": _title("Smiles", "微笑"), "dimension": "empathy", "bonus": True,
         "rule": {"type": "check"}},
        {"code": "answered", "title": _title("Answered in time", "及时接待"), "dimension": "responsiveness",
         "rule": {"type": "deadline", "start": "timestamps.called_at", "stop": "timestamps.answered_at",
                  "limit": "30m"}},
    ],
}

GOOD = {
    "greeting": {"outcome": "pass"},
    "uniform": {"outcome": "pass", "evidence": ["https://photos.example.com/1.jpg"]},
    "wait": {"value": 3},
    "lapses": {"count": 1, "note": "Misspelt the guest's name"},
    "script": {"text": "您好，欢迎光临"},
}


@pytest.fixture
def standard(app, acme):
    put_standard(acme, CODE, document=FRONT_DESK)
    return CODE


def inspection(tenant, answers=None, **data):
    body = {"kind": "inspection", "occurred_at": OCCURRED,
            "data": {"standard": CODE, "answers": GOOD if answers is None else answers, **data}}
    return getattr(tenant, "api", tenant).post(RECORDS, json=body)  # a tenant or a client


def user_id(tenant, email=None) -> str:
    with tenant.session() as s:
        return str(s.scalar(select(User.id).where(User.email == (email or tenant.owner_email))))


def counts(tenant) -> dict:
    with tenant.session() as s:
        return {model.__name__: s.scalar(select(func.count()).select_from(model))
                for model in (Record, Evaluation, Action)} | {
            "audit": s.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.entity.in_(("records", "actions"))))}


NOTHING = {"Record": 0, "Evaluation": 0, "Action": 0, "audit": 0}


def test_inspection_is_scored_against_its_standard(acme, standard):
    r = inspection(acme)
    assert r.status_code == 201, r.json
    data = r.json["data"]
    assert (data["standard"], data["mode"], data["visibility"]) == (CODE, "routine", "open")
    assert data["inspector_id"] == user_id(acme)  # the creator, by default
    assert data["answers"]["uniform"]["evidence"] == ["https://photos.example.com/1.jpg"]
    e = acme.api.get(f"{RECORDS}/{r.json['id']}/evaluation").json
    assert (e["standard_code"], e["standard_version"]) == (CODE, 1)
    # 2 + 1 + 2 + (1 - 0.5) + 1 of 7; the bonus item is n.a., the deadline never started.
    assert e["total"] == 6.5 and e["max_total"] == 7.0
    assert e["percent"] == pytest.approx(650 / 7)
    assert (e["grade"], e["passed"], e["failed_critical"]) == ("A", True, [])
    outcomes = {item["code"]: item["outcome"] for item in e["items"]}
    assert outcomes == {"greeting": "pass", "uniform": "pass", "wait": "pass", "lapses": "fail",
                        "script": "pass", "smile": "na", "answered": "na"}
    assert counts(acme)["Action"] == 0


def test_a_share_measured_per_a_whole_is_answered_with_the_share(acme):
    """For other kinds the item measures ``lights_working`` per ``lights_total``; an
    inspection answers it with the share, compared exactly (98.9992 is below 99)."""
    put_standard(acme, "acme.lights", document={
        "title": _title("Lights", "照明"), "applies_to": ["inspection"], "method": "weighted",
        "pass_mark": 100, "items": [
            {"code": "lights", "title": _title("99 % working", "99%正常"), "dimension": "tangibles",
             "rule": {"type": "measure", "field": "lights_working", "per": "lights_total",
                      "percent": True, "min": 99}}]})
    outcomes = []
    for share in (98.9992, 99, 100):
        r = acme.api.post(RECORDS, json={"kind": "inspection", "occurred_at": OCCURRED, "data": {
            "standard": "acme.lights", "answers": {"lights": {"value": share}}}})
        assert r.status_code == 201, r.json
        e = acme.api.get(f"{RECORDS}/{r.json['id']}/evaluation").json
        outcomes.append((e["items"][0]["outcome"], e["items"][0]["evidence"]["value"], e["passed"]))
    assert outcomes == [("fail", 98.9992, False), ("pass", 99, True), ("pass", 100, True)]


def test_na_answers_and_bonus(acme, standard):
    answers = {**GOOD, "wait": {"outcome": "na"}, "lapses": {"outcome": "na"},
               "smile": {"outcome": "pass"}}
    r = inspection(acme, answers, mode="surprise")
    assert r.status_code == 201, r.json
    e = acme.api.get(f"{RECORDS}/{r.json['id']}/evaluation").json
    # greeting 2 + uniform 1 + script 1 of 4, plus a bonus point, capped at 100 %.
    assert e["percent"] == 100.0 and e["max_total"] == 4.0
    assert {i["code"]: i["outcome"] for i in e["items"]}["smile"] == "pass"


def test_failed_critical_item_opens_one_action_with_its_due_date(acme, standard):
    answers = {**GOOD, "uniform": {"outcome": "fail", "note": "No name badge"}}
    r = inspection(acme, answers)
    assert r.status_code == 201, r.json
    rid = r.json["id"]
    e = acme.api.get(f"{RECORDS}/{rid}/evaluation").json
    assert (e["percent"], e["passed"], e["failed_critical"]) == (0.0, False, ["uniform"])
    actions = acme.api.get(f"/api/v1/actions?record_id={rid}").json
    assert len(actions) == 1
    action = actions[0]
    assert (action["source"], action["item_code"], action["standard_code"], action["standard_version"]) == \
        ("critical", "uniform", CODE, 1)
    assert action["source_key"] == f"{rid}:{CODE}:uniform"
    assert action["status"] == "open" and action["title"] == "Corrective action: Wears the uniform"
    # Due 24 hours after the inspection took place.
    assert datetime.fromisoformat(action["due_at"]) == datetime.fromisoformat(OCCURRED) + timedelta(hours=24)
    assert action["overdue"] is (datetime.fromisoformat(action["due_at"]) < datetime.now().astimezone())
    # Re-scoring, changing the record and re-scoring again never open a second one.
    assert acme.api.post(f"{RECORDS}/{rid}/evaluate").status_code == 200
    r = acme.api.update(f"{RECORDS}/{rid}", {"status": "closed"})
    assert r.status_code == 200
    assert acme.api.post(f"{RECORDS}/{rid}/evaluate").status_code == 200
    assert counts(acme)["Action"] == 1
    history = acme.api.get(f"/api/v1/actions/{action['id']}/history").json
    assert [h["action"] for h in history] == ["created"] and history[0]["actor"] is None


def test_action_on_failure_item_opens_an_item_action(acme, standard):
    r = inspection(acme, {**GOOD, "script": {"text": "欢迎光临"}})
    assert r.status_code == 201, r.json
    e = acme.api.get(f"{RECORDS}/{r.json['id']}/evaluation").json
    # Not critical: the record is scored (5.5 of 7, below the pass mark), not zeroed.
    assert (e["total"], e["passed"], e["failed_critical"]) == (5.5, False, [])
    [action] = acme.api.get("/api/v1/actions").json
    assert (action["source"], action["item_code"]) == ("item", "script")
    assert datetime.fromisoformat(action["due_at"]) == datetime.fromisoformat(OCCURRED) + timedelta(days=3)


@pytest.mark.parametrize("answers, item, words", [
    ({**GOOD, "bogus": {"outcome": "pass"}}, "bogus", "Unknown item"),
    ({k: v for k, v in GOOD.items() if k != "wait"}, "wait", "Missing answer"),
    ({**GOOD, "answered": {"outcome": "pass"}}, "answered", "takes no answer"),
    ({**GOOD, "wait": {"outcome": "pass"}}, "wait", "measured 'value'"),
    ({**GOOD, "script": {"outcome": "pass"}}, "script", "'text'"),
    ({**GOOD, "greeting": {"note": "seen"}}, "greeting", "outcome"),
    ({**GOOD, "wait": {"value": "fast"}}, "wait", "a measure is a number"),
])
def test_answers_that_do_not_fit_are_422_and_write_nothing(acme, standard, answers, item, words):
    r = inspection(acme, answers)
    assert r.status_code == 422, r.json
    problems = r.json["errors"]["json"]["data"]["answers"]
    assert list(problems) == [item] and words in problems[item][0], problems
    assert counts(acme) == NOTHING


def test_answers_refused_on_change_too(acme, standard):
    rid = inspection(acme).json["id"]
    r = acme.api.update(f"{RECORDS}/{rid}", {"data": {"standard": CODE, "answers": {"greeting": {"outcome": "pass"}}}})
    assert r.status_code == 422
    assert set(r.json["errors"]["json"]["data"]["answers"]) == {"uniform", "wait", "lapses", "script"}
    assert acme.api.get(f"{RECORDS}/{rid}").json["data"]["answers"] == GOOD


def test_answer_shape_is_checked(acme, standard):
    r = inspection(acme, {**GOOD, "uniform": {"outcome": "maybe", "evidence": ["not a url"]}})
    assert r.status_code == 422
    assert set(r.json["errors"]["json"]["data"]["answers"]["uniform"]["value"]) == {"outcome", "evidence"}
    r = inspection(acme, mode="sneaky", visibility="secret")
    assert set(r.json["errors"]["json"]["data"]) == {"mode", "visibility"}
    assert counts(acme) == NOTHING


def test_standard_must_exist_and_apply_to_inspections(app, acme, globex, standard):
    r = inspection(acme, standard="hq.nothing")
    assert r.status_code == 422 and "hq.nothing" in r.json["errors"]["json"]["data"]["standard"][0]
    put_standard(acme, "hq.calls", document={**FRONT_DESK, "applies_to": ["observation"]})
    r = inspection(acme, standard="hq.calls")
    assert r.status_code == 422
    assert "does not apply to inspections" in r.json["errors"]["json"]["data"]["standard"][0]
    # Another tenant's standard is unknown here.
    r = inspection(globex)
    assert r.status_code == 422 and CODE in r.json["errors"]["json"]["data"]["standard"][0]
    assert counts(acme) == NOTHING and counts(globex) == NOTHING


def test_scored_only_against_the_standard_it_names(app, acme, standard):
    # A second standard applies to every inspection; this inspection names the first.
    put_standard(acme, "hq.other", document={**FRONT_DESK, "items": FRONT_DESK["items"][:1]})
    r = inspection(acme)
    assert r.status_code == 201, r.json
    listed = acme.api.get(f"{RECORDS}/{r.json['id']}/evaluations").json
    assert [e["standard_code"] for e in listed] == [CODE]
    # Naming the other one moves the evaluation over.
    r = acme.api.update(f"{RECORDS}/{r.json['id']}", {"data": {"standard": "hq.other",
                                                               "answers": {"greeting": {"outcome": "fail"}}}})
    assert r.status_code == 200, r.json
    listed = acme.api.get(f"{RECORDS}/{r.json['id']}/evaluations").json
    assert [(e["standard_code"], e["percent"]) for e in listed] == [("hq.other", 0.0)]
    # The inspector stays who it was when the change leaves it out.
    assert r.json["data"]["inspector_id"] == user_id(acme)


def test_inspector_must_be_a_member(acme, globex, standard):
    inspector = acme.add_user("inspector")
    r = inspection(acme, inspector_id=user_id(acme, inspector))
    assert r.status_code == 201 and r.json["data"]["inspector_id"] == user_id(acme, inspector)
    r = inspection(acme, inspector_id=user_id(globex))
    assert r.status_code == 422 and "inspector_id" in r.json["errors"]["json"]["data"]


def test_mystery_inspections_are_hidden_from_agents(acme, standard):
    mystery = inspection(acme, visibility="mystery", mode="special").json["id"]
    open_one = inspection(acme).json["id"]
    agent = acme.as_role("agent")
    ids = [r["id"] for r in agent.get(f"{RECORDS}?kind=inspection").json]
    assert ids == [open_one]
    for url in (f"{RECORDS}/{mystery}", f"{RECORDS}/{mystery}/evaluation",
                f"{RECORDS}/{mystery}/evaluations", f"{RECORDS}/{mystery}/history"):
        assert agent.get(url).status_code == 404, url
    assert agent.post(f"{RECORDS}/{mystery}/evaluate").status_code == 404
    assert agent.get(f"{RECORDS}/{open_one}/evaluation").status_code == 200
    # Managers and inspectors see both.
    for role in ("manager", "inspector", "viewer"):
        client = acme.as_role(role)
        assert sorted(r["id"] for r in client.get(f"{RECORDS}?kind=inspection").json) == \
            sorted([mystery, open_one]), role
        assert client.get(f"{RECORDS}/{mystery}/evaluation").status_code == 200


def test_cross_tenant_and_roles(acme, globex, standard):
    rid = inspection(acme).json["id"]
    assert globex.api.get(f"{RECORDS}/{rid}").status_code == 404
    assert globex.api.get(f"{RECORDS}/{rid}/evaluation").status_code == 404
    r = inspection(acme.as_role("viewer"))
    assert r.status_code == 403
    assert counts(acme)["Record"] == 1
