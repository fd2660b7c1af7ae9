"""Tenant manifests and onboarding: validation, idempotence, all-or-nothing, the demo."""

from __future__ import annotations

import click
import pytest
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from servq.core.db.session import new_session
from servq.core.models import AuditEvent, Membership, Site, Staff, Tenant, TenantPlugin, User
from servq.core.plugins import hookimpl
from servq.tenants.manifest import ManifestError, parse_manifest, validate_manifest
from servq.tenants.onboarding import DEMO_PASSWORD, example_manifests, onboard, setup_demo


class QaConfig(Schema):
    threshold = fields.Integer(required=True, validate=validate.Range(min=0, max=100))


class QaPlugin:
    """Quality audits: a plugin with a configuration, an onboarding hook, demo data and a
    command, loaded into the test app."""

    def __init__(self):
        self.onboarded: list[tuple[str, dict]] = []

    @hookimpl
    def register_config_schema(self):
        return QaConfig

    @hookimpl
    def tenant_onboarded(self, session, tenant, manifest):
        self.onboarded.append((tenant.slug, manifest["plugins"].get("qa")))

    @hookimpl
    def register_demo_data(self):
        def load(session, tenant):
            session.add(Site(code="QA-DEMO", name="Demo audit site"))
        return [load]

    @hookimpl
    def register_commands(self):
        @click.command("hello")
        @click.argument("name")
        def hello(name):
            """Say hello."""
            click.echo(f"hello {name}")

        @click.command("boom")
        def boom():
            """Fail unexpectedly."""
            raise RuntimeError("boom")

        return [hello, boom]


@pytest.fixture
def qa_plugin(app_config):
    plugin = QaPlugin()
    app_config["EXTRA_PLUGINS"] = [("qa", plugin)]
    return plugin


MANIFEST = """
slug = "acme-hotels"
name = "Acme Hotels"
industry = "general"
timezone = "Europe/Paris"
locale = "zh-CN"

[plugins.qa]
threshold = 80

[[admins]]
email = "Boss@Acme.test"
role = "owner"

[[admins]]
email = "eve@acme.test"
role = "inspector"
name = "Eve"

[[sites]]
code = "P1"
name = "Paris"

[[sites]]
code = "L1"
name = "Lyon"
address = "1 rue X"

[[staff]]
code = "E1"
name = "Eve"
site = "P1"
email = "eve@acme.test"

[[staff]]
code = "E2"
name = "Max"
"""


def snapshot(app, slug: str) -> dict:
    """Ids of every row the tenant owns, by table, plus its audit event count."""
    with new_session(app) as s:
        tenant = s.scalar(select(Tenant).where(Tenant.slug == slug))
        if tenant is None:
            return {}
        s.set_tenant(tenant.id)
        out = {model.__tablename__: sorted(str(i) for i in s.scalars(select(model.id)))
               for model in (Membership, Site, Staff, TenantPlugin)}
        out["audit"] = s.scalar(select(func.count()).select_from(AuditEvent))
        out["users"] = s.scalar(select(func.count()).select_from(User))
        out["tenant"] = (str(tenant.id), tenant.name, tenant.timezone, tenant.locale)
        return out


def test_onboard_creates_everything(qa_plugin, app):
    report = onboard(app, parse_manifest(MANIFEST))
    assert report.tenant_created and report.changed
    counts = report.as_dict()["counts"]
    assert counts["users"]["created"] == 2 and counts["memberships"]["created"] == 2
    assert counts["sites"]["created"] == 2 and counts["staff"]["created"] == 2
    assert counts["plugins"]["created"] == 1
    with new_session(app, report.tenant_id) as s:
        tenant = s.get(Tenant, report.tenant_id)
        assert (tenant.timezone, tenant.locale) == ("Europe/Paris", "zh-CN")
        eve = s.scalar(select(User).where(User.email == "eve@acme.test"))
        staff = {m.code: m for m in s.scalars(select(Staff))}
        sites = {m.code: m for m in s.scalars(select(Site))}
        assert staff["E1"].user_id == eve.id and staff["E1"].site_id == sites["P1"].id
        assert staff["E2"].site_id is None
        assert sites["L1"].address == "1 rue X"
        roles = {m.user_id: m.role for m in s.scalars(select(Membership))}
        boss = s.scalar(select(User).where(User.email == "boss@acme.test"))
        assert roles == {boss.id: "owner", eve.id: "inspector"}
        plugin = s.scalar(select(TenantPlugin))
        assert (plugin.plugin_id, plugin.active, plugin.configuration) == ("qa", True, {"threshold": 80})
    assert qa_plugin.onboarded == [("acme-hotels", {"threshold": 80})]


def test_onboarding_twice_changes_nothing(qa_plugin, app):
    manifest = parse_manifest(MANIFEST)
    onboard(app, manifest)
    before = snapshot(app, "acme-hotels")
    report = onboard(app, manifest)
    assert not report.changed and not report.tenant_created
    assert report.as_dict()["status"] == "unchanged"
    counts = report.as_dict()["counts"]
    assert all(c["created"] == 0 and c["updated"] == 0 for c in counts.values())
    assert counts["staff"]["unchanged"] == 2 and counts["plugins"]["unchanged"] == 1
    assert snapshot(app, "acme-hotels") == before
    assert "unchanged" in report.summary().splitlines()[0]
    # The hook runs on every onboarding (it must be idempotent itself).
    assert len(qa_plugin.onboarded) == 2


def test_onboarding_updates_what_changed(qa_plugin, app):
    onboard(app, parse_manifest(MANIFEST))
    changed = MANIFEST.replace('name = "Lyon"', 'name = "Lyon Part-Dieu"').replace(
        "threshold = 80", "threshold = 90").replace('role = "inspector"', 'role = "manager"')
    report = onboard(app, parse_manifest(changed))
    counts = report.as_dict()["counts"]
    assert counts["sites"] == {"created": 0, "updated": 1, "unchanged": 1}
    assert counts["plugins"]["updated"] == 1 and counts["memberships"]["updated"] == 1
    with new_session(app, report.tenant_id) as s:
        assert s.scalar(select(Site.name).where(Site.code == "L1")) == "Lyon Part-Dieu"
        assert s.scalar(select(TenantPlugin.configuration)) == {"threshold": 90}
        audited = s.scalars(select(AuditEvent).where(AuditEvent.entity == "sites",
                                                      AuditEvent.action == "changed")).all()
        assert [a.changes for a in audited] == [{"name": ["Lyon", "Lyon Part-Dieu"]}]


BROKEN = {
    "bad timezone": (MANIFEST.replace("Europe/Paris", "Europe/Atlantis"), "timezone: Unknown time zone"),
    "unknown key": (MANIFEST.replace('locale = "zh-CN"', 'locale = "zh-CN"\ncolour = "red"'),
                    "colour: Unknown field."),
    "unknown key in a site": (MANIFEST.replace('code = "L1"', 'code = "L1"\nfloor = 3'),
                              "sites[1].floor: Unknown field."),
    "missing site code": (MANIFEST.replace('code = "L1"\n', ""),
                          "sites[1].code: Missing data for required field."),
    "staff site unknown": (MANIFEST.replace('site = "P1"', 'site = "NOPE"'),
                           "staff[0].site: Unknown site code 'NOPE'."),
    "staff email unknown": (MANIFEST.replace('email = "eve@acme.test"\n\n[[staff]]',
                                             'email = "ghost@acme.test"\n\n[[staff]]'),
                            "staff[0].email: No user"),
    "invalid plugin config": (MANIFEST.replace("threshold = 80", "threshold = 500"),
                              "plugins.qa.threshold: Must be greater than or equal to 0"),
    "plugin config unknown field": (MANIFEST.replace("threshold = 80", "threshold = 8\nspeed = 1"),
                                    "plugins.qa.speed: Unknown field."),
    "unknown plugin": (MANIFEST.replace("[plugins.qa]", "[plugins.nosuch]\n[plugins.qa]"),
                       "plugins.nosuch: No plugin 'nosuch' is installed."),
    "bad slug": (MANIFEST.replace("acme-hotels", "Acme Hotels"), "slug: Lowercase"),
    "bad role": (MANIFEST.replace('role = "inspector"', 'role = "king"'), "admins[1].role: Must be one of"),
    "duplicate site": (MANIFEST.replace('code = "L1"', 'code = "P1"'), "sites[1].code: Duplicate code"),
    "no owner": (MANIFEST.replace('role = "owner"', 'role = "admin"'), "admins: At least one admin"),
    "not toml": ("slug = ", "manifest: Not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_manifest_names_the_field_and_writes_nothing(qa_plugin, app, case):
    text, expected = BROKEN[case]
    with pytest.raises(ManifestError) as info:
        onboard(app, parse_manifest(text))
    assert any(line.startswith(expected) or expected in line for line in info.value.errors), info.value.errors
    assert snapshot(app, "acme-hotels") == {}
    with new_session(app) as s:
        assert s.scalar(select(func.count()).select_from(Tenant)) == 0
        assert s.scalar(select(func.count()).select_from(User)) == 0


def test_failed_update_rolls_back_everything(qa_plugin, app):
    onboard(app, parse_manifest(MANIFEST))
    before = snapshot(app, "acme-hotels")
    broken = MANIFEST.replace('name = "Lyon"', 'name = "Lyon 2"') + (
        '\n[[sites]]\ncode = "N1"\nname = "Nice"\n\n[[staff]]\ncode = "E3"\nname = "Zoe"\nsite = "XX"\n')
    with pytest.raises(ManifestError, match=r"staff\[2\]\.site"):
        onboard(app, parse_manifest(broken))
    assert snapshot(app, "acme-hotels") == before


def test_staff_site_may_be_an_existing_site(qa_plugin, app):
    onboard(app, parse_manifest(MANIFEST))
    second = {"slug": "acme-hotels", "name": "Acme Hotels", "timezone": "Europe/Paris",
              "locale": "zh-CN", "staff": [{"code": "E9", "name": "Ann", "site": "L1"}]}
    report = onboard(app, second)
    assert report.as_dict()["counts"]["staff"]["created"] == 1


def test_plugins_as_a_list(qa_plugin, app):
    loaded = validate_manifest({"slug": "x", "name": "X", "plugins": ["qa"],
                                "admins": [{"email": "o@x.test", "role": "owner"}]})
    assert loaded["plugins"] == {"qa": {}}
    # qa requires a threshold: an empty configuration is refused, naming the field.
    with pytest.raises(ManifestError, match=r"plugins\.qa\.threshold: Missing data"):
        onboard(app, loaded)
    with pytest.raises(ManifestError, match=r"plugins\[1\]: Plugin 'qa' is listed twice"):
        validate_manifest({"slug": "x", "name": "X", "plugins": ["qa", "qa"]})


def test_shipped_examples_onboard_cleanly(app):
    examples = dict(example_manifests())
    assert "demo.toml" in examples
    demo = examples["demo.toml"]
    assert (demo["industry"], demo["timezone"]) == ("general", "Asia/Shanghai")
    assert len(demo["sites"]) == 2 and {a["role"] for a in demo["admins"]} >= {"owner", "inspector"}
    for _name, manifest in examples.items():
        assert onboard(app, manifest).tenant_created
        assert not onboard(app, manifest).changed


def test_demo_data_loaded_once_for_enabled_plugins(qa_plugin, app):
    manifest = parse_manifest(MANIFEST)
    report = onboard(app, manifest, demo=True)
    assert report.demo_loaded
    onboard(app, manifest, demo=True)
    with new_session(app, report.tenant_id) as s:
        assert s.scalar(select(func.count()).where(Site.code == "QA-DEMO")) == 1
    other = parse_manifest(MANIFEST.replace("acme-hotels", "plain").replace("[plugins.qa]\nthreshold = 80", ""))
    report = onboard(app, other, demo=True)
    with new_session(app, report.tenant_id) as s:
        assert s.scalar(select(func.count()).where(Site.code == "QA-DEMO")) == 0


def test_setup_demo_gives_working_logins(app, client):
    logins = setup_demo(app)
    # One demo tenant per example manifest (tenants/examples/*.toml).
    assert [login.slug for login in logins] == ["aftersales-demo", "courier-demo", "demo", "hotel-demo",
                                                "property-demo"]
    login = next(login for login in logins if login.slug == "demo")
    assert login.password == DEMO_PASSWORD
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {login.token}"})
    assert me.status_code == 200 and me.json["tenant"]["slug"] == "demo" and me.json["role"] == "owner"
    r = client.post("/api/v1/auth/token", json={"tenant": "demo", "email": login.email,
                                                "password": DEMO_PASSWORD})
    assert r.status_code == 201, r.json
    # A second start onboards nothing new and still prints a login.
    again = setup_demo(app)
    assert all(not run.report.changed and run.password == DEMO_PASSWORD for run in again)
