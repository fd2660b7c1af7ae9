"""Personal data in records: masking for roles without ``personal_data``, and the audit
of every read by a role that has it.

A record kind names the paths of its ``data`` that hold personal data
(``RecordKind.personal``, e.g. ``("customer",)`` or ``("customer.phone",)``). Core knows
no industry: it masks whatever those paths hold, by the shape of each value:

* an e-mail address keeps its first character and its domain: ``z***@example.com``;
* a phone number keeps its first three and last four digits: ``138****5678`` (shorter
  numbers keep two and two);
* any other text keeps its first character: ``张*``, ``J***``;
* other values (numbers, booleans) become ``"***"``; ``None`` and ``""`` stay as they are;
* a mapping or list at a path is masked leaf by leaf.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from servq.core.models import AuditEvent

READ_ACTION = "personal_data_read"
_PHONE_RE = re.compile(r"^\+?[\d\s\-().]{7,}$")


def mask_text(value: str) -> str:
    """Mask one text by its shape (see the module docstring)."""
    text = value.strip()
    if not text:
        return value
    if "@" in text and " " not in text:
        local, _, domain = text.rpartition("@")
        return f"{local[:1]}***@{domain}" if local else f"***@{domain}"
    digits = re.sub(r"\D", "", text)
    if _PHONE_RE.match(text) and len(digits) >= 7:
        head, tail = (3, 4) if len(digits) >= 11 else (2, 2)
        return f"{digits[:head]}{'*' * (len(digits) - head - tail)}{digits[-tail:]}"
    return text[0] + "*" * max(1, min(len(text) - 1, 8))


def mask_value(value: Any) -> Any:
    """Mask ``value`` and everything inside it."""
    if value is None:
        return None
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {key: mask_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(item) for item in value]
    return "***"


def _mask_path(data: Mapping[str, Any], keys: list[str]) -> Mapping[str, Any]:
    head, rest = keys[0], keys[1:]
    if head not in data:
        return data
    out = dict(data)  # a copy: the record's own data is never changed
    if rest:
        if isinstance(data[head], Mapping):
            out[head] = _mask_path(data[head], rest)
    else:
        out[head] = mask_value(data[head])
    return out


def mask_paths(data: Any, paths: Iterable[str]) -> Any:
    """A copy of ``data`` with the value at each dotted path masked."""
    if not isinstance(data, Mapping):
        return data
    for path in paths:
        data = _mask_path(data, path.split("."))
    return data


def _with_path(data: Mapping[str, Any], keys: list[str], source: Any) -> Mapping[str, Any]:
    head, rest = keys[0], keys[1:]
    present = isinstance(source, Mapping) and head in source
    out = dict(data)
    if rest:
        inner = data.get(head)
        if isinstance(inner, Mapping):
            out[head] = _with_path(inner, rest, source.get(head) if present else None)
        elif present:
            out[head] = source[head]
        else:
            out.pop(head, None)
    elif present:
        out[head] = source[head]
    else:
        out.pop(head, None)
    return out


def keep_paths(new: Any, old: Any, paths: Iterable[str]) -> Any:
    """A copy of ``new`` whose value at each dotted path is ``old``'s (absent when ``old``
    has none): what a caller who sees personal data masked sends back can neither
    overwrite nor erase it."""
    if not isinstance(new, Mapping):
        return new
    for path in paths:
        new = _with_path(new, path.split("."), old)
    return new


def _present(value: Any) -> bool:
    if value is None or value == "":
        return False
    if isinstance(value, Mapping):
        return any(_present(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_present(v) for v in value)
    return True


def personal_paths_present(data: Any, paths: Iterable[str]) -> list[str]:
    """The paths of ``paths`` that hold a value in ``data``."""
    found = []
    for path in paths:
        value: Any = data
        for key in path.split("."):
            value = value.get(key) if isinstance(value, Mapping) else None
        if _present(value):
            found.append(path)
    return found


def audit_reads(session, records: Iterable[Any], kinds: Mapping[str, Any], actor_id,
                via: str) -> int:
    """Add one ``personal_data_read`` audit event per record of ``records`` whose kind
    has personal paths holding a value; returns how many. The caller has checked that
    the reader may see personal data, and commits."""
    events = []
    for record in records:
        kind = kinds.get(record.kind)
        if kind is None or not kind.personal:
            continue
        paths = personal_paths_present(record.data, kind.personal)
        if paths:
            events.append(AuditEvent(entity="records", entity_id=record.id, action=READ_ACTION,
                                     actor_user_id=actor_id, changes={"paths": paths, "via": via}))
    session.add_all(events)
    return len(events)
