"""Properties of the engine that hold for every standard and every answer (hypothesis)."""

import math
from datetime import datetime, timezone

from hypothesis import assume, given, settings, strategies as st

from servq.core.scoring import Outcome, compile_standard, evaluate, parse_standard

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
WEIGHTS = st.one_of(st.just(0.0), st.floats(min_value=0.01, max_value=1000, allow_nan=False))


@st.composite
def item_specs(draw):
    kind = draw(st.sampled_from(["check", "deduction", "measure"]))
    rule = {"type": kind}
    if kind == "deduction":
        rule["points"] = draw(st.floats(min_value=0.5, max_value=50))
        if draw(st.booleans()):
            rule["cap"] = draw(st.floats(min_value=0.5, max_value=200))
    elif kind == "measure":
        rule["min"] = 50
    flag = draw(st.sampled_from(["plain", "plain", "critical", "bonus"]))
    return {"weight": draw(WEIGHTS), "critical": flag == "critical", "bonus": flag == "bonus",
            "rule": rule}


def value_for(spec, draw):
    kind = spec["rule"]["type"]
    if kind == "check":
        return draw(st.sampled_from([True, False, None]))
    if kind == "deduction":
        return draw(st.one_of(st.none(), st.just("na"), st.integers(0, 20)))
    return draw(st.one_of(st.none(), st.floats(0, 100)))


def build(specs, method="weighted", base=100.0):
    return parse_standard({
        "code": "p.std", "version": 1, "title": {"en": "P", "zh": "P"}, "applies_to": ["x"],
        "method": method, "pass_mark": 50, "base": base,
        "items": [{"code": f"i{n}", "title": {"en": "i", "zh": "i"}, "dimension": "empathy", **spec}
                  for n, spec in enumerate(specs)],
    })


def usable(specs):
    return any(spec["weight"] > 0 and not spec["bonus"] for spec in specs)


@settings(max_examples=150, deadline=None)
@given(st.lists(item_specs(), min_size=1, max_size=12), st.sampled_from(["weighted", "deduction"]),
       st.floats(min_value=1, max_value=500), st.data())
def test_percent_stays_within_0_and_100(specs, method, base, data):
    assume(usable(specs))
    standard = build(specs, method, base)
    values = {f"i{n}": value_for(spec, data.draw) for n, spec in enumerate(specs)}
    result = evaluate(standard, values, NOW)
    if result.percent is not None:
        assert 0 <= result.percent <= 100
        assert 0 <= result.total
        assert result.passed == (result.percent >= 50 and not result.failed_critical)
    for item in result.items:
        assert 0 <= item.points
        if item.max_points:
            assert item.points <= item.max_points


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(min_value=0.01, max_value=1000), st.sampled_from([True, False])),
                min_size=2, max_size=12), st.data())
def test_marking_an_item_na_never_changes_the_others_relative_weight(items, data):
    specs = [{"weight": weight, "rule": {"type": "check"}} for weight, _ in items]
    compiled = compile_standard(build(specs))
    values = {f"i{n}": answer for n, (_, answer) in enumerate(items)}
    before = evaluate(compiled, values, NOW)
    gone = data.draw(st.integers(0, len(items) - 1))
    after = evaluate(compiled, {**values, f"i{gone}": None}, NOW)
    assert after.item(f"i{gone}").outcome is Outcome.NA and after.item(f"i{gone}").share is None
    others = [n for n in range(len(items)) if n != gone]
    assert math.isclose(sum(after.items[n].share for n in others), 1.0)
    first = others[0]
    for n in others[1:]:
        assert math.isclose(after.items[n].share / after.items[first].share,
                            before.items[n].share / before.items[first].share, rel_tol=1e-9)
        assert math.isclose(after.items[n].share,
                            before.items[n].share / (1 - before.items[gone].share), rel_tol=1e-9)


@settings(deadline=None)  # a loaded CI machine must not fail a property
@given(st.lists(st.floats(min_value=0.01, max_value=1000), min_size=1, max_size=10), st.data())
def test_weighted_percent_equals_the_plain_weighted_sum(weights, data):
    specs = [{"weight": weight, "rule": {"type": "check"}} for weight in weights]
    answers = [data.draw(st.booleans()) for _ in weights]
    result = evaluate(build(specs), {f"i{n}": a for n, a in enumerate(answers)}, NOW)
    expected = sum(w for w, a in zip(weights, answers) if a) / sum(weights) * 100
    assert math.isclose(result.percent, expected, rel_tol=1e-9, abs_tol=1e-9)


@st.composite
def mixed_case(draw):
    """A weighted standard of mixed rule types (bonus and zero-weight items included) and
    one record's answers, in which every item counts (no n.a.)."""
    specs = draw(st.lists(item_specs(), min_size=2, max_size=12))
    values = {}
    for n, spec in enumerate(specs):
        kind = spec["rule"]["type"]
        if kind == "check":
            values[f"i{n}"] = draw(st.booleans())
        elif kind == "deduction":
            values[f"i{n}"] = draw(st.integers(0, 20))
        else:
            values[f"i{n}"] = draw(st.floats(0, 100))
    return specs, values


@settings(max_examples=150, deadline=None)
@given(mixed_case(), st.data())
def test_na_leaves_every_other_item_alone_with_any_rule_type_bonus_or_zero_weight(case, data):
    """Marking any item n.a. changes nothing about the other items but their share, and
    their shares keep their proportions (a bonus or zero-weight item has no proportion)."""
    specs, values = case
    assume(usable(specs))
    compiled = compile_standard(build(specs))
    before = evaluate(compiled, values, NOW)
    gone = data.draw(st.integers(0, len(specs) - 1))
    na = "na" if specs[gone]["rule"]["type"] == "deduction" else None  # no count is no lapse
    after = evaluate(compiled, {**values, f"i{gone}": na}, NOW)
    assert after.item(f"i{gone}").outcome is Outcome.NA
    assert (after.item(f"i{gone}").points, after.item(f"i{gone}").max_points) == (0, 0)
    others = [n for n in range(len(specs)) if n != gone]
    for n in others:
        old, new = before.items[n], after.items[n]
        assert (old.outcome, old.points, old.max_points, old.evidence) == \
            (new.outcome, new.points, new.max_points, new.evidence)
    weighted_others = [n for n in others if before.items[n].share]
    if weighted_others and after.max_total > 0:
        assert math.isclose(sum(after.items[n].share or 0 for n in others), 1.0)
        first = weighted_others[0]
        for n in weighted_others[1:]:
            assert math.isclose(after.items[n].share / after.items[first].share,
                                before.items[n].share / before.items[first].share, rel_tol=1e-9)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(min_value=0.01, max_value=100), st.booleans()),
                min_size=1, max_size=8),
       st.floats(min_value=0.01, max_value=100), st.sampled_from(["weighted", "deduction"]))
def test_a_passed_bonus_lifts_the_score_up_to_the_cap_and_never_the_maximum(items, extra, method):
    """Bonus items, as documented in core.scoring.methods: a passed bonus adds its weight to
    the total (weighted: the percent never passes 100; deduction: base - losses + bonuses,
    kept within [0, base]), a failed or n.a. bonus changes nothing, and a bonus is never part of the
    maximum; a bonus alone gives nothing to score."""
    specs = [{"weight": weight, "rule": {"type": "check"}} for weight, _ in items]
    specs.append({"weight": extra, "bonus": True, "rule": {"type": "check"}})
    compiled = compile_standard(build(specs, method))
    answers = {f"i{n}": answer for n, (_, answer) in enumerate(items)}
    bonus = f"i{len(items)}"
    without = evaluate(compiled, {**answers, bonus: None}, NOW)
    failed = evaluate(compiled, {**answers, bonus: False}, NOW)
    passed = evaluate(compiled, {**answers, bonus: True}, NOW)
    assert (failed.total, failed.percent) == (without.total, without.percent)
    assert passed.max_total == without.max_total
    if method == "weighted":
        earned = sum(weight for weight, answer in items if answer)
        assert math.isclose(passed.total, earned + extra)
        assert math.isclose(passed.percent, min(100.0, (earned + extra) / without.max_total * 100))
    else:  # the bonus offsets losses before the score is kept within [0, base]
        lost = sum(weight for weight, answer in items if not answer)
        assert math.isclose(passed.total, min(100.0, max(0.0, 100.0 - lost + extra)), abs_tol=1e-9)
    assert passed.percent >= without.percent
    assert evaluate(compiled, {bonus: True}, NOW).percent is None


@settings(max_examples=150, deadline=None)
@given(st.lists(item_specs(), min_size=1, max_size=10), st.sampled_from(["weighted", "deduction"]),
       st.data())
def test_a_failed_critical_item_always_fails_and_zeroes_the_record(specs, method, data):
    """Whatever the other items say, a failed critical item fails the record at 0 % and is
    named; without one, the record passes exactly when it reaches the pass mark."""
    assume(usable(specs))
    values = {f"i{n}": value_for(spec, data.draw) for n, spec in enumerate(specs)}
    result = evaluate(build(specs, method), values, NOW)
    failing = tuple(f"i{n}" for n, spec in enumerate(specs)
                    if spec["critical"] and result.items[n].outcome is Outcome.FAIL)
    assert result.failed_critical == failing
    if failing:
        assert (result.percent, result.total, result.passed) == (0.0, 0.0, False)
    elif result.percent is not None:
        assert result.passed == (result.percent >= 50)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(min_value=0.5, max_value=60), st.floats(min_value=0.5, max_value=30),
                          st.one_of(st.none(), st.floats(min_value=0.5, max_value=200)),
                          st.integers(0, 30)), min_size=1, max_size=8),
       st.floats(min_value=1, max_value=500))
def test_deductions_past_the_cap_and_the_weight_stop_at_the_floor(items, base):
    """Deduction method: each item loses at most its cap and at most its weight; the
    record's score is the base less those losses, never below 0."""
    specs = [{"weight": weight, "rule": {"type": "deduction", "points": points,
                                         **({} if cap is None else {"cap": cap})}}
             for weight, points, cap, _ in items]
    values = {f"i{n}": count for n, (*_, count) in enumerate(items)}
    result = evaluate(build(specs, "deduction", base), values, NOW)
    lost = 0.0
    for n, (weight, points, cap, count) in enumerate(items):
        deducted = count * points if cap is None else min(count * points, cap)
        assert math.isclose(result.items[n].points, max(0.0, weight - deducted), abs_tol=1e-9)
        lost += min(weight, deducted)
    assert math.isclose(result.total, max(0.0, base - lost), abs_tol=1e-6)
    assert 0 <= result.percent <= 100
