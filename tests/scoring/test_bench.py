"""The benchmark measures the engine against a baseline that computes the same numbers."""

import importlib.util
import math
from collections import Counter
from pathlib import Path

from servq.core.scoring import compile_standard, evaluate, parse_standard

BENCH = Path(__file__).resolve().parents[2] / "bench" / "evaluations.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_evaluations", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_standard_mixes_every_core_rule_type_in_25_items():
    bench = load_bench()
    standard = parse_standard(bench.build_document())
    assert len(standard.items) == 25
    assert Counter(item.rule.type for item in standard.items) == {
        "check": 12, "measure": 5, "deadline": 3, "deduction": 3, "phrases": 2}


def test_engine_and_baseline_agree_on_every_record():
    bench = load_bench()
    standard = parse_standard(bench.build_document())
    compiled = compile_standard(standard)
    items = bench.baseline_items(standard)
    outcomes = Counter()
    for values in bench.build_records(300):
        result = evaluate(compiled, values, bench.NOW)
        outcomes.update(item.outcome.value for item in result.items)
        assert math.isclose(result.percent, bench.baseline_percent(items, values))
    # the records exercise every outcome, not just the happy path
    assert set(outcomes) == {"pass", "fail", "na", "pending", "breached"}


def test_bench_runs_and_prints_both_rates_and_the_ratio(capsys):
    bench = load_bench()
    bench.main(["--records", "20", "--seconds", "0.06"])
    out = capsys.readouterr().out
    assert "engine" in out and "baseline" in out and "ratio" in out
