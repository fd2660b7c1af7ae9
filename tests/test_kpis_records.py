"""The record and evaluation KPIs (``records``, ``score``, ``pass_rate``,
``critical_failures``) through ``GET /api/v1/kpis``: every value checked against one
computed here from the records the test created (their answers, not the stored
evaluations), before and after the daily rollups are refreshed, grouped every way,
filtered, and never counting another tenant's records."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from servq import cli
from servq.core.db import utcnow
from servq.core.kpis.sql import period_key
from tests.test_evaluations import put_standard

KPIS = "/api/v1/kpis"
RECORDS = "/api/v1/records"
BATCH = "/api/v1/records/batch"
METRICS = "records,score,pass_rate,critical_failures"
ITEMS = ("a", "b", "c", "d")  # b is critical
STANDARDS = ("qa.desk", "qa.room")
PASS_MARK = 75


def standard_document(title: str) -> dict:
    """Four equally weighted check items, ``b`` critical, pass mark 75 %."""
    return {"title": {"en": title, "zh": title}, "applies_to": ["inspection"],
            "method": "weighted", "pass_mark": PASS_MARK,
            "items": [{"code": code, "title": {"en": code, "zh": code}, "dimension": "assurance",
                       "critical": code == "b", "rule": {"type": "check"}} for code in ITEMS]}


@dataclass
class Spec:
    """One record as the test created it; the expected evaluation is derived from it."""

    at: datetime
    kind: str
    site: str | None
    staff: str | None
    standard: str | None = None
    answers: dict[str, str] = field(default_factory=dict)
    id: str | None = None
    deleted: bool = False

    def payload(self) -> dict:
        body = {"kind": self.kind, "occurred_at": self.at.isoformat(), "site_id": self.site,
                "staff_id": self.staff}
        if self.kind == "inspection":
            body["data"] = {"standard": self.standard,
                            "answers": {code: {"outcome": outcome} for code, outcome in self.answers.items()}}
        else:
            body["data"] = {"title": "Lobby floor wet"}
        return body

    def evaluation(self) -> dict | None:
        """What the four check items give: percent of the items answered (0 when the
        critical item failed), passed from 75 % unless the critical item failed, nothing
        judged when all are n.a."""
        if self.standard is None:
            return None
        answered = [o for o in self.answers.values() if o != "na"]
        percent = 100.0 * answered.count("pass") / len(answered) if answered else None
        critical = self.answers["b"] == "fail"
        if critical:
            percent = 0.0
        passed = None if percent is None else (percent >= PASS_MARK and not critical)
        return {"percent": percent, "passed": passed, "critical": critical}


@dataclass
class Tenant:
    handle: object
    tz: str
    sites: list[str]
    staff: list[str]
    specs: list[Spec] = field(default_factory=list)

    @property
    def api(self):
        return self.handle.api


def prepare(handle, tz: str = "Asia/Shanghai", n_sites: int = 3, n_staff: int = 5) -> Tenant:
    """Sites, staff (each at a site) and the two standards, through the API."""
    api = handle.api
    sites = [api.post("/api/v1/sites", json={"code": f"S{n}", "name": f"Site {n}"}).json["id"]
             for n in range(n_sites)]
    staff = [api.post("/api/v1/staff", json={"code": f"E{n}", "name": f"Staff {n}",
                                             "site_id": sites[n % n_sites]}).json["id"]
             for n in range(n_staff)]
    for code in STANDARDS:
        put_standard(handle, code, document=standard_document(code))
    return Tenant(handle, tz, sites, staff)


def random_specs(t: Tenant, rng: random.Random, n: int, now: datetime, days: int) -> list[Spec]:
    """``n`` records over the last ``days`` days: inspections against either standard with
    random answers (some all n.a.), and observations (scored by nothing)."""
    specs = []
    for _ in range(n):
        at = now - timedelta(seconds=rng.randrange(1, days * 86400))
        staff = rng.choice(t.staff + [None])
        site = rng.choice(t.sites + [None])
        if rng.random() < 0.7:
            outcomes = ("na",) if rng.random() < 0.05 else ("pass", "pass", "pass", "fail", "na")
            specs.append(Spec(at, "inspection", site, staff, rng.choice(STANDARDS),
                              {code: rng.choice(outcomes) for code in ITEMS}))
        else:
            specs.append(Spec(at, "observation", site, staff))
    return specs


def create(t: Tenant, specs: list[Spec]) -> None:
    """Create ``specs`` with ``POST /records/batch`` (a thousand at a time)."""
    for start in range(0, len(specs), 1000):
        chunk = specs[start:start + 1000]
        r = t.api.post(BATCH, json={"records": [s.payload() for s in chunk]})
        assert r.status_code == 201, r.json
        for spec, made in zip(chunk, r.json["records"]):
            spec.id = made["id"]
    t.specs.extend(specs)


def delete(t: Tenant, spec: Spec) -> None:
    assert t.api.remove(f"{RECORDS}/{spec.id}").status_code == 204
    spec.deleted = True


def refresh(app, slug: str | None = None):
    args = ["kpis", "refresh", "--json"] + (["--tenant", slug] if slug else [])
    result = CliRunner().invoke(cli.make_cli(app_factory=lambda: app), args)
    assert result.exit_code == 0, result.output
    return result


def expected(t: Tenant, group_by: tuple[str, ...], since: datetime, until: datetime,
             site: str | None = None, staff: str | None = None, kind: str | None = None) -> dict:
    """``{group key: {metric: value}}`` from the specs, the way the metrics define them."""
    sums: dict[tuple, dict] = defaultdict(lambda: defaultdict(float))
    for s in t.specs:
        if s.deleted or not since <= s.at < until:
            continue
        if (site and s.site != site) or (staff and s.staff != staff) or (kind and s.kind != kind):
            continue

        def key(standard):
            parts = {"site": s.site, "staff": s.staff, "kind": s.kind, "standard": standard}
            return tuple(period_key(s.at, g, t.tz) if g in ("day", "week", "month") else parts[g]
                         for g in group_by)

        if "standard" not in group_by:
            sums[key(None)]["records"] += 1
        e = s.evaluation()
        if e is None:
            continue
        row = sums[key(s.standard)]
        if "standard" in group_by:
            row["records"] += 1
        if e["percent"] is not None:
            row["scored"] += 1
            row["sum"] += e["percent"]
        if e["passed"] is not None:
            row["judged"] += 1
            row["passed"] += e["passed"]
        row["critical"] += e["critical"]
    out = {key: {"records": int(row["records"]),
                 "score": row["sum"] / row["scored"] if row["scored"] else None,
                 "pass_rate": 100.0 * row["passed"] / row["judged"] if row["judged"] else None,
                 "critical_failures": int(row["critical"])}
           for key, row in sums.items()}
    if not group_by and not out:
        out[()] = {"records": 0, "score": None, "pass_rate": None, "critical_failures": 0}
    return out


def kpis(t: Tenant, group_by: tuple[str, ...], since: datetime, until: datetime, **filters) -> dict:
    query = {"metrics": METRICS, "group_by": ",".join(group_by), "since": since.isoformat(),
             "until": until.isoformat(), **{k: v for k, v in filters.items() if v is not None}}
    r = t.api.get(KPIS, query_string=query)
    assert r.status_code == 200, r.json
    return {tuple(row["group"][g] for g in group_by): row["values"] for row in r.json["rows"]}


def assert_matches(got: dict, want: dict) -> None:
    assert set(got) == set(want), (sorted(map(str, set(got) ^ set(want))))
    for key, values in want.items():
        for name, value in values.items():
            if isinstance(value, float):
                assert got[key][name] == pytest.approx(value, abs=1e-6), (key, name)
            else:
                assert got[key][name] == value, (key, name, got[key][name], value)


SHAPES = [(), ("site", "month"), ("day",), ("week", "staff"), ("kind",), ("standard",),
          ("standard", "site", "day"), ("staff", "kind", "month"), ("site",)]


@pytest.fixture
def now():
    return utcnow()


@pytest.fixture
def acme_data(acme, now):
    t = prepare(acme)
    create(t, random_specs(t, random.Random(7), 160, now, 30))
    for spec in t.specs[:6]:
        delete(t, spec)
    return t


@pytest.fixture
def globex_data(globex, now):
    t = prepare(globex)
    create(t, random_specs(t, random.Random(8), 60, now, 30))
    return t


def periods(now: datetime) -> list[tuple[datetime, datetime]]:
    """Whole days, cuts through days at both ends, the recent days only."""
    return [(now - timedelta(days=40), now + timedelta(seconds=1)),
            (now - timedelta(days=20, hours=5), now - timedelta(days=3, hours=7)),
            (now - timedelta(days=1, hours=12), now + timedelta(seconds=1))]


def test_values_match_the_records_before_and_after_the_rollups(app, acme_data, globex_data, now):
    t = acme_data
    before = {}
    for since, until in periods(now):
        for shape in SHAPES:
            got = kpis(t, shape, since, until)
            assert_matches(got, expected(t, shape, since, until))
            before[(since, until, shape)] = got
    refresh(app)
    for (since, until, shape), got in before.items():
        assert kpis(t, shape, since, until) == got  # identical, from the rollups now
    # The other tenant's own numbers, from its own records only.
    since, until = periods(now)[0]
    for shape in SHAPES[:3]:
        assert_matches(kpis(globex_data, shape, since, until), expected(globex_data, shape, since, until))


def test_filters(app, acme_data, now):
    t = acme_data
    refresh(app, "acme")
    since, until = now - timedelta(days=25, hours=3), now
    for filters in ({"site": t.sites[0]}, {"staff": t.staff[1]}, {"kind": "inspection"},
                    {"kind": "observation"}, {"site": t.sites[1], "kind": "inspection"}):
        api_filters = {f"{k}_id" if k != "kind" else k: v for k, v in filters.items()}
        for shape in (("site", "month"), ("day",), ()):
            assert_matches(kpis(t, shape, since, until, **api_filters),
                           expected(t, shape, since, until, **filters))


def test_a_hand_counted_example(acme, app, now):
    """Three inspections and an observation five days ago, counted by hand."""
    t = prepare(acme)
    five = now - timedelta(days=5)
    create(t, [Spec(five, "inspection", t.sites[0], t.staff[0], "qa.desk", dict.fromkeys(ITEMS, "pass")),
               Spec(five, "inspection", t.sites[0], t.staff[0], "qa.desk",
                    {"a": "pass", "b": "fail", "c": "pass", "d": "pass"}),
               Spec(five, "inspection", t.sites[1], None, "qa.room",
                    {"a": "pass", "b": "pass", "c": "fail", "d": "na"}),
               Spec(five, "observation", t.sites[1], None)])
    refresh(app)
    got = kpis(t, ("site",), now - timedelta(days=10), now)
    # Site 0: 100 % and 0 % (the critical item failed). Site 1: 2 of 3 answered, failed.
    assert got == {(t.sites[0],): {"records": 2, "score": 50.0, "pass_rate": 50.0, "critical_failures": 1},
                   (t.sites[1],): {"records": 2, "score": pytest.approx(200 / 3),
                                   "pass_rate": 0.0, "critical_failures": 0}}
    got = kpis(t, ("standard",), now - timedelta(days=10), now)
    assert got[("qa.desk",)]["records"] == 2 and got[("qa.room",)]["records"] == 1


def test_nothing_in_the_period(acme, now):
    t = prepare(acme)
    assert kpis(t, (), now - timedelta(days=3), now) == {
        (): {"records": 0, "score": None, "pass_rate": None, "critical_failures": 0}}
    assert kpis(t, ("site",), now - timedelta(days=3), now) == {}


def test_another_tenants_records_never_count(app, acme_data, globex, now):
    """globex has no records: whatever acme holds, rolled up or not, globex sees nothing."""
    refresh(app)
    t = Tenant(globex, "Asia/Shanghai", [], [])
    for since, until in periods(now):
        assert kpis(t, (), since, until) == {
            (): {"records": 0, "score": None, "pass_rate": None, "critical_failures": 0}}
    # A filter naming acme's site from globex finds nothing either.
    r = globex.api.get(KPIS, query_string={"metrics": METRICS, "site_id": acme_data.sites[0],
                                           "since": (now - timedelta(days=40)).isoformat()})
    assert r.status_code == 200 and r.json["rows"] == [
        {"group": {}, "values": {"records": 0, "score": None, "pass_rate": None, "critical_failures": 0}}]


def test_metrics_are_listed_and_bad_groupings_are_422(acme):
    listed = {m["name"]: m for m in acme.api.get(f"{KPIS}/metrics").json}
    for name in ("records", "score", "pass_rate", "critical_failures"):
        assert "standard" in listed[name]["groupings"] and "item" not in listed[name]["groupings"]
    r = acme.api.get(KPIS, query_string={"metrics": "score", "group_by": "item"})
    assert r.status_code == 422 and "score" in str(r.json["errors"])


def test_a_staff_id_of_no_one_counts_nothing(acme_data):
    r = acme_data.api.get(KPIS, query_string={"metrics": METRICS, "staff_id": str(uuid.uuid4())})
    assert r.status_code == 200 and r.json["rows"] == [
        {"group": {}, "values": {"records": 0, "score": None, "pass_rate": None, "critical_failures": 0}}]
