"""A tenant's own values of core's [P] defaults (``GET/PATCH /api/v1/settings``): the
dispute windows and the stalled-record limits, each refused value a 422 naming the field
with nothing changed, If-Match once settings exist, admins only, invisible to others."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import select

from servq.core.models import AuditEvent

from tests.test_disputes import file, shop  # noqa: F401  (fixture)
from tests.test_stalled import app_config, local, new_job, scan, stalls, tenant  # noqa: F401  (fixtures)
from tests.gated_plugin import KIND

URL = "/api/v1/settings"


def patch(client, body, etag=None):
    headers = {"If-Match": etag} if etag else {}
    return client.patch(URL, json=body, headers=headers)


@pytest.mark.cross_tenant("GET /api/v1/settings", "PATCH /api/v1/settings")
def test_defaults_then_a_tenant_changes_and_restores_a_window(acme, globex):
    r = acme.api.get(URL)
    assert r.status_code == 200, r.json
    assert r.json["own"] == {} and r.json["version"] == 0
    assert r.json["effective"]["disputes"]["windows"] == {
        "file": "3 working days", "decide": "3 working days", "appeal": "2 working days",
        "decide_appeal": "3 working days"}
    assert r.json["effective"] == r.json["defaults"]
    r = patch(acme.api, {"disputes": {"windows": {"file": "5 working days", "appeal": "4个工作日"}}})
    assert r.status_code == 200, r.json
    assert r.json["own"] == {"disputes": {"windows": {"file": "5 working days", "appeal": "4个工作日"}}}
    assert r.json["effective"]["disputes"]["windows"]["file"] == "5 working days"
    assert r.json["effective"]["disputes"]["windows"]["decide"] == "3 working days"
    etag = r.headers["ETag"]
    assert acme.api.get(URL).headers["ETag"] == etag
    # Once settings exist: If-Match, current.
    assert patch(acme.api, {"disputes": {"windows": {"file": None}}}).status_code == 428
    assert patch(acme.api, {"disputes": {"windows": {"file": None}}}, etag='"stale"').status_code == 412
    r = patch(acme.api, {"disputes": {"windows": {"file": None}}}, etag)
    assert r.status_code == 200, r.json
    assert r.json["own"] == {"disputes": {"windows": {"appeal": "4个工作日"}}} and r.json["version"] == 2
    assert r.json["effective"]["disputes"]["windows"]["file"] == "3 working days"
    # Another tenant sees its own (none) and changes only its own; a member who is not an
    # admin may read, not write.
    assert globex.api.get(URL).json["own"] == {}
    assert patch(globex.api, {"disputes": {"windows": {"decide": "1h"}}}).status_code == 200
    assert acme.api.get(URL).json["own"] == {"disputes": {"windows": {"appeal": "4个工作日"}}}
    assert acme.as_role("manager").get(URL).status_code == 200
    assert patch(acme.as_role("manager"), {"disputes": {"windows": {"file": "1h"}}},
                 r.headers["ETag"]).status_code == 403
    with acme.session() as session:  # each change audited, with the document before and after
        changes = session.scalars(select(AuditEvent.changes).where(AuditEvent.entity == "tenant_settings")
                                  .order_by(AuditEvent.at)).all()
    assert [change["document"][1]["disputes"]["windows"] for change in changes] == [
        {"file": "5 working days", "appeal": "4个工作日"}, {"appeal": "4个工作日"}]


def test_bad_values_are_refused_naming_the_field_and_change_nothing(acme):
    etag = acme.api.get(URL).headers["ETag"]
    for body, field in (({"disputes": {"windows": {"appeal": "soon"}}}, ("disputes", "windows", "appeal")),
                        ({"disputes": {"windows": {"sleep": "3h"}}}, ("disputes", "windows", "sleep")),
                        ({"disputes": {"timeout": "3h"}}, ("disputes", "timeout")),
                        ({"colour": "blue"}, ("colour",)),
                        ({"stalled_after": {"nope.kind": "4h"}}, ("stalled_after", "nope.kind")),
                        ({"stalled_after": {"observation": "4h"}}, ("stalled_after", "observation"))):
        r = patch(acme.api, body, etag)
        assert r.status_code == 422, (body, r.json)
        errors = r.json["errors"]["json"]
        for key in field:
            errors = errors[key]
        assert errors, body
    assert patch(acme.api, ["not", "an", "object"], etag).status_code == 422
    assert acme.api.get(URL).json["version"] == 0


def test_the_tenant_dispute_window_decides_a_late_dispute(acme, shop):  # noqa: F811
    # Default: 3 working days after the record was entered (Monday 2 March): closed on Friday 6.
    with time_machine.travel(datetime(2026, 3, 6, 2, 0, tzinfo=timezone.utc), tick=False):
        assert file(shop["agent"], shop["record"]["id"]).status_code == 422
        r = patch(acme.api, {"disputes": {"windows": {"file": "10 working days"}}})
        assert r.status_code == 200, r.json
        r = file(shop["agent"], shop["record"]["id"])
        assert r.status_code == 201, r.json
    with time_machine.travel(datetime(2026, 3, 6, 3, 0, tzinfo=timezone.utc), tick=False):
        etag = acme.api.get(URL).headers["ETag"]
        assert patch(acme.api, {"disputes": {"windows": {"file": "1h"}}}, etag).status_code == 200
        r = file(acme.api, shop["theirs"]["id"])  # an owner files on the staff member's behalf
        assert r.status_code == 422 and "(1h after the record was entered)" in r.json["message"], r.json


def test_the_tenant_stall_limit_replaces_the_kind_s_for_a_state(app, tenant):  # noqa: F811
    r = tenant.api.get(URL)
    assert r.json["defaults"]["stalled_after"][KIND]["open"] == "4h"
    r = patch(tenant.api, {"stalled_after": {KIND: {"open": "30m", "closed": "1h"}}})
    assert r.status_code == 422 and "final state" in str(r.json["errors"]["json"]["stalled_after"][KIND]["closed"])
    r = patch(tenant.api, {"stalled_after": {KIND: {"open": "30m"}}})
    assert r.status_code == 200, r.json
    assert r.json["effective"]["stalled_after"][KIND] == {"open": "30m", "working": "1 working day", "review": "4h"}
    t0 = local(2026, 3, 2, 10)  # Monday
    job = new_job(tenant, t0)
    assert scan(app, tenant, t0 + timedelta(minutes=29))["stalled"] == 0
    assert scan(app, tenant, t0 + timedelta(minutes=31))["stalled"] == 1
    [note] = stalls(tenant)
    assert note["data"]["record_id"] == job["id"] and note["data"]["stalled_after"] == "30m"


def test_a_manifest_sets_the_settings_and_a_bad_one_names_the_field(app, tmp_path):
    from click.testing import CliRunner

    from servq.cli import make_cli

    base = ('slug = "hotelx"\nname = "Hotel X"\ntimezone = "Asia/Shanghai"\n'
            '[[admins]]\nemail = "owner@hotelx.test"\nrole = "owner"\n')
    path = tmp_path / "hotelx.toml"
    cli = make_cli(app_factory=lambda: app)
    path.write_text(base + '[settings.disputes.windows]\nappeal = "soon"\n')
    result = CliRunner().invoke(cli, ["tenants", "onboard", str(path)])
    assert result.exit_code == 1 and "settings.disputes.windows.appeal" in result.stderr, result.output
    path.write_text(base + '[settings.disputes.windows]\nappeal = "5 working days"\n')
    result = CliRunner().invoke(cli, ["tenants", "onboard", str(path)])
    assert result.exit_code == 0, result.output
    from servq.core.db.session import new_session
    from servq.core.models import Tenant, TenantSettings
    from servq.core.settings import dispute_window

    with new_session(app) as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "hotelx"))
    with new_session(app, tenant_id) as session:
        assert session.scalar(select(TenantSettings.document)) == {"disputes": {"windows": {"appeal": "5 working days"}}}
        assert dispute_window(session, "appeal") == "5 working days" and dispute_window(session, "file") == "3 working days"
