"""The API description: OpenAPI 3 document, bearer security on every operation, offline docs."""

from __future__ import annotations

import re

import pytest
from html.parser import HTMLParser

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
PUBLIC_OPERATIONS = {("post", "/api/v1/auth/token"),
                     # survey links: the link token is the credential (core/api/public.py)
                     ("get", "/api/v1/public/surveys/{token}"), ("post", "/api/v1/public/surveys/{token}")}


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield method, path, op


def test_document_is_openapi_3(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    spec = r.json
    assert re.fullmatch(r"3\.\d+\.\d+", spec["openapi"])
    assert spec["info"]["title"] == "servq" and spec["info"]["version"]
    assert "bearer token" in spec["info"]["description"]
    # The document is public: no token needed to read it.
    assert "/api/v1/sites" in spec["paths"] and "/api/v1/me" in spec["paths"]


def test_every_operation_but_login_needs_a_bearer_token(client):
    spec = client.get("/api/v1/openapi.json").json
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    seen = set()
    for method, path, op in operations(spec):
        seen.add((method, path))
        if (method, path) in PUBLIC_OPERATIONS:
            assert op.get("security") == [], f"{method.upper()} {path} should be public"
        else:
            assert op.get("security") == [{"bearerAuth": []}], f"{method.upper()} {path} lacks bearer security"
        assert op.get("responses"), f"{method.upper()} {path} documents no response"
    assert PUBLIC_OPERATIONS <= seen
    assert len(seen) > len(PUBLIC_OPERATIONS)


def test_declared_security_is_enforced(client):
    """Each operation that declares bearer security answers 401 without a token (the
    declaration comes from the same decorator that authenticates)."""
    spec = client.get("/api/v1/openapi.json").json
    for method, path, op in operations(spec):
        if (method, path) in PUBLIC_OPERATIONS:
            continue
        # Path parameters get a well-formed value so that routing reaches the view.
        params = {p["name"]: p.get("schema", {})
                  for p in spec["paths"][path].get("parameters", []) + op.get("parameters", [])
                  if p.get("in") == "path"}
        url = re.sub(r"\{([^}]+)\}",
                     lambda m: "00000000-0000-0000-0000-000000000000"
                     if params.get(m.group(1), {}).get("format") == "uuid" else "x", path)
        r = client.open(url, method=method.upper())
        assert r.status_code == 401, f"{method.upper()} {url}: {r.status_code}"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def test_docs_work_offline(client):
    r = client.get("/api/v1/docs")
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert "SwaggerUIBundle" in page
    assert not re.search(r"https?://", page), "the docs page refers to another server"
    # Swagger UI's online validator is switched off (it would send the document away).
    assert '"validatorUrl": null' in page
    parser = _Assets()
    parser.feed(page)
    assert parser.urls
    scripts = [u for u in parser.urls if u.endswith(".js")]
    styles = [u for u in parser.urls if u.endswith(".css")]
    assert scripts and styles
    for url in parser.urls:
        assert url.startswith("/api/v1/docs/assets/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.data) > 1000, url
        assert asset.mimetype in ("text/javascript", "application/javascript", "text/css"), (url, asset.mimetype)
    assert client.get("/api/v1/docs/assets/../../openapi.json").status_code == 404
    assert client.get("/api/v1/docs/assets/no-such-file.js").status_code == 404


# What a generated client needs (core/api/openapi.py, docs/api-clients.md).

def _resolve(spec: dict, node: dict) -> dict:
    ref = node.get("$ref") if isinstance(node, dict) else None
    if ref:
        kind, name = ref.split("/")[-2:]
        return spec["components"][kind][name]
    return node


def test_every_operation_has_a_unique_camel_case_operation_id(client):
    spec = client.get("/api/v1/openapi.json").json
    ids = [op.get("operationId") for _, _, op in operations(spec)]
    assert all(ids), [f"{m.upper()} {p}" for m, p, op in operations(spec) if not op.get("operationId")]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert all(re.fullmatch(r"[a-z][A-Za-z0-9]*", i) for i in ids), ids
    by_route = {(m, p): op["operationId"] for m, p, op in operations(spec)}
    assert by_route[("get", "/api/v1/records")] == "listRecords"
    assert by_route[("post", "/api/v1/records")] == "createRecord"
    assert by_route[("get", "/api/v1/records/{record_id}")] == "getRecord"
    assert by_route[("patch", "/api/v1/records/{record_id}")] == "updateRecord"
    assert by_route[("post", "/api/v1/records/{record_id}/transitions")] == "transitionRecord"
    assert by_route[("post", "/api/v1/auth/token")] == "login"
    # A plugin's routes get one too, with the plugin's id.
    assert by_route[("get", "/api/v1/property/sites/{site_id}/obligations")] == "getPropertySiteObligations"


@pytest.mark.sample_plugin
def test_a_plugins_new_route_gets_an_operation_id(client):
    spec = client.get("/api/v1/openapi.json").json
    plugin_ops = [op for _, path, op in operations(spec) if path.startswith("/api/v1/sample/")]
    assert plugin_ops and all(op["operationId"].startswith(("getSample", "listSample", "createSample"))
                              for op in plugin_ops), [op.get("operationId") for op in plugin_ops]


NO_LOCATION = {"/api/v1/auth/token", "/api/v1/records/batch", "/api/v1/public/surveys/{token}"}


def test_every_error_response_has_the_error_schema(client):
    spec = client.get("/api/v1/openapi.json").json
    for method, path, op in operations(spec):
        where = f"{method.upper()} {path}"
        responses = {code: _resolve(spec, r) for code, r in op["responses"].items()}
        for code, response in responses.items():
            if code == "default" or int(code) >= 400:
                assert response.get("content", {}).get("application/json", {}).get("schema"), (where, code)
        if op.get("security"):
            assert "WWW-Authenticate" in responses["401"]["headers"], where
            if op.get("x-permission") != "read":
                assert "403" in responses, where
        if "{" in path:
            assert "404" in responses, where
        if "requestBody" in op:
            assert {"400", "422"} <= responses.keys(), where
        if "429" in responses:
            assert "Retry-After" in responses["429"]["headers"], where
        # A 201 that makes one addressable object says where it is (not a token, a batch
        # of records, a survey answer).
        if "201" in responses and method == "post" and path not in NO_LOCATION:
            assert {"Location", "ETag"} <= responses["201"].get("headers", {}).keys(), where
        if method == "get" and "page_size" in {_resolve(spec, p).get("name") for p in op.get("parameters", [])}:
            assert "X-Pagination" in responses["200"]["headers"], where
    assert "ETag" in spec["paths"]["/api/v1/records/{record_id}"]["get"]["responses"]["200"]["headers"]


def test_response_schemas_require_the_fields_always_present(client):
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    record = schemas["Record"]
    assert set(record["required"]) == set(record["properties"])
    assert record["properties"]["site_id"]["nullable"] is True
    # The error body has message and errors only when the error gave them.
    assert schemas["Error"]["required"] == ["code", "status"]
    # A schema also read from requests keeps its own required fields (the body's).
    assert schemas["RecordInput"]["required"] == ["kind"]
    assert not any(k.startswith("x-servq") for s in schemas.values() for k in s)


def test_report_responses_are_typed_and_files_binary(client):
    spec = client.get("/api/v1/openapi.json").json
    weekly = spec["paths"]["/api/v1/reports/weekly"]["get"]["responses"]["200"]["content"]
    assert weekly["application/json"]["schema"] == {"$ref": "#/components/schemas/WeeklyReport"}
    for content_type in ("application/pdf", "text/csv",
                         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"):
        assert weekly[content_type]["schema"] == {"type": "string", "format": "binary"}
    run_file = spec["paths"]["/api/v1/reports/runs/{run_id}/file"]["get"]["responses"]["200"]["content"]
    assert run_file["application/pdf"]["schema"]["format"] == "binary"
