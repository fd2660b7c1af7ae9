"""Bulk ingestion: many records at once, validated and scored like ``POST /records``.

Two entry points share this module:

- ``servq records import --tenant SLUG FILE`` (:func:`import_records`, fed by the
  readers of :mod:`.formats`, JSON Lines or CSV): a whole file, in chunks, **all or nothing**.
- ``POST /api/v1/records/batch`` (:func:`create_batch`): up to 1,000 records, all or
  nothing.

Each record is validated exactly as
``POST /records`` validates one (:func:`core.records.pipeline.prepare_record`: kind enabled for
the tenant, ``data`` by the kind's schema, site and staff of the tenant, status, workflow
stamps, an inspection's standard and answers); the tenant's sites and staff are read
once, not once per record. Plain valid input takes :mod:`core.db.fast.loads`'s path (the same
result as marshmallow; anything else, errors included, goes through marshmallow). Valid
records are then written a chunk at a time with bulk statements
(:mod:`core.db.fast.bulk`): the chunk's old days are marked dirty for the KPI rollups,
the chunk's records and their ``created`` audit events are inserted, then
:func:`core.records.evaluate.evaluate_records` scores the chunk against the standards in force
and stores the evaluations (and opens corrective actions, synchronises deadline clocks,
fires ``record_evaluated``). On PostgreSQL all of these INSERTs are queued and go to the
server as one statement when the chunk is done, not waited for, so the server writes a
chunk while Python works on the next (:func:`write_chunk`). ``record_created`` fires
per record when an implementation wants the chunk's kinds
(:func:`core.plugins.manager.wanted`). The records become ORM objects of the session
(loaded, not read back) when something needs them: the batch endpoint, which returns
them, and plugins hearing ``record_created`` or ``record_evaluated``; otherwise scoring reads the rows as they are
(:class:`Inserted`). A value a standard's rule cannot judge is reported like a
validation error, naming the record and the field.

Nothing here commits: the caller commits when no error was found and rolls back
otherwise, so a file or a batch with one bad record writes nothing. The user guide is
``docs/ingestion.md``.
"""

from __future__ import annotations

import uuid
from collections import abc
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, Callable, Iterable, Mapping, Sequence

from marshmallow import ValidationError

from servq.core import metrics
from servq.core.db import utcnow
from servq.core.db.state import SESSION, Slot
from servq.core.models import AuditEvent, Record
from servq.core.plugins import RecordKind
from servq.core.db.fast import fast_loader
from servq.core.kpis.rollups import mark_dirty
from servq.core.plugins.manager import wanted
from servq.core.plugins.app import hooks_for_session
from servq.core.db.fast import BulkWriter, RowView, bulk_gc, new_ids
from servq.core.records.evaluate import evaluate_records
from servq.core.records.pipeline import (ENTITY, RecordInputSchema, RecordInvalid, References, creation_changes,
                          duplicate_message, prepare_record)
from servq.core.db.tenancy import NoTenantContext
from servq.core.records.formats import ImportRefused, Line, LineError, read_file

#: The writer of a chunk's evaluations: rows, queued.
_ROWS = BulkWriter()
#: Records written per chunk unless told otherwise.
CHUNK = 1000
#: The most records ``POST /records/batch`` takes at once.
BATCH_LIMIT = 1000
#: Bad lines reported before an import stops reading.
MAX_ERRORS = 100
_INPUT = RecordInputSchema()
#: ``_INPUT.load`` for plain valid input (the same result), else None: see core.db.fast.loads.
_FAST_INPUT = fast_loader(_INPUT) or (lambda payload: None)
_RECORDS, _EVENTS = Record.__table__, AuditEvent.__table__
#: ``session.info`` key: the text of each uuid written in audit changes (see core.records.pipeline.creation_changes).
_TEXTS: Slot[dict] = Slot("servq.ingest.uuid_texts", SESSION, __name__)


@dataclass
class ImportReport:
    """What an import did (or, on a dry run, would do)."""

    records: int = 0
    evaluations: int = 0
    chunks: int = 0
    dry_run: bool = False
    kinds: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the command line."""
        what = "would create" if self.dry_run else "created"
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.kinds.items()))
        tail = " (dry run: nothing written)" if self.dry_run else ""
        return (f"{what} {self.records} record(s){f' ({kinds})' if kinds else ''} and "
                f"{self.evaluations} evaluation(s) in {self.chunks} chunk(s){tail}")


# -- reading files ----------------------------------------------------------------------


#: Every digit as "9", so that a run of 19 digits (maybe an integer beyond 64 bits, which
#: orjson reads as a float) is found by one substring search (a regular expression costs
#: several times more).
def _with_ids(raw: Mapping[str, Any], references: References) -> tuple[dict[str, Any], dict[str, Any]]:
    """``raw`` with ``site``/``staff`` codes replaced by ids, and the errors of that."""
    if "site" not in raw and "staff" not in raw:
        return dict(raw), {}
    out = dict(raw)
    errors: dict[str, Any] = {}
    for name, codes, label in (("site", references.site_codes, "site"),
                               ("staff", references.staff_codes, "staff member")):
        if name not in out:
            continue
        code = out.pop(name)
        if out.get(f"{name}_id") is not None:
            errors[name] = [f"Give {name} (a code) or {name}_id, not both."]
        elif code is None:
            out[f"{name}_id"] = None
        elif not isinstance(code, str) or code not in codes:
            errors[name] = [f"No {label} with code {code!r} in this tenant."]
        else:
            out[f"{name}_id"] = str(codes[code])
    return out, errors


def _fast_with_codes(raw: dict, references: References) -> dict[str, Any] | None:
    """``_INPUT.load`` of ``raw`` naming its site and staff by code, for plain valid input:
    the codes' ids go straight into the result (the ids the codes resolve to are valid
    UUIDs, which is all the schema checks of them), else ``None`` (see :func:`validate_one`)."""
    payload = dict(raw)
    ids = {}
    for name, id_name, codes in (("site", "site_id", references.site_codes),
                                 ("staff", "staff_id", references.staff_codes)):
        if name in payload:
            code = payload.pop(name)
            if id_name in payload:
                return None  # both: the full path words the error
            if code is None:
                ids[id_name] = None
            else:
                found = codes.get(code) if code.__class__ is str else None
                if found is None:
                    return None
                ids[id_name] = found
    loaded = _FAST_INPUT(payload)
    if loaded is None:
        return None
    loaded.update(ids)
    return loaded


def validate_one(session, kinds: Mapping[str, RecordKind], raw: Any, actor_id: uuid.UUID | None,
                 references: References) -> tuple[RecordKind, dict[str, Any]]:
    """Validate one raw record (as JSON gives it) like ``POST /records``: ``(kind, values)``.

    Besides the fields of ``POST /records``, ``site`` and ``staff`` may name a site or a
    staff member by code. :raises RecordInvalid: with every problem found.
    """
    if raw.__class__ is not dict and not isinstance(raw, abc.Mapping):
        raise RecordInvalid({"_schema": ["A record is a JSON object."]})
    if raw.__class__ is dict and ("site" in raw or "staff" in raw):
        loaded = _fast_with_codes(raw, references)
        if loaded is not None:
            return prepare_record(session, kinds, loaded, actor_id, references=references)
    payload, errors = _with_ids(raw, references)
    loaded = None if errors else _FAST_INPUT(payload)
    if loaded is None:
        try:
            loaded = _INPUT.load(payload)
        except ValidationError as error:
            raise RecordInvalid({**error.messages, **errors}) from None
    if errors:
        raise RecordInvalid(errors)
    return prepare_record(session, kinds, loaded, actor_id, references=references)


class Inserted(RowView):
    """A record a bulk import has just inserted, when no ORM object is needed (no plugin
    hook hears of it): its row, read as attributes like a :class:`core.models.Record`
    (``id``, ``kind``, ``data``, ``occurred_at``, …), which is all that scoring, corrective
    actions and deadline clocks read of it."""

    __slots__ = ()


def insert_records(session, prepared: Sequence[tuple[RecordKind, dict[str, Any]]],
                   actor_id: uuid.UUID | None, *, now: datetime | None = None,
                   writer: BulkWriter) -> list[Record]:
    """Write validated records (from :func:`validate_one`) with bulk statements.

    One INSERT of the records and one of their ``created`` audit events (the same
    changes :func:`core.records.pipeline.create_record` audits); the records come back as
    persistent objects of ``session`` (no second INSERT, no SELECT), and
    ``record_created`` fires for each when an implementation enabled for the tenant wants
    one of their kinds (:func:`core.plugins.manager.wanted`). Unless ``writer.objects``,
    and when no implementation wants them nor hears ``record_evaluated``, they come back
    as :class:`Inserted` rows instead, and the session does not hold them. The INSERTs
    are queued on ``writer`` (see :func:`write_chunk`). Not scored here.
    """
    if not prepared:
        return []
    tenant_id = session.tenant_id
    if tenant_id is None:
        raise NoTenantContext("bulk insert of records with no tenant in context")
    now = now or utcnow()
    rows = [{"timestamps": {}, **values, "tenant_id": tenant_id, "id": record_id,
             "kind": kind.name, "escalation_level": 0, "created_by": actor_id,
             "created_at": now, "updated_at": now, "deleted_at": None,
             "status_since": values["occurred_at"], "stalled_at": None}
            for (kind, values), record_id in zip(prepared, new_ids(len(prepared)))]
    # KPI rollups of old days: marked in the same statement as the records (queued).
    mark_dirty(session, [row["occurred_at"] for row in rows], writer=writer)
    # Core statements: the rows carry their tenant (checked above) and PostgreSQL's
    # row-level security checks it again; the ORM's bulk path would add nothing but time.
    # On PostgreSQL queued, to go with the rest of the chunk (see write_chunk).
    texts = session.state.setdefault(_TEXTS, {})
    # Time-ordered ids (core.db.fast.bulk.new_ids), as the records'.
    events = [{"tenant_id": tenant_id, "id": event_id, "entity": ENTITY, "entity_id": row["id"],
               "action": "created", "actor_user_id": actor_id, "at": now,
               "changes": creation_changes(kind.name, values, texts)}
              for row, (kind, values), event_id in zip(rows, prepared, new_ids(len(rows)))]
    writer.insert_tables(session, [(_RECORDS, rows), (_EVENTS, events)])
    hooks = hooks_for_session(session)
    hook = hooks.record_created
    hooked = wanted(hook, session, {kind.name for kind, _ in prepared})
    if not (writer.objects or hooked or hooks.record_evaluated.get_hookimpls()):
        return list(map(Inserted, rows))
    records = writer.attach(session, Record, rows)
    if hooked:
        for record in records:
            hook(session=session, record=record, actor_id=actor_id)
    return records


def write_chunk(session, prepared: Sequence[tuple[RecordKind, dict[str, Any]]],
                actor_id: uuid.UUID | None, *, now: datetime | None = None,
                writer: BulkWriter) -> tuple[list[Record], int]:
    """Insert validated records (:func:`insert_records`) and score them
    (:func:`core.records.evaluate.evaluate_records`): ``(records, evaluations stored)``.

    ``writer``: ``BulkWriter()`` for an import, which needs no records back;
    ``BulkWriter(objects=True)`` for the batch endpoint, which returns them.

    :raises RecordInvalid: a value a rule cannot judge; ``errors`` keyed by the position
        of each bad record in ``prepared``. The session then holds a partial write: roll back.
    """
    records = insert_records(session, prepared, actor_id, now=now, writer=writer)
    try:
        # No actor, as for POST /records: the actions scoring opens are the system's.
        # The evaluations are written as rows whoever wants the records as objects (the
        # batch endpoint returns its records, not their evaluations).
        rows = evaluate_records(session, records, now=now, writer=_ROWS if writer.objects else writer,
                                new=True)
    except RecordInvalid as error:
        if len(records) == 1:  # evaluate_records reports a lone record's errors unkeyed
            raise RecordInvalid({0: error.errors}, error.message) from None
        raise
    # Everything the chunk writes, queued on PostgreSQL, goes as one statement: the
    # server writes it while the caller goes on (core.db.fast.bulk).
    writer.send(session)
    return records, len(rows)


def import_records(session, kinds: Mapping[str, RecordKind], lines: Iterable[Line], *,
                   actor_id: uuid.UUID | None = None, chunk: int = CHUNK, dry_run: bool = False,
                   max_errors: int = MAX_ERRORS,
                   progress: Callable[[int], None] | None = None,
                   seen: dict[tuple[str, str], int] | None = None) -> ImportReport:
    """Validate, write and score the records of ``lines`` in the session's tenant.

    Records are written ``chunk`` at a time as soon as they are valid. After the first
    bad record nothing more is written, but reading goes on to report every bad record
    (up to ``max_errors``), and :class:`ImportRefused` is raised at the end: the caller
    rolls back, so a file with a bad line writes nothing. Nothing is committed here. A
    dry run does all the same work (so it finds what scoring would refuse too) and the
    caller rolls it back.

    :param progress: called with the number of records read so far, every ``chunk`` records
        and at the end.
    :param seen: filled with the line of each ``(kind, reference)`` read (``RecordKind.reference``):
        a reference given twice in the file is a bad record; one a live record has already
        is refused by the database (see :func:`import_file`).
    :raises ImportRefused: listing each bad record by line number and field.
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    references = References(session)
    seen = {} if seen is None else seen
    writer = BulkWriter()  # an import needs no records back
    report = ImportReport(dry_run=dry_run)
    replan = _Replanner(session)
    errors: list[LineError] = []
    pending: list[tuple[RecordKind, dict[str, Any]]] = []
    numbers: list[int] = []
    handled = 0

    def flush_pending() -> None:
        if not pending:
            return
        if not errors:
            try:
                records, evaluations = write_chunk(session, pending, actor_id, writer=writer)
            except RecordInvalid as error:
                errors.extend(LineError(numbers[position], problems)
                              for position, problems in sorted(error.errors.items()))
            else:
                report.records += len(records)
                report.evaluations += evaluations
                report.chunks += 1
                replan(report.records)
                for kind, _ in pending:
                    report.kinds[kind.name] = report.kinds.get(kind.name, 0) + 1
        pending.clear()
        numbers.clear()

    truncated = False
    for line in lines:
        if len(errors) >= max_errors:
            truncated = True
            break
        handled += 1
        if line.errors is not None:
            errors.append(LineError(line.number, line.errors))
        else:
            try:
                prepared = validate_one(session, kinds, line.raw, actor_id, references)
                _first_use(prepared, line.number, seen)
            except RecordInvalid as error:
                errors.append(LineError(line.number, error.errors))
            else:
                if not errors:  # after a bad record nothing is written; validation goes on
                    pending.append(prepared)
                    numbers.append(line.number)
                    if len(pending) >= chunk:
                        flush_pending()
        if progress is not None and handled % chunk == 0:
            progress(handled)
    if not truncated:
        flush_pending()
    if progress is not None and handled % chunk:
        progress(handled)
    if errors:
        raise ImportRefused(errors[:max_errors], truncated=truncated or len(errors) > max_errors)
    return report


def _first_use(prepared: tuple[RecordKind, dict[str, Any]], number: int, seen: dict) -> None:
    """Note the line of the prepared record's reference, or refuse its second use."""
    kind, values = prepared
    reference = values.get("reference")
    if reference is None:
        return
    key = (kind.name, reference)
    first = seen.setdefault(key, number)
    if first != number:
        raise RecordInvalid({"data": {kind.reference: [
            f"{kind.reference} {reference!r} is given twice: on line {first} too; it names one record."]}})


#: The unique index of records' references (core.models.Record).
_REFERENCE_INDEX = "uq_records_tenant_id_reference_kind"


def _reference_conflict(error: Exception) -> bool:
    """Whether ``error`` is the database refusing a reference that a live record has
    already: SQLAlchemy's IntegrityError, or the driver's own for queued writes (whose
    result :mod:`core.db.fast.bulk` collects itself)."""
    from sqlalchemy.exc import IntegrityError

    if not isinstance(error, IntegrityError):
        try:
            from psycopg.errors import IntegrityError as DriverIntegrityError
        except ImportError:  # pragma: no cover - psycopg is a dependency
            return False
        if not isinstance(error, DriverIntegrityError):
            return False
    text = str(getattr(error, "orig", error))
    return _REFERENCE_INDEX in text or "records.reference" in text


def existing_references(session, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], uuid.UUID]:
    """``{(kind, reference): record id}`` of the live records holding any of ``wanted``:
    one SELECT per 1,000 references."""
    from sqlalchemy import select

    wanted = set(wanted)
    found: dict[tuple[str, str], uuid.UUID] = {}
    values = sorted({reference for _, reference in wanted})
    for start in range(0, len(values), 1000):
        for kind, reference, record_id in session.execute(
                select(Record.kind, Record.reference, Record.id).where(
                    Record.reference.in_(values[start:start + 1000]), Record.deleted_at.is_(None))):
            if (kind, reference) in wanted:
                found[(kind, reference)] = record_id
    return found


def _duplicates_refused(session, kinds: Mapping[str, RecordKind], seen: dict[tuple[str, str], int],
                        max_errors: int = MAX_ERRORS) -> ImportRefused | None:
    """After the database refused a reference a live record has (the import rolled back):
    each such line of the file, as an :class:`ImportRefused`; ``None`` when none is found
    (the record that had it was deleted meanwhile)."""
    found = existing_references(session, seen)
    errors = sorted((LineError(seen[key], {"data": {kinds[key[0]].reference: [
        duplicate_message(kinds[key[0]], key[1], record_id)]}})
        for key, record_id in found.items() if key[0] in kinds), key=lambda error: error.line)
    if not errors:
        return None
    return ImportRefused(errors[:max_errors], truncated=len(errors) > max_errors)


class _Replanner:
    """Has PostgreSQL plan the import's foreign-key checks again as the tables grow.

    PostgreSQL plans each foreign-key check once per connection and keeps the plan. The
    first checks of an import into a new tenant are planned while the tenant has only
    the first chunk's records; with a small chunk every index starting with
    ``tenant_id`` then looks as good as the primary key, and a plan that reads all of
    the tenant's records for each check (``ix_records_tenant_id_status_occurred_at``
    with a filter on ``id``) stays for the whole import: 250-record chunks took 5.9 ms
    of server time per record after 50,000. The import's own rows are not in the
    statistics until it commits, but the planner sees the tables grow: ``DISCARD
    PLANS`` (no privilege needed, allowed in a transaction) each time the records
    written double, from 1,000 to 64,000, gets plans made for the tables' sizes.
    """

    FIRST, LAST = 1_000, 64_000

    def __init__(self, session):
        self.session = session
        self.at = self.FIRST if session.get_bind().dialect.name == "postgresql" else None

    def __call__(self, written: int) -> None:
        if self.at is None or written < self.at:
            return
        from sqlalchemy import text

        self.session.execute(text("DISCARD PLANS"))
        while self.at is not None and written >= self.at:
            self.at = self.at * 2 if self.at * 2 <= self.LAST else None


class BatchInvalid(Exception):
    """Bad records in a batch: ``errors`` maps each bad record's index to its errors."""

    def __init__(self, errors: dict[int, dict[str, Any]]):
        super().__init__(f"{len(errors)} bad record(s)")
        self.errors = errors


def create_batch(session, kinds: Mapping[str, RecordKind], items: Sequence[Any],
                 actor_id: uuid.UUID | None) -> list[Record]:
    """Validate every item of a batch, then write and score them all (one chunk).

    :raises BatchInvalid: naming the index and fields of every bad record (validation
        and scoring alike); the session may hold a partial write: roll back.
    """
    references = References(session)
    errors: dict[int, dict[str, Any]] = {}
    prepared, seen, positions = [], {}, {}
    for index, raw in enumerate(items):
        try:
            one = validate_one(session, kinds, raw, actor_id, references)
            _first_use(one, index, seen)
        except RecordInvalid as error:
            errors[index] = error.errors
        else:
            prepared.append(one)
    for (kind_name, reference), record_id in existing_references(session, seen).items():
        kind = kinds[kind_name]
        errors[seen[(kind_name, reference)]] = {"data": {kind.reference: [
            duplicate_message(kind, reference, record_id)]}}
    if errors:
        raise BatchInvalid(dict(sorted(errors.items())))
    try:
        records, _ = write_chunk(session, prepared, actor_id, writer=BulkWriter(objects=True))
    except RecordInvalid as error:
        raise BatchInvalid(dict(error.errors)) from None
    return records


def import_file(app, tenant_id: uuid.UUID, stream: BinaryIO, fmt: str, *, chunk: int = CHUNK,
                dry_run: bool = False, actor_id: uuid.UUID | None = None,
                progress: Callable[[int], None] | None = None) -> ImportReport:
    """``servq records import``: read ``stream`` (``fmt``: jsonl or csv) into the tenant
    ``tenant_id`` in one transaction, committed only when every record is good and this
    is not a dry run.

    :raises ImportRefused: bad records (nothing written).
    """
    from servq.core.db.session import new_session
    from servq.core.plugins.app import enabled_plugin_ids, get_plugins

    from servq.core.db.fast import drain

    seen: dict[tuple[str, str], int] = {}
    with new_session(app, tenant_id) as session, bulk_gc():
        kinds: Mapping[str, RecordKind] = {}
        try:
            kinds = get_plugins(app).kinds_for(enabled_plugin_ids(session))
            report = import_records(session, kinds, read_file(stream, fmt, kinds), actor_id=actor_id,
                                    chunk=chunk, dry_run=dry_run, progress=progress, seen=seen)
            if dry_run:
                drain(session.connection())  # what the database refuses, a dry run reports too
                session.rollback()
            else:
                session.commit()
        except BaseException as error:
            session.rollback()
            if not _reference_conflict(error):
                raise
            # A reference a live record has already (the unique index refused it, on
            # PostgreSQL when the chunk's writes came back): name the lines.
            refused = _duplicates_refused(session, kinds, seen)
            session.rollback()
            if refused is None:
                raise
            raise refused from None
        if not dry_run:
            metrics.RECORDS_IMPORTED.inc(report.records)
    return report
