"""The plugin contract: every hook documented and driven through the public interface,
plus loading (misspelt hooks, duplicate kinds, entry points, one manager per app)."""

from __future__ import annotations

import inspect
import logging
import tomllib
import re
import textwrap
import types
import uuid
from pathlib import Path

import pluggy
import pytest
from click.testing import CliRunner
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import func, select

import tests.sample_plugin as sample
from servq.core import create_app
from servq.core.db import utcnow
from servq import cli
from servq.core.models import Record, Tenant, TenantPlugin
from servq.core.plugins import RecordKind, hookimpl
from servq.core.plugins import hookspecs
from servq.core.plugins.manager import PluginError
from servq.core.plugins.app import get_plugins

ROOT = Path(__file__).resolve().parents[1]
SPEC_NAMES = sorted(
    name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(fn, "servq_spec")
)


# Every test here runs with tests/sample_plugin.py loaded as ``sample`` (conftest.py).
pytestmark = pytest.mark.sample_plugin


def _other_app(app_config, **changes):
    """A second app on the same database (dispose its engine when done)."""
    return create_app({**app_config, **changes})


def _names(payload) -> list[str]:
    items = payload["items"] if isinstance(payload, dict) and "items" in payload else payload
    return [item["name"] if isinstance(item, dict) else item for item in items]


def _run_jobs(app) -> None:
    """With Redis, run what was queued (inline mode ran it already)."""
    if app.extensions["servq.queue"] is not None:
        from servq.core.jobs import make_worker

        make_worker(app).work(burst=True)


# -- (a) the contract is complete -------------------------------------------------------


def contract_problems(names) -> list[str]:
    """What is missing for each hook name: docstring, guide section, test, sample impl."""
    guide = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    test_text = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("*.py"))
    problems = []
    for name in names:
        doc = inspect.getdoc(getattr(hookspecs, name, None)) or ""
        if len(doc.split()) < 10:
            problems.append(f"{name}: the hook specification has no real docstring")
        if not re.search(rf"^### {re.escape(name)}\s*$", guide, re.MULTILINE):
            problems.append(f"{name}: no '### {name}' section in docs/plugins.md")
        if not re.search(rf"^def test_hook_{re.escape(name)}\b", test_text, re.MULTILINE):
            problems.append(f"{name}: no test function 'test_hook_{name}' under tests/")
        if not hasattr(getattr(sample, name, None), "servq_impl"):
            problems.append(f"{name}: tests/sample_plugin.py does not implement it")
    return problems


def test_every_hook_is_documented_and_tested():
    assert len(SPEC_NAMES) >= 9, SPEC_NAMES
    problems = contract_problems(SPEC_NAMES)
    assert not problems, "\n".join(problems)
    # The check itself bites: an undocumented, untested hook is reported four times.
    assert len(contract_problems(["register_nothing_yet"])) == 4


# -- (b) one test per hook ----------------------------------------------------------------


def test_hook_register_record_kinds(app, acme, globex):
    kind = get_plugins(app).kinds["sample.note"]
    assert kind.plugin == "sample" and kind.initial_status == "open"
    acme.enable("sample")

    assert "sample.note" in _names(acme.api.get("/api/v1/kinds").json)
    kinds = _names(globex.api.get("/api/v1/kinds").json)
    assert "observation" in kinds and "sample.note" not in kinds

    body = {"kind": "sample.note", "occurred_at": "2026-01-05T09:00:00+08:00",
            "data": {"text": "Lobby floor wet"}}
    r = acme.api.post("/api/v1/records", json=body)
    assert r.status_code == 201, r.json
    assert r.json["kind"] == "sample.note" and r.json["status"] == "open"
    assert r.json["data"] == {"text": "Lobby floor wet", "priority": 3, "reviewed": False}
    # The kind's schema validates data.
    bad = acme.api.post("/api/v1/records", json={**body, "data": {"text": "x", "priority": 9}})
    assert bad.status_code == 422
    # A tenant without the plugin cannot use its kind, and nothing is stored.
    r = globex.api.post("/api/v1/records", json=body)
    assert r.status_code == 422 and "kind" in r.json["errors"]["json"], r.json
    with globex.session() as s:
        assert s.scalars(select(Record)).all() == []


@pytest.mark.cross_tenant("GET /api/v1/sample/summary")
def test_hook_register_blueprints(app, app_config, acme, globex):
    acme.enable("sample", {"greeting": "hi"})
    r = acme.api.get("/api/v1/sample/summary")
    assert r.status_code == 200, r.json
    assert r.json == {"tenant": "acme", "notes": 0, "greeting": "hi"}
    # Not enabled, or enabled then switched off: 404, like something that does not exist.
    assert globex.api.get("/api/v1/sample/summary").status_code == 404
    with globex.session() as s:
        s.add(TenantPlugin(plugin_id="sample", active=False, configuration={}))
        s.commit()
    assert globex.api.get("/api/v1/sample/summary").status_code == 404
    assert app.test_client().get("/api/v1/sample/summary").status_code == 401

    spec = app.test_client().get("/api/v1/openapi.json").json
    assert spec["paths"]["/api/v1/sample/summary"]["get"]["tags"] == ["sample"]
    assert "sample" in [t["name"] for t in spec["tags"]]

    misnamed = types.ModuleType("misnamed_plugin")
    misnamed.register_blueprints = hookimpl(lambda: [Blueprint("other", __name__)])
    with pytest.raises(RuntimeError, match="named after the plugin"):
        create_app({**app_config, "EXTRA_PLUGINS": [("misnamed", misnamed)]})


def test_hook_register_commands(app_config):
    from servq import cli
    apps = []

    def factory():
        apps.append(create_app(app_config))
        return apps[-1]

    try:
        result = CliRunner().invoke(cli.make_cli(app_factory=factory),
                                    ["sample", "hello", "--name", "Ada"])
        assert result.exit_code == 0, result.output
        assert "sample says hello, Ada" in result.output
        assert sample.calls("hello") == [("hello", None, {"name": "Ada"})]
        help_text = CliRunner().invoke(cli.make_cli(app_factory=factory), ["sample", "--help"])
        assert "hello" in help_text.output
    finally:
        for made in apps:
            made.extensions["servq.engine"].dispose()


def test_hook_register_jobs(app, acme):
    from servq.core.jobs import UnknownJob, enqueue

    assert "sample.mark_reviewed" in get_plugins(app).jobs
    with app.app_context():
        s = acme.session()
        note = Record(kind="sample.note", occurred_at=utcnow(), data={"text": "n", "reviewed": False})
        s.add(note)
        s.commit()
        note_id = str(note.id)

        job_id = enqueue(s, sample.mark_reviewed, acme.id, note_id)
        assert job_id and sample.calls("mark_reviewed") == []  # not before the commit
        s.commit()
        _run_jobs(app)
        assert sample.calls("mark_reviewed") == [("mark_reviewed", acme.id, {"record_id": note_id})]

        # Rolled back: the job never runs.
        s.add(Record(kind="sample.note", occurred_at=utcnow(), data={"text": "gone"}))
        s.flush()
        enqueue(s, "sample.mark_reviewed", acme.id, note_id)
        s.rollback()
        s.commit()
        _run_jobs(app)
        assert len(sample.calls("mark_reviewed")) == 1

        with pytest.raises(UnknownJob):
            enqueue(s, sample.unregistered_job, acme.id)
        s.commit()
        _run_jobs(app)
        assert sample.calls("unregistered_job") == []
        s.close()
    with acme.session() as s:
        assert s.get(Record, (acme.id, uuid.UUID(note_id))).data["reviewed"] is True


def _manifest(slug: str, plugins=None) -> dict:
    return {"slug": slug, "name": slug.title(), "timezone": "Asia/Shanghai",
            "admins": [{"email": f"owner@{slug}.test", "role": "owner"}],
            "plugins": {"sample": {"greeting": "ni hao"}} if plugins is None else plugins}


def _onboard(app, manifest, demo):
    from servq.tenants.onboarding import onboard

    return onboard(app, manifest, demo=demo)


def _tenant_id(app, slug):
    from servq.core.db.session import new_session
    from servq.core.models import Tenant

    with new_session(app) as s:
        return s.scalar(select(Tenant.id).where(Tenant.slug == slug))


def test_hook_register_demo_data(app):
    _onboard(app, _manifest("demo-hotel"), demo=True)
    tenant_id = _tenant_id(app, "demo-hotel")
    assert [c[1] for c in sample.calls("load_demo")] == [tenant_id]
    from servq.core.db.session import new_session

    with new_session(app, tenant_id) as s:
        notes = s.scalars(select(Record).where(Record.kind == "sample.note")).all()
        assert [n.data["text"] for n in notes] == ["Welcome to Demo-Hotel"]
    # Without demo=True no loader runs.
    _onboard(app, _manifest("plain"), demo=False)
    assert [c[1] for c in sample.calls("load_demo")] == [tenant_id]


def test_hook_tenant_onboarded(app):
    manifest = _manifest("onboarded")
    _onboard(app, manifest, demo=False)
    tenant_id = _tenant_id(app, "onboarded")
    assert [c[1] for c in sample.calls("tenant_onboarded")] == [tenant_id]
    _onboard(app, manifest, demo=False)  # every run, first or repeated
    assert [c[1] for c in sample.calls("tenant_onboarded")] == [tenant_id, tenant_id]
    # A tenant whose manifest does not enable the plugin is not told.
    _onboard(app, _manifest("without", plugins={}), demo=False)
    assert len(sample.calls("tenant_onboarded")) == 2


def test_hook_register_config_schema(app, acme, globex):
    assert get_plugins(app).call_one("sample", "register_config_schema") is sample.SampleConfig
    r = acme.api.put("/api/v1/plugins/sample", json={"active": True, "configuration": {"max_priority": 9}})
    assert r.status_code == 422, r.json
    assert "max_priority" in str(r.json["errors"])
    r = acme.api.put("/api/v1/plugins/sample", json={"active": True, "configuration": {"nope": 1}})
    assert r.status_code == 422
    assert acme.api.get("/api/v1/sample/summary").status_code == 404  # nothing stored

    r = acme.api.put("/api/v1/plugins/sample", json={"active": True, "configuration": {"greeting": "hi"}})
    assert r.status_code == 200, r.json
    assert r.json["configuration"] == {"greeting": "hi", "max_priority": 5}
    assert acme.api.get("/api/v1/plugins/sample").json["configuration"]["greeting"] == "hi"
    assert acme.api.get("/api/v1/sample/summary").json["greeting"] == "hi"
    assert globex.api.get("/api/v1/sample/summary").status_code == 404


OBSERVATION = {"kind": "observation", "occurred_at": "2026-01-05T09:00:00+08:00",
               "data": {"title": "Dusty shelf"}}


def test_hook_record_created(acme, globex):
    acme.enable("sample")
    mine = acme.api.post("/api/v1/records", json=OBSERVATION)
    assert mine.status_code == 201, mine.json
    assert globex.api.post("/api/v1/records", json=OBSERVATION).status_code == 201
    created = sample.calls("record_created")
    assert [(c[1], str(c[2]["record_id"]), c[2]["kind"]) for c in created] == \
        [(acme.id, mine.json["id"], "observation")]
    assert created[0][2]["actor_id"] is not None


def test_hook_record_changed(acme, globex):
    acme.enable("sample")
    mine = acme.api.post("/api/v1/records", json=OBSERVATION).json
    theirs = globex.api.post("/api/v1/records", json=OBSERVATION).json
    r = acme.api.update(f"/api/v1/records/{mine['id']}", {"status": "closed"})
    assert r.status_code == 200, r.json
    r = globex.api.update(f"/api/v1/records/{theirs['id']}", {"status": "closed"})
    assert r.status_code == 200, r.json
    changed = sample.calls("record_changed")
    assert [(c[1], str(c[2]["record_id"])) for c in changed] == [(acme.id, mine["id"])]
    assert list(changed[0][2]["changes"]["status"]) == ["open", "closed"]


def test_hook_register_event_types(app, app_config, acme, globex):
    # A tenant that has not enabled the plugin neither sees nor subscribes to its types.
    listed = {row["type"] for row in globex.api.get("/api/v1/webhooks/event-types").json}
    assert "clock.breached" in listed and not any(name.startswith("sample.") for name in listed)
    r = globex.api.post("/api/v1/webhooks", json={"url": "https://hooks.example.com/x", "event_types": ["sample.*"]})
    assert r.status_code == 422 and "Unknown event type 'sample.*'" in str(r.json)
    acme.enable("sample")
    listed = {row["type"]: row["description"] for row in acme.api.get("/api/v1/webhooks/event-types").json}
    assert listed["sample.noted"].startswith("A sample note was written")
    assert "clock.breached" in listed  # core's stay
    for patterns in (["sample.noted"], ["sample.*"], ["sample.noted", "clock.*"]):
        r = acme.api.post("/api/v1/webhooks", json={"url": "https://hooks.example.com/x", "event_types": patterns})
        assert r.status_code == 201, r.json
    r = acme.api.post("/api/v1/webhooks", json={"url": "https://hooks.example.com/x", "event_types": ["sample.other"]})
    assert r.status_code == 422 and "Unknown event type 'sample.other'" in str(r.json)
    # A plugin's event types are named after it, once each, with a description.
    bad = [({"other.thing": "x y z"}, "named 'bad.<name>'"), ({"bad.Thing": "x"}, "named 'bad.<name>'"),
           ({"bad.thing": ""}, "without a description"), ({"clock.breached": "again"}, "named 'bad.<name>'")]
    for registered, message in bad:
        plugin = types.SimpleNamespace(register_event_types=hookimpl(lambda registered=registered: registered))
        with pytest.raises(PluginError, match=re.escape(message)):
            create_app({**app_config, "EXTRA_PLUGINS": [("bad", plugin)]})
    twice = types.SimpleNamespace(register_event_types=hookimpl(lambda: [("sample2.x", "One."), ("sample2.x", "Two.")]))
    with pytest.raises(PluginError, match="registered twice"):
        create_app({**app_config, "EXTRA_PLUGINS": [("sample2", twice)]})


def test_hook_register_kpis(app, acme, globex):
    acme.enable("sample")
    period = {"since": "2026-01-01T00:00:00+08:00", "until": "2026-03-01T00:00:00+08:00"}
    notes = [("2026-01-05T09:00:00+08:00", 1), ("2026-01-06T09:00:00+08:00", 2),
             ("2026-01-31T20:00:00+00:00", 4),  # 1 February in Shanghai
             ("2026-02-10T09:00:00+08:00", 2), ("2026-03-02T09:00:00+08:00", 4)]  # last: after
    for occurred, priority in notes:
        r = acme.api.post("/api/v1/records", json={"kind": "sample.note", "occurred_at": occurred,
                                                   "data": {"text": "n", "priority": priority}})
        assert r.status_code == 201, r.json
    globex.api.post("/api/v1/records", json={**OBSERVATION, "occurred_at": "2026-01-05T09:00:00+08:00"})

    r = acme.api.get("/api/v1/kpis", query_string={**period, "metrics": "sample.even_records",
                                                   "group_by": "month"})
    assert r.status_code == 200, r.json
    assert [(row["group"]["month"], row["values"]["sample.even_records"]) for row in r.json["rows"]] == \
        [("2026-01", 1), ("2026-02", 2)]
    assert r.json["metrics"][0]["plugin"] == "sample"
    # The metric's own parameter reaches it; a bad value is the metric's 422.
    r = acme.api.get("/api/v1/kpis", query_string={**period, "metrics": "sample.even_records",
                                                   "min_priority": 3})
    assert r.json["rows"] == [{"group": {}, "values": {"sample.even_records": 1}}]
    r = acme.api.get("/api/v1/kpis", query_string={**period, "metrics": "sample.even_records",
                                                   "min_priority": "high"})
    assert r.status_code == 422 and "min_priority" in r.json["errors"]["query"]
    # A grouping it does not declare.
    r = acme.api.get("/api/v1/kpis", query_string={"metrics": "sample.even_records", "group_by": "item"})
    assert r.status_code == 422
    assert "it can by: day, week, month, site, staff" in r.json["errors"]["query"]["group_by"][0]

    listed = {m["name"]: m for m in acme.api.get("/api/v1/kpis/metrics").json}
    assert listed["sample.even_records"]["params"] == {
        "min_priority": "Only notes of at least this priority (default 1)."}
    zh = acme.api.get("/api/v1/kpis/metrics", headers={"Accept-Language": "zh"}).json
    assert {m["name"]: m["title"] for m in zh}["sample.even_records"] == "偶数优先级备注"
    # A tenant that has not enabled the plugin neither sees nor computes it.
    assert "sample.even_records" not in {m["name"] for m in globex.api.get("/api/v1/kpis/metrics").json}
    r = globex.api.get("/api/v1/kpis", query_string={"metrics": "sample.even_records"})
    assert r.status_code == 422
    assert "Unknown metric(s) sample.even_records" in r.json["errors"]["query"]["metrics"][0]


# -- (c) loading ---------------------------------------------------------------------------


def test_misspelt_hook_fails_at_start(app_config):
    typo = types.ModuleType("typo_plugin")
    typo.register_record_kind = hookimpl(lambda: [])
    with pytest.raises(pluggy.PluginValidationError, match="register_record_kind"):
        create_app({**app_config, "EXTRA_PLUGINS": [("typo", typo)]})


class _Data(Schema):
    text = fields.String()


def _kinds_plugin(name: str, *kind_names: str):
    module = types.ModuleType(name)
    module.register_record_kinds = hookimpl(lambda: [RecordKind(n, _Data) for n in kind_names])
    return module


@pytest.mark.parametrize("plugin_id, kinds, message", [
    ("dup", ("dup.a", "dup.a"), "registered twice"),
    ("core.extra", ("observation",), "registered twice"),
    ("loose", ("note",), "'loose.<name>'"),
])
def test_bad_record_kinds_fail_at_start(app_config, plugin_id, kinds, message):
    plugin = _kinds_plugin(plugin_id.replace(".", "_"), *kinds)
    with pytest.raises(PluginError, match=re.escape(message)):
        create_app({**app_config, "EXTRA_PLUGINS": [(plugin_id, plugin)]})


@pytest.mark.parametrize("plugin_id", ["Bad", "my-plugin", "9lives"])
def test_invalid_plugin_id_fails_at_start(app_config, plugin_id):
    with pytest.raises(PluginError, match="is not valid"):
        create_app({**app_config, "EXTRA_PLUGINS": [(plugin_id, types.ModuleType("m"))]})


def test_entry_point_plugin_is_loaded(app_config, tmp_path, monkeypatch):
    module = f"servq_ep_{uuid.uuid4().hex[:8]}"
    site = tmp_path / "site"
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(textwrap.dedent('''\
        """An installed third-party plugin."""
        from marshmallow import Schema, fields
        from servq.core.plugins import RecordKind, hookimpl

        class Data(Schema):
            text = fields.String(required=True)

        @hookimpl
        def register_record_kinds():
            return [RecordKind(name="epdemo.thing", schema=Data)]
    '''))
    dist = site / "servq_ep_demo-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: servq-ep-demo\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text(f"[servq]\nepdemo = {module}\n")
    monkeypatch.syspath_prepend(str(site))

    app = create_app({**app_config, "LOAD_ENTRY_POINTS": True})
    try:
        plugins = get_plugins(app)
        assert "epdemo" in plugins.ids()
        assert plugins.describe("epdemo") == {
            "id": "epdemo", "description": "An installed third-party plugin.",
            "package": "servq-ep-demo", "version": "1.2.3", "kinds": ["epdemo.thing"]}
        from tests.factories import Factory

        acme = Factory(app, app.test_client()).tenant("acme")
        r = acme.api.get("/api/v1/plugins")
        assert r.status_code == 200, r.json
        assert "epdemo" in [p["id"] for p in (r.json["items"] if "items" in r.json else r.json)]
    finally:
        app.extensions["servq.engine"].dispose()
    # Without LOAD_ENTRY_POINTS (the tests' default) it is not loaded.
    other = _other_app(app_config)
    try:
        assert "epdemo" not in get_plugins(other).ids()
    finally:
        other.extensions["servq.engine"].dispose()


def test_plugin_manager_belongs_to_the_app(app, app_config, acme):
    acme.enable("sample")
    plain = _other_app(app_config, EXTRA_PLUGINS=[])
    twin = _other_app(app_config)  # the same plugin module in a second app
    try:
        assert get_plugins(plain) is not get_plugins(app)
        assert "sample" in get_plugins(app).ids() and "sample" not in get_plugins(plain).ids()
        assert "sample.note" not in get_plugins(plain).kinds
        assert not any(r.rule.startswith("/api/v1/sample") for r in plain.url_map.iter_rules())
        token = acme.api.token
        headers = {"Authorization": f"Bearer {token}"}
        assert twin.test_client().get("/api/v1/sample/summary", headers=headers).status_code == 200
        assert app.test_client().get("/api/v1/sample/summary", headers=headers).status_code == 200
    finally:
        plain.extensions["servq.engine"].dispose()
        twin.extensions["servq.engine"].dispose()


def test_example_package_loads_through_its_entry_point(app_config, tmp_path, monkeypatch):
    """examples/servq-example-plugin, as pip would install it: its own entry point."""
    package = ROOT / "examples" / "servq-example-plugin"
    project = tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    entry_points = project["entry-points"]["servq"]
    assert entry_points == {"example": "servq_example"}
    dist = tmp_path / "servq_example_plugin-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (dist / "entry_points.txt").write_text(
        "[servq]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    monkeypatch.syspath_prepend(str(package))
    monkeypatch.syspath_prepend(str(tmp_path))

    app = create_app({**app_config, "LOAD_ENTRY_POINTS": True})
    try:
        from tests.factories import Factory

        factory = Factory(app, app.test_client())
        acme, globex = factory.tenant("acme"), factory.tenant("globex")
        assert get_plugins(app).describe("example")["package"] == "servq-example-plugin"
        url = "/api/v1/example/visits/summary"
        assert globex.api.get(url).status_code == 404
        r = acme.api.put("/api/v1/plugins/example", json={"active": True, "configuration": {"currency": "yuan"}})
        assert r.status_code == 422, r.json
        r = acme.api.put("/api/v1/plugins/example", json={"active": True, "configuration": {"target_score": 85}})
        assert r.status_code == 200, r.json
        for score in (80, 100):
            r = acme.api.post("/api/v1/records", json={
                "kind": "example.mystery_visit", "occurred_at": "2026-01-05T09:00:00+08:00",
                "data": {"shopper": "S1", "score": score}})
            assert r.status_code == 201, r.json
            assert r.json["status"] == "submitted"
        assert acme.api.get(url).json == {"visits": 2, "average_score": 90.0,
                                          "target_score": 85, "on_target": True}
        assert globex.api.post("/api/v1/records", json={
            "kind": "example.mystery_visit", "occurred_at": "2026-01-05T09:00:00+08:00",
            "data": {"shopper": "S1", "score": 1}}).status_code == 422
    finally:
        app.extensions["servq.engine"].dispose()


# -- (d) a plugin that fails is named --------------------------------------------------------


def test_hook_raising_at_start_names_its_plugin(app_config):
    def explode():
        raise ValueError("no kinds today")

    broken = types.ModuleType("broken_plugin")
    broken.register_record_kinds = hookimpl(explode)
    with pytest.raises(PluginError, match=re.escape(
            "plugin 'broken': its hook register_record_kinds raised ValueError: no kinds today")):
        create_app({**app_config, "EXTRA_PLUGINS": [("broken", broken)]})


def test_event_hook_raising_names_its_plugin(app_config, caplog):
    def record_created(record):
        raise RuntimeError("downstream is down")

    noisy = types.ModuleType("noisy_plugin")
    noisy.record_created = hookimpl(record_created)
    app = create_app({**app_config, "EXTRA_PLUGINS": [("noisy", noisy)]})
    try:
        from tests.factories import Factory

        acme = Factory(app, app.test_client()).tenant("acme")
        acme.enable("noisy")
        r = acme.api.post("/api/v1/records", json=OBSERVATION)
        assert r.status_code == 500 and r.json["message"] == "Internal error."  # nothing leaks out
        (logged,) = [record for record in caplog.records if record.exc_info]
        error = logged.exc_info[1]
        assert isinstance(error, RuntimeError)  # its own type, for callers that expect it
        assert "raised by plugin 'noisy' in its hook record_created" in error.__notes__
        assert "raised by plugin 'noisy'" in logging.Formatter().formatException(logged.exc_info)
    finally:
        app.extensions["servq.engine"].dispose()


def _installed(site: Path, module: str, dist: str, source: str) -> None:
    """A package ``module`` with an entry point of the group ``servq`` named like it, as
    pip would install it into ``site``."""
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(textwrap.dedent(source))
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[servq]\n{module} = {module}\n")


def test_broken_plugins_are_listed_as_broken(tmp_path):
    """A real ``servq plugins list``, with three installed third-party plugins: one whose
    import fails, one whose hook raises at start-up, one sound."""
    import os
    import subprocess
    import sys

    site = tmp_path / "site"
    _installed(site, "needsmissing", "needs-missing", '''\
        """Imports a package that is not installed."""
        import not_installed_anywhere  # noqa: F401
    ''')
    _installed(site, "raiser", "raiser", '''\
        """Raises when asked for its kinds."""
        from servq import hookimpl

        @hookimpl
        def register_record_kinds():
            raise KeyError("kinds.toml")
    ''')
    _installed(site, "sound", "sound", '''\
        """A sound plugin."""
    ''')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "SERVQ_INSTANCE_PATH": str(tmp_path / "instance")}
    env.pop("DATABASE_URL", None)
    result = subprocess.run([sys.executable, "-m", "servq.cli", "plugins", "list"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "broken" in lines["needsmissing"]
    assert "plugin 'needsmissing' cannot be loaded: ModuleNotFoundError: No module named " \
           "'not_installed_anywhere'" in lines["needsmissing"]
    assert "broken" in lines["raiser"] and \
        "plugin 'raiser': its hook register_record_kinds raised KeyError: 'kinds.toml'" in lines["raiser"]
    assert lines["sound"].split(None, 1)[1] == "A sound plugin."
    assert "property" in lines and "broken" not in lines["property"]
    assert "the app cannot start" in result.stderr and "Traceback" not in result.stderr


def _example_app(app_config, tmp_path, monkeypatch):
    package = ROOT / "examples" / "servq-example-plugin"
    dist = tmp_path / "servq_example_plugin-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: servq-example-plugin\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[servq]\nexample = servq_example\n")
    monkeypatch.syspath_prepend(str(package))
    monkeypatch.syspath_prepend(str(tmp_path))
    return create_app({**app_config, "LOAD_ENTRY_POINTS": True})


def test_example_plugin_ships_a_standard_and_demo_data(app_config, tmp_path, monkeypatch):
    """The guide's example: its standard scores its records, and ``servq tenants onboard
    FILE --demo`` loads four weeks of scored visits."""
    from servq.core.models import Evaluation

    app = _example_app(app_config, tmp_path, monkeypatch)
    try:
        manifest = tmp_path / "shop.toml"
        manifest.write_text(textwrap.dedent('''\
            slug = "shop"
            name = "Shop"
            industry = "retail"
            timezone = "Asia/Shanghai"
            locale = "en"
            plugins = ["example"]

            [[admins]]
            email = "owner@shop.test"
            role = "owner"
        '''))
        result = CliRunner().invoke(cli.make_cli(app_factory=lambda: app),
                                    ["tenants", "onboard", str(manifest), "--demo"])
        assert result.exit_code == 0, result.output
        with app.app_context():
            from servq.core.db.session import new_session

            with new_session(app) as s:
                tenant_id = s.scalar(select(Tenant.id).where(Tenant.slug == "shop"))
            with new_session(app, tenant_id) as s:
                records = s.scalars(select(Record).where(Record.kind == "example.mystery_visit")).all()
                evaluations = s.scalars(select(Evaluation)).all()
        assert len(records) == 28
        assert {e.standard_code for e in evaluations} == {"example.mystery_visit"}
        assert len(evaluations) == 28
        assert {e.passed for e in evaluations} == {True, False}  # some visits fail the standard
    finally:
        app.extensions["servq.engine"].dispose()


def test_command_recipe_of_the_guide(app_config):
    """docs/plugins.md, "Command-line commands": a plugin command written with the surface
    alone gets the app, a tenant and a session."""
    import click

    import servq

    @click.command("count")
    @click.option("--tenant", "slug", required=True)
    def count(slug):
        """Count the tenant's records."""
        app = servq.cli_app()
        tenant = servq.cli_tenant(app, slug)
        with servq.cli_session(app, tenant.id) as session:
            total = session.scalar(select(func.count()).select_from(servq.Record))
        if total == 0:
            raise servq.CliError(f"{slug} has no records yet")
        click.echo(f"{slug}: {total} records")

    recipe = types.ModuleType("recipe_plugin")
    recipe.register_commands = hookimpl(lambda: [count])
    app = create_app({**app_config, "EXTRA_PLUGINS": [("recipe", recipe)]})
    try:
        from tests.factories import Factory

        acme = Factory(app, app.test_client()).tenant("acme")
        invoke = lambda *args: CliRunner().invoke(cli.make_cli(app_factory=lambda: app), list(args))  # noqa: E731
        result = invoke("recipe", "count", "--tenant", "acme")
        assert result.exit_code == 1 and "error: acme has no records yet" in result.stderr
        assert acme.api.post("/api/v1/records", json=OBSERVATION).status_code == 201
        result = invoke("recipe", "count", "--tenant", "acme")
        assert result.exit_code == 0 and result.output == "acme: 1 records\n"
        result = invoke("recipe", "count", "--tenant", "nobody")
        assert result.exit_code == 1 and "no tenant with slug 'nobody'" in result.stderr
    finally:
        app.extensions["servq.engine"].dispose()
