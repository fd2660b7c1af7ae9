"""The ``phrases`` evaluator (one search per view of the turns, views shared by the items
of a record, combined forbidden patterns) gives exactly what the straightforward matcher
gives: each phrase looked for in each turn on its own (:meth:`Phrase.spans`), the turns
selected per item.

The reference below is that matcher, as the rule ran before it was made fast. The
cases are the shipped standards' phrase items (after-sales call QA, courier delivery and
pick-up) and the demo data's transcripts (``plugins/*/demo.py``), with variants (taboo
words, traditional characters, split sentences, other speakers, empty turns) and
generated transcripts made of the phrases' own pieces.
"""

from __future__ import annotations

import tomllib
from datetime import datetime, timezone
from importlib import resources
from typing import Any, Mapping

from hypothesis import given, settings, strategies as st

from servq.core.calendar import WALL
from servq.core.scoring import rules
from servq.core.scoring.phrases import (Phrase, _reader, compile_phrases, library_phrases, parse_field)
from servq.core.scoring.registry import Context
from servq.core.scoring.rules import RuleInputError
from servq.core.scoring.text import index, normalise
from servq.plugins.aftersales import demo as aftersales_demo
from servq.plugins.aftersales.config import DEFAULT_SCRIPTS
from servq.plugins.courier import demo as courier_demo

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


# -- the reference --------------------------------------------------------------------

def _turns(value: Any, speakers, turn: str):
    if isinstance(value, str):
        if speakers is not None:
            raise RuleInputError("a speaker is selected but the field holds a plain text, "
                                 "not a list of turns")
        return [(None, value)]
    if not isinstance(value, list):
        raise RuleInputError(f"phrases are looked for in a text or a list of turns, not {value!r}")
    kept = []
    for number, entry in enumerate(value):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("text", ""), (str, type(None))):
            raise RuleInputError(f"turn {number}: a turn is {{\"speaker\": ..., \"text\": \"...\"}}, "
                                 f"not {entry!r}")
        if speakers is not None and entry.get("speaker") not in speakers:
            continue
        kept.append((number, entry.get("text") or ""))
    return kept[:1] if turn == "first" else kept[-1:] if turn == "last" else kept


def _matches(phrase: Phrase, texts, values) -> list[dict]:
    return [{"phrase": phrase.written, "text": text[start:end], "start": start, "end": end, "turn": number}
            for number, text, indexed in texts for start, end in phrase.spans(indexed, values)]


def _found(phrase, kind, matches):
    return {"phrase": phrase, "kind": kind, "found": True, "at": [m["start"] for m in matches],
            "matched": [m["text"] for m in matches], "matches": matches}


def reference(params: Mapping[str, Any], code: str, values: Mapping[str, Any], filled: Mapping[str, str]):
    """``(outcome, evidence)``: each phrase in each selected turn on its own."""
    path, speakers = parse_field(params.get("field", code))
    turn = params.get("turn", "any")
    written = list(params.get("required", ()))
    required = [[Phrase(p) for p in (entry if isinstance(entry, list) else [entry])] for entry in written]
    forbidden = [Phrase(p, library, kind) for entry in params.get("forbidden", ())
                 for p, library, kind in (library_phrases(entry) if entry.startswith("@")
                                          else [(entry, None, None)])]
    names = tuple(dict.fromkeys(n for group in required for p in group for n in p.names))
    names += tuple(n for p in forbidden for n in p.names if n not in names)
    value = _reader(path)(values)
    if value is None:
        return rules.NA, {"text": None}
    turns = _turns(value, speakers, turn)
    if not turns:
        return rules.NA, {"turns": [], "speakers": list(speakers or ()), "turn": turn}
    unfilled = [n for n in names if not normalise(str(filled.get(n) or ""))]
    if unfilled:
        return rules.NA, {"unfilled": unfilled, "note": "no value for " + ", ".join(f"<{n}>" for n in unfilled)
                          + ": set it in the tenant's or the plugin's settings"}
    texts = [(number, text, index(text)) for number, text in turns]
    ok, found = True, []
    for group, entry in zip(required, written):
        for phrase in group:
            matches = _matches(phrase, texts, filled)
            if matches:
                found.append(_found(entry, "required", matches))
                break
        else:
            ok = False
            found.append({"phrase": entry, "kind": "required", "found": False, "at": (), "matched": ()})
    for phrase in forbidden:
        matches = _matches(phrase, texts, filled)
        if matches:
            ok = False
            hit = _found(phrase.written, "forbidden", matches)
            if phrase.library:
                hit["library"], hit["library_kind"] = phrase.library, phrase.library_kind
            found.append(hit)
        elif phrase.library is None:
            found.append({"phrase": phrase.written, "kind": "forbidden", "found": False, "at": (), "matched": ()})
    evidence = {"phrases": found}
    if not (len(turns) == 1 and turns[0][0] is None):
        evidence["turns"] = [number for number, _ in turns]
    return rules.PASS if ok else rules.FAIL, evidence


# -- the cases ------------------------------------------------------------------------

def _standard_items(package: str, name: str) -> list[tuple[str, dict]]:
    text = resources.files(package).joinpath("standards", name).read_text(encoding="utf-8")
    return [(item["code"], item["rule"]) for item in tomllib.loads(text)["items"]
            if item["rule"]["type"] == "phrases"]


def _rule(field, **params):
    return {"type": "phrases", "field": field, **params}


SHIPPED = (_standard_items("servq.plugins.aftersales", "aftersales.call_qa.toml")
           + _standard_items("servq.plugins.courier", "courier.delivery.toml")
           + _standard_items("servq.plugins.courier", "courier.pickup.toml"))
AGENT, COURIER = "transcript[speaker=agent]", "call_transcript[speaker=courier]"
# What the shipped items do not exercise: blanks and placeholders among the forbidden,
# phrases of two sentences, several speakers, a plain text, the first/last turn of both.
EXTRA = [
    ("two_sentences", _rule("transcript[speaker=agent|customer]", required=["再见！好的", ["好的。谢谢", "好"]],
                            forbidden=["谢谢！再见", "坏了。我"])),
    ("blank_forbidden", _rule(COURIER, turn="last", forbidden=["请____快件", "<hotline>", "@taboo.impatient"])),
    ("blank_required", _rule(AGENT, required=["我____帮您", "控制器____了"], forbidden=["你____就____"])),
    ("company", _rule(COURIER, turn="first", required=["我是<company>快递公司的", "<courier.hotline>"])),
    ("everyone", _rule("transcript", forbidden=["@taboo", "电话"], required=[["再见", "拜拜"]])),
    ("customer_first", _rule("call_transcript[speaker=customer]", turn="first", required=["在家"])),
    ("plain", _rule("note", required=["已回访"], forbidden=["问别人去"])),
    ("plain_turn", _rule("note", turn="last", required=[["已回访", "满意"]], forbidden=["@taboo"])),
]
ITEMS = [(code, {k: v for k, v in rule.items() if k != "type"}) for code, rule in SHIPPED + EXTRA]
PLACEHOLDERS = [
    {**{f"aftersales.{k}": v for k, v in DEFAULT_SCRIPTS.items()}, "courier.hotline": "400-820-8888",
     "hotline": "400-820-8888", "company": "迅达"},
    {"aftersales.opening_greeting": "您好！", "aftersales.opening_offer": "请问有什么可以帮您",
     "aftersales.closing_thanks": "感謝您的來電", "aftersales.closing_goodbye": "再見",
     "courier.hotline": "４００－８２０－８８８８", "hotline": "快件", "company": "顺丰"},
    {"aftersales.opening_greeting": "", "courier.hotline": "  ", "company": "迅达"},  # unfilled ones
]


def _aftersales_calls() -> list[list[dict]]:
    calls = []
    for closing in (aftersales_demo.CLOSING, *aftersales_demo.CHANGED_CLOSINGS):
        for middle in ("好的，我帮您登记，工程师明天下午两点上门。", "你爱投诉就投诉，我就这态度。"):
            calls.append([{"speaker": s, "text": t} for s, t in (
                ("agent", aftersales_demo.OPENING), ("customer", "我的控制器坏了，我电话13812345678"),
                ("agent", middle), ("customer", "好的"), ("agent", closing))])
    return calls


def _courier_calls() -> list[list[dict]]:
    return [courier_demo.script(company, hotline, second_person=second, farewell=farewell)
            for company in ("迅达", "顺丰") for hotline in ("400-820-8888", "４００－８２０－８８８８")
            for second in (False, True) for farewell in (False, True)]


def _variants(turns: list[dict]) -> list[list[dict]]:
    """The transcript and variants of it."""
    def each(change):
        return [{**turn, "text": change(turn["text"])} for turn in turns]
    out = [turns,
           each(lambda t: t.replace("您", "你")),
           each(lambda t: t + "有完沒完？你快點兒！问别人去"),                        # taboo, traditional
           each(lambda t: t.replace("，", "。").replace(",", "!").replace("请问", "请。问")),  # split sentences
           each(lambda t: "　".join(t) if len(t) < 30 else t),                       # spaced out
           each(lambda t: t * 2),                                                    # every phrase twice
           [{**turn, "speaker": {"agent": "customer", "customer": "agent", "courier": "customer"}.get(
               turn["speaker"], "courier")} for turn in turns],                      # speakers swapped
           [{**turn, "text": None} if n % 2 else turn for n, turn in enumerate(turns)],
           [{"speaker": turn["speaker"]} for turn in turns],                         # no text at all
           turns[:1], turns[-1:], []]
    return out


CALLS = [v for call in _aftersales_calls() + _courier_calls() for v in _variants(call)]
NOTES = ["客户：已回訪，滿意", "问别人去！已回访", "已回访。已 回 访", "", "満意"]


def _records():
    for n, call in enumerate(CALLS):
        yield {"transcript": call, "call_transcript": call, "note": NOTES[n % len(NOTES)]}


def _compare(values: dict, filled: dict, compiled) -> None:
    context = Context(NOW, WALL, {}, filled)   # one context per record: items share it
    for code, params in ITEMS:
        try:
            expected = reference(params, code, values, filled)
        except RuleInputError as error:
            try:
                compiled[code](values, context)
            except RuleInputError as again:
                assert str(again) == str(error), code
                continue
            raise AssertionError(f"{code}: no error, expected {error}")
        outcome, evidence, deducted = compiled[code](values, context)
        assert (outcome, evidence, deducted) == (*expected, None), (code, values)


def _compiled():
    return {code: compile_phrases(params, code) for code, params in ITEMS}


def test_the_demo_transcripts_are_judged_as_phrase_by_phrase_and_turn_by_turn():
    compiled = _compiled()
    judged = {"pass": 0, "fail": 0, "na": 0}
    for filled in PLACEHOLDERS:
        for values in _records():
            _compare(values, filled, compiled)
            context = Context(NOW, WALL, {}, filled)
            for code in ("no_taboo_language", "greeting_phrase", "opening_phrase"):
                if code in compiled:
                    judged[str(compiled[code](values, context)[0])] += 1
    assert all(judged.values()), judged   # every outcome came up


def test_bad_turns_are_refused_alike():
    compiled = _compiled()
    for transcript in ("您好", 3, [{"speaker": "agent", "text": 3}], ["您好"], {"text": "您好"}):
        _compare({"transcript": transcript, "call_transcript": transcript, "note": "已回访"},
                 PLACEHOLDERS[0], compiled)


_PIECES = sorted({piece for call in CALLS for turn in call for piece in (turn.get("text") or "").split("，")}
                 | {"再见", "好的", "谢谢", "有完没完", "问别人去", "电话", "迅达", "400-820-8888", "请", "快件"})
_TURN = st.fixed_dictionaries({
    "speaker": st.sampled_from(["agent", "customer", "courier"]),
    "text": st.lists(st.one_of(st.sampled_from(_PIECES), st.sampled_from(list("，。！？ \n您你好")),
                               st.text(alphabet="您好再见谢拜问别人去快件已到请", max_size=6)),
                     max_size=8).map("".join)})


@settings(deadline=None, max_examples=300)  # a loaded CI machine must not fail a property
@given(st.lists(_TURN, max_size=7), st.sampled_from(PLACEHOLDERS), st.sampled_from(NOTES))
def test_generated_transcripts_are_judged_alike(turns, filled, note):
    _compare({"transcript": turns, "call_transcript": turns, "note": note}, filled, _COMPILED)


_COMPILED = _compiled()
