"""Conditions on a record's ``data``, written as data: the guards of a workflow transition.

The vocabulary is the one a deadline item's ``when`` uses (``{name: [values]}``: the
field holds one of the values; see :func:`core.scoring.registry.deadline_applies`), each
name a field of ``data`` or a dotted path into it, extended with tests for a field's
presence and for values it must not hold. A condition set is a mapping, JSON-able, so it
is shown as it is in ``GET /api/v1/kinds``::

    {"service_sheet.signed": [True],                  # true (booleans are not 1/0)
     "priority": ["high", "urgent"],                  # one of the values
     "waiver.reason": {"present": True},              # there, and not empty
     "result": {"not": ["rejected"]},                 # none of the values (missing passes)
     "plan": {"present": True, "not": ["tbd"]}}       # several tests: each must hold

Every condition must hold. A field is *present* when it is there and is neither ``null``
nor an empty text, list or object. Equality keeps booleans apart from numbers, as
``when`` does (``true`` is not ``1``). :func:`check_conditions` raises ``ValueError`` for
a malformed set (the plugin manager refuses the kind at load); :func:`unmet` lists what a
record's ``data`` lacks.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
TESTS = ("present", "not")
MAX_CONDITIONS = 20


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and value == value


def _values_problem(values: Any) -> str | None:
    if not isinstance(values, (list, tuple)) or not values:
        return "a non-empty list of values"
    if not all(_scalar(v) for v in values):
        return "a list of texts, numbers or true/false"
    return None


def check_conditions(conditions: Any, where: str = "requires") -> None:
    """Raise ``ValueError`` naming each problem of a condition set (``where`` prefixes them)."""
    if not isinstance(conditions, Mapping) or not conditions:
        raise ValueError(f"{where} must be a non-empty mapping of data fields to tests, "
                         f"such as {{'signed': [True]}}")
    problems = []
    if len(conditions) > MAX_CONDITIONS:
        problems.append(f"at most {MAX_CONDITIONS} conditions")
    for path, test in conditions.items():
        if not isinstance(path, str) or not _PATH_RE.match(path):
            problems.append(f"{path!r} is not a field of data (a name or a dotted path)")
            continue
        if isinstance(test, Mapping):
            extra = sorted(set(test) - set(TESTS))
            if extra or not test:
                problems.append(f"{path}: tests are {', '.join(TESTS)}, not {', '.join(map(repr, extra)) or 'none'}")
            if "present" in test and not isinstance(test["present"], bool):
                problems.append(f"{path}: present is true or false")
            if "not" in test and (problem := _values_problem(test["not"])):
                problems.append(f"{path}: not needs {problem}")
        elif problem := _values_problem(test):
            problems.append(f"{path}: give {problem}, or a test such as {{'present': true}}")
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))


def read(data: Mapping[str, Any] | None, path: str) -> Any:
    """The value at ``path`` in ``data`` (a dotted path walks nested objects), or ``None``."""
    value: Any = data if isinstance(data, Mapping) else {}
    if path in value:
        return value[path]
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def same(value: Any, option: Any) -> bool:
    """Equality that keeps booleans apart from numbers (``True`` is not ``1`` here)."""
    if isinstance(value, bool) or isinstance(option, bool):
        return value is option
    return value == option


def present(value: Any) -> bool:
    return value is not None and not (isinstance(value, (str, list, tuple, dict)) and len(value) == 0)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def unmet(conditions: Mapping[str, Any] | None, data: Mapping[str, Any] | None,
          prefix: str = "data.") -> list[dict[str, Any]]:
    """The conditions ``data`` does not meet, in declaration order: each
    ``{"field": "data.<path>", "requires": <test>, "message": ...}``. Empty when all hold.
    The field's value is not repeated (it may be personal data)."""
    out = []
    for path, test in (conditions or {}).items():
        value = read(data, path)
        field = f"{prefix}{path}"
        message = None
        if isinstance(test, Mapping):
            if test.get("present") is True and not present(value):
                message = f"{field} is missing"
            elif test.get("present") is False and present(value):
                message = f"{field} must be absent"
            elif "not" in test and any(same(value, option) for option in test["not"]):
                message = f"{field} must not be {' or '.join(_show(v) for v in test['not'])}"
        elif not any(same(value, option) for option in test):
            shown = [_show(v) for v in test]
            message = (f"{field} must be {shown[0]}" if len(shown) == 1
                       else f"{field} must be one of {', '.join(shown)}")
        if message:
            out.append({"field": field, "requires": jsonable_test(test), "message": message})
    return out


def jsonable_test(test: Any) -> Any:
    """A test as JSON shows it (tuples become lists)."""
    if isinstance(test, Mapping):
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in test.items()}
    return list(test)


def jsonable_conditions(conditions: Mapping[str, Any] | None) -> dict[str, Any]:
    """A condition set as JSON shows it."""
    return {path: jsonable_test(test) for path, test in (conditions or {}).items()}
