"""Changes to a tenant's standards: the next version from the API or from a manifest.

:func:`change_standard` stores the next version of a standard (overrides of a shipped
standard, or the whole document of a standard of the tenant's own), refusing wrong input
with the path of each problem; :func:`apply_manifest_standards` applies a manifest's
``[standards."<code>"]`` tables through it. The versions themselves, their adoption and
the caches are in :mod:`core.standards.store`.
"""

from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy import select

from servq.core.models import StandardVersion
from servq.core.scoring import StandardError, dump_standard, parse_standard
from servq.core.standards.catalogue import reserved_prefix, rule_registry, shipped_standards
from servq.core.standards.overrides import OverrideError, apply_overrides, error_paths
from servq.core.standards.store import (StandardConflict, StandardInvalid, StandardNotFound, _in_force_row,
                                        _plugin_of, _store, _Visibility, adopt)


def visible_row(session, code: str) -> StandardVersion | None:
    """The stored version in force of ``code`` if the tenant sees it (database read)."""
    row = _in_force_row(session, code)
    if row is None or not _Visibility(session)(_plugin_of(row.baseline)):
        return None
    return row


def baseline_document(session, row: StandardVersion) -> dict[str, Any] | None:
    """The shipped document a tenant version was derived from (``None`` for its own).

    That is the tenant's version 1: the copy stored at adoption. A newer file shipped by
    a later release of the plugin does not change a standard the tenant has adopted.
    """
    if row.baseline is None:
        return None
    if row.version == 1:
        return row.document
    first = session.scalar(select(StandardVersion.document).where(
        StandardVersion.code == row.code, StandardVersion.version == 1))
    if first is not None:
        return first
    shipped = shipped_standards().get(row.code)
    return shipped.document if shipped is not None else None


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return ({k: v for k, v in a.items() if k != "version"}
            == {k: v for k, v in b.items() if k != "version"})


def change_standard(session, code: str, *, overrides: Mapping[str, Any] | None = None,
                    document: Mapping[str, Any] | None = None, note: str | None = None,
                    actor_id=None, expected_version: int | None = None
                    ) -> tuple[str, StandardVersion]:
    """Store the next version of standard ``code`` for the session's tenant.

    For a shipped standard (adopted first if need be) ``overrides`` is the tenant's whole
    override document, applied to the shipped baseline (it replaces the previous
    overrides). For a standard of the tenant's own, ``document`` is the whole standard
    (its ``code`` may be left out; ``version`` is assigned). A new code defines a new
    standard of the tenant's own; it may not start with ``core.`` or a loaded plugin's
    ``<id>.``.

    :param expected_version: the version in force the caller saw (its ETag); ``None``
        for "no version yet" when creating, or to skip the check (manifests).
    :return: ``(outcome, version)``: ``created`` (a new standard of the tenant's own),
        ``updated`` (a new version) or ``unchanged`` (the result equals the version in
        force; nothing is stored).
    :raises StandardNotFound: the code belongs to a plugin the tenant has not enabled.
    :raises StandardInvalid: wrong input, with the path of each problem.
    :raises StandardConflict: another change stored the next version first.
    """
    for name, value in (("overrides", overrides), ("document", document)):
        if value is not None and _too_deep(value):
            raise StandardInvalid({name: [f"Nested deeper than {MAX_DEPTH} levels."]})
    registry = rule_registry()
    row = _in_force_row(session, code)
    visible = _Visibility(session)
    shipped = shipped_standards().get(code)
    if row is not None and row.baseline is not None:
        if not visible(_plugin_of(row.baseline)):
            raise StandardNotFound(code)
        based_on_shipped = True
    elif row is None and shipped is not None:
        if not visible(shipped.plugin):
            raise StandardNotFound(code)
        based_on_shipped = True
    else:
        based_on_shipped = False

    if based_on_shipped:
        if document is not None:
            raise StandardInvalid({"document": [
                f"{code!r} is a shipped standard: send 'overrides', not a whole document."]})
        if row is None:
            if expected_version not in (None, 1):
                raise StandardConflict(code)
            row = adopt(session, shipped, actor_id)
        prefix = "overrides"
        base = baseline_document(session, row)
        try:
            merged = apply_overrides(base, overrides or {})
        except OverrideError as error:
            raise StandardInvalid({_join(prefix, path): messages
                                   for path, messages in error.errors.items()}) from None
        baseline = row.baseline
    else:
        if overrides is not None:
            raise StandardInvalid({"overrides": [
                f"{code!r} is not a shipped standard: send the whole 'document'."]})
        if not isinstance(document, Mapping):
            raise StandardInvalid({"document": ["A standard of your own needs its whole document."]})
        if row is None:
            reserved = reserved_prefix(code)
            if reserved is not None:
                raise StandardInvalid({"code": [
                    f"Codes starting with {reserved!r} are reserved for shipped standards; "
                    "give your own standards another prefix (e.g. your tenant's slug)."]})
        if "code" in document and document["code"] != code:
            raise StandardInvalid({"document.code": [f"Must be {code!r}, the code in the URL."]})
        prefix = "document"
        merged = dict(document)
        baseline = None
        overrides = {}

    current = row.version if row is not None else 0
    if expected_version is not None and expected_version != current:
        raise StandardConflict(code)
    merged = {**merged, "code": code, "version": current + 1}
    try:
        standard = parse_standard(merged, rules=registry, source=code)
    except StandardError as error:
        raise StandardInvalid(error_paths(error.messages, merged, prefix)) from None
    canonical = dump_standard(standard, rules=registry)
    if row is not None and _same(canonical, row.document):
        return "unchanged", row
    stored = _store(session, code=code, version=current + 1, document=canonical,
                    baseline=baseline, overrides=dict(overrides or {}), note=note,
                    actor_id=actor_id, action="created" if row is None else "changed")
    if stored is None:
        raise StandardConflict(code)
    return ("created" if row is None else "updated"), stored


MAX_DEPTH = 16


def _too_deep(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` nests objects or lists more than :data:`MAX_DEPTH` levels (a
    standard needs 5; the merge and the diff recurse)."""
    if depth > MAX_DEPTH:
        return True
    if isinstance(value, Mapping):
        return any(_too_deep(item, depth + 1) for item in value.values())
    if isinstance(value, list):
        return any(_too_deep(item, depth + 1) for item in value)
    return False


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if path else prefix


def apply_manifest_standards(session, tables: Mapping[str, Mapping[str, Any]],
                             actor_id=None) -> dict[str, str]:
    """Apply a manifest's ``[standards."<code>"]`` tables; ``{code: outcome}``.

    For a shipped standard the table is the override document (plus an optional
    ``note``); for any other code it is the whole document of a standard of the
    tenant's own. Idempotent: the same manifest again stores no new version.

    :raises StandardInvalid: with paths ``standards."<code>".<path>`` for every problem of
        every table (nothing is stored then: the caller rolls back).
    """
    outcomes: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for code, table in tables.items():
        table = dict(table)
        note = table.pop("note", None)
        if note is not None and not isinstance(note, str):
            errors[f'standards."{code}".note'] = ["A text."]
            continue
        row = _in_force_row(session, code)
        shipped = row.baseline is not None if row is not None else code in shipped_standards()
        try:
            outcome, _ = change_standard(
                session, code, note=note, actor_id=actor_id,
                **({"overrides": table} if shipped else {"document": table}))
        except StandardNotFound:
            errors[f'standards."{code}"'] = [
                "This standard belongs to a plugin the tenant has not enabled."]
            continue
        except StandardInvalid as error:
            for path, messages in error.errors.items():
                path = path.split(".", 1)[1] if path.startswith(("overrides.", "document.")) \
                    else ("" if path in ("overrides", "document") else path)
                errors[f'standards."{code}"' + (f".{path}" if path else "")] = messages
            continue
        outcomes[code] = outcome
    if errors:
        raise StandardInvalid(errors, "The manifest's standards are not valid.")
    return outcomes
