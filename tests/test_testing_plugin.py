"""servq.testing, the pytest plugin servq ships: a tiny plugin written out of tree, with
its own tests using only the shipped fixtures (no conftest, no servq checkout), run by a
separate pytest on SQLite, and on PostgreSQL/Redis when this suite runs there."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib import metadata

PLUGIN = '''\
    """Greetings: a tiny out-of-tree plugin."""
    from flask.views import MethodView

    from servq import Blueprint, RecordKind, hookimpl, request_session, require, Record
    from marshmallow import Schema, fields
    from sqlalchemy import func, select


    class Data(Schema):
        text = fields.String(required=True)


    blp = Blueprint("greet", __name__, description="Greetings")


    @blp.route("/count")
    class Count(MethodView):
        @require("read")
        def get(self):
            session = request_session()
            return {"greetings": session.scalar(select(func.count()).select_from(Record)
                                                .where(Record.kind == "greet.hello"))}


    @hookimpl
    def register_record_kinds():
        return [RecordKind(name="greet.hello", schema=Data, title={"en": "Hello", "zh": "你好"})]


    @hookimpl
    def register_blueprints():
        return [blp]
'''

TESTS = '''\
    import pytest

    import greet


    @pytest.fixture
    def app_config(app_config):
        app_config["EXTRA_PLUGINS"] = [("greet", greet)]
        return app_config


    def test_fixtures_make_a_tenant_and_a_token(app, client, tenant, token):
        assert tenant.slug == "acme"
        r = client.get("/api/v1/kinds", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200


    def test_the_plugin_works_for_the_tenant_that_enabled_it(tenant, other_tenant):
        tenant.enable("greet")
        r = tenant.api.post("/api/v1/records", json={
            "kind": "greet.hello", "occurred_at": "2026-01-05T09:00:00+08:00", "data": {"text": "hi"}})
        assert r.status_code == 201, r.json
        assert tenant.api.get("/api/v1/greet/count").json == {"greetings": 1}
        assert other_tenant.api.get("/api/v1/greet/count").status_code == 404
        assert tenant.as_role("viewer").get("/api/v1/greet/count").status_code == 200


    def test_a_tenant_onboarded_from_a_manifest(onboard_manifest, other_tenant):
        hello = onboard_manifest({
            "slug": "hello", "name": "Hello Ltd", "timezone": "Asia/Shanghai", "plugins": {"greet": {}},
            "admins": [{"email": "owner@hello.test", "role": "owner"}, {"email": "boss@hello.test", "role": "manager"}],
            "sites": [{"code": "HQ", "name": "Head office"}], "staff": [{"code": "E1", "name": "Ann", "site": "HQ"}]})
        assert hello.emails == {"manager": "boss@hello.test"}
        r = hello.manager.post("/api/v1/records", json={
            "kind": "greet.hello", "occurred_at": "2026-01-05T09:00:00+08:00", "site_id": hello.site_id,
            "staff_id": hello.staff["E1"], "data": {"text": "hi"}})
        assert r.status_code == 201, r.json
        assert hello.api.get("/api/v1/greet/count").json == {"greetings": 1}
        assert other_tenant.api.get(f"/api/v1/records/{r.json['id']}").status_code == 404
'''


def test_entry_point_is_declared():
    (entry,) = [ep for ep in metadata.entry_points(group="pytest11") if ep.name == "servq"]
    assert entry.value == "servq.testing"


def test_out_of_tree_plugin_tests_with_the_shipped_fixtures(tmp_path):
    project = tmp_path / "servq-greet"
    (project / "tests").mkdir(parents=True)
    (project / "greet.py").write_text(textwrap.dedent(PLUGIN))
    (project / "tests" / "test_greet.py").write_text(textwrap.dedent(TESTS))
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env["PYTHONPATH"] = str(project)
    # A fresh pytest in the plugin's folder: servq's own conftest is nowhere in sight, the
    # fixtures come from the installed entry point (``-p servq`` is not needed).
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                            cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
