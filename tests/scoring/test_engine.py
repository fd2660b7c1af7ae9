"""evaluate(): scoring methods, critical items, bonus, n.a., deadlines, domain examples."""

from datetime import datetime, timedelta, timezone

import pytest

from servq.core.scoring import (ItemInputError, Outcome, compile_standard, evaluate, load_standard,
                          parse_standard)

UTC = timezone.utc
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def standard(items, method="weighted", pass_mark=80, **extra):
    return parse_standard({
        "code": "t.std", "version": 3, "title": {"en": "T", "zh": "测"}, "applies_to": ["x"],
        "method": method, "pass_mark": pass_mark,
        "grades": [{"grade": "A", "min": 90}, {"grade": "B", "min": 60}, {"grade": "C", "min": 0}],
        "items": [{"title": {"en": code, "zh": code}, "dimension": "reliability",
                   "rule": {"type": "check"}, "code": code, **spec} for code, spec in items.items()],
        **extra,
    })


CHECKS = standard({"a": {"weight": 1}, "b": {"weight": 2}, "c": {"weight": 3}})


def test_weighted_percentage_grade_and_pass():
    result = evaluate(CHECKS, {"a": True, "b": True, "c": False}, NOW)
    assert (result.total, result.max_total, result.percent) == (3, 6, 50)
    assert (result.grade, result.passed, result.complete) == ("C", False, True)
    assert (result.standard_code, result.standard_version, result.method) == ("t.std", 3, "weighted")
    assert result.item("c") == ("c", Outcome.FAIL, 0.0, 3.0, 0.5, {"value": False})
    assert evaluate(CHECKS, {"a": True, "b": True, "c": True}, NOW).passed is True


def test_na_weight_is_redistributed():
    result = evaluate(CHECKS, {"a": True, "b": None, "c": False}, NOW)
    assert result.percent == 25
    assert result.item("b").max_points == 0 and result.item("b").share is None
    assert result.item("a").share == 0.25 and result.item("c").share == 0.75


def test_all_na_has_nothing_to_score():
    result = evaluate(CHECKS, {}, NOW)
    assert all(item.outcome is Outcome.NA for item in result.items)
    assert (result.percent, result.grade, result.passed, result.total) == (None, None, None, 0)
    assert result.as_dict()["percent"] is None


def test_zero_weight_items_are_reported_but_not_scored():
    std = standard({"note": {"weight": 0}, "real": {"weight": 5}})
    result = evaluate(std, {"note": False, "real": True}, NOW)
    assert result.percent == 100 and result.item("note").outcome is Outcome.FAIL
    assert result.item("note").share == 0
    only_zero = evaluate(std, {"note": True}, NOW)
    assert only_zero.percent is None and only_zero.passed is None


def test_critical_failure_fails_and_zeroes_the_record():
    std = standard({"a": {"weight": 9}, "gate": {"weight": 1, "critical": True}}, pass_mark=10)
    result = evaluate(std, {"a": True, "gate": False}, NOW)
    assert (result.total, result.percent, result.passed, result.grade) == (0, 0, False, "C")
    assert result.failed_critical == ("gate",)
    assert result.item("a").points == 9   # items keep their own points as evidence
    assert evaluate(std, {"a": True, "gate": None}, NOW).passed is True  # n.a. is no failure


def test_critical_failure_wins_even_when_nothing_else_is_scored():
    std = standard({"gate": {"weight": 0, "critical": True}, "a": {}})
    result = evaluate(std, {"gate": False}, NOW)
    assert (result.percent, result.passed, result.failed_critical) == (0, False, ("gate",))


def test_bonus_adds_points_never_beyond_100_and_never_to_the_maximum():
    std = standard({"a": {"weight": 8}, "b": {"weight": 2}, "extra": {"weight": 1, "bonus": True}})
    result = evaluate(std, {"a": True, "b": False, "extra": True}, NOW)
    assert (result.total, result.max_total, result.percent) == (9, 10, 90)
    assert result.item("extra").max_points == 0 and result.item("extra").share is None
    assert evaluate(std, {"a": True, "b": True, "extra": True}, NOW).percent == 100
    assert evaluate(std, {"extra": True}, NOW).percent is None


def test_deduction_method_from_100_with_floor_and_bonus():
    std = standard({"a": {"weight": 60}, "b": {"weight": 60}, "kind": {"weight": 5, "bonus": True}},
                   method="deduction")
    assert evaluate(std, {"a": False, "b": True}, NOW).total == 40
    floored = evaluate(std, {"a": False, "b": False}, NOW)
    assert (floored.total, floored.percent) == (0, 0)
    assert evaluate(std, {"a": False, "b": True, "kind": True}, NOW).total == 45
    assert evaluate(std, {"a": True, "b": True, "kind": True}, NOW).total == 100
    assert evaluate(std, {}, NOW).percent is None


def test_deduction_method_with_another_base():
    std = standard({"a": {"weight": 5}}, method="deduction", base=20)
    result = evaluate(std, {"a": False}, NOW)
    assert (result.total, result.max_total, result.percent) == (15, 20, 75)


def test_telemarketing_call():
    std = load_standard("tests.scoring", "standards/telemarketing_call.json")
    values = {"lapses": {"closing": 1, "patience": 0}, "opening_phrase": True, "speed": 200}
    result = evaluate(std, values, NOW)
    assert result.item("closing_phrase").points == 8       # 2 points for a non-standard closing
    assert (result.total, result.passed, result.grade) == (98, True, "pass")
    sloppy = evaluate(std, {"lapses": {"closing": 7, "patience": 9}, "opening_phrase": False,
                            "speed": 250}, NOW)
    # closing capped at 6, patience at its weight 20, opening 5, speed 5
    assert sloppy.total == 100 - 6 - 20 - 5 - 5
    assert sloppy.item("closing_phrase").evidence["deducted"] == 6
    assert sloppy.item("patience").points == 0
    assert sloppy.passed is False and sloppy.grade == "fail"


def test_deduction_rule_in_a_weighted_standard_costs_part_of_the_weight():
    std = parse_standard({
        "code": "t.mix", "version": 1, "title": {"en": "T", "zh": "测"}, "applies_to": ["x"],
        "method": "weighted", "pass_mark": 50,
        "items": [{"code": "lapses", "title": {"en": "L", "zh": "L"}, "dimension": "assurance",
                   "weight": 10, "rule": {"type": "deduction", "points": 3}}],
    })
    assert evaluate(std, {"lapses": 2}, NOW).percent == 40
    assert evaluate(std, {"lapses": 50}, NOW).percent == 0


COURIER = load_standard("tests.scoring", "standards/courier_doorstep.toml")


def courier_values(**changes):
    values = {"transcript": "您好，您的快件到了。请仔细查收你的快件，再见！", "uniform": True,
              "assigned_at": NOW - timedelta(hours=3), "delivered_at": NOW - timedelta(hours=1),
              "checked_by_customer": True, "praise": None}
    values.update(changes)
    return values


def test_courier_delivery_end_to_end():
    result = evaluate(COURIER, courier_values(), NOW)
    assert (result.percent, result.grade, result.passed) == (100, "A", True)
    rude = evaluate(COURIER, courier_values(transcript="喂！快件。不知道，问别人去！"), NOW)
    language = rude.item("language")
    assert language.outcome is Outcome.FAIL
    found = {e["phrase"]: e["at"] for e in language.evidence["phrases"] if e["found"]}
    assert found == {"喂!": [0], "不知道": [5], "问别人去!": [9]}
    assert rude.percent == 70 and rude.grade == "C"


def test_courier_pending_breached_and_critical():
    pending = evaluate(COURIER, courier_values(delivered_at=None), NOW)
    assert pending.item("on_time").outcome is Outcome.PENDING and not pending.complete
    assert pending.item("on_time").evidence["due"] == NOW + timedelta(hours=1)
    assert pending.percent == 100   # pending items leave the maximum like n.a.
    later = NOW + timedelta(hours=2)
    breached = evaluate(COURIER, courier_values(delivered_at=None), later)
    assert breached.item("on_time").outcome is Outcome.BREACHED and breached.complete
    assert breached.percent == 60
    left_early = evaluate(COURIER, courier_values(checked_by_customer=False), NOW)
    assert left_early.failed_critical == ("checked_by_customer",) and left_early.percent == 0


def test_business_deadlines_use_the_calendar_given():
    class Frozen:
        """Counts nothing: a business calendar closed for good."""

        def add(self, start, duration):
            return datetime.max.replace(tzinfo=UTC)

        def elapsed(self, start, end):
            return timedelta(0)

    std = load_standard("tests.scoring", "standards/property_facilities.toml")
    values = {"road_lighting": 99.5, "fire_water": 100,
              "complaint": {"received_at": NOW - timedelta(days=30), "resolved_at": None}}
    assert evaluate(std, values, NOW).item("serious_complaint").outcome is Outcome.BREACHED
    assert evaluate(std, values, NOW, Frozen()).item("serious_complaint").outcome is Outcome.PENDING
    dim = evaluate(std, {**values, "road_lighting": 98.0, "fire_water": 99.0}, NOW)
    assert dim.failed_critical == ("fire_water",)


def test_bad_values_name_the_item_and_naive_now_is_refused():
    with pytest.raises(ItemInputError, match="'uniform'") as caught:
        evaluate(COURIER, courier_values(uniform="yes"), NOW)
    assert caught.value.code == "uniform"
    with pytest.raises(ValueError, match="timezone"):
        evaluate(COURIER, courier_values(), datetime(2026, 3, 2))


def test_compiled_standard_gives_the_same_evaluation_and_json():
    compiled = compile_standard(COURIER)
    values = courier_values(delivered_at=None)
    assert evaluate(compiled, values, NOW) == evaluate(COURIER, values, NOW)
    data = evaluate(compiled, values, NOW).as_dict()
    on_time = next(item for item in data["items"] if item["code"] == "on_time")
    assert on_time["outcome"] == "pending"
    assert on_time["evidence"]["limit"] == "4h" and on_time["evidence"]["due"].endswith("+00:00")
    import json
    json.dumps(data)


def test_each_pattern_of_outcomes_is_scored_once_with_the_same_result():
    """A compiled standard keeps what the method made of each pattern of outcomes: later
    records that fare alike get the very same numbers as a fresh evaluation."""
    mixed = standard({"a": {"weight": 1, "critical": True}, "b": {"weight": 2, "bonus": True},
                      "c": {"weight": 3, "rule": {"type": "deduction", "points": 1.5, "cap": 2}}})
    compiled = compile_standard(mixed)
    patterns = [{"a": a, "b": b, "c": c} for a in (True, False, None) for b in (True, None)
                for c in (0, 1, 2, ["x"], "na")]
    for values in patterns * 2:
        assert evaluate(compiled, values, NOW) == evaluate(mixed, values, NOW)
    assert len(compiled.summaries) == 3 * 2 * 4  # c = 1 and c = ["x"] fare alike
    # shared evidence is read-only
    with pytest.raises(TypeError):
        evaluate(compiled, patterns[0], NOW).item("a").evidence["value"] = False
