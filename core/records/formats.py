"""Reading the files ``servq records import`` takes: JSON Lines and CSV, a record per
line, as :class:`Line` items for :func:`servq.core.records.ingest.import_records`.

JSON Lines are parsed by orjson where it reads a line exactly as ``json.loads`` does, and
by ``json.loads`` otherwise (see :func:`read_jsonl`); CSV has a header of the columns in
:data:`CSV_COLUMNS` plus ``data`` (a JSON object) or ``data.<field>`` columns, typed by the
kind's schema. A file that cannot be read at all raises :class:`ImportRefused` with a
``header`` message; a line that cannot be read is a :class:`Line` with its error.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import partial
from typing import Any, BinaryIO, Iterator, Mapping, NamedTuple

import orjson
from marshmallow import fields

from servq.core import jsonparse
from servq.core.plugins import RecordKind
from servq.core.records.pipeline import _schema_instance

def flatten(errors: Any, prefix: str = "") -> list[tuple[str, str]]:
    """``(path, message)`` pairs of a marshmallow-shaped error dict; ``_schema`` and
    ``_line`` belong to the enclosing path (``record`` at the top)."""
    if isinstance(errors, Mapping):
        pairs = []
        for key, value in errors.items():
            if key in ("_schema", "_line"):
                path = prefix
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            pairs.extend(flatten(value, path))
        return pairs
    if isinstance(errors, (list, tuple)):
        pairs = []
        for message in errors:
            pairs.extend(flatten(message, prefix))
        return pairs
    return [(prefix or "record", str(errors))]


@dataclass
class LineError:
    """The problems of one bad record: ``line`` (file line, or batch index) and errors
    shaped like marshmallow's (``{"data": {"title": ["Missing data ..."]}}``)."""

    line: int
    errors: dict[str, Any]

    def messages(self) -> list[str]:
        """``"<field path>: <message>"`` for each problem (``record`` for the whole line)."""
        return [f"{path}: {message}" for path, message in flatten(self.errors)]


class ImportRefused(Exception):
    """The input holds bad records; nothing may be committed.

    ``errors`` lists each bad record (at most ``MAX_ERRORS``; ``truncated`` when reading
    stopped there); ``header`` is set when the file itself cannot be read (a CSV header
    naming unknown columns), before any record.
    """

    def __init__(self, errors: list[LineError], *, truncated: bool = False, header: str | None = None):
        super().__init__(header or f"{len(errors)} bad record(s)")
        self.errors = errors
        self.truncated = truncated
        self.header = header


FORMATS = ("jsonl", "csv")
#: The CSV columns besides ``data`` and ``data.<field>``.
CSV_COLUMNS = ("kind", "occurred_at", "status", "site", "site_id", "staff", "staff_id")
_CONTAINERS = (fields.List, fields.Tuple, fields.Dict, fields.Nested)


class Line(NamedTuple):
    """One record read from a file: its line number and either its raw fields or the
    errors that kept it from being read (marshmallow-shaped)."""

    number: int
    raw: dict[str, Any] | None
    errors: dict[str, Any] | None = None


_new_line = partial(tuple.__new__, Line)


_NINES = bytes.maketrans(b"012345678", b"999999999")
_NINETEEN_DIGITS = b"9" * 19


def read_jsonl(stream: BinaryIO) -> Iterator[Line]:
    """The records of a JSON Lines file: one JSON object per line; blank lines skipped.

    A line that is not a JSON object is yielded with its error, keyed ``_line``.

    Lines are parsed by orjson when it reads them exactly as ``json.loads`` does: a JSON
    object of valid UTF-8, with no run of 19 digits (an integer beyond 64 bits, which
    orjson reads as a float). Anything else (a first line, which may start with a BOM,
    ``NaN``, a lone surrogate, a bad line) goes through ``json.loads``, which decides and
    words the error as before, with the API's limits (:func:`core.jsonparse.loads`): a
    lone surrogate, a number over 100 characters or beyond a double is refused.
    """
    loads = orjson.loads
    for number, raw in enumerate(stream, start=1):
        if number > 1 and _NINETEEN_DIGITS not in raw.translate(_NINES):
            try:
                value = loads(raw)
            except orjson.JSONDecodeError:
                pass
            else:
                if value.__class__ is dict:
                    yield _new_line((number, value, None))  # Line(number, value), in C
                    continue
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
        except UnicodeDecodeError as error:
            yield Line(number, None, {"_line": [f"Not UTF-8: {error.reason} at byte {error.start}."]})
            continue
        if not text:
            continue
        try:
            value = jsonparse.loads(text)
        except ValueError as error:
            yield Line(number, None, {"_line": [_json_error(error)]})
            continue
        if not isinstance(value, dict):
            yield Line(number, None, {"_line": ["Each line must be a JSON object (one record)."]})
            continue
        yield Line(number, value)


def _json_error(error: ValueError) -> str:
    if isinstance(error, jsonparse.RefusedValue):
        return str(error)
    return f"Not valid JSON: {error}."


def read_csv(stream: BinaryIO, kinds: Mapping[str, RecordKind]) -> Iterator[Line]:
    """The records of a CSV file with a header row (UTF-8, a BOM is allowed).

    Columns: ``kind``, ``occurred_at``, ``status``, ``site`` (code) or ``site_id``,
    ``staff`` (code) or ``staff_id``, and the record's ``data`` as ``data.<field>``
    columns (``data.a.b`` nests), a ``data`` column holding a JSON object, or both (the
    ``data.<field>`` cells go on top). Empty cells are left out. A ``data.<field>`` cell
    whose field is a list, dict or nested object in the kind's schema is read as JSON;
    other cells stay text, which the kind's schema converts (``"3"`` for an integer,
    ``"true"`` for a boolean). Line numbers count the header as line 1.

    :raises ImportRefused: when the header names a column not listed above.
    """
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        yield from _csv_lines(csv.reader(text), kinds)
    finally:
        text.detach()  # the caller's stream stays open (and its position readable)


def _csv_lines(reader, kinds: Mapping[str, RecordKind]) -> Iterator[Line]:
    try:
        header = next(reader)
    except StopIteration:
        return
    except (csv.Error, UnicodeDecodeError) as error:
        raise ImportRefused([], header=f"line 1: cannot read the CSV header: {error}") from None
    header = [name.strip() for name in header]
    unknown = [name for name in header if name not in CSV_COLUMNS and name != "data"
               and not (name.startswith("data.") and all(name.split(".")[1:]))]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if unknown or repeated or "kind" not in header:
        problems = []
        if unknown:
            problems.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
        if repeated:
            problems.append(f"repeated column(s) {', '.join(map(repr, repeated))}")
        if "kind" not in header:
            problems.append("no 'kind' column")
        raise ImportRefused([], header=(
            f"line 1: {'; '.join(problems)}; the columns are {', '.join(CSV_COLUMNS)}, "
            "data (a JSON object) and data.<field>"))
    last = reader.line_num
    while True:
        start = last + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as error:
            yield Line(start, None, {"_line": [f"Not readable as CSV: {error}."]})
            return
        last = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield Line(start, None, {"_line": [
                f"Has {len(row)} cell(s); the header has {len(header)} column(s)."]})
            continue
        yield _csv_record(start, header, row, kinds)


def _csv_record(number: int, header: list[str], row: list[str],
                kinds: Mapping[str, RecordKind]) -> Line:
    raw: dict[str, Any] = {}
    data: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    cells = [(name, cell) for name, cell in zip(header, row) if cell != ""]
    for name, cell in cells:
        if name == "data":
            try:
                loaded = jsonparse.loads(cell)
            except ValueError as error:
                errors["data"] = [_json_error(error)]
                continue
            if not isinstance(loaded, dict):
                errors["data"] = ["Must be a JSON object."]
                continue
            data = {**loaded, **data}
        elif not name.startswith("data."):
            raw[name] = cell
    kind = kinds.get(raw.get("kind", ""))
    declared = _schema_instance(kind.schema).fields if kind is not None else {}
    for name, cell in cells:
        if not name.startswith("data."):
            continue
        path = name.split(".")[1:]
        value: Any = cell
        if len(path) == 1 and isinstance(declared.get(path[0]), _CONTAINERS):
            try:
                value = jsonparse.loads(cell)
            except ValueError as error:
                errors.setdefault("data", {})[path[0]] = [_json_error(error)]
                continue
        node = data
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[path[-1]] = value
    if errors:
        return Line(number, None, errors)
    if data or any(name == "data" or name.startswith("data.") for name in header):
        raw["data"] = data
    return Line(number, raw)


def read_file(stream: BinaryIO, fmt: str, kinds: Mapping[str, RecordKind]) -> Iterator[Line]:
    """The records of ``stream`` in format ``fmt`` (``jsonl`` or ``csv``)."""
    if fmt == "jsonl":
        return read_jsonl(stream)
    if fmt == "csv":
        return read_csv(stream, kinds)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def guess_format(filename: str) -> str:
    """``csv`` for ``*.csv``, else ``jsonl``."""
    return "csv" if filename.lower().endswith(".csv") else "jsonl"


# -- validating and writing -------------------------------------------------------------


