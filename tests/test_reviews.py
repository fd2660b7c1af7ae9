"""Reviews linked to what they judge, through HTTP: an inspection names the record it
judges (``subject_record_id``) and the subject lists its reviews, automatic and manual
apart (``GET /records/<id>/reviews``)."""

from __future__ import annotations

import pytest

from tests.test_evaluations import put_standard
from tests.test_inspections import CODE, GOOD, counts, inspection, standard  # noqa: F401 (fixture)

RECORDS = "/api/v1/records"
OCCURRED = "2026-03-02T09:00:00+08:00"

GREETING = {
    "title": {"en": "Greeting said", "zh": "问候语"},
    "applies_to": ["observation"],
    "method": "weighted", "pass_mark": 100,
    "items": [{"code": "hello", "title": {"en": "Says hello", "zh": "说您好"}, "dimension": "empathy",
               "rule": {"type": "phrases", "field": "description", "required": ["您好"]}}],
}


@pytest.fixture
def subject(acme, standard):
    put_standard(acme, "hq.greeting", document=GREETING)
    site = acme.api.post("/api/v1/sites", json={"code": "S1", "name": "Lobby"}).json["id"]
    staff = acme.api.post("/api/v1/staff", json={"code": "W1", "name": "Wang Wei"}).json["id"]
    r = acme.api.post(RECORDS, json={"kind": "observation", "occurred_at": OCCURRED, "site_id": site,
                                     "staff_id": staff,
                                     "data": {"title": "Call 1", "description": "您好，请讲"}})
    assert r.status_code == 201, r.json
    return r.json


def test_the_subject_lists_its_automatic_and_manual_reviews_apart(acme, subject):
    first = inspection(acme, subject_record_id=subject["id"])
    assert first.status_code == 201, first.json
    # The review counts for the person and place whose work it judges.
    assert first.json["staff_id"] == subject["staff_id"]
    assert first.json["site_id"] == subject["site_id"]
    assert first.json["data"]["subject_record_id"] == subject["id"]
    second = inspection(acme, {**GOOD, "uniform": {"outcome": "fail"}}, subject_record_id=subject["id"],
                        mode="special")
    assert second.status_code == 201, second.json
    inspection(acme)  # judges nothing: not a review of the subject

    r = acme.api.get(f"{RECORDS}/{subject['id']}/reviews")
    assert r.status_code == 200, r.json
    reviews = r.json
    assert [v["source"] for v in reviews] == ["automatic", "manual", "manual"]
    auto = reviews[0]
    assert auto["review_record_id"] == subject["id"]
    assert auto["evaluation"]["standard_code"] == "hq.greeting"
    assert auto["evaluation"]["percent"] == 100.0 and auto["inspector_id"] is None
    manual = {v["review_record_id"]: v for v in reviews[1:]}
    assert set(manual) == {first.json["id"], second.json["id"]}
    assert manual[second.json["id"]]["mode"] == "special"
    assert manual[second.json["id"]]["evaluation"]["passed"] is False
    assert manual[first.json["id"]]["evaluation"]["standard_code"] == CODE
    assert manual[first.json["id"]]["inspector_id"] == first.json["data"]["inspector_id"]

    only_manual = acme.api.get(f"{RECORDS}/{subject['id']}/reviews?source=manual&page_size=1")
    assert [v["source"] for v in only_manual.json] == ["manual"]
    assert '"total": 2' in only_manual.headers["X-Pagination"]
    only_auto = acme.api.get(f"{RECORDS}/{subject['id']}/reviews?source=automatic")
    assert [v["review_record_id"] for v in only_auto.json] == [subject["id"]]
    assert acme.api.get(f"{RECORDS}/{subject['id']}/reviews?source=both").status_code == 422

    # A deleted review no longer counts.
    acme.api.remove(f"{RECORDS}/{second.json['id']}")
    r = acme.api.get(f"{RECORDS}/{subject['id']}/reviews?source=manual")
    assert [v["review_record_id"] for v in r.json] == [first.json["id"]]


def test_an_unknown_subject_is_refused_and_nothing_is_written(acme, globex, standard):
    before = counts(acme)
    r = inspection(acme, subject_record_id="00000000-0000-4000-8000-000000000001")
    assert r.status_code == 422
    assert "subject_record_id" in r.json["errors"]["json"]["data"]
    # Another tenant's record is no subject either.
    other = globex.api.post(RECORDS, json={"kind": "observation", "occurred_at": OCCURRED,
                                           "data": {"title": "Theirs"}}).json["id"]
    r = inspection(acme, subject_record_id=other)
    assert r.status_code == 422
    assert counts(acme) == before
    # Nor is an inspection its own subject.
    own = inspection(acme).json
    r = acme.api.patch(f"{RECORDS}/{own['id']}", json={"data": {**own["data"], "subject_record_id": own["id"]}},
                       etag=acme.api.get(f"{RECORDS}/{own['id']}").headers["ETag"])
    assert r.status_code == 422, r.json


@pytest.mark.cross_tenant("GET /api/v1/records/<uuid:record_id>/reviews")
def test_reviews_of_another_tenants_record_are_a_404(acme, globex, subject):
    assert globex.api.get(f"{RECORDS}/{subject['id']}/reviews").status_code == 404
    assert acme.api.get(f"{RECORDS}/00000000-0000-4000-8000-000000000002/reviews").status_code == 404


def test_agents_do_not_see_mystery_reviews(acme, subject):
    inspection(acme, subject_record_id=subject["id"])
    inspection(acme, subject_record_id=subject["id"], visibility="mystery", mode="special")
    assert len(acme.api.get(f"{RECORDS}/{subject['id']}/reviews?source=manual").json) == 2
    agent = acme.as_role("agent")
    r = agent.get(f"{RECORDS}/{subject['id']}/reviews?source=manual")
    assert r.status_code == 200 and len(r.json) == 1
