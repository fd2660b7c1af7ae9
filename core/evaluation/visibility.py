"""Who may see which records: mystery inspections are hidden from the people they judge.

A mystery inspection (an ``inspection`` record whose ``data.visibility`` is ``mystery``)
is a secret check of the front-line staff; the roles in :data:`MYSTERY_HIDDEN_FROM`
(``agent``) never see one. :func:`hidden_from` is the SQL condition the record routes,
the action routes and the quality files (:mod:`core.kpis.quality_files`) add;
:func:`is_hidden` is its Python twin. The inspection kind
(:mod:`core.records.kinds.inspection`) hands the same names out.
"""

from __future__ import annotations

from sqlalchemy import and_, not_

from servq.core.models import Record

#: The record kind of inspections (:data:`core.records.kinds.inspection.KIND`).
INSPECTION = "inspection"
#: Roles that never see mystery inspections (they are the people being checked).
MYSTERY_HIDDEN_FROM = frozenset({"agent"})


def hidden_from(role: str | None, record=Record):
    """The SQL condition that keeps the records ``role`` may not see out of a query,
    or ``None`` when the role sees every record (only agents are kept from mystery
    inspections). ``record`` is the mapped class or an alias of it (default
    :class:`core.models.Record`)."""
    if role not in MYSTERY_HIDDEN_FROM:
        return None
    return not_(and_(record.kind == INSPECTION,
                     record.data["visibility"].as_string() == "mystery"))


def is_hidden(record: Record, role: str | None) -> bool:
    """Whether ``role`` may not see ``record`` (the Python twin of :func:`hidden_from`)."""
    return (role in MYSTERY_HIDDEN_FROM and record.kind == INSPECTION
            and (record.data or {}).get("visibility") == "mystery")


__all__ = ["INSPECTION", "MYSTERY_HIDDEN_FROM", "hidden_from", "is_hidden"]
