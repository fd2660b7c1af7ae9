"""The ``servq`` command, driven with click's runner against the test database."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from servq import cli
from servq.core import create_app
from servq.core.db.session import new_session
from servq.core.models import Record, Site, Tenant, Token, User
from servq.tenants.onboarding import DEMO_PASSWORD
from tests.test_onboarding import MANIFEST, QaPlugin


@pytest.fixture
def qa_plugin(app_config):
    plugin = QaPlugin()
    app_config["EXTRA_PLUGINS"] = [("qa", plugin)]
    return plugin


@pytest.fixture
def servq(qa_plugin, app):
    """``servq(*args, input=None)``: run the command line against the test app."""

    def run(*args, input=None):
        return CliRunner().invoke(cli.make_cli(app_factory=lambda: app), list(args), input=input)

    return run


@pytest.fixture
def manifest_file(tmp_path):
    path = tmp_path / "acme.toml"
    path.write_text(MANIFEST)
    return str(path)


def failed(result, message: str) -> bool:
    """A clean failure: non-zero exit, the message on stderr, no traceback anywhere."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    assert message in result.stderr, result.stderr
    return True


def test_db_upgrade_says_what_it_did(servq):
    result = servq("db", "upgrade")
    assert result.exit_code == 0, result.output
    from servq.core.db.migrate import head_revision
    assert f"already at revision {head_revision()}" in result.stdout


def test_onboard_list_show(servq, manifest_file):
    result = servq("tenants", "onboard", manifest_file)
    assert result.exit_code == 0, result.output
    assert "tenant acme-hotels: created" in result.stdout and "sites: 2 created" in result.stdout
    result = servq("tenants", "onboard", manifest_file, "--json")
    assert json.loads(result.stdout)["status"] == "unchanged"

    result = servq("tenants", "list")
    assert result.exit_code == 0 and "acme-hotels" in result.stdout
    listed = json.loads(servq("tenants", "list", "--json").stdout)
    assert [t["slug"] for t in listed] == ["acme-hotels"]

    result = servq("tenants", "show", "acme-hotels")
    assert result.exit_code == 0, result.output
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert {k: lines[k].strip() for k in ("members", "sites", "staff", "records", "enabled plugins")} == {
        "members": "2", "sites": "2", "staff": "2", "records": "0", "enabled plugins": "1"}
    assert failed(servq("tenants", "show", "nope"), "error: no tenant with slug 'nope'")


@pytest.mark.parametrize("replace,field", [
    (("Europe/Paris", "Mars/Olympus"), "timezone: Unknown time zone"),
    (('locale = "zh-CN"', 'locale = "zh-CN"\nfoo = 1'), "foo: Unknown field."),
    (('site = "P1"', 'site = "ZZ"'), "staff[0].site: Unknown site code 'ZZ'."),
    (("threshold = 80", 'threshold = "high"'), "plugins.qa.threshold: Not a valid integer."),
    # The first admin's role is checked by the field, not by a crash of the owner rule.
    (('role = "owner"', 'role = "boss"'),
     "admins[0].role: Must be one of: owner, admin, manager, inspector, agent, viewer."),
    (('locale = "zh-CN"', 'locale = "zh-CN"\nfoo = 1'),
     "foo: Unknown field. Allowed: slug, name, industry, timezone, locale, plugins, admins, sites, "
     "staff, calendar, standards, settings."),
    (('code = "L1"', 'code = "L1"\nfloor = 3'), "sites[1].floor: Unknown field. Allowed: code, name, address."),
    (('code = "L1"', 'code = "L 1"'),
     "sites[1].code: Not a valid code (letters, digits, '_', '.' and '-', starting with a letter or digit; "
     "at most 63)."),
    (("[plugins.qa]\nthreshold = 80", 'plugins = ["QA"]'),
     "plugins[0]: Not a plugin id (lower-case letters, digits and '_', starting with a letter)."),
])
def test_onboard_broken_manifest(servq, app, tmp_path, replace, field):
    path = tmp_path / "broken.toml"
    path.write_text(MANIFEST.replace(*replace))
    assert failed(servq("tenants", "onboard", str(path)), field)
    with new_session(app) as s:
        assert s.scalar(select(func.count()).select_from(Tenant)) == 0


def test_onboard_missing_file(servq):
    result = servq("tenants", "onboard", "/nonexistent/x.toml")
    assert result.exit_code == 2 and "No such file" in result.stderr and "Traceback" not in result.output


def test_export_contains_the_tenants_rows(servq, manifest_file, tmp_path):
    servq("tenants", "onboard", manifest_file)
    result = servq("tenants", "export", "acme-hotels")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["tenant"]["slug"] == "acme-hotels"
    assert sorted(s["code"] for s in document["tables"]["sites"]) == ["L1", "P1"]
    assert sorted(u["email"] for u in document["users"]) == ["boss@acme.test", "eve@acme.test"]
    out = tmp_path / "export.json"
    result = servq("tenants", "export", "acme-hotels", "-o", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    assert json.loads(out.read_bytes())["tables"]["staff"]
    assert failed(servq("tenants", "export", "nope"), "no tenant with slug 'nope'")


def test_delete_needs_yes(servq, manifest_file, app):
    servq("tenants", "onboard", manifest_file)
    assert failed(servq("tenants", "delete", "acme-hotels"), "repeat with --yes")
    with new_session(app) as s:
        assert s.scalar(select(func.count()).select_from(Tenant)) == 1
    result = servq("tenants", "delete", "acme-hotels", "--yes")
    assert result.exit_code == 0, result.output
    assert "deleted tenant acme-hotels" in result.stdout and "2 sites" in result.stdout
    with new_session(app) as s:
        assert s.scalar(select(func.count()).select_from(Tenant)) == 0
    assert failed(servq("tenants", "delete", "acme-hotels", "--yes"), "no tenant with slug")


def test_users_add_and_token_create(servq, manifest_file, client, app):
    servq("tenants", "onboard", manifest_file)
    result = servq("users", "add", "--tenant", "acme-hotels", "--email", "New@Acme.test",
                   "--role", "agent", "--name", "Nina", "--password-stdin", input="s3cret-pass\n")
    assert result.exit_code == 0, result.output
    assert "new user" in result.stdout
    r = client.post("/api/v1/auth/token", json={"tenant": "acme-hotels", "email": "new@acme.test",
                                                "password": "s3cret-pass"})
    assert r.status_code == 201 and r.json["role"] == "agent"

    result = servq("tokens", "create", "--tenant", "acme-hotels", "--email", "new@acme.test",
                   "--expires-in", "12h")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and token.startswith("sq_")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json["email"] == "new@acme.test"
    with new_session(app) as s:
        tenant = s.scalar(select(Tenant))
        s.set_tenant(tenant.id)
        row = s.scalar(select(Token).where(Token.label == "servq tokens create"))
        assert timedelta(hours=11, minutes=59) < row.expires_at - row.created_at <= timedelta(hours=12)

    # A role change revokes the member's tokens.
    result = servq("users", "add", "--tenant", "acme-hotels", "--email", "new@acme.test", "--role", "viewer")
    assert result.exit_code == 0 and "role changed" in result.stdout
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_users_add_failures(servq, manifest_file, app):
    servq("tenants", "onboard", manifest_file)
    base = ("users", "add", "--tenant", "acme-hotels", "--email", "x@acme.test")
    assert failed(servq(*base, "--role", "agent", "--password-stdin", input="short\n"), "at least 8")
    assert failed(servq("users", "add", "--tenant", "nope", "--email", "x@a.test", "--role", "agent"),
                  "no tenant with slug 'nope'")
    result = servq(*base, "--role", "emperor")
    assert result.exit_code == 2 and "emperor" in result.stderr
    assert failed(servq("users", "add", "--tenant", "acme-hotels", "--email", "nope", "--role", "agent"),
                  "not a valid email")
    with new_session(app) as s:
        assert s.scalar(select(func.count()).where(User.email == "x@acme.test")) == 0


def test_tokens_create_failures(servq, manifest_file):
    servq("tenants", "onboard", manifest_file)
    args = ("tokens", "create", "--tenant", "acme-hotels")
    assert failed(servq(*args, "--email", "boss@acme.test", "--expires-in", "soon"), "invalid duration 'soon'")
    assert failed(servq(*args, "--email", "ghost@acme.test"), "no active user")
    assert failed(servq("tokens", "create", "--tenant", "nope", "--email", "boss@acme.test"), "no tenant")


@pytest.mark.parametrize("text,expected", [
    ("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90)),
    ("45s", timedelta(seconds=45)),
])
def test_parse_duration(text, expected):
    assert cli.parse_duration(text) == expected


def test_plugins_list_and_plugin_commands(servq, manifest_file):
    result = servq("plugins", "list")
    assert result.exit_code == 0 and "qa" in result.stdout
    assert "Quality audits" in result.stdout
    servq("tenants", "onboard", manifest_file)
    result = servq("plugins", "list", "--tenant", "acme-hotels")
    assert result.exit_code == 0 and "enabled" in result.stdout
    result = servq("qa", "hello", "world")
    assert result.exit_code == 0 and result.stdout == "hello world\n"
    assert "qa" in servq("--help").stdout
    assert failed(servq("qa", "boom"), "error: unexpected RuntimeError: boom")
    assert failed(servq("plugins", "list", "--tenant", "nope"), "no tenant")


def test_worker_needs_redis(app_config):
    app_config["REDIS_URL"] = None
    app = create_app(app_config)
    result = CliRunner().invoke(cli.make_cli(app_factory=lambda: app), ["worker"])
    assert failed(result, "error: REDIS_URL is not set")
    app.extensions["servq.engine"].dispose()


def test_app_that_cannot_be_created(qa_plugin):
    def broken():
        raise RuntimeError("DATABASE_URL is nonsense")

    result = CliRunner().invoke(cli.make_cli(app_factory=broken), ["tenants", "list"])
    assert failed(result, "error: cannot create the app: DATABASE_URL is nonsense")


def test_serve_demo_onboards_prints_logins_then_serves(servq, app, client, monkeypatch):
    from gunicorn.app.base import BaseApplication

    served = []
    monkeypatch.setattr(BaseApplication, "run", lambda self: served.append(
        (self.cfg.bind, self.cfg.workers, self.load() is app)))
    result = servq("serve", "--demo", "--host", "127.0.0.1", "--port", "8123", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert served == [(["127.0.0.1:8123"], 2, True)]
    out = result.stdout
    # A table of every demo tenant, the richest first, then the docs address.
    lines = out.splitlines()
    assert lines[0].split() == ["tenant", "industry", "records", "login", "token"]
    assert set(lines[1]) <= {"-", " "}
    rows = [line.split() for line in lines[2:] if line.split() and line.split()[0].endswith("demo")]
    assert {row[0]: row[1] for row in rows} == {
        "aftersales-demo": "aftersales", "courier-demo": "courier", "hotel-demo": "hotel",
        "property-demo": "property", "demo": "general"}
    records = [int(row[2]) for row in rows]
    assert records == sorted(records, reverse=True) and records[-1] >= 0
    with new_session(app) as s:
        for row in rows:
            tenant = s.scalar(select(Tenant).where(Tenant.slug == row[0]))
            s.set_tenant(tenant.id)
            assert s.scalar(select(func.count()).select_from(Record)) == int(row[2])
    general = next(row for row in rows if row[0] == "demo")
    assert general[3:6] == ["owner@demo.servq.test", "/", DEMO_PASSWORD]
    assert "docs:  http://127.0.0.1:8123/api/v1/docs" in out
    for row in rows:
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {row[-1]}"})
        assert me.status_code == 200 and me.json["tenant"]["slug"] == row[0]
    with new_session(app) as s:
        demo = s.scalar(select(Tenant).where(Tenant.slug == "demo"))
        s.set_tenant(demo.id)
        assert s.scalar(select(func.count()).select_from(Site)) == 2


def test_serve_upgrades_a_fresh_embedded_database(app_config, tmp_path, monkeypatch):
    """Plain ``servq serve`` on a new SQLite file migrates it before serving; on a shared
    database it refuses until an operator runs ``servq db upgrade``."""
    from gunicorn.app.base import BaseApplication

    from servq.core.db.migrate import head_revision, current_revision

    monkeypatch.setattr(BaseApplication, "run", lambda self: None)
    if app_config["DATABASE_URL"].startswith("sqlite"):
        app_config["DATABASE_URL"] = f"sqlite:///{tmp_path / 'fresh.db'}"
        app = create_app(app_config)
        result = CliRunner().invoke(cli.make_cli(app_factory=lambda: app), ["serve", "--workers", "1"])
        assert result.exit_code == 0, result.output
        assert "upgraded the embedded SQLite database" in result.stderr
        assert current_revision(app.extensions["servq.engine"]) == head_revision()
    else:
        app = create_app(app_config)
        monkeypatch.setattr("servq.core.db.migrate.is_current", lambda engine: False)
        result = CliRunner().invoke(cli.make_cli(app_factory=lambda: app), ["serve", "--workers", "1"])
        assert failed(result, "run `servq db upgrade` first")
    app.extensions["servq.engine"].dispose()


def test_an_unsupported_database_is_a_clean_error(app_config):
    config = {**app_config, "DATABASE_URL": "mysql://servq@127.0.0.1/servq"}
    result = CliRunner().invoke(cli.make_cli(app_factory=lambda: create_app(config)),
                                ["db", "upgrade"])
    assert failed(result, "servq runs on SQLite or PostgreSQL")
