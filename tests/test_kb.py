"""The knowledge base through HTTP: an article's lifecycle (If-Match), versions pinned by
record links, Chinese-aware search, suggestions for a record, the review obligation told
once per lapse, and the KPIs (link rate, first-time fix with and without an article)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import time_machine
from sqlalchemy import select

from servq.core.models import AuditEvent, OutboxEvent
from tests.test_after_the_fact import run_scan

ARTICLES = "/api/v1/kb/articles"
RECORDS = "/api/v1/records"
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)

LEAK = {"code": "KB-LEAK", "title": {"zh": "卫生间漏水维修", "en": "Bathroom leak repair"},
        "problem": "卫生间地面渗水", "symptoms": "楼下天花板有水迹", "cause": "防水层老化",
        "solution_steps": ["关闭总阀", "检查管道接口", "重做防水层"],
        "product": "plumbing", "category": "leak", "applies_to": ["complaint"]}
WIFI = {"code": "KB-WIFI", "title": {"en": "Wi-Fi drops in the lobby", "zh": "大堂無線網絡斷線"},
        "problem": "Guests lose the wireless connection", "solution_steps": ["Restart the access point"],
        "product": "network", "category": "connectivity", "applies_to": []}


def create(client, body):
    r = client.post(ARTICLES, json=body)
    assert r.status_code == 201, r.json
    return r


def step(client, article_id, action):
    etag = client.get(f"{ARTICLES}/{article_id}").headers["ETag"]
    return client.post(f"{ARTICLES}/{article_id}/transitions", json={"action": action},
                       headers={"If-Match": etag})


def published(tenant, body):
    article = create(tenant.api, body).json
    r = step(tenant.api, article["id"], "publish")
    assert r.status_code == 200, r.json
    return r.json


def complaint(tenant, description, when=T0, **data):
    r = tenant.api.post(RECORDS, json={"kind": "complaint", "occurred_at": when.isoformat(),
                                       "data": {"channel": "hotline", "description": description, **data}})
    assert r.status_code == 201, r.json
    return r.json


def act(tenant, record_id, action):
    etag = tenant.api.get(f"{RECORDS}/{record_id}").headers["ETag"]
    r = tenant.api.post(f"{RECORDS}/{record_id}/transitions", json={"action": action}, headers={"If-Match": etag})
    assert r.status_code == 200, r.json


def close(tenant, record_id, reopen=False):
    for action in ("acknowledge", "investigate", "resolve", "confirm"):
        act(tenant, record_id, action)
    if reopen:
        for action in ("reopen", "resolve", "confirm"):
            act(tenant, record_id, action)


def link(tenant, record_id, article_id):
    return tenant.api.post(f"{RECORDS}/{record_id}/kb-links", json={"article_id": article_id})


def test_lifecycle_with_if_match_and_who_may(acme):
    with time_machine.travel(T0, tick=False):
        agent = acme.as_role("agent")
        r = create(agent, LEAK)
        article = r.json
        assert article["status"] == "draft" and article["version"] == 1 and article["published_version"] is None
        assert article["review_every_days"] == 90 and article["links"] == 0
        assert r.headers["Location"].endswith(f"/kb/articles/{article['id']}")
        url = f"{ARTICLES}/{article['id']}"
        # Writes need If-Match: 428 without, 412 when stale.
        assert agent.post(f"{url}/transitions", json={"action": "submit"}).status_code == 428
        assert agent.post(f"{url}/transitions", json={"action": "submit"},
                          headers={"If-Match": '"stale"'}).status_code == 412
        assert agent.patch(url, json={"cause": "x"}).status_code == 428
        # A draft is edited in place.
        r = agent.update(url, {"cause": "防水层老化开裂"})
        assert r.status_code == 200 and r.json["version"] == 1 and r.json["cause"] == "防水层老化开裂"
        assert step(agent, article["id"], "submit").json["status"] == "in_review"
        # An agent may not publish; a manager may.
        assert step(agent, article["id"], "publish").status_code == 403
        manager = acme.as_role("manager")
        assert step(manager, article["id"], "retire").status_code == 409  # not published yet
        r = step(manager, article["id"], "publish")
        assert r.status_code == 200, r.json
        assert r.json["status"] == "published" and r.json["published_version"] == 1
        assert r.json["review_due_at"] == "2026-05-31T02:00:00+00:00"
        # Editing a published article: a manager's edit is a new version.
        assert agent.update(url, {"cause": "y"}).status_code == 403
        r = manager.update(url, {"solution_steps": ["关闭总阀", "更换密封圈"]})
        assert r.status_code == 200 and r.json["version"] == 2 and r.json["published_version"] == 2
        versions = agent.get(f"{url}/versions?page_size=1")
        assert [v["version"] for v in versions.json] == [2]
        assert '"total": 2' in versions.headers["X-Pagination"]
        assert agent.get(f"{url}/versions/1").json["solution_steps"] == LEAK["solution_steps"]
        assert agent.get(f"{url}/versions/9").status_code == 404
        assert agent.get(f"{url}/versions/x").status_code == 404
        assert step(manager, article["id"], "retire").json["status"] == "retired"
        assert manager.update(url, {"cause": "z"}).status_code == 409
    with acme.session() as s:
        actions = [a for a, in s.execute(select(AuditEvent.action).where(AuditEvent.entity == "kb_articles")
                                         .order_by(AuditEvent.at))]
    assert actions == ["created", "edited", "submit", "publish", "edited", "retire"]


def test_bad_input_is_a_422_and_writes_nothing(acme):
    for body in ({**LEAK, "code": "has space"}, {**LEAK, "title": {}}, {**LEAK, "applies_to": ["Not A Kind"]},
                 {**LEAK, "review_every_days": 0}, {k: v for k, v in LEAK.items() if k != "title"}):
        assert acme.api.post(ARTICLES, json=body).status_code == 422, body
    assert acme.api.get(ARTICLES).json == []
    create(acme.api, LEAK)
    assert acme.api.post(ARTICLES, json=LEAK).status_code == 409
    article = acme.api.get(ARTICLES).json[0]
    assert step(acme.api, article["id"], "fly").status_code == 422
    assert acme.api.get(f"{ARTICLES}?q=%21%21").status_code == 422
    assert acme.api.get(f"{ARTICLES}?page_size=0").status_code == 422
    assert acme.api.get("/api/v1/kb/stats?since=2026-03-01T00:00:00Z&until=2026-02-01T00:00:00Z").status_code == 422
    record = complaint(acme, "x")
    assert acme.api.post(f"{RECORDS}/{record['id']}/kb-links", json={"article_id": "nope"}).status_code == 422
    # A draft is not linked.
    assert link(acme, record["id"], article["id"]).status_code == 409


def test_chinese_search_finds_an_article_by_a_two_character_word(acme):
    published(acme, LEAK)
    published(acme, WIFI)
    create(acme.api, {**LEAK, "code": "KB-DRAFT", "title": {"zh": "厨房漏水"}, "product": None,
                      "problem": "厨房地面渗水"})

    def codes(q, **more):
        r = acme.api.get(ARTICLES, query_string={"q": q, **more})
        assert r.status_code == 200, r.json
        return [a["code"] for a in r.json]

    assert codes("漏水") == ["KB-DRAFT", "KB-LEAK"]
    assert codes("漏水", status="published") == ["KB-LEAK"]
    assert codes("衛生間") == ["KB-LEAK"]       # traditional folds to simplified
    assert codes("防水") == ["KB-DRAFT", "KB-LEAK"]
    assert codes("无线网络") == ["KB-WIFI"]      # stored traditional, searched simplified
    assert codes("ＬＯＢＢＹ") == ["KB-WIFI"]     # full-width and case fold
    assert codes("connect") == ["KB-WIFI"]       # a word's start
    assert codes("漏电") == []
    assert codes("50%") == []
    assert codes("leak", kind="complaint") == ["KB-DRAFT", "KB-LEAK"]
    r = acme.api.get(ARTICLES, query_string={"q": "漏水", "page_size": 1})
    assert len(r.json) == 1 and '"next_page": 2' in r.headers["X-Pagination"]


def test_suggestions_for_a_record_are_ranked(acme):
    leak = published(acme, LEAK)
    wifi = published(acme, WIFI)
    other = published(acme, {**LEAK, "code": "KB-ROOF", "title": {"zh": "屋顶漏水"}, "product": "roofing",
                             "category": "leak", "problem": "屋顶渗水", "symptoms": "", "cause": "",
                             "solution_steps": ["更换瓦片"]})
    only_inspections = published(acme, {**LEAK, "code": "KB-INSP", "applies_to": ["inspection"]})
    record = complaint(acme, "住户反映卫生间漏水，楼下天花板有水迹", category="leak")
    r = acme.api.get(f"{RECORDS}/{record['id']}/kb-suggestions")
    assert r.status_code == 200, r.json
    ranked = [(a["code"], a["score"]) for a in r.json]
    assert [code for code, _ in ranked] == ["KB-LEAK", "KB-ROOF"]
    assert ranked[0][1] > ranked[1][1] > 0
    assert only_inspections["code"] not in dict(ranked) and wifi["code"] not in dict(ranked)
    page = acme.api.get(f"{RECORDS}/{record['id']}/kb-suggestions?page_size=1")
    assert [a["code"] for a in page.json] == ["KB-LEAK"] and '"total": 2' in page.headers["X-Pagination"]
    assert leak["id"] and other["id"]


def test_a_records_personal_data_never_feeds_its_suggestions(acme):
    published(acme, {**LEAK, "code": "KB-ZHANG", "title": {"en": "Zhangwei 13800000000"}, "product": None,
                     "category": None, "problem": "zhangwei", "symptoms": "", "cause": "", "solution_steps": []})
    record = complaint(acme, "lift stuck", customer={"name": "Zhangwei", "phone": "13800000000"})
    r = acme.api.get(f"{RECORDS}/{record['id']}/kb-suggestions")
    assert r.status_code == 200 and r.json == []


def test_a_kind_names_the_fields_that_feed_suggestions_as_dotted_paths():
    from marshmallow import Schema

    from servq.core.plugins import RecordKind

    kind = RecordKind(name="x.ticket", schema=Schema, kb_text=("description", "product.name"),
                      kb_product=("product.code",), kb_category=("category",))
    assert kind.kb_text == ("description", "product.name")
    for field in ("kb_text", "kb_product", "kb_category"):
        with pytest.raises(ValueError, match=field):
            RecordKind(name="x.ticket", schema=Schema, **{field: ("product name",)})


def test_links_pin_the_version_used(acme):
    with time_machine.travel(T0, tick=False):
        article = published(acme, LEAK)
        record = complaint(acme, "卫生间漏水")
        r = link(acme, record["id"], article["id"])
        assert r.status_code == 201, r.json
        assert r.json["version"] == 1 and r.json["code"] == "KB-LEAK"
        assert link(acme, record["id"], article["id"]).status_code == 409
        acme.api.update(f"{ARTICLES}/{article['id']}", {"cause": "管道破裂"})
        later = complaint(acme, "又漏水了")
        assert link(acme, later["id"], article["id"]).json["version"] == 2
        listed = acme.api.get(f"{RECORDS}/{record['id']}/kb-links")
        assert [(x["article_id"], x["version"]) for x in listed.json] == [(article["id"], 1)]
        assert "X-Pagination" in listed.headers
        assert acme.api.get(f"{ARTICLES}/{article['id']}").json["links"] == 2
        one = f"{RECORDS}/{record['id']}/kb-links/{article['id']}"
        assert acme.api.delete(one).status_code == 428
        assert acme.api.remove(one).status_code == 204
        assert acme.api.get(one).status_code == 404
        assert acme.api.get(f"{ARTICLES}/{article['id']}").json["links"] == 1
    with acme.session() as s:
        actions = sorted(a for a, in s.execute(select(AuditEvent.action).where(AuditEvent.entity == "records",
                                                                                AuditEvent.action.like("kb_%"))))
    assert actions == ["kb_linked", "kb_linked", "kb_unlinked"]


def test_an_overdue_review_is_told_to_the_owner_once_per_lapse(acme, app):
    with time_machine.travel(T0, tick=False):
        article = published(acme, {**LEAK, "review_every_days": 30})
    with time_machine.travel(datetime(2026, 3, 31, 2, 0, tzinfo=timezone.utc), tick=False):
        assert run_scan(app, acme)["kb_reviews_due"] == 0
    with time_machine.travel(datetime(2026, 4, 2, 2, 0, tzinfo=timezone.utc), tick=False):
        assert run_scan(app, acme)["kb_reviews_due"] == 1
        assert run_scan(app, acme)["kb_reviews_due"] == 0
        assert acme.api.get(f"{ARTICLES}/{article['id']}").json["review_overdue"] is True
        assert [a["code"] for a in acme.api.get(f"{ARTICLES}?stale=true").json] == ["KB-LEAK"]
        # Reviewed: the clock starts again, and the next lapse is told again.
        assert step(acme.as_role("manager"), article["id"], "review").status_code == 200
        assert acme.api.get(f"{ARTICLES}?stale=true").json == []
    with time_machine.travel(datetime(2026, 5, 3, 2, 0, tzinfo=timezone.utc), tick=False):
        assert run_scan(app, acme)["kb_reviews_due"] == 1
    with acme.session() as s:
        events = s.scalars(select(OutboxEvent).where(OutboxEvent.type == "kb.review_due")
                           .order_by(OutboxEvent.created_at)).all()
    assert len(events) == 2
    assert events[0].payload["article_id"] == article["id"]
    assert events[0].payload["owner_id"] == article["owner_id"]
    assert events[0].payload["review_due_at"].startswith("2026-04-01T02:00:00")


def test_stats_give_link_rate_first_time_fix_and_stale_articles(acme):
    with time_machine.travel(T0, tick=False):
        article = published(acme, LEAK)
        linked_first_time = complaint(acme, "a")
        linked_reopened = complaint(acme, "b")
        plain_first_time = complaint(acme, "c")
        plain_reopened = complaint(acme, "d")
        open_one = complaint(acme, "e")
        for record, reopen in ((linked_first_time, False), (linked_reopened, True),
                               (plain_first_time, False), (plain_reopened, True)):
            close(acme, record["id"], reopen=reopen)
        for record in (linked_first_time, linked_reopened, open_one):
            assert link(acme, record["id"], article["id"]).status_code == 201
    # Written from a record with no link, and from one that had a link already.
    with time_machine.travel(datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc), tick=False):
        create(acme.api, {**LEAK, "code": "KB-FROM-D", "source_record_id": plain_reopened["id"]})
        create(acme.api, {**LEAK, "code": "KB-FROM-A", "source_record_id": linked_first_time["id"]})
    with time_machine.travel(datetime(2026, 7, 1, tzinfo=timezone.utc), tick=False):
        r = acme.api.get("/api/v1/kb/stats?since=2026-03-01T00:00:00Z&until=2026-04-01T00:00:00Z")
    assert r.status_code == 200, r.json
    stats = r.json
    assert (stats["resolved"], stats["linked"], stats["link_rate"]) == (4, 2, 50.0)
    assert stats["first_time_fix"] == {
        "with_article": {"records": 2, "fixed_first_time": 1, "rate": 50.0},
        "without_article": {"records": 2, "fixed_first_time": 1, "rate": 50.0}}
    assert [k["kind"] for k in stats["kinds"]] == ["complaint"]
    assert stats["articles"] == {"created": 3, "from_records": 2, "from_records_with_no_link_before": 1,
                                 "published": 1, "stale": 1}
    assert acme.as_role("agent").get("/api/v1/kb/stats?since=2026-03-01T00:00:00Z&until=2026-04-01T00:00:00Z"
                                     ).status_code == 403


@pytest.mark.cross_tenant("GET /api/v1/kb/articles", "POST /api/v1/kb/articles",
                          "GET /api/v1/kb/articles/<uuid:article_id>",
                          "PATCH /api/v1/kb/articles/<uuid:article_id>",
                          "POST /api/v1/kb/articles/<uuid:article_id>/transitions",
                          "GET /api/v1/kb/articles/<uuid:article_id>/versions",
                          "GET /api/v1/kb/articles/<uuid:article_id>/versions/<version>",
                          "GET /api/v1/kb/stats",
                          "GET /api/v1/records/<uuid:record_id>/kb-suggestions",
                          "GET /api/v1/records/<uuid:record_id>/kb-links",
                          "POST /api/v1/records/<uuid:record_id>/kb-links",
                          "GET /api/v1/records/<uuid:record_id>/kb-links/<uuid:article_id>",
                          "DELETE /api/v1/records/<uuid:record_id>/kb-links/<uuid:article_id>")
def test_another_tenants_knowledge_base_is_invisible(acme, globex):
    with time_machine.travel(T0, tick=False):
        article = published(acme, LEAK)
        record = complaint(acme, "卫生间漏水")
        close(acme, record["id"])
        assert link(acme, record["id"], article["id"]).status_code == 201
        url = f"{ARTICLES}/{article['id']}"
        etag = acme.api.get(url).headers["ETag"]
        assert globex.api.get(ARTICLES).json == [] and globex.api.get(f"{ARTICLES}?q=漏水").json == []
        assert globex.api.get(url).status_code == 404
        assert globex.api.patch(url, json={"cause": "x"}, etag=etag).status_code == 404
        assert globex.api.post(f"{url}/transitions", json={"action": "retire"},
                               headers={"If-Match": etag}).status_code == 404
        assert globex.api.get(f"{url}/versions").status_code == 404
        assert globex.api.get(f"{url}/versions/1").status_code == 404
        # Created from another tenant's record: 404; the same code is free in globex.
        assert globex.api.post(ARTICLES, json={**LEAK, "source_record_id": record["id"]}).status_code == 404
        theirs = create(globex.api, LEAK).json
        assert theirs["id"] != article["id"]
        stats = globex.api.get("/api/v1/kb/stats?since=2026-03-01T00:00:00Z&until=2026-04-01T00:00:00Z").json
        assert stats["resolved"] == 0 and stats["articles"]["created"] == 1
        links = f"{RECORDS}/{record['id']}/kb-links"
        assert globex.api.get(f"{RECORDS}/{record['id']}/kb-suggestions").status_code == 404
        assert globex.api.get(links).status_code == 404
        assert globex.api.post(links, json={"article_id": article["id"]}).status_code == 404
        link_etag = acme.api.get(f"{links}/{article['id']}").headers["ETag"]
        assert globex.api.get(f"{links}/{article['id']}").status_code == 404
        assert globex.api.delete(f"{links}/{article['id']}", etag=link_etag).status_code == 404
        # Their record, our article: still 404.
        own = complaint(globex, "漏水")
        assert link(globex, own["id"], article["id"]).status_code == 404
    after = acme.api.get(url).json
    assert after["status"] == "published" and after["links"] == 1 and after["cause"] == LEAK["cause"]
