"""Per-tenant plugin settings: listing, enabling, configuration validated by the plugin's
own schema, ETags, permissions, isolation, and the service function onboarding reuses."""

from __future__ import annotations

import json

import pytest
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from servq.core.models import AuditEvent, TenantPlugin
from servq.core.plugins.settings import PluginConfigError, UnknownPlugin, configure_plugin
from servq.core.plugins import hookimpl
from servq.core.plugins.app import get_plugins

P = "/api/v1/plugins"


class DemoConfig(Schema):
    threshold = fields.Integer(required=True, validate=validate.Range(min=0, max=100))
    label = fields.String(load_default="demo")
    since = fields.Date()


class CfgDemo:
    """Demo plugin with a configuration schema."""

    @staticmethod
    @hookimpl
    def register_config_schema():
        return DemoConfig


class Plain:
    """Demo plugin without configuration."""


@pytest.fixture
def app_config(app_config):
    app_config["EXTRA_PLUGINS"] = [("cfgdemo", CfgDemo), ("plain", Plain)]
    return app_config


def test_list_and_get(acme):
    r = acme.api.get(P)
    assert r.status_code == 200
    # The built-in industry plugins are listed with the test's own.
    assert [p["id"] for p in r.json] == ["aftersales", "cfgdemo", "courier", "hotel", "plain", "property"]
    assert r.json[1]["description"] == "Demo plugin with a configuration schema."
    assert all(p["enabled"] is False and p["configuration"] == {} for p in r.json)
    assert json.loads(r.headers["X-Pagination"])["total"] == 6
    r = acme.api.get(P, query_string={"page": 5, "page_size": 1})
    assert [p["id"] for p in r.json] == ["plain"]
    assert json.loads(r.headers["X-Pagination"])["previous_page"] == 4
    r = acme.api.get(f"{P}/cfgdemo")
    assert r.status_code == 200 and r.headers["ETag"] and r.json["enabled"] is False
    assert acme.api.get(f"{P}/nope").status_code == 404
    assert acme.api.get(f"{P}/core.kinds").status_code == 404


def test_enable_configure_disable(acme):
    url = f"{P}/cfgdemo"
    r = acme.api.put(url, json={"active": True, "configuration": {"threshold": 80, "since": "2026-01-31"}})
    assert r.status_code == 200, r.json
    assert r.json["enabled"] is True
    assert r.json["configuration"] == {"threshold": 80, "label": "demo", "since": "2026-01-31"}
    etag = r.headers["ETag"]
    assert etag == acme.api.get(url).headers["ETag"]
    assert [p["id"] for p in acme.api.get(P).json if p["enabled"]] == ["cfgdemo"]

    body = {"active": False, "configuration": {"threshold": 10}}
    assert acme.api.put(url, json=body).status_code == 428
    assert acme.api.put(url, json=body, etag='"stale"').status_code == 412
    r = acme.api.put(url, json=body, etag=etag)
    assert r.status_code == 200
    assert r.json["enabled"] is False and r.json["configuration"] == {"threshold": 10, "label": "demo"}
    with acme.session() as s:
        row = s.scalar(select(TenantPlugin).where(TenantPlugin.plugin_id == "cfgdemo"))
        assert row.active is False and row.configuration["threshold"] == 10
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.entity == "tenant_plugins")).all()
        assert sorted(actions) == ["changed", "created"]


def test_first_put_checks_if_match_when_sent(acme):
    url = f"{P}/plain"
    assert acme.api.put(url, json={"active": True}, etag='"stale"').status_code == 412
    etag = acme.api.get(url).headers["ETag"]
    r = acme.api.put(url, json={"active": True}, etag=etag)
    assert r.status_code == 200 and r.json["enabled"] is True and r.json["configuration"] == {}


def test_configuration_validated_by_plugin_schema(acme):
    url = f"{P}/cfgdemo"
    r = acme.api.put(url, json={"active": True, "configuration": {"threshold": 101}})
    assert r.status_code == 422
    assert "threshold" in r.json["errors"]["json"]["configuration"]
    r = acme.api.put(url, json={"active": True, "configuration": {}})
    assert r.status_code == 422 and "threshold" in r.json["errors"]["json"]["configuration"]
    r = acme.api.put(url, json={"active": True, "configuration": {"threshold": 5, "colour": "red"}})
    assert r.status_code == 422 and "colour" in r.json["errors"]["json"]["configuration"]
    r = acme.api.put(f"{P}/plain", json={"active": True, "configuration": {"x": 1}})
    assert r.status_code == 422 and "x" in r.json["errors"]["json"]["configuration"]
    r = acme.api.put(url, json={"active": "maybe"})
    assert r.status_code == 422 and "active" in r.json["errors"]["json"]
    r = acme.api.put(url, json={"configuration": {"threshold": 5}})
    assert r.status_code == 422 and "active" in r.json["errors"]["json"]
    assert acme.api.get(url).json["enabled"] is False
    with acme.session() as s:
        assert s.scalar(select(TenantPlugin.id)) is None


def test_unknown_plugin_put_is_404(acme):
    assert acme.api.put(f"{P}/nope", json={"active": True}).status_code == 404
    with acme.session() as s:
        assert s.scalar(select(TenantPlugin.id)) is None


def test_only_admins_configure(acme):
    for role in ("viewer", "agent", "manager"):
        api = acme.as_role(role)
        assert api.get(P).status_code == 200
        assert api.get(f"{P}/cfgdemo").status_code == 200
        r = api.put(f"{P}/cfgdemo", json={"active": True, "configuration": {"threshold": 1}})
        assert r.status_code == 403
    admin = acme.as_role("admin")
    assert admin.put(f"{P}/plain", json={"active": True}).status_code == 200


@pytest.mark.cross_tenant("GET /api/v1/plugins",
                          "GET /api/v1/plugins/<string:plugin_id>",
                          "PUT /api/v1/plugins/<string:plugin_id>")
def test_plugins_cross_tenant(acme, globex):
    r = acme.api.put(f"{P}/cfgdemo", json={"active": True, "configuration": {"threshold": 7}})
    etag = r.headers["ETag"]
    assert globex.api.get(f"{P}/cfgdemo").json["enabled"] is False
    assert not any(p["enabled"] for p in globex.api.get(P).json)
    # globex's first write makes its own row and leaves acme's alone.
    r = globex.api.put(f"{P}/cfgdemo", json={"active": False, "configuration": {"threshold": 1}}, etag=etag)
    assert r.status_code == 412
    assert globex.api.put(f"{P}/cfgdemo", json={"active": True, "configuration": {"threshold": 1}}).status_code == 200
    assert acme.api.get(f"{P}/cfgdemo").json["configuration"]["threshold"] == 7
    assert globex.api.get(f"{P}/cfgdemo").json["configuration"]["threshold"] == 1


def test_tenant_id_in_body_rejected(acme, globex):
    r = acme.api.put(f"{P}/plain", json={"active": True, "tenant_id": str(globex.id)})
    assert r.status_code == 422 and "tenant_id" in r.json["errors"]["json"]


def test_configure_plugin_service(app, acme):
    plugins = get_plugins(app)
    with acme.session() as s:
        with pytest.raises(PluginConfigError) as err:
            configure_plugin(s, plugins, "cfgdemo", True, {"threshold": "high"})
        assert "threshold" in err.value.messages
        with pytest.raises(UnknownPlugin):
            configure_plugin(s, plugins, "nope", True, {})
        row = configure_plugin(s, plugins, "cfgdemo", True, {"threshold": 3})
        again = configure_plugin(s, plugins, "cfgdemo", True, {"threshold": 3})
        assert again is row and row.configuration == {"threshold": 3, "label": "demo"}
        s.commit()
        # Idempotent: the second call changed nothing, so only the creation is audited.
        assert s.scalars(select(AuditEvent.action)).all() == ["created"]
