"""Core's feedback KPIs: first-time fix, complaints and their rate, open and overdue
corrective actions, NPS, CSAT and the SERVQUAL gap.

The data is made through the API (records, complaints, actions, surveys answered by their
public links); only the instants the API stamps itself (an action's ``created_at``, a
response's ``submitted_at``) are moved in the database to spread them over two months.
Every expected number is computed here, in Python, from the rows the test made; a second
tenant's rows, of the same kinds, are never counted.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import time_machine
from marshmallow import Schema, fields
from sqlalchemy import event, update

from servq.core.kpis import feedback
from servq.core.models import Action, SurveyResponse
from servq.core.plugins import RecordKind, hookimpl
from servq.core.surveys.servqual import BUILTIN
from tests.test_surveys import INSTRUMENTS, answer, invite, make_survey

TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
KPIS = "/api/v1/kpis"
RECORDS = "/api/v1/records"
ACTIONS = "/api/v1/actions"


def local(*args) -> datetime:
    """An instant given in the tenants' time zone (Asia/Shanghai, UTC+8)."""
    return datetime(*args, tzinfo=ZONE)


def month(at: datetime) -> str:
    return at.astimezone(ZONE).strftime("%Y-%m")


SEP, OCT, NOV, DEC = local(2026, 9, 1), local(2026, 10, 1), local(2026, 11, 1), local(2026, 12, 1)


class JobData(Schema):
    title = fields.String(required=True)
    fixed_first_time = fields.Boolean(allow_none=True)
    solved_on_first_contact = fields.Boolean(allow_none=True)


class FtfPlugin:
    """Kinds that say whether a job was fixed the first time (two field names), and one
    that has such a field without declaring it."""

    @hookimpl
    def register_record_kinds(self):
        return [
            RecordKind(name="fbtest.job", schema=JobData, first_time_fix="fixed_first_time"),
            RecordKind(name="fbtest.call", schema=JobData, first_time_fix="solved_on_first_contact"),
            RecordKind(name="fbtest.note", schema=JobData),
        ]


@pytest.fixture
def app_config(app_config):
    app_config["EXTRA_PLUGINS"] = [("fbtest", FtfPlugin())]
    app_config["SURVEY_RATE_LIMIT"] = "1000 per minute"
    return app_config


@pytest.fixture
def tenants(acme, globex):
    acme.enable("fbtest")
    globex.enable("fbtest")
    return acme, globex


def kpis(tenant, metrics, group_by=(), since=SEP, until=NOV, kind=None, **params):
    """``GET /api/v1/kpis``: the rows as ``{group key tuple: {metric: value}}``."""
    query = {"metrics": metrics, "group_by": ",".join(group_by), "since": since.isoformat(),
             "until": until.isoformat(), **params}
    if kind is not None:
        query["kind"] = kind
    r = tenant.api.get(KPIS, query_string=query)
    assert r.status_code == 200, r.json
    assert r.json["group_by"] == list(group_by) and r.json["timezone"] == TZ
    return {tuple(row["group"][g] for g in group_by): row["values"] for row in r.json["rows"]}


def kpi_error(tenant, metrics, group_by=(), **params) -> dict:
    """The ``errors.query`` of a refused KPI request (422)."""
    query = {"metrics": metrics, "group_by": ",".join(group_by), **params}
    r = tenant.api.get(KPIS, query_string=query)
    assert r.status_code == 422, r.json
    return r.json["errors"]["query"]


def site(tenant, code) -> str:
    r = tenant.api.post("/api/v1/sites", json={"code": code, "name": f"Site {code}"})
    assert r.status_code == 201, r.json
    return r.json["id"]


def staff(tenant, code) -> str:
    r = tenant.api.post("/api/v1/staff", json={"code": code, "name": f"Staff {code}"})
    assert r.status_code == 201, r.json
    return r.json["id"]


def record(tenant, kind, data, at, site_id=None, staff_id=None) -> str:
    body = {"kind": kind, "data": data, "occurred_at": at.isoformat()}
    if site_id:
        body["site_id"] = site_id
    if staff_id:
        body["staff_id"] = staff_id
    r = tenant.api.post(RECORDS, json=body)
    assert r.status_code == 201, r.json
    return r.json["id"]


def delete_record(tenant, record_id) -> None:
    assert tenant.api.remove(f"{RECORDS}/{record_id}").status_code == 204


def tally(rows, key, value):
    """``{key(row): value(rows of that key)}``: the expected numbers, by hand."""
    groups = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return {k: value(v) for k, v in groups.items()}


def approx(value):
    return pytest.approx(value, abs=1e-9)


# -- first-time fix ----------------------------------------------------------------------------


def test_first_time_fix(tenants):
    acme, globex = tenants
    a, b = site(acme, "A"), site(acme, "B")
    field = {"fbtest.job": "fixed_first_time", "fbtest.call": "solved_on_first_contact"}
    made = []

    def job(kind, site_id, at, value=..., deleted=False):
        data = {"title": "Lift stuck"}
        name = field.get(kind, "fixed_first_time")
        if value is not ...:
            data[name] = value
        rid = record(acme, kind, data, at, site_id)
        if deleted:
            delete_record(acme, rid)
        made.append({"kind": kind, "site": site_id, "at": at, "value": value, "deleted": deleted})

    job("fbtest.job", a, local(2026, 9, 5, 10), True)
    job("fbtest.job", a, local(2026, 9, 20, 10), False)
    job("fbtest.job", a, local(2026, 10, 1, 0, 30), True)   # 2026-09-30 UTC: October locally
    job("fbtest.job", b, local(2026, 10, 10, 9), True)
    job("fbtest.job", b, local(2026, 10, 11, 9), None)      # not judged yet
    job("fbtest.job", b, local(2026, 10, 12, 9))            # field missing
    job("fbtest.job", None, local(2026, 10, 15, 9), False)
    job("fbtest.job", b, local(2026, 10, 20, 9), False, deleted=True)
    job("fbtest.job", a, local(2026, 8, 31, 23, 30), False)  # before the period
    job("fbtest.job", a, NOV, False)                          # the period is half-open
    job("fbtest.call", b, local(2026, 10, 3, 9), False)
    job("fbtest.call", a, local(2026, 9, 3, 9), True)
    job("fbtest.note", a, local(2026, 9, 4, 9), False)        # declares no first-time-fix field
    # globex: the same kinds, all failures, never in acme's numbers.
    g = site(globex, "G")
    for day in (5, 6, 7):
        record(globex, "fbtest.job", {"title": "x", "fixed_first_time": False}, local(2026, 9, day), g)

    judged = [m for m in made if m["kind"] in field and not m["deleted"] and SEP <= m["at"] < NOV
              and isinstance(m["value"], bool)]
    assert len(judged) == 7

    def percent(rows):
        return 100.0 * sum(r["value"] for r in rows) / len(rows)

    total = kpis(acme, "first_time_fix")
    assert total == {(): {"first_time_fix": approx(percent(judged))}}
    by_site = kpis(acme, "first_time_fix", ["site"])
    assert by_site == {(k,): {"first_time_fix": approx(v)}
                       for k, v in tally(judged, lambda r: r["site"], percent).items()}
    assert set(by_site) == {(a,), (b,), (None,)}
    by_month = kpis(acme, "first_time_fix", ["month"])
    assert by_month == {(k,): {"first_time_fix": approx(v)}
                        for k, v in tally(judged, lambda r: month(r["at"]), percent).items()}
    assert set(by_month) == {("2026-09",), ("2026-10",)}
    by_kind_site = kpis(acme, "first_time_fix", ["kind", "site"])
    assert by_kind_site == {k: {"first_time_fix": approx(v)} for k, v in
                            tally(judged, lambda r: (r["kind"], r["site"]), percent).items()}
    by_day = kpis(acme, "first_time_fix", ["day"])
    assert by_day[("2026-10-01",)] == {"first_time_fix": 100.0}
    # Nothing judged in the period: no value, not zero.
    assert kpis(acme, "first_time_fix", since=local(2026, 1, 1), until=local(2026, 2, 1)) == {
        (): {"first_time_fix": None}}
    assert kpis(globex, "first_time_fix") == {(): {"first_time_fix": 0.0}}


def test_first_time_fix_field_must_be_a_top_level_name():
    RecordKind(name="x.a", schema=JobData, first_time_fix="fixedFirstTime")
    for bad in ("sign_off.fixed", "", "1st", "fixed first"):
        with pytest.raises(ValueError, match="first_time_fix"):
            RecordKind(name="x.a", schema=JobData, first_time_fix=bad)


def test_kinds_of_plugins_not_enabled(acme):
    """fbtest is loaded but acme has not enabled it: no first-time-fix records, and its
    kinds are not a base for the complaint rate."""
    assert kpis(acme, "first_time_fix") == {(): {"first_time_fix": None}}
    assert kpis(acme, "first_time_fix", ["site"]) == {}
    errors = kpi_error(acme, "complaint_rate", per_kind="fbtest.job")
    assert "fbtest.job" in errors["per_kind"][0] and "observation" in errors["per_kind"][0]


# -- complaints --------------------------------------------------------------------------------


def complaint(tenant, at, site_id=None, staff_id=None) -> str:
    return record(tenant, "complaint", {"channel": "phone", "description": "Nobody came."}, at,
                  site_id, staff_id)


def test_complaints_and_complaint_rate(tenants):
    acme, globex = tenants
    a, b = site(acme, "A"), site(acme, "B")
    s1 = staff(acme, "S1")
    made = []

    def add(kind, site_id, at, staff_id=None, deleted=False):
        if kind == "complaint":
            rid = complaint(acme, at, site_id, staff_id)
        else:
            rid = record(acme, kind, {"title": "Check"}, at, site_id, staff_id)
        if deleted:
            delete_record(acme, rid)
        made.append({"kind": kind, "site": site_id, "staff": staff_id, "at": at, "deleted": deleted})

    add("complaint", a, local(2026, 9, 3, 10))
    add("complaint", a, local(2026, 10, 1, 0, 30))
    add("complaint", b, local(2026, 10, 5, 10), s1)
    add("complaint", None, local(2026, 10, 6, 10))
    add("complaint", b, local(2026, 10, 7, 10), deleted=True)
    add("complaint", a, local(2026, 8, 31, 23))                 # before the period
    for day in (2, 9, 16):
        add("observation", a, local(2026, 9, day, 12))
    add("observation", a, local(2026, 10, 2, 12), s1)
    add("observation", b, local(2026, 10, 3, 12))
    add("observation", b, local(2026, 10, 4, 12), deleted=True)
    add("fbtest.job", b, local(2026, 10, 8, 12), s1)
    add("fbtest.job", b, local(2026, 9, 8, 12))
    add("fbtest.job", a, local(2026, 11, 8, 12))                # after the period
    g = site(globex, "G")
    for day in (3, 4, 5, 6):
        complaint(globex, local(2026, 10, day, 9), g)

    live = [m for m in made if not m["deleted"] and SEP <= m["at"] < NOV]
    complaints = [m for m in live if m["kind"] == "complaint"]

    def count(rows):
        return len(rows)

    assert kpis(acme, "complaints") == {(): {"complaints": 4}}
    assert kpis(acme, "complaints", ["site"]) == {
        (k,): {"complaints": v} for k, v in tally(complaints, lambda r: r["site"], count).items()}
    assert kpis(acme, "complaints", ["month"]) == {
        ("2026-09",): {"complaints": 1}, ("2026-10",): {"complaints": 3}}
    assert kpis(acme, "complaints", ["site", "month"]) == {
        k: {"complaints": v} for k, v in
        tally(complaints, lambda r: (r["site"], month(r["at"])), count).items()}
    assert kpis(acme, "complaints", ["staff"]) == {(None,): {"complaints": 3}, (s1,): {"complaints": 1}}
    assert kpis(acme, "complaints", ["kind"]) == {("complaint",): {"complaints": 4}}
    assert kpis(globex, "complaints", ["site"]) == {(g,): {"complaints": 4}}

    def rate(base_kinds):
        def per_1000(rows):
            n = sum(1 for r in rows if r["kind"] in base_kinds)
            c = sum(1 for r in rows if r["kind"] == "complaint")
            return 1000.0 * c / n if n else None
        return per_1000

    everything = rate({"observation", "fbtest.job"})
    assert kpis(acme, "complaint_rate") == {(): {"complaint_rate": approx(everything(live))}}
    by_site = kpis(acme, "complaint_rate", ["site"])
    expected = tally(live, lambda r: (r["site"],), everything)
    assert set(by_site) == set(expected) == {(a,), (b,), (None,)}
    for key, value in expected.items():
        assert by_site[key]["complaint_rate"] == (None if value is None else approx(value)), key
    assert by_site[(None,)]["complaint_rate"] is None  # a complaint, but nothing to count it against
    observations = rate({"observation"})
    assert kpis(acme, "complaint_rate", ["month"], per_kind="observation") == {
        k: {"complaint_rate": approx(v)} for k, v in
        tally(live, lambda r: (month(r["at"]),), observations).items()}
    # The kind filter plays per_kind's part.
    assert kpis(acme, "complaint_rate", ["month"], kind="observation") == kpis(
        acme, "complaint_rate", ["month"], per_kind="observation")
    both = kpis(acme, "complaint_rate", ["site"], per_kind="observation, fbtest.job")
    assert both == kpis(acme, "complaint_rate", ["site"])
    assert kpis(acme, "complaint_rate", ["staff"], per_kind="fbtest.job")[(s1,)] == {
        "complaint_rate": approx(1000.0)}
    assert kpis(globex, "complaint_rate") == {(): {"complaint_rate": None}}

    for bad in ("complaint", "nope", "observation,nope"):
        errors = kpi_error(acme, "complaint_rate", per_kind=bad)
        assert "per_kind" in errors and "valid:" in errors["per_kind"][0], bad
    errors = kpi_error(acme, "complaint_rate", ["kind"])
    assert "cannot be grouped by kind" in errors["group_by"][0]


# -- corrective actions ------------------------------------------------------------------------


# The day the actions are made and counted: inside the October-November window that the
# test asks about, so that actions made "now" fall into it whatever the real date is.
ACTIONS_DAY = local(2026, 11, 20, 10)


@pytest.fixture
def on_actions_day():
    with time_machine.travel(ACTIONS_DAY, tick=False):
        yield ACTIONS_DAY


def test_actions_open_and_overdue(on_actions_day, tenants):
    acme, globex = tenants
    a, b = site(acme, "A"), site(acme, "B")
    s1 = staff(acme, "S1")
    now = on_actions_day.astimezone(timezone.utc)
    past, future = now - timedelta(days=2), now + timedelta(days=5)
    at_a = record(acme, "observation", {"title": "Door"}, now - timedelta(days=1), a, s1)
    at_b = record(acme, "observation", {"title": "Lamp"}, now - timedelta(days=1), b)
    gone = record(acme, "observation", {"title": "Tap"}, now - timedelta(days=1), b)
    made = []

    def action(record_id, site_id, staff_id, due, steps=(), created=None):
        body = {"title": "Fix it", "record_id": record_id, "due_at": due.isoformat() if due else None}
        r = acme.api.post(ACTIONS, json=body)
        assert r.status_code == 201, r.json
        status = "open"
        for name in steps:
            r = acme.api.post(f"{ACTIONS}/{r.json['id']}/transitions", json={"action": name})
            assert r.status_code == 200, r.json
            status = r.json["status"]
        if created is not None:
            with acme.session() as s:
                s.execute(update(Action).where(Action.id == uuid.UUID(r.json["id"])).values(created_at=created))
                s.commit()
        made.append({"site": site_id, "staff": staff_id, "due": due, "status": status,
                     "created": created or now})

    october = local(2026, 10, 15, 9)
    action(at_a, a, s1, past)                                   # open, overdue
    action(at_a, a, s1, future, ["start"])                      # in progress, not overdue
    action(at_b, b, None, past, ["complete"])                   # done
    action(at_b, b, None, past, ["complete", "reopen"])         # reopened: open and overdue
    action(at_a, a, s1, past, ["complete", "verify"])           # verified
    action(None, None, None, None)                              # by hand, no record, no due time
    action(None, None, None, past, ["start"], created=october)  # overdue, created in October
    action(at_b, b, None, future, created=october)
    action(at_b, b, None, past, created=local(2026, 9, 30, 23))  # before the period
    action(gone, b, None, past)                                 # its record is deleted below
    delete_record(acme, gone)
    r = globex.api.post(ACTIONS, json={"title": "Theirs", "due_at": past.isoformat()})
    assert r.status_code == 201

    since, until = OCT, DEC
    open_ = [m for m in made if m["status"] in ("open", "in_progress") and since <= m["created"] < until]
    overdue = [m for m in open_ if m["due"] is not None and m["due"] < now]
    assert (len(open_), len(overdue)) == (7, 4)

    def count(rows):
        return len(rows)

    both = "actions_open,actions_overdue"
    assert kpis(acme, both, since=since, until=until) == {
        (): {"actions_open": len(open_), "actions_overdue": len(overdue)}}
    by_site = kpis(acme, both, ["site"], since=since, until=until)
    opened = tally(open_, lambda r: (r["site"],), count)
    late = tally(overdue, lambda r: (r["site"],), count)
    assert by_site == {k: {"actions_open": opened[k], "actions_overdue": late.get(k)} for k in opened}
    assert by_site[(None,)] == {"actions_open": 2, "actions_overdue": 1}
    by_month = kpis(acme, both, ["month"], since=since, until=until)
    opened = tally(open_, lambda r: (month(r["created"]),), count)
    late = tally(overdue, lambda r: (month(r["created"]),), count)
    assert by_month == {k: {"actions_open": opened[k], "actions_overdue": late.get(k)} for k in opened}
    assert set(by_month) == {("2026-10",), ("2026-11",)}
    assert kpis(acme, "actions_open", ["staff"], since=since, until=until) == {
        k: {"actions_open": v} for k, v in tally(open_, lambda r: (r["staff"],), count).items()}
    assert kpis(acme, "actions_open", ["kind"], since=since, until=until) == {
        ("observation",): {"actions_open": 5}, (None,): {"actions_open": 2}}
    # A site's actions only: the actions without a record are left out.
    assert kpis(acme, both, since=since, until=until, site_id=b) == {(): by_site[(b,)]}
    assert kpis(globex, both, ["site"], since=since, until=until) == {
        (None,): {"actions_open": 1, "actions_overdue": 1}}
    # Nothing created in the period: zero, and no groups when grouped.
    assert kpis(acme, both, since=local(2020, 1, 1), until=local(2020, 2, 1)) == {
        (): {"actions_open": 0, "actions_overdue": 0}}
    assert kpis(acme, both, ["site"], since=local(2020, 1, 1), until=local(2020, 2, 1)) == {}


# -- surveys -----------------------------------------------------------------------------------


def respond(tenant, client, survey_id, answers, about=None, submitted=None):
    """Answer ``survey_id`` by a new link, about a new observation at ``about`` = (site,
    staff) (one link per record and survey), or about no record; then, when given, move
    the response to ``submitted``. Returns the record's id."""
    body = {}
    if about is not None:
        body["record_id"] = record(tenant, "observation", {"title": "Stay"}, local(2026, 9, 1, 9), *about)
    inv = invite(tenant, survey_id, **body)
    r = answer(client, inv["token"], answers)
    assert r.status_code == 201, r.json
    if submitted is not None:
        with tenant.session() as s:
            s.execute(update(SurveyResponse).where(SurveyResponse.invitation_id == uuid.UUID(inv["id"]))
                      .values(submitted_at=submitted))
            s.commit()
    return body.get("record_id")


MIXED = {
    "code": "mixed", "title": {"en": "Mixed"}, "scale": {"min": 1, "max": 5},
    "dimensions": [{"code": "tangibles", "title": {"en": "Looks"}}],
    "items": [{"code": "clean", "dimension": "tangibles", "text": {"en": "Clean"}},
              {"code": "recommend", "text": {"en": "Recommend?"}, "metric": "nps",
               "scale": {"min": 0, "max": 10}, "required": False},
              {"code": "happy", "text": {"en": "Happy?"}, "metric": "csat",
               "scale": {"min": 1, "max": 5}, "required": False}],
}


def standard_error(values):
    """The textbook standard error of the mean (``None`` below two values)."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n)


def nps_of(scores):
    n = len(scores)
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    points = [100 if s >= 9 else -100 if s <= 6 else 0 for s in scores]
    return {"score": 100.0 * (promoters - detractors) / n, "n": n, "se": standard_error(points),
            "promoters": 100.0 * promoters / n, "detractors": 100.0 * detractors / n,
            "passives": 100.0 * (n - promoters - detractors) / n}


def csat_of(scores):
    points = [100 if s >= 4 else 0 for s in scores]
    return {"score": sum(points) / len(points), "n": len(scores), "se": standard_error(points)}


def matches(value, expected):
    assert set(value) == set(expected)
    return all(value[k] is None if v is None else value[k] == approx(v) for k, v in expected.items())


def test_nps_and_csat(client, tenants):
    acme, globex = tenants
    a, b = site(acme, "A"), site(acme, "B")
    s1 = staff(acme, "S1")
    at_a, at_b = (a, None), (b, s1)
    assert acme.api.post(INSTRUMENTS, json=MIXED).status_code == 201
    nps, csat, mixed = (make_survey(acme, instrument=code)["id"] for code in ("nps", "csat", "mixed"))
    servqual = make_survey(acme, instrument="servqual")["id"]
    answers = []  # (metric, score, site, month)
    sep, octo = local(2026, 9, 15, 12), local(2026, 10, 15, 12)

    def give(survey, metric_answers, about, site_id, when, others=None):
        respond(acme, client, survey, {**(others or {}), **{code: v for code, (_, v) in metric_answers.items()}},
                about, when)
        for _, (metric, value) in metric_answers.items():
            if SEP <= when < NOV:
                answers.append((metric, value, site_id, month(when)))

    for score, when in ((10, sep), (9, octo), (3, octo)):
        give(nps, {"recommend": ("nps", score)}, at_a, a, when)
    for score in (7, 8, 10):
        give(nps, {"recommend": ("nps", score)}, at_b, b, octo)
    give(nps, {"recommend": ("nps", 0)}, None, None, octo)
    # About a record deleted since: still counted at the record's site, as the survey's
    # own results count it.
    gone = respond(acme, client, nps, {"recommend": 8}, at_b, octo)
    delete_record(acme, gone)
    answers.append(("nps", 8, b, "2026-10"))
    give(nps, {"recommend": ("nps", 10)}, at_a, a, local(2026, 8, 31, 23))  # before the period
    for score in (5, 4, 1):
        give(csat, {"satisfaction": ("csat", score)}, at_a, a, sep)
    give(csat, {"satisfaction": ("csat", 3)}, at_b, b, octo)
    # A custom instrument: its NPS item is the 2nd, its CSAT item the 3rd.
    give(mixed, {"recommend": ("nps", 6), "happy": ("csat", 5)}, at_a, a, octo,
         {"clean": {"expectation": 5, "perception": 4}})
    give(mixed, {"happy": ("csat", 2)}, None, None, octo, {"clean": {"expectation": 3, "perception": 3}})
    # SERVQUAL answers (1-7) are neither NPS nor CSAT answers.
    respond(acme, client, servqual, {f"q{n}": {"expectation": 7, "perception": 1} for n in range(1, 23)},
            at_a, octo)
    # globex answers the same instruments: all detractors and dissatisfied.
    theirs = make_survey(globex, instrument="nps")["id"]
    for _ in range(3):
        respond(globex, client, theirs, {"recommend": 0}, submitted=octo)

    def scores(metric, keep=lambda r: True):
        return [score for m, score, *_ in answers if m == metric and keep((m, score, *_))]

    total = kpis(acme, "nps,csat")[()]
    assert matches(total["nps"], nps_of(scores("nps"))) and total["nps"]["n"] == 9
    assert matches(total["csat"], csat_of(scores("csat"))) and total["csat"]["n"] == 6
    by_site = kpis(acme, "nps,csat", ["site"])
    assert set(by_site) == {(a,), (b,), (None,)}
    for (key,), values in by_site.items():
        assert matches(values["nps"], nps_of(scores("nps", lambda r: r[2] == key))), key
        assert matches(values["csat"], csat_of(scores("csat", lambda r: r[2] == key))), key
    by_month = kpis(acme, "nps,csat", ["month"])
    assert set(by_month) == {("2026-09",), ("2026-10",)}
    for (key,), values in by_month.items():
        assert matches(values["nps"], nps_of(scores("nps", lambda r: r[3] == key))), key
        assert matches(values["csat"], csat_of(scores("csat", lambda r: r[3] == key))), key
    by_staff = kpis(acme, "nps", ["staff"])
    assert matches(by_staff[(s1,)]["nps"], nps_of([7, 8, 10, 8]))
    by_kind = kpis(acme, "nps", ["kind"])
    assert matches(by_kind[("observation",)]["nps"], nps_of(scores("nps", lambda r: r[2] is not None)))
    assert matches(by_kind[(None,)]["nps"], nps_of(scores("nps", lambda r: r[2] is None)))
    # The survey's own results agree where only that survey answered (site B).
    results = acme.api.get(f"/api/v1/surveys/{nps}/results?site_id={b}").json["nps"]
    assert by_site[(b,)]["nps"] == pytest.approx(results)
    # Filters go through the record too: a site's answers only.
    assert kpis(acme, "nps,csat", site_id=a) == {(): by_site[(a,)]}
    assert kpis(acme, "nps,csat", ["site"], site_id=b) == {(b,): by_site[(b,)]}
    theirs_total = kpis(globex, "nps,csat")
    assert theirs_total == {(): {"nps": pytest.approx({**nps_of([0, 0, 0]), "se": 0.0}), "csat": None}}


def dimension_gaps(doc, form_answers):
    """One respondent's P - E per dimension code, reverse scoring applied, by hand."""
    scale = doc["scale"]
    per_dim = defaultdict(list)
    for item in doc["items"]:
        given = form_answers.get(item["code"])
        if given is None or item.get("metric"):
            continue
        p, e = given["perception"], given["expectation"]
        if item.get("reverse"):
            p, e = scale["min"] + scale["max"] - p, scale["min"] + scale["max"] - e
        per_dim[item["dimension"]].append((p, e))
    return {d: sum(p for p, _ in pe) / len(pe) - sum(e for _, e in pe) / len(pe) for d, pe in per_dim.items()}


def test_servqual_gap(client, tenants):
    acme, globex = tenants
    a, b = site(acme, "A"), site(acme, "B")
    at_a, at_b = (a, None), (b, None)
    assert acme.api.post(INSTRUMENTS, json=MIXED).status_code == 201
    servqual = make_survey(acme, instrument="servqual")["id"]          # reverse-scored items
    revised = make_survey(acme, instrument="servqual_1991")["id"]
    mixed = make_survey(acme, instrument="mixed")["id"]                # only "tangibles"
    three = make_survey(acme, instrument="servqual_1991", form="three_column")["id"]
    respondents = []  # (site, month, {dimension: gap})
    sep, octo = local(2026, 9, 10, 8), local(2026, 10, 10, 8)

    def grid(seed):
        return {f"q{n}": {"expectation": 1 + (n * seed) % 7, "perception": 1 + (n * seed + seed) % 7}
                for n in range(1, 23)}

    for seed, (survey, code, about, site_id, when) in enumerate((
            (servqual, "servqual", at_a, a, sep), (servqual, "servqual", at_a, a, octo),
            (servqual, "servqual", at_b, b, octo), (revised, "servqual_1991", at_b, b, sep),
            (revised, "servqual_1991", None, None, octo)), start=2):
        answers = grid(seed)
        respond(acme, client, survey, answers, about, when)
        respondents.append((site_id, month(when), dimension_gaps(BUILTIN[code], answers)))
    respond(acme, client, mixed, {"clean": {"expectation": 2, "perception": 5}}, at_a, octo)
    respondents.append((a, "2026-10", {"tangibles": 3.0}))
    # Three-column answers have no expectation: no gap.
    respond(acme, client, three, {f"q{n}": {"adequate": 1, "desired": 7, "perception": 7}
                                  for n in range(1, 23)}, at_a, octo)
    theirs = make_survey(globex, instrument="servqual_1991")["id"]
    respond(globex, client, theirs, {f"q{n}": {"expectation": 7, "perception": 1} for n in range(1, 23)},
            submitted=octo)

    def expected(rows):
        out = {}
        for dim in ("tangibles", "reliability", "responsiveness", "assurance", "empathy"):
            gaps = [r[2][dim] for r in rows if dim in r[2]]
            out[dim] = sum(gaps) / len(gaps) if gaps else None
        return out

    def same(value, want):
        assert set(value) == set(want)
        for dim, v in want.items():
            assert value[dim] == (None if v is None else approx(v)), dim

    same(kpis(acme, "servqual_gap")[()]["servqual_gap"], expected(respondents))
    by_site = kpis(acme, "servqual_gap", ["site"])
    assert set(by_site) == {(a,), (b,), (None,)}
    for (key,), values in by_site.items():
        same(values["servqual_gap"], expected([r for r in respondents if r[0] == key]))
    by_month = kpis(acme, "servqual_gap", ["month", "site"])
    assert set(by_month) == {("2026-09", a), ("2026-09", b), ("2026-10", a), ("2026-10", b),
                             ("2026-10", None)}
    for (when, key), values in by_month.items():
        same(values["servqual_gap"], expected([r for r in respondents if r[0] == key and r[1] == when]))
    # The survey's own results agree for the respondents it holds.
    res = acme.api.get(f"/api/v1/surveys/{servqual}/results?site_id={b}").json
    gaps = {d["code"]: d["gap"]["mean"] for d in res["dimensions"]}
    assert gaps == pytest.approx(expected([respondents[2]]))
    same(kpis(globex, "servqual_gap")[()]["servqual_gap"], {d: -6.0 for d in (
        "tangibles", "reliability", "responsiveness", "assurance", "empathy")})
    assert kpis(acme, "servqual_gap", ["site"], since=local(2020, 1, 1), until=local(2020, 2, 1)) == {}


def test_the_metrics_are_listed_and_refuse_what_they_cannot_do(acme):
    r = acme.api.get(f"{KPIS}/metrics", headers={"Accept-Language": "zh"})
    assert r.status_code == 200
    listed = {m["name"]: m for m in r.json}
    assert {m.name for m in feedback.METRICS} <= set(listed)
    rate = listed["complaint_rate"]
    assert rate["unit"] == "per_1000" and rate["better"] == "lower" and rate["title"] == "投诉率"
    assert "per_kind" in rate["params"] and rate["groupings"] == ["day", "week", "month", "site", "staff"]
    assert listed["nps"]["groupings"] == ["day", "week", "month", "site", "staff", "kind"]
    errors = kpi_error(acme, "nps", ["standard"])
    assert "nps cannot be grouped by standard" in errors["group_by"][0]
    errors = kpi_error(acme, "csat", per_kind="observation")
    assert "per_kind" in errors  # only complaint_rate takes it


def test_a_constant_number_of_queries(app, client, tenants):
    """However many records, sites, actions, surveys and answers: the same statements."""
    acme, _ = tenants
    engine = app.extensions["servq.engine"]
    names = ",".join(metric.name for metric in feedback.METRICS)
    surveys = {"nps": [], "csat": [], "servqual": []}

    def seed(n):
        for _ in range(n):
            code = f"S{uuid.uuid4().hex[:6]}"
            where = site(acme, code), staff(acme, code)
            at = local(2026, 10, 2, 9)
            complaint(acme, at, *where)
            obs = record(acme, "observation", {"title": "Door"}, at, *where)
            record(acme, "fbtest.job", {"title": "Lift", "fixed_first_time": True}, at, *where)
            r = acme.api.post(ACTIONS, json={"title": "Fix", "record_id": obs,
                                             "due_at": (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()})
            assert r.status_code == 201
            for instrument, ids in surveys.items():
                ids.append(make_survey(acme, instrument=instrument)["id"])
            submitted = local(2026, 10, 3, 9)
            respond(acme, client, surveys["nps"][-1], {"recommend": 9}, where, submitted)
            respond(acme, client, surveys["csat"][-1], {"satisfaction": 4}, where, submitted)
            respond(acme, client, surveys["servqual"][-1],
                    {f"q{i}": {"expectation": 6, "perception": 5} for i in range(1, 23)}, where, submitted)

    def statements() -> tuple[int, dict]:
        seen = []

        def count(conn, cursor, statement, parameters, context, executemany):
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            rows = kpis(acme, names, ["site", "month"], until=DEC)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(seen), rows

    seed(1)
    kpis(acme, names, ["site", "month"], until=DEC)  # warm whatever is cached per tenant
    few, rows = statements()
    assert len({site_id for site_id, _ in rows}) == 1
    seed(4)
    many, rows = statements()
    october = {site_id: values for (site_id, when), values in rows.items() if when == "2026-10"}
    assert len(october) == 5 and all(v["complaints"] == 1 and v["nps"]["n"] == 1 and v["csat"]["n"] == 1
                                     and v["first_time_fix"] == 100.0 for v in october.values())
    assert many == few, (few, many)
    assert few <= 11 + 8  # 11 for the metrics; the rest is the request (auth, tenant, labels)
