"""Fast paths for marshmallow: loads of plain, valid input (bulk ingestion, request
bodies) and dumps of plain fields (:class:`FastDumpSchema`).

:func:`fast_loader` compiles a schema into a function that loads a payload, returning
exactly what ``schema.load`` returns (with ``dump``, what ``schema.dump`` of that
returns; with ``json_default`` too, that dump as JSON gives it back, as
:func:`core.records.pipeline.load_data` stores it), or ``None`` whenever the payload is
anything but plainly valid (wrong type, missing required field, unknown key, a validator
or a hook refusing, a value marshmallow would convert, NaN or NUL for the JSON form). The
caller then loads with marshmallow as before, so every error keeps marshmallow's shape
and wording: the fast path never produces an error of its own.

What it inlines: ``String``, ``Integer``, ``Float``, ``Boolean``, ``UUID``,
``AwareDateTime``, ``Raw``, ``Dict`` of string keys, ``List`` of any of these,
``Nested`` (single, and in a ``List``; the nested schema compiled the same way, with the
``unknown`` the field passes) and the fields' validators. Every other field (``Decimal``,
``Date``, ``DateTime``, ``Email``, a plugin's own ``Field`` subclass…) is loaded by its
own ``deserialize``, so it is right by construction. The schema's own hook methods run as
marshmallow runs them, with the same arguments: ``@validates`` per field, then
``@validates_schema`` (``pass_collection`` ones first), then ``@post_load`` (likewise);
any exception in one sends the payload to marshmallow. Defaults (``load_default``,
callables too) are stored unvalidated, as marshmallow does. The dump calls each field's
conversion directly where it leaves the value as it is, ``serialize`` where there is a
``dump_default`` or an unusual attribute, and ``schema.dump`` for a schema with dump
hooks. No fast loader (``None``): a ``pre_load`` hook, ``partial``, ``many``, a top-level
``unknown`` other than ``RAISE`` (callers may pass ``RAISE`` to ``load``), dotted
attributes; a ``Nested(many=True)`` or a field with its own ``pre_load``/``post_load``
functions is left to its ``deserialize``.

Measured (``load_data`` per record, one CPU, best of five): a courier delivery with a
six-turn call transcript (``bench/courier_import.py``) 250 → 42 µs; an after-sales call
with a five-turn transcript (``bench/aftersales_calls.py``) 110 → 40 µs, of which about
half is the plugin's own transcript field (masking numbers, counting speech). End to end
on PostgreSQL (``servq records import``, 2 shared CPUs): 20,000 courier deliveries took
13.2 → 10.5 s of the importer's CPU (31.0 → 28.3 s wall), 10,000 after-sales calls
4.6 → 4.3 s (5.9 → 5.7 s); validation is no longer what bounds either import (scoring,
clocks and the plugins' ``record_evaluated`` are).
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime
from typing import Any, Callable

from marshmallow import EXCLUDE, RAISE, Schema, fields
from marshmallow.decorators import POST_DUMP, POST_LOAD, PRE_DUMP, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
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


def _scalar(field: fields.Field) -> Callable[[Any], Any] | None:
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
    elif cls is fields.UUID:
        def load(value):
            if value.__class__ is not str:
                raise _Fallback
            try:
                return uuid.UUID(value)
            except ValueError:
                raise _Fallback from None
    elif cls is fields.AwareDateTime and field.format in (None, "iso", "iso8601") \
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


def _plain_field(field: fields.Field) -> bool:
    """Whether ``field`` runs marshmallow's own ``Field.deserialize`` (no per-field
    ``pre_load``/``post_load`` functions), so the fast path may inline it."""
    return not getattr(field, "pre_load", None) and not getattr(field, "post_load", None)


def _value_loader(field: fields.Field) -> Callable[..., Any]:
    """What ``field.deserialize`` does with a value that is present (``None`` included),
    for any field: inlined for the plain ones, the field's own ``deserialize`` otherwise
    (a custom field, ``Raw``, ``Decimal``, ``Date``…: correct by construction)."""
    load = scalar = None
    cls = type(field)
    if not _plain_field(field):
        pass
    elif cls is fields.Nested:
        load = _nested(field)
    elif cls is fields.List:
        inner = _value_loader(field.inner)

        def load(value):
            if value.__class__ is not list:
                raise _Fallback
            return [inner(item) for item in value]
    elif cls is fields.Raw:
        def load(value):
            return value
    elif cls is fields.Dict:
        if field.value_field is None and type(field.key_field) is fields.String \
                and not field.key_field.validators and _plain_field(field.key_field):
            def load(value):
                if value.__class__ is not dict:
                    raise _Fallback
                for key in value:
                    if key.__class__ is not str:
                        raise _Fallback
                return dict(value)
    else:
        load = _scalar(field)  # runs the field's validators itself
        if load is not None:
            scalar = load
            load = None
    if load is None and scalar is None:
        deserialize = field.deserialize

        def generic(value, name=None, payload=None):
            try:
                return deserialize(value, name, payload)
            except Exception:  # a ValidationError, or whatever marshmallow will raise again
                raise _Fallback from None
        return generic
    if load is not None and field.validators:
        unchecked = load

        def load(value):
            value = unchecked(value)
            _run_validators(field, value)
            return value
    elif load is None:
        load = scalar
    allow_none = field.allow_none
    present = load

    def load(value, name=None, payload=None):
        if value is None:
            if allow_none:
                return None
            raise _Fallback
        return present(value)
    load.inlined = True
    return load


def _nested(field: fields.Nested) -> Callable[[Any], Any] | None:
    try:
        schema = field.schema
    except Exception:
        return None
    if schema.many or field.many:
        return None  # marshmallow's own path
    return _schema_loader(schema, field.unknown)


def _schema_loader(schema: Schema, unknown: str | None = None) -> Callable[[Any], Any] | None:
    """``schema.load`` (with ``unknown`` as ``Nested`` passes it) for plainly valid input,
    raising :class:`_Fallback` for anything else; ``None`` when the schema cannot have one
    (``pre_load`` hooks, ``partial``, ``many``, ``unknown=INCLUDE``, dotted attributes)."""
    unknown = schema.unknown if unknown is None else unknown
    hooks = schema._hooks
    if hooks[PRE_LOAD] or schema.many or schema.partial or unknown not in (RAISE, EXCLUDE):
        return None
    plan = []
    for name, field in schema.load_fields.items():
        key = field.attribute or name
        if "." in key:
            return None
        data_key = field.data_key if field.data_key is not None else name
        load = _value_loader(field)
        inlined = getattr(load, "inlined", False)
        plan.append((data_key, key, load, inlined, field.required, field.load_default))
    keys = frozenset(data_key for data_key, *_ in plan)
    raising = unknown == RAISE
    dict_class = schema.dict_class
    field_validators = []
    for attr_name, _many, kwargs in hooks[VALIDATES]:
        for field_name in kwargs["field_names"]:
            field = schema.fields.get(field_name)
            if field is None:
                if field_name in schema.declared_fields:
                    continue
                return None  # marshmallow raises ValueError: let it
            data_key = field.data_key if field.data_key is not None else field_name
            field_validators.append((getattr(schema, attr_name), field.attribute or field_name, data_key))
    schema_validators = [(getattr(schema, attr_name), kwargs.get("pass_original", False))
                         for collection in (True, False)
                         for attr_name, hook_many, kwargs in hooks[VALIDATES_SCHEMA] if hook_many == collection]
    processors = [(getattr(schema, attr_name), kwargs.get("pass_original", False))
                  for collection in (True, False)
                  for attr_name, hook_many, kwargs in hooks[POST_LOAD] if hook_many == collection]
    partial = schema.partial

    def load(payload: Any) -> Any:
        if payload.__class__ is not dict:
            raise _Fallback
        if raising:
            for key in payload:
                if key not in keys:
                    raise _Fallback
        out = dict_class()
        for data_key, key, load_value, inlined, required, default in plan:
            value = payload.get(data_key, _MISSING)
            if not inlined:
                value = load_value(value, data_key, payload)
                if value is not _MISSING:
                    out[key] = value
            elif value is _MISSING:
                if default is _MISSING:
                    if required:
                        raise _Fallback
                    continue
                out[key] = default() if callable(default) else default
            else:
                out[key] = load_value(value)
        try:
            for validator, key, data_key in field_validators:
                if key in out and validator(out[key], data_key=data_key) is _MISSING:
                    out.pop(key, None)
            for validator, pass_original in schema_validators:
                if pass_original:
                    validator(out, payload, partial=partial, many=False, unknown=unknown)
                else:
                    validator(out, partial=partial, many=False, unknown=unknown)
            result = out
            for processor, pass_original in processors:
                if pass_original:
                    result = processor(result, payload, many=False, partial=partial, unknown=unknown)
                else:
                    result = processor(result, many=False, partial=partial, unknown=unknown)
        except Exception:  # a ValidationError, or whatever marshmallow will raise again
            raise _Fallback from None
        return result

    return load


_SAME = {fields.String: str, fields.Integer: int, fields.Float: float, fields.Boolean: bool}


def _value_dumper(field: fields.Field, safe: Callable[[Any], Any] | None) -> Callable[[Any, str, Any], Any]:
    """``field._serialize`` (what ``serialize`` does with a value found), inlined where
    the conversion leaves the value as it is; with ``safe``, made JSON-safe as it goes
    (``safe`` for what is neither a plain value nor built here)."""
    cls = type(field)
    same = _SAME.get(cls)
    convert = field._serialize
    if same is not None and not getattr(field, "as_string", False):
        if safe is None:
            def dump(value, attr, obj):
                if value is None or value.__class__ is same:
                    return value
                return convert(value, attr, obj)
        elif same is str or same is float:
            def dump(value, attr, obj):
                if value.__class__ is same:
                    if same is str and "\x00" in value or same is float and not math.isfinite(value):
                        raise _Fallback
                    return value
                return None if value is None else safe(convert(value, attr, obj))
        else:
            def dump(value, attr, obj):
                if value is None or value.__class__ is same:
                    return value
                return safe(convert(value, attr, obj))
        return dump
    if cls is fields.Raw:
        if safe is None:
            return lambda value, attr, obj: value
        return lambda value, attr, obj: safe(value)
    if cls is fields.List:
        inner = _value_dumper(field.inner, safe)
        return lambda value, attr, obj: None if value is None else [inner(item, attr, obj) for item in value]
    if cls is fields.Nested and not field.many:
        try:
            schema = field.schema
        except Exception:  # marshmallow raises it again
            schema = None
        if schema is not None and not schema.many:
            inner = _schema_dumper(schema, safe)
            return lambda value, attr, obj: None if value is None else inner(value)
    if safe is None:
        return convert
    return lambda value, attr, obj: safe(convert(value, attr, obj))


def _schema_dumper(schema: Schema, safe: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """``schema.dump`` of a dict: the fields' conversions called directly; anything else
    (hooks, an overridden ``get_attribute``, a ``dump_default``, a dotted attribute, an
    object rather than a dict) through marshmallow's own path. With ``safe``, the dump
    as :func:`_json_safe` gives it."""
    hooks = schema._hooks
    whole = schema.dump if safe is None else (lambda obj: safe(schema.dump(obj)))
    if hooks[PRE_DUMP] or hooks[POST_DUMP] or schema.many or type(schema).get_attribute is not Schema.get_attribute \
            or schema.dict_class is not dict:
        return whole
    plan = []
    for name, field in schema.dump_fields.items():
        attr = field.attribute if field.attribute is not None else name
        key = field.data_key if field.data_key is not None else name
        if key.__class__ is not str or "\x00" in key:
            return whole
        if field._CHECK_ATTRIBUTE and field.dump_default is _MISSING and isinstance(attr, str) and "." not in attr:
            plan.append((key, attr, name, _value_dumper(field, safe), None))
        else:
            plan.append((key, attr, name, None, field))
    get_attribute = schema.get_attribute

    def dump(obj: Any) -> Any:
        if obj.__class__ is not dict:
            return whole(obj)
        out = {}
        for key, attr, name, convert, field in plan:
            if convert is None:
                value = field.serialize(name, obj, accessor=get_attribute)
                if value is _MISSING:
                    continue
                if safe is not None:
                    value = safe(value)
            else:
                value = obj[attr] if attr in obj else getattr(obj, attr, _MISSING)
                if value is _MISSING:
                    continue
                value = convert(value, name, obj)
            out[key] = value
        return out

    return dump


def _json_safe(value: Any, default: Callable[[Any], Any]) -> Any:
    """``json.loads(json.dumps(value, default=default, allow_nan=False))``, a fresh copy,
    or :class:`_Fallback` for what that refuses (NaN, infinity) or PostgreSQL does (NUL)."""
    cls = value.__class__
    if cls is str:
        if "\x00" in value:
            raise _Fallback
        return value
    if cls is int or cls is bool or value is None:
        return value
    if cls is float:
        if not math.isfinite(value):
            raise _Fallback
        return value
    if cls is dict:
        out = {}
        for key, item in value.items():
            if key.__class__ is not str or "\x00" in key:
                raise _Fallback
            out[key] = _json_safe(item, default)
        return out
    if cls is list or cls is tuple:
        return [_json_safe(item, default) for item in value]
    # json.dumps encodes part by part: this part alone gives the same text.
    try:
        return _json_safe(json.loads(json.dumps(value, default=default, allow_nan=False)), default)
    except Exception:
        raise _Fallback from None


def fast_loader(schema: Schema, *, dump: bool = False,
                json_default: Callable[[Any], Any] | None = None) -> Callable[[Any], Any] | None:
    """A fast loader for ``schema`` (see the module docstring), or ``None`` when the schema
    has anything the fast path does not reproduce exactly.

    With ``dump``, the loader returns ``schema.dump(schema.load(payload))`` instead; with
    ``json_default`` too, that dump as ``json.loads(json.dumps(dumped, default=json_default,
    allow_nan=False))`` gives it, ``None`` for a value JSON or PostgreSQL refuses (NaN,
    NUL): :func:`core.records.pipeline.load_data`'s stored ``data``.
    """
    # The schema's own ``unknown`` must be RAISE: callers (webargs) may pass RAISE to load.
    load = _schema_loader(schema) if schema.unknown == RAISE else None
    if load is None:
        return None
    if not dump:
        def loader(payload: Any) -> Any:
            try:
                return load(payload)
            except (_Fallback, RecursionError):
                return None
        return loader
    if json_default is None:
        dumper = _schema_dumper(schema, None)
    else:
        dumper = _schema_dumper(schema, lambda value: _json_safe(value, json_default))

    def loader(payload: Any) -> Any:
        try:
            return dumper(load(payload))
        except (_Fallback, RecursionError):
            return None
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
