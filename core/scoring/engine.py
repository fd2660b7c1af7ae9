"""Evaluation: a standard applied to one record's values at one instant.

``evaluate(standard, values, now, calendar=WALL)`` is a pure function: no database, no
clock of its own, the same answer for the same arguments. ``values`` is a mapping of the
record's values (its fields, its ``data``, an inspection's answers); each item's rule
reads the key named by its ``field`` parameter, by default the item's code, and a
``deadline`` rule reads the two timestamps named by ``start`` and ``stop`` (see
:mod:`core.scoring.registry` for dotted names and :mod:`core.scoring.rules` for what each
rule accepts). ``now`` decides whether an unmet deadline is pending or breached;
``calendar`` counts time for deadlines with ``clock = "business"``.

For speed, compile a standard once (:func:`compile_standard`, or ``standard`` may
already be a :class:`CompiledStandard`) and evaluate many records against it: besides
the rules, a compiled standard keeps what the scoring method and the critical items made
of each pattern of outcomes seen (the method is a pure function of the items' outcomes
and deductions), so records that fare alike are scored once per pattern.

Outcome of the record: the scoring method (:mod:`core.scoring.methods`) gives points and
percent; a failed or breached *critical* item fails the record and sets its total and
percent to 0, and its code is listed in ``failed_critical``. The record passes when its
percent reaches the standard's pass mark and no critical item failed; with nothing to
score (every item n.a. or pending) percent, grade and passed are ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from functools import partial
from typing import Any, Mapping, NamedTuple

from servq.core.calendar.clock import WALL, Calendar
from servq.core.scoring.methods import METHODS, Layout, Method
from servq.core.scoring.registry import Context, Evaluator, RuleRegistry, default_rules
from servq.core.scoring.rules import Outcome, RuleInputError, RuleResult
from servq.core.scoring.standard import Standard

_FAILED = (Outcome.FAIL, Outcome.BREACHED)
_PENDING = Outcome.PENDING


class ItemOutcome(NamedTuple):
    """What became of one item: outcome, points out of ``max_points``, evidence.

    ``share`` (weighted method) is the item's part of the maximum once n.a. items are
    left out; ``None`` for items that do not count, bonus items and other methods.
    """

    code: str
    outcome: Outcome
    points: float
    max_points: float
    share: float | None
    evidence: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The evaluation of one record against one version of a standard."""

    standard_code: str
    standard_version: int
    method: str
    evaluated_at: datetime
    items: tuple[ItemOutcome, ...]
    total: float
    max_total: float
    percent: float | None
    grade: str | None
    passed: bool | None
    failed_critical: tuple[str, ...]
    complete: bool  # False while any deadline is pending: evaluate again later
    # The percent the rules gave before any override of an item (``None`` without overrides).
    original_percent: float | None = None

    def item(self, code: str) -> ItemOutcome:
        """Return the outcome of item ``code``; :raises KeyError: when there is none."""
        for outcome in self.items:
            if outcome.code == code:
                return outcome
        raise KeyError(code)

    def as_dict(self) -> dict[str, Any]:
        """Return the evaluation as JSON-safe data (datetimes ISO 8601, durations in seconds)."""
        return {
            "standard_code": self.standard_code,
            "standard_version": self.standard_version,
            "method": self.method,
            "evaluated_at": self.evaluated_at.isoformat(),
            "total": self.total,
            "max_total": self.max_total,
            "percent": self.percent,
            "grade": self.grade,
            "passed": self.passed,
            "failed_critical": list(self.failed_critical),
            "complete": self.complete,
            "original_percent": self.original_percent,
            "items": [{"code": item.code, "outcome": item.outcome.value, "points": item.points,
                       "max_points": item.max_points, "share": item.share,
                       "evidence": _json_safe(item.evidence)} for item in self.items],
        }


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(item) for item in value]
    return value


class CompiledItem(NamedTuple):
    """An item ready to run: its scoring facts and its rule's evaluator."""

    code: str
    weight: float
    critical: bool
    bonus: bool
    run: Evaluator


@dataclass(frozen=True)
class CompiledStandard:
    """A standard with every rule resolved and compiled, laid out for :func:`evaluate`."""

    standard: Standard
    items: tuple[CompiledItem, ...]
    layout: Layout
    method: Method
    # Derived layouts: evaluate() loops over these instead of the items.
    codes: tuple[str, ...]
    runs: tuple[Evaluator, ...]
    critical: tuple[tuple[int, str], ...]
    # (outcomes, deductions, outcome types) -> what evaluate() makes of them (_summary).
    summaries: dict = field(default_factory=dict, compare=False, repr=False)


def compile_standard(standard: Standard, rules: RuleRegistry | None = None) -> CompiledStandard:
    """Resolve and compile the rules of ``standard`` against ``rules`` (default: core's)."""
    registry = default_rules() if rules is None else rules
    items = []
    for item in standard.items:
        if item.rule.type not in registry:
            raise KeyError(f"item {item.code!r}: unknown rule type {item.rule.type!r}")
        run = registry[item.rule.type].compile(item.rule.params, item.code)
        items.append(CompiledItem(item.code, item.weight, item.critical, item.bonus, run))
    return CompiledStandard(
        standard=standard, items=tuple(items),
        layout=Layout.of([item.weight for item in items], [item.bonus for item in items]),
        method=METHODS[standard.method], codes=tuple(item.code for item in items),
        runs=tuple(item.run for item in items),
        critical=tuple((n, item.code) for n, item in enumerate(items) if item.critical))


class ItemInputError(RuleInputError):
    """A value an item's rule cannot judge; ``code`` names the item."""

    def __init__(self, code: str, message: str):
        super().__init__(f"item {code!r}: {message}")
        self.code = code


class Override(NamedTuple):
    """An item's outcome decided by a person instead of its rule (an accepted dispute).

    ``outcome`` is ``pass``, ``fail`` or ``na``; ``deducted`` the points a deduction item
    loses instead (``None``: none when it passes or is n.a., the rule's own when it fails).
    ``evidence`` says who decided and why; the rule's own result is kept beside it.
    """

    outcome: Outcome
    deducted: float | None
    evidence: Mapping[str, Any]


def _overridden(result: tuple, override: Override) -> tuple:
    """The rule's ``result`` as ``override`` decides it, the original kept in the evidence."""
    outcome, evidence, deducted = result
    if override.deducted is not None:
        new_deducted = override.deducted
    else:
        new_deducted = deducted if override.outcome in _FAILED else (0.0 if deducted is not None else None)
    original = {"outcome": getattr(outcome, "value", outcome), "deducted": deducted}
    return RuleResult(override.outcome, {**dict(evidence), "override": {
        **dict(override.evidence), "original": original}}, new_deducted)


def evaluate(standard: Standard | CompiledStandard, values: Mapping[str, Any], now: datetime,
             calendar: Calendar = WALL, *, rules: RuleRegistry | None = None,
             placeholders: Mapping[str, str] | None = None,
             overrides: Mapping[str, Override] | None = None) -> Evaluation:
    """Evaluate ``values`` against ``standard`` at ``now`` (see the module docstring).

    :param overrides: ``{item code: Override}``: items whose outcome a person decided (an
        accepted dispute); they replace the rule's result, which stays in the item's
        evidence (``evidence.override.original``), and the evaluation keeps the percent the
        rules alone gave as ``original_percent``. Codes the standard lacks are ignored.
    :raises ValueError: when ``now`` has no time zone.
    :raises ItemInputError: when a value is of a kind its rule cannot judge.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    compiled = standard if isinstance(standard, CompiledStandard) else compile_standard(standard, rules)
    context = _new_context((now, calendar, {}, placeholders or _NO_PLACEHOLDERS))
    try:
        results = [run(values, context) for run in compiled.runs]
    except RuleInputError as error:
        raise ItemInputError(_culprit(compiled, values, now, calendar, context.placeholders),
                             str(error)) from error
    original_percent = None
    if overrides:
        changed = [(n, overrides[code]) for n, code in enumerate(compiled.codes) if code in overrides]
        if changed:
            original_percent = _summary(compiled, results, tuple(r[0] for r in results))[5]
            for n, override in changed:
                results[n] = _overridden(results[n], override)
    outcomes, evidences, deducted = zip(*results) if results else ((), (), ())  # transposed in C
    # The types too: a plain "pass" equals Outcome.PASS, but methods tell them apart.
    key = (outcomes, deducted, tuple(map(type, outcomes)))
    summaries = compiled.summaries
    try:
        summary = summaries.get(key)
    except TypeError:  # an unhashable deduction (a plugin's rule): worked out each time
        key = summary = None
    if summary is None:
        summary = _summary(compiled, results, outcomes)
        if key is not None and len(summaries) < MAX_SUMMARIES:
            summaries[key] = summary
    points, max_points, shares, total, max_total, percent, grade, passed, failed_critical, complete = summary
    spec = compiled.standard
    # tuple.__new__ through partial builds the named tuples without a Python-level call each.
    items = tuple(map(_new_outcome, zip(compiled.codes, outcomes, points, max_points, shares, evidences)))
    evaluation = _new_evaluation(Evaluation)
    for set_field, value in zip(_EVALUATION_SETTERS, (
            spec.code, spec.version, spec.method, now, items, total, max_total, percent, grade,
            passed, failed_critical, complete, original_percent)):
        set_field(evaluation, value)
    return evaluation


#: Patterns of outcomes a compiled standard remembers (beyond, each is worked out anew).
MAX_SUMMARIES = 1024


def _summary(compiled: CompiledStandard, results: list, outcomes: tuple) -> tuple:
    """What the scoring method and the critical items make of ``results``: per-item
    points, maxima and shares, the totals, grade, passed, failed critical items, complete."""
    spec = compiled.standard
    score = compiled.method(compiled.layout, results, spec.base)
    failed_critical = tuple([code for n, code in compiled.critical if outcomes[n] in _FAILED])
    total, percent = score.total, score.percent
    if failed_critical:
        total, percent = 0.0, 0.0
    passed = None if percent is None else (not failed_critical and percent >= spec.pass_mark)
    return (tuple(score.points), tuple(score.max_points), tuple(score.shares), total,
            score.max_total, percent, spec.grade_for(percent), passed, failed_critical,
            _PENDING not in outcomes)


# Evaluation(...) runs the generated __init__ (a Python-level call and a lookup per field);
# evaluate() sets the slots through their descriptors instead: the same object.
_new_evaluation = object.__new__
_EVALUATION_SETTERS = tuple(Evaluation.__dict__[name].__set__ for name in (
    "standard_code", "standard_version", "method", "evaluated_at", "items", "total", "max_total",
    "percent", "grade", "passed", "failed_critical", "complete", "original_percent"))


_new_outcome = partial(tuple.__new__, ItemOutcome)
_new_context = partial(tuple.__new__, Context)
_NO_PLACEHOLDERS: Mapping[str, str] = {}


def _culprit(compiled: CompiledStandard, values: Mapping[str, Any], now: datetime,
             calendar: Calendar, placeholders: Mapping[str, str]) -> str:
    """Return the code of the first item whose rule refuses ``values`` (rules are pure)."""
    context = Context(now, calendar, {}, placeholders)
    for code, run in zip(compiled.codes, compiled.runs):
        try:
            run(values, context)
        except RuleInputError:
            return code
    raise AssertionError("a rule failed once and not again: rules must be pure")
