"""Pareto views through HTTP: the standard items that fail most and the complaint
categories that recur most, with shares and cumulative shares worked out here from the
rows the test creates; filters, limits, titles, and another tenant's rows never counted."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.test_evaluations import put_standard
from tests.test_kpis_timing import FRONT_DESK, INSPECTIONS, inspect, inspection_failures

# Rows dated in 2026, entered on a fixed day after them (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("present")

RECORDS = "/api/v1/records"
ITEMS = "/api/v1/kpis/pareto/items"
COMPLAINTS = "/api/v1/kpis/pareto/complaints"
PERIOD = {"since": "2026-03-01T00:00:00+08:00", "until": "2026-05-01T00:00:00+08:00"}
# (occurred_at, category, site): filed long after the fact and never acknowledged, so both
# deadlines of a general complaint (4 working hours, 5 working days) are breached.
ACME_COMPLAINTS = [
    ("2026-03-02T10:00:00+08:00", "noise", "S1"),
    ("2026-03-03T10:00:00+08:00", "noise", None),
    ("2026-03-31T17:00:00+00:00", "noise", None),   # 1 April in Shanghai: in the period
    ("2026-03-04T10:00:00+08:00", "billing", "S1"),
    ("2026-04-10T10:00:00+08:00", "billing", None),
    ("2026-04-11T10:00:00+08:00", "", None),
]
OUTSIDE = ("2026-02-27T10:00:00+08:00", "noise", None)     # before the period
DELETED = ("2026-03-05T10:00:00+08:00", "billing", None)


def complaint(tenant, occurred, category, site_id=None):
    body = {"kind": "complaint", "occurred_at": occurred,
            "data": {"channel": "web", "description": "Not good", "category": category}}
    if site_id:
        body["site_id"] = site_id
    r = tenant.api.post(RECORDS, json=body)
    assert r.status_code == 201, r.json
    return r.json["id"]


def expected_pareto(counts: Counter) -> tuple[int, list[tuple]]:
    """(total, [(key, count, share, cumulative share)]) most first, ties by key, None last."""
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] is None, str(kv[0])))
    out, running = [], 0
    for key, n in ordered:
        running += n
        out.append((key, n, pytest.approx(100 * n / total), pytest.approx(100 * running / total)))
    return total, out


@pytest.fixture
def data(acme, globex):
    site = acme.api.post("/api/v1/sites", json={"code": "S1", "name": "North"}).json["id"]
    for occurred, category, at_site in ACME_COMPLAINTS:
        complaint(acme, occurred, category, site if at_site else None)
    complaint(acme, *OUTSIDE[:2])
    gone = complaint(acme, *DELETED[:2])
    assert acme.api.remove(f"{RECORDS}/{gone}").status_code == 204
    for _ in range(5):
        complaint(globex, "2026-03-02T10:00:00+08:00", "parking")
    for tenant in (acme, globex):
        put_standard(tenant, "hq.front_desk", document={"code": "hq.front_desk", "version": 1,
                                                        **FRONT_DESK})
    for row in INSPECTIONS:
        inspect(acme, *row)
    inspect(globex, "2026-03-02T10:00:00+08:00", "pass", "pass", 30)
    return {"site": site}


@pytest.mark.cross_tenant("GET /api/v1/kpis/pareto/complaints")
def test_complaint_categories(acme, globex, data):
    r = acme.api.get(COMPLAINTS, query_string=PERIOD)
    assert r.status_code == 200, r.json
    total, entries = expected_pareto(Counter(category or None for _, category, _ in ACME_COMPLAINTS))
    assert r.json["total"] == total == 6
    assert [(e["category"], e["count"], e["share"], e["cumulative_share"])
            for e in r.json["categories"]] == entries
    assert [e["category"] for e in r.json["categories"]] == ["noise", "billing", None]
    assert r.json["categories"][-1]["cumulative_share"] == pytest.approx(100)
    assert r.json["since"] == "2026-02-28T16:00:00+00:00"

    # One site only; the first entry only (shares still of them all).
    r = acme.api.get(COMPLAINTS, query_string={**PERIOD, "site_id": data["site"]})
    assert [(e["category"], e["count"]) for e in r.json["categories"]] == [("billing", 1), ("noise", 1)]
    r = acme.api.get(COMPLAINTS, query_string={**PERIOD, "limit": 1})
    assert r.json["total"] == 6 and [e["category"] for e in r.json["categories"]] == ["noise"]
    assert r.json["categories"][0]["share"] == pytest.approx(50)

    # The other tenant sees only its own.
    r = globex.api.get(COMPLAINTS, query_string=PERIOD)
    assert r.json["total"] == 5
    assert [(e["category"], e["count"], e["cumulative_share"]) for e in r.json["categories"]] == \
        [("parking", 5, 100.0)]
    # And acme's site filters globex down to nothing.
    r = globex.api.get(COMPLAINTS, query_string={**PERIOD, "site_id": data["site"]})
    assert r.status_code == 200 and r.json == {**r.json, "total": 0, "categories": []}


@pytest.mark.cross_tenant("GET /api/v1/kpis/pareto/items")
def test_items_that_fail_most(acme, globex, data):
    failures = Counter(key for key, _ in inspection_failures())
    for _ in ACME_COMPLAINTS:  # both general deadlines breached (none acknowledged)
        failures["core.complaint/acknowledged_in_time"] += 1
        failures["core.complaint/general_resolved_in_time"] += 1
    r = acme.api.get(ITEMS, query_string=PERIOD)
    assert r.status_code == 200, r.json
    total, entries = expected_pareto(failures)
    assert r.json["total"] == total
    assert [(e["key"], e["count"], e["share"], e["cumulative_share"]) for e in r.json["items"]] == entries
    first = r.json["items"][0]
    assert first == {**first, "key": "core.complaint/acknowledged_in_time",
                     "standard_code": "core.complaint", "item_code": "acknowledged_in_time",
                     "title": "Acknowledged within 4 working hours"}
    titles = {e["key"]: e["title"] for e in r.json["items"]}
    assert titles["hq.front_desk/greeting"] == "Greets the guest"

    zh = acme.api.get(ITEMS, query_string={**PERIOD, "standard": "hq.front_desk", "limit": 2},
                      headers={"Accept-Language": "zh-CN,zh;q=0.9"}).json
    total, entries = expected_pareto(Counter(key for key, _ in inspection_failures()))
    assert zh["total"] == total
    assert [(e["key"], e["count"], e["cumulative_share"]) for e in zh["items"]] == \
        [(key, n, cumulative) for key, n, _, cumulative in entries[:2]]
    assert zh["items"][0]["title"] == "问候客人"

    # Only inspections; only one site (no inspection there, only complaints).
    r = acme.api.get(ITEMS, query_string={**PERIOD, "kind": "inspection"})
    assert r.json["total"] == sum(n for key, n in failures.items() if key.startswith("hq."))
    r = acme.api.get(ITEMS, query_string={**PERIOD, "site_id": data["site"]})
    assert [(e["key"], e["count"]) for e in r.json["items"]] == [
        ("core.complaint/acknowledged_in_time", 2), ("core.complaint/general_resolved_in_time", 2)]

    r = globex.api.get(ITEMS, query_string=PERIOD)
    assert [(e["key"], e["count"]) for e in r.json["items"]] == [
        ("core.complaint/acknowledged_in_time", 5), ("core.complaint/general_resolved_in_time", 5),
        ("hq.front_desk/wait", 1)]


def test_an_item_no_longer_in_the_standard_keeps_its_title(acme, data):
    document = {"code": "hq.front_desk", "version": 2, **FRONT_DESK}
    document["items"] = [item for item in FRONT_DESK["items"] if item["code"] != "wait"]
    put_standard(acme, "hq.front_desk", document=document)
    r = acme.api.get(ITEMS, query_string={**PERIOD, "standard": "hq.front_desk"})
    titles = {e["key"]: e["title"] for e in r.json["items"]}
    assert titles["hq.front_desk/wait"] == "Wait under 5 minutes"


@pytest.mark.parametrize("url", [ITEMS, COMPLAINTS])
@pytest.mark.parametrize("query, field", [
    ({"since": "2026-05-01T00:00:00Z", "until": "2026-05-01T00:00:00Z"}, "since"),
    ({"since": "yesterday"}, "since"),
    ({"until": "2026-05-01T00:00:00"}, "until"),          # no offset
    ({"site_id": "not-a-uuid"}, "site_id"),
    ({"limit": 0}, "limit"),
])
def test_bad_pareto_queries_are_422(acme, url, query, field):
    r = acme.api.get(url, query_string=query)
    assert r.status_code == 422, r.json
    assert field in r.json["errors"]["query"]


def test_pareto_of_an_unknown_kind_is_422(acme):
    r = acme.api.get(ITEMS, query_string={"kind": "no.such_kind"})
    assert r.status_code == 422
    assert "complaint" in r.json["errors"]["query"]["kind"][0]


def test_pareto_needs_a_token(client):
    assert client.get(ITEMS).status_code == 401
    assert client.get(COMPLAINTS).status_code == 401
