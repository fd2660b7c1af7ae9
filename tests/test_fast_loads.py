"""core.db.fast.loads' fast loader gives exactly marshmallow's result, or nothing.

The record kinds of every builtin plugin (and core's) are checked on what their demo
companies write, valid, and on variants of it that are not (a field missing, ``None``,
of another type, an unknown key at each level): the fast path either returns what
``schema.dump(schema.load(raw))`` stored as JSON gives, or ``None`` and marshmallow answers
(errors unchanged). Small schemas pin the rest: hooks in marshmallow's order, defaults,
nested ``None``, custom fields.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
import time_machine
from marshmallow import (EXCLUDE, RAISE, Schema, ValidationError, fields, post_load, validate, validates,
                         validates_schema)

from servq.core.db.fast import fast_loader
from servq.core.records import pipeline
from servq.core.records.pipeline import _data_default, _fast_data_loader, marshmallow_data
from servq.tenants.onboarding import example_manifests, onboard

MANIFESTS = ("aftersales.toml", "courier.toml", "hotel.toml", "property.toml")
ODD_VALUES = (None, 12345, 1.5, "text", [], {}, True, [{"x": 1}], "2026-13-40T99:00:00")


def _agree(schema_cls, raw) -> dict | None:
    """The fast path's answer for ``raw``, checked against marshmallow's."""
    fast = _fast_data_loader(schema_cls)
    got = fast(copy.deepcopy(raw)) if fast is not None else None
    try:
        want = marshmallow_data(schema_cls, copy.deepcopy(raw))
    except ValidationError:
        assert got is None, (schema_cls, raw, got)
        return None
    if got is not None:
        # The same keys in the same order (SQLite stores the text as it is).
        assert json.dumps(got) == json.dumps(want), (schema_cls, raw)
    return got


def _variants(raw: dict):
    """Variants of a valid ``data``: each key missing, set to odd values, an unknown key,
    and the same one level down (nested objects, the first item of lists of objects)."""
    yield {**raw, "__unknown__": 1}
    for key, value in raw.items():
        yield {k: v for k, v in raw.items() if k != key}
        for odd in ODD_VALUES:
            yield {**raw, key: odd}
        if isinstance(value, dict):
            for inner in _variants(value):
                yield {**raw, key: inner}
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for inner in _variants(value[0]):
                yield {**raw, key: [inner, *value[1:]]}


@pytest.mark.parametrize("manifest_name", MANIFESTS)
@time_machine.travel("2026-06-15T04:00:00+00:00", tick=False)
def test_demo_records_same_as_marshmallow(app, monkeypatch, manifest_name):
    """Every ``data`` a demo company writes goes through both paths: the fast one answers
    for plainly valid data (each kind at least once) with marshmallow's result."""
    seen: dict[type, list] = defaultdict(list)
    fast_hits: Counter = Counter()

    def checking(schema_cls):
        def load(raw):
            got = _agree(schema_cls, raw)
            if len(seen[schema_cls]) < 3:
                seen[schema_cls].append(copy.deepcopy(raw))
            fast_hits[schema_cls] += got is not None
            return got
        return load

    monkeypatch.setattr(pipeline, "_fast_data_loader", checking)
    manifest = dict(example_manifests())[manifest_name]
    onboard(app, manifest, demo=True)
    monkeypatch.undo()
    assert seen
    for schema_cls, samples in seen.items():
        assert fast_hits[schema_cls], f"{schema_cls.__name__}: never on the fast path"
        for raw in samples:
            for variant in _variants(raw):
                _agree(schema_cls, variant)


def test_every_registered_kind_schema_has_a_fast_loader(app):
    """Nested schemas, hooks, custom fields: no kind of a builtin plugin is left out."""
    kinds = app.extensions["servq.plugins"].kinds
    assert {name.split(".")[0] for name in kinds} >= {"courier", "aftersales", "hotel", "property"}
    missing = sorted(name for name, kind in kinds.items() if _fast_data_loader(kind.schema) is None)
    assert missing == []


# Small schemas -------------------------------------------------------------------------

CALLS: list = []


class Inner(Schema):
    class Meta:
        unknown = RAISE

    n = fields.Integer(required=True, validate=validate.Range(min=0))
    tags = fields.List(fields.String(), load_default=list)
    when = fields.Date(load_default=None, allow_none=True)

    @post_load
    def _mark(self, data, **kwargs):
        CALLS.append(("inner.post_load", kwargs["many"], kwargs["unknown"]))
        data["seen"] = True
        return data


class Loose(Schema):
    class Meta:
        unknown = EXCLUDE

    a = fields.String()


class Upper(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).upper()


class Outer(Schema):
    class Meta:
        unknown = RAISE

    name = Upper(required=True)
    inner = fields.Nested(Inner, load_default=None, allow_none=True)
    items = fields.List(fields.Nested(Inner), load_default=list, validate=validate.Length(max=3))
    strict_inner = fields.Nested(Inner, load_default=dict)
    loose = fields.Nested(Loose, load_default=None, allow_none=True)
    price = fields.Decimal(as_string=True, load_default=None, allow_none=True)
    at = fields.AwareDateTime(load_default=None, allow_none=True)
    stamp = fields.DateTime(load_default=None, allow_none=True)
    extra = fields.Raw(load_default=None)
    made = fields.Raw(load_default=lambda: {"made": [1, 2]})
    shown = fields.String(dump_default="shown")
    renamed = fields.Integer(data_key="renamedKey", load_default=7)

    @validates("name")
    def _name(self, value, data_key, **kwargs):
        CALLS.append(("validates", value, data_key))
        if value == "BAD":
            raise ValidationError("bad name")

    @validates_schema(pass_collection=True)
    def _whole(self, data, **kwargs):
        CALLS.append(("validates_schema collection",))

    @validates_schema(pass_original=True)
    def _check(self, data, original, **kwargs):
        CALLS.append(("validates_schema", "name" in original, kwargs["partial"], kwargs["many"]))
        if data.get("price") is not None and data["price"] > 100:
            raise ValidationError("too dear", "price")

    @post_load(pass_collection=True)
    def _first(self, data, **kwargs):
        CALLS.append(("post_load collection",))
        return data

    @post_load(pass_original=True)
    def _second(self, data, original, **kwargs):
        CALLS.append(("post_load", sorted(original)))
        data["derived"] = len(data["name"])
        return data


def _both(schema, raw):
    CALLS.clear()
    fast = fast_loader(schema)(copy.deepcopy(raw))
    fast_calls = list(CALLS)
    CALLS.clear()
    try:
        slow = schema.load(copy.deepcopy(raw))
    except ValidationError as error:
        return fast, fast_calls, error, list(CALLS)
    return fast, fast_calls, slow, list(CALLS)


def test_hooks_run_in_marshmallows_order_with_its_arguments():
    raw = {"name": "ann", "inner": {"n": 1}, "items": [{"n": 2, "tags": ["x"]}], "price": "12.50"}
    fast, fast_calls, slow, slow_calls = _both(Outer(), raw)
    assert fast == slow and fast is not None
    assert fast_calls == slow_calls
    assert [call[0] for call in fast_calls] == [
        "inner.post_load", "inner.post_load", "validates", "validates_schema collection",
        "validates_schema", "post_load collection", "post_load"]
    assert fast["derived"] == 3 and fast["name"] == "ANN" and fast["price"] == Decimal("12.50")
    assert fast["inner"] == {"n": 1, "tags": [], "when": None, "seen": True}


def test_defaults_are_filled_in_as_marshmallow_does():
    schema = Outer()
    fast, _, slow, _ = _both(schema, {"name": "x"})
    assert fast == slow
    # A default is stored as it is, not loaded (no nested post_load for strict_inner's).
    assert fast["items"] == [] and fast["strict_inner"] == {}
    assert fast["made"] == {"made": [1, 2]} and fast["made"] is not Outer().load({"name": "x"})["made"]
    assert fast["renamed"] == 7 and "shown" not in fast
    # The stored form: dump_default, data_key, decimals and dates as JSON gives them.
    stored = fast_loader(schema, dump=True, json_default=_data_default)
    raw = {"name": "x", "price": "3.10", "at": "2026-06-01T08:00:00+08:00", "stamp": "2026-06-01T08:00:00",
           "inner": {"n": 0, "when": "2026-06-01"}, "renamedKey": 3}
    want = json.loads(json.dumps(schema.dump(schema.load(raw)), default=_data_default))
    got = stored(raw)
    assert json.dumps(got) == json.dumps(want)
    assert got["shown"] == "shown" and got["price"] == "3.10" and got["inner"]["when"] == "2026-06-01"


def test_nested_none_and_errors_fall_back():
    schema = Outer()
    loader = fast_loader(schema)
    assert loader({"name": "x", "inner": None, "loose": None}) == schema.load({"name": "x", "inner": None,
                                                                             "loose": None})
    invalid = [
        {"name": "x", "strict_inner": None},  # Nested without allow_none
        {"name": "x", "items": [None]},  # List(Nested) item
        {"name": "x", "items": [{"n": 1}] * 4},  # the List's validator
        {"name": "x", "inner": {"n": -1}},  # a nested field's validator
        {"name": "x", "inner": {"n": 1, "zzz": 1}},  # unknown key, nested RAISE
        {"name": "x", "inner": [{"n": 1}]},  # not a dict
        {"name": "bad"},  # @validates
        {"name": "x", "price": "1000"},  # validates_schema
        {"name": "x", "price": "NaN-ish"},  # the Decimal field itself
        {"name": 5},  # the custom field
        {},  # required
        {"name": "x", "renamed": 1},  # its data_key is renamedKey
        {"name": "x", "at": "2026-06-01T08:00:00"},  # naive for an AwareDateTime
    ]
    for raw in invalid:
        assert loader(copy.deepcopy(raw)) is None, raw
        with pytest.raises(ValidationError):
            schema.load(raw)
    # EXCLUDE in a nested schema drops the unknown key, as marshmallow does.
    raw = {"name": "x", "loose": {"a": "1", "b": 2}}
    assert loader(raw) == schema.load(raw) and loader(raw)["loose"] == {"a": "1"}


def test_json_safe_refusals_fall_back_to_marshmallows_errors():
    class Free(Schema):
        blob = fields.Raw()
        ratio = fields.Float()

    stored = fast_loader(Free(), dump=True, json_default=_data_default)
    assert stored({"blob": {"a": [1, (2, 3)], "d": dt.date(2026, 1, 2)}}) == {"blob": {"a": [1, [2, 3]],
                                                                                   "d": "2026-01-02"}}
    assert stored({"blob": float("nan")}) is None
    assert stored({"blob": {"x\x00": 1}}) is None
    assert stored({"blob": "a\x00b"}) is None
    assert stored({"blob": {1: 2}}) is None  # JSON would make the key a string: marshmallow's path does


def test_schemas_the_fast_path_leaves_to_marshmallow():
    from marshmallow import pre_load

    class WithPreLoad(Schema):
        a = fields.String()

        @pre_load
        def _strip(self, data, **kwargs):
            return data

    class Excluding(Schema):
        class Meta:
            unknown = EXCLUDE

        a = fields.String()

    assert fast_loader(WithPreLoad()) is None
    assert fast_loader(Excluding()) is None  # webargs may pass unknown=RAISE to the top level
