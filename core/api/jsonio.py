"""JSON in and out of the API at C speed, with Flask's and marshmallow's results.

Every request parses a JSON body or query with a marshmallow schema and answers JSON;
on the hot paths (creating a record) Python's ``json`` and marshmallow's generic
machinery cost as much as the database. Two drop-in pieces keep the results and the
errors exactly as they were:

- :class:`JSONProvider` (``app.json``): responses are serialised by orjson, and bodies
  parsed by it. Whatever orjson will not take the same way goes to Flask's default
  provider: a body it refuses or reads differently (``NaN``, integers of 19 digits or
  more, lone surrogates, which Python's parser accepts) is parsed by ``json.loads``, and a value it cannot serialise
  (an integer beyond 64 bits, a key that is not a string) by ``json.dumps``. Dates and
  datetimes still go through Flask's ``default`` (HTTP dates), dataclasses and
  subclasses of built-in types too. Text is written as UTF-8 rather than ``\\u``
  escapes: the same JSON.
- :class:`ArgumentsParser`: webargs' parser, which loads a payload with the schema's
  :func:`core.fastload.fast_loader` when it has one and the payload is plainly valid
  (the same result as ``schema.load``), and with marshmallow otherwise (every error
  is marshmallow's).
"""

from __future__ import annotations

import json
import re
import weakref
from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider
from marshmallow import RAISE
from webargs.core import _UNKNOWN_DEFAULT_PARAM, missing
from webargs.flaskparser import FlaskParser

from core.fastload import fast_loader

_LONG_NUMBER = re.compile(rb"[0-9]{19}")
_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
            | orjson.OPT_PASSTHROUGH_SUBCLASS)


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with orjson underneath (see the module docstring)."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        # orjson reads an integer of 19 digits or more as a float (or refuses it):
        # such a body goes to Python's parser, which keeps it exact.
        raw = s if isinstance(s, bytes) else s.encode("utf-8", "surrogatepass")
        if not kwargs and _LONG_NUMBER.search(raw) is None:
            try:
                return orjson.loads(s)
            except orjson.JSONDecodeError:
                pass  # Python's parser decides, and words its error, as before
        return json.loads(s, **kwargs)

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
    """webargs' Flask parser with :mod:`core.fastload`'s fast path for plain valid input."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Per schema instance (webargs makes one per request from a schema class).
        self._fast: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

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
