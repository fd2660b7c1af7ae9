"""Checking a respondent's answers against the survey and turning them into stored rows.

Pure functions: no database access. :func:`score_answers` either raises
:class:`AnswersInvalid` (naming every item that is wrong) or returns the rows to store:
one per answered item, reverse scoring applied, and one per dimension with the
respondent's mean over the items of that dimension they answered and their importance
points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from servq.core.surveys.instruments import item_columns, item_scale

#: Answer column → column of ``survey_answers``.
STORED = {"expectation": "expectation", "adequate": "adequate", "desired": "desired",
          "perception": "perceived"}


class AnswersInvalid(Exception):
    """The answers were refused; ``errors`` is shaped like marshmallow's."""

    def __init__(self, errors: dict[str, Any], message: str):
        super().__init__(message)
        self.errors = errors
        self.message = message


@dataclass
class Scored:
    """What :func:`score_answers` returns: rows for ``survey_answers`` and
    ``survey_dimension_scores`` (without ids), and the importance points as given."""

    answers: list[dict] = field(default_factory=list)
    dimensions: list[dict] = field(default_factory=list)
    importance: dict[str, int] | None = None


def _whole(value: Any) -> int | None:
    """``value`` as an int when it is a whole JSON number (not a boolean), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _check_point(value: Any, scale: dict, column: str | None) -> tuple[int | None, str | None]:
    where = f"{column}: " if column else ""
    point = _whole(value)
    if point is None:
        return None, f"{where}{value!r} is not a whole number on the scale {scale['min']}-{scale['max']}."
    if not scale["min"] <= point <= scale["max"]:
        return None, f"{where}{point} is outside the scale {scale['min']}-{scale['max']}."
    return point, None


def score_answers(doc: dict, form: str, importance_mode: str, answers: Any,
                  importance: Any = None) -> Scored:
    """Validate ``answers`` (``{item code: answer}``) and ``importance`` for a survey of
    instrument ``doc`` in ``form``; return the rows to store.

    An item that takes one answer (``single`` form, CSAT and NPS items) is answered with
    a number; otherwise with an object holding every column of the form
    (``{"expectation": 6, "perception": 5}``). An optional item may be left out or
    ``null``. Importance, when the survey asks for it, gives every dimension a whole
    number of points ≥ 0, 100 in total.

    :raises AnswersInvalid: listing every wrong item; nothing is returned.
    """
    if not isinstance(answers, dict):
        raise AnswersInvalid({"answers": ["Send an object: {item code: answer}."]},
                             "The answers are not an object.")
    items = doc["items"]
    if len(answers) > len(items) + 20:
        raise AnswersInvalid({"answers": [f"This survey has {len(items)} items."]},
                             "There are more answers than items.")
    dims = [d["code"] for d in doc.get("dimensions", [])]
    by_code = {item["code"]: item for item in items}
    errors: dict[str, list[str]] = {}
    for code in answers:
        if code not in by_code:
            errors[code] = [f"Unknown item {code!r}."]

    out = Scored()
    sums: dict[int, dict[str, float]] = {}
    counts: dict[int, int] = {}
    for position, item in enumerate(items, start=1):
        code = item["code"]
        given = answers.get(code)
        if given is None:
            if item.get("required", True):
                errors[code] = ["An answer is required."]
            continue
        scale = item_scale(doc, item)
        columns = item_columns(form, item)
        values: dict[str, int] = {}
        problems: list[str] = []
        if len(columns) == 1:
            point, problem = _check_point(given, scale, None)
            if problem:
                problems.append(problem)
            else:
                values["perception"] = point
        elif not isinstance(given, dict):
            problems.append(f"Answer with an object holding {', '.join(columns)}.")
        else:
            for key in given:
                if key not in columns:
                    problems.append(f"{key}: unknown column; this survey asks for {', '.join(columns)}.")
            for column in columns:
                if given.get(column) is None:
                    problems.append(f"{column}: missing; answer every column of an item.")
                    continue
                point, problem = _check_point(given[column], scale, column)
                if problem:
                    problems.append(problem)
                else:
                    values[column] = point
            if not problems and "adequate" in values and values["adequate"] > values["desired"]:
                problems.append("adequate: the minimum level you accept cannot be above the "
                                "level you desire.")
        if problems:
            errors[code] = problems
            continue
        if item.get("reverse"):
            values = {k: scale["min"] + scale["max"] - v for k, v in values.items()}
        row = {"item": position, "expectation": None, "adequate": None, "desired": None,
               "perceived": None}
        for column, value in values.items():
            row[STORED[column]] = value
        out.answers.append(row)
        if item.get("dimension"):
            d = dims.index(item["dimension"]) + 1
            counts[d] = counts.get(d, 0) + 1
            acc = sums.setdefault(d, {})
            for column, value in values.items():
                acc[STORED[column]] = acc.get(STORED[column], 0) + value

    points, importance_problems = _check_importance(dims, importance_mode, importance)
    if errors or importance_problems:
        shaped: dict[str, Any] = {}
        parts = []
        if errors:
            shaped["answers"] = errors
            named = list(errors)
            listed = ", ".join(named[:10]) + (f" and {len(named) - 10} more" if len(named) > 10 else "")
            parts.append(f"Answers to {listed} are not valid.")
        if importance_problems:
            shaped["importance"] = importance_problems
            parts.append("The importance points are not valid.")
        raise AnswersInvalid(shaped, " ".join(parts))

    out.importance = points
    for d in range(1, len(dims) + 1):
        n = counts.get(d, 0)
        weight = points.get(dims[d - 1]) if points else None
        if n == 0 and weight is None:
            continue
        acc = sums.get(d, {})
        out.dimensions.append({
            "dimension": d, "items": n,
            **{col: (acc[col] / n if n and col in acc else None)
               for col in ("expectation", "adequate", "desired", "perceived")},
            "importance": weight,
        })
    return out


def _check_importance(dims: list[str], mode: str, importance: Any) -> tuple[dict[str, int] | None, list[str]]:
    """The importance points and the problems with them."""
    if importance is None:
        if mode == "required":
            return None, [f"Share 100 points among: {', '.join(dims)}."]
        return None, []
    if mode == "none":
        return None, ["This survey does not ask for importance points."]
    if not isinstance(importance, dict):
        return None, [f"Send an object sharing 100 points among: {', '.join(dims)}."]
    problems = []
    unknown = sorted(set(importance) - set(dims))
    missing = [d for d in dims if d not in importance]
    if unknown:
        problems.append(f"Unknown dimension(s): {', '.join(unknown)}.")
    if missing:
        problems.append(f"Missing dimension(s): {', '.join(missing)}.")
    points = {}
    for d in dims:
        if d in importance:
            value = _whole(importance[d])
            if value is None or value < 0:
                problems.append(f"{d}: points are whole numbers from 0 to 100.")
            else:
                points[d] = value
    if not problems and sum(points.values()) != 100:
        problems.append(f"The points add up to {sum(points.values())}; they must add up to 100.")
    if problems:
        return None, problems
    return points, []
