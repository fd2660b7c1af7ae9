"""``GET /api/v1/kpis`` and ``GET /api/v1/kpis/metrics`` (``core/api/kpis.py``): defaults,
the tenant's time zone, labels, validation (422 listing what is valid, never a 500), roles,
another tenant's ids, a constant number of queries and the OpenAPI description."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event

from servq.core.kpis.timing import METRICS as TIMING
from tests.test_evaluations import put_standard
from tests.test_kpis_timing import FRONT_DESK, inspect

# Rows dated in 2026, entered on a fixed day after them (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("present")

KPIS = "/api/v1/kpis"
METRICS = "/api/v1/kpis/metrics"
RECORDS = "/api/v1/records"
TIMING_NAMES = [metric.name for metric in TIMING]
PERIOD = {"since": "2026-03-01T00:00:00Z", "until": "2026-05-01T00:00:00Z"}


def front_desk(tenant):
    put_standard(tenant, "hq.front_desk", document={"code": "hq.front_desk", "version": 1, **FRONT_DESK})


def site(tenant, code, name):
    r = tenant.api.post("/api/v1/sites", json={"code": code, "name": name})
    assert r.status_code == 201, r.json
    return r.json["id"]


# -- the metrics a tenant may use -------------------------------------------------------


def test_metrics_are_listed_with_titles_in_the_callers_language(acme):
    r = acme.api.get(METRICS)
    assert r.status_code == 200, r.json
    listed = {m["name"]: m for m in r.json}
    assert len(listed) == len(r.json)
    assert set(TIMING_NAMES) <= set(listed)
    assert listed["response_time_working"] == {
        "name": "response_time_working", "title": "Response time (working)", "unit": "seconds",
        "groupings": ["day", "week", "month", "site", "staff", "kind", "standard", "item"],
        "params": {}, "better": "lower", "plugin": "core.kpis.plugin",
        "description": listed["response_time_working"]["description"]}
    assert "kpi = \"response\"" in listed["response_time_working"]["description"]
    assert listed["failed_items"]["params"] == {"standard": "Only the items of this standard (its code)."}
    assert listed["deadline_attainment"]["unit"] == "percent"

    zh = {m["name"]: m["title"] for m in acme.api.get(METRICS, headers={"Accept-Language": "zh"}).json}
    assert zh["deadline_attainment"] == "时限达成率" and zh["breaches"] == "超时次数"


# -- defaults, time zone, labels ---------------------------------------------------------


def test_defaults_are_the_last_30_days_in_the_tenants_time_zone(acme):
    before = datetime.now(timezone.utc)
    r = acme.api.get(KPIS, query_string={"metrics": "breaches, failed_items"})
    assert r.status_code == 200, r.json
    until = datetime.fromisoformat(r.json["until"])
    assert before <= until <= datetime.now(timezone.utc)
    assert datetime.fromisoformat(r.json["since"]) == until - timedelta(days=30)
    assert r.json["timezone"] == "Asia/Shanghai"
    assert r.json["group_by"] == [] and r.json["labels"] == {}
    assert [m["name"] for m in r.json["metrics"]] == ["breaches", "failed_items"]
    assert r.json["rows"] == [{"group": {}, "values": {"breaches": 0, "failed_items": 0}}]

    r = acme.api.get(KPIS, query_string={"metrics": "breaches", "until": "2026-03-31T00:00:00+08:00"})
    assert (r.json["since"], r.json["until"]) == ("2026-02-28T16:00:00+00:00", "2026-03-30T16:00:00+00:00")


def test_periods_follow_the_time_zone_of_the_tenants_calendar(acme):
    front_desk(acme)
    inspect(acme, "2026-03-31T17:00:00+00:00", "fail", "pass", 1)  # Shanghai: 1 April 01:00
    inspect(acme, "2026-03-02T10:00:00+08:00", "fail", "fail", 1)
    query = {**PERIOD, "metrics": "failed_items", "group_by": "month"}

    months = {row["group"]["month"]: row["values"]["failed_items"]
              for row in acme.api.get(KPIS, query_string=query).json["rows"]}
    assert months == {"2026-03": 2, "2026-04": 1}

    r = acme.api.put("/api/v1/calendar", json={"timezone": "Europe/Paris"})
    assert r.status_code == 200, r.json
    result = acme.api.get(KPIS, query_string=query).json
    assert result["timezone"] == "Europe/Paris"  # 31 March 19:00 in Paris
    assert {row["group"]["month"]: row["values"]["failed_items"] for row in result["rows"]} == {"2026-03": 3}


@pytest.mark.cross_tenant("GET /api/v1/kpis")
def test_site_and_staff_labels_are_their_names(acme, globex):
    front_desk(acme)
    north = site(acme, "N", "North estate")
    staff = acme.api.post("/api/v1/staff", json={"code": "W1", "name": "Wang Wei"}).json["id"]
    for site_id, staff_id in ((north, staff), (None, None)):
        body = {"kind": "inspection", "occurred_at": "2026-03-02T10:00:00+08:00",
                "data": {"standard": "hq.front_desk", "answers": {
                    "greeting": {"outcome": "fail"}, "uniform": {"outcome": "pass"}, "wait": {"value": 1}}}}
        if site_id:
            body.update(site_id=site_id, staff_id=staff_id)
        assert acme.api.post(RECORDS, json=body).status_code == 201
    r = acme.api.get(KPIS, query_string={**PERIOD, "metrics": "failed_items", "group_by": "site,staff,kind"})
    assert r.status_code == 200, r.json
    assert r.json["rows"] == [
        {"group": {"site": north, "staff": staff, "kind": "inspection"}, "values": {"failed_items": 1}},
        {"group": {"site": None, "staff": None, "kind": "inspection"}, "values": {"failed_items": 1}},
    ] or r.json["rows"] == [
        {"group": {"site": None, "staff": None, "kind": "inspection"}, "values": {"failed_items": 1}},
        {"group": {"site": north, "staff": staff, "kind": "inspection"}, "values": {"failed_items": 1}},
    ]
    assert r.json["labels"] == {"site": {north: "North estate"}, "staff": {staff: "Wang Wei"}}

    # Another tenant's site: a filter that matches none of acme's rows, and no label.
    theirs = site(globex, "N", "Globex north")
    r = acme.api.get(KPIS, query_string={**PERIOD, "metrics": "failed_items", "site_id": theirs})
    assert r.status_code == 200 and r.json["rows"] == [{"group": {}, "values": {"failed_items": 0}}]
    r = globex.api.get(KPIS, query_string={**PERIOD, "metrics": "failed_items", "group_by": "site"})
    assert r.json["rows"] == [] and r.json["labels"] == {"site": {}}


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize("query, field, words", [
    ({}, "metrics", "Name at least one metric; valid: "),
    ({"metrics": " , "}, "metrics", "Name at least one metric"),
    ({"metrics": "breaches,bogus"}, "metrics", "Unknown metric(s) bogus; valid: "),
    ({"metrics": "breaches", "group_by": "site,colour"}, "group_by",
     "Unknown grouping(s) colour; valid: day, week, month, site, staff, kind, standard, item."),
    ({"metrics": "breaches", "group_by": "day,month"}, "group_by", "at most one of day, week and month"),
    ({"metrics": "breaches", "group_by": "site,site"}, "group_by", "named twice"),
    ({"metrics": "breaches", "since": "2026-05-01T00:00:00Z", "until": "2026-04-01T00:00:00Z"},
     "since", "'since' must be before 'until'"),
    ({"metrics": "breaches", "since": "2026-05-01T00:00:00Z", "until": "2026-05-01T00:00:00Z"},
     "since", "'since' must be before 'until'"),
    ({"metrics": "breaches", "since": "last week"}, "since", ""),
    ({"metrics": "breaches", "until": "2026-05-01T00:00:00"}, "until", ""),
    ({"metrics": "breaches", "until": "0001-01-10T00:00:00Z"}, "until", "give 'since'"),
    ({"metrics": "breaches", "kind": "no.such_kind"}, "kind", "valid: "),
    ({"metrics": "breaches", "site_id": "north"}, "site_id", ""),
    ({"metrics": "failed_items", "colour": "red"}, "colour",
     "Unknown parameter; the metrics asked take: standard."),
    ({"metrics": "breaches,response_time", "colour": "red"}, "colour", "take: standard."),
    ({"metrics": "response_time", "standard": "core.complaint"}, "standard", "take: none."),
    ({"metrics": "failed_items", "standard": "x" * 201}, "standard", "At most 200 characters."),
])
def test_bad_requests_are_422_saying_what_is_valid(acme, query, field, words):
    r = acme.api.get(KPIS, query_string=query)
    assert r.status_code == 422, r.json
    messages = r.json["errors"]["query"][field]
    assert any(words in message for message in messages), messages
    if field == "metrics":
        assert all(name in messages[0] for name in TIMING_NAMES)


def test_unknown_metric_is_reported_before_a_parameter_it_might_take(acme):
    r = acme.api.get(KPIS, query_string={"metrics": "bogus", "per_whatever": "1"})
    assert r.status_code == 422
    assert list(r.json["errors"]["query"]) == ["metrics"]


def test_kind_filter_names_a_kind_of_the_tenant(acme):
    r = acme.api.get(KPIS, query_string={"metrics": "breaches", "kind": "complaint"})
    assert r.status_code == 200, r.json
    r = acme.api.get(KPIS, query_string={"metrics": "breaches", "kind": "sample.note"})
    assert r.status_code == 422
    assert "complaint" in r.json["errors"]["query"]["kind"][0]


# -- who may ask ------------------------------------------------------------------------


def test_every_role_may_read_kpis_and_a_token_is_required(acme, client):
    viewer = acme.as_role("viewer")
    assert viewer.get(KPIS, query_string={"metrics": "breaches"}).status_code == 200
    assert viewer.get(METRICS).status_code == 200
    for url in (KPIS, METRICS):
        r = client.get(url, query_string={"metrics": "breaches"})
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")


# -- cost -------------------------------------------------------------------------------


def _statements(app, fn) -> list[str]:
    seen: list[str] = []
    engine = app.extensions["servq.engine"]

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return seen


def test_the_number_of_queries_does_not_grow_with_the_data(app, acme):
    front_desk(acme)
    sites = [site(acme, f"S{n}", f"Site {n}") for n in range(6)]

    def file(site_ids):
        for n, site_id in enumerate(site_ids):
            r = acme.api.post(RECORDS, json={"kind": "complaint", "site_id": site_id,
                                             "occurred_at": f"2026-03-{n + 2:02d}T10:00:00+08:00",
                                             "data": {"channel": "web", "description": "Late",
                                                      "category": f"c{n % 3}"}})
            assert r.status_code == 201, r.json
            inspect(acme, f"2026-03-{n + 2:02d}T11:00:00+08:00", "fail", "fail", 9)

    query = {**PERIOD, "metrics": ",".join(TIMING_NAMES), "group_by": "site,month"}

    def ask():
        assert acme.api.get(KPIS, query_string=query).status_code == 200
        assert acme.api.get("/api/v1/kpis/pareto/items", query_string=PERIOD).status_code == 200
        assert acme.api.get("/api/v1/kpis/pareto/complaints", query_string=PERIOD).status_code == 200

    file(sites[:2])
    ask()  # warm the caches (standards, calendar)
    few = _statements(app, ask)
    file(sites[2:] * 3)
    many = _statements(app, ask)
    assert len(many) == len(few)
    rows = acme.api.get(KPIS, query_string=query).json["rows"]
    at_sites = [row for row in rows if row["group"]["site"] is not None]  # complaints
    assert len(at_sites) == 6 and all(row["values"]["breaches"] for row in at_sites)


# -- the API description -----------------------------------------------------------------


def test_openapi_describes_the_kpi_routes(client):
    spec = client.get("/api/v1/openapi.json").json
    get = spec["paths"]["/api/v1/kpis"]["get"]
    params = {p["name"]: p for p in get["parameters"]}
    assert {"metrics", "group_by", "since", "until", "site_id", "staff_id", "kind"} <= set(params)
    assert all(p.get("description") for p in params.values()), params
    assert "422" in get["responses"] and get["tags"] == ["kpis"]
    result = spec["components"]["schemas"]["KpiResult"]["properties"]
    assert all(result[name].get("description") for name in
               ("since", "until", "timezone", "group_by", "metrics", "rows", "labels"))
    for path in ("/api/v1/kpis/metrics", "/api/v1/kpis/pareto/items", "/api/v1/kpis/pareto/complaints"):
        operation = spec["paths"][path]["get"]
        assert operation.get("description") or operation.get("summary"), path
    items = spec["components"]["schemas"]["ParetoItem"]["properties"]
    assert items["cumulative_share"]["description"]
