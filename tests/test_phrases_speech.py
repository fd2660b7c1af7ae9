"""The ``phrases`` rule on speech, through HTTP: any-of groups, speaker-scoped transcript
fields with first/last turn, placeholders filled from plugin and tenant settings, blanks,
the shipped taboo library, offsets into the original words, and the 422s of a bad rule."""

from __future__ import annotations

import pytest

from servq.core.models import Tenant
from tests import phrases_plugin

RECORDS = "/api/v1/records"
STANDARDS = "/api/v1/standards"
CODE = "acme.call_script"


@pytest.fixture
def app_config(app_config):
    app_config["EXTRA_PLUGINS"] = [("calls", phrases_plugin)]
    return app_config


def item(code, rule, weight=1):
    return {"code": code, "title": {"en": code, "zh": code}, "dimension": "assurance",
            "weight": weight, "rule": {"type": "phrases", **rule}}


AGENT = "transcript[speaker=agent]"
ITEMS = [
    item("greeting", {"field": AGENT, "turn": "first", "required": [["您好", "你好"]]}),
    item("closing", {"field": AGENT, "turn": "last", "required": ["再见"]}),
    item("hotline", {"field": AGENT, "required": ["热线<hotline>"]}),
    item("company", {"field": AGENT, "turn": "first", "required": ["我是____快递公司的"]}),
    item("taboo", {"field": AGENT, "forbidden": ["@taboo"]}),
    item("note", {"field": "note", "required": ["已回访"]}),
]


def document(items=ITEMS):
    return {"title": {"en": "Call script", "zh": "通话规范"}, "applies_to": ["calls.call"],
            "method": "weighted", "pass_mark": 80, "items": items}


def enable(tenant, configuration=None):
    r = tenant.api.put("/api/v1/plugins/calls", json={"active": True, "configuration": configuration or {}})
    assert r.status_code == 200, r.json


def put_standard(tenant, doc):
    r = tenant.api.put(f"{STANDARDS}/{CODE}", json={"document": doc})
    assert r.status_code == 201, r.json


def call(tenant, *turns, note=""):
    transcript = [{"speaker": speaker, "text": text} for speaker, text in turns]
    r = tenant.api.post(RECORDS, json={"kind": "calls.call", "occurred_at": "2026-03-02T09:00:00+08:00",
                                       "data": {"transcript": transcript, "note": note}})
    assert r.status_code == 201, r.json
    e = tenant.api.get(f"{RECORDS}/{r.json['id']}/evaluation").json
    return {i["code"]: i for i in e["items"]}, transcript


@pytest.fixture
def tenant(acme):
    enable(acme, {"hotline": "400-800-1234"})
    put_standard(acme, document())
    return acme


def test_any_of_group_met_by_either_greeting(tenant):
    items, _ = call(tenant, ("agent", "你好，我是迅达快递公司的"))
    assert items["greeting"]["outcome"] == "pass"
    entry = items["greeting"]["evidence"]["phrases"][0]
    assert entry["phrase"] == ["您好", "你好"] and entry["matches"][0]["phrase"] == "你好"
    items, _ = call(tenant, ("agent", "您好，我是迅达快递公司的"))
    assert items["greeting"]["outcome"] == "pass"
    assert items["greeting"]["evidence"]["phrases"][0]["matches"][0]["phrase"] == "您好"
    items, _ = call(tenant, ("agent", "喂，我是迅达快递公司的"))
    assert items["greeting"]["outcome"] == "fail"


def test_the_customers_words_do_not_count_for_the_agent(tenant):
    items, _ = call(tenant, ("customer", "您好，问别人去吧，再见"), ("agent", "我是迅达快递公司的，请讲"))
    assert items["greeting"]["outcome"] == "fail"       # only the customer said 您好
    assert items["closing"]["outcome"] == "fail"        # and 再见
    assert items["taboo"]["outcome"] == "pass"          # and the taboo words
    assert items["taboo"]["evidence"]["turns"] == [1]


def test_first_and_last_turn(tenant):
    turns = [("agent", "我是迅达快递公司的"), ("customer", "你好"), ("agent", "您好，再见"),
             ("agent", "请问还有别的事吗")]
    items, _ = call(tenant, *turns)
    assert items["greeting"]["outcome"] == "fail"       # 您好 came, but not on the first turn
    assert items["closing"]["outcome"] == "fail"        # 再见 came, but not on the last turn
    items, _ = call(tenant, ("agent", "您好，我是迅达快递公司的"), ("customer", "好的"), ("agent", "好的，再见！"))
    assert (items["greeting"]["outcome"], items["closing"]["outcome"]) == ("pass", "pass")
    closing = items["closing"]["evidence"]
    assert closing["turns"] == [2] and closing["phrases"][0]["matches"][0]["turn"] == 2


def test_a_placeholder_is_filled_from_the_plugin_settings(tenant):
    items, transcript = call(tenant, ("agent", "您好。如有问题请拨打热线：４００－８００－１２３４。"))
    assert items["hotline"]["outcome"] == "pass"
    match = items["hotline"]["evidence"]["phrases"][0]["matches"][0]
    assert transcript[0]["text"][match["start"]:match["end"]] == "热线：４００－８００－１２３４"
    items, _ = call(tenant, ("agent", "您好。如有问题请拨打热线400-800-9999"))
    assert items["hotline"]["outcome"] == "fail"        # another number


def test_a_placeholder_without_a_value_makes_the_item_na(acme):
    enable(acme, {})
    put_standard(acme, document())
    items, _ = call(acme, ("agent", "您好。热线400-800-1234"))
    assert items["hotline"]["outcome"] == "na"
    assert items["hotline"]["evidence"]["unfilled"] == ["hotline"]
    assert "<hotline>" in items["hotline"]["evidence"]["note"]


def test_placeholders_table_and_the_tenants_name(acme):
    enable(acme, {"placeholders": {"brand": "迅达"}})
    put_standard(acme, document([item("brand", {"field": AGENT, "required": ["<calls.brand>快递"]}),
                                 item("company", {"field": AGENT, "required": ["这里是<company>"]})]))
    with acme.session() as s:
        name = s.get(Tenant, acme.id).name
    items, _ = call(acme, ("agent", f"您好，这里是{name}，迅達快遞为您服务"))
    assert items["brand"]["outcome"] == "pass"
    assert items["brand"]["evidence"]["phrases"][0]["matched"] == ["迅達快遞"]
    assert items["company"]["outcome"] == "pass"


def test_offsets_point_to_the_original_words(tenant):
    said = "您好！我是迅達快遞公司的，請問有什麼可以幫您？再　見！"
    items, transcript = call(tenant, ("customer", "喂？"), ("agent", said))
    text = transcript[1]["text"]
    for code, words in (("greeting", "您好"), ("company", "我是迅達快遞公司的"), ("closing", "再　見")):
        match = items[code]["evidence"]["phrases"][0]["matches"][0]
        assert match["turn"] == 1
        assert text[match["start"]:match["end"]] == words, code
    # A plain text field keeps working, with offsets too.
    items, _ = call(tenant, ("agent", "您好"), note="客户：已回訪，滿意")
    match = items["note"]["evidence"]["phrases"][0]["matches"][0]
    assert (match["text"], match["start"], match["end"], match["turn"]) == ("已回訪", 3, 6, None)


def test_the_taboo_library_by_reference_names_the_kind(tenant):
    said = "您好，我是迅达快递公司的。有完沒完？你快点儿！"
    items, transcript = call(tenant, ("agent", said))
    taboo = items["taboo"]
    assert taboo["outcome"] == "fail"
    hits = {p["phrase"]: p for p in taboo["evidence"]["phrases"]}
    assert set(hits) == {"有完没完", "你快点儿"}             # only what was found is listed
    assert {p["library_kind"] for p in hits.values()} == {"impatient"}
    assert hits["有完没完"]["library"] == "taboo"
    match = hits["有完没完"]["matches"][0]
    assert said[match["start"]:match["end"]] == "有完沒完"


def test_one_kind_of_a_library(acme):
    enable(acme)
    put_standard(acme, document([item("rude", {"field": AGENT, "forbidden": ["@taboo.impolite"]})]))
    items, _ = call(acme, ("agent", "有完没完"), ("agent", "拿零钱来"))
    assert items["rude"]["outcome"] == "fail"
    assert [p["library_kind"] for p in items["rude"]["evidence"]["phrases"]] == ["impolite"]


def test_no_turn_of_the_speaker_is_na(tenant):
    items, _ = call(tenant, ("customer", "您好"))
    assert items["greeting"]["outcome"] == "na"


@pytest.mark.parametrize("rule, path, words", [
    ({"forbidden": ["@rudeness"]}, "forbidden", "no phrase library 'rudeness'"),
    ({"forbidden": ["@taboo.rude"]}, "forbidden", "has no kind 'rude'"),
    ({"field": "transcript[who=agent]", "required": ["您好"]}, "field", "[speaker=<name>]"),
    ({"required": [[]]}, "required", "empty group"),
    ({"required": ["@taboo"]}, "required", "never required"),
    ({"required": [["您好", 3]]}, "required", "phrases (texts) only"),
    ({"required": ["____"]}, "required", "nothing but"),
    ({"turn": "middle", "required": ["您好"]}, "turn", "Must be one of"),
])
def test_a_bad_rule_is_refused_with_a_clear_422(acme, rule, path, words):
    enable(acme)
    r = acme.api.put(f"{STANDARDS}/{CODE}", json={"document": document([item("bad", rule)])})
    assert r.status_code == 422, r.json
    assert words in str(r.json) and path in str(r.json)
    assert acme.api.get(f"{STANDARDS}/{CODE}").status_code == 404


def test_phrase_libraries_are_listed(tenant):
    r = tenant.api.get("/api/v1/phrase-libraries")
    assert r.status_code == 200
    taboo = next(lib for lib in r.json if lib["name"] == "taboo")
    assert set(taboo["kinds"]) == {"disrespectful", "unfriendly", "impatient", "impolite"}
    assert taboo["kinds"]["impatient"]["title"]["zh"] == "不耐烦的语言"
    assert taboo["kinds"]["impatient"]["reference"] == "@taboo.impatient"
    assert "问别人去" in taboo["kinds"]["impatient"]["phrases"]
    assert "喂" in taboo["review_only"]["phrases"]


def test_a_blank_stands_for_the_words_of_a_form(tenant):
    items, _ = call(tenant, ("agent", "您好，我是顺丰快递公司的"))
    assert items["company"]["outcome"] == "pass"
    assert items["company"]["evidence"]["phrases"][0]["matched"] == ["我是顺丰快递公司的"]
    items, _ = call(tenant, ("agent", "您好，我是快递公司的"))        # the blank left empty
    assert items["company"]["outcome"] == "fail"
    items, _ = call(tenant, ("agent", "您好，我是。迅达快递公司的"))  # not across a sentence end
    assert items["company"]["outcome"] == "fail"


def test_placeholder_values_are_read_once_per_transaction_until_the_settings_change(tenant, monkeypatch):
    """A bulk import scores chunk after chunk in one transaction: the values are read once,
    and again after a change of the plugin's settings or the tenant's name, flushed or not."""
    from sqlalchemy import select

    from servq.core.evaluation import placeholders
    from servq.core.models import TenantPlugin

    reads = []
    read = placeholders._read
    monkeypatch.setattr(placeholders, "_read", lambda session: reads.append(1) or read(session))
    with tenant.session() as s:
        assert placeholders.placeholder_values(s)["hotline"] == "400-800-1234"
        placeholders.placeholder_values(s)["hotline"] = "changed by a caller"
        assert placeholders.placeholder_values(s)["hotline"] == "400-800-1234"
        assert len(reads) == 1
        row = s.scalar(select(TenantPlugin).where(TenantPlugin.plugin_id == "calls"))
        row.configuration = {"hotline": "400-800-9999"}              # pending
        assert placeholders.placeholder_values(s)["hotline"] == "400-800-9999"
        row.configuration = {"hotline": "400-800-0000"}
        s.flush()                                                      # flushed
        assert placeholders.placeholder_values(s)["hotline"] == "400-800-0000"
        s.get(Tenant, tenant.id).name = "新名字"
        assert placeholders.placeholder_values(s)["company"] == "新名字"
        assert len(reads) == 4
        s.rollback()
        assert placeholders.placeholder_values(s)["hotline"] == "400-800-1234"   # a new transaction
        assert len(reads) == 5
