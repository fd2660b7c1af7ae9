"""Answering a survey by its single-use link, without login."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from servq.core.models import (SurveyAnswer, SurveyDimensionScore, SurveyInvitation, SurveyResponse)
from tests.test_surveys import MINI, PUBLIC, SURVEYS, answer, invite, make_instrument, make_survey

GOOD = {"x1": {"expectation": 6, "perception": 4}, "x2": {"expectation": 2, "perception": 5},
        "y1": {"expectation": 7, "perception": 7}}


def stored(tenant) -> dict:
    with tenant.session() as s:
        return {model.__tablename__: s.scalar(select(func.count()).select_from(model))
                for model in (SurveyResponse, SurveyAnswer, SurveyDimensionScore)}


NOTHING = {"survey_responses": 0, "survey_answers": 0, "survey_dimension_scores": 0}


@pytest.fixture
def mini(acme):
    make_instrument(acme)
    return make_survey(acme, instrument="mini", importance="optional")


def test_questions_in_the_invitations_language_and_nothing_else(acme, client, app):
    acme.api.post("/api/v1/sites", json={"code": "HQ", "name": "Acme Head Office"})
    survey = make_survey(acme, instrument="servqual_1991", form="three_column", importance="required")
    inv = invite(acme, survey["id"], language="zh")
    r = client.get(f"{PUBLIC}/{inv['token']}")
    assert r.status_code == 200, r.json
    q = r.json
    assert q["language"] == "zh" and q["title"] == "我们做得怎么样?" and q["form"] == "three_column"
    assert [c["key"] for c in q["columns"]] == ["adequate", "desired", "perception"]
    assert len(q["questions"]) == 22
    first = q["questions"][0]
    assert first == {"code": "q1", "text": "该公司拥有外观现代的设备。", "required": True,
                     "columns": ["adequate", "desired", "perception"],
                     "scale": {"min": 1, "max": 7, "labels": {"1": "非常不同意", "7": "非常同意"}}}
    assert q["importance"]["required"] is True and q["importance"]["total"] == 100
    assert [d["title"] for d in q["importance"]["dimensions"]] == ["有形性", "可靠性", "响应性", "保证性", "移情性"]
    # Nothing about the tenant, the customer, the invitation or how items are scored.
    text = json.dumps(q, ensure_ascii=False)
    for secret in ("Acme", "acme", str(acme.id), "Jane", "jane.doe", "0013", inv["id"], survey["id"],
                   "reverse", "tenant"):
        assert secret not in text, secret
    english = invite(acme, survey["id"], language="en")
    q = client.get(f"{PUBLIC}/{english['token']}").json
    assert q["questions"][9]["text"] == ("Employees of the company tell you exactly when services "
                                         "will be performed.")


def test_single_form_questions_take_a_number(acme, client):
    survey = make_survey(acme, instrument="nps")
    inv = invite(acme, survey["id"])
    q = client.get(f"{PUBLIC}/{inv['token']}").json
    assert q["columns"] == [] and q["importance"] is None
    assert q["questions"] == [{"code": "recommend", "required": True, "columns": ["value"],
                               "text": "How likely is it that you would recommend us to a friend or colleague?",
                               "scale": {"min": 0, "max": 10, "labels": {"0": "Not at all likely",
                                                                         "10": "Extremely likely"}}}]
    assert answer(client, inv["token"], {"recommend": 10}).status_code == 201


def test_answering_stores_one_row_per_item_with_reverse_scoring(acme, client, mini):
    inv = invite(acme, mini["id"])
    r = answer(client, inv["token"], GOOD, importance={"a": 70, "b": 30}, comment="Nice staff.")
    assert r.status_code == 201, r.json
    assert datetime.fromisoformat(r.json["received_at"]).tzinfo is not None
    with acme.session() as s:
        (response,) = s.scalars(select(SurveyResponse))
        assert response.answers == GOOD and response.importance == {"a": 70, "b": 30}
        assert response.comment == "Nice staff." and response.language == "en"
        rows = {a.item: (a.expectation, a.perceived) for a in s.scalars(select(SurveyAnswer))}
        # x2 is reverse scored: 8 - x on the 1-7 scale; y2 (optional) was not answered.
        assert rows == {1: (6, 4), 2: (6, 3), 3: (7, 7)}
        dims = {d.dimension: (d.items, d.expectation, d.perceived, d.importance)
                for d in s.scalars(select(SurveyDimensionScore))}
        assert dims == {1: (2, 6.0, 3.5, 70), 2: (1, 7.0, 7.0, 30)}
        invitation = s.scalar(select(SurveyInvitation))
        assert invitation.responded_at is not None
    assert acme.api.get(f"{SURVEYS}/{mini['id']}/invitations/{inv['id']}").json["status"] == "answered"


def test_a_link_answers_once(acme, client, mini):
    inv = invite(acme, mini["id"])
    assert answer(client, inv["token"], GOOD).status_code == 201
    r = answer(client, inv["token"], GOOD)
    assert r.status_code == 409 and "already" in r.json["message"]
    assert client.get(f"{PUBLIC}/{inv['token']}").status_code == 409
    assert stored(acme)["survey_responses"] == 1 and stored(acme)["survey_answers"] == 3


@pytest.mark.parametrize("answers, importance, item, fragment", [
    ({**GOOD, "x1": {"expectation": 8, "perception": 4}}, None, "x1", "outside the scale 1-7"),
    ({**GOOD, "x1": {"expectation": 0, "perception": 4}}, None, "x1", "outside the scale"),
    ({**GOOD, "x2": {"expectation": 2.5, "perception": 4}}, None, "x2", "not a whole number"),
    ({**GOOD, "x2": {"expectation": "2", "perception": 4}}, None, "x2", "not a whole number"),
    ({**GOOD, "x2": {"expectation": True, "perception": 4}}, None, "x2", "not a whole number"),
    ({**GOOD, "y1": {"perception": 4}}, None, "y1", "expectation: missing"),
    ({**GOOD, "y1": {"expectation": 3, "perception": 4, "desired": 5}}, None, "y1", "unknown column"),
    ({**GOOD, "y1": 4}, None, "y1", "object"),
    ({k: v for k, v in GOOD.items() if k != "y1"}, None, "y1", "required"),
    ({**GOOD, "y1": None}, None, "y1", "required"),
    ({**GOOD, "zz": 3}, None, "zz", "Unknown item"),
    (GOOD, {"a": 70, "b": 31}, "importance", "add up to 101"),
    (GOOD, {"a": 100}, "importance", "Missing dimension"),
    (GOOD, {"a": 110, "b": -10}, "importance", "0 to 100"),
    (GOOD, {"a": 50, "b": 50, "c": 0}, "importance", "Unknown dimension"),
])
def test_bad_answers_are_refused_naming_the_item_and_change_nothing(acme, client, mini, answers,
                                                                    importance, item, fragment):
    inv = invite(acme, mini["id"])
    r = answer(client, inv["token"], answers, importance)
    assert r.status_code == 422, r.json
    errors = r.json["errors"]["json"]
    if item == "importance":
        assert any(fragment in m for m in errors["importance"]), errors
    else:
        assert any(fragment in m for m in errors["answers"][item]), errors
        assert item in r.json["message"]
    assert stored(acme) == NOTHING
    assert acme.api.get(f"{SURVEYS}/{mini['id']}/invitations/{inv['id']}").json["status"] == "pending"
    # The link still works afterwards.
    assert answer(client, inv["token"], GOOD).status_code == 201


def test_malformed_bodies_are_422(acme, client, mini):
    inv = invite(acme, mini["id"])
    for body in ({}, {"answers": []}, {"answers": GOOD, "extra": 1}, {"answers": GOOD, "comment": "x" * 5001},
                 {"answers": GOOD, "importance": [1, 2]}):
        r = client.post(f"{PUBLIC}/{inv['token']}", json=body)
        assert r.status_code == 422, (body, r.json)
    r = client.post(f"{PUBLIC}/{inv['token']}", data="not json", content_type="application/json")
    assert r.status_code in (400, 422)
    assert stored(acme) == NOTHING


def test_importance_is_refused_when_not_asked_and_required_when_asked(acme, client):
    make_instrument(acme)
    none = make_survey(acme, instrument="mini")
    inv = invite(acme, none["id"])
    r = answer(client, inv["token"], GOOD, importance={"a": 50, "b": 50})
    assert r.status_code == 422 and "does not ask" in r.json["errors"]["json"]["importance"][0]
    required = make_survey(acme, instrument="mini", importance="required")
    inv = invite(acme, required["id"])
    r = answer(client, inv["token"], GOOD)
    assert r.status_code == 422 and "importance" in r.json["errors"]["json"]
    assert answer(client, inv["token"], GOOD, importance={"a": 0, "b": 100}).status_code == 201


def test_three_column_needs_adequate_at_most_desired(acme, client):
    # MINI without its reverse-scored item: the three-column form refuses reversed items.
    make_instrument(acme, {**MINI, "items": [{**item, "reverse": False} for item in MINI["items"]]})
    survey = make_survey(acme, instrument="mini", form="three_column")
    inv = invite(acme, survey["id"])
    cols = {"x1": {"adequate": 6, "desired": 4, "perception": 5},
            "x2": {"adequate": 3, "desired": 6, "perception": 5},
            "y1": {"adequate": 3, "desired": 6, "perception": 5}}
    r = answer(client, inv["token"], cols)
    assert r.status_code == 422 and "x1" in r.json["errors"]["json"]["answers"]
    cols["x1"] = {"adequate": 4, "desired": 4, "perception": 5}
    assert answer(client, inv["token"], cols).status_code == 201
    with acme.session() as s:
        x2 = s.scalar(select(SurveyAnswer).where(SurveyAnswer.item == 2))
        assert (x2.adequate, x2.desired, x2.perceived, x2.expectation) == (3, 6, 5, None)


def test_expired_revoked_closed_unknown(acme, client, mini):
    inv = invite(acme, mini["id"])
    with acme.session() as s:
        row = s.get(SurveyInvitation, (acme.id, uuid.UUID(inv["id"])))
        row.expires_at = datetime.now(timezone.utc) - timedelta(seconds=1)
        s.commit()
    r = client.get(f"{PUBLIC}/{inv['token']}")
    assert r.status_code == 410 and "expired" in r.json["message"]
    assert answer(client, inv["token"], GOOD).status_code == 410
    # A link that expires on its own: the explicit expiry is honoured.
    soon = invite(acme, mini["id"], expires_at=(datetime.now(timezone.utc) + timedelta(hours=1)).isoformat())
    assert client.get(f"{PUBLIC}/{soon['token']}").status_code == 200
    # A closed survey.
    acme.api.update(f"{SURVEYS}/{mini['id']}", {"active": False})
    r = client.get(f"{PUBLIC}/{soon['token']}")
    assert r.status_code == 410 and "closed" in r.json["message"]
    acme.api.update(f"{SURVEYS}/{mini['id']}", {"active": True})
    # Unknown, malformed, or a real secret under another tenant's id.
    tenant_hex = acme.id.hex
    secret = soon["token"].split("_", 2)[2]
    for token in ("nope", f"sv_{tenant_hex}_{'A' * 32}", f"sq_{tenant_hex}_{secret}",
                  f"sv_{uuid.uuid4().hex}_{secret}", soon["token"] + "x", "x" * 500):
        assert client.get(f"{PUBLIC}/{token}").status_code == 404, token
        assert answer(client, token, GOOD).status_code == 404, token
    assert stored(acme) == NOTHING


@pytest.mark.cross_tenant("GET /api/v1/public/surveys/<string:token>",
                          "POST /api/v1/public/surveys/<string:token>")
def test_a_link_reaches_nothing_of_another_tenant(acme, globex, client):
    make_instrument(acme)
    make_instrument(globex)
    ours = make_survey(acme, instrument="mini")
    theirs = make_survey(globex, instrument="mini")
    our_inv = invite(acme, ours["id"])
    their_inv = invite(globex, theirs["id"])
    # globex's secret presented under acme's tenant id finds nothing (and vice versa).
    swapped = f"sv_{acme.id.hex}_{their_inv['token'].split('_', 2)[2]}"
    assert client.get(f"{PUBLIC}/{swapped}").status_code == 404
    assert answer(client, swapped, GOOD).status_code == 404
    assert answer(client, our_inv["token"], GOOD).status_code == 201
    assert stored(acme)["survey_responses"] == 1 and stored(globex) == NOTHING
    assert answer(client, their_inv["token"], GOOD).status_code == 201
    assert stored(globex)["survey_responses"] == 1
    # The API of one tenant cannot see the other's responses through results either.
    assert acme.api.get(f"{SURVEYS}/{theirs['id']}/results").status_code == 404
    assert globex.api.get(f"{SURVEYS}/{theirs['id']}/results").json["responses"] == 1


def test_public_routes_need_no_token_and_ignore_one(acme, globex, client, mini):
    inv = invite(acme, mini["id"])
    # A bearer token of another tenant changes nothing: the link decides.
    r = globex.api.get(f"{PUBLIC}/{inv['token']}")
    assert r.status_code == 200 and len(r.json["questions"]) == 4


@pytest.fixture
def tight_limits(app_config):
    app_config["SURVEY_RATE_LIMIT"] = "6 per minute"
    app_config["SURVEY_LINK_RATE_LIMIT"] = "3 per minute"
    return app_config


def test_rate_limited_per_link(tight_limits, acme, client, mini):
    inv = invite(acme, mini["id"])
    for _ in range(3):
        assert client.get(f"{PUBLIC}/{inv['token']}").status_code == 200
    r = answer(client, inv["token"], GOOD)
    assert r.status_code == 429 and "Too many" in r.json["message"] and int(r.headers["Retry-After"]) >= 1
    assert stored(acme) == NOTHING
    # Another link from the same address still has budget (per address: 6).
    other = invite(acme, mini["id"])
    assert answer(client, other["token"], GOOD).status_code == 201


def test_rate_limited_per_address(tight_limits, acme, client, mini):
    links = [invite(acme, mini["id"])["token"] for _ in range(4)]
    codes = [client.get(f"{PUBLIC}/{t}").status_code for t in links[:3]]
    codes += [client.get(f"{PUBLIC}/sv_{acme.id.hex}_{'B' * 30}").status_code for _ in range(3)]
    assert codes == [200, 200, 200, 404, 404, 404]
    # Guessing tokens spends the address's budget: the seventh attempt is refused.
    r = client.get(f"{PUBLIC}/{links[3]}")
    assert r.status_code == 429
    # Another client address is not affected.
    r = client.get(f"{PUBLIC}/{links[3]}", environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert r.status_code == 200


def test_openapi_marks_public_routes_public(client):
    spec = client.get("/api/v1/openapi.json").json
    for method in ("get", "post"):
        op = spec["paths"]["/api/v1/public/surveys/{token}"][method]
        assert op["security"] == []
    assert spec["paths"]["/api/v1/surveys"]["post"]["security"] == [{"bearerAuth": []}]


def test_other_answer_forms_store_the_right_columns(acme, client):
    survey = make_survey(acme, instrument="csat")
    inv = invite(acme, survey["id"])
    assert answer(client, inv["token"], {"satisfaction": {"perception": 4}}).status_code == 422
    assert answer(client, inv["token"], {"satisfaction": 6}).status_code == 422
    assert answer(client, inv["token"], {"satisfaction": 4.0}).status_code == 201
    with acme.session() as s:
        row = s.scalar(select(SurveyAnswer))
        assert (row.item, row.perceived, row.expectation) == (1, 4, None)
    assert MINI["code"] == "mini"
