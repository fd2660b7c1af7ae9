"""What an inspection must satisfy before it is written: its standard, inspector and answers.

The shape of an inspection's ``data`` is the kind's schema (:mod:`core.records.kinds.inspection`);
this module checks what needs the tenant's data: the standard it names exists and applies
to inspections, the inspector is a member, the record it judges (``subject_record_id``)
exists, and the answers fit the standard (no unknown item, no required item missing, each
answer gives what its item's rule needs).
"""

from __future__ import annotations

import uuid
from typing import Any, Mapping

from sqlalchemy import select

from servq.core.evaluation.errors import RecordInvalid
from servq.core.models import Membership, Record
from servq.core.evaluation.values import INSPECTION, answer_values, inspection_plan
from servq.core.standards import rule_registry, standard_in_force


def named_standard(session, code: str | None):
    """``(StandardVersion, CompiledStandard)`` of the standard in force named ``code``
    when it applies to inspections, else ``None``."""
    if not code:
        return None
    pair = standard_in_force(session, code)
    if pair is None or INSPECTION not in pair[1].standard.applies_to:
        return None
    return pair


def check_record(session, kind: str, values: Mapping[str, Any], *,
                 actor_id: uuid.UUID | None = None, record: Record | None = None) -> dict[str, Any]:
    """Check what the quality engine needs of a record about to be created or changed.

    ``values`` are the record's validated fields (``data`` already loaded by its kind's
    schema); ``record`` is the record being changed, ``None`` for a new one. Returns the
    values to apply on top (an inspection's ``data`` with its inspector filled in); an
    empty dict for other kinds, without a query.

    :raises RecordInvalid: naming each problem (``data.standard``,
        ``data.inspector_id``, ``data.answers.<item>``); nothing has been written.
    """
    if kind != INSPECTION or values.get("data") is None:
        return {}
    data = dict(values["data"])
    errors: dict[str, Any] = {}
    if data.get("inspector_id") is None:
        previous = (record.data or {}).get("inspector_id") if record is not None else None
        default = previous or (record.created_by if record is not None else actor_id)
        data["inspector_id"] = str(default) if default is not None else None
    if data["inspector_id"] is not None and session.scalar(
            select(Membership.id).where(Membership.user_id == uuid.UUID(str(data["inspector_id"])))) is None:
        errors["inspector_id"] = ["The inspector must be a member of this tenant."]
    code = data.get("standard")
    pair = standard_in_force(session, code)
    if pair is None:
        errors["standard"] = [f"No standard {code!r} in this tenant (GET /api/v1/standards)."]
    elif INSPECTION not in pair[1].standard.applies_to:
        errors["standard"] = [f"Standard {code!r} does not apply to inspections (it applies to "
                              f"{', '.join(pair[1].standard.applies_to)}); add 'inspection' to its "
                              f"applies_to to inspect against it."]
    else:
        plan = inspection_plan(pair[1], rule_registry())
        _, problems = answer_values(plan, data.get("answers") or {}, strict=True)
        if problems:
            errors["answers"] = dict(sorted(problems.items()))
    extra = _subject(session, data, values, record, errors)
    if errors:
        raise RecordInvalid({"data": errors}, "The inspection does not fit its standard.")
    return {"data": data, **extra}


def _subject(session, data: dict, values: Mapping[str, Any], record: Record | None,
             errors: dict) -> dict[str, Any]:
    """Check the record an inspection judges (``subject_record_id``): one of the tenant's
    records, not deleted, not the inspection itself. Stored as text; returns the subject's
    ``site_id``/``staff_id`` for a new inspection that names neither (the review counts
    for the person whose work it judges)."""
    subject_id = data.get("subject_record_id")
    if subject_id is None:
        return {}
    subject_id = uuid.UUID(str(subject_id))
    data["subject_record_id"] = str(subject_id)
    if record is not None and record.id == subject_id:
        errors["subject_record_id"] = ["An inspection cannot judge itself."]
        return {}
    subject = session.execute(select(Record.site_id, Record.staff_id).where(
        Record.id == subject_id, Record.deleted_at.is_(None))).first()
    if subject is None:
        errors["subject_record_id"] = [f"No record {subject_id} in this tenant."]
        return {}
    if record is not None:
        return {}
    extra = {}
    if values.get("site_id") is None and subject.site_id is not None:
        extra["site_id"] = subject.site_id
    if values.get("staff_id") is None and subject.staff_id is not None:
        extra["staff_id"] = subject.staff_id
    return extra
