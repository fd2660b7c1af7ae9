"""A tenant's overrides of a shipped standard: merge, diff and error paths. Pure code.

An *override document* is a JSON merge patch (RFC 7386) over the shipped standard's
document, with two conveniences:

- ``items`` is an object keyed by item code, not a list: ``{"response": {"weight": 5}}``
  changes one item, ``{"response": null}`` removes it, an unknown code adds a whole new
  item (it must then carry everything an item needs: title, dimension, rule);
  ``remove_items = ["code", ...]`` removes items too (TOML, used by manifests, has no null).
- an item's ``rule`` without ``type`` merges into the shipped rule's parameters
  (``{"rule": {"limit": "2h"}}``); a ``rule`` naming ``type`` replaces the whole rule.

Every other key replaces (``grades``, ``applies_to``, lists) or merges (``title``) as a
merge patch does; ``null`` removes a key. ``code`` and ``version`` cannot be overridden.
The merged result is then validated by the full standard schema.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable, Mapping

FIXED = ("code", "version")
REMOVE_ITEMS = "remove_items"


class OverrideError(ValueError):
    """An override that cannot be applied; ``errors`` maps each path to its messages."""

    def __init__(self, errors: Mapping[str, list[str]]):
        self.errors = {path: list(messages) for path, messages in errors.items()}
        super().__init__("; ".join(f"{path}: {' '.join(messages)}"
                                   for path, messages in self.errors.items()))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: ``patch`` applied to ``target`` (neither is modified)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _strip_nulls(item) for key, item in value.items() if item is not None}
    return copy.deepcopy(value)


def _merge_item(item: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    rule_patch = patch.get("rule")
    merged = merge_patch(item, {key: value for key, value in patch.items() if key != "rule"})
    if isinstance(rule_patch, Mapping) and "type" in rule_patch:
        merged["rule"] = _strip_nulls(rule_patch)
    elif "rule" in patch:
        merged = merge_patch(merged, {"rule": rule_patch}) if rule_patch is not None \
            else {key: value for key, value in merged.items() if key != "rule"}
    return merged


def apply_overrides(baseline: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``baseline`` with ``overrides`` applied (see the module docstring).

    The result is not validated: load it with :func:`core.scoring.parse_standard`.
    :raises OverrideError: the override's shape is wrong (paths relative to the override).
    """
    if not isinstance(overrides, Mapping):
        raise OverrideError({"": ["Overrides are an object (a merge patch over the standard)."]})
    errors: dict[str, list[str]] = {}
    for key in FIXED:
        if key in overrides:
            errors[key] = [f"The {key} of a standard cannot be overridden."]
    items_patch = overrides.get("items") or {}
    if not isinstance(items_patch, Mapping):
        errors["items"] = ["Item overrides are an object keyed by item code."]
        items_patch = {}
    removals = overrides.get(REMOVE_ITEMS) or []
    if not isinstance(removals, list) or not all(isinstance(code, str) for code in removals):
        errors[REMOVE_ITEMS] = ["A list of item codes."]
        removals = []
    items = [dict(item) for item in baseline.get("items", [])]
    known = {item.get("code") for item in items}
    for code in removals:
        if code not in known:
            errors.setdefault(REMOVE_ITEMS, []).append(f"There is no item {code!r} to remove.")
    for code, patch in items_patch.items():
        path = f"items.{code}"
        if patch is None:
            if code not in known:
                errors.setdefault(path, []).append(f"There is no item {code!r} to remove.")
        elif not isinstance(patch, Mapping):
            errors.setdefault(path, []).append("An item override is an object (or null to remove it).")
        elif "code" in patch and patch["code"] != code:
            errors.setdefault(f"{path}.code", []).append(
                "An item's code cannot be changed; remove it and add a new one.")
        elif code in removals:
            errors.setdefault(path, []).append(f"Item {code!r} is both changed and removed.")
    if errors:
        raise OverrideError(errors)

    rest = {key: value for key, value in overrides.items() if key not in ("items", REMOVE_ITEMS)}
    document = merge_patch({key: value for key, value in baseline.items() if key != "items"}, rest)
    removed = set(removals) | {code for code, patch in items_patch.items() if patch is None}
    merged_items = []
    for item in items:
        code = item.get("code")
        if code in removed:
            continue
        patch = items_patch.get(code)
        merged_items.append(_merge_item(item, patch) if patch else item)
    for code, patch in items_patch.items():
        if patch is not None and code not in known:
            merged_items.append({"code": code, **_strip_nulls(patch)})
    document["items"] = merged_items
    return document


def error_paths(messages: Any, document: Mapping[str, Any] | None = None,
                prefix: str = "") -> dict[str, list[str]]:
    """Flatten marshmallow's nested messages for a standard into ``{path: [message]}``.

    Items are named by their code (``items.response.rule.limit``) when ``document`` (the
    document that was validated) gives it; other list positions are numbers
    (``grades.0.min``); ``_schema`` messages belong to the enclosing path.
    """
    out: dict[str, list[str]] = {}

    def join(path: str, key: Any) -> str:
        return f"{path}.{key}" if path else str(key)

    def walk(node: Any, path: str, items: list | None) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == "_schema":
                    walk(value, path, None)
                elif isinstance(key, int) and items is not None and key < len(items) \
                        and isinstance(items[key], Mapping) and items[key].get("code"):
                    walk(value, join(path, items[key]["code"]), None)
                elif key == "items" and items is None and path == prefix and document is not None:
                    listed = document.get("items")
                    walk(value, join(path, key), listed if isinstance(listed, list) else None)
                else:
                    walk(value, join(path, key), None)
        elif isinstance(node, (list, tuple)):
            for value in node:
                if isinstance(value, (Mapping, list, tuple)):
                    walk(value, path, items)
                else:
                    out.setdefault(path or "_schema", []).append(str(value))
        else:
            out.setdefault(path or "_schema", []).append(str(node))

    walk(messages, prefix, None)
    return out


IGNORED = frozenset(FIXED)


def diff(baseline: Mapping[str, Any], document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """How ``document`` differs from ``baseline``: ``[{path, baseline, tenant}]``.

    Items are compared by code (``items.<code>.<field>``; an added item has
    ``baseline: null``, a removed one ``tenant: null``); nested objects (titles, rules)
    key by key; lists and other values as a whole. ``code`` and ``version`` are ignored.
    """
    changes: list[dict[str, Any]] = []

    def compare(old: Any, new: Any, path: str) -> None:
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            for key in _keys(old, new):
                compare(old.get(key), new.get(key), f"{path}.{key}")
        elif old != new:
            changes.append({"path": path, "baseline": old, "tenant": new})

    for key in _keys(baseline, document):
        if key in IGNORED:
            continue
        if key == "items":
            old_items = _by_code(baseline.get("items") or [])
            new_items = _by_code(document.get("items") or [])
            for code in _keys(old_items, new_items):
                compare(old_items.get(code), new_items.get(code), f"items.{code}")
        else:
            compare(baseline.get(key), document.get(key), key)
    return changes


def _keys(*mappings: Mapping[str, Any]) -> Iterable[str]:
    seen: dict[str, None] = {}
    for mapping in mappings:
        for key in mapping:
            seen.setdefault(key, None)
    return list(seen)


def _by_code(items: list) -> dict[str, Any]:
    return {item.get("code"): item for item in items if isinstance(item, Mapping)}
