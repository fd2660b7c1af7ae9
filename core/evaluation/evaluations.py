"""Scoring records against the standards in force, and storing the evaluations: nothing else.

:func:`score_records` looks up the standards once per kind (an inspection: the standard
it names, once per code) and scores every record with the pure engine;
:func:`store_evaluations` writes the results with bulk statements (one SELECT of the
existing evaluations per thousand records, one multi-row INSERT, UPDATEs of the rows that
changed). A record of a kind no standard applies to costs no query. The effects of a
score (corrective actions, deadline clocks, KPI days, ``record_evaluated``) are started
by the record's write pipeline, :func:`servq.core.records.evaluate.evaluate_records`,
which calls these two and then each effect in turn; :func:`failures` and :func:`timed`
say which scored items need one.

Records a bulk import has just inserted (a :class:`~servq.core.db.fast.BulkWriter`) skip
the SELECTs of existing evaluations; when no ORM object of their evaluations is wanted
(:func:`insert_evaluations`), on PostgreSQL their ``items`` are serialised by orjson
straight from the engine's result (:func:`items_json`, the same JSON as
:func:`json_items` gives) and go into the INSERT as they are, which is queued with the
rest of the import's chunk.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import Enum
from types import MappingProxyType
from typing import Any, NamedTuple, Sequence

import orjson
from sqlalchemy import delete, select, update

from servq.core.calendar import WALL
from servq.core.calendar.tenant import tenant_calendar
from servq.core.db.fast import JsonText, Writer, new_ids
from servq.core.evaluation.errors import RecordInvalid
from servq.core.models import Evaluation, Record
from servq.core.evaluation.inspections import named_standard
from servq.core.evaluation.overrides import overrides_for
from servq.core.evaluation.placeholders import placeholder_values
from servq.core.evaluation.values import INSPECTION, inspection_plan, record_values
from servq.core.scoring import CompiledStandard, Outcome, RuleInputError, evaluate
from servq.core.scoring.engine import _json_safe
from servq.core.scoring.phrases import placeholder_names
from servq.core.scoring.registry import CORE_RULE_TYPES
from servq.core.scoring.rules import FrozenEvidence, TextEvidence
from servq.core.standards import rule_registry, standards_for_kind

_EVALUATIONS = Evaluation.__table__
_FAILED = (Outcome.FAIL, Outcome.BREACHED)
_CORE_TYPES = frozenset(rule_type.name for rule_type in CORE_RULE_TYPES)
CHUNK = 1000
#: The scalar columns of an evaluation row besides its keys.
COLUMNS = ("standard_version", "evaluated_at", "total", "max_total", "percent", "grade",
           "passed", "complete", "failed_critical", "items", "original_percent")


class Facts(NamedTuple):
    """What the evaluation loop needs to know of a compiled standard beyond the engine."""

    flagged: tuple[tuple[int, Any], ...]  # (position, Item) of critical / action_on_failure items
    deadlines: bool                       # has deadline items: its clocks are synchronised
    calendar: bool                        # needs the tenant's business calendar
    placeholders: bool = False            # has phrases with <placeholders> (tenant values)


_FACTS: dict[int, tuple[CompiledStandard, Facts]] = {}
_FACTS_LOCK = threading.Lock()


def facts(compiled: CompiledStandard) -> Facts:
    """The :class:`Facts` of ``compiled`` (computed once per compiled object)."""
    hit = _FACTS.get(id(compiled))
    if hit is not None and hit[0] is compiled:
        return hit[1]
    items = compiled.standard.items
    found = Facts(
        flagged=tuple((n, item) for n, item in enumerate(items) if item.critical or item.action_on_failure),
        deadlines=any(item.rule.type == "deadline" for item in items),
        calendar=any(item.rule.type == "deadline" or item.rule.type not in _CORE_TYPES
                     for item in items),
        placeholders=any(item.rule.type == "phrases" and placeholder_names(item.rule.params)
                         for item in items))
    with _FACTS_LOCK:
        if len(_FACTS) >= 512:
            _FACTS.pop(next(iter(_FACTS)))
        _FACTS[id(compiled)] = (compiled, found)
    return found


class _Standards:
    """The standards that apply to each record, looked up once per kind / code per call:
    ``(version, compiled, facts)`` triples."""

    def __init__(self, session):
        self.session = session
        self.by_kind: dict[str, tuple] = {}
        self.by_code: dict[str | None, tuple] = {}

    def of(self, record: Record) -> tuple:
        if record.kind == INSPECTION:
            code = (record.data or {}).get("standard")
            triples = self.by_code.get(code)
            if triples is None:
                pair = named_standard(self.session, code)
                triples = self.by_code[code] = \
                    ((pair[0], pair[1], facts(pair[1])),) if pair is not None else ()
            return triples
        triples = self.by_kind.get(record.kind)
        if triples is None:
            triples = self.by_kind[record.kind] = tuple(
                (version, compiled, facts(compiled))
                for version, compiled in standards_for_kind(self.session, record.kind))
        return triples


def _input_errors(record: Record, standard_code: str, compiled: CompiledStandard,
                  error: RuleInputError) -> dict:
    """Field errors for a value the engine could not judge, naming the item."""
    code = getattr(error, "code", None)
    if record.kind == INSPECTION and code is not None:
        return {"data": {"answers": {code: [str(error)]}}}
    field = code or "_schema"
    if code is not None:
        try:
            params = compiled.standard.item(code).rule.params
        except KeyError:
            params = {}
        field = params.get("field", code)
    return {"data": {field: [f"Standard {standard_code!r}, {error}"]}}


def score_records(session, records: Sequence[Record], now: datetime, *,
                  overrides: bool = True) -> tuple[list[tuple], Any]:
    """Score ``records`` (flushed or pending, of the session's tenant, or rows read as
    records: :class:`~servq.core.db.fast.RowView`) against the standards in force that
    apply to each; nothing is written.

    :param overrides: honour the items' overrides (:mod:`.overrides`; one query per
        thousand records); ``False`` for records inserted in this transaction, which
        cannot have any yet.

    :return: ``(scored, calendar)``: a ``(record, version, compiled, facts, result)`` per
        record and standard, and the tenant's calendar if scoring needed it (else ``None``).
    :raises RecordInvalid: when a value cannot be judged by its item's rule; its
        ``errors`` are keyed by the position of each bad record in ``records``
        (``{3: {"data": {...}}}``), a lone record's unkeyed.
    """
    standards = _Standards(session)
    by_kind = standards.by_kind
    registry = None
    calendar = None
    placeholders = None
    scored: list[tuple[Record, Any, CompiledStandard, Facts, Any]] = []
    append = scored.append
    errors: dict[int, dict] = {}
    decided = overrides_for(session, [record.id for record in records]) if overrides and records else {}
    for position, record in enumerate(records):
        kind = record.kind
        triples = by_kind.get(kind) if kind != INSPECTION else None
        if triples is None:
            triples = standards.of(record)
        if not triples:
            continue
        values = None
        for version, compiled, known in triples:
            target = compiled
            if kind == INSPECTION:
                if registry is None:
                    registry = rule_registry()
                plan = inspection_plan(compiled, registry)
                target, values = plan.compiled, record_values(record, plan)
            elif values is None:
                values = record_values(record)
            if known.calendar:
                if calendar is None:
                    calendar = tenant_calendar(session)
                clock = calendar
            else:
                clock = WALL
            filled = None
            if known.placeholders:
                if placeholders is None:
                    placeholders = placeholder_values(session)
                filled = placeholders
            try:
                result = evaluate(target, values, now, clock, placeholders=filled,
                                  overrides=decided.get((record.id, version.code)) if decided else None)
            except RuleInputError as error:
                errors[position] = _input_errors(record, version.code, compiled, error)
                break
            append((record, version, compiled, known, result))
    if errors:
        if len(records) == 1:
            raise RecordInvalid(errors[0], "The record cannot be scored against its standard.")
        raise RecordInvalid(errors, f"{len(errors)} record(s) cannot be scored against their standards.")
    return scored, calendar


def failures(scored: Sequence[tuple]) -> list[tuple]:
    """The failed items of ``scored`` that open a corrective action (critical ones and
    ``action_on_failure`` ones): ``(record, version, standard, item, outcome)`` each."""
    return [(record, version, compiled.standard, item, result.items[n].outcome.value)
            for record, version, compiled, known, result in scored if known.flagged
            for n, item in known.flagged if result.items[n].outcome in _FAILED]


def timed(scored: Sequence[tuple]) -> list[tuple]:
    """``(record, version, compiled)`` of the scores whose standard has deadline items
    (their clocks are synchronised)."""
    return [(record, version, compiled) for record, version, compiled, known, _ in scored
            if known.deadlines]


def store_evaluations(session, scored: Sequence[tuple], writer: Writer, *,
                      new: bool = False) -> tuple[list[dict], list[Evaluation]]:
    """Store the evaluations of ``scored``: each record gets one row per standard,
    replacing the one it had; rows of standards that no longer apply to a re-scored
    record are removed. Nothing is committed.

    :param writer: ``writer.objects``: build :class:`~servq.core.models.Evaluation`
        objects (only on request: a bulk import does without them); a bulk writer's
        records have no rows yet, so nothing is read first.
    :param new: the records were inserted in this transaction and not scored yet: they
        have no rows, so none is read.
    :return: ``(rows as dicts, ORM objects if asked)``.
    """
    return _store(session, scored, writer, new)


def insert_evaluations(session, scored: Sequence[tuple], writer: Writer) -> list[dict]:
    """Store the evaluations of ``scored``, records that have none yet (a bulk writer's),
    when they are wanted as rows only (no ORM object: no plugin hears
    ``record_evaluated``): on PostgreSQL the rows hold their ``items`` as
    :class:`~servq.core.db.fast.JsonText` (their JSON, as inserted, :func:`items_json`);
    elsewhere as :func:`store_evaluations` writes them. Returns the rows."""
    if session.get_bind().dialect.name == "postgresql":
        return _insert_fresh(session, scored, writer)
    return _store(session, scored, writer)[0]


def calendar_for_actions(session, failures) -> Any:
    """The calendar due times count on: the tenant's only when a ``fix_within`` is working time."""
    if all(item.fix_within is None or isinstance(item.fix_within, timedelta)
           for _, _, _, item, _ in failures):
        return WALL
    return tenant_calendar(session)


_PLAIN = frozenset({str, int, float, bool, type(None)})
_MAPPINGS = frozenset({dict, FrozenEvidence, TextEvidence, MappingProxyType})


def _safe(value: Any) -> Any:
    """:func:`core.scoring.engine._json_safe` with fast paths for the usual plain types
    (exact class checks instead of ABC checks, which cost most of the time on a bulk import)."""
    cls = value.__class__
    if cls in _PLAIN:
        return value
    if cls is dict or cls is FrozenEvidence or cls is TextEvidence or cls is MappingProxyType:
        return _safe_mapping(value)
    if cls is list or cls is tuple:
        return [item if item.__class__ in _PLAIN else _safe(item) for item in value]
    if cls is datetime:
        return value.isoformat()
    return _json_safe(value)


def _safe_mapping(value) -> dict[str, Any]:
    out = {}
    for key, item in value.items():
        out[key if key.__class__ is str else str(key)] = \
            item if item.__class__ in _PLAIN else _safe(item)
    return out


def json_items(result) -> list[dict[str, Any]]:
    """``result.as_dict()["items"]``, faster: what an evaluation row stores per item."""
    return [{"code": item.code, "outcome": item.outcome.value, "points": item.points,
             "max_points": item.max_points, "share": item.share,
             "evidence": _safe_mapping(item.evidence) if item.evidence.__class__ in _MAPPINGS
             else _safe(item.evidence)}
            for item in result.items]


#: The keys of an item as :func:`json_items` writes them: an ItemOutcome's fields, in order.
_ITEM_KEYS = ("code", "outcome", "points", "max_points", "share", "evidence")
_ITEM_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _evidence_default(value: Any) -> Any:
    """orjson's ``default`` for evidence: what :func:`_json_safe` converts, converted the
    same way; anything else is refused (then :func:`items_json` falls back to ``json``)."""
    cls = value.__class__
    if cls is MappingProxyType:
        return dict(value)  # a key that is not a string makes orjson refuse: fallback
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum) or isinstance(value, float):
        raise TypeError  # (an Enum orjson takes itself; a float subclass: fallback)
    if isinstance(value, Mapping):
        return dict(value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    raise TypeError


def items_json(result) -> bytes:
    """``json_items(result)`` as JSON (UTF-8), serialised by orjson from the engine's result
    without building the JSON-safe copy first; the same JSON value ``json.dumps`` writes of
    :func:`json_items`.

    Where orjson would write something else it is not used: a value it refuses (a key
    that is not a string, an integer beyond 64 bits, a type neither it nor
    :func:`_json_safe` converts, which ``json`` refuses as before) and a number that is
    not finite, which orjson writes as ``null`` and ``json`` as ``NaN`` (which PostgreSQL
    then refuses, as before). Such a number is looked for only where one can be
    (:func:`_non_finite_items`): not in a phrases rule's evidence, which holds none.
    """
    items = result.items
    try:
        text = orjson.dumps([dict(zip(_ITEM_KEYS, item)) for item in items],
                            default=_evidence_default, option=_ITEM_OPTIONS)
    except orjson.JSONEncodeError:
        pass
    else:
        if b"null" not in text or not _non_finite_items(items):
            return text
    return json.dumps(json_items(result), separators=(",", ":")).encode()


#: The classes of an item's fields that are never a float nor hold one.
_NO_FLOAT = frozenset({str, int, bool, type(None), Outcome})
#: Shared evidence already looked through: id -> (the evidence, whether it holds a non-finite number).
_FROZEN_CHECKED: dict[int, tuple[FrozenEvidence, bool]] = {}


def _non_finite_items(items) -> bool:
    """:func:`_non_finite` of an evaluation's items, without walking what cannot hold a
    float: a phrases rule's :class:`~core.scoring.rules.TextEvidence` (most of the evidence
    of a transcript) is skipped, and shared read-only evidence is walked once."""
    for item in items:
        for value in item[:5]:  # code, outcome, points, max_points, share
            cls = value.__class__
            if cls is float:
                if value - value != 0.0:
                    return True
            elif cls not in _NO_FLOAT and _non_finite(value):
                return True
        evidence = item[5]
        cls = evidence.__class__
        if cls is TextEvidence:
            continue
        if cls is FrozenEvidence:
            hit = _FROZEN_CHECKED.get(id(evidence))
            if hit is None or hit[0] is not evidence:
                if len(_FROZEN_CHECKED) >= 4096:
                    _FROZEN_CHECKED.clear()
                hit = _FROZEN_CHECKED[id(evidence)] = (evidence, _non_finite(evidence))
            if hit[1]:
                return True
        elif _non_finite(evidence):
            return True
    return False


def _non_finite(value: Any) -> bool:
    """Whether a NaN or an infinity is anywhere in ``value`` (as :func:`_json_safe` walks it)."""
    cls = value.__class__
    if cls is float:
        return value - value != 0.0
    if cls in _PLAIN:
        return False
    if cls in _MAPPINGS:
        return any(map(_non_finite, value.values()))
    if cls is list or cls is tuple:
        return any(map(_non_finite, value))
    if isinstance(value, Enum):
        return _non_finite(value.value)
    if isinstance(value, float):
        return value - value != 0.0
    if isinstance(value, Mapping):
        return any(map(_non_finite, value.values()))
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(map(_non_finite, value))
    return False


def _row(record: Record, result) -> dict[str, Any]:
    items = json_items(result)
    return {"record_id": record.id, "standard_code": result.standard_code,
            "standard_version": result.standard_version, "evaluated_at": result.evaluated_at,
            "total": result.total, "max_total": result.max_total, "percent": result.percent,
            "grade": result.grade, "passed": result.passed, "complete": result.complete,
            "failed_critical": list(result.failed_critical), "items": items,
            "original_percent": result.original_percent}


def _insert_fresh(session, scored, writer: Writer) -> list[dict]:
    """Insert the evaluation rows of ``scored`` (fresh records: no rows yet) on
    PostgreSQL, queued (see :mod:`core.db.fast.bulk`); ``items`` serialised by
    :func:`items_json`, ids time-ordered (:func:`core.db.fast.bulk.new_ids`). Returns
    the rows."""
    tenant_id = session.tenant_id
    rows = [{"id": evaluation_id, "record_id": record.id, "standard_code": result.standard_code,
             "standard_version": result.standard_version, "evaluated_at": result.evaluated_at,
             "total": result.total, "max_total": result.max_total, "percent": result.percent,
             "grade": result.grade, "passed": result.passed, "complete": result.complete,
             "failed_critical": list(result.failed_critical),
             "items": JsonText(items_json(result)), "original_percent": result.original_percent,
             "disputed": False, "tenant_id": tenant_id}
            for (record, _version, _compiled, _known, result), evaluation_id
            in zip(scored, new_ids(len(scored)))]
    writer.insert(session, _EVALUATIONS, rows)
    return rows


def _store(session, scored, writer: Writer, new: bool = False) -> tuple[list[dict], list[Evaluation]]:
    """Upsert the evaluation rows of ``scored``: ``(rows as dicts, ORM objects if asked)``.

    With ``objects`` (a few records) the rows go through the ORM; without, the existing
    rows' keys are read (no ORM objects) and rows are written with bulk INSERT / UPDATE
    by primary key / DELETE statements (new rows with :func:`core.db.fast.bulk.insert_rows`).
    A bulk writer's records have no rows yet: nothing is read.
    """
    objects, fresh = writer.objects, writer.fresh or new
    tenant_id = session.tenant_id
    ids = list(dict.fromkeys(record.id for record, *_ in scored))
    # (record id, standard code) → the existing ORM row (objects) or its id (bulk)
    existing: dict[tuple[uuid.UUID, str], Any] = {}
    for start in range(0, 0 if fresh else len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        if objects:
            for row in session.scalars(select(Evaluation).where(Evaluation.record_id.in_(chunk))):
                existing[(row.record_id, row.standard_code)] = row
        else:
            for row_id, record_id, code in session.execute(
                    select(Evaluation.id, Evaluation.record_id, Evaluation.standard_code)
                    .where(Evaluation.record_id.in_(chunk))):
                existing[(record_id, code)] = row_id
    rows, new_rows, changed, stored = [], [], [], []
    current: set[tuple[uuid.UUID, str]] = set()
    for record, _version, _compiled, _known, result in scored:
        row = _row(record, result)
        key = (record.id, result.standard_code)
        current.add(key)
        old = existing.get(key)
        row["tenant_id"] = tenant_id
        if old is None:
            # Every column with a client-side default is given, so the bulk INSERT stays
            # one queued statement (core/db/fast/bulk.py); an UPDATE leaves ``disputed`` alone.
            row["id"] = uuid.uuid4()
            row["disputed"] = False
            new_rows.append(row)
        elif objects:
            for name in COLUMNS:
                setattr(old, name, row[name])
            row["id"] = old.id
            stored.append(old)
        else:
            row["id"] = old
            changed.append(row)
        rows.append(row)
    # Rows of standards that no longer apply to a re-scored record.
    stale = [old for key, old in existing.items() if key not in current]
    if objects:
        for old in stale:
            session.delete(old)
        made = [Evaluation(**row) for row in new_rows]
        session.add_all(made)
        stored.extend(made)
        session.flush()
        return rows, stored
    if stale:
        session.execute(delete(Evaluation).where(Evaluation.id.in_(stale)))
    if changed:
        session.execute(update(Evaluation), changed)
    if new_rows:
        writer.insert(session, _EVALUATIONS, new_rows)
    if stale or changed:
        # Evaluation objects loaded earlier in this session no longer match the table.
        for obj in list(session.identity_map.values()):
            if isinstance(obj, Evaluation):
                session.expire(obj)
    return rows, stored
