"""The after-sales ticket and core's knowledge base, through HTTP: suggestions for a new
ticket, the named articles linked on resolution, an unknown article refused, and the
``kb_linked`` bonus scored from the record's links."""

from __future__ import annotations

from datetime import datetime

import time_machine

from .helpers import RECORDS, SHANGHAI, TICKET, create, evaluation, items, patch, take

KB = "/api/v1/kb/articles"
E3 = {"code": "KB-E3", "title": {"en": "Controller shows E3 and stops the pump", "zh": "控制器报E3，水泵停机"},
      "problem": "The controller shows E3 and the pump stops", "cause": "Relay K2 burnt out",
      "solution_steps": ["Replace relay K2", "Clear E3"], "product": "WTC-200", "category": "hardware",
      "applies_to": ["aftersales.ticket"]}
SCREEN = {"code": "KB-SCREEN", "title": {"en": "Touch screen frozen", "zh": "触摸屏死机"},
          "problem": "The touch screen does not respond", "solution_steps": ["Upgrade the firmware"],
          "product": "RO-PLC-1", "category": "software", "applies_to": ["aftersales.ticket"]}


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def ok(response):
    assert response.status_code in (200, 201, 204), response.json
    return response.json if response.status_code != 204 else None


def article(client, body, publish=True):
    created = ok(client.post(KB, json=body))
    if publish:
        etag = client.get(f"{KB}/{created['id']}").headers["ETag"]
        created = ok(client.post(f"{KB}/{created['id']}/transitions", json={"action": "publish"},
                                 headers={"If-Match": etag}))
    return created


def to_in_progress(client, record_id):
    ok(take(client, record_id, "acknowledge"))
    ok(patch(client, record_id, {"diagnosis": {"nature": "hardware", "cause": "failed relay"},
                                 "plan": {"planned_at": "2026-03-11T10:00:00+08:00", "steps": "replace relay"}}))
    for action in ("diagnose", "plan", "start"):
        ok(take(client, record_id, action))


def links(client, record_id):
    return sorted(link["code"] for link in ok(client.get(f"{RECORDS}/{record_id}/kb-links")))


def test_a_new_ticket_is_told_the_articles_that_fit_its_product_and_fault(centre):
    with time_machine.travel(local(2026, 3, 9, 9, 0), tick=False):
        e3, screen = article(centre.api, E3), article(centre.api, SCREEN)
        article(centre.api, {**E3, "code": "KB-E3-DRAFT"}, publish=False)  # a draft is never suggested
        # only the fields the kind declares (kb_text) feed suggestions, never the customer
        article(centre.api, {"code": "KB-LIU", "title": {"en": "Liu Yang 13912345678"},
                             "applies_to": ["aftersales.ticket"]})
    with time_machine.travel(local(2026, 3, 10, 9, 0), tick=False):
        ticket = ok(create(centre.agent, "aftersales.ticket", TICKET))
    suggested = ok(centre.agent.get(f"{RECORDS}/{ticket['id']}/kb-suggestions"))
    assert [s["code"] for s in suggested][0] == "KB-E3"
    assert "KB-E3-DRAFT" not in [s["code"] for s in suggested]
    assert "KB-LIU" not in [s["code"] for s in suggested]
    assert suggested[0]["score"] > 3  # same product (3) and words of the fault
    events = ok(centre.agent.get("/api/v1/notifications?type=aftersales.kb_suggested"))
    assert len(events) == 1
    payload = events[0]["data"]
    assert payload["record_id"] == ticket["id"]
    assert [a["code"] for a in payload["articles"]][0] == "KB-E3"
    assert payload["articles"][0]["id"] == e3["id"]
    assert payload["articles"][0]["title"]["zh"] == "控制器报E3，水泵停机"
    assert screen["id"] not in [a["id"] for a in payload["articles"][:1]]
    # a ticket nothing fits: no event
    with time_machine.travel(local(2026, 3, 10, 10, 0), tick=False):
        other = ok(create(centre.agent, "aftersales.ticket", {**TICKET, "description": "Invoice question",
                                                              "product": {}}))
    assert ok(centre.agent.get(f"{RECORDS}/{other['id']}/kb-suggestions")) == []
    assert len(ok(centre.agent.get("/api/v1/notifications?type=aftersales.kb_suggested"))) == 1


def test_resolving_links_the_named_articles_by_code_or_id_and_scores_the_bonus_from_them(centre):
    with time_machine.travel(local(2026, 3, 9, 9, 0), tick=False):
        e3, screen = article(centre.api, E3), article(centre.api, SCREEN)
    with time_machine.travel(local(2026, 3, 10, 9, 0), tick=False):
        ticket = ok(create(centre.agent, "aftersales.ticket", TICKET))
        to_in_progress(centre.agent, ticket["id"])
        named = ok(patch(centre.agent, ticket["id"], {"kb_articles": ["KB-E3", screen["id"]],
                                                      "resolution": {"summary": "E3", "steps": "relay",
                                                                     "duration_minutes": 40}}))
        assert named["data"]["kb_articles"] == ["KB-E3", "KB-SCREEN"]  # ids stored as codes
        assert named["data"]["kb_linked"] is None and links(centre.agent, ticket["id"]) == []
    with time_machine.travel(local(2026, 3, 10, 11, 0), tick=False):
        resolved = ok(take(centre.agent, ticket["id"], "resolve"))
    assert resolved["data"]["kb_linked"] is True
    assert links(centre.agent, ticket["id"]) == ["KB-E3", "KB-SCREEN"]
    one = ok(centre.agent.get(f"{RECORDS}/{ticket['id']}/kb-links/{e3['id']}"))
    assert one["version"] == 1 and one["created_at"].startswith("2026-03-10T03:00:00")
    assert ok(centre.agent.get(f"{KB}/{e3['id']}"))["links"] == 1
    bonus = items(evaluation(centre.agent, ticket["id"], "aftersales.ticket"))["kb_linked"]
    assert bonus["outcome"] == "pass"
    with time_machine.travel(local(2026, 3, 10, 12, 0), tick=False):
        ok(patch(centre.agent, ticket["id"], {"confirmation": {"satisfied": True, "rating": 5}}))
        ok(take(centre.agent, ticket["id"], "confirm"))
        stats = ok(centre.manager.get("/api/v1/kb/stats?since=2026-03-01T00:00:00Z&until=2026-04-01T00:00:00Z"))
    kind = [k for k in stats["kinds"] if k["kind"] == "aftersales.ticket"][0]
    assert (kind["resolved"], kind["linked"], kind["link_rate"]) == (1, 1, 100.0)
    assert links(centre.agent, ticket["id"]) == ["KB-E3", "KB-SCREEN"]  # closing links nothing twice


def test_an_unknown_or_unpublished_article_is_a_422_naming_the_field_and_changes_nothing(centre):
    with time_machine.travel(local(2026, 3, 9, 9, 0), tick=False):
        e3 = article(centre.api, E3)
        article(centre.api, SCREEN, publish=False)
    with time_machine.travel(local(2026, 3, 10, 9, 0), tick=False):
        refused = create(centre.agent, "aftersales.ticket", {**TICKET, "kb_articles": ["KB-NOPE"]})
        assert refused.status_code == 422
        assert refused.json["errors"]["json"]["data"]["kb_articles"]["0"] == [
            "No knowledge-base article with code or id 'KB-NOPE' in this tenant."]
        assert "data.kb_articles" in refused.json["message"]
        assert ok(centre.agent.get(f"{RECORDS}?kind=aftersales.ticket")) == []
        ticket = ok(create(centre.agent, "aftersales.ticket", TICKET))
        to_in_progress(centre.agent, ticket["id"])
        before = centre.agent.get(f"{RECORDS}/{ticket['id']}")
        refused = patch(centre.agent, ticket["id"], {"kb_articles": ["KB-E3", "KB-SCREEN"]})
        assert refused.status_code == 422
        assert refused.json["errors"]["json"]["data"]["kb_articles"] == {
            "1": ["Article 'KB-SCREEN' is draft: only a published article is linked to a ticket."]}
        after = centre.agent.get(f"{RECORDS}/{ticket['id']}")
        assert after.headers["ETag"] == before.headers["ETag"]
        # named while published, retired before the resolution: the resolve is refused
        ok(patch(centre.agent, ticket["id"], {"kb_articles": ["KB-E3"]}))
        etag = centre.api.get(f"{KB}/{e3['id']}").headers["ETag"]
        ok(centre.api.post(f"{KB}/{e3['id']}/transitions", json={"action": "retire"}, headers={"If-Match": etag}))
        before = centre.agent.get(f"{RECORDS}/{ticket['id']}")
        refused = take(centre.agent, ticket["id"], "resolve")
        assert refused.status_code == 422, refused.json
        assert refused.json["errors"]["json"]["data"]["kb_articles"]["0"] == [
            "Article 'KB-E3' is retired: only a published article is linked to a ticket."]
        after = centre.agent.get(f"{RECORDS}/{ticket['id']}")
        assert after.json["status"] == "in_progress"
        assert after.headers["ETag"] == before.headers["ETag"]
        assert links(centre.agent, ticket["id"]) == []
        assert ok(centre.agent.get(f"{KB}/{e3['id']}"))["links"] == 0


def test_kb_linked_follows_links_made_and_removed_through_core(centre):
    with time_machine.travel(local(2026, 3, 9, 9, 0), tick=False):
        e3 = article(centre.api, E3)
    with time_machine.travel(local(2026, 3, 10, 9, 0), tick=False):
        ticket = ok(create(centre.agent, "aftersales.ticket", TICKET))
        to_in_progress(centre.agent, ticket["id"])
        resolved = ok(take(centre.agent, ticket["id"], "resolve"))
        assert resolved["data"]["kb_linked"] is None
        assert items(evaluation(centre.agent, ticket["id"], "aftersales.ticket"))["kb_linked"]["outcome"] == "na"
    with time_machine.travel(local(2026, 3, 10, 10, 0), tick=False):
        ok(centre.agent.post(f"{RECORDS}/{ticket['id']}/kb-links", json={"article_id": e3["id"]}))
    assert ok(centre.agent.get(f"{RECORDS}/{ticket['id']}"))["data"]["kb_linked"] is True
    assert items(evaluation(centre.agent, ticket["id"], "aftersales.ticket"))["kb_linked"]["outcome"] == "pass"
    with time_machine.travel(local(2026, 3, 10, 11, 0), tick=False):
        etag = centre.agent.get(f"{RECORDS}/{ticket['id']}/kb-links/{e3['id']}").headers["ETag"]
        ok(centre.agent.delete(f"{RECORDS}/{ticket['id']}/kb-links/{e3['id']}", headers={"If-Match": etag}))
    assert ok(centre.agent.get(f"{RECORDS}/{ticket['id']}"))["data"]["kb_linked"] is None
    assert items(evaluation(centre.agent, ticket["id"], "aftersales.ticket"))["kb_linked"]["outcome"] == "na"
