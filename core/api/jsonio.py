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
- :func:`loads` (in :mod:`core.jsonparse`, below the API, so imports parse with it too)
  refuses, as a :class:`RefusedValue` (a ``JSONDecodeError``: a 400 with a
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
  is marshmallow's). A query parameter that takes one value and is given several
  times is a 422, not its first value alone.
"""

from __future__ import annotations

import weakref
from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider
from marshmallow import RAISE, ValidationError
from webargs.core import _UNKNOWN_DEFAULT_PARAM, missing
from webargs.flaskparser import FlaskParser, abort, is_json_request

from servq.core.db.fast import fast_loader
from servq.core.jsonparse import RefusedValue, loads

_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
            | orjson.OPT_PASSTHROUGH_SUBCLASS)


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


def _load_keys(schema) -> set[str]:
    """The names ``schema`` loads (``data_key`` where a field has one)."""
    return {field.data_key or name for name, field in schema.fields.items() if not field.dump_only}


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

    def load_querystring(self, req, schema):
        # webargs reads the first of a repeated parameter that takes one value and drops
        # the rest without a word (``?metrics=a&metrics=b`` asked for a only): refused.
        # Only the schema's own arguments: an argument it does not know is left alone,
        # repeated or not, as webargs leaves it.
        proxy = super().load_querystring(req, schema)
        args = req.args
        repeated = {key: [f"Given {len(values)} times; give it once (where it takes several values, "
                          f"they are comma-separated)."]
                    for key, values in args.lists() if len(values) > 1 and key not in proxy.multiple_keys}
        if repeated:  # rare: the schema's names are looked up only then
            known = _load_keys(schema)
            repeated = {key: message for key, message in repeated.items() if key in known}
        if repeated:
            raise ValidationError(repeated)
        return proxy

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
