"""Quality files of staff and sites through HTTP (``core/api/quality_files.py``,
``core/kpis/quality_files.py``): every expected number is recomputed here from the rows the test
created, read back through the API (evaluations, clocks); another tenant's rows never
count and its ids are 404."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, func, select

from servq.core.kpis.sql import period_key
from servq.core.models import AuditEvent
from tests.test_evaluations import put_standard
from tests.test_surveys import answer, invite, make_survey

RECORDS = "/api/v1/records"
CODE = "qf.desk"
FAILED = ("fail", "breached")
CUSTOMER = {"name": "张三", "phone": "13812345678", "email": "zhang@example.com"}
MASKED = {"name": "张*", "phone": "138****5678", "email": "z***@example.com"}


def _t(en: str) -> dict:
    return {"en": en, "zh": en}


DESK = {
    "title": _t("Front desk"),
    "applies_to": ["inspection"],
    "method": "weighted", "pass_mark": 80,
    "items": [
        {"code": "greet", "title": _t("Greets"), "dimension": "assurance", "rule": {"type": "check"}},
        {"code": "tidy", "title": _t("Tidy desk"), "dimension": "tangibles", "rule": {"type": "check"}},
        {"code": "speed", "title": _t("Quick"), "dimension": "responsiveness", "rule": {"type": "check"}},
        {"code": "badge", "title": _t("Wears a badge"), "dimension": "tangibles", "critical": True,
         "fix_within": "24h", "rule": {"type": "check"}},
    ],
}
ITEMS = ("greet", "tidy", "speed", "badge")


def answers(*failed: str) -> dict:
    return {code: {"outcome": "fail" if code in failed else "pass"} for code in ITEMS}


def iso(moment: datetime) -> str:
    return moment.isoformat()


NOW = datetime.now(timezone.utc)


def post(api, body) -> dict:
    r = api.post(RECORDS, json=body)
    assert r.status_code == 201, r.json
    return r.json


def inspection(api, staff=None, site=None, failed=(), when=None, **data) -> dict:
    body = {"kind": "inspection", "staff_id": staff, "site_id": site,
            "data": {"standard": CODE, "answers": answers(*failed), **data}}
    if when is not None:
        body["occurred_at"] = iso(when)
    return post(api, body)


def observation(api, staff=None, site=None, tags=(), title="Seen at the desk") -> dict:
    return post(api, {"kind": "observation", "staff_id": staff, "site_id": site,
                      "data": {"title": title, "tags": list(tags)}})


def complaint(api, staff=None, site=None, when=None, **data) -> dict:
    body = {"kind": "complaint", "staff_id": staff, "site_id": site,
            "data": {"channel": "hotline", "description": "Rude at check-in", "customer": CUSTOMER,
                     **data}}
    if when is not None:
        body["occurred_at"] = iso(when)
    return post(api, body)


def transition(api, record_id, action) -> None:
    etag = api.get(f"{RECORDS}/{record_id}").headers["ETag"]
    r = api.post(f"{RECORDS}/{record_id}/transitions", json={"action": action},
                 headers={"If-Match": etag})
    assert r.status_code == 200, r.json


def make(api, url, body) -> dict:
    r = api.post(url, json=body)
    assert r.status_code == 201, r.json
    return r.json


def evaluations_of(api, record_ids) -> list[dict]:
    out = []
    for record_id in record_ids:
        r = api.get(f"{RECORDS}/{record_id}/evaluations")
        assert r.status_code == 200, r.json
        out += r.json
    return out


def clocks_of(api, record_ids) -> list[dict]:
    out = []
    for record_id in record_ids:
        r = api.get(f"{RECORDS}/{record_id}/clocks")
        assert r.status_code == 200, r.json
        out += r.json
    return out


def user_id(tenant, email) -> str:
    from servq.core.models import User

    with tenant.session() as s:
        return str(s.scalar(select(User.id).where(User.email == email)))


def quality_file(api, kind, subject_id, **params):
    r = api.get(f"/api/v1/{kind}/{subject_id}/quality-file", query_string=params)
    assert r.status_code == 200, r.json
    return r.json


def expected_scores(evaluations: list[dict]) -> dict:
    """Summary numbers of ``evaluations`` computed here, independently of the server."""
    percents = [e["percent"] for e in evaluations if e["percent"] is not None]
    judged = [e["passed"] for e in evaluations if e["passed"] is not None]
    return {
        "evaluations": len(evaluations),
        "score": sum(percents) / len(percents) if percents else None,
        "pass_rate": 100 * sum(judged) / len(judged) if judged else None,
        "critical_failures": sum(1 for e in evaluations if e["failed_critical"]),
        "findings": sum(1 for e in evaluations for i in e["items"] if i["outcome"] in FAILED),
    }


def approx_or_none(value):
    return None if value is None else pytest.approx(value)


@pytest.fixture
def desk(acme):
    put_standard(acme, CODE, document=DESK)
    return CODE


# -- the file of one member of staff --------------------------------------------------------


@pytest.mark.cross_tenant("GET /api/v1/sites/<uuid:site_id>/quality-file",
                          "GET /api/v1/staff/<uuid:staff_id>/quality-file")
def test_staff_file_from_the_rows_created(app, client, acme, globex, desk):
    api = acme.api
    site = make(api, "/api/v1/sites", {"code": "S1", "name": "North"})["id"]
    agent_email = acme.add_user("agent")
    agent_user = user_id(acme, agent_email)
    alice = make(api, "/api/v1/staff", {"code": "A", "name": "Alice", "site_id": site,
                                        "user_id": agent_user})["id"]
    bob = make(api, "/api/v1/staff", {"code": "B", "name": "Bob", "site_id": site})["id"]

    # Alice: four inspections (one 40 days ago: another month), two observations (one
    # praise), a complaint against her acknowledged at once and one 30 days old
    # acknowledged late (a met and a breached clock).
    perfect = inspection(api, alice, site)
    untidy = inspection(api, alice, site, failed=("tidy",))
    no_badge = inspection(api, alice, site, failed=("badge", "speed"))
    old = inspection(api, alice, site, when=NOW - timedelta(days=40))
    praised = observation(api, alice, tags=["praise", "lobby"], title="Helped a guest with luggage")
    plain = observation(api, alice, tags=["lobby"])
    against = complaint(api, alice)
    transition(api, against["id"], "acknowledge")
    late = complaint(api, alice, when=NOW - timedelta(days=30))
    transition(api, late["id"], "acknowledge")
    # A complaint filed without staff, about one of Alice's inspections, and one about Bob.
    about = complaint(api, record_id=untidy["id"])
    bobs = inspection(api, bob, site, failed=("greet",))
    complaint(api, bob)
    complaint(api, record_id=bobs["id"])
    # Outside the default 90 days: counted only in the six months of the trends.
    ancient = inspection(api, alice, site, failed=("greet",), when=NOW - timedelta(days=120))
    complaint(api, record_id=untidy["id"], when=NOW - timedelta(days=100))
    # A deleted record is not counted either.
    gone = inspection(api, alice, site, failed=("greet",))
    assert api.remove(f"{RECORDS}/{gone['id']}").status_code == 204

    # Survey praise: CSAT 5 and NPS 10 about Alice's records count; CSAT 4 and NPS 6 do not,
    # nor does an NPS 10 about Bob's record.
    csat = make_survey(acme, instrument="csat")
    nps = make_survey(acme, instrument="nps")
    for survey, record, answers_ in ((csat, perfect, {"satisfaction": 5}),
                                     (csat, untidy, {"satisfaction": 4}),
                                     (nps, perfect, {"recommend": 10}),
                                     (nps, old, {"recommend": 6}),
                                     (nps, bobs, {"recommend": 10})):
        token = invite(acme, survey["id"], record_id=record["id"])["token"]
        assert answer(client, token, answers_).status_code == 201

    # Actions: the one the failed badge opened (open), one by hand owned by Alice's user
    # (done), one on Bob's record (not hers).
    [auto] = api.get(f"/api/v1/actions?record_id={no_badge['id']}").json
    owned = make(api, "/api/v1/actions", {"title": "Retrain on check-in", "owner_id": agent_user,
                                          "due_at": iso(NOW - timedelta(days=1))})
    assert api.post(f"/api/v1/actions/{owned['id']}/transitions",
                    json={"action": "complete"}).status_code == 200
    make(api, "/api/v1/actions", {"title": "Bob's", "record_id": bobs["id"]})

    # Another tenant with the same shapes: never counted, and its ids are 404 here.
    put_standard(globex, CODE, document=DESK)
    g_site = make(globex.api, "/api/v1/sites", {"code": "S1", "name": "North"})["id"]
    g_staff = make(globex.api, "/api/v1/staff", {"code": "A", "name": "Alice", "site_id": g_site})["id"]
    g_record = inspection(globex.api, g_staff, g_site, failed=("badge",))
    complaint(globex.api, g_staff)
    complaint(globex.api, record_id=g_record["id"])
    observation(globex.api, g_staff, tags=["praise"])
    assert api.get(f"/api/v1/staff/{g_staff}/quality-file").status_code == 404
    assert api.get(f"/api/v1/sites/{g_site}/quality-file").status_code == 404
    assert globex.api.get(f"/api/v1/staff/{alice}/quality-file").status_code == 404
    assert globex.api.get(f"/api/v1/sites/{site}/quality-file").status_code == 404

    f = quality_file(api, "staff", alice)
    assert f["subject"] == {"type": "staff", "id": alice, "code": "A", "name": "Alice", "site_id": site}
    since, until = (datetime.fromisoformat(f["period"][k]) for k in ("since", "until"))
    assert until - since == timedelta(days=90)
    assert abs(until - datetime.now(timezone.utc)) < timedelta(minutes=5)

    mine = [perfect, untidy, no_badge, old, praised, plain, against, late]
    evaluations = evaluations_of(api, [r["id"] for r in mine])
    expected = expected_scores(evaluations)
    assert expected["critical_failures"] == 1 and expected["findings"] >= 3
    # Decided clocks: met, breached, or running past their due time.
    now = datetime.now(timezone.utc)
    clocks = [c for c in clocks_of(api, [r["id"] for r in mine])
              if c["state"] in ("met", "breached")
              or (c["state"] == "running" and datetime.fromisoformat(c["due"]) <= now)]
    assert {c["state"] for c in clocks} >= {"met", "breached"}
    # Actions created in the period on her records or owned by her user, as the API lists them.
    expected_actions = {a["id"]: a for r in mine
                        for a in api.get(f"/api/v1/actions?record_id={r['id']}").json}
    expected_actions.update({a["id"]: a for a in api.get(f"/api/v1/actions?owner_id={agent_user}").json})
    assert {auto["id"], owned["id"]} <= set(expected_actions)
    still_open = [a for a in expected_actions.values() if a["status"] not in ("done", "verified")]
    summary = f["summary"]
    assert summary == {
        "records": len(mine),
        "evaluations": expected["evaluations"],
        "score": approx_or_none(expected["score"]),
        "pass_rate": approx_or_none(expected["pass_rate"]),
        "critical_failures": expected["critical_failures"],
        "findings": expected["findings"],
        "deadline_attainment": pytest.approx(100 * sum(c["state"] == "met" for c in clocks) / len(clocks)),
        "clocks_decided": len(clocks),
        "complaints": 3,
        "praise": 3,
        "actions_open": len(still_open),
        "actions_overdue": sum(a["overdue"] for a in still_open),
        "disputes_filed": 0, "disputes_open": 0, "disputes_overturned": 0,
    }

    # Evaluations: newest record first, as stored.
    assert f["evaluations"]["total"] == len(evaluations)
    by_pair = {(e["record_id"], e["standard_code"]): e for e in evaluations}
    for entry in f["evaluations"]["items"]:
        stored = by_pair[(entry["record_id"], entry["standard_code"])]
        assert (entry["percent"], entry["passed"], entry["grade"], entry["failed_critical"]) == \
            (stored["percent"], stored["passed"], stored["grade"], stored["failed_critical"])
    badge = next(e for e in f["evaluations"]["items"] if e["record_id"] == no_badge["id"])
    assert badge["record_kind"] == "inspection" and badge["standard_title"] == DESK["title"]
    assert badge["passed"] is False and badge["percent"] == 0 and badge["failed_critical"] == ["badge"]
    occurred = [datetime.fromisoformat(e["occurred_at"]) for e in f["evaluations"]["items"]]
    assert occurred == sorted(occurred, reverse=True)

    # Findings: every failed item, with its title and record.
    expected_findings = sorted((e["record_id"], e["standard_code"], i["code"]) for e in evaluations
                               for i in e["items"] if i["outcome"] in FAILED)
    assert sorted((x["record_id"], x["standard_code"], x["item_code"])
                  for x in f["findings"]["items"]) == expected_findings
    found = {(x["record_id"], x["item_code"]): x for x in f["findings"]["items"]}
    assert found[(no_badge["id"], "badge")]["critical"] is True
    assert found[(no_badge["id"], "badge")]["item_title"] == _t("Wears a badge")
    assert found[(no_badge["id"], "speed")]["critical"] is False
    assert found[(untidy["id"], "tidy")]["outcome"] == "fail"
    assert found[(untidy["id"], "tidy")]["standard_title"] == DESK["title"]

    # Complaints: against her, about her record; the owner sees the contact in clear.
    complaints = {c["id"]: c for c in f["complaints"]["items"]}
    assert set(complaints) == {against["id"], late["id"], about["id"]}
    assert complaints[against["id"]]["via"] == "subject" and complaints[about["id"]]["via"] == "record"
    assert complaints[about["id"]]["data"]["record_id"] == untidy["id"]
    assert complaints[about["id"]]["data"]["customer"] == CUSTOMER

    # Praise: the tagged observation, CSAT 5 and NPS 10.
    praise = sorted((p["source"], p["metric"], p["answer"], p["record_id"]) for p in f["praise"]["items"])
    assert praise == sorted([("observation", None, None, praised["id"]),
                             ("survey", "csat", 5, perfect["id"]),
                             ("survey", "nps", 10, perfect["id"])])
    assert next(p for p in f["praise"]["items"] if p["source"] == "observation")["title"] == \
        "Helped a guest with luggage"

    # Actions: the automatic ones (open) and the one her user owns (done), overdue or not
    # as the actions API says.
    actions = f["actions"]
    assert (actions["total"], actions["open"], actions["closed"], actions["overdue"]) == \
        (len(expected_actions), len(still_open), 1, summary["actions_overdue"])
    assert {a["id"]: (a["status"], a["overdue"]) for a in actions["items"]} == \
        {a["id"]: (a["status"], a["overdue"]) for a in expected_actions.values()}
    assert next(a for a in actions["items"] if a["id"] == owned["id"])["status"] == "done"

    # Trends: six tenant-local months ending this month, whatever the period: the records
    # 40 and 120 days old fall in earlier months.
    tz = "Asia/Shanghai"
    months = [m["month"] for m in f["trends"]]
    assert len(months) == 6 and months[-1] == period_key(until - timedelta(microseconds=1), "month", tz)
    assert months == sorted(months)
    by_month: dict[str, list] = {}
    occurred_at = {r["id"]: datetime.fromisoformat(r["occurred_at"]) for r in mine + [ancient]}
    for e in evaluations + evaluations_of(api, [ancient["id"]]):
        by_month.setdefault(period_key(occurred_at[e["record_id"]], "month", tz), []).append(e)
    assert period_key(occurred_at[old["id"]], "month", tz) != months[-1]
    assert period_key(occurred_at[ancient["id"]], "month", tz) in months
    for trend in f["trends"]:
        got = by_month.get(trend["month"], [])
        scores = expected_scores(got)
        assert trend == {"month": trend["month"], "evaluations": len(got),
                         "score": approx_or_none(scores["score"]),
                         "pass_rate": approx_or_none(scores["pass_rate"])}

    # Rank by mean score among the two of the site (and the tenant).
    alice_score = expected["score"]
    bob_score = expected_scores(evaluations_of(api, [bobs["id"]]))["score"]
    place = 1 if alice_score >= bob_score else 2
    for scope in ("within_site", "within_tenant"):
        assert f["rank"][scope] == {"metric": "score", "rank": place, "out_of": 2,
                                    "value": pytest.approx(alice_score)}


def test_the_period_narrows_everything(acme, desk):
    api = acme.api
    staff = make(api, "/api/v1/staff", {"code": "A", "name": "Alice"})["id"]
    march = datetime(2026, 3, 10, 9, tzinfo=timezone.utc)
    inside = inspection(api, staff, failed=("greet",), when=march)
    direct = complaint(api, staff, when=march - timedelta(days=1))
    about = complaint(api, record_id=inside["id"], when=march + timedelta(days=1))
    # Before and after the period (tenant-local March, Asia/Shanghai).
    inspection(api, staff, when=march + timedelta(days=40))
    inspection(api, staff, failed=("badge",), when=datetime(2026, 2, 28, 15, 59, tzinfo=timezone.utc))
    complaint(api, staff, when=datetime(2026, 3, 31, 16, tzinfo=timezone.utc))
    f = quality_file(api, "staff", staff, since="2026-03-01T00:00:00+08:00",
                     until="2026-04-01T00:00:00+08:00", limit=1)
    assert f["period"]["since"] == "2026-02-28T16:00:00+00:00"
    evaluations = evaluations_of(api, [inside["id"], direct["id"]])
    expected = expected_scores(evaluations)
    assert f["summary"]["records"] == 2
    assert f["summary"]["evaluations"] == expected["evaluations"]
    assert f["summary"]["critical_failures"] == 0
    assert f["evaluations"]["total"] == len(evaluations)
    assert [e["record_id"] for e in f["evaluations"]["items"]] == [inside["id"]]  # the newest
    assert f["summary"]["complaints"] == f["complaints"]["total"] == 2
    assert [c["id"] for c in f["complaints"]["items"]] == [about["id"]]  # the newest
    assert [m["month"] for m in f["trends"]] == ["2025-10", "2025-11", "2025-12", "2026-01",
                                                 "2026-02", "2026-03"]
    assert f["trends"][-1] == {"month": "2026-03", "evaluations": expected["evaluations"],
                               "score": approx_or_none(expected["score"]),
                               "pass_rate": approx_or_none(expected["pass_rate"])}
    assert f["trends"][0] == {"month": "2025-10", "evaluations": 0, "score": None, "pass_rate": None}
    # limit=1 keeps one row per list, and the totals.
    assert len(f["findings"]["items"]) == 1 and f["findings"]["total"] == expected["findings"]


# -- rank --------------------------------------------------------------------------------------


def test_rank_with_three_staff_of_known_scores(acme, globex, desk):
    api = acme.api
    north = make(api, "/api/v1/sites", {"code": "N", "name": "North"})["id"]
    south = make(api, "/api/v1/sites", {"code": "S", "name": "South"})["id"]
    ann = make(api, "/api/v1/staff", {"code": "ann", "name": "Ann", "site_id": north})["id"]
    ben = make(api, "/api/v1/staff", {"code": "ben", "name": "Ben", "site_id": north})["id"]
    cat = make(api, "/api/v1/staff", {"code": "cat", "name": "Cat", "site_id": south})["id"]
    idle = make(api, "/api/v1/staff", {"code": "idle", "name": "Idle", "site_id": north})["id"]
    # Weighted, four items of weight 1: all pass 100 %, one failed 75 %, two failed 50 %.
    ann_records = [inspection(api, ann, north), inspection(api, ann, north)]  # 100
    ben_records = [inspection(api, ben, north, failed=("greet",))]  # 75
    cat_records = [inspection(api, cat, south, failed=("greet", "tidy"))]  # 50
    scores = {name: expected_scores(evaluations_of(api, [r["id"] for r in records]))["score"]
              for name, records in (("ann", ann_records), ("ben", ben_records), ("cat", cat_records))}
    assert scores == {"ann": 100, "ben": 75, "cat": 50}
    # Another tenant's perfect staff never takes a place.
    put_standard(globex, CODE, document=DESK)
    g_staff = make(globex.api, "/api/v1/staff", {"code": "ann", "name": "Ann"})["id"]
    inspection(globex.api, g_staff)

    def rank(kind, subject_id):
        return quality_file(api, kind, subject_id)["rank"]

    assert rank("staff", ann) == {
        "within_site": {"metric": "score", "rank": 1, "out_of": 2, "value": 100},
        "within_tenant": {"metric": "score", "rank": 1, "out_of": 3, "value": 100}}
    assert rank("staff", ben) == {
        "within_site": {"metric": "score", "rank": 2, "out_of": 2, "value": 75},
        "within_tenant": {"metric": "score", "rank": 2, "out_of": 3, "value": 75}}
    assert rank("staff", cat) == {
        "within_site": {"metric": "score", "rank": 1, "out_of": 1, "value": 50},
        "within_tenant": {"metric": "score", "rank": 3, "out_of": 3, "value": 50}}
    # Without a score: no rank, but how many are ranked.
    assert rank("staff", idle) == {
        "within_site": {"metric": "score", "rank": None, "out_of": 2, "value": None},
        "within_tenant": {"metric": "score", "rank": None, "out_of": 3, "value": None}}
    # Sites by the mean of their evaluations: North (100, 100, 75) before South (50).
    assert rank("sites", north) == {"within_site": None, "within_tenant": {
        "metric": "score", "rank": 1, "out_of": 2, "value": pytest.approx(275 / 3)}}
    assert rank("sites", south)["within_tenant"] == {"metric": "score", "rank": 2, "out_of": 2,
                                                     "value": 50}
    # A tie shares the rank: Ben's 75 deleted and a 100 added, he ties with Ann.
    assert api.remove(f"{RECORDS}/{ben_records[0]['id']}").status_code == 204
    inspection(api, ben, north)
    assert rank("staff", ben)["within_tenant"] == {"metric": "score", "rank": 1, "out_of": 3, "value": 100}
    assert rank("staff", cat)["within_tenant"]["rank"] == 3


# -- the file of a site ------------------------------------------------------------------------


def test_site_file(acme, desk):
    api = acme.api
    site = make(api, "/api/v1/sites", {"code": "N", "name": "North"})["id"]
    other = make(api, "/api/v1/sites", {"code": "S", "name": "South"})["id"]
    staff = make(api, "/api/v1/staff", {"code": "A", "name": "Alice", "site_id": other})["id"]
    # Records at the site, whoever did the work (Alice belongs to another site).
    first = inspection(api, staff, site, failed=("badge",))
    second = inspection(api, None, site)
    observation(api, site=site, tags=["praise"])
    direct = complaint(api, site=site)
    about = complaint(api, record_id=second["id"])
    inspection(api, staff, other, failed=("greet",))
    complaint(api, site=other)
    f = quality_file(api, "sites", site)
    assert f["subject"] == {"type": "site", "id": site, "code": "N", "name": "North", "site_id": None}
    evaluations = evaluations_of(api, [first["id"], second["id"], direct["id"]])
    expected = expected_scores(evaluations)
    assert f["summary"]["records"] == 4
    for name in ("evaluations", "critical_failures", "findings"):
        assert f["summary"][name] == expected[name], name
    assert f["summary"]["score"] == pytest.approx(expected["score"])
    assert f["summary"]["pass_rate"] == pytest.approx(expected["pass_rate"])
    assert {c["id"]: c["via"] for c in f["complaints"]["items"]} == {direct["id"]: "subject",
                                                                      about["id"]: "record"}
    assert f["summary"]["praise"] == 1
    # The action the failed badge opened is on the site's record.
    assert [a["record_id"] for a in f["actions"]["items"]] == [first["id"]]
    assert f["rank"]["within_site"] is None and f["rank"]["within_tenant"]["out_of"] == 2


# -- who sees what -----------------------------------------------------------------------------


def test_complainants_contact_masked_without_personal_data(acme, desk):
    staff = make(acme.api, "/api/v1/staff", {"code": "A", "name": "Alice"})["id"]
    record = complaint(acme.api, staff)

    def reads():
        with acme.session() as s:
            return s.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "personal_data_read", AuditEvent.entity_id == uuid.UUID(record["id"])))

    before = reads()
    viewer = acme.as_role("viewer")
    [seen] = quality_file(viewer, "staff", staff)["complaints"]["items"]
    assert seen["data"]["customer"] == MASKED and seen["data"]["description"] == "Rude at check-in"
    assert reads() == before  # a masked read reveals nothing: not audited
    [seen] = quality_file(acme.api, "staff", staff)["complaints"]["items"]
    assert seen["data"]["customer"] == CUSTOMER
    assert reads() == before + 1


def test_agents_do_not_see_mystery_inspections(acme, desk):
    staff = make(acme.api, "/api/v1/staff", {"code": "A", "name": "Alice"})["id"]
    inspection(acme.api, staff)
    inspection(acme.api, staff, failed=("badge",), visibility="mystery")
    owner = quality_file(acme.api, "staff", staff)["summary"]
    agent = quality_file(acme.as_role("agent"), "staff", staff)["summary"]
    assert (owner["records"], owner["critical_failures"], owner["actions_open"]) == (2, 1, 1)
    assert (agent["records"], agent["critical_failures"], agent["actions_open"]) == (1, 0, 0)
    assert agent["score"] == 100


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("params, field", [
    ({"since": "2026-03-02T00:00:00+00:00", "until": "2026-03-01T00:00:00+00:00"}, "since"),
    ({"since": "2026-03-01T00:00:00+00:00", "until": "2026-03-01T00:00:00+00:00"}, "since"),
    ({"since": "2999-01-01T00:00:00+00:00"}, "since"),
    ({"since": "2026-03-01T00:00:00"}, "since"),
    ({"until": "yesterday"}, "until"),
    ({"limit": "0"}, "limit"),
    ({"limit": "201"}, "limit"),
])
def test_bad_input_is_422(acme, params, field):
    staff = make(acme.api, "/api/v1/staff", {"code": "A", "name": "Alice"})["id"]
    for kind, subject in (("staff", staff),):
        r = acme.api.get(f"/api/v1/{kind}/{subject}/quality-file", query_string=params)
        assert r.status_code == 422, r.json
        assert field in r.json["errors"]["query"]


def test_unknown_ids_and_no_token(acme, client):
    for kind in ("staff", "sites"):
        assert acme.api.get(f"/api/v1/{kind}/{uuid.uuid4()}/quality-file").status_code == 404
        assert acme.api.get(f"/api/v1/{kind}/not-a-uuid/quality-file").status_code == 404
        assert client.get(f"/api/v1/{kind}/{uuid.uuid4()}/quality-file").status_code == 401


def test_extreme_periods_are_answered(acme):
    staff = make(acme.api, "/api/v1/staff", {"code": "A", "name": "Alice"})["id"]
    f = quality_file(acme.api, "staff", staff, until="0001-01-02T00:00:00+00:00")
    assert f["summary"]["records"] == 0 and f["trends"][-1]["month"] == "0001-01"
    f = quality_file(acme.api, "staff", staff, since="0001-01-01T00:00:00+00:00",
                     until="9999-12-31T00:00:00+00:00")
    assert f["summary"]["records"] == 0 and f["trends"][-1]["month"] == "9999-12"


# -- cost --------------------------------------------------------------------------------------


def test_a_constant_number_of_queries(app, acme, desk, client):
    api = acme.api
    site = make(api, "/api/v1/sites", {"code": "N", "name": "North"})["id"]
    staff = make(api, "/api/v1/staff", {"code": "A", "name": "Alice", "site_id": site})["id"]
    csat = make_survey(acme, instrument="csat")
    viewer = acme.as_role("viewer")
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def queries(kind, subject) -> int:
        quality_file(viewer, kind, subject)  # warm: the token's last use is recorded once
        engine = app.extensions["servq.engine"]
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            quality_file(viewer, kind, subject)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    def grow(n):
        for i in range(n):
            record = inspection(api, staff, site, failed=("greet",) if i % 2 else ("badge",))
            complaint(api, staff)
            complaint(api, record_id=record["id"])
            observation(api, staff, site, tags=["praise"])
            token = invite(acme, csat["id"], record_id=record["id"])["token"]
            assert answer(client, token, {"satisfaction": 5}).status_code == 201

    grow(1)
    small = {kind: queries(kind, subject) for kind, subject in (("staff", staff), ("sites", site))}
    grow(6)
    large = {kind: queries(kind, subject) for kind, subject in (("staff", staff), ("sites", site))}
    assert large == small
    assert quality_file(viewer, "staff", staff)["summary"]["complaints"] == 14
