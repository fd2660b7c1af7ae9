"""Fast paths for marshmallow: loads of plain, valid input (bulk ingestion, request
bodies) and dumps of plain fields (:class:`FastDumpSchema`).

:func:`fast_loader` turns a schema made only of plain fields (``String``, ``Integer``,
``Float``, ``Boolean``, ``UUID``, ``AwareDateTime``, ``Dict`` of string keys, ``List`` of
plain scalars; no hooks, no ``data_key``, ``unknown=RAISE``) into a function that loads a
payload in a few microseconds, returning exactly what ``schema.load`` returns, or
``None`` whenever the payload is anything but plainly valid (wrong type, missing required
field, unknown key, a validator refusing, a value marshmallow would convert). The caller
then loads with marshmallow as before, so every error keeps marshmallow's shape and
wording: the fast path never produces an error of its own. Schemas with anything else
get no fast loader (``None``) and always go through marshmallow.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any, Callable

from marshmallow import RAISE, Schema, fields
from marshmallow.utils import missing

_MISSING = missing


class _Fallback(Exception):
    """The payload needs marshmallow (a conversion or an error)."""


def _run_validators(field: fields.Field, value: Any) -> None:
    for validator in field.validators:
        try:
            result = validator(value)
        except Exception:  # a ValidationError, or anything the validator raises
            raise _Fallback from None
        if result is False:
            raise _Fallback


def _scalar(field: fields.Field, *, dumpable: bool) -> Callable[[Any], Any] | None:
    """A checker for one scalar field (``None`` when the field is not supported)."""
    cls = type(field)
    checks = bool(field.validators)
    if cls is fields.String:
        def load(value):
            if value.__class__ is not str or "\x00" in value:
                raise _Fallback
            return value
    elif cls is fields.Integer:
        if getattr(field, "as_string", False):
            return None

        def load(value):
            if value.__class__ is not int:
                raise _Fallback
            return value
    elif cls is fields.Float:
        if getattr(field, "as_string", False):
            return None

        def load(value):
            if value.__class__ is not float or not math.isfinite(value):
                raise _Fallback
            return value
    elif cls is fields.Boolean:
        def load(value):
            if value.__class__ is not bool:
                raise _Fallback
            return value
    elif cls is fields.UUID and not dumpable:
        def load(value):
            if value.__class__ is not str:
                raise _Fallback
            try:
                return uuid.UUID(value)
            except ValueError:
                raise _Fallback from None
    elif cls is fields.AwareDateTime and not dumpable and field.format in (None, "iso", "iso8601") \
            and field.default_timezone is None:
        def load(value):
            if value.__class__ is not str or not value:
                raise _Fallback
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise _Fallback from None
            if parsed.tzinfo is None or parsed.utcoffset() is None:
                raise _Fallback
            return parsed
    else:
        return None
    if not checks:
        return load

    def checked(value):
        value = load(value)
        _run_validators(field, value)
        return value
    return checked


def _field(field: fields.Field, *, dumpable: bool) -> Callable[[Any], Any] | None:
    cls = type(field)
    if cls is fields.List:
        inner = _scalar(field.inner, dumpable=dumpable)
        if inner is None or field.inner.allow_none or field.inner.load_default is not _MISSING:
            return None

        def load(value):
            if value.__class__ is not list:
                raise _Fallback
            return [inner(item) for item in value]
    elif cls is fields.Dict and not dumpable:
        if field.validators or field.value_field is not None or type(field.key_field) is not fields.String \
                or field.key_field.validators:
            return None

        def load(value):
            if value.__class__ is not dict:
                raise _Fallback
            for key in value:
                if key.__class__ is not str:
                    raise _Fallback
            return dict(value)
    else:
        return _scalar(field, dumpable=dumpable)
    if not field.validators or cls is not fields.List:
        return load

    def checked(value):
        value = load(value)
        _run_validators(field, value)
        return value
    return checked


def fast_loader(schema: Schema, *, dump: bool = False) -> Callable[[Any], dict | None] | None:
    """A fast loader for ``schema`` (see the module docstring), or ``None`` when the schema
    has anything the fast path does not reproduce exactly.

    With ``dump``, the loader returns ``schema.dump(schema.load(payload))`` instead (for
    :func:`core.records.pipeline.load_data`); only fields whose dump equals their load qualify.
    """
    if any(schema._hooks.values()) or schema.many or schema.unknown != RAISE \
            or schema.partial or set(schema.load_fields) != set(schema.fields):
        return None
    if dump and list(schema.dump_fields) != list(schema.load_fields):
        return None
    plan = []
    for name, field in schema.load_fields.items():
        if field.data_key not in (None, name) or field.attribute not in (None, name):
            return None
        load = _field(field, dumpable=dump)
        if load is None:
            return None
        if dump and field.load_default is not _MISSING:
            # marshmallow stores a default unvalidated and dumps it: only plain ones qualify.
            default = field.load_default
            if callable(default) and default not in (list, dict):
                return None
            sample = default() if callable(default) else default
            if sample is not None:
                try:
                    load(sample)
                except _Fallback:
                    return None
        plan.append((name, load, field.required, field.load_default, field.allow_none))
    names = frozenset(name for name, *_ in plan)

    def loader(payload: Any) -> dict | None:
        if payload.__class__ is not dict:
            return None
        for key in payload:
            if key not in names:
                return None
        out = {}
        try:
            for name, load, required, default, allow_none in plan:
                value = payload.get(name, _MISSING)
                if value is _MISSING:
                    if default is _MISSING:
                        if required:
                            return None
                        continue
                    out[name] = default() if callable(default) else default
                elif value is None:
                    if not allow_none:
                        return None
                    out[name] = None
                else:
                    out[name] = load(value)
        except _Fallback:
            return None
        return out

    return loader


class FastDumpSchema(Schema):
    """A schema whose dump skips marshmallow's per-field plumbing, with the same result.

    marshmallow's ``Schema._serialize`` asks each field to ``serialize`` itself, which
    fetches the value through the schema's ``get_attribute`` and checks for a
    ``dump_default``; for plain fields read from an object's attributes or a dict's keys
    (no ``dump_default``, no dotted ``attribute``, no field that skips the value such as
    ``Method``, ``get_attribute`` not overridden) this one reads the value the same way
    and calls the field's own conversion (``field._serialize``) directly. Other fields go
    through ``serialize`` as before. Hooks (``pre_dump``, ``post_dump``) run as usual:
    only the loop over the fields changes. For the schemas that answer on hot paths
    (a created record).
    """

    def _serialize(self, obj: Any, *, many: bool = False):
        if many and obj is not None:
            return [self._serialize(item, many=False) for item in obj]
        plan = self.__dict__.get("_servq_dump_plan")
        if plan is None:
            plan = self.__dict__["_servq_dump_plan"] = _dump_plan(self)
        out = self.dict_class()
        by_item = hasattr(obj, "__getitem__")
        for key, attr, convert, field in plan:
            if convert is None:
                value = field.serialize(attr, obj, accessor=self.get_attribute)
                if value is _MISSING:
                    continue
            else:
                if by_item:
                    try:
                        value = obj[attr]
                    except (KeyError, IndexError, TypeError, AttributeError):
                        value = getattr(obj, attr, _MISSING)
                else:
                    value = getattr(obj, attr, _MISSING)
                if value is _MISSING:
                    continue
                value = convert(value, attr, obj)
            out[key] = value
        return out


def _dump_plan(schema: Schema) -> tuple:
    """``(key, attribute, conversion or None, field)`` per dump field of ``schema``."""
    direct = type(schema).get_attribute is Schema.get_attribute
    plan = []
    for name, field in schema.dump_fields.items():
        attr = field.attribute if field.attribute is not None else name
        plain = (direct and field._CHECK_ATTRIBUTE and field.dump_default is _MISSING
                 and isinstance(attr, str) and "." not in attr)
        plan.append((field.data_key if field.data_key is not None else name,
                     attr if plain else name, field._serialize if plain else None, field))
    return tuple(plan)
