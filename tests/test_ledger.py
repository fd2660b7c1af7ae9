"""The rewards and penalties ledger through HTTP: rules, posting from evaluations,
complaints and suggestions, idempotence, the repeat-fault flag, disputes holding entries,
money only when turned on, the summary, and tenancy."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import time_machine
from sqlalchemy import func, select

from servq.core.models import LedgerEntry, OutboxEvent
from tests.test_disputes import DISPUTES, MONDAY, decide, file, shop  # noqa: F401  (fixture)
from tests.test_inspections import CODE, GOOD

RECORDS = "/api/v1/records"
LEDGER = "/api/v1/ledger"
TUESDAY = datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc)
RULES = {"failed_item": {"points": 2, "critical_multiplier": 2},
         "market_complaint": {"points": 5},
         "internal_complaint": {"points": 3},
         "suggestion": {"points": 4}}


def put_rules(tenant, document=None, etag=None):
    headers = {"If-Match": etag} if etag else {}
    return tenant.api.put(f"{LEDGER}/rules", json=RULES if document is None else document, headers=headers)


def entries(client, **query):
    r = client.get(f"{LEDGER}/entries", query_string={"page_size": 500, **query})
    assert r.status_code == 200, r.json
    return r.json


def staff(tenant, code, **body):
    r = tenant.api.post("/api/v1/staff", json={"code": code, "name": code, **body})
    assert r.status_code == 201, r.json
    return r.json["id"]


def inspect(tenant, staff_id, answers, when="2026-03-02T09:00:00+08:00"):
    r = tenant.api.post(RECORDS, json={"kind": "inspection", "occurred_at": when, "staff_id": staff_id,
                                       "data": {"standard": CODE, "answers": answers}})
    assert r.status_code == 201, r.json
    return r.json


def test_rules_are_validated_and_money_needs_turning_on(acme):
    with time_machine.travel(MONDAY, tick=False):
        assert acme.api.get(f"{LEDGER}/rules").status_code == 404
        r = put_rules(acme, {"failed_item": {"points": 2, "amount": 50}})
        assert r.status_code == 422 and "amount" in r.json["errors"]["json"]["failed_item"]
        r = put_rules(acme, {"money": True, "failed_item": {"points": 2}})
        assert r.status_code == 422 and "currency" in r.json["errors"]["json"]
        assert put_rules(acme, {"failed_item": {"points": -1}}).status_code == 422
        assert put_rules(acme, {"flag_threshold": "x"}).status_code == 422
        assert acme.api.get(f"{LEDGER}/rules").status_code == 404  # nothing stored
        r = put_rules(acme)
        assert r.status_code == 200, r.json
        etag = r.headers["ETag"]
        assert put_rules(acme, RULES).status_code == 428  # replacing needs If-Match
        assert put_rules(acme, RULES, etag='"stale"').status_code == 412
        assert acme.as_role("agent").put(f"{LEDGER}/rules", json=RULES).status_code == 403
        w1 = staff(acme, "W1")
        # Cash refused unless enabled.
        r = acme.api.post(f"{LEDGER}/entries", json={"staff_id": w1, "kind": "penalty", "points": 1, "amount": 20})
        assert r.status_code == 422, r.json
        r = put_rules(acme, {**RULES, "money": True, "currency": "CNY"}, etag=etag)
        assert r.status_code == 200 and r.json["version"] == 2
        r = acme.api.post(f"{LEDGER}/entries", json={"staff_id": w1, "kind": "penalty", "points": 1,
                                                     "amount": 20, "note": "Late"})
        assert r.status_code == 201, r.json
        assert r.json["amount"] == 20 and r.json["currency"] == "CNY" and r.json["rule"] == "manual"
        assert r.json["month"] == "2026-03" and r.json["status"] == "proposed"
        r = acme.api.post(f"{LEDGER}/entries", json={"staff_id": w1, "kind": "penalty", "points": 1,
                                                     "amount": 20, "currency": "EUR"})
        assert r.status_code == 422


def test_failures_post_once_and_three_critical_failures_raise_one_flag(acme):
    with time_machine.travel(MONDAY, tick=False):
        from tests.test_evaluations import put_standard
        from tests.test_inspections import FRONT_DESK
        put_standard(acme, CODE, document=FRONT_DESK)
        put_rules(acme)
        w1 = staff(acme, "W1")
        bad = {**GOOD, "uniform": {"outcome": "fail"}, "lapses": {"count": 0}}
        first = inspect(acme, w1, bad)
        mine = entries(acme.api, staff_id=w1)
        assert [(e["rule"], e["points"], e["source"]["item_code"]) for e in mine] == [("critical_item", 4.0, "uniform")]
        assert mine[0]["source"]["record_id"] == first["id"] and mine[0]["month"] == "2026-03"
        # Re-scoring never posts twice.
        assert acme.api.post(f"{RECORDS}/{first['id']}/evaluate").status_code == 200
        assert len(entries(acme.api, staff_id=w1)) == 1
        inspect(acme, w1, bad, "2026-03-10T09:00:00+08:00")
        assert acme.api.get(f"{LEDGER}/flags").json == []
        inspect(acme, w1, bad, "2026-03-20T09:00:00+08:00")
        inspect(acme, w1, bad, "2026-03-25T09:00:00+08:00")  # a fourth: still one flag
        inspect(acme, w1, bad, "2026-04-01T09:00:00+08:00")  # next month
        flags = acme.api.get(f"{LEDGER}/flags").json
        assert len(flags) == 1, flags
        assert flags[0]["staff_id"] == w1 and flags[0]["month"] == "2026-03" and flags[0]["count"] == 3
        assert flags[0]["items"] == [{"item": "uniform", "count": 3}]
        with acme.session() as s:
            assert s.scalar(select(func.count()).select_from(OutboxEvent)
                            .where(OutboxEvent.type == "ledger.flagged")) == 1
        r = acme.api.get(f"{LEDGER}/entries", query_string={"page_size": 2, "month": "2026-03"})
        assert len(r.json) == 2 and '"total": 4' in r.headers["X-Pagination"]
        summary = acme.api.get(f"{LEDGER}/summary", query_string={"month": "2026-03"}).json
        assert summary["by_staff"] == [{"staff_id": w1, "reward_points": 0.0, "penalty_points": 16.0,
                                        "net_points": -16.0, "entries": 4, "held": 0,
                                        "reward_amount": 0.0, "penalty_amount": 0.0}]
        assert summary["flags"] == 1
        assert acme.api.get(f"{LEDGER}/summary").status_code == 422
        assert acme.api.post(f"{LEDGER}/summary/announce?month=2026-03").status_code == 202
        with acme.session() as s:
            assert s.scalar(select(func.count()).select_from(OutboxEvent)
                            .where(OutboxEvent.type == "ledger.monthly")) == 1
        # The weekly report carries the month's ledger (its JSON).
        r = acme.api.get("/api/v1/reports/weekly", query_string={"week": "2026-W12"})
        assert r.status_code == 200, r.json
        ledger = r.json["ledger"]
        assert (ledger["month"], ledger["penalty_points"], ledger["entries"], ledger["flags"]) == ("2026-03", 16.0, 4, 1)
        assert ledger["staff"][0]["staff_id"] == w1
        # The person's quality file shows the ledger.
        r = acme.api.get(f"/api/v1/staff/{w1}/quality-file",
                         query_string={"since": "2026-03-01T00:00:00+08:00", "until": "2026-04-01T00:00:00+08:00"})
        assert r.status_code == 200, r.json
        assert r.json["ledger"] == {"reward_points": 0.0, "penalty_points": 16.0, "entries": 4, "held": 0,
                                    "open_flags": 1}


def test_no_rules_no_entries(acme):
    with time_machine.travel(MONDAY, tick=False):
        from tests.test_evaluations import put_standard
        from tests.test_inspections import FRONT_DESK
        put_standard(acme, CODE, document=FRONT_DESK)
        w1 = staff(acme, "W1")
        inspect(acme, w1, {**GOOD, "uniform": {"outcome": "fail"}})
        assert entries(acme.api) == []


def test_complaints_and_suggestions_post(acme):
    with time_machine.travel(MONDAY, tick=False):
        site = acme.api.post("/api/v1/sites", json={"code": "S1", "name": "North"}).json["id"]
        boss = staff(acme, "B1", site_id=site)
        w1 = staff(acme, "W1", site_id=site)
        put_rules(acme, {**RULES, "market_complaint": {"points": 5, "supervisor_points": 2},
                         "supervisors": {site: boss}})
        def complaint(channel, who=w1):
            r = acme.api.post(RECORDS, json={"kind": "complaint", "occurred_at": "2026-03-02T09:00:00+08:00",
                                             "staff_id": who, "site_id": site,
                                             "data": {"channel": channel, "description": "Rude"}})
            assert r.status_code == 201, r.json
            return r.json
        market = complaint("phone")
        internal = complaint("internal")
        got = {(e["rule"], e["staff_id"], e["points"]) for e in entries(acme.api)}
        assert got == {("market_complaint", w1, 5.0), ("market_complaint_supervisor", boss, 2.0),
                       ("internal_complaint", w1, 3.0)}
        assert {e["source"]["complaint_id"] for e in entries(acme.api)} == {market["id"], internal["id"]}
        # A person's reports_to is their supervisor, before the site's.
        lead = staff(acme, "L1")
        w3 = staff(acme, "W3", site_id=site, reports_to=lead)
        third = complaint("email", who=w3)
        assert {(e["rule"], e["staff_id"]) for e in entries(acme.api) if e["source"]["complaint_id"] == third["id"]} \
            == {("market_complaint", w3), ("market_complaint_supervisor", lead)}
        # A transition of the complaint (re-scored) posts nothing more.
        r = acme.api.post(f"{RECORDS}/{market['id']}/transitions", json={"action": "acknowledge"},
                          headers={"If-Match": acme.api.get(f"{RECORDS}/{market['id']}").headers["ETag"]})
        assert r.status_code == 200, r.json
        assert len(entries(acme.api)) == 5
        r = acme.api.post(RECORDS, json={"kind": "observation", "occurred_at": "2026-03-02T09:00:00+08:00",
                                         "staff_id": w1, "data": {"title": "Move the queue", "tags": ["suggestion"]}})
        assert r.status_code == 201, r.json
        reward = entries(acme.api, kind="reward")
        assert [(e["rule"], e["points"]) for e in reward] == [("suggestion", 4.0)]
        # A manager marks it a large contribution (doubled, once), then approves and applies.
        url = f"{LEDGER}/entries/{reward[0]['id']}"
        def step(action, client=acme.api):
            return client.post(f"{url}/transitions", json={"action": action},
                               headers={"If-Match": acme.api.get(url).headers["ETag"]})
        assert acme.api.post(f"{url}/transitions", json={"action": "approve"}).status_code == 428
        assert acme.api.post(f"{url}/transitions", json={"action": "approve"},
                             headers={"If-Match": '"stale"'}).status_code == 412
        r = step("mark_large")
        assert r.status_code == 200 and r.json["points"] == 8.0 and r.json["large"] is True
        assert step("mark_large").status_code == 409
        assert step("apply").status_code == 409
        assert step("approve").json["status"] == "approved"
        assert step("apply").json["status"] == "applied"
        assert step("void").status_code == 409


def test_a_disputed_evaluation_holds_its_entries_until_decided(acme, shop):
    with time_machine.travel(MONDAY, tick=False):
        put_rules(acme)
        record = shop["record"]
        # Rules came after the record: a re-score posts its failures (greeting, wait).
        assert acme.api.post(f"{RECORDS}/{record['id']}/evaluate").status_code == 200
    posted = {e["source"]["item_code"]: e for e in entries(acme.api, staff_id=record["staff_id"])}
    assert {"greeting", "wait"} <= set(posted)
    # The agent sees their own entries only; another agent none.
    assert {e["id"] for e in entries(shop["agent"])} == {e["id"] for e in posted.values()}
    assert entries(acme.as_role("agent")) == []
    assert shop["agent"].post(f"{LEDGER}/entries/{posted['wait']['id']}/transitions",
                              json={"action": "approve"}, headers={"If-Match": "x"}).status_code == 403
    with time_machine.travel(TUESDAY, tick=False):
        dispute = file(shop["agent"], record["id"]).json
        held = {e["source"]["item_code"]: e for e in entries(acme.api, staff_id=record["staff_id"])}
        assert held["greeting"]["status"] == "held" and held["greeting"]["held"] is True
        assert held["wait"]["status"] == "held"
        url = f"{LEDGER}/entries/{held['wait']['id']}"
        r = acme.api.post(f"{url}/transitions", json={"action": "approve"},
                          headers={"If-Match": acme.api.get(url).headers["ETag"]})
        assert r.status_code == 409
        r = decide(shop["inspector"], dispute, result="partially_accepted",
                   items=[{"item": "greeting", "accepted": True}, {"item": "wait", "accepted": False}])
        assert r.status_code == 200, r.json
    after = {e["source"]["item_code"]: e for e in entries(acme.api, staff_id=record["staff_id"])}
    assert after["greeting"]["status"] == "voided"   # the dispute accepted the item
    assert after["wait"]["status"] == "proposed"     # released
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == len(after)


@pytest.mark.cross_tenant("GET /api/v1/ledger/rules", "PUT /api/v1/ledger/rules",
                          "GET /api/v1/ledger/entries", "POST /api/v1/ledger/entries",
                          "GET /api/v1/ledger/entries/<uuid:entry_id>",
                          "POST /api/v1/ledger/entries/<uuid:entry_id>/transitions",
                          "GET /api/v1/ledger/flags", "GET /api/v1/ledger/summary",
                          "POST /api/v1/ledger/summary/announce")
def test_the_ledger_of_another_tenant_is_invisible(acme, globex):
    with time_machine.travel(MONDAY, tick=False):
        r = put_rules(acme)
        etag = r.headers["ETag"]
        w1 = staff(acme, "W1")
        entry = acme.api.post(f"{LEDGER}/entries", json={"staff_id": w1, "kind": "reward", "points": 3}).json
        entry_etag = acme.api.get(f"{LEDGER}/entries/{entry['id']}").headers["ETag"]
        assert globex.api.get(f"{LEDGER}/rules").status_code == 404
        # Globex's PUT makes globex's own rules (no If-Match needed: it has none); acme's stay.
        assert globex.api.put(f"{LEDGER}/rules", json={"suggestion": {"points": 1}}, headers={"If-Match": etag}).status_code == 200
        assert acme.api.get(f"{LEDGER}/rules").json["document"]["failed_item"]["points"] == 2
        assert globex.api.get(f"{LEDGER}/entries").json == []
        assert globex.api.get(f"{LEDGER}/entries/{entry['id']}").status_code == 404
        r = globex.api.post(f"{LEDGER}/entries/{entry['id']}/transitions", json={"action": "approve"},
                            headers={"If-Match": entry_etag})
        assert r.status_code == 404
        r = globex.api.post(f"{LEDGER}/entries", json={"staff_id": w1, "kind": "reward", "points": 3})
        assert r.status_code == 422  # acme's staff member is unknown there
        record = acme.api.post(RECORDS, json={"kind": "observation", "occurred_at": "2026-03-02T09:00:00+08:00",
                                              "data": {"title": "x"}}).json
        mine = staff(globex, "G1")
        r = globex.api.post(f"{LEDGER}/entries", json={"staff_id": mine, "kind": "reward", "points": 3,
                                                       "record_id": record["id"]})
        assert r.status_code == 422 and "record_id" in r.json["errors"]["json"]
        assert globex.api.get(f"{LEDGER}/flags").json == []
        assert globex.api.get(f"{LEDGER}/summary?month=2026-03").json["by_staff"] == []
        assert globex.api.post(f"{LEDGER}/summary/announce?month=2026-03").status_code == 202
        assert acme.api.get(f"{LEDGER}/entries/{entry['id']}").json["status"] == "proposed"
        with acme.session() as s:
            assert s.scalar(select(func.count()).select_from(OutboxEvent)
                            .where(OutboxEvent.type == "ledger.monthly")) == 0


def test_a_batch_posts_in_bulk_once_and_flags_once(acme):
    """A batch (the bulk writer: nothing read first, INSERTs queued on PostgreSQL) posts
    like single records; the three failures of one person in it raise one flag."""
    with time_machine.travel(MONDAY, tick=False):
        from tests.test_evaluations import put_standard
        from tests.test_inspections import FRONT_DESK
        put_standard(acme, CODE, document=FRONT_DESK)
        put_rules(acme)
        w1, w2 = staff(acme, "W1"), staff(acme, "W2")
        bad = {**GOOD, "uniform": {"outcome": "fail"}, "lapses": {"count": 0}}
        body = {"records": [
            {"kind": "inspection", "occurred_at": f"2026-03-0{day}T09:00:00+08:00", "staff_id": who,
             "data": {"standard": CODE, "answers": bad}} for day in (2, 3, 4) for who in (w1, w2)]
            + [{"kind": "observation", "occurred_at": "2026-03-02T09:00:00+08:00", "staff_id": w2,
                "data": {"title": "Idea", "tags": ["proactive"]}}]}
        r = acme.api.post("/api/v1/records/batch", json=body)
        assert r.status_code in (200, 201), r.json
        got = entries(acme.api)
        assert len(got) == 7
        assert sorted(e["rule"] for e in got) == ["critical_item"] * 6 + ["suggestion"]
        flags = acme.api.get(f"{LEDGER}/flags").json
        assert sorted(f["staff_id"] for f in flags) == sorted([w1, w2])
        # Re-scoring the lot posts nothing more.
        ids = [rec["id"] for rec in acme.api.get(RECORDS, query_string={"page_size": 100}).json]
        for record_id in ids:
            acme.api.post(f"{RECORDS}/{record_id}/evaluate")
        assert len(entries(acme.api)) == 7 and len(acme.api.get(f"{LEDGER}/flags").json) == 2


def test_a_withdrawn_dispute_releases_its_held_entries(acme, shop):
    with time_machine.travel(MONDAY, tick=False):
        put_rules(acme)
        record = shop["record"]
        acme.api.post(f"{RECORDS}/{record['id']}/evaluate")
    with time_machine.travel(TUESDAY, tick=False):
        dispute = file(shop["agent"], record["id"]).json
        assert {e["status"] for e in entries(acme.api, staff_id=record["staff_id"])} == {"held"}
        etag = shop["agent"].get(f"{DISPUTES}/{dispute['id']}").headers["ETag"]
        r = shop["agent"].post(f"{DISPUTES}/{dispute['id']}/withdraw", headers={"If-Match": etag})
        assert r.status_code == 200, r.json
    assert {e["status"] for e in entries(acme.api, staff_id=record["staff_id"])} == {"proposed"}
