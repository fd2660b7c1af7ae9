"""The rule registry and how compiled rules read their input."""

from datetime import datetime, timezone

import pytest
from marshmallow import Schema

from servq.core.calendar import WALL
from servq.core.scoring import Context, Outcome, RuleRegistry, RuleType, default_rules
from servq.core.scoring.registry import reader

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def test_reader_reads_flat_keys_dotted_paths_and_missing_keys():
    values = {"a": 1, "data": {"answers": {"q1": True}}, "x.y": "flat wins"}
    assert reader("a")(values) == 1
    assert reader("data.answers.q1")(values) is True
    assert reader("x.y")(values) == "flat wins"
    assert reader("missing")(values) is None
    assert reader("data.nothing.deeper")(values) is None
    assert reader("a.b")(values) is None


def test_default_registry_has_core_types_and_each_call_is_a_fresh_copy():
    rules = default_rules()
    assert set(rules) == {"check", "measure", "deadline", "deduction", "phrases"}
    rules.register(RuleType("x.always", Schema, lambda params, code: None))
    assert "x.always" not in default_rules()
    with pytest.raises(TypeError):
        RuleRegistry().register(lambda: None)


def test_a_compiled_rule_reads_the_item_code_unless_a_field_is_named():
    check = default_rules()["check"]
    context = Context(NOW, WALL, {})
    assert check.compile({}, "uniform")({"uniform": False}, context).outcome is Outcome.FAIL
    by_field = check.compile({"field": "answers.uniform"}, "uniform")
    assert by_field({"answers": {"uniform": True}, "uniform": False}, context).outcome is Outcome.PASS


def test_phrase_items_on_the_same_text_index_it_once_per_evaluation():
    phrases = default_rules()["phrases"]
    greet = phrases.compile({"field": "t", "required": ["您好"]}, "greet")
    rude = phrases.compile({"field": "t", "forbidden": ["不知道"]}, "rude")
    context = Context(NOW, WALL, {})
    values = {"t": "您好！不知道。"}
    assert greet(values, context).outcome is Outcome.PASS
    indexed = context.texts["t"]
    assert rude(values, context).outcome is Outcome.FAIL
    assert context.texts["t"] is indexed


def test_measure_of_a_ratio_reads_two_fields_and_compares_exactly():
    rules = default_rules()
    schema = rules["measure"].schema()
    params = schema.load({"field": "lights_working", "per": "lights_total", "percent": True, "min": 99})
    run = rules["measure"].compile(params, "road_lighting")
    context = Context(NOW, WALL, {})
    failed = run({"lights_working": 2473, "lights_total": 2498}, context)   # 98.9992 %
    assert failed.outcome is Outcome.FAIL
    assert failed.evidence == {"value": 247300 / 2498, "min": 99.0, "max": None,
                               "part": 2473, "whole": 2498}
    assert run({"lights_working": 2475, "lights_total": 2500}, context).outcome is Outcome.PASS
    assert run({"lights_working": 3, "lights_total": 0}, context).outcome is Outcome.NA
    assert run({"lights_total": 10}, context).outcome is Outcome.NA
    assert schema.validate({"field": "a", "percent": True, "min": 1}) == {
        "percent": ["percent goes with per (the field of the whole)"]}
    assert schema.dump(params) == {"field": "lights_working", "per": "lights_total", "percent": True,
                                   "min": 99.0}
