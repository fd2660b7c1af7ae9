"""JSON in and out of the API at C speed, with Flask's and marshmallow's results.

Every request parses a JSON body or query with a marshmallow schema and answers JSON;
on the hot paths (creating a record) Python's ``json`` and marshmallow's generic
machinery cost as much as the database. Drop-in pieces keep the results and the
errors exactly as they were:

- :class:`JSONProvider` (``app.json``): responses are serialised by orjson, and bodies
  parsed by it (:func:`loads`, which webargs' parser uses too). Whatever orjson will not
  take the same way goes to Flask's default provider: a body it refuses or reads
  differently (``NaN``, integers of 19 digits or more) is parsed by ``json.loads``, and
  a value it cannot serialise (an integer beyond 64 bits, a key that is not a string) by
  ``json.dumps``. Dates and datetimes still go through Flask's ``default`` (HTTP
  dates), dataclasses and subclasses of built-in types too. Text is written as UTF-8
  rather than ``\\u`` escapes: the same JSON.
- :func:`loads` refuses, as a :class:`RefusedValue` (a ``JSONDecodeError``: a 400 with a
  message saying what and where), what no servq field can hold and Python's parser
  would let through or fail on with a 500: a lone surrogate (``"\\ud800"``, half of a
  UTF-16 pair: not a Unicode character; PostgreSQL refuses it, SQLite stored it and no
  export could then write it as UTF-8), a number written with more than
  :data:`MAX_NUMBER_CHARS` characters (Python refuses integers beyond 4,300 digits
  with a ``ValueError``) and a number too large for a double (``1e999``). Every JSON
  body of the API goes through it: one place for every field of every resource.
- :class:`ArgumentsParser`: webargs' parser, reading bodies with :func:`loads` (UTF-8
  only, as webargs' own), which loads a payload with the schema's
  :func:`core.db.fast.fast_loader` when it has one and the payload is plainly valid
  (the same result as ``schema.load``), and with marshmallow otherwise (every error
  is marshmallow's).
"""

from __future__ import annotations

import json
import math
import re
import weakref
from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider
from marshmallow import RAISE
from webargs.core import _UNKNOWN_DEFAULT_PARAM, missing
from webargs.flaskparser import FlaskParser, abort, is_json_request

from servq.core.db.fast import fast_loader

_LONG_NUMBER = re.compile(rb"[0-9]{19}")
#: The longest number a JSON body may hold, as written (sign, digits, point, exponent).
MAX_NUMBER_CHARS = 100
# A \uD800-\uDFFF escape in the raw text, or such a code point in a str body: the body
# may hold a lone surrogate (a pair is one character once parsed; see _lone_surrogate).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
            | orjson.OPT_PASSTHROUGH_SUBCLASS)


class RefusedValue(json.JSONDecodeError):
    """Valid JSON holding a value servq refuses (see :func:`loads`); ``str()`` is the
    message for the client."""

    def __init__(self, message: str, doc: str | bytes):
        super().__init__(message, doc if isinstance(doc, str) else doc.decode("utf-8", "replace"), 0)
        self.message = message

    def __str__(self) -> str:
        return self.message


class _Refused(ValueError):
    """Raised inside the parser's hooks, turned into :class:`RefusedValue`."""


def _number_text(text: str) -> None:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(f"A number may be written with at most {MAX_NUMBER_CHARS} characters; "
                       f"this one has {len(text):,}.")


def _parse_int(text: str) -> int:
    _number_text(text)
    return int(text)


def _parse_float(text: str) -> float:
    _number_text(text)
    value = float(text)
    if math.isinf(value):
        raise _Refused(f"The number {text} is too large (beyond ±1.8e308).")
    return value


def _lone_surrogate(value: Any, path: tuple = ()) -> tuple | None:
    """The path to the first string (or key) of ``value`` holding a lone surrogate."""
    if isinstance(value, str):
        return path if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _SURROGATE.search(key):
                return (*path, key)
            found = _lone_surrogate(item, (*path, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _lone_surrogate(item, (*path, index))
            if found is not None:
                return found
    return None


def loads(s: str | bytes, *, utf8_only: bool = False, **kwargs: Any) -> Any:
    """Parse a JSON body as Python's ``json.loads`` would, at orjson's speed where orjson
    reads it the same way; refuse (:class:`RefusedValue`) lone surrogates, numbers
    longer than :data:`MAX_NUMBER_CHARS` characters and numbers beyond a double.
    Other bad JSON raises ``json.JSONDecodeError`` as before. ``utf8_only``: bytes must
    be UTF-8 (``UnicodeDecodeError`` otherwise), where ``json.loads`` would also read
    UTF-16 and UTF-32."""
    # orjson reads an integer of 19 digits or more as a float (or refuses it):
    # such a body goes to Python's parser, which keeps it exact. orjson refuses lone
    # surrogates and infinite numbers itself, so what it parses is fine as it is.
    raw = s if isinstance(s, bytes) else s.encode("utf-8", "surrogatepass")
    if not kwargs and _LONG_NUMBER.search(raw) is None:
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError:
            pass  # Python's parser decides, and words its error, as before
    if utf8_only and isinstance(s, bytes):
        s = s.decode("utf-8")
    kwargs.setdefault("parse_int", _parse_int)
    kwargs.setdefault("parse_float", _parse_float)
    try:
        value = json.loads(s, **kwargs)
    except _Refused as exc:
        raise RefusedValue(str(exc), s) from None
    if _SURROGATE_ESCAPE.search(raw) or (isinstance(s, str) and _SURROGATE.search(s)):
        path = _lone_surrogate(value)
        if path is not None:
            # The path may itself hold the surrogate (a key): written as an escape.
            where = ".".join(str(p) for p in path).encode("utf-8", "backslashreplace").decode("utf-8")
            raise RefusedValue("Text must be Unicode characters: a string holds a lone surrogate "
                               "(half of a UTF-16 pair, e.g. \\ud800)"
                               + (f" at {where}." if where else "."), s)
    return value


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with orjson underneath (see the module docstring)."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s, **kwargs)

    def response(self, *args: Any, **kwargs: Any):
        compact = not ((self.compact is None and self._app.debug) or self.compact is False)
        if compact and not self.sort_keys:
            obj = self._prepare_response_obj(args, kwargs)
            try:
                body = orjson.dumps(obj, default=self.default, option=_OPTIONS)
            except orjson.JSONEncodeError:
                pass  # what orjson refuses (huge integers, non-string keys): as before
            else:
                return self._app.response_class(body + b"\n", mimetype=self.mimetype)
        return super().response(*args, **kwargs)


class ArgumentsParser(FlaskParser):
    """webargs' Flask parser with :mod:`core.db.fast.loads`'s fast path for plain valid input."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Per schema instance (webargs makes one per request from a schema class).
        self._fast: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _raw_load_json(self, req) -> Any:
        # webargs' own reads with json.loads: bodies go through loads() instead, UTF-8
        # only as webargs' (a body in another encoding is a 400, as before).
        if not is_json_request(req):
            return missing
        return loads(req.get_data(cache=True), utf8_only=True)

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        if isinstance(error, RefusedValue):
            abort(400, exc=error, messages={"json": [error.message]})
        super()._handle_invalid_json_error(error, req, *args, **kwargs)

    def _fast_loader(self, schema):
        try:
            return self._fast[schema]
        except KeyError:
            loader = self._fast[schema] = fast_loader(schema)
            return loader

    def _process_location_data(self, location_data, schema, req, location, unknown, validators):
        if location == "json" and location_data is not missing and not validators:
            if unknown == _UNKNOWN_DEFAULT_PARAM:
                unknown = self.unknown if self.unknown != _UNKNOWN_DEFAULT_PARAM \
                    else self.DEFAULT_UNKNOWN_BY_LOCATION.get(location)
            loader = self._fast_loader(schema) if unknown in (None, RAISE) else None
            if loader is not None:
                loaded = loader(self.pre_load(location_data, schema=schema, req=req, location=location))
                if loaded is not None:
                    return loaded
        return super()._process_location_data(location_data, schema, req, location, unknown, validators)
