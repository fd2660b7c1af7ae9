"""The API description: OpenAPI 3 document, bearer security on every operation, offline docs."""

from __future__ import annotations

import re
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
