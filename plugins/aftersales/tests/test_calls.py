"""Call QA through HTTP: transcripts scored by deductions, numbers masked, manual reviews."""

from __future__ import annotations

from datetime import datetime

import pytest
import time_machine

from .helpers import RECORDS, SHANGHAI, create, evaluation, items

OPENING = "您好，很高兴为您服务，请问有什么可以帮您？"
CLOSING = "感谢您的来电，再见。"


def ok(response):
    assert response.status_code in (200, 201), response.json
    return response.json


def call(client, opening=OPENING, middle="好的，控制器显示E3是继电器故障，我们安排工程师明天上门更换。", closing=CLOSING, **extra):
    turns = [("agent", opening), ("customer", "我的控制器坏了，电话13912345678，身份证360102198001011234"),
             ("agent", middle), ("customer", "好的谢谢"), ("agent", closing)]
    transcript, t = [], 0.0
    for speaker, text in turns:
        # about 200 characters a minute for the agent
        length = len(text) * 60 / 200
        transcript.append({"speaker": speaker, "text": text, "start_s": t, "end_s": t + length})
        t += length + 1
    return ok(create(client, "aftersales.call", {"call_id": f"C-{len(middle)}-{len(closing)}",
                                                "customer": {"name": "Liu Yang", "phone": "13912345678"},
                                                "duration_s": int(t), "transcript": transcript,
                                                "colloquialisms": 0, **extra}))


def test_a_good_call_scores_100_and_numbers_are_masked_for_reviewers(centre):
    record = call(centre.agent)
    said = record["data"]["transcript"][1]["text"]
    assert "13912345678" not in said and "139****5678" in said
    assert "360102198001011234" not in said
    seen = centre.inspector.get(f"{RECORDS}/{record['id']}").json
    assert seen["data"]["transcript"][1]["text"] == said   # readable without personal-data rights
    assert seen["data"]["customer"]["phone"] != "13912345678"   # the customer field is masked on read
    scored = evaluation(centre.agent, record["id"], "aftersales.call_qa")
    assert scored["percent"] == 100, items(scored)
    assert 150 <= record["data"]["agent_chars_per_minute"] <= 260


def test_a_changed_closing_phrase_loses_exactly_2_points(centre):
    good = evaluation(centre.agent, call(centre.agent)["id"], "aftersales.call_qa")
    changed = call(centre.agent, closing="谢谢您打电话来，拜拜。")
    scored = evaluation(centre.agent, changed["id"], "aftersales.call_qa")
    assert good["total"] - scored["total"] == 2
    assert scored["total"] == 98 and scored["passed"] is True
    assert items(scored)["closing_phrase"]["outcome"] == "fail"


def test_a_colloquial_call_loses_a_point_each_up_to_4(centre):
    scored = evaluation(centre.agent, call(centre.agent, colloquialisms=6)["id"], "aftersales.call_qa")
    assert scored["total"] == 96


def test_a_red_line_word_scores_the_call_0_and_opens_an_action(centre):
    record = call(centre.agent, middle="你要投诉就投诉，我就这态度。")
    scored = evaluation(centre.agent, record["id"], "aftersales.call_qa")
    assert scored["percent"] == 0 and scored["passed"] is False
    taboo = items(scored)["no_taboo_language"]
    assert taboo["outcome"] == "fail"
    actions = centre.manager.get(f"/api/v1/actions?record_id={record['id']}").json
    assert [a["item_code"] for a in actions] == ["no_taboo_language"]


def test_the_customer_saying_a_taboo_phrase_is_not_the_agent_s_fault(centre):
    record = ok(create(centre.agent, "aftersales.call", {"call_id": "C-cust", "transcript": [
        {"speaker": "agent", "text": OPENING}, {"speaker": "customer", "text": "你们有完没完，我就这态度"},
        {"speaker": "agent", "text": CLOSING}]}))
    scored = items(evaluation(centre.agent, record["id"], "aftersales.call_qa"))
    assert scored["no_taboo_language"]["outcome"] == "pass"
    assert scored["attentive_patient"]["outcome"] == "pass"


def test_a_manual_review_is_linked_to_the_call_and_shown_apart(centre):
    record = call(centre.agent)
    answers = {"opening_phrase": {"text": OPENING}, "closing_phrase": {"text": CLOSING},
               "standard_wording": {"count": 1}, "speech_rate_tone": {"value": 200},
               "attentive_patient": {"text": "好的"}, "answer_accurate": {"outcome": "fail", "note": "wrong part"},
               "no_taboo_language": {"text": "好的"}}
    review = ok(create(centre.inspector, "inspection", {"standard": "aftersales.call_qa",
                                                        "subject_record_id": record["id"], "answers": answers}))
    assert evaluation(centre.inspector, review["id"], "aftersales.call_qa")["total"] == 94
    reviews = centre.manager.get(f"{RECORDS}/{record['id']}/reviews").json
    assert [r["source"] for r in reviews] == ["automatic", "manual"]
    assert [r["evaluation"]["total"] for r in reviews] == [100, 94]


def test_the_scripts_come_from_the_plugin_settings(make_centre):
    tenant = make_centre("scripted", configuration={"closing_thanks": "感谢致电华信"})
    scored = evaluation(tenant.agent, call(tenant.agent)["id"], "aftersales.call_qa")
    assert items(scored)["closing_phrase"]["outcome"] == "fail"
    scored = evaluation(tenant.agent, call(tenant.agent, closing="感谢致电华信，再见")["id"], "aftersales.call_qa")
    assert items(scored)["closing_phrase"]["outcome"] == "pass"


@pytest.mark.cross_tenant
def test_another_tenant_cannot_see_or_review_a_call(centre, globex):
    record = call(centre.agent)
    assert globex.api.get(f"{RECORDS}/{record['id']}").status_code == 404
    assert globex.api.get(f"{RECORDS}/{record['id']}/reviews").status_code == 404


def test_a_bad_transcript_is_a_422_naming_the_turn_and_nothing_is_stored(centre):
    refused = create(centre.agent, "aftersales.call", {"call_id": "C-bad", "transcript": [
        {"speaker": "agent", "text": OPENING}, {"speaker": "robot", "text": "hi", "mood": "x"}]})
    assert refused.status_code == 422
    errors = refused.json["errors"]["json"]["data"]["transcript"]
    assert set(errors["1"]) == {"speaker", "mood"}
    assert centre.agent.get(RECORDS, query_string={"kind": "aftersales.call"}).json == []


def test_the_deduction_pareto_sums_points_lost_per_item(centre):
    with time_machine.travel(datetime(2026, 3, 10, 10, tzinfo=SHANGHAI), tick=False):
        call(centre.agent, closing="谢谢您打电话来，拜拜。", colloquialisms=3)
        call(centre.agent, closing="谢谢，拜拜。")
        call(centre.agent)
        response = centre.manager.get("/api/v1/kpis", query_string={
            "metrics": "aftersales.call_deductions", "source": "auto",
            "since": "2026-03-01T00:00:00+08:00", "until": "2026-04-01T00:00:00+08:00"})
    assert response.status_code == 200, response.json
    pareto = response.json["rows"][0]["values"]["aftersales.call_deductions"]
    assert pareto == {"closing_phrase": 4.0, "standard_wording": 3.0}
    assert list(pareto) == ["closing_phrase", "standard_wording"]
