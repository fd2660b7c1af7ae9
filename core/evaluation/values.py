"""What the scoring rules read: a record's values, and an inspection's answers per item.

A record's values (:func:`record_values`) are the keys of its ``data`` at the top level
plus its own fields (``occurred_at``, ``status``, ``site_id``, ``staff_id``,
``created_at`` and the nested ``timestamps``), so a rule says ``field = "priority"`` or
``start = "occurred_at"``, ``stop = "timestamps.acknowledged_at"``.

An inspection answers each item of its standard on its own, whatever field the item's
rule reads for other kinds of record. So an inspection is scored against a *variant* of
its standard (:func:`inspection_plan`, made once per compiled standard) whose answerable
items read the key ``"answer:<item code>"``; :func:`answer_values` puts each answer there
in the form the item's rule type expects. An item is *answerable* when its rule type has
a ``field`` parameter (``check``, ``measure``, ``deduction``, ``phrases`` and most plugin
types); a ``deadline`` item reads the record's timestamps and takes no answer.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Mapping, NamedTuple

from servq.core.models import Record
from servq.core.scoring import CompiledStandard, RuleRegistry, compile_standard
from servq.core.scoring.standard import Rule

INSPECTION = "inspection"
ANSWER_PREFIX = "answer:"


def record_values(record: Record, plan: "InspectionPlan | None" = None) -> dict[str, Any]:
    """Return the mapping the rules of a standard read for ``record``.

    ``data`` keys first, then the record's own fields (which win over a ``data`` key of
    the same name). With the :class:`InspectionPlan` of an inspection's standard, the
    answers are added under the keys the plan's variant reads (n.a. for an item left
    unanswered; answers that do not fit are ignored: :func:`answer_values` with
    ``strict=True`` is the check that refuses them).
    """
    values = dict(record.data) if record.data else {}
    values["occurred_at"] = record.occurred_at
    values["created_at"] = record.created_at
    values["status"] = record.status
    values["site_id"] = record.site_id
    values["staff_id"] = record.staff_id
    values["timestamps"] = record.timestamps or {}
    if plan is not None:
        answers, _ = answer_values(plan, values.get("answers") or {}, strict=False)
        values.update(answers)
    return values


class InspectionPlan(NamedTuple):
    """A standard laid out for inspections.

    :param compiled: the variant whose answerable items read ``"answer:<code>"``.
    :param rule_types: item code → rule type name, for the answerable items.
    :param required: codes of the items an inspection must answer (answerable, not bonus).
    :param codes: every item code of the standard.
    """

    compiled: CompiledStandard
    rule_types: dict[str, str]
    required: frozenset[str]
    codes: frozenset[str]


_PLANS: dict[int, tuple[CompiledStandard, InspectionPlan]] = {}
_PLANS_LOCK = threading.Lock()
_MAX_PLANS = 512


def inspection_plan(compiled: CompiledStandard, rules: RuleRegistry) -> InspectionPlan:
    """Return the :class:`InspectionPlan` of ``compiled`` (cached per compiled object:
    the standards module caches compiled versions, so this compiles once per version)."""
    key = id(compiled)
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is compiled:
        return hit[1]
    plan = _make_plan(compiled, rules)
    with _PLANS_LOCK:
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.pop(next(iter(_PLANS)))
        # The compiled object is kept with its plan so its id cannot be reused meanwhile.
        _PLANS[key] = (compiled, plan)
    return plan


def _make_plan(compiled: CompiledStandard, rules: RuleRegistry) -> InspectionPlan:
    standard = compiled.standard
    items, rule_types, required = [], {}, set()
    for item in standard.items:
        rule_type = rules.get(item.rule.type)
        if rule_type is not None and "field" in rule_type.schema._declared_fields:
            rule_types[item.code] = item.rule.type
            if not item.bonus:
                required.add(item.code)
            params = {**item.rule.params, "field": ANSWER_PREFIX + item.code}
            if item.rule.type == "measure":
                # A share measured from two of a record's counts (``per``) is answered
                # as the measured value itself.
                params.pop("per", None)
                params.pop("percent", None)
            item = dataclasses.replace(item, rule=Rule(item.rule.type, params))
        items.append(item)
    variant = dataclasses.replace(standard, items=tuple(items))
    return InspectionPlan(compile_standard(variant, rules), rule_types, frozenset(required),
                          frozenset(item.code for item in standard.items))


class AnswerError(ValueError):
    """An answer that does not suit its item's rule."""


def answer_value(rule_type: str, answer: Mapping[str, Any]) -> Any:
    """Return what an item's rule of type ``rule_type`` reads from ``answer``.

    ``outcome: "na"`` makes any item n.a. ``check``: the outcome (or a boolean
    ``value``). ``measure``: the ``value``. ``deduction``: the ``count``; without one,
    ``pass`` is no occurrence and ``fail`` is one. ``phrases``: the ``text``. Other
    rule types: ``value``, else ``count``, else ``text``, else the outcome.

    :raises AnswerError: when the answer lacks what the rule needs.
    """
    outcome = answer.get("outcome")
    if outcome == "na":
        return "na" if rule_type == "deduction" else None
    if rule_type == "check":
        if outcome is not None:
            return outcome
        if isinstance(answer.get("value"), bool):
            return answer["value"]
        raise AnswerError("A check item is answered with outcome 'pass', 'fail' or 'na'.")
    if rule_type == "measure":
        if answer.get("value") is None:
            raise AnswerError("A measure item needs the measured 'value' (or outcome 'na').")
        return answer["value"]
    if rule_type == "deduction":
        if "count" in answer:
            return answer["count"]
        if outcome is not None:
            return 0 if outcome == "pass" else 1
        raise AnswerError("A deduction item needs a 'count' of occurrences (or an outcome).")
    if rule_type == "phrases":
        if answer.get("text") is None:
            raise AnswerError("A phrases item needs the 'text' to judge (or outcome 'na').")
        return answer["text"]
    for key in ("value", "count", "text", "outcome"):
        if answer.get(key) is not None:
            return answer[key]
    raise AnswerError("The answer gives no outcome, value, count or text.")


def answer_values(plan: InspectionPlan, answers: Mapping[str, Any], *,
                  strict: bool) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Turn an inspection's ``answers`` into the values ``plan.compiled`` reads.

    Returns ``(values, errors)``: every answerable item has its key (n.a. when left
    unanswered). With ``strict`` the errors name each unknown item, each required item
    left unanswered, each answer to an item that takes none and each answer that lacks
    what its rule needs; without it those answers are skipped (n.a.) and ``errors`` is
    empty.
    """
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for code, rule_type in plan.rule_types.items():
        answer = answers.get(code)
        if answer is None:
            values[ANSWER_PREFIX + code] = "na" if rule_type == "deduction" else None
            if strict and code in plan.required:
                errors[code] = ["Missing answer: this item is required "
                                "(answer outcome 'na' when it does not apply)."]
            continue
        try:
            values[ANSWER_PREFIX + code] = answer_value(rule_type, answer)
        except AnswerError as error:
            values[ANSWER_PREFIX + code] = "na" if rule_type == "deduction" else None
            if strict:
                errors[code] = [str(error)]
    if strict:
        for code in answers:
            if code not in plan.codes:
                errors[code] = ["Unknown item: the standard has no item with this code."]
            elif code not in plan.rule_types:
                errors[code] = ["This item is scored from the record itself (its timestamps); "
                                "it takes no answer."]
    return values, errors
