"""Deadline and failure KPIs through ``GET /api/v1/kpis`` (``core/kpis/timing.py``): every
expected value is worked out here from the complaints and inspections the test files, with
its own arithmetic of working time (the default calendar: Monday to Friday, 09:00-12:00
and 13:00-18:00, Asia/Shanghai); another tenant's rows never count."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from servq.core.models import Clock
from tests.test_evaluations import put_standard

# Rows dated in 2026, entered on a fixed day after them (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("present")

RECORDS = "/api/v1/records"
KPIS = "/api/v1/kpis"
SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
HOURS = ((time(9), time(12)), (time(13), time(18)))
PERIOD = {"since": "2026-03-01T00:00:00+08:00", "until": "2026-05-01T00:00:00+08:00"}
ACK_LIMIT = 4 * 3600            # core.complaint: acknowledged within 4 working hours
GENERAL_LIMIT = 5 * 8 * 3600    # general: 5 working days of 8 hours
SERIOUS_LIMIT = 2 * 8 * 3600    # serious: 2 working days
TIMES = ("response_time", "resolution_time", "response_time_working", "resolution_time_working")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def working_seconds(start: datetime, end: datetime) -> float:
    """Working seconds between two instants on the default calendar (this test's own)."""
    total = 0.0
    day = start.astimezone(SHANGHAI).date()
    while day <= end.astimezone(SHANGHAI).date():
        if day.weekday() < 5:
            for a, b in HOURS:
                lo = max(start, datetime.combine(day, a, SHANGHAI))
                hi = min(end, datetime.combine(day, b, SHANGHAI))
                if hi > lo:
                    total += (hi - lo).total_seconds()
        day += timedelta(days=1)
    return total


def spans(start: datetime, stop: datetime, pauses) -> tuple[float, float]:
    """(wall, working) seconds from start to stop less the pauses."""
    wall = (stop - start).total_seconds() - sum((b - a).total_seconds() for a, b in pauses)
    work = working_seconds(start, stop) - sum(working_seconds(a, b) for a, b in pauses)
    return wall, work


def stats(values: list[float]) -> dict:
    if not values:
        return {"mean": None, "median": None, "p90": None, "n": 0}
    p90 = statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]
    return {"mean": statistics.fmean(values), "median": statistics.median(values),
            "p90": p90, "n": len(values)}


def approx_stats(expected: dict) -> dict:
    return {key: (pytest.approx(value) if value is not None else None)
            for key, value in expected.items()}


@dataclass
class Complaint:
    """One complaint as filed here, and what the KPIs must make of it."""

    occurred: str
    severity: str = "general"
    category: str = ""
    site: str | None = None
    staff: str | None = None
    ack: str | None = None
    resolve: str | None = None
    pause: tuple[str, str] | None = None  # (wait, resume), between ack and resolve
    id: str = ""
    pauses: list = field(default_factory=list)

    def response(self):
        if self.ack is None:
            return None
        return spans(at(self.occurred), at(self.ack), [])

    def resolution(self):
        if self.resolve is None:
            return None
        pauses = [(at(a), at(b)) for a, b in [self.pause]] if self.pause else []
        return spans(at(self.occurred), at(self.resolve), pauses)

    def outcomes(self, now: datetime) -> list[tuple[str, str]]:
        """[(item code, met | breached)] of its decided clocks."""
        out = []
        ack = self.response()
        if ack is not None:
            out.append(("acknowledged_in_time", "met" if ack[1] <= ACK_LIMIT else "breached"))
        elif working_seconds(at(self.occurred), now) > ACK_LIMIT:
            out.append(("acknowledged_in_time", "breached"))
        item = f"{self.severity}_resolved_in_time"
        limit = GENERAL_LIMIT if self.severity == "general" else SERIOUS_LIMIT
        done = self.resolution()
        if done is not None:
            out.append((item, "met" if done[1] <= limit else "breached"))
        elif working_seconds(at(self.occurred), now) > limit:
            out.append((item, "breached"))
        return out

    @property
    def month(self) -> str:
        return at(self.occurred).astimezone(SHANGHAI).strftime("%Y-%m")


# Monday 2 March 2026 onwards, Shanghai time.
ACME = [
    # acknowledged and resolved the same morning/afternoon
    Complaint("2026-03-02T10:00:00+08:00", category="noise", site="S1", staff="A",
              ack="2026-03-02T11:30:00+08:00", resolve="2026-03-02T15:00:00+08:00"),
    # filed at 17:00, acknowledged next morning (2 working hours), resolved next evening
    Complaint("2026-03-02T17:00:00+08:00", category="noise", site="S1",
              ack="2026-03-03T10:00:00+08:00", resolve="2026-03-03T17:30:00+08:00"),
    # acknowledged late (6 working hours), waited for the customer overnight
    Complaint("2026-03-03T09:00:00+08:00", category="billing", site="S2", staff="A",
              ack="2026-03-03T16:00:00+08:00",
              pause=("2026-03-03T16:30:00+08:00", "2026-03-04T10:00:00+08:00"),
              resolve="2026-03-04T11:00:00+08:00"),
    # serious, acknowledged at once, never resolved: its 2 working days ran out long ago
    Complaint("2026-03-04T11:00:00+08:00", severity="serious", category="noise",
              ack="2026-03-04T11:20:00+08:00"),
    # 2026-03-31T17:00Z is 1 April 01:00 in Shanghai: an April complaint
    Complaint("2026-03-31T17:00:00+00:00", site="S2",
              ack="2026-04-01T09:30:00+08:00", resolve="2026-04-01T10:00:00+08:00"),
]
GLOBEX = [
    Complaint("2026-03-02T10:00:00+08:00", category="noise",
              ack="2026-03-05T10:00:00+08:00", resolve="2026-03-20T10:00:00+08:00"),
    Complaint("2026-03-10T10:00:00+08:00", category="noise", ack="2026-03-10T10:05:00+08:00"),
]


def act(api, record_id, **body):
    etag = api.get(f"{RECORDS}/{record_id}").headers["ETag"]
    r = api.post(f"{RECORDS}/{record_id}/transitions", json=body, headers={"If-Match": etag})
    assert r.status_code == 200, r.json
    return r.json


def events(tenant, complaint: Complaint, sites: dict, staff: dict) -> list[tuple[datetime, Any]]:
    """The steps of ``complaint``'s life as ``(instant, do)`` pairs."""

    def create():
        body = {"kind": "complaint", "occurred_at": complaint.occurred,
                "data": {"channel": "hotline", "description": "Too loud at night",
                         "severity": complaint.severity, "category": complaint.category}}
        if complaint.site:
            body["site_id"] = sites[complaint.site]
        if complaint.staff:
            body["staff_id"] = staff[complaint.staff]
        r = tenant.api.post(RECORDS, json=body)
        assert r.status_code == 201, r.json
        complaint.id = r.json["id"]

    def step(action, when, **extra):
        return (at(when), lambda: act(tenant.api, complaint.id, action=action, at=when, **extra))

    out = [(at(complaint.occurred), create)]
    if complaint.ack:
        out.append(step("acknowledge", complaint.ack))
    if complaint.pause:
        out.append(step("wait", complaint.pause[0], reason="Customer away"))
        out.append(step("resume", complaint.pause[1]))
    if complaint.resolve:
        out.append(step("resolve", complaint.resolve))
    return out


def run(steps: list[tuple[datetime, Any]]) -> None:
    """Take every step in time order, the clock frozen just after each."""
    for instant, do in sorted(steps, key=lambda pair: pair[0]):
        with time_machine.travel(instant + timedelta(seconds=30), tick=False):
            do()


def make_sites(tenant) -> tuple[dict, dict]:
    sites = {code: tenant.api.post("/api/v1/sites", json={"code": code, "name": f"Estate {code}"}).json["id"]
             for code in ("S1", "S2")}
    staff = {code: tenant.api.post("/api/v1/staff", json={"code": code, "name": f"Agent {code}"}).json["id"]
             for code in ("A", "B")}
    return sites, staff


@pytest.fixture
def filed(acme, globex):
    sites, staff = make_sites(acme)
    other_sites, other_staff = make_sites(globex)
    mine = [Complaint(**c.__dict__) for c in ACME]
    theirs = [Complaint(**c.__dict__) for c in GLOBEX]
    # A deleted complaint counts nowhere.
    gone = Complaint("2026-03-05T10:00:00+08:00", category="billing", ack="2026-03-05T18:00:00+08:00")
    steps = [step for c in mine for step in events(acme, c, sites, staff)]
    steps += [step for c in theirs for step in events(globex, c, other_sites, other_staff)]
    steps += events(acme, gone, sites, staff)
    steps.append((at("2026-03-06T09:00:00+08:00"),
                  lambda: acme.api.remove(f"{RECORDS}/{gone.id}")))
    run(steps)
    assert acme.api.get(f"{RECORDS}/{gone.id}").status_code == 404
    return {"complaints": mine, "sites": sites, "staff": staff}


def kpis(tenant, **params):
    r = tenant.api.get(KPIS, query_string={**PERIOD, **params})
    assert r.status_code == 200, r.json
    return r.json


def only_values(result) -> dict:
    (row,) = result["rows"]
    assert row["group"] == {}
    return row["values"]


# -- clocks are measured when they stop ----------------------------------------------


def test_stopped_clocks_carry_wall_and_working_seconds(acme, filed):
    complaint = filed["complaints"][2]  # acknowledged late, paused overnight
    with acme.session() as s:
        clocks = {c.item_code: c for c in s.scalars(select(Clock).where(
            Clock.record_id == uuid.UUID(complaint.id)))}
    ack_wall, ack_work = complaint.response()
    res_wall, res_work = complaint.resolution()
    assert clocks["acknowledged_in_time"].state == "breached"  # stopped late
    assert clocks["acknowledged_in_time"].elapsed_seconds == pytest.approx(ack_wall)
    assert clocks["acknowledged_in_time"].working_seconds == pytest.approx(ack_work)
    assert clocks["general_resolved_in_time"].elapsed_seconds == pytest.approx(res_wall)
    assert clocks["general_resolved_in_time"].working_seconds == pytest.approx(res_work)
    assert (res_wall, res_work) == (8.5 * 3600, 7.5 * 3600)  # the pause is left out

    # Reopened, the resolution clock runs again and has no measure.
    act(acme.api, complaint.id, action="reopen")
    with acme.session() as s:
        clock = s.scalar(select(Clock).where(Clock.record_id == uuid.UUID(complaint.id),
                                             Clock.item_code == "general_resolved_in_time"))
        assert clock.stop_at is None and clock.elapsed_seconds is None and clock.working_seconds is None


# -- the metrics ---------------------------------------------------------------------


def test_response_and_resolution_times(acme, globex, filed):
    complaints = filed["complaints"]
    values = only_values(kpis(acme, metrics=",".join(TIMES)))
    responses = [c.response() for c in complaints if c.response()]
    resolutions = [c.resolution() for c in complaints if c.resolution()]
    assert values["response_time"] == approx_stats(stats([w for w, _ in responses]))
    assert values["response_time_working"] == approx_stats(stats([k for _, k in responses]))
    assert values["resolution_time"] == approx_stats(stats([w for w, _ in resolutions]))
    assert values["resolution_time_working"] == approx_stats(stats([k for _, k in resolutions]))
    assert values["response_time"]["n"] == 5 and values["resolution_time"]["n"] == 4

    theirs = only_values(kpis(globex, metrics="response_time,resolution_time"))
    assert theirs["response_time"] == approx_stats(stats([c.response()[0] for c in GLOBEX]))
    assert theirs["resolution_time"] == approx_stats(stats([GLOBEX[0].resolution()[0]]))


def test_times_grouped_by_month_in_the_tenant_time_zone(acme, filed):
    result = kpis(acme, metrics="response_time_working", group_by="month")
    expected = {}
    for c in filed["complaints"]:
        expected.setdefault(c.month, []).append(c.response()[1])
    assert set(expected) == {"2026-03", "2026-04"}  # the 31 March 17:00Z complaint is April's
    assert {row["group"]["month"]: row["values"]["response_time_working"] for row in result["rows"]} == \
        {month: approx_stats(stats(values)) for month, values in expected.items()}


def test_deadline_attainment_and_breaches(acme, globex, filed):
    now = datetime.now(UTC)
    # A complaint filed a minute ago: its clocks are running and not yet decided.
    r = acme.api.post(RECORDS, json={"kind": "complaint",
                                     "occurred_at": (now - timedelta(minutes=1)).isoformat(),
                                     "data": {"channel": "web", "description": "Just now"}})
    assert r.status_code == 201
    period = {"since": PERIOD["since"], "until": (now + timedelta(days=1)).isoformat()}
    outcomes = [o for c in filed["complaints"] for _, o in c.outcomes(now)]
    assert outcomes.count("breached") == 2 and len(outcomes) == 10

    r = acme.api.get(KPIS, query_string={**period, "metrics": "deadline_attainment,breaches"})
    assert r.status_code == 200, r.json
    values = only_values(r.json)
    assert values["deadline_attainment"] == pytest.approx(100 * outcomes.count("met") / len(outcomes))
    assert values["breaches"] == outcomes.count("breached")

    # By item: one row per deadline item with a decided clock.
    r = acme.api.get(KPIS, query_string={**period, "metrics": "deadline_attainment,breaches",
                                         "group_by": "item"})
    by_item: dict[str, list[str]] = {}
    for c in filed["complaints"]:
        for item, outcome in c.outcomes(now):
            by_item.setdefault(f"core.complaint/{item}", []).append(outcome)
    got = {row["group"]["item"]: row["values"] for row in r.json["rows"]}
    assert set(got) == set(by_item)
    for key, outs in by_item.items():
        assert got[key]["deadline_attainment"] == pytest.approx(100 * outs.count("met") / len(outs))
        # A group with no breach has no breaches row: null, not 0 (the rows are merged).
        assert (got[key]["breaches"] or 0) == outs.count("breached")
    assert r.json["labels"]["item"]["core.complaint/acknowledged_in_time"] == \
        "Acknowledged within 4 working hours"

    theirs = only_values(globex.api.get(KPIS, query_string={
        **period, "metrics": "deadline_attainment,breaches"}).json)
    their_outcomes = [o for c in GLOBEX for _, o in c.outcomes(now)]
    assert theirs["breaches"] == their_outcomes.count("breached")
    assert theirs["deadline_attainment"] == pytest.approx(
        100 * their_outcomes.count("met") / len(their_outcomes))


def test_grouped_by_site_and_staff_with_labels(acme, filed):
    sites, staff = filed["sites"], filed["staff"]
    result = kpis(acme, metrics="response_time,breaches", group_by="site,staff")
    expected: dict[tuple, list] = {}
    for c in filed["complaints"]:
        key = (sites.get(c.site), staff.get(c.staff))
        expected.setdefault(key, []).append(c)
    now = datetime.now(UTC)
    got = {(row["group"]["site"], row["group"]["staff"]): row["values"] for row in result["rows"]}
    assert set(got) == set(expected)
    for key, group in expected.items():
        assert got[key]["response_time"] == approx_stats(stats([c.response()[0] for c in group]))
        breached = sum(o == "breached" for c in group for _, o in c.outcomes(now))
        assert (got[key]["breaches"] or 0) == breached
    assert result["labels"]["site"] == {sites["S1"]: "Estate S1", sites["S2"]: "Estate S2"}
    assert result["labels"]["staff"] == {staff["A"]: "Agent A"}

    # Filters: one site only.
    values = only_values(kpis(acme, metrics="response_time", site_id=sites["S2"]))
    assert values["response_time"] == approx_stats(stats(
        [c.response()[0] for c in filed["complaints"] if c.site == "S2"]))


def test_times_follow_the_kpi_tags_of_the_standard_in_force(acme, filed):
    """Untag the acknowledgement item: no response times any more; tag it as the
    resolution and its clocks join the resolution times."""
    put_standard(acme, "core.complaint", overrides={"items": {
        "acknowledged_in_time": {"kpi": "resolution"},
        "general_resolved_in_time": {"kpi": None}, "serious_resolved_in_time": {"kpi": None}}})
    values = only_values(kpis(acme, metrics="response_time,resolution_time"))
    assert values["response_time"] == {"mean": None, "median": None, "p90": None, "n": 0}
    assert values["resolution_time"] == approx_stats(stats(
        [c.response()[0] for c in filed["complaints"]]))


def test_a_kpi_tag_is_for_deadline_items_only(acme):
    url = "/api/v1/standards/core.complaint"
    etag = acme.api.get(url).headers["ETag"]
    r = acme.api.put(url, json={"overrides": {"items": {
        "acknowledged_in_time": {"kpi": "speed"}}}}, etag=etag)
    assert r.status_code == 422, r.json
    assert "kpi" in str(r.json["errors"])
    r = acme.api.put("/api/v1/standards/hq.check", json={"document": {
        "code": "hq.check", "version": 1, "title": {"en": "Check", "zh": "检查"},
        "applies_to": ["observation"], "method": "weighted", "pass_mark": 50,
        "items": [{"code": "tidy", "title": {"en": "Tidy", "zh": "整洁"}, "dimension": "tangibles",
                   "kpi": "response", "rule": {"type": "check"}}]}})
    assert r.status_code == 422, r.json
    assert "deadline" in str(r.json["errors"])


# -- failed items ----------------------------------------------------------------------


FRONT_DESK = {
    "title": {"en": "Front desk", "zh": "前台"},
    "applies_to": ["inspection"], "method": "weighted", "pass_mark": 80,
    "items": [
        {"code": "greeting", "title": {"en": "Greets the guest", "zh": "问候客人"},
         "dimension": "assurance", "rule": {"type": "check"}},
        {"code": "uniform", "title": {"en": "Wears the uniform", "zh": "着装规范"},
         "dimension": "tangibles", "rule": {"type": "check"}},
        {"code": "wait", "title": {"en": "Wait under 5 minutes", "zh": "等候少于5分钟"},
         "dimension": "responsiveness", "rule": {"type": "measure", "max": 5}},
    ],
}
INSPECTIONS = [  # (occurred_at, greeting, uniform, wait)
    ("2026-03-02T10:00:00+08:00", "fail", "fail", 7),
    ("2026-03-09T10:00:00+08:00", "fail", "pass", 3),
    ("2026-03-31T17:30:00+00:00", "fail", "fail", 9),   # 1 April in Shanghai
    ("2026-04-02T10:00:00+08:00", "pass", "pass", 2),
]


def inspect(tenant, occurred, greeting, uniform, wait):
    r = tenant.api.post(RECORDS, json={"kind": "inspection", "occurred_at": occurred, "data": {
        "standard": "hq.front_desk", "answers": {
            "greeting": {"outcome": greeting}, "uniform": {"outcome": uniform}, "wait": {"value": wait}}}})
    assert r.status_code == 201, r.json


def inspection_failures() -> list[tuple[str, str]]:
    """[(item key, Shanghai day)] of every failed answer in INSPECTIONS."""
    out = []
    for occurred, greeting, uniform, wait in INSPECTIONS:
        day = at(occurred).astimezone(SHANGHAI).strftime("%Y-%m-%d")
        for code, failed in (("greeting", greeting == "fail"), ("uniform", uniform == "fail"),
                             ("wait", wait > 5)):
            if failed:
                out.append((f"hq.front_desk/{code}", day))
    return out


@pytest.fixture
def inspected(acme, globex):
    for tenant in (acme, globex):
        put_standard(tenant, "hq.front_desk", document={"code": "hq.front_desk", "version": 1,
                                                        **FRONT_DESK})
    for row in INSPECTIONS:
        inspect(acme, *row)
    inspect(globex, "2026-03-02T10:00:00+08:00", "fail", "fail", 9)
    return inspection_failures()


def test_failed_items_by_item_and_day(acme, globex, inspected):
    result = kpis(acme, metrics="failed_items", group_by="item")
    expected: dict[str, int] = {}
    for key, _ in inspected:
        expected[key] = expected.get(key, 0) + 1
    assert {row["group"]["item"]: row["values"]["failed_items"] for row in result["rows"]} == expected
    assert result["labels"]["item"]["hq.front_desk/wait"] == "Wait under 5 minutes"
    r = acme.api.get(KPIS, query_string={**PERIOD, "metrics": "failed_items", "group_by": "item"},
                     headers={"Accept-Language": "zh"})
    assert r.json["labels"]["item"]["hq.front_desk/wait"] == "等候少于5分钟"
    assert r.json["metrics"][0]["title"] == "不合格项"

    by_day: dict[str, int] = {}
    for _, day in inspected:
        by_day[day] = by_day.get(day, 0) + 1
    result = kpis(acme, metrics="failed_items", group_by="day")
    assert {row["group"]["day"]: row["values"]["failed_items"] for row in result["rows"]} == by_day
    assert "2026-04-01" in by_day

    assert only_values(kpis(acme, metrics="failed_items"))["failed_items"] == len(inspected)
    assert only_values(kpis(acme, metrics="failed_items", standard="hq.front_desk"))["failed_items"] == \
        len(inspected)
    assert only_values(kpis(acme, metrics="failed_items", standard="core.complaint"))["failed_items"] == 0
    assert only_values(kpis(globex, metrics="failed_items"))["failed_items"] == 3


def test_failed_items_by_week_and_standard(acme, inspected):
    result = kpis(acme, metrics="failed_items", group_by="week,standard")
    expected: dict[tuple, int] = {}
    for key, day in inspected:
        year, week, _ = datetime.fromisoformat(day).isocalendar()
        group = (f"{year}-W{week:02d}", key.split("/")[0])
        expected[group] = expected.get(group, 0) + 1
    assert {(row["group"]["week"], row["group"]["standard"]): row["values"]["failed_items"]
            for row in result["rows"]} == expected
    assert result["labels"]["standard"] == {"hq.front_desk": "Front desk"}
