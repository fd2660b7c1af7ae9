"""A Python client generated with ``openapi-python-client`` from the live app's OpenAPI
document drives a live server (a real werkzeug server on a free port, in a thread):
login, create, list with pagination, PATCH with If-Match, a KPI and the weekly report.
Runs on SQLite, and on PostgreSQL with ``TEST_DATABASE_URL`` (docs/api-clients.md)."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.factories import PASSWORD

GENERATOR = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent)) \
    or shutil.which("openapi-python-client")
# The generator knows JSON, text and application/octet-stream; the report files are
# binary bodies of their own types (docs/api-clients.md gives the same file).
CONFIG = """\
post_hooks: []
content_type_overrides:
  application/pdf: application/octet-stream
  application/vnd.openxmlformats-officedocument.spreadsheetml.sheet: application/octet-stream
"""

pytestmark = pytest.mark.skipif(GENERATOR is None, reason="openapi-python-client is not installed")


@pytest.fixture
def live_server(app):
    """The test app served over HTTP on a free port of 127.0.0.1; its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def servq_client(live_server, tmp_path):
    """The package generated from the live server's document, imported."""
    import httpx

    spec = httpx.get(f"{live_server}/api/v1/openapi.json", timeout=30).json()
    (tmp_path / "openapi.json").write_text(json.dumps(spec))
    (tmp_path / "config.yaml").write_text(CONFIG)
    done = subprocess.run([GENERATOR, "generate", "--path", "openapi.json", "--meta", "none",
                           "--output-path", "servq_client", "--config", "config.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        package = importlib.import_module("servq_client")
        yield package
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == "servq_client" or n.startswith("servq_client.")]:
            del sys.modules[name]


def test_generated_client_drives_the_api(live_server, servq_client, acme):
    from servq_client import AuthenticatedClient, Client
    from servq_client.api.auth import login
    from servq_client.api.kpis import query_kpis
    from servq_client.api.records import create_record, get_record, list_records, update_record
    from servq_client.api.reports import get_weekly_report
    from servq_client.models import (Error, KpiResult, Login, Record, RecordChangePatch,
                                     RecordInput, RecordInputData, Token, WeeklyReport)
    from servq_client.types import Unset

    # Login: a typed token; a wrong password is a typed error.
    anonymous = Client(base_url=live_server, raise_on_unexpected_status=True)
    refused = login.sync(client=anonymous, body=Login(tenant="acme", email=acme.owner_email, password="nope"))
    assert isinstance(refused, Error) and refused.code == 401
    token = login.sync(client=anonymous, body=Login(tenant="acme", email=acme.owner_email, password=PASSWORD))
    assert isinstance(token, Token) and token.role == "owner"
    api = AuthenticatedClient(base_url=live_server, token=token.token, raise_on_unexpected_status=True)

    # Create: 201 with the typed record, its Location and ETag.
    created = []
    for n in range(3):
        r = create_record.sync_detailed(client=api, body=RecordInput(
            kind="observation", data=RecordInputData.from_dict({"title": f"Lobby {n}", "severity": "low"})))
        assert r.status_code == 201 and isinstance(r.parsed, Record), r.content
        assert r.headers["Location"].endswith(f"/api/v1/records/{r.parsed.id}")
        created.append((r.parsed, r.headers["ETag"]))
    record, etag = created[0]
    # Required response fields are plain attributes, not Unset.
    assert record.kind == "observation" and record.data["title"] == "Lobby 0"
    assert not isinstance(record.created_at, Unset) and record.site_id is None

    # List with pagination: the page and X-Pagination.
    page = list_records.sync_detailed(client=api, page=2, page_size=2)
    assert page.status_code == 200
    meta = json.loads(page.headers["X-Pagination"])
    assert meta["total"] == 3 and meta["page"] == 2 and meta["previous_page"] == 1
    assert len(page.parsed) == 1 and all(isinstance(r, Record) for r in page.parsed)
    first = list_records.sync(client=api, page=1, page_size=2)
    assert {r.id for r in first + page.parsed} == {r.id for r, _ in created}

    # PATCH with If-Match: the ETag of the 201 works once; the stale one is a typed 412.
    changed = update_record.sync_detailed(record.id, client=api, if_match=etag,
                                          body=RecordChangePatch(status=record.status))
    assert changed.status_code == 200 and isinstance(changed.parsed, Record)
    assert changed.headers["ETag"] != etag or changed.parsed.updated_at >= record.updated_at
    renamed = update_record.sync_detailed(record.id, client=api, if_match=changed.headers["ETag"],
                                          body=RecordChangePatch.from_dict(
                                              {"data": {"title": "Lobby floor wet", "severity": "low"}}))
    assert renamed.status_code == 200 and renamed.parsed.data["title"] == "Lobby floor wet"
    stale = update_record.sync_detailed(record.id, client=api, if_match=etag,
                                        body=RecordChangePatch.from_dict({"data": {"title": "x"}}))
    assert stale.status_code == 412 and isinstance(stale.parsed, Error) and stale.parsed.code == 412
    assert get_record.sync(record.id, client=api).data["title"] == "Lobby floor wet"

    # A KPI: typed result.
    kpi = query_kpis.sync(client=api, metrics="records")
    assert isinstance(kpi, KpiResult), kpi
    assert kpi.metrics and kpi.rows

    # The weekly report in JSON: a typed model.
    report = get_weekly_report.sync(client=api)
    assert isinstance(report, WeeklyReport), report
    assert report.report == "weekly" and report.tenant.slug == "acme"
