"""The daily KPI rollups (``core/kpis/rollups.py``, read by ``core/kpis/rollup_reads.py``): what a refresh writes, that it is
idempotent, that a write to an old record marks its day dirty (and a recent one costs
no query), that KPIs read from rollups equal KPIs read from the raw tables whatever the
period, grouping and filters, the time-zone rebuild, ``servq kpis refresh``, the job and
the worker's hourly schedule, and tenancy."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, func, select

from servq.core.db import utcnow
from servq.core.kpis import rollup_reads, rollups
from servq.core.kpis.rollups import local_day
from servq.core.models import KpiDay, KpiDirtyDay, KpiState
from tests.test_kpis_records import (ITEMS, METRICS, RECORDS, Spec, create, delete, expected, kpis,
                                     prepare, random_specs, refresh, assert_matches)

KPIS = "/api/v1/kpis"


@pytest.fixture
def now():
    return utcnow()


@contextmanager
def statements(app):
    """Collect the SQL statements sent while the block runs."""
    seen: list[str] = []
    engine = app.extensions["servq.engine"]

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def rollup_rows(handle) -> dict[tuple, tuple]:
    """``{(day, site, staff, kind, standard): sums}`` of the tenant's ``kpi_days``."""
    with handle.session() as s:
        return {(r.day, str(r.site_id) if r.site_id else None, str(r.staff_id) if r.staff_id else None,
                 r.kind, r.standard_code): (r.records, r.scored, round(r.sum_percent, 9), r.judged,
                                            r.passed, r.failed_critical)
                for r in s.scalars(select(KpiDay))}


def expected_rows(t, until_day) -> dict[tuple, tuple]:
    """What ``kpi_days`` must hold for the days before ``until_day``, from the specs."""
    rows: dict[tuple, list] = defaultdict(lambda: [0, 0, 0.0, 0, 0, 0])
    for s in t.specs:
        day = local_day(s.at, t.tz)
        if s.deleted or day >= until_day:
            continue
        rows[(day, s.site, s.staff, s.kind, "")][0] += 1
        e = s.evaluation()
        if e is None:
            continue
        row = rows[(day, s.site, s.staff, s.kind, s.standard)]
        row[0] += 1
        if e["percent"] is not None:
            row[1] += 1
            row[2] += e["percent"]
        if e["passed"] is not None:
            row[3] += 1
            row[4] += e["passed"]
        row[5] += e["critical"]
    return {key: (r[0], r[1], round(r[2], 9), r[3], r[4], r[5]) for key, r in rows.items()}


def state(handle):
    with handle.session() as s:
        return s.scalar(select(KpiState))


def dirty_days(handle) -> set:
    with handle.session() as s:
        return set(s.scalars(select(KpiDirtyDay.day)))


def test_refresh_rolls_the_days_before_two_days_ago_and_is_idempotent(app, acme, now):
    t = prepare(acme)
    create(t, random_specs(t, random.Random(1), 150, now, 20))
    delete(t, t.specs[0])
    first = refresh(app, "acme")
    report = json.loads(first.output)["acme"]
    until_day = local_day(now, t.tz) - timedelta(days=2)
    assert report["rebuilt"] is True and report["rolled_until"] == until_day.isoformat()
    assert state(acme).rolled_until == until_day and state(acme).timezone == t.tz
    rows = rollup_rows(acme)
    assert rows == expected_rows(t, until_day) and report["rows"] == len(rows)
    # Again: nothing to do, nothing rewritten.
    with acme.session() as s:
        ids = set(s.scalars(select(KpiDay.id)))
    report = json.loads(refresh(app, "acme").output)["acme"]
    assert (report["rebuilt"], report["days"], report["rows"], report["statements"]) == (False, 0, 0, 0)
    with acme.session() as s:
        assert set(s.scalars(select(KpiDay.id))) == ids


def test_a_change_to_an_old_record_after_a_refresh_shows_at_once(app, acme, now):
    t = prepare(acme)
    ten, nine, eight = (now - timedelta(days=n) for n in (10, 9, 8))
    good = dict.fromkeys(ITEMS, "pass")
    specs = [Spec(ten, "inspection", t.sites[0], t.staff[0], "qa.desk", dict(good)),
             Spec(ten, "inspection", t.sites[1], t.staff[1], "qa.room", dict(good)),
             Spec(nine, "observation", t.sites[0], None),
             Spec(nine, "inspection", t.sites[2], None, "qa.desk", dict(good)),
             Spec(now - timedelta(hours=2), "observation", t.sites[0], None)]
    create(t, specs)
    refresh(app)
    assert dirty_days(acme) == set()
    window = (now - timedelta(days=30), now + timedelta(seconds=1))
    shapes = [("site", "day"), ("standard",), ()]
    for shape in shapes:
        assert_matches(kpis(t, shape, *window), expected(t, shape, *window))

    # Re-scored: the critical item now fails.
    failing = {code: {"outcome": "fail" if code == "b" else "pass"} for code in ITEMS}
    r = t.api.update(f"{RECORDS}/{specs[0].id}", {"data": {"standard": "qa.desk", "answers": failing}})
    assert r.status_code == 200, r.json
    specs[0].answers["b"] = "fail"
    # Moved to another site and another old day.
    r = t.api.update(f"{RECORDS}/{specs[1].id}", {"site_id": t.sites[2], "occurred_at": eight.isoformat()})
    assert r.status_code == 200, r.json
    specs[1].site, specs[1].at = t.sites[2], eight
    delete(t, specs[2])
    create(t, [Spec(nine, "observation", t.sites[1], t.staff[2])])  # a late entry
    assert dirty_days(acme) == {local_day(at, t.tz) for at in (ten, nine, eight)}
    for shape in shapes:
        assert_matches(kpis(t, shape, *window), expected(t, shape, *window))

    # The refresh re-rolls exactly the dirty days; the answers stay the same.
    before = {shape: kpis(t, shape, *window) for shape in shapes}
    report = json.loads(refresh(app, "acme").output)["acme"]
    assert (report["dirty"], report["days"], report["rebuilt"]) == (3, 3, False)
    assert dirty_days(acme) == set()
    assert rollup_rows(acme) == expected_rows(t, state(acme).rolled_until)
    for shape in shapes:
        assert kpis(t, shape, *window) == before[shape]


def test_recent_writes_cost_no_query_old_ones_one_statement(app, acme, now):
    t = prepare(acme)
    recent = Spec(now - timedelta(hours=46), "observation", t.sites[0], None)
    with statements(app) as seen:
        create(t, [recent])
        r = t.api.post(RECORDS, json=Spec(now - timedelta(hours=1), "inspection", None, None, "qa.desk",
                                          dict.fromkeys(ITEMS, "pass")).payload())
        assert r.status_code == 201
        assert t.api.update(f"{RECORDS}/{recent.id}", {"site_id": t.sites[1]}).status_code == 200
    assert not [s for s in seen if "kpi_" in s]
    old = [Spec(now - timedelta(days=3 + n % 5, hours=n), "inspection", None, None, "qa.room",
                dict.fromkeys(ITEMS, "pass")) for n in range(40)]
    with statements(app) as seen:
        create(t, old)  # one batch: one statement for its five days
    assert len([s for s in seen if "kpi_dirty_days" in s]) == 1
    assert dirty_days(acme) == {local_day(s.at, t.tz) for s in old}
    with statements(app) as seen:
        r = t.api.post(RECORDS, json=Spec(now - timedelta(days=6), "inspection", None, None, "qa.desk",
                                          dict.fromkeys(ITEMS, "pass")).payload())
        assert r.status_code == 201
    # Created and evaluated in one transaction: marked once.
    assert len([s for s in seen if "kpi_dirty_days" in s]) == 1


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Kolkata"])
def test_rollups_answer_exactly_what_the_raw_tables_answer(app, factory, now, tz, monkeypatch):
    """Random records over ten weeks (across a daylight-saving change in New York), some
    changed after the refresh (dirty days); random periods, groupings and filters: the
    rollup-backed answers equal the raw ones, to the last digit."""
    rng = random.Random(tz)
    t = prepare(factory.tenant("tzco", timezone=tz), tz, n_sites=4, n_staff=9)
    create(t, random_specs(t, rng, 500, now, 70))
    refresh(app)
    for spec in rng.sample([s for s in t.specs if s.at < now - timedelta(days=5)], 12):
        if spec.kind == "observation":
            delete(t, spec)
        else:
            spec.answers = {code: rng.choice(("pass", "fail")) for code in ITEMS}
            answers = {code: {"outcome": o} for code, o in spec.answers.items()}
            r = t.api.update(f"{RECORDS}/{spec.id}", {"data": {"standard": spec.standard, "answers": answers}})
            assert r.status_code == 200, r.json
    assert dirty_days(t.handle)
    shapes = [(), ("day",), ("week",), ("month",), ("site", "month"), ("staff", "week"),
              ("standard", "day"), ("kind", "site"), ("month", "standard", "staff")]
    cases = []
    for _ in range(30):
        start = now - timedelta(days=rng.uniform(0, 75))
        end = start + timedelta(days=rng.uniform(0.2, 80))
        filters = rng.choice([{}, {}, {"site_id": rng.choice(t.sites)}, {"staff_id": rng.choice(t.staff)},
                              {"kind": rng.choice(["inspection", "observation"])}])
        cases.append((rng.choice(shapes), start, end, filters))
    cases.append((("day",), now - timedelta(days=80), now + timedelta(seconds=1), {}))  # whole days
    with_rollups = [kpis(t, shape, since, until, **filters) for shape, since, until, filters in cases]
    monkeypatch.setattr(rollup_reads, "USE_ROLLUPS", False)
    raw = [kpis(t, shape, since, until, **filters) for shape, since, until, filters in cases]
    assert with_rollups == raw
    # And both are what the records say.
    for (shape, since, until, filters), got in zip(cases[:8], raw):
        assert_matches(got, expected(t, shape, since, until, **{k.removesuffix("_id"): v
                                                                 for k, v in filters.items()}))


def test_rollups_are_read_for_whole_clean_days_only(app, acme, now):
    """The rows of ``kpi_days`` really answer: tampering with them shows in a period of
    whole rolled-up days, not in the days read raw (the last two, dirty ones)."""
    t = prepare(acme)
    create(t, random_specs(t, random.Random(3), 60, now, 12))
    refresh(app)
    with acme.session() as s:
        s.execute(KpiDay.__table__.update().where(KpiDay.tenant_id == acme.id,
                                                  KpiDay.standard_code == "")
                  .values(records=KpiDay.records + 1000))
        s.commit()
    window = (now - timedelta(days=20), now + timedelta(seconds=1))
    assert kpis(t, (), *window)[()]["records"] > 1000
    recent = (now - timedelta(days=1), now + timedelta(seconds=1))
    assert_matches(kpis(t, (), *recent), expected(t, (), *recent))


def test_a_new_time_zone_rebuilds_the_rollups(app, acme, now):
    t = prepare(acme)
    create(t, random_specs(t, random.Random(4), 80, now, 15))
    refresh(app)
    calendar = {"timezone": "America/Los_Angeles", "working_hours": {
        d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}}
    assert acme.api.put("/api/v1/calendar", json=calendar).status_code in (200, 201)
    t.tz = "America/Los_Angeles"
    window = (now - timedelta(days=20), now + timedelta(seconds=1))
    # Answered in the new zone at once (the rollups of the old one are not used).
    for shape in (("day",), ("site", "week")):
        assert_matches(kpis(t, shape, *window), expected(t, shape, *window))
    report = json.loads(refresh(app, "acme").output)["acme"]
    assert report["rebuilt"] is True and state(acme).timezone == "America/Los_Angeles"
    assert rollup_rows(acme) == expected_rows(t, state(acme).rolled_until)
    for shape in (("day",), ("site", "week")):
        assert_matches(kpis(t, shape, *window), expected(t, shape, *window))


def test_refresh_of_one_tenant_leaves_the_others_alone(app, acme, globex, now):
    a, g = prepare(acme), prepare(globex)
    create(a, random_specs(a, random.Random(5), 40, now, 10))
    create(g, random_specs(g, random.Random(6), 40, now, 10))
    refresh(app, "acme")
    assert rollup_rows(acme) and state(acme) is not None
    assert rollup_rows(globex) == {} and state(globex) is None  # nor sees acme's
    window = (now - timedelta(days=20), now)
    assert_matches(kpis(g, ("day",), *window), expected(g, ("day",), *window))
    out = refresh(app).output  # every tenant
    assert set(json.loads(out)) == {"acme", "globex"}
    assert rollup_rows(globex) == expected_rows(g, state(globex).rolled_until)
    assert rollup_rows(acme) == expected_rows(a, state(acme).rolled_until)


def test_refresh_command_text_and_errors(app, acme):
    from click.testing import CliRunner

    from servq import cli
    run = lambda *args: CliRunner().invoke(cli.make_cli(app_factory=lambda: app), list(args))  # noqa: E731
    result = run("kpis", "refresh", "--tenant", "acme")
    assert result.exit_code == 0 and result.output.startswith("acme: rolled until ")
    assert "rebuilt" in result.output  # the first time: nothing rolled yet
    result = run("kpis", "refresh", "--tenant", "nope")
    assert result.exit_code != 0 and "no tenant with slug 'nope'" in result.stderr
    assert "Traceback" not in result.output


def test_the_job_is_registered_and_idempotent(app, acme, now):
    from servq.core.jobs import run_job

    t = prepare(acme)
    create(t, random_specs(t, random.Random(9), 30, now, 8))
    name = "kpis.refresh"
    with app.app_context():
        first = run_job(name, str(acme.id))
        second = run_job(name, str(acme.id))
    assert first["rows"] > 0 and second["rows"] == 0 and second["rolled_until"] == first["rolled_until"]
    assert rollup_rows(acme) == expected_rows(t, state(acme).rolled_until)


@pytest.mark.redis
def test_the_worker_tick_refreshes_every_tenant_once_an_hour(app, acme, globex, now):
    queue = app.extensions["servq.queue"]
    # The start of the current interval: ``now`` itself may be its last seconds, and
    # thirty seconds later already the next one.
    interval = rollups.REFRESH_INTERVAL
    start = datetime.fromtimestamp(int(now.timestamp()) // interval * interval, tz=timezone.utc)
    first = rollups.schedule_refresh(app, start)
    assert first is not None and first.enqueued == 2
    assert rollups.schedule_refresh(app, start + timedelta(seconds=30)) is None
    assert rollups.schedule_refresh(app, start + timedelta(seconds=interval - 1)) is None
    jobs = [job for job in queue.jobs if job.id.startswith("kpi-rollups-")]
    assert {job.args[0] for job in jobs} == {str(acme.id), str(globex.id)}
    assert all(job.func_name == "kpis.refresh" and len(job.args) == 1 for job in jobs)


def test_without_redis_the_schedule_does_nothing(app, acme, now):
    if app.extensions["servq.queue"] is not None:
        pytest.skip("runs without Redis")
    assert rollups.schedule_refresh(app, now) is None


def test_refresh_without_records_sets_the_state(app, acme, now):
    refresh(app, "acme")
    assert state(acme).rolled_until == local_day(now, "Asia/Shanghai") - timedelta(days=2)
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(KpiDay)) == 0
    r = acme.api.get(KPIS, query_string={"metrics": METRICS})
    assert r.status_code == 200 and r.json["rows"][0]["values"]["records"] == 0
