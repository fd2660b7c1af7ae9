"""Parsing JSON with servq's limits: :func:`loads`, what every JSON body of the API and
every JSON cell of an import goes through (:mod:`core.api.jsonio` explains the limits).

It sits below the API so that imports (:mod:`core.records.ingest`) use the same limits
without importing the HTTP layer.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

_LONG_NUMBER = re.compile(rb"[0-9]{19}")
#: The longest number a JSON body may hold, as written (sign, digits, point, exponent).
MAX_NUMBER_CHARS = 100
# A \uD800-\uDFFF escape in the raw text, or such a code point in a str body: the body
# may hold a lone surrogate (a pair is one character once parsed; see _lone_surrogate).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")

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
