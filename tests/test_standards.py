"""The standards catalogue through HTTP: shipped standards, adoption, overrides, versions,
diffs, standards of a tenant's own, languages, permissions and tenant isolation."""

from __future__ import annotations

import sys
import uuid
from datetime import datetime, timezone
import textwrap
import threading

import pytest
from marshmallow import Schema, fields
from sqlalchemy import event, func, select

import tests.sample_plugin as sample
from servq.core import create_app
from servq.core.models import AuditEvent, StandardVersion, Tenant
from servq.core.plugins import RecordKind, hookimpl
from servq.core.plugins.manager import PluginError
from servq.core.scoring import Outcome, RuleType
from servq.core.standards import (rule_registry, shipped_standards, standard_in_force,
                            standard_version, standards_for_kind)
from servq.core.standards.store import tenant_state


QA_TICKETS = """
code = "qa.tickets"
version = 2
title = { en = "Ticket handling", zh = "工单处理" }
applies_to = ["qa.ticket"]
method = "weighted"
pass_mark = 80
grades = [{ grade = "A", min = 90, title = { en = "Excellent", zh = "优秀" } },
          { grade = "B", min = 60 }, { grade = "C", min = 0 }]

[[items]]
code = "minutes"
title = { en = "Answered quickly", zh = "快速响应" }
dimension = "responsiveness"
weight = 3
rule = { type = "measure", max = 240, unit = "min" }

[[items]]
code = "courtesy"
title = { en = "No rude words", zh = "无不礼貌用语" }
dimension = "empathy"
weight = 1
rule = { type = "phrases", field = "reply", forbidden = ["不知道"] }

[[items]]
code = "resolved"
title = { en = "Resolved", zh = "已解决" }
dimension = "reliability"
weight = 2
critical = true
fix_within = "1 day"
rule = { type = "check" }
"""

QA_COMPLAINTS = """
code = "qa.complaints"
version = 1
title = { en = "Complaint handling", zh = "投诉处理" }
applies_to = ["qa.complaint"]
method = "weighted"
pass_mark = 75

[[items]]
code = "response"
title = { en = "Responded in time", zh = "及时响应" }
dimension = "responsiveness"
weight = 2
rule = { type = "deadline", start = "occurred_at", stop = "timestamps.responded_at", limit = "4h" }

[[items]]
code = "apology"
title = { en = "Apologised", zh = "致歉" }
dimension = "empathy"
rule = { type = "check" }
"""


class TicketData(Schema):
    minutes = fields.Integer()
    reply = fields.String()
    resolved = fields.Boolean()


class QaPlugin:
    """A plugin ``qa`` shipping two standards from a package made for the tests."""

    def __init__(self, package: str):
        self.package = package

    @hookimpl
    def register_record_kinds(self):
        return [RecordKind(name="qa.ticket", schema=TicketData, statuses=("open", "closed"))]

    @hookimpl
    def register_standards(self):
        return [(self.package, "standards")]


@pytest.fixture(scope="session")
def qa_package(tmp_path_factory):
    """A package ``h1_qa_standards`` holding the qa plugin's standard files."""
    root = tmp_path_factory.mktemp("qa_pkg")
    folder = root / "h1_qa_standards" / "standards"
    folder.mkdir(parents=True)
    (root / "h1_qa_standards" / "__init__.py").write_text('"""Standards of the qa test plugin."""\n')
    (folder / "qa.tickets.toml").write_text(QA_TICKETS, encoding="utf-8")
    (folder / "qa.complaints.toml").write_text(QA_COMPLAINTS, encoding="utf-8")
    sys.path.insert(0, str(root))
    yield "h1_qa_standards"
    sys.path.remove(str(root))


@pytest.fixture
def app_config(app_config, qa_package):
    app_config["EXTRA_PLUGINS"] = [("sample", sample), ("qa", QaPlugin(qa_package))]
    return app_config


API = "/api/v1/standards"


def codes(response, *, core: bool = False) -> list[str]:
    """The codes of a list response; core's own standards (shipped by other parts of
    servq, seen by every tenant) left out unless ``core``."""
    assert response.status_code == 200, response.json
    return [entry["code"] for entry in response.json
            if core or not entry["code"].startswith("core.")]


def versions_in_db(tenant, code) -> list[int]:
    with tenant.session() as s:
        return sorted(s.scalars(select(StandardVersion.version).where(StandardVersion.code == code)))


def _nested(depth: int):
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def override(api, code, overrides, note=None):
    etag = api.get(f"{API}/{code}").headers["ETag"]
    body = {"overrides": overrides}
    if note:
        body["note"] = note
    return api.put(f"{API}/{code}", json=body, etag=etag)


CUSTOM = {
    "title": {"en": "Front desk", "zh": "前台"},
    "applies_to": ["observation"],
    "method": "deduction",
    "pass_mark": 70,
    "items": [{"code": "late", "title": {"en": "Late", "zh": "迟到"},
               "dimension": "reliability", "rule": {"type": "deduction", "points": 10, "cap": 30}}],
}


# -- the catalogue ------------------------------------------------------------------------


def test_list_shows_shipped_standards_of_enabled_plugins_and_adopts_them(acme, globex):
    acme.enable("qa")
    acme.enable("sample")
    r = acme.api.get(API)
    assert codes(r) == ["qa.complaints", "qa.tickets", "sample.note_quality"]
    tickets = {entry["code"]: entry for entry in r.json}["qa.tickets"]
    assert tickets == {
        "code": "qa.tickets", "title": "Ticket handling",
        "titles": {"en": "Ticket handling", "zh": "工单处理"}, "version": 1,
        "applies_to": ["qa.ticket"], "source": "shipped", "plugin": "qa",
        "baseline": "qa:qa.tickets@2", "item_count": 3, "updated_at": tickets["updated_at"],
    }
    assert r.headers["X-Pagination"]
    # Listing adopted them: each is the tenant's version 1, audited, once.
    assert versions_in_db(acme, "qa.tickets") == [1]
    acme.api.get(API)
    assert versions_in_db(acme, "qa.tickets") == [1]
    with acme.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.entity == "standard_versions", AuditEvent.action == "adopted")) \
            == len(codes(r, core=True))
    # globex enabled nothing: the plugins' standards are not there for it.
    assert codes(globex.api.get(API)) == []
    assert globex.api.get(f"{API}/qa.tickets").status_code == 404
    assert globex.api.get(f"{API}/sample.note_quality/versions").status_code == 404
    assert versions_in_db(globex, "qa.tickets") == []


def test_list_paginates_and_filters_by_source(acme):
    acme.enable("qa")
    acme.enable("sample")
    assert acme.api.put(f"{API}/acme.front_desk", json={"document": CUSTOM}).status_code == 201
    every = codes(acme.api.get(API), core=True)
    assert ["acme.front_desk", "qa.complaints", "qa.tickets", "sample.note_quality"] == \
        [code for code in every if not code.startswith("core.")] and every == sorted(every)
    r = acme.api.get(f"{API}?page_size=2")
    assert codes(r, core=True) == every[:2]
    assert f'"total": {len(every)}' in r.headers["X-Pagination"]
    assert codes(acme.api.get(f"{API}?page=2&page_size=2"), core=True) == every[2:4]
    assert codes(acme.api.get(f"{API}?source=custom")) == ["acme.front_desk"]
    assert codes(acme.api.get(f"{API}?source=shipped")) == ["qa.complaints", "qa.tickets",
                                                             "sample.note_quality"]
    assert acme.api.get(f"{API}?source=other").status_code == 422


def test_get_shows_the_version_in_force_with_both_languages(acme):
    acme.enable("qa")
    r = acme.api.get(f"{API}/qa.tickets")
    assert r.status_code == 200 and r.headers["ETag"]
    body = r.json
    assert body["version"] == 1 and body["in_force"] is True and body["shipped_version"] == 2
    assert body["method"] == "weighted" and body["pass_mark"] == 80.0
    assert body["overrides"] == {} and body["note"] == "adopted qa:qa.tickets@2"
    minutes = body["items"][0]
    assert minutes["code"] == "minutes" and minutes["title"] == "Answered quickly"
    assert minutes["titles"] == {"en": "Answered quickly", "zh": "快速响应"}
    assert minutes["rule"] == {"type": "measure", "max": 240.0, "unit": "min"}
    assert body["items"][2]["critical"] is True and body["items"][2]["fix_within"] == "1d"
    assert body["grades"][0] == {"grade": "A", "min": 90.0, "title": "Excellent",
                                 "titles": {"en": "Excellent", "zh": "优秀"}}
    assert body["document"]["code"] == "qa.tickets" and body["document"]["version"] == 1
    assert "Accept-Language" in r.headers["Vary"]


@pytest.mark.parametrize("header, expected", [
    ("zh", "工单处理"), ("zh-CN,zh;q=0.9,en;q=0.8", "工单处理"), ("en-US", "Ticket handling"),
    ("fr, zh-TW;q=0.5", "工单处理"), ("en;q=0.4, zh;q=0.8", "工单处理"),
])
def test_titles_follow_accept_language(acme, header, expected):
    acme.enable("qa")
    r = acme.api.get(f"{API}/qa.tickets", headers={"Accept-Language": header})
    assert r.json["title"] == expected
    assert r.headers["Content-Language"] == ("zh" if expected == "工单处理" else "en")
    assert r.json["titles"] == {"en": "Ticket handling", "zh": "工单处理"}
    listed = acme.api.get(API, headers={"Accept-Language": header}).json
    assert {e["code"]: e["title"] for e in listed}["qa.tickets"] == expected


def test_titles_default_to_the_tenant_locale(acme):
    acme.enable("qa")
    with acme.session() as s:
        s.get(Tenant, acme.id).locale = "zh-CN"
        s.commit()
    body = acme.api.get(f"{API}/qa.tickets").json
    assert body["title"] == "工单处理" and body["items"][0]["title"] == "快速响应"
    assert acme.api.get(f"{API}/qa.tickets", headers={"Accept-Language": "fr"}).json["title"] == "工单处理"
    assert acme.api.get(f"{API}/qa.tickets", headers={"Accept-Language": "en"}).json["title"] == "Ticket handling"


def test_unknown_standard_is_404(acme):
    for url in (f"{API}/nope", f"{API}/nope/versions", f"{API}/nope/versions/1", f"{API}/nope/diff",
                f"{API}/nope/rescores"):
        assert acme.api.get(url).status_code == 404, url


# -- overrides ----------------------------------------------------------------------------


def test_override_one_target_makes_a_new_version_and_the_diff_shows_exactly_it(acme):
    acme.enable("qa")
    r = override(acme.api, "qa.complaints", {"items": {"response": {"rule": {"limit": "2h"}}}},
                 note="stricter after the audit")
    assert r.status_code == 200, r.json
    assert r.json["version"] == 2 and r.json["in_force"] is True
    assert r.json["items"][0]["rule"]["limit"] == "2h"
    assert r.json["overrides"] == {"items": {"response": {"rule": {"limit": "2h"}}}}
    assert r.json["baseline"] == "qa:qa.complaints@1" and r.json["note"] == "stricter after the audit"
    assert r.headers["ETag"] == acme.api.get(f"{API}/qa.complaints").headers["ETag"]

    current = acme.api.get(f"{API}/qa.complaints").json
    assert current["version"] == 2 and current["items"][0]["rule"]["limit"] == "2h"
    versions = acme.api.get(f"{API}/qa.complaints/versions")
    assert versions.status_code == 200 and versions.headers["X-Pagination"]
    assert [(v["version"], v["in_force"]) for v in versions.json] == [(2, True), (1, False)]
    first = acme.api.get(f"{API}/qa.complaints/versions/1").json
    assert first["in_force"] is False and first["items"][0]["rule"]["limit"] == "4h"
    for missing in ("3", "0", "-1", "two", "99999999999"):
        assert acme.api.get(f"{API}/qa.complaints/versions/{missing}").status_code == 404

    diff = acme.api.get(f"{API}/qa.complaints/diff").json
    assert diff == {"code": "qa.complaints", "version": 2, "baseline": "qa:qa.complaints@1",
                    "changes": [{"path": "items.response.rule.limit", "baseline": "4h", "tenant": "2h"}]}
    assert acme.api.get(f"{API}/qa.complaints/diff?version=1").json["changes"] == []
    assert acme.api.get(f"{API}/qa.complaints/diff?version=9").status_code == 404
    # The list shows the version in force.
    assert {e["code"]: e["version"] for e in acme.api.get(API).json}["qa.complaints"] == 2
    with acme.session() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.entity == "standard_versions",
                                                  AuditEvent.action == "changed"))
        assert event.changes["version"] == [None, 2]
        assert event.changes["overrides"][1] == {"items": {"response": {"rule": {"limit": "2h"}}}}


def test_overrides_of_weights_marks_grades_flags_and_items(acme):
    acme.enable("qa")
    overrides = {
        "pass_mark": 90,
        "grades": [{"grade": "pass", "min": 90}, {"grade": "fail", "min": 0}],
        "items": {
            "minutes": {"weight": 5, "rule": {"max": 120}},
            "courtesy": {"critical": True, "rule": {"forbidden": ["不知道", "问别人去"]}},
            "resolved": None,
            "greeting": {"title": {"en": "Greets", "zh": "问候"}, "dimension": "assurance",
                         "rule": {"type": "phrases", "field": "reply", "required": ["您好"]}},
        },
    }
    r = override(acme.api, "qa.tickets", overrides)
    assert r.status_code == 200, r.json
    items = {item["code"]: item for item in r.json["items"]}
    assert list(items) == ["minutes", "courtesy", "greeting"]
    assert items["minutes"]["weight"] == 5.0 and items["minutes"]["rule"]["max"] == 120.0
    assert items["courtesy"]["critical"] is True
    changes = {c["path"]: (c["baseline"], c["tenant"])
               for c in acme.api.get(f"{API}/qa.tickets/diff").json["changes"]}
    assert changes["pass_mark"] == (80.0, 90.0)
    assert changes["items.minutes.weight"] == (3.0, 5.0)
    assert changes["items.minutes.rule.max"] == (240.0, 120.0)
    assert changes["items.courtesy.critical"] == (False, True)
    assert changes["items.courtesy.rule.forbidden"] == (["不知道"], ["不知道", "问别人去"])
    assert changes["items.resolved"][1] is None and changes["items.resolved"][0]["code"] == "resolved"
    assert changes["items.greeting"][0] is None and changes["items.greeting"][1]["rule"]["required"] == ["您好"]
    assert "grades" in changes and len(changes) == 8

    # The overrides replace the previous ones: sending {} goes back to the baseline.
    r = override(acme.api, "qa.tickets", {})
    assert r.status_code == 200 and r.json["version"] == 3
    assert acme.api.get(f"{API}/qa.tickets/diff").json["changes"] == []
    # The same overrides again store nothing.
    r = override(acme.api, "qa.tickets", {})
    assert r.status_code == 200 and r.json["version"] == 3
    assert versions_in_db(acme, "qa.tickets") == [1, 2, 3]


def test_a_rule_naming_its_type_is_replaced_whole(acme):
    acme.enable("qa")
    r = override(acme.api, "qa.tickets",
                 {"items": {"minutes": {"rule": {"type": "measure", "target": 60, "tolerance": 30}}}})
    assert r.status_code == 200, r.json
    assert r.json["items"][0]["rule"] == {"type": "measure", "target": 60.0, "tolerance": 30.0}
    # Merged instead, min/max and target clash: a 422 naming the item's rule.
    r = override(acme.api, "qa.tickets", {"items": {"minutes": {"rule": {"target": 60}}}})
    assert r.status_code == 422
    assert "overrides.items.minutes.rule" in r.json["errors"]["json"]


@pytest.mark.parametrize("overrides, path", [
    ({"items": {"response": {"rule": {"limit": "soon"}}}}, "overrides.items.response.rule.limit"),
    ({"items": {"response": {"weight": -1}}}, "overrides.items.response.weight"),
    ({"items": {"response": {"dimension": "speed"}}}, "overrides.items.response.dimension"),
    ({"items": {"response": {"colour": "red"}}}, "overrides.items.response.colour"),
    ({"items": {"ghost": None}}, "overrides.items.ghost"),
    ({"items": {"extra": {"weight": 1}}}, "overrides.items.extra.title"),
    ({"items": {"response": {"rule": {"type": "nope"}}}}, "overrides.items.response.rule.type"),
    ({"items": {"response": {"code": "other"}}}, "overrides.items.response.code"),
    ({"items": ["response"]}, "overrides.items"),
    ({"pass_mark": 120}, "overrides.pass_mark"),
    ({"version": 7}, "overrides.version"),
    ({"code": "qa.other"}, "overrides.code"),
    ({"colour": "red"}, "overrides.colour"),
    ({"remove_items": ["ghost"]}, "overrides.remove_items"),
    ({"items": {"response": {"rule": {"limit": _nested(40)}}}}, "overrides"),
    ({"grades": [{"grade": "A", "min": 50}, {"grade": "B", "min": 50}]}, "overrides.grades"),
])
def test_invalid_override_is_422_naming_the_path_and_stores_nothing(acme, overrides, path):
    acme.enable("qa")
    etag = acme.api.get(f"{API}/qa.complaints").headers["ETag"]
    r = acme.api.put(f"{API}/qa.complaints", json={"overrides": overrides}, etag=etag)
    assert r.status_code == 422, r.json
    assert path in r.json["errors"]["json"], r.json
    assert versions_in_db(acme, "qa.complaints") == [1]
    assert acme.api.get(f"{API}/qa.complaints").headers["ETag"] == etag


def test_remove_items_removes_and_removing_everything_is_refused(acme):
    acme.enable("qa")
    r = override(acme.api, "qa.complaints", {"remove_items": ["apology"]})
    assert r.status_code == 200 and [i["code"] for i in r.json["items"]] == ["response"]
    r = override(acme.api, "qa.complaints", {"remove_items": ["apology", "response"]})
    assert r.status_code == 422 and "overrides.items" in r.json["errors"]["json"]


def test_put_needs_a_current_if_match(acme):
    acme.enable("qa")
    url = f"{API}/qa.complaints"
    old = acme.api.get(url).headers["ETag"]
    body = {"overrides": {"pass_mark": 90}}
    r = acme.api.put(url, json=body)
    assert r.status_code == 428
    assert acme.api.put(url, json=body, etag=old).status_code == 200
    r = acme.api.put(url, json={"overrides": {"pass_mark": 95}}, etag=old)
    assert r.status_code == 412 and "version 2" in r.json["message"]
    assert versions_in_db(acme, "qa.complaints") == [1, 2]
    assert acme.api.put(url, json={"pass_mark": 1}, etag=old).status_code == 422
    assert acme.api.put(url, json={"overrides": {}, "document": {}}, etag=old).status_code == 422


def test_a_shipped_standard_takes_overrides_not_a_document(acme):
    acme.enable("qa")
    etag = acme.api.get(f"{API}/qa.complaints").headers["ETag"]
    r = acme.api.put(f"{API}/qa.complaints", json={"document": CUSTOM}, etag=etag)
    assert r.status_code == 422 and "document" in r.json["errors"]["json"]


def test_viewer_reads_but_cannot_change(acme):
    acme.enable("qa")
    viewer = acme.as_role("viewer")
    assert viewer.get(API).status_code == 200
    r = viewer.get(f"{API}/qa.complaints")
    assert r.status_code == 200
    assert viewer.put(f"{API}/qa.complaints", json={"overrides": {"pass_mark": 90}},
                      etag=r.headers["ETag"]).status_code == 403
    assert viewer.put(f"{API}/acme.mine", json={"document": CUSTOM}).status_code == 403
    agent = acme.as_role("agent")
    assert agent.put(f"{API}/qa.complaints", json={"overrides": {"pass_mark": 90}},
                     etag=r.headers["ETag"]).status_code == 403
    assert versions_in_db(acme, "qa.complaints") == [1]
    assert versions_in_db(acme, "acme.mine") == []


# -- standards of the tenant's own -----------------------------------------------------------


@pytest.mark.cross_tenant("GET /api/v1/standards/<code>",
                          "PUT /api/v1/standards/<code>",
                          "GET /api/v1/standards/<code>/versions",
                          "GET /api/v1/standards/<code>/versions/<version>",
                          "GET /api/v1/standards/<code>/diff",
                          "GET /api/v1/standards/<code>/rescores",
                          "GET /api/v1/standards")
def test_a_tenant_defines_and_changes_its_own_standard(acme, globex):
    r = acme.api.put(f"{API}/acme.front_desk", json={"document": CUSTOM, "note": "ours"})
    assert r.status_code == 201, r.json
    assert r.json["source"] == "custom" and r.json["baseline"] is None and r.json["version"] == 1
    assert r.json["plugin"] is None and r.json["shipped_version"] is None
    etag = r.headers["ETag"]
    assert r.headers["Location"] == f"http://localhost{API}/acme.front_desk"
    assert acme.api.get(f"{API}/acme.front_desk").headers["ETag"] == etag
    # Changing it needs If-Match, and a whole document.
    changed = {**CUSTOM, "pass_mark": 80}
    assert acme.api.put(f"{API}/acme.front_desk", json={"document": changed}).status_code == 428
    r = acme.api.put(f"{API}/acme.front_desk", json={"overrides": {"pass_mark": 80}}, etag=etag)
    assert r.status_code == 422 and "overrides" in r.json["errors"]["json"]
    r = acme.api.put(f"{API}/acme.front_desk", json={"document": changed}, etag=etag)
    assert r.status_code == 200 and r.json["version"] == 2 and r.json["pass_mark"] == 80.0
    diff = acme.api.get(f"{API}/acme.front_desk/diff").json
    assert diff == {"code": "acme.front_desk", "version": 2, "baseline": None, "changes": []}

    # globex sees none of it, and its own standard of the same code is its own.
    for url in (f"{API}/acme.front_desk", f"{API}/acme.front_desk/versions",
                f"{API}/acme.front_desk/versions/1", f"{API}/acme.front_desk/diff",
                f"{API}/acme.front_desk/rescores"):
        assert globex.api.get(url).status_code == 404, url
    assert codes(globex.api.get(API)) == []
    r = globex.api.put(f"{API}/acme.front_desk", json={"document": changed}, etag=etag)
    assert r.status_code == 412
    assert versions_in_db(acme, "acme.front_desk") == [1, 2]
    assert versions_in_db(globex, "acme.front_desk") == []


@pytest.mark.parametrize("code, document, path", [
    ("core.mine", CUSTOM, "code"),
    ("qa.mine", CUSTOM, "code"),
    ("sample.mine", CUSTOM, "code"),
    ("acme.x", {**CUSTOM, "code": "acme.y"}, "document.code"),
    ("acme.x", {**CUSTOM, "method": "median"}, "document.method"),
    ("acme.x", {k: v for k, v in CUSTOM.items() if k != "items"}, "document.items"),
    ("acme.x", {**CUSTOM, "items": [{**CUSTOM["items"][0], "rule": {"type": "deduction"}}]},
     "document.items.late.rule.points"),
])
def test_invalid_standard_of_ones_own_is_422(acme, code, document, path):
    r = acme.api.put(f"{API}/{code}", json={"document": document})
    assert r.status_code == 422, r.json
    assert path in r.json["errors"]["json"], r.json
    assert versions_in_db(acme, code) == []


def test_if_match_on_a_new_standard_is_412(acme):
    r = acme.api.put(f"{API}/acme.new", json={"document": CUSTOM}, etag='"abc"')
    assert r.status_code == 412
    assert versions_in_db(acme, "acme.new") == []


def test_plugin_standards_are_invisible_without_the_plugin(acme):
    # acme has not enabled sample: nothing of its standard, and its code is not free.
    assert acme.api.get(f"{API}/sample.note_quality").status_code == 404
    r = acme.api.put(f"{API}/sample.note_quality", json={"overrides": {"pass_mark": 1}}, etag='"x"')
    assert r.status_code == 404
    r = acme.api.put(f"{API}/sample.note_quality", json={"document": CUSTOM})
    assert r.status_code == 404
    assert versions_in_db(acme, "sample.note_quality") == []
    # Enabled, then disabled again: hidden, though its versions are kept.
    acme.enable("sample")
    assert acme.api.get(f"{API}/sample.note_quality").status_code == 200
    with acme.session() as s:
        from servq.core.models import TenantPlugin

        s.scalar(select(TenantPlugin).where(TenantPlugin.plugin_id == "sample")).active = False
        s.commit()
    assert "sample.note_quality" not in codes(acme.api.get(API))
    assert acme.api.get(f"{API}/sample.note_quality").status_code == 404
    assert acme.api.put(f"{API}/sample.note_quality", json={"document": CUSTOM}).status_code == 404
    assert versions_in_db(acme, "sample.note_quality") == [1]


# -- the lookups of the quality engine ------------------------------------------------------


def test_standards_for_kind_adopts_and_is_cached(app, acme):
    acme.enable("qa")
    engine = app.extensions["servq.engine"]
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        # Transaction starts (SQLite's BEGIN, PostgreSQL's RLS context) are not queries.
        if statement != "BEGIN" and "set_config('servq.tenant_id'" not in statement \
                and not statement.startswith("SET LOCAL servq.tenant_id"):  # on Citus
            statements.append(statement)

    with app.app_context(), acme.session() as s:
        found = standards_for_kind(s, "qa.ticket")
        assert [(v.code, v.version) for v, _ in found] == [("qa.tickets", 1)]
        assert found[0][1].standard.code == "qa.tickets" and found[0][1].standard.version == 1
        assert standards_for_kind(s, "observation") == []
        s.commit()
    assert versions_in_db(acme, "qa.tickets") == [1]

    with app.app_context(), acme.session() as s:
        (_, compiled), = standards_for_kind(s, "qa.ticket")  # warms the cache
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert standards_for_kind(s, "observation") == []
            (_, again), = standards_for_kind(s, "qa.ticket")
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert statements == [] and again is compiled

    # A new session that knows the revision (token authentication puts it in
    # session.info) asks nothing for a kind without standards, and only for the
    # tenant's plugins (once per session) for a kind with a plugin's standard.
    with app.app_context(), acme.session() as s:
        s.info["standards_revision"] = s.scalar(
            select(Tenant.standards_revision).where(Tenant.id == acme.id))
        s.commit()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert standards_for_kind(s, "observation") == []
            assert statements == []
            (_, third), = standards_for_kind(s, "qa.ticket")
            standards_for_kind(s, "qa.ticket")
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert third is compiled
    assert len(statements) == 1 and "tenant_plugins" in statements[0]


def test_a_new_version_is_seen_at_once(app, acme):
    acme.enable("qa")
    with app.app_context(), acme.session() as s:
        assert standard_in_force(s, "qa.tickets")[0].version == 1
        s.commit()
    assert override(acme.api, "qa.tickets", {"pass_mark": 50}).status_code == 200
    with app.app_context(), acme.session() as s:
        version, compiled = standard_in_force(s, "qa.tickets")
        assert version.version == 2 and compiled.standard.pass_mark == 50
        assert standard_version(s, "qa.tickets", 1)[1].standard.pass_mark == 80
        assert standard_version(s, "qa.tickets", 3) is None
        assert standard_in_force(s, "nope") is None
        assert standard_in_force(s, "sample.note_quality") is None  # not enabled


def test_adoption_is_race_safe(app, acme):
    """Two sessions that both believe the standard is not adopted both succeed."""
    acme.enable("qa")
    with app.app_context():
        first, second = acme.session(), acme.session()
        try:
            assert "qa.tickets" not in tenant_state(first).in_force
            assert "qa.tickets" not in tenant_state(second).in_force
            second.commit()  # SQLite: a reader may not write after another writer committed
            assert standard_in_force(first, "qa.tickets")[0].version == 1
            first.commit()
            # second still believes revision 0, whose cached state says "not adopted":
            # its INSERT finds the row and does nothing, and it reads the stored version.
            second.info["standards_revision"] = 0
            assert standard_in_force(second, "qa.tickets")[0].version == 1
            second.commit()
        finally:
            first.close()
            second.close()
    assert versions_in_db(acme, "qa.tickets") == [1]


@pytest.mark.postgres
def test_concurrent_adoptions_on_postgres(app, acme):
    acme.enable("qa")
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def adopt():
        try:
            with app.app_context(), acme.session() as s:
                barrier.wait()
                standards_for_kind(s, "qa.ticket")
                s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=adopt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert versions_in_db(acme, "qa.tickets") == [1]


# -- the plugin contract ------------------------------------------------------------------


def test_hook_register_standards(app, acme, globex):
    """``register_standards``: the sample plugin's file is loaded with the app's rules,
    adopted by tenants that enable the plugin, and invisible to the others."""
    shipped = shipped_standards(app)["sample.note_quality"]
    assert shipped.plugin == "sample" and shipped.baseline == "sample:sample.note_quality@1"
    assert shipped.source == "tests:sample_standards/sample.note_quality.toml"
    assert [item.code for item in shipped.standard.items] == ["reviewed", "priority_even", "polite"]
    acme.enable("sample")
    r = acme.api.get(f"{API}/sample.note_quality", headers={"Accept-Language": "zh"})
    assert r.status_code == 200 and r.json["title"] == "备注质量"
    assert r.json["plugin"] == "sample" and r.json["applies_to"] == ["sample.note"]
    assert globex.api.get(f"{API}/sample.note_quality").status_code == 404
    assert "sample.note_quality" not in codes(globex.api.get(API))


def test_hook_register_rule_types(app, acme):
    """``register_rule_types``: ``sample.even`` joins core's rules and scores in the
    sample standard; a tenant override may use it too."""
    registry = rule_registry(app)
    assert {"check", "measure", "deadline", "deduction", "phrases", "sample.even"} <= set(registry)
    assert registry["sample.even"] is sample.EVEN
    acme.enable("sample")
    with app.app_context(), acme.session() as s:
        (version, compiled), = standards_for_kind(s, "sample.note")
        s.commit()
    from servq.core.scoring import evaluate
    from servq.core.db import utcnow

    even = evaluate(compiled, {"priority": 2, "reviewed": True, "text": "ok"}, utcnow())
    odd = evaluate(compiled, {"priority": 3, "reviewed": True, "text": "ok"}, utcnow())
    assert even.item("priority_even").outcome is Outcome.PASS
    assert odd.item("priority_even").outcome is Outcome.FAIL
    assert even.percent == 100.0 and odd.percent == 80.0
    r = override(acme.api, "sample.note_quality",
                 {"items": {"reviewed": {"rule": {"type": "sample.even", "field": "priority"}}}})
    assert r.status_code == 200 and r.json["items"][0]["rule"] == {"type": "sample.even", "field": "priority"}


def _bad_plugin(**hooks):
    return type("Bad", (), {name: staticmethod(hookimpl(fn)) for name, fn in hooks.items()})()


def _even():
    return RuleType("bad.even", sample.EvenParams, sample.compile_even)


@pytest.mark.parametrize("plugin, message", [
    (_bad_plugin(register_rule_types=lambda: [RuleType("even", sample.EvenParams, sample.compile_even)]),
     "named 'bad.<name>'"),
    (_bad_plugin(register_rule_types=lambda: [RuleType("check", sample.EvenParams, sample.compile_even)]),
     "named 'bad.<name>'"),
    (_bad_plugin(register_rule_types=lambda: [_even(), _even()]), "registered twice"),
    (_bad_plugin(register_rule_types=lambda: ["bad.even"]), "RuleType"),
    (_bad_plugin(register_standards=lambda: [("h1_qa_standards", "standards")]), "start with 'bad.'"),
    (_bad_plugin(register_standards=lambda: [("tests", "no_such_folder")]), "cannot be read"),
    (_bad_plugin(register_standards=lambda: ["tests"]), "(package, folder)"),
])
def test_a_plugin_breaking_the_contract_stops_the_app(app_config, plugin, message):
    config = {**app_config, "EXTRA_PLUGINS": [("bad", plugin)]}
    with pytest.raises(PluginError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create_app(config)


def test_a_broken_shipped_file_stops_the_app(app_config, tmp_path, monkeypatch):
    folder = tmp_path / "h1_broken_standards" / "standards"
    folder.mkdir(parents=True)
    (folder.parent / "__init__.py").write_text("")
    (folder / "bad.x.toml").write_text(textwrap.dedent("""
        code = "bad.x"
        version = 1
        title = { en = "X", zh = "X" }
        applies_to = ["observation"]
        method = "weighted"
        pass_mark = 80
        [[items]]
        code = "a"
        title = { en = "A", zh = "A" }
        dimension = "reliability"
        rule = { type = "sample.even" }
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    plugin = _bad_plugin(register_standards=lambda: [("h1_broken_standards", "standards")])
    with pytest.raises(PluginError, match="unknown rule type 'sample.even'"):
        create_app({**app_config, "EXTRA_PLUGINS": [("bad", plugin)]})
    # With the plugin that brings the rule type, the same file loads.
    app = create_app({**app_config, "EXTRA_PLUGINS": [("sample", sample), ("bad", plugin)]})
    try:
        assert "bad.x" in shipped_standards(app)
    finally:
        app.extensions["servq.engine"].dispose()


def test_core_plugins_ship_standards_every_tenant_sees(app_config, tmp_path, monkeypatch, factory):
    folder = tmp_path / "h1_core_standards" / "standards"
    folder.mkdir(parents=True)
    (folder.parent / "__init__.py").write_text("")
    (folder / "core.observations.toml").write_text(textwrap.dedent("""
        code = "core.observations"
        version = 1
        title = { en = "Observations", zh = "观察" }
        applies_to = ["observation"]
        method = "deduction"
        pass_mark = 60
        [[items]]
        code = "severity"
        title = { en = "Findings", zh = "发现" }
        dimension = "reliability"
        rule = { type = "deduction", field = "findings", points = 10 }
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    core_plugin = _bad_plugin(register_standards=lambda: [("h1_core_standards", "standards")])
    app = create_app({**app_config, "EXTRA_PLUGINS": [("core.h1_test", core_plugin)]})
    try:
        from tests.factories import Factory

        tenant = Factory(app, app.test_client()).tenant("initech")
        listed = {entry["code"]: entry for entry in tenant.api.get(API).json}
        assert listed["core.observations"]["plugin"] == "core.h1_test"
        assert listed["core.observations"]["baseline"] == "core.h1_test:core.observations@1"
    finally:
        app.extensions["servq.engine"].dispose()


def test_version_writes_bump_the_revision(acme):
    acme.enable("qa")

    def revision():
        with acme.session() as s:
            return s.scalar(select(Tenant.standards_revision).where(Tenant.id == acme.id))

    assert revision() == 0
    adopted = len(codes(acme.api.get(API), core=True))
    assert revision() == adopted  # one per adoption
    override(acme.api, "qa.tickets", {"pass_mark": 70})
    assert revision() == adopted + 1
    override(acme.api, "qa.tickets", {"pass_mark": 70})  # unchanged: nothing stored
    assert revision() == adopted + 1



# -- manifests ----------------------------------------------------------------------------

MANIFEST = '''
slug = "initech"
name = "Initech"

[plugins.qa]

[[admins]]
email = "boss@initech.test"
role = "owner"

[standards."qa.complaints"]
note = "our complaint policy"
pass_mark = 85
remove_items = ["apology"]

[standards."qa.complaints".items.response.rule]
limit = "2h"

[standards."qa.complaints".items.callback]
title = { en = "Called back", zh = "回电" }
dimension = "empathy"
rule = { type = "check" }

[standards."initech.desk"]
title = { en = "Desk", zh = "前台" }
applies_to = ["observation"]
method = "weighted"
pass_mark = 50
items = [{ code = "tidy", title = { en = "Tidy", zh = "整洁" }, dimension = "tangibles", rule = { type = "check" } }]
'''


def _onboard(app, text):
    from servq.tenants.manifest import parse_manifest
    from servq.tenants.onboarding import onboard

    return onboard(app, parse_manifest(text))


def test_manifest_standards_are_applied_at_onboarding_once(app):
    from servq.core.db.session import new_session
    from tests.factories import ApiClient, Factory

    report = _onboard(app, MANIFEST)
    assert report.as_dict()["counts"]["standards"] == {"created": 1, "updated": 1, "unchanged": 0}
    client = app.test_client()
    api = ApiClient(client, Factory(app, client).token(report.tenant_id, "boss@initech.test"))
    r = api.get(f"{API}/qa.complaints")
    assert r.json["version"] == 2 and r.json["note"] == "our complaint policy"
    assert [item["code"] for item in r.json["items"]] == ["response", "callback"]
    changes = {c["path"]: (c["baseline"], c["tenant"])
               for c in api.get(f"{API}/qa.complaints/diff").json["changes"]}
    assert set(changes) == {"pass_mark", "items.response.rule.limit", "items.apology",
                            "items.callback"}
    assert changes["items.response.rule.limit"] == ("4h", "2h")
    desk = api.get(f"{API}/initech.desk").json
    assert desk["source"] == "custom" and desk["version"] == 1

    # The same manifest again: no new version anywhere.
    again = _onboard(app, MANIFEST)
    assert again.as_dict()["counts"]["standards"] == {"created": 0, "updated": 0, "unchanged": 2}
    assert again.status == "unchanged"
    with new_session(app, report.tenant_id) as s:
        stored = sorted(s.execute(select(StandardVersion.code, StandardVersion.version)).all())
    # (qa.tickets was adopted when the API was first read.)
    assert [tuple(row) for row in stored if not row[0].startswith("core.")] == \
        [("initech.desk", 1), ("qa.complaints", 1), ("qa.complaints", 2), ("qa.tickets", 1)]

    # A changed manifest makes one new version.
    changed = _onboard(app, MANIFEST.replace("pass_mark = 85", "pass_mark = 88"))
    assert changed.as_dict()["counts"]["standards"] == {"created": 0, "updated": 1, "unchanged": 1}
    assert api.get(f"{API}/qa.complaints").json["version"] == 3


@pytest.mark.parametrize("section, line", [
    ('[standards."qa.complaints".items.response.rule]\nlimit = "whenever"',
     'standards."qa.complaints".items.response.rule.limit: '),
    ('[standards."qa.complaints"]\nremove_items = ["ghost"]',
     'standards."qa.complaints".remove_items: '),
    ('[standards."sample.note_quality"]\npass_mark = 1',
     'standards."sample.note_quality": This standard belongs to a plugin'),
    ('[standards."qa.mine"]\npass_mark = 1', 'standards."qa.mine".code: '),
    ('[standards."qa.complaints"]\nnote = 5', 'standards."qa.complaints".note: '),
    ('[standards."initech.x"]\npass_mark = 1', 'standards."initech.x".items: '),
])
def test_invalid_manifest_standards_fail_onboarding_and_store_nothing(app, section, line):
    from servq.core.db.session import new_session
    from servq.tenants.manifest import ManifestError

    text = MANIFEST.split('[standards."qa.complaints"]')[0] + section + "\n"
    with pytest.raises(ManifestError) as caught:
        _onboard(app, text)
    assert any(error.startswith(line) for error in caught.value.errors), caught.value.errors
    with new_session(app) as s:
        assert s.scalar(select(Tenant).where(Tenant.slug == "initech")) is None


def test_manifest_standards_must_be_tables():
    from servq.tenants.manifest import ManifestError, parse_manifest

    with pytest.raises(ManifestError) as caught:
        parse_manifest('slug = "x"\nname = "X"\nstandards = { "qa.a" = 1, "Bad Code" = {} }\n')
    assert any(e.startswith("standards.qa.a: ") for e in caught.value.errors)
    assert any(e.startswith("standards.Bad Code: ") for e in caught.value.errors)


# -- scoring with versions, and re-scoring ------------------------------------------------------


def _run_jobs(app) -> None:
    """With Redis, run what was queued (without it, jobs ran inline at commit)."""
    if app.extensions["servq.queue"] is not None:
        from servq.core.jobs import make_worker

        make_worker(app).work(burst=True)


def _ticket(api, minutes, occurred_at="2024-03-01T10:00:00+08:00"):
    r = api.post("/api/v1/records", json={
        "kind": "qa.ticket", "occurred_at": occurred_at,
        "data": {"minutes": minutes, "reply": "您好，已处理", "resolved": True}})
    assert r.status_code == 201, r.json
    return r.json["id"]


def _evaluation(api, record_id):
    r = api.get(f"/api/v1/records/{record_id}/evaluation?standard=qa.tickets")
    assert r.status_code == 200, r.json
    return r.json


def test_an_older_record_keeps_the_version_it_was_scored_with(app, acme):
    acme.enable("qa")
    old = _ticket(acme.api, 180)
    first = _evaluation(acme.api, old)
    assert first["standard_version"] == 1 and first["passed"] is True
    assert {i["code"]: i["outcome"] for i in first["items"]}["minutes"] == "pass"

    r = override(acme.api, "qa.tickets", {"items": {"minutes": {"rule": {"max": 120}}}})
    assert r.status_code == 200 and r.json["version"] == 2
    # The old record is not scored again by a new version: it keeps version 1.
    assert _evaluation(acme.api, old) == first
    # A new record is scored with the version in force.
    new = _ticket(acme.api, 180, "2024-03-02T10:00:00+08:00")
    second = _evaluation(acme.api, new)
    assert second["standard_version"] == 2 and second["passed"] is False
    assert {i["code"]: i["outcome"] for i in second["items"]}["minutes"] == "fail"


@pytest.mark.cross_tenant("POST /api/v1/standards/<code>/rescore",
                          "GET /api/v1/standards/<code>/rescores/<uuid:rescore_id>")
def test_rescore_scores_a_range_again_with_the_version_in_force(app, acme, globex):
    acme.enable("qa")
    inside = [_ticket(acme.api, 180, f"2024-03-0{day}T10:00:00+00:00") for day in (1, 2, 3)]
    outside = _ticket(acme.api, 180, "2024-04-01T10:00:00+00:00")
    assert override(acme.api, "qa.tickets",
                    {"items": {"minutes": {"rule": {"max": 120}}}}).status_code == 200

    url = f"{API}/qa.tickets/rescore"
    body = {"since": "2024-03-01T00:00:00+00:00", "until": "2024-04-01T00:00:00+00:00"}
    assert acme.as_role("viewer").post(url, json=body).status_code == 403
    assert acme.as_role("agent").post(url, json=body).status_code == 403
    assert globex.api.post(url, json=body).status_code == 404
    assert acme.api.post(url, json={"since": body["until"], "until": body["since"]}).status_code == 422
    assert acme.api.post(url, json={"since": "2024-03-01T00:00:00"}).status_code == 422
    assert acme.api.post(f"{API}/nope/rescore", json=body).status_code == 404

    r = acme.api.post(url, json=body)
    assert r.status_code == 202, r.json
    job_id = r.json["job_id"]
    assert r.json["id"] == job_id and r.json["code"] == "qa.tickets" and r.json["version"] == 2
    _run_jobs(app)
    status = acme.api.get(f"{API}/qa.tickets/rescores/{job_id}")
    assert status.status_code == 200
    assert (status.json["status"], status.json["total"], status.json["processed"]) == ("done", 3, 3)
    assert status.json["started_at"] and status.json["finished_at"] and status.json["error"] is None
    for record_id in inside:
        evaluation = _evaluation(acme.api, record_id)
        assert evaluation["standard_version"] == 2 and evaluation["passed"] is False
    assert _evaluation(acme.api, outside)["standard_version"] == 1

    listed = acme.api.get(f"{API}/qa.tickets/rescores")
    assert [job["id"] for job in listed.json] == [job_id] and listed.headers["X-Pagination"]
    assert acme.as_role("viewer").get(f"{API}/qa.tickets/rescores/{job_id}").status_code == 200
    # Another tenant sees neither the job nor the list.
    assert globex.api.get(f"{API}/qa.tickets/rescores/{job_id}").status_code == 404
    globex.enable("qa")
    assert globex.api.get(f"{API}/qa.tickets/rescores/{job_id}").status_code == 404
    assert globex.api.get(f"{API}/qa.tickets/rescores").json == []
    assert acme.api.get(f"{API}/qa.complaints/rescores/{job_id}").status_code == 404


def test_rescore_job_resumes_and_is_idempotent(app, acme, monkeypatch):
    from servq.core.db.session import new_session
    from servq.core.models import StandardRescore
    from servq.core.records import rescore as rescore_module

    acme.enable("qa")
    records = [_ticket(acme.api, 180, f"2024-03-{day:02d}T10:00:00+00:00") for day in range(1, 6)]
    assert override(acme.api, "qa.tickets", {"pass_mark": 99}).status_code == 200
    monkeypatch.setattr(rescore_module, "CHUNK", 2)
    calls = []
    import servq.core.records.evaluate

    original = servq.core.records.evaluate.evaluate_records

    def flaky(session, chunk, **kwargs):
        calls.append(len(chunk))
        if len(calls) == 2:
            raise RuntimeError("worker lost")
        return original(session, chunk, **kwargs)

    monkeypatch.setattr(servq.core.records.evaluate, "evaluate_records", flaky)
    with app.app_context(), new_session(app, acme.id) as s:
        job = StandardRescore(code="qa.tickets", since=datetime(2024, 3, 1, tzinfo=timezone.utc),
                              until=datetime(2024, 4, 1, tzinfo=timezone.utc),
                              status="queued", processed=0)
        s.add(job)
        s.commit()
        job_id = str(job.id)
    with app.app_context(), new_session(app, acme.id) as s:
        with pytest.raises(RuntimeError, match="worker lost"):
            rescore_module.rescore_standard(s, job_id)
    with app.app_context(), new_session(app, acme.id) as s:
        job = s.scalar(select(StandardRescore).where(StandardRescore.id == uuid.UUID(job_id)))
        assert (job.status, job.processed, job.total) == ("failed", 2, 5)
        assert "worker lost" in job.error
    with app.app_context(), new_session(app, acme.id) as s:  # the retry resumes
        assert rescore_module.rescore_standard(s, job_id) == "done"
    assert calls == [2, 2, 2, 1]
    with app.app_context(), new_session(app, acme.id) as s:  # a duplicate delivery: nothing
        assert rescore_module.rescore_standard(s, job_id) == "done"
        job = s.scalar(select(StandardRescore).where(StandardRescore.id == uuid.UUID(job_id)))
        assert (job.status, job.processed) == ("done", 5)
    assert calls == [2, 2, 2, 1]
    for record_id in records:
        assert _evaluation(acme.api, record_id)["standard_version"] == 2


def test_rescore_skips_records_a_rule_cannot_judge(app, acme):
    from servq.core.models import Record

    acme.enable("qa")
    good = _ticket(acme.api, 100)
    bad = _ticket(acme.api, 100, "2024-03-02T10:00:00+08:00")
    with acme.session() as s:  # data that no longer fits the rule (written around the API)
        record = s.scalar(select(Record).where(Record.id == uuid.UUID(bad)))
        record.data = {**record.data, "minutes": "a long time"}
        s.commit()
    assert override(acme.api, "qa.tickets", {"pass_mark": 95}).status_code == 200
    r = acme.api.post(f"{API}/qa.tickets/rescore",
                      json={"since": "2024-01-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"})
    assert r.status_code == 202
    _run_jobs(app)
    job = acme.api.get(f"{API}/qa.tickets/rescores/{r.json['job_id']}").json
    assert (job["status"], job["total"], job["processed"], job["skipped"]) == ("done", 2, 2, 1)
    assert _evaluation(acme.api, good)["standard_version"] == 2
    assert _evaluation(acme.api, bad)["standard_version"] == 1
