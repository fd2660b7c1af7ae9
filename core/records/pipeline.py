"""The generic quality record: create, change and soft-delete, with validation and audit.

These functions are the one place a record is validated, whatever the caller: the HTTP
API, and (through :func:`prepare_record`) the bulk paths of :mod:`core.records.ingest`, the CLI
import and the batch endpoint, which write many records at once. They never answer HTTP
themselves: bad input raises :class:`RecordInvalid` carrying marshmallow-shaped field
errors, which each caller translates (the API into a 422). They add to the session and
flush, write the audit event and fire the plugins' event hooks in the same transaction;
the caller commits (or rolls back).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select

from servq.core.audit import apply_changes, audit, audit_row, json_default, jsonable
from servq.core.db import contains_nul, utcnow
from servq.core.kpis.rollups import mark_dirty
from servq.core.models import AuditEvent, Record, Site, Staff
from servq.core.org.sites import FOUND
from servq.core.plugins import RecordKind
from servq.core.plugins.app import hooks_for_session
from servq.core.records.workflows import StatusNeedsTransition, initial_stamps
from servq.core.evaluation import check_record
from servq.core.evaluation.errors import RecordInvalid  # noqa: F401  (records.pipeline.RecordInvalid: where callers catch it)
from servq.core.records.evaluate import evaluate_record

ENTITY = "records"


def utc_instant(value: datetime) -> None:
    """Validator: the instant must be representable in UTC (years 1-9999 after the shift)."""
    try:
        value.astimezone(timezone.utc)
    except OverflowError as exc:
        raise ValidationError("Out of range once converted to UTC.") from exc


def no_nul(value: str) -> None:
    """Validator: PostgreSQL text and JSON cannot hold NUL characters, so refuse them here."""
    if "\x00" in value:
        raise ValidationError("May not contain NUL characters.")


class RecordChangeSchema(Schema):
    """The fields of a record a client may change (``kind`` is fixed at creation)."""

    site_id = fields.UUID(allow_none=True, metadata={"description": "A site of this tenant"})
    staff_id = fields.UUID(allow_none=True, metadata={"description": "A staff member of this tenant"})
    occurred_at = fields.AwareDateTime(validate=utc_instant,
                                       metadata={"description": "When it happened (default: now)"})
    status = fields.String(validate=[validate.Length(min=1, max=40), no_nul],
                           metadata={"description": "One of the kind's statuses (default: the first)"})
    data = fields.Dict(keys=fields.String(),
                       metadata={"description": "Validated by the kind's schema (GET /api/v1/kinds)"})


class RecordInputSchema(RecordChangeSchema):
    """A new record: its ``kind`` and the changeable fields."""

    kind = fields.String(required=True, validate=[validate.Length(min=1, max=100), no_nul],
                         metadata={"description": "A kind this tenant may use (GET /api/v1/kinds)"})


_new_record = Record._sa_class_manager.new_instance


def create_record(session, kinds: Mapping[str, RecordKind], payload: Mapping[str, Any],
                  actor_id: uuid.UUID | None, *, now: datetime | None = None) -> Record:
    """Validate ``payload`` (loaded by :class:`RecordInputSchema`) and add a record.

    CLI and batch callers load raw JSON with ``RecordInputSchema().load`` (or
    ``RecordChangeSchema(partial=True)`` for a change) and report its ``ValidationError``
    the way they report :class:`RecordInvalid`.

    :param kinds: the kinds the tenant may use (``Plugins.kinds_for``).
    :param now: the instant the record is scored as of (default: now; demo loaders
        writing history pass the past instant, so no deadline looks breached early).
    :raises RecordInvalid: unknown kind, ``data`` refused by the kind's schema, a site or
        staff member not in the tenant, a status the kind does not have. Nothing is added.
    """
    kind, values = prepare_record(session, kinds, payload, actor_id)
    check_reference(session, kind, values["reference"])
    # Built without the per-attribute events of Record(**values): session.insert reads
    # the values from the object's __dict__ and makes it persistent.
    record_id = uuid.uuid4()
    record = _new_record()
    record.__dict__.update(values, id=record_id, kind=kind.name, created_by=actor_id,
                           status_since=values["occurred_at"])
    # One INSERT of the record with its audit event, without the unit of work's cost.
    session.insert(record, along=[(AuditEvent, audit_row(
        session, ENTITY, record_id, "created", actor_id, creation_changes(kind.name, values)))])
    mark_dirty(session, (record.occurred_at,))  # KPI rollups of an old day: no query if recent
    hooks_for_session(session).record_created(session=session, record=record, actor_id=actor_id)
    evaluate_record(session, record, now=now, new=True)
    return record


def prepare_record(session, kinds: Mapping[str, RecordKind], payload: Mapping[str, Any],
                   actor_id: uuid.UUID | None, *, references: "References | None" = None
                   ) -> tuple[RecordKind, dict[str, Any]]:
    """Everything :func:`create_record` checks, without writing: ``(kind, column values)``.

    The bulk paths (:mod:`core.records.ingest`: ``servq records import`` and
    ``POST /records/batch``) validate each record with this function, then insert many at
    once. ``references`` (the tenant's site and staff ids, loaded once) spares the two
    lookups per record.

    :raises RecordInvalid: as :func:`create_record`.
    """
    kind = kinds.get(payload["kind"])
    if kind is None:
        valid = ", ".join(sorted(kinds)) or "none"
        raise RecordInvalid({"kind": [f"Unknown record kind {payload['kind']!r}; "
                                      f"this tenant may use: {valid}."]})
    values = {
        "site_id": payload.get("site_id"),
        "staff_id": payload.get("staff_id"),
        "occurred_at": payload.get("occurred_at") or utcnow(),
        "status": payload.get("status") or kind.initial_status,
        "data": payload.get("data") or {},
    }
    values.update(_validated(session, kind, values, references))
    values["reference"] = reference_of(kind, values["data"])
    if kind.workflow is not None:
        # A workflow kind starts in its initial status, stamped with occurred_at.
        if values["status"] != kind.initial_status:
            raise RecordInvalid({"status": [
                f"Records of kind {kind.name!r} start as {kind.initial_status!r}; change the "
                "status with POST /api/v1/records/<id>/transitions."]})
        values["timestamps"] = initial_stamps(kind, values["occurred_at"], values["data"])
    values.update(check_record(session, kind.name, values, actor_id=actor_id))
    return kind, values


def creation_changes(kind_name: str, values: Mapping[str, Any],
                     texts: dict | None = None) -> dict[str, list]:
    """The ``changes`` of a record's ``created`` audit event: ``{field: [None, value]}``
    (values as :func:`core.audit.jsonable` writes them).

    ``texts`` (the bulk import's) keeps the text of each uuid, made once per import
    rather than once per record.
    """
    changes = {"kind": [None, kind_name]}
    for key, value in values.items():
        cls = value.__class__
        if cls in _AS_IS:
            pass
        elif cls is uuid.UUID and texts is not None:
            number = value.int
            text = texts.get(number)
            if text is None:
                text = texts[number] = str(value)
            value = text
        else:
            value = jsonable(value)
        changes[key] = [None, value]
    return changes


#: What :func:`core.audit.jsonable` leaves as it is (the common classes, checked first).
_AS_IS = frozenset({str, dict, list, type(None), int, float, bool})


class References:
    """The tenant's site and staff ids, read once for many records (bulk validation).

    Also maps their codes to ids (``site_codes``, ``staff_codes``), which the importers
    accept in place of ids.
    """

    def __init__(self, session):
        self.site_codes = dict(session.execute(select(Site.code, Site.id)).all())
        self.staff_codes = dict(session.execute(select(Staff.code, Staff.id)).all())
        self.sites = set(self.site_codes.values())
        self.staff = set(self.staff_codes.values())


def update_record(session, kinds: Mapping[str, RecordKind], record: Record,
                  payload: Mapping[str, Any], actor_id: uuid.UUID | None, *,
                  now: datetime | None = None) -> dict[str, list]:
    """Apply a partial change (loaded by ``RecordChangeSchema(partial=True)``) to ``record``.

    ``data``, when given, replaces the whole of ``data`` and is validated as a whole.
    Returns ``{field: [old, new]}``; when something changed, an audit event is added and
    ``record_changed`` fired, and the record is scored again as of ``now`` (default: now).

    :raises RecordInvalid: as :func:`create_record`; ``record`` is left unchanged.
    """
    kind = kinds.get(record.kind)
    if kind is None:
        raise RecordInvalid({"kind": [f"Record kind {record.kind!r} is not enabled for this tenant."]})
    if "occurred_at" in payload and payload["occurred_at"] is None:
        raise RecordInvalid({"occurred_at": ["Field may not be null."]})
    if kind.workflow is not None and "status" in payload and payload["status"] != record.status:
        raise StatusNeedsTransition(
            f"The status of a {kind.name!r} record follows its workflow: use "
            f"POST /api/v1/records/{record.id}/transitions with one of the allowed actions.",
            kind.workflow.allowed(record.status))
    values = dict(payload)
    values.update(_validated(session, kind, values))
    if "data" in values:
        values["reference"] = reference_of(kind, values["data"])
        if values["reference"] != record.reference:
            check_reference(session, kind, values["reference"], record.id)
    if kind.workflow is not None and ("occurred_at" in values or "data" in values):
        values.update(_restamped(kind, record, values))
    values.update(check_record(session, kind.name, values, actor_id=actor_id, record=record))
    occurred_before = record.occurred_at
    changes = apply_changes(record, values)
    if "status" in changes:
        record.status_since = now or utcnow()  # a kind without workflow: its status moved
    elif "occurred_at" in changes and record.status_since == occurred_before:
        record.status_since = record.occurred_at  # never moved: it has its status since then
    if changes:
        session.flush()
        mark_dirty(session, (occurred_before, record.occurred_at))
        audit(session, ENTITY, record.id, "changed", actor_id, changes)
        hooks_for_session(session).record_changed(session=session, record=record,
                                                  changes=changes, actor_id=actor_id)
        evaluate_record(session, record, now=now)
    return changes


def soft_delete_record(session, record: Record, actor_id: uuid.UUID | None) -> dict[str, list]:
    """Mark ``record`` deleted (records are never removed), audit it, fire
    ``record_changed``; returns the changes. A deleted record is left as it is."""
    if record.deleted_at is not None:
        return {}
    changes = apply_changes(record, {"deleted_at": utcnow()})
    session.flush()
    mark_dirty(session, (record.occurred_at,))
    audit(session, ENTITY, record.id, "deleted", actor_id, changes)
    hooks_for_session(session).record_changed(session=session, record=record,
                                              changes=changes, actor_id=actor_id)
    return changes


def _restamped(kind: RecordKind, record: Record, values: Mapping[str, Any]) -> dict[str, Any]:
    """The workflow stamps after a change of ``occurred_at`` or ``data``: the initial stamp
    (and its copy keyed by ``stamp_by``) follows them; ``occurred_at`` may not move past
    a stamp of a later step."""
    old = dict(record.timestamps or {})
    occurred_at = values.get("occurred_at", record.occurred_at)
    timestamps = initial_stamps(kind, occurred_at, values.get("data", record.data), old)
    initial = old.get(kind.workflow.initial_stamp) if kind.workflow.initial_stamp else None
    for key, value in sorted(old.items()):
        if not isinstance(value, str) or value == initial:
            continue
        try:
            later = datetime.fromisoformat(value)
        except ValueError:
            continue
        if later.utcoffset() is not None and later < occurred_at:
            raise RecordInvalid({"occurred_at": [f"Cannot be after the record's {key} ({value})."]})
    return {} if timestamps == old else {"timestamps": timestamps}


#: The longest reference kept (records.reference).
REFERENCE_LENGTH = 200


def reference_of(kind: RecordKind, data: Mapping[str, Any]) -> str | None:
    """The value of ``kind``'s reference field in ``data`` (see ``RecordKind.reference``),
    as text; ``None`` when the kind has none or the record leaves it empty.

    :raises RecordInvalid: a value longer than :data:`REFERENCE_LENGTH` or not text or a number.
    """
    name = kind.reference
    if name is None:
        return None
    value = data.get(name)
    if value is None or value == "":
        return None
    if value.__class__ is not str:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise RecordInvalid({"data": {name: ["A reference is text or a whole number."]}})
        value = str(value)
    if len(value) > REFERENCE_LENGTH:
        raise RecordInvalid({"data": {name: [f"A reference has at most {REFERENCE_LENGTH} characters."]}})
    return value


def check_reference(session, kind: RecordKind, reference: str | None,
                    record_id: uuid.UUID | None = None) -> None:
    """Refuse ``reference`` when a live record of ``kind`` other than ``record_id`` has it.

    :raises RecordInvalid: naming the field and the record that has it.
    """
    if reference is None:
        return
    query = select(Record.id).where(Record.kind == kind.name, Record.reference == reference,
                                    Record.deleted_at.is_(None))
    if record_id is not None:
        query = query.where(Record.id != record_id)
    found = session.scalar(query.limit(1))
    if found is not None:
        raise RecordInvalid({"data": {kind.reference: [duplicate_message(kind, reference, found)]}})


def duplicate_message(kind: RecordKind, reference: str, record_id: Any = None) -> str:
    """What a refused duplicate reference says."""
    held = f" (record {record_id})" if record_id is not None else ""
    return (f"A {kind.name} record with {kind.reference} {reference!r} exists already{held}; "
            f"a {kind.reference} names one record.")


def _validated(session, kind: RecordKind, values: Mapping[str, Any],
               references: References | None = None) -> dict[str, Any]:
    """Check the fields present in ``values`` against ``kind`` and the tenant's reference
    data (``references`` when given, else a query each); return the normalised ``data``
    (when given). Collects every error at once."""
    errors: dict[str, Any] = {}
    out: dict[str, Any] = {}
    site_id, staff_id = values.get("site_id"), values.get("staff_id")
    if site_id is not None and (site_id not in references.sites if references is not None else
                                not _exists(session, Site, site_id)):
        errors["site_id"] = ["No such site in this tenant."]
    if staff_id is not None and (staff_id not in references.staff if references is not None else
                                 not _exists(session, Staff, staff_id)):
        errors["staff_id"] = ["No such staff member in this tenant."]
    if values.get("occurred_at") is not None:
        # Stored in UTC; normalised here so the caller's object reads back as stored.
        out["occurred_at"] = values["occurred_at"].astimezone(timezone.utc)
    if "status" in values:
        if values["status"] not in kind.statuses:
            errors["status"] = [f"Must be one of: {', '.join(kind.statuses)}."]
    if "data" in values:
        try:
            out["data"] = load_data(kind, values["data"] if values["data"] is not None else {})
        except ValidationError as exc:
            errors["data"] = exc.messages
        else:
            if kind.links:
                errors.update(_unknown_links(session, kind, out["data"]))
    if errors:
        raise RecordInvalid(errors)
    return out


def _exists(session, model, ident) -> bool:
    """Whether the tenant has the site or member of staff ``ident``: one query the first
    time in a transaction, none after (a history of records written in one transaction,
    as a demo loader does, names the same few again and again)."""
    key = (session.tenant_id, model.__name__, ident)
    found = session.state.get(FOUND)
    if found is not None and key in found:
        return True
    if session.scalar(select(model.id).where(model.id == ident)) is None:
        return False
    session.state.setdefault(FOUND, set()).add(key)
    return True


def _unknown_links(session, kind: RecordKind, data: Mapping[str, Any]) -> dict[str, Any]:
    """Errors for the ``kind.links`` paths of ``data`` naming no live record of the tenant
    (one query for all of them)."""
    wanted: dict[str, uuid.UUID] = {}
    for path in kind.links:
        value: Any = data
        for key in path.split("."):
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is not None:
            try:
                wanted[path] = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
            except ValueError:
                wanted[path] = None
    if not wanted:
        return {}
    ids = {v for v in wanted.values() if v is not None}
    found = set(session.scalars(select(Record.id).where(
        Record.id.in_(ids), Record.deleted_at.is_(None)))) if ids else set()
    errors: dict[str, Any] = {}
    for path, value in wanted.items():
        if value not in found:
            node = errors.setdefault("data", {})
            *parents, leaf = path.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = ["No such record in this tenant."]
    return errors


@functools.lru_cache(maxsize=None)
def _schema_instance(schema_cls: type[Schema]) -> Schema:
    """One instance per kind schema: marshmallow schemas keep no state between loads,
    and building one costs more than validating a record."""
    return schema_cls()


@functools.lru_cache(maxsize=None)
def _fast_data_loader(schema_cls: type[Schema]):
    """:func:`load_data`'s fast path for ``schema_cls`` (``None`` when it does not qualify)."""
    from servq.core.db.fast import fast_loader

    return fast_loader(_schema_instance(schema_cls), dump=True, json_default=_data_default)


def load_data(kind: RecordKind, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``raw`` with the kind's schema and return it as stored: the schema's
    dump of the loaded value, made JSON-safe (dates as ISO strings, decimals as numbers),
    so defaults are filled in and the JSON column never sees a Python-only type.
    Plainly valid input takes :mod:`core.db.fast.loads`'s path (same result, nested
    schemas and hooks included); anything else goes through marshmallow here."""
    fast = _fast_data_loader(kind.schema)
    if fast is not None:
        stored = fast(raw)
        if stored is not None:
            return stored
    return marshmallow_data(kind.schema, raw)


def marshmallow_data(schema_cls: type[Schema], raw: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`load_data` through marshmallow alone: what the fast path must equal, and
    what answers (errors included) whenever it does not apply."""
    schema = _schema_instance(schema_cls)
    dumped = schema.dump(schema.load(raw))
    try:
        stored = json.loads(json.dumps(dumped, default=_data_default, allow_nan=False))
    except ValueError as exc:  # NaN or Infinity: not JSON, and PostgreSQL refuses them
        raise ValidationError({"_schema": ["Numbers must be finite."]}) from exc
    if contains_nul(stored):
        # PostgreSQL's jsonb refuses \u0000; SQLite would take it, so refuse it everywhere.
        raise ValidationError({"_schema": ["Text may not contain NUL characters."]})
    return stored


def _data_default(value: Any) -> Any:
    """``json.dumps``'s fallback for a record's ``data``: a decimal stays a number (an int
    when integral), as the data's numbers are read back; anything else as
    :func:`core.audit.json_default` converts it (or refuses it)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return json_default(value)
