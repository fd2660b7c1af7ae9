"""The tenant's own survey instruments: creating, changing (a new version each time) and
deleting them, audited. Built-in instruments (:mod:`core.surveys.servqual`) cannot change.

The functions add to the session; committing is the caller's.
"""

from __future__ import annotations

import uuid

from marshmallow import ValidationError
from sqlalchemy import select

from servq.core.audit import audit
from servq.core.models import SurveyInstrument
from servq.core.surveys.errors import SurveyConflict, SurveyInvalid, SurveyNotFound
from servq.core.surveys.instruments import CODE_RE, InstrumentSchema, builtin


def instruments_statement():
    """SELECT of the tenant's own instruments, by code."""
    return select(SurveyInstrument).order_by(SurveyInstrument.code)


def instrument_by_code(session, code: str) -> tuple[dict, SurveyInstrument | None]:
    """``(document, row)`` of a built-in (``row`` ``None``) or the tenant's instrument.

    :raises SurveyNotFound: no such instrument.
    """
    doc = builtin(code)
    if doc is not None:
        return doc, None
    if not CODE_RE.match(code):
        raise SurveyNotFound("Instrument not found.")
    row = session.scalar(select(SurveyInstrument).where(SurveyInstrument.code == code))
    if row is None:
        raise SurveyNotFound("Instrument not found.")
    return row.document, row


def custom_instrument(session, code: str) -> SurveyInstrument:
    """The tenant's own instrument ``code``, the only kind that may change.

    :raises SurveyNotFound: no such instrument. :raises SurveyConflict: a built-in one.
    """
    if not CODE_RE.match(code):
        raise SurveyNotFound("Instrument not found.")
    if builtin(code) is not None:
        raise SurveyConflict(f"{code!r} is a built-in instrument: it cannot be changed or deleted; "
                             "create your own under another code.")
    row = session.scalar(select(SurveyInstrument).where(SurveyInstrument.code == code))
    if row is None:
        raise SurveyNotFound("Instrument not found.")
    return row


def clean_document(body: dict) -> dict:
    """The stored document: what the schema loaded, without ``None`` optional parts."""
    doc = {k: v for k, v in body.items() if v is not None}
    doc["items"] = [{k: v for k, v in item.items() if v is not None} for item in doc["items"]]
    return doc


def create_instrument(session, body: dict, actor_id: uuid.UUID | None) -> SurveyInstrument:
    """Add the instrument ``body`` (as :class:`InstrumentSchema` loads it), version 1, audited.

    :raises SurveyConflict: a built-in or another instrument has its code.
    """
    code = body["code"]
    if builtin(code) is not None or session.scalar(
            select(SurveyInstrument.id).where(SurveyInstrument.code == code)):
        raise SurveyConflict(f"An instrument with code {code!r} exists.")
    doc = clean_document(body)
    row = SurveyInstrument(code=code, version=1, document=doc, created_by=actor_id)
    session.add(row)
    session.flush()
    audit(session, "survey_instruments", row.id, "created", actor_id, {"code": [None, code]})
    return row


def change_instrument(session, row: SurveyInstrument, values: dict, actor_id: uuid.UUID | None) -> None:
    """Replace the fields given of the tenant's instrument; a real change is a new version
    (audited). Surveys already created keep the version they were created with.

    :raises SurveyInvalid: the changed instrument is not valid.
    """
    merged = {**row.document, **values, "code": row.code}
    try:
        doc = clean_document(InstrumentSchema().load(merged))
    except ValidationError as exc:
        raise SurveyInvalid("The instrument is not valid.", exc.messages) from None
    if doc != row.document:
        changed = sorted(k for k in doc if doc.get(k) != row.document.get(k))
        row.document = doc
        row.version += 1
        audit(session, "survey_instruments", row.id, "changed", actor_id,
              {"version": [row.version - 1, row.version], "fields": [None, changed]})


def delete_instrument(session, row: SurveyInstrument, actor_id: uuid.UUID | None) -> None:
    """Delete the tenant's instrument, audited; surveys keep their copy."""
    audit(session, "survey_instruments", row.id, "deleted", actor_id, {"code": [row.code, None]})
    session.delete(row)
