"""The stalled-record watch through the CLI scan and HTTP (``Workflow(stalled_after=...)``,
``core/deadlines/stalled.py``): a record that has not moved past its limit notifies
``record.stalled`` once (audited, with a corrective action), a move re-arms the watch,
working limits follow the tenant's calendar (holidays included), final and undeclared
states never stall, and one scan reads the records with one query.

The kind is the test-only plugin ``gated`` (``tests/gated_plugin.py``): ``open`` and
``review`` stall after 4h (wall), ``working`` after 1 working day, ``on_hold`` never.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from click.testing import CliRunner
from sqlalchemy import event

from servq.cli import make_cli
from tests.gated_plugin import KIND, GatedPlugin

RECORDS = "/api/v1/records"
SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURS = ["09:00-12:00", "13:00-18:00"]
# Wednesday 4 March 2026 is a holiday of this tenant.
CALENDAR = {"timezone": "Asia/Shanghai", "extra_holidays": ["2026-03-04"],
            "working_hours": {day: HOURS for day in ("mon", "tue", "wed", "thu", "fri")}}


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture
def app_config(app_config):
    app_config["EXTRA_PLUGINS"] = [("gated", GatedPlugin())]
    return app_config


@pytest.fixture
def tenant(acme):
    acme.enable("gated")
    with time_machine.travel(local(2026, 3, 1, 9), tick=False):
        r = acme.api.put("/api/v1/calendar", json=CALENDAR)
        assert r.status_code == 200, r.json
    return acme


def scan(app, tenant, when: datetime) -> dict:
    with time_machine.travel(when, tick=False):
        result = CliRunner().invoke(make_cli(app_factory=lambda: app),
                                    ["deadlines", "scan", "--json", "--tenant", tenant.slug])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)[tenant.slug]


def new_job(tenant, when: datetime, **data) -> dict:
    with time_machine.travel(when, tick=False):
        r = tenant.api.post(RECORDS, json={"kind": KIND, "occurred_at": when.isoformat(),
                                           "data": {"title": "Boiler service", **data}})
    assert r.status_code == 201, r.json
    return r.json


def act(tenant, record_id, action, when: datetime, **body):
    with time_machine.travel(when, tick=False):
        etag = tenant.api.get(f"{RECORDS}/{record_id}").headers["ETag"]
        r = tenant.api.post(f"{RECORDS}/{record_id}/transitions", json={"action": action, **body},
                            headers={"If-Match": etag})
    assert r.status_code == 200, r.json
    return r.json


def stalls(tenant) -> list[dict]:
    return tenant.api.get("/api/v1/notifications", query_string={"type": "record.stalled"}).json


def test_a_stalled_record_notifies_once_and_a_move_rearms_the_watch(app, tenant):
    t0 = local(2026, 3, 2, 10)  # Monday
    job = new_job(tenant, t0)
    assert scan(app, tenant, t0 + timedelta(hours=3, minutes=59))["stalled"] == 0
    assert stalls(tenant) == []

    before = tenant.api.get(f"{RECORDS}/{job['id']}")
    first = scan(app, tenant, t0 + timedelta(hours=4, minutes=1))
    assert first["stalled"] == 1 and first["stall_actions"] == 1
    assert scan(app, tenant, t0 + timedelta(hours=5))["stalled"] == 0  # once per stall
    assert scan(app, tenant, t0 + timedelta(days=3))["stalled"] == 0

    [note] = stalls(tenant)
    assert note["roles"] == ["manager"]
    assert note["data"] == {"record_id": job["id"], "record_kind": KIND, "status": "open",
                            "site_id": None, "staff_id": None,
                            "status_since": t0.astimezone(ZoneInfo("UTC")).isoformat(),
                            "stalled_after": "4h",
                            "stalled_since": (t0 + timedelta(hours=4)).astimezone(ZoneInfo("UTC")).isoformat()}
    history = tenant.api.get(f"{RECORDS}/{job['id']}/history").json
    [audited] = [e for e in history if e["action"] == "stalled"]
    assert audited["changes"]["status"] == "open" and audited["changes"]["stalled_after"] == "4h"
    actions = tenant.api.get("/api/v1/actions", query_string={"record_id": job["id"]}).json
    assert len(actions) == 1 and actions[0]["source"] == "deadline"
    assert "stalled" in actions[0]["title"]
    # Being found stalled is not a change of the record: its ETag still holds.
    after = tenant.api.get(f"{RECORDS}/{job['id']}")
    assert after.headers["ETag"] == before.headers["ETag"]

    # A move re-arms the watch: the next stall (in `review`, 4h) notifies again, once.
    moved = t0 + timedelta(days=3, hours=1)  # Thursday 11:00
    act(tenant, job["id"], "start", moved)
    tenant_patch(tenant, job["id"], {"title": "Boiler service", "service_sheet": {"signed": True}}, moved)
    act(tenant, job["id"], "submit", moved)
    assert scan(app, tenant, moved + timedelta(hours=3))["stalled"] == 0
    assert scan(app, tenant, moved + timedelta(hours=4, minutes=1))["stalled"] == 1
    assert scan(app, tenant, moved + timedelta(hours=6))["stalled"] == 0
    assert [n["data"]["status"] for n in stalls(tenant)] == ["review", "open"]  # newest first
    assert len(tenant.api.get("/api/v1/actions", query_string={"record_id": job["id"]}).json) == 2


def tenant_patch(tenant, record_id, data, when):
    with time_machine.travel(when, tick=False):
        etag = tenant.api.get(f"{RECORDS}/{record_id}").headers["ETag"]
        r = tenant.api.patch(f"{RECORDS}/{record_id}", json={"data": data}, headers={"If-Match": etag})
    assert r.status_code == 200, r.json


def test_a_working_limit_counts_the_tenants_calendar_and_skips_its_holiday(app, tenant):
    t0 = local(2026, 3, 3, 9)  # Tuesday
    job = new_job(tenant, t0)
    act(tenant, job["id"], "start", local(2026, 3, 3, 10))
    # `open` (4h) no longer applies; `working` is 1 working day. Wednesday is a holiday:
    # more than a day of wall time passes without a working day.
    assert scan(app, tenant, local(2026, 3, 4, 17))["stalled"] == 0
    assert scan(app, tenant, local(2026, 3, 5, 9, 30))["stalled"] == 0
    assert scan(app, tenant, local(2026, 3, 5, 10, 1))["stalled"] == 1
    [note] = stalls(tenant)
    assert note["data"]["status"] == "working" and note["data"]["stalled_after"] == "1 working day"
    assert datetime.fromisoformat(note["data"]["stalled_since"]) == local(2026, 3, 5, 10)


def test_a_record_never_moved_has_its_status_since_its_corrected_occurred_at(app, tenant):
    t0 = local(2026, 3, 2, 10)
    job = new_job(tenant, t0)
    with time_machine.travel(t0 + timedelta(minutes=5), tick=False):
        etag = tenant.api.get(f"{RECORDS}/{job['id']}").headers["ETag"]
        r = tenant.api.patch(f"{RECORDS}/{job['id']}", headers={"If-Match": etag},
                             json={"occurred_at": (t0 - timedelta(hours=5)).isoformat()})
        assert r.status_code == 200, r.json
    assert scan(app, tenant, t0 + timedelta(minutes=10))["stalled"] == 1
    [note] = stalls(tenant)
    assert datetime.fromisoformat(note["data"]["status_since"]) == t0 - timedelta(hours=5)


def test_records_created_in_bulk_are_watched_too(app, tenant):
    t0 = local(2026, 3, 2, 10)
    body = {"records": [{"kind": KIND, "occurred_at": (t0 + timedelta(minutes=10 * n)).isoformat(),
                         "data": {"title": f"Job {n}"}} for n in range(3)]}
    with time_machine.travel(t0 + timedelta(hours=1), tick=False):
        r = tenant.api.post(f"{RECORDS}/batch", json=body)
    assert r.status_code == 201, r.json
    assert scan(app, tenant, t0 + timedelta(hours=4, minutes=1))["stalled"] == 1
    assert scan(app, tenant, t0 + timedelta(hours=4, minutes=25))["stalled"] == 2


def test_final_and_undeclared_states_never_stall(app, tenant):
    t0 = local(2026, 3, 2, 10)
    closed = new_job(tenant, t0, waiver={"reason": "cancelled", "approver_id": "u-1"})
    act(tenant, closed["id"], "start", t0 + timedelta(minutes=5))
    act(tenant, closed["id"], "waive", t0 + timedelta(minutes=10))
    held = new_job(tenant, t0)
    act(tenant, held["id"], "start", t0 + timedelta(minutes=5))
    act(tenant, held["id"], "hold", t0 + timedelta(minutes=10), reason="waiting for a part")
    deleted = new_job(tenant, t0)
    with time_machine.travel(t0 + timedelta(minutes=15), tick=False):
        assert tenant.api.remove(f"{RECORDS}/{deleted['id']}").status_code == 204
    assert scan(app, tenant, t0 + timedelta(days=60))["stalled"] == 0
    assert stalls(tenant) == []


def test_another_tenants_records_are_not_its_stalls(app, tenant, globex):
    globex.enable("gated")
    t0 = local(2026, 3, 2, 10)
    new_job(tenant, t0)
    assert scan(app, globex, t0 + timedelta(days=1))["stalled"] == 0
    assert scan(app, tenant, t0 + timedelta(days=1))["stalled"] == 1
    assert stalls(globex) == [] and len(stalls(tenant)) == 1


def test_one_query_reads_the_records_however_many_stall(app, tenant):
    t0 = local(2026, 3, 2, 10)
    for n in range(12):
        new_job(tenant, t0 + timedelta(minutes=n))
    engine = app.extensions["servq.engine"]
    selects = []

    def count(conn, cursor, statement, parameters, context, executemany):
        text = " ".join(statement.split()).lower()
        if text.startswith("select") and " from records" in text:
            selects.append(text)

    event.listen(engine, "before_cursor_execute", count)
    try:
        result = scan(app, tenant, t0 + timedelta(hours=5))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert result["stalled"] == 12
    # The watch's query, plus one for the records whose actions it opens; none per record.
    assert 1 <= len(selects) <= 3, selects
