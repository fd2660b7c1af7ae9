"""Scoring methods: how the outcomes of a standard's items become points and a percent.

An item *counts* when its outcome is pass, fail or breached; n.a. and pending items earn
and risk nothing. An item that counts earns its weight when it passes and nothing when it
fails, except a rule that reports a deduction (``deduction``): that item earns its weight
less the deduction, never less than 0 (an item never loses more than its weight).
A *bonus* item earns its weight when it passes and is never part of the maximum.

- ``weighted``: percent = earned / (sum of the weights of the items that count) × 100.
  An n.a. or pending item leaves the maximum, so the others keep their relative weights
  (each counting item's ``share`` is its weight over that sum). Bonus points lift the
  percent, never above 100.
- ``deduction``: a record starts at the standard's ``base`` (100) and loses what its items
  lose; passed bonus items add back; the score stays within [0, base]. percent = score /
  base × 100.

With no (non-bonus) item that counts there is nothing to score: percent is ``None``.
The critical-item rule (a failed critical item fails the record and scores it 0) is the
engine's, the same for every method (:mod:`core.scoring.engine`).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

from servq.core.scoring.rules import Outcome, RuleResult

COUNTS = frozenset({Outcome.PASS, Outcome.FAIL, Outcome.BREACHED})
_PASS = Outcome.PASS


class Layout(NamedTuple):
    """What a method needs of a standard's items, laid out once per compiled standard."""

    weights: tuple[float, ...]
    bonus: tuple[bool, ...]
    maxima: tuple[float, ...]   # each item's part of the maximum: its weight, 0 for a bonus

    @classmethod
    def of(cls, weights: Sequence[float], bonus: Sequence[bool]) -> "Layout":
        """Lay out items of these weights and bonus flags."""
        return cls(tuple(float(weight) for weight in weights), tuple(bonus),
                   tuple(0.0 if extra else float(weight) for weight, extra in zip(weights, bonus)))


class Score(NamedTuple):
    """A method's result: per-item points, maxima and shares, and the totals."""

    points: list[float]
    max_points: list[float]
    shares: list[float | None]
    total: float
    max_total: float
    percent: float | None


def earned(weight: float, result: RuleResult) -> float:
    """Return the points an item of ``weight`` earns with ``result`` (if it counts)."""
    if result.deducted is not None:
        return weight - result.deducted if result.deducted < weight else 0.0
    return weight if result.outcome is _PASS else 0.0


def weighted(layout: Layout, results: Sequence[RuleResult], base: float) -> Score:
    """Weighted percentage; n.a. and pending items' weight is shared among the others."""
    points: list[float] = []
    tops: list[float | None] = []   # the weight of each non-bonus item that counts, else None
    total = max_total = 0.0
    for weight, bonus, (outcome, _, deducted) in zip(layout.weights, layout.bonus, results):
        if outcome in COUNTS:
            if deducted is None:
                got = weight if outcome is _PASS else 0.0
            else:
                got = weight - deducted if deducted < weight else 0.0
            points.append(got)
            total += got
            if bonus:
                tops.append(None)
            else:
                tops.append(weight)
                max_total += weight
        else:
            points.append(0.0)
            tops.append(None)
    maxima = [0.0 if top is None else top for top in tops]
    if max_total > 0:
        shares = [None if top is None else top / max_total for top in tops]
        percent = total / max_total * 100.0
        percent = 100.0 if percent > 100.0 else percent
    else:
        shares, percent = [None] * len(points), None
    return Score(points, maxima, shares, total, max_total, percent)


def deduction(layout: Layout, results: Sequence[RuleResult], base: float) -> Score:
    """Start from ``base``, subtract what failed items lose, add passed bonuses; within [0, base]."""
    points, maxima = [], []
    lost = bonus = 0.0
    counted = False
    for weight, extra, result in zip(layout.weights, layout.bonus, results):
        if result.outcome not in COUNTS:
            points.append(0.0)
            maxima.append(0.0)
            continue
        got = earned(weight, result)
        points.append(got)
        if extra:
            maxima.append(0.0)
            bonus += got
        else:
            counted = True
            maxima.append(weight)
            lost += weight - got
    total = base - lost + bonus
    total = 0.0 if total < 0 else base if total > base else total
    percent = total / base * 100.0 if counted else None
    return Score(points, maxima, [None] * len(points), total, base, percent)


Method = Callable[[Layout, Sequence[RuleResult], float], Score]
METHODS: dict[str, Method] = {"weighted": weighted, "deduction": deduction}
