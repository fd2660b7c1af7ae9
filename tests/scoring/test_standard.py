"""The standard document: schema, loaders, round trip."""

import copy
from datetime import timedelta

import pytest
from marshmallow import Schema, fields

from servq.core.scoring import (RuleType, StandardError, default_rules, dump_standard, load_standard,
                          load_standards, parse_standard)
from servq.core.calendar import Limit
from servq.core.scoring.rules import RuleResult, Outcome

PACKAGE = "tests.scoring"

MINIMAL = {
    "code": "acme.front_desk",
    "version": 1,
    "title": {"en": "Front desk", "zh": "前台"},
    "applies_to": ["inspection"],
    "method": "weighted",
    "pass_mark": 80,
    "items": [{"code": "smile", "title": {"en": "Smiles", "zh": "微笑"},
               "dimension": "empathy", "rule": {"type": "check"}}],
}


def with_changes(**changes):
    document = copy.deepcopy(MINIMAL)
    document.update(changes)
    return document


def item(code="smile", **changes):
    entry = copy.deepcopy(MINIMAL["items"][0])
    entry["code"] = code
    entry.update(changes)
    return entry


def errors_of(document, **kwargs):
    with pytest.raises(StandardError) as caught:
        parse_standard(document, **kwargs)
    return caught.value.messages


def test_toml_standard_shipped_in_a_package_loads():
    standard = load_standard(PACKAGE, "standards/courier_doorstep.toml")
    assert (standard.code, standard.version, standard.method) == ("courier.doorstep", 1, "weighted")
    assert standard.title.zh == "上门派件服务"
    assert standard.applies_to == ("courier.delivery",)
    assert [band.grade for band in standard.grades] == ["A", "B", "C"]
    assert standard.grades[0].title.en == "Excellent"
    language = standard.item("language")
    assert language.fix_within == timedelta(days=3)
    assert language.rule.type == "phrases"
    assert language.rule.params["forbidden"] == ["不知道", "喂!", "问别人去!"]
    on_time = standard.item("on_time")
    assert on_time.rule.params["limit"] == Limit(4, "hour")
    assert on_time.rule.params["clock"] == "wall"
    assert standard.item("checked_by_customer").critical
    assert standard.item("praise").bonus


def test_every_standard_of_a_folder_loads_toml_and_json():
    standards = load_standards(PACKAGE, "standards")
    assert [s.code for s in standards] == ["courier.doorstep", "property.facilities",
                                           "telemarketing.call"]
    assert standards[2].method == "deduction" and standards[2].base == 100


def test_defaults():
    standard = parse_standard(MINIMAL)
    smile = standard.item("smile")
    assert (smile.weight, smile.critical, smile.bonus, smile.fix_within) == (1.0, False, False, None)
    assert standard.grades == () and standard.grade_for(50) is None


def test_grades_are_sorted_and_given_by_the_highest_band_reached():
    standard = parse_standard(with_changes(grades=[{"grade": "C", "min": 0}, {"grade": "A", "min": 90},
                                                   {"grade": "B", "min": 75}]))
    assert [band.grade for band in standard.grades] == ["A", "B", "C"]
    assert [standard.grade_for(p) for p in (100, 90, 89.9, 75, 0, None)] == ["A", "A", "B", "B", "C", None]


@pytest.mark.parametrize("changes, where", [
    ({"code": "Front Desk"}, "code"),
    ({"version": 0}, "version"),
    ({"version": "1"}, "version"),
    ({"title": {"en": "only English"}}, "title"),
    ({"applies_to": []}, "applies_to"),
    ({"method": "median"}, "method"),
    ({"pass_mark": 101}, "pass_mark"),
    ({"items": []}, "items"),
    ({"grades": [{"grade": "A", "min": 90}, {"grade": "B", "min": 90}]}, "grades"),
    ({"unexpected": 1}, "unexpected"),
])
def test_bad_documents_say_where(changes, where):
    assert where in errors_of(with_changes(**changes))


@pytest.mark.parametrize("entry, message", [
    (item(dimension="speed"), "dimension"),
    (item(weight=-1), "weight"),
    (item(critical=True, bonus=True), "bonus"),
    (item(fix_within="soon"), "fix_within"),
    (item(rule={"type": "vibes"}), "unknown rule type"),
    (item(rule={"type": "measure"}), "min, max or target"),
    (item(rule={"type": "measure", "min": 5, "max": 1}), "min is above max"),
    (item(rule={"type": "measure", "target": 5, "min": 1}), "not both"),
    (item(rule={"type": "deadline", "start": "a", "stop": "b", "limit": "later"}), "Cannot read the limit"),
    (item(rule={"type": "deadline", "start": "a", "stop": "b", "limit": "1h", "clock": "moon"}), "clock"),
    (item(rule={"type": "deduction", "points": 0}), "points"),
    (item(rule={"type": "phrases"}), "at least one"),
    (item(rule={"type": "phrases", "forbidden": ["！"]}), "punctuation"),
    (item(rule={"type": "check", "colour": "red"}), "colour"),
])
def test_bad_items_say_what(entry, message):
    assert message in str(errors_of(with_changes(items=[entry])))


def test_item_codes_are_unique_and_weights_not_all_zero():
    assert "more than once" in str(errors_of(with_changes(items=[item("a"), item("a")])))
    zero = with_changes(items=[item("a", weight=0), item("b", weight=3, bonus=True)])
    assert "add up to 0" in str(errors_of(zero))


def test_a_plugin_rule_type_is_accepted_only_by_a_registry_that_has_it():
    class TemperatureParams(Schema):
        field = fields.String()
        celsius = fields.Float(required=True)

    def compile_(params, code):
        return lambda values, context: RuleResult(
            Outcome.PASS if values.get(code, 0) >= params["celsius"] else Outcome.FAIL, {})

    document = with_changes(items=[item(rule={"type": "acme.hot_dish", "celsius": 60})])
    assert "unknown rule type" in str(errors_of(document))
    rules = default_rules()
    rules.register(RuleType("acme.hot_dish", TemperatureParams, compile_))
    standard = parse_standard(document, rules=rules)
    assert standard.items[0].rule.params == {"celsius": 60.0}
    with pytest.raises(ValueError):
        rules.register(RuleType("check", TemperatureParams, compile_))


def test_a_dumped_standard_loads_back_equal():
    for standard in load_standards(PACKAGE, "standards"):
        document = dump_standard(standard)
        assert parse_standard(document) == standard


def test_bad_files_are_reported_with_their_name(tmp_path):
    from servq.core.scoring.standard import read_document
    with pytest.raises(StandardError, match="courier.toml"):
        read_document("code = ", "toml", source="courier.toml")
    with pytest.raises(StandardError, match="JSON object"):
        read_document("[1, 2]", "json")
    with pytest.raises(StandardError, match="unknown format"):
        read_document("code: x", "yaml")
