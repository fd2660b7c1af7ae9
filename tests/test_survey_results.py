"""Survey results: every number computed by hand here, then compared with the API's."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import delete, select, update

from servq.core.models import Staff, Survey, SurveyResponse, SurveyRollup
from servq.core.surveys.results import Filters, _raw_sums, survey_results
from servq.core.surveys.rollups import rebuild_rollups, rollup_sums
from tests.test_surveys import INSTRUMENTS, SURVEYS, answer, invite, make_instrument, make_survey, respond


def approx(value):
    return pytest.approx(value, abs=1e-9)


def se(values):
    """Standard error of the mean, by the textbook formula."""
    n = len(values)
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n)


def results(tenant, survey_id, query=""):
    r = tenant.api.get(f"{SURVEYS}/{survey_id}/results{query}")
    assert r.status_code == 200, r.json
    return r.json


def by_code(entries):
    return {e["code"]: e for e in entries}


# Three respondents of the MINI instrument (two-column). x2 is reverse scored (8 - x);
# y2 is optional; the third respondent gives no importance points.
RAW = [
    ({"x1": {"expectation": 6, "perception": 4}, "x2": {"expectation": 2, "perception": 5},
      "y1": {"expectation": 7, "perception": 7}, "y2": {"expectation": 5, "perception": 6}},
     {"a": 60, "b": 40}),
    ({"x1": {"expectation": 5, "perception": 5}, "x2": {"expectation": 1, "perception": 1},
      "y1": {"expectation": 6, "perception": 3}},
     {"a": 30, "b": 70}),
    ({"x1": {"expectation": 7, "perception": 6}, "x2": {"expectation": 3, "perception": 4},
      "y1": {"expectation": 4, "perception": 5}, "y2": {"expectation": 6, "perception": 2}},
     None),
]


def test_two_column_results_by_hand(acme, client):
    make_instrument(acme)
    survey = make_survey(acme, instrument="mini", importance="optional")
    for answers, importance in RAW:
        respond(acme, client, survey["id"], answers, importance)
    res = results(acme, survey["id"])
    assert res["responses"] == 3 and res["form"] == "two_column"
    items = by_code(res["items"])

    # x1: E 6,5,7  P 4,5,6  gaps -2,0,-1
    x1 = items["x1"]
    assert x1["n"] == 3
    assert x1["expectation"]["mean"] == approx(6) and x1["perception"]["mean"] == approx(5)
    assert x1["gap"]["mean"] == approx(-1) and x1["gap"]["se"] == approx(1 / math.sqrt(3))
    assert x1["expectation"]["se"] == approx(se([6, 5, 7])) and x1["gap"]["n"] == 3
    # x2 reverse scored: E 8-2, 8-1, 8-3 = 6,7,5; P 8-5, 8-1, 8-4 = 3,7,4; gaps -3,0,-1
    x2 = items["x2"]
    assert x2["reverse"] is True
    assert x2["expectation"]["mean"] == approx(6) and x2["perception"]["mean"] == approx(14 / 3)
    assert x2["gap"]["mean"] == approx(-4 / 3) and x2["gap"]["se"] == approx(se([-3, 0, -1]))
    # y1: E 7,6,4  P 7,3,5  gaps 0,-3,1
    assert items["y1"]["gap"]["mean"] == approx(-2 / 3)
    assert items["y1"]["perception"]["se"] == approx(se([7, 3, 5]))
    # y2 optional, answered twice: E 5,6  P 6,2  gaps 1,-4
    y2 = items["y2"]
    assert y2["n"] == 2 and y2["gap"]["mean"] == approx(-1.5) and y2["gap"]["se"] == approx(se([1, -4]))

    dims = by_code(res["dimensions"])
    # Dimension a per respondent (mean of x1 and scored x2): gaps (-2-3)/2, 0, (-1-1)/2.
    a_gaps = [-2.5, 0.0, -1.0]
    a = dims["a"]
    assert a["n"] == 3
    assert a["expectation"]["mean"] == approx(6) and a["perception"]["mean"] == approx((3.5 + 6 + 5) / 3)
    assert a["gap"]["mean"] == approx(sum(a_gaps) / 3) and a["gap"]["se"] == approx(se(a_gaps))
    # Dimension b: respondent 2 skipped y2, so their score is y1 alone: 0.5, -3, -1.5.
    b_gaps = [0.5, -3.0, -1.5]
    assert dims["b"]["gap"]["mean"] == approx(-4 / 3) and dims["b"]["gap"]["se"] == approx(se(b_gaps))
    assert dims["b"]["perception"]["mean"] == approx((6.5 + 3 + 3.5) / 3)
    # Importance: given by two respondents.
    assert dims["a"]["importance"] == {"n": 2, "mean": approx(45), "se": approx(se([60, 30]))}
    assert dims["b"]["importance"]["mean"] == approx(55)

    gap_a, gap_b = sum(a_gaps) / 3, sum(b_gaps) / 3
    assert res["scores"]["gap"]["unweighted"] == approx((gap_a + gap_b) / 2)
    assert res["scores"]["gap"]["unweighted"] == approx(-1.25)
    assert res["scores"]["gap"]["weighted"] == approx(gap_a * 0.45 + gap_b * 0.55)
    assert res["scores"]["gap"]["weighted"] == approx(-1.2583333333333333)
    assert res["nps"] is None and res["csat"] is None


def test_servqual_22_items_with_reverse_scoring_and_weights(acme, client):
    survey = make_survey(acme, importance="required")
    doc = acme.api.get(f"{INSTRUMENTS}/servqual").json
    reverse = {i["code"] for i in doc["items"] if i["reverse"]}
    # Respondent 1 rates every expectation 6; perception 5 on the positive statements and
    # 2 on the negative ones ("does not...": disagreeing is good), which scores 8 - 2 = 6.
    answers = {i["code"]: {"expectation": 6, "perception": 2 if i["code"] in reverse else 5}
               for i in doc["items"]}
    weights = {"tangibles": 10, "reliability": 40, "responsiveness": 20, "assurance": 20, "empathy": 10}
    respond(acme, client, survey["id"], answers, weights)
    # Reverse scoring applies to both columns: respondent 1's expectation of a negative
    # item scores 8 - 6 = 2, so the gaps are 5 - 6 = -1 on positive items and 6 - 2 = +4
    # on negative ones. Respondent 2 answers the expectation of negative items with 2
    # (scored 6): gaps -1 and 6 - 6 = 0.
    answers2 = {i["code"]: {"expectation": 2 if i["code"] in reverse else 6,
                            "perception": 2 if i["code"] in reverse else 5} for i in doc["items"]}
    respond(acme, client, survey["id"], answers2, weights)
    res = results(acme, survey["id"])
    items = by_code(res["items"])
    assert items["q1"]["gap"]["mean"] == approx(-1) and items["q1"]["gap"]["se"] == approx(0)
    # q10 (reversed): respondent 1 E 8-6=2, P 6 → +4; respondent 2 E 6, P 6 → 0.
    assert items["q10"]["expectation"]["mean"] == approx(4) and items["q10"]["perception"]["mean"] == approx(6)
    assert items["q10"]["gap"]["mean"] == approx(2) and items["q10"]["gap"]["se"] == approx(se([4, 0]))
    dims = by_code(res["dimensions"])
    expected = {"tangibles": -1, "reliability": -1, "responsiveness": 2, "assurance": -1, "empathy": 2}
    for code, gap in expected.items():
        assert dims[code]["gap"]["mean"] == approx(gap), code
        assert dims[code]["n"] == 2
    assert res["scores"]["gap"]["unweighted"] == approx((-1 - 1 + 2 - 1 + 2) / 5)
    assert res["scores"]["gap"]["weighted"] == approx(-1 * .1 - 1 * .4 + 2 * .2 - 1 * .2 + 2 * .1)
    assert dims["reliability"]["importance"]["mean"] == approx(40)


def test_three_column_zone_of_tolerance_by_hand(acme, client):
    make_instrument(acme, {
        "code": "zone", "title": {"en": "Zone"}, "scale": {"min": 1, "max": 7},
        "dimensions": [{"code": "q", "title": {"en": "Q"}}, {"code": "r", "title": {"en": "R"}}],
        "items": [{"code": "z1", "dimension": "q", "text": {"en": "Z1"}},
                  {"code": "z2", "dimension": "q", "text": {"en": "Z2"}},
                  {"code": "z3", "dimension": "r", "text": {"en": "Z3"}}],
    })
    survey = make_survey(acme, instrument="zone", form="three_column")

    def cols(a, d, p):
        return {"adequate": a, "desired": d, "perception": p}

    respond(acme, client, survey["id"], {"z1": cols(3, 6, 2), "z2": cols(4, 6, 5), "z3": cols(2, 5, 7)})
    respond(acme, client, survey["id"], {"z1": cols(4, 6, 3), "z2": cols(3, 7, 5), "z3": cols(3, 5, 6)})
    res = results(acme, survey["id"])
    items = by_code(res["items"])
    # z1: A 3.5, D 6, P 2.5: below the zone; adequacy -1, superiority -3.5
    assert items["z1"]["zone"] == "below"
    assert items["z1"]["adequacy"]["mean"] == approx(-1) and items["z1"]["superiority"]["mean"] == approx(-3.5)
    assert items["z1"]["adequacy"]["se"] == approx(se([2 - 3, 3 - 4]))
    # z2: A 3.5, D 6.5, P 5: within; adequacy 1.5, superiority -1.5 (SE of 1-1=0 and 5-7, 5-6)
    assert items["z2"]["zone"] == "within"
    assert items["z2"]["adequacy"]["mean"] == approx(1.5) and items["z2"]["superiority"]["mean"] == approx(-1.5)
    assert items["z2"]["superiority"]["se"] == approx(se([-1, -2]))
    assert items["z2"]["adequate"]["mean"] == approx(3.5) and items["z2"]["desired"]["mean"] == approx(6.5)
    # z3: A 2.5, D 5, P 6.5: above
    assert items["z3"]["zone"] == "above" and items["z3"]["superiority"]["mean"] == approx(1.5)
    assert "gap" not in items["z1"] and "expectation" not in items["z1"]

    dims = by_code(res["dimensions"])
    # q per respondent: A (3+4)/2=3.5, D 6, P 3.5 | A 3.5, D 6.5, P 4 → A 3.5, D 6.25, P 3.75: within
    assert dims["q"]["zone"] == "within"
    assert dims["q"]["desired"]["mean"] == approx(6.25) and dims["q"]["perception"]["mean"] == approx(3.75)
    assert dims["q"]["adequacy"]["mean"] == approx(0.25) and dims["q"]["superiority"]["mean"] == approx(-2.5)
    assert dims["q"]["adequacy"]["se"] == approx(se([0, 0.5]))
    assert dims["r"]["zone"] == "above"
    assert res["scores"]["adequacy"]["unweighted"] == approx((0.25 + 4) / 2)
    assert res["scores"]["superiority"]["unweighted"] == approx((-2.5 + 1.5) / 2)
    assert res["scores"]["adequacy"]["weighted"] is None  # no importance asked


def test_nps_and_csat_by_hand(acme, client):
    nps = make_survey(acme, instrument="nps")
    scores = [10, 9, 8, 7, 6, 0, 10]
    for s in scores:
        respond(acme, client, nps["id"], {"recommend": s})
    res = results(acme, nps["id"])
    # promoters 10, 9, 10 = 3; detractors 6, 0 = 2; n = 7
    assert res["nps"]["n"] == 7
    assert res["nps"]["score"] == approx(100 * (3 - 2) / 7)
    assert res["nps"]["promoters"] == approx(300 / 7) and res["nps"]["detractors"] == approx(200 / 7)
    assert res["nps"]["passives"] == approx(200 / 7)
    as_points = [100 if s >= 9 else -100 if s <= 6 else 0 for s in scores]
    assert res["nps"]["se"] == approx(se(as_points))
    assert res["items"][0]["perception"]["mean"] == approx(sum(scores) / 7)
    assert res["scores"] == {} and res["dimensions"] == []

    csat = make_survey(acme, instrument="csat")
    answers = [5, 4, 3, 2, 5]
    for s in answers:
        respond(acme, client, csat["id"], {"satisfaction": s})
    res = results(acme, csat["id"])
    assert res["csat"]["score"] == approx(60) and res["csat"]["n"] == 5
    assert res["csat"]["se"] == approx(se([100, 100, 0, 0, 100]))
    assert res["nps"] is None


def test_a_custom_instrument_mixing_ratings_and_nps(acme, client):
    make_instrument(acme, {
        "code": "mixed", "title": {"en": "Mixed"}, "scale": {"min": 1, "max": 5},
        "dimensions": [{"code": "d", "title": {"en": "D"}}],
        "items": [{"code": "clean", "dimension": "d", "text": {"en": "Clean"}},
                  {"code": "nps", "text": {"en": "Recommend?"}, "metric": "nps",
                   "scale": {"min": 0, "max": 10}, "required": False}],
    })
    survey = make_survey(acme, instrument="mixed")
    assert survey["form"] == "two_column"
    respond(acme, client, survey["id"], {"clean": {"expectation": 5, "perception": 4}, "nps": 9})
    respond(acme, client, survey["id"], {"clean": {"expectation": 4, "perception": 4}})
    res = results(acme, survey["id"])
    items = by_code(res["items"])
    assert items["clean"]["gap"]["mean"] == approx(-0.5)
    assert items["nps"]["n"] == 1 and res["nps"]["score"] == approx(100)
    assert "gap" not in items["nps"]


def test_no_answers_yet(acme):
    survey = make_survey(acme, importance="optional")
    res = results(acme, survey["id"])
    assert res["responses"] == 0
    assert all(i["n"] == 0 and i["gap"] is None for i in res["items"])
    assert res["scores"]["gap"] == {"unweighted": None, "weighted": None}


def test_filters_go_through_the_invitations_record(acme, client):
    survey = make_survey(acme, instrument="csat")
    site_a = acme.api.post("/api/v1/sites", json={"code": "A", "name": "A"}).json["id"]
    site_b = acme.api.post("/api/v1/sites", json={"code": "B", "name": "B"}).json["id"]
    with acme.session() as s:
        staff = Staff(code="S1", name="Staff one")
        s.add(staff)
        s.commit()
        staff_id = str(staff.id)

    def record(site, staff=None):
        body = {"kind": "observation", "site_id": site, "data": {"title": "t"}}
        if staff:
            body["staff_id"] = staff
        r = acme.api.post("/api/v1/records", json=body)
        assert r.status_code == 201, r.json
        return r.json["id"]

    respond(acme, client, survey["id"], {"satisfaction": 5}, record_id=record(site_a, staff_id))
    respond(acme, client, survey["id"], {"satisfaction": 4}, record_id=record(site_a))
    respond(acme, client, survey["id"], {"satisfaction": 1}, record_id=record(site_b))
    old = respond(acme, client, survey["id"], {"satisfaction": 2})  # no record
    with acme.session() as s:
        s.execute(update(SurveyResponse).where(SurveyResponse.invitation_id == uuid.UUID(old["id"]))
                  .values(submitted_at=datetime(2020, 1, 1, 0, 30, tzinfo=timezone.utc)))
        rebuild_rollups(s, uuid.UUID(survey["id"]))  # the rollups follow the answers
        s.commit()

    def mean(query):
        res = results(acme, survey["id"], query)
        return res["responses"], (res["items"][0]["perception"] or {}).get("mean")

    assert mean("") == (4, approx(3))
    assert mean(f"?site_id={site_a}") == (2, approx(4.5))
    assert mean(f"?site_id={site_b}") == (1, approx(1))
    assert mean(f"?staff_id={staff_id}") == (1, approx(5))
    assert mean("?kind=observation") == (3, approx(10 / 3))
    assert mean("?kind=complaint") == (0, None)
    assert mean("?until=2021-01-01T00:00:00%2B00:00") == (1, approx(2))
    # Periods that cut through an hour: the partial hours are read from the answers.
    assert mean("?since=2020-01-01T00:29:00%2B00:00&until=2020-01-01T00:31:00%2B00:00") == (1, approx(2))
    assert mean("?since=2020-01-01T00:31:00%2B00:00&until=2020-01-01T05:00:00%2B00:00") == (0, None)
    assert mean("?since=2019-12-31T23:10:00%2B00:00&until=2020-01-01T00:31:00%2B00:00") == (1, approx(2))
    assert mean("?since=2020-01-01T00:10:00%2B00:00&until=2020-01-01T02:00:00%2B00:00") == (1, approx(2))
    assert mean("?since=2021-01-01T00:00:00%2B00:00") == (3, approx(10 / 3))
    res = results(acme, survey["id"], f"?since=2021-01-01T00:00:00%2B08:00&site_id={site_a}")
    assert res["filters"]["site_id"] == site_a and res["csat"]["score"] == approx(100)
    for bad in ("?since=2021-01-01T00:00:00", "?site_id=nope",
                "?since=2022-01-01T00:00:00Z&until=2021-01-01T00:00:00Z"):
        assert acme.api.get(f"{SURVEYS}/{survey['id']}/results{bad}").status_code == 422, bad


@pytest.mark.cross_tenant("GET /api/v1/surveys/<uuid:survey_id>/results")
def test_results_cross_tenant_and_unknown(acme, globex, client):
    survey = make_survey(acme, instrument="nps")
    respond(acme, client, survey["id"], {"recommend": 10})
    assert globex.api.get(f"{SURVEYS}/{survey['id']}/results").status_code == 404
    assert acme.api.get(f"{SURVEYS}/{uuid.uuid4()}/results").status_code == 404
    # globex's own survey of the same instrument sees none of acme's answers.
    theirs = make_survey(globex, instrument="nps")
    assert globex.api.get(f"{SURVEYS}/{theirs['id']}/results").json["responses"] == 0
    assert acme.as_role("viewer").get(f"{SURVEYS}/{survey['id']}/results").json["nps"]["score"] == approx(100)


def test_an_expired_then_unanswered_link_counts_nothing(acme, client):
    survey = make_survey(acme, instrument="csat")
    inv = invite(acme, survey["id"])
    assert answer(client, inv["token"], {"satisfaction": 9}).status_code == 422
    assert results(acme, survey["id"])["responses"] == 0


def test_three_column_form_refuses_reverse_scored_items(acme, client):
    """The zone of tolerance reads "adequate <= desired" and "higher is better" on every
    item; a negatively worded (reverse-scored) item turns both round, so the 1988
    SERVQUAL, or any instrument with a reversed item, is not asked in three columns:
    the survey is refused when it is created, and the 1991 wording is asked instead."""
    for instrument in ("servqual", "mini"):
        if instrument == "mini":
            make_instrument(acme)
        r = acme.api.post(SURVEYS, json={"title": {"en": "T"}, "instrument": instrument,
                                         "form": "three_column"})
        assert r.status_code == 422, r.json
        assert "form" in r.json["errors"]["json"]
        assert "reverse" in r.json["message"] and "three_column" in r.json["message"]
        if instrument == "servqual":
            assert "servqual_1991" in r.json["message"]
    assert acme.api.get(SURVEYS).json == []
    assert acme.api.get(f"{INSTRUMENTS}/servqual").json["forms"] == ["single", "two_column"]
    assert acme.api.get(f"{INSTRUMENTS}/mini").json["forms"] == ["single", "two_column"]

    # The 1991 wording, every item positive: adequate 3, desired 6, perceived 5 is
    # within the zone on every item and dimension, MSA = 5 - 3 = 2, MSS = 5 - 6 = -1.
    survey = make_survey(acme, instrument="servqual_1991", form="three_column")
    cols = {"adequate": 3, "desired": 6, "perception": 5}
    respond(acme, client, survey["id"], {f"q{n}": cols for n in range(1, 23)})
    respond(acme, client, survey["id"], {f"q{n}": cols for n in range(1, 23)})
    res = results(acme, survey["id"])
    assert res["responses"] == 2 and len(res["items"]) == 22
    for entry in res["items"] + res["dimensions"]:
        assert entry["zone"] == "within", entry["code"]
        assert entry["adequate"]["mean"] == approx(3) and entry["desired"]["mean"] == approx(6)
        assert entry["perception"]["mean"] == approx(5), entry["code"]
        assert entry["adequacy"]["mean"] == approx(2) and entry["superiority"]["mean"] == approx(-1)
    assert res["scores"]["adequacy"] == {"unweighted": approx(2), "weighted": None}
    assert res["scores"]["superiority"] == {"unweighted": approx(-1), "weighted": None}


def test_rollups_agree_with_the_answers(acme, client, app):
    """The hourly rollups added with each response hold exactly the sums of the answers,
    and rebuilding them from the answers gives the same results."""
    make_instrument(acme)
    two = make_survey(acme, instrument="mini", importance="optional")
    for answers, importance in RAW:
        respond(acme, client, two["id"], answers, importance)
    three = make_survey(acme, instrument="servqual_1991", form="three_column")
    cols = {"adequate": 3, "desired": 6, "perception": 5}
    respond(acme, client, three["id"], {f"q{n}": cols for n in range(1, 23)})
    nps = make_survey(acme, instrument="nps")
    for score in (10, 3, 8):
        respond(acme, client, nps["id"], {"recommend": score})
    with app.app_context(), acme.session() as s:
        for survey in s.scalars(select(Survey)):
            metrics = survey.instrument_code == "nps"
            raw = _raw_sums(s, survey, Filters(), None, None, metrics)
            rolled = rollup_sums(s, survey.id, None, None)
            assert set(raw) == set(rolled), survey.instrument_code
            for key, sums in raw.items():
                for name, value in sums.items():
                    if value:  # the raw sums leave out what the form does not ask for
                        assert rolled[key][name] == pytest.approx(value, abs=1e-9), (key, name)
            before = survey_results(s, survey)
            s.execute(delete(SurveyRollup).where(SurveyRollup.survey_id == survey.id))
            assert survey_results(s, survey)["responses"] == 0
            rebuild_rollups(s, survey.id)
            after = survey_results(s, survey)
            assert after == before or _close(after, before), survey.instrument_code
        s.commit()
    assert results(acme, two["id"])["scores"]["gap"]["unweighted"] == approx(-1.25)


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, abs=1e-9)
    return a == b
