"""Record kinds through HTTP: what a tenant may use, with the JSON schema of its data."""

from __future__ import annotations

import pytest

from tests.test_records import TestKindsPlugin

KINDS = "/api/v1/kinds"


@pytest.fixture
def app_config(app_config):
    app_config["EXTRA_PLUGINS"] = [("testkinds", TestKindsPlugin())]
    return app_config


#: The kinds core registers for every tenant, in the list's order (by name).
CORE_KINDS = ["complaint", "inspection", "observation"]


def test_core_kinds_listed(acme):
    r = acme.api.get(KINDS)
    assert r.status_code == 200
    assert [k["name"] for k in r.json] == CORE_KINDS
    obs = next(k for k in r.json if k["name"] == "observation")
    assert obs["plugin"] == "core.kinds.observation"
    assert obs["title"] == {"en": "Observation", "zh": "观察记录"}
    assert obs["statuses"] == ["open", "closed"] and obs["description"]
    schema = obs["data_schema"]
    assert schema["type"] == "object" and schema["required"] == ["title"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["title"] == {"type": "string", "minLength": 1, "maxLength": 200}
    assert schema["properties"]["severity"]["enum"] == ["low", "medium", "high", "critical"]
    assert schema["properties"]["tags"]["type"] == "array"
    assert acme.api.get(f"{KINDS}/observation").json == obs


@pytest.mark.cross_tenant("GET /api/v1/kinds",
                          "GET /api/v1/kinds/<string:name>")
def test_plugin_kind_only_when_enabled(acme, globex):
    assert acme.api.get(f"{KINDS}/testkinds.visit").status_code == 404
    assert "testkinds.visit" not in [k["name"] for k in acme.api.get(KINDS).json]

    acme.enable("testkinds")
    r = acme.api.get(f"{KINDS}/testkinds.visit")
    assert r.status_code == 200
    assert r.json["plugin"] == "testkinds" and r.json["statuses"] == ["new", "done"]
    props = r.json["data_schema"]["properties"]
    assert props["due_at"] == {"type": "string", "format": "date-time"}
    assert props["rating"] == {"type": "integer", "minimum": 1, "maximum": 5}
    assert sorted(r.json["data_schema"]["required"]) == ["due_at", "rating"]
    assert [k["name"] for k in acme.api.get(KINDS).json] == CORE_KINDS + ["testkinds.visit"]

    # Enabling is per tenant.
    assert globex.api.get(f"{KINDS}/testkinds.visit").status_code == 404
    assert [k["name"] for k in globex.api.get(KINDS).json] == CORE_KINDS


def test_unknown_kind_and_auth(acme, client):
    assert acme.api.get(f"{KINDS}/nope").status_code == 404
    assert client.get(KINDS).status_code == 401
    viewer = acme.as_role("viewer")
    assert viewer.get(KINDS).status_code == 200
    assert viewer.get(f"{KINDS}/observation").status_code == 200


def test_openapi_documents_kinds_and_records(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert {"/api/v1/kinds", "/api/v1/kinds/{name}", "/api/v1/records",
            "/api/v1/records/{record_id}", "/api/v1/records/{record_id}/history"} <= set(paths)


def test_a_kind_reference_names_a_top_level_field_of_its_schema():
    from marshmallow import Schema, fields

    from servq.core.plugins import RecordKind

    class Data(Schema):
        order_no = fields.String()
        customer = fields.Dict()

    assert RecordKind(name="x.order", schema=Data, reference="order_no").reference == "order_no"
    with pytest.raises(ValueError, match="reference 'ticket' is not a field of its schema"):
        RecordKind(name="x.order", schema=Data, reference="ticket")
    with pytest.raises(ValueError, match="is not the name of a top-level field"):
        RecordKind(name="x.order", schema=Data, reference="customer.id")
