"""Properties of the engine that hold for every standard and every answer (hypothesis)."""

import math
from datetime import datetime, timezone

from hypothesis import assume, given, settings, strategies as st

from core.scoring import Outcome, compile_standard, evaluate, parse_standard

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
