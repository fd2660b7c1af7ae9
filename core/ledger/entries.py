"""Manual entries, the steps an entry takes, and the monthly summary.

States::

    proposed ──approve──▶ approved ──apply──▶ applied
    proposed / approved / held ──void──▶ voided
    (a dispute of the source evaluation: proposed / approved → held → proposed or voided)

``mark_large`` doubles (the rule's ``large_multiplier``) a suggestion's reward once: a
large contribution, marked by a manager.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import case, func, select

from servq.core.audit import audit, jsonable
from servq.core.db import utcnow
from servq.core.ledger.posting import ENTITY, month_in
from servq.core.ledger.rules import rules_for
from servq.core.models import LedgerEntry, LedgerFlag, Record, Staff, Tenant

#: step → (states it may be taken from, state it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "approve": (("proposed",), "approved"),
    "apply": (("approved",), "applied"),
    "void": (("proposed", "approved", "held"), "voided"),
    "mark_large": (("proposed", "approved", "held"), None),
}
COUNTED = ("proposed", "approved", "applied", "held")


class LedgerRefused(Exception):
    """A refused step: ``status`` is the HTTP status, ``errors`` field messages."""

    def __init__(self, status: int, message: str, errors: dict | None = None):
        super().__init__(message)
        self.status, self.errors = status, errors


def month_of_now(session, now: datetime | None = None) -> str:
    """This month (``YYYY-MM``) in the tenant's time zone."""
    found = rules_for(session)
    tz = found[1] if found else (session.scalar(select(Tenant.timezone).where(Tenant.id == session.tenant_id)) or "UTC")
    return month_in(now or utcnow(), tz)


def manual_entry(session, body: Mapping[str, Any], *, actor_id: uuid.UUID | None) -> LedgerEntry:
    """A manager's entry (rule ``manual``); an amount needs money turned on."""
    found = rules_for(session)
    document = found[0] if found else {}
    if body.get("amount") is not None:
        if not document.get("money"):
            raise LedgerRefused(422, "Amounts need money turned on in the ledger rules; use points.",
                                {"amount": ["Money is off for this tenant."]})
        currency = body.get("currency") or document.get("currency")
        if currency != document.get("currency"):
            raise LedgerRefused(422, f"The ledger's currency is {document.get('currency')}.",
                                {"currency": [f"Use {document.get('currency')}."]})
    elif body.get("currency"):
        raise LedgerRefused(422, "A currency goes with an amount.", {"currency": ["No amount given."]})
    staff = session.scalar(select(Staff).where(Staff.id == body["staff_id"]))
    if staff is None:
        raise LedgerRefused(422, "Unknown staff member.", {"staff_id": ["No such staff member in this tenant."]})
    if body.get("record_id") is not None and session.scalar(
            select(Record.id).where(Record.id == body["record_id"], Record.deleted_at.is_(None))) is None:
        raise LedgerRefused(422, "Unknown record.", {"record_id": ["No such record in this tenant."]})
    entry = LedgerEntry(id=uuid.uuid4(), staff_id=staff.id, site_id=staff.site_id, kind=body["kind"],
                        points=body["points"], amount=body.get("amount"),
                        currency=document.get("currency") if body.get("amount") is not None else None,
                        rule="manual", record_id=body.get("record_id"), month=body.get("month") or month_of_now(session),
                        status="proposed", note=body.get("note"), created_by=actor_id)
    session.add(entry)
    session.flush()
    audit(session, ENTITY, entry.id, "created", actor_id,
          {name: [None, jsonable(getattr(entry, name))] for name in
           ("staff_id", "kind", "points", "amount", "currency", "rule", "month", "note") if getattr(entry, name) is not None})
    return entry


def transition(session, entry: LedgerEntry, name: str, *, note: str | None, actor_id: uuid.UUID | None) -> None:
    """Take step ``name``; audited. :raises LedgerRefused: 409 when not allowed."""
    sources, target = TRANSITIONS[name]
    if entry.status not in sources:
        allowed = [step for step, (frm, _) in TRANSITIONS.items() if entry.status in frm]
        raise LedgerRefused(409, f"{name!r} is not allowed while the entry is {entry.status}; "
                                 f"allowed: {', '.join(allowed) or 'none'}.", {"allowed": allowed})
    changes: dict[str, list] = {}
    if name == "mark_large":
        if entry.rule != "suggestion" or entry.large:
            raise LedgerRefused(409, "Only a suggestion's reward is marked large, once.")
        found = rules_for(session)
        factor = ((found[0] if found else {}).get("suggestion") or {}).get("large_multiplier", 2)
        changes = {"points": [entry.points, entry.points * factor], "large": [False, True]}
        entry.points *= factor
        if entry.amount is not None:
            changes["amount"] = [entry.amount, entry.amount * factor]
            entry.amount *= factor
        entry.large = True
    else:
        changes["status"] = [entry.status, target]
        entry.status = target
    if note:
        changes["note"] = [None, note]
        entry.note = note
    entry.updated_at = utcnow()
    session.flush()
    audit(session, ENTITY, entry.id, name, actor_id, changes)


def _sums():
    counted = LedgerEntry.status.in_(COUNTED)
    reward = (LedgerEntry.kind == "reward") & counted
    penalty = (LedgerEntry.kind == "penalty") & counted
    return (func.coalesce(func.sum(case((reward, LedgerEntry.points), else_=0)), 0).label("reward_points"),
            func.coalesce(func.sum(case((penalty, LedgerEntry.points), else_=0)), 0).label("penalty_points"),
            func.coalesce(func.sum(case((reward, LedgerEntry.amount), else_=0)), 0).label("reward_amount"),
            func.coalesce(func.sum(case((penalty, LedgerEntry.amount), else_=0)), 0).label("penalty_amount"),
            func.count(case((counted, 1))).label("entries"),
            func.count(case((LedgerEntry.status == "held", 1))).label("held"))


def _line(row, key: str) -> dict[str, Any]:
    out = {key: row[0], "reward_points": float(row.reward_points), "penalty_points": float(row.penalty_points),
           "net_points": float(row.reward_points) - float(row.penalty_points), "entries": row.entries,
           "held": row.held}
    out["reward_amount"], out["penalty_amount"] = float(row.reward_amount), float(row.penalty_amount)
    return out


def summary(session, month: str) -> dict[str, Any]:
    """The month's totals by person and by site (voided entries left out), two grouped
    SELECTs; ``flags``: the month's flags."""
    people = session.execute(select(LedgerEntry.staff_id, *_sums()).where(LedgerEntry.month == month)
                             .group_by(LedgerEntry.staff_id).order_by(LedgerEntry.staff_id)).all()
    sites = session.execute(select(LedgerEntry.site_id, *_sums()).where(LedgerEntry.month == month)
                            .group_by(LedgerEntry.site_id).order_by(LedgerEntry.site_id)).all()
    flags = session.scalar(select(func.count()).select_from(LedgerFlag).where(LedgerFlag.month == month))
    found = rules_for(session)
    return {"month": month, "currency": found[0].get("currency") if found and found[0].get("money") else None,
            "by_staff": [_line(row, "staff_id") for row in people],
            "by_site": [_line(row, "site_id") for row in sites], "flags": flags}


def person_totals(session, staff_id: uuid.UUID, months: tuple[str, str]) -> dict[str, Any]:
    """A person's ledger over the months ``months`` (first, last; inclusive): points
    rewarded and penalised, entries counted (voided left out), open flags. One SELECT."""
    flags = (select(func.count()).select_from(LedgerFlag).where(
        LedgerFlag.staff_id == staff_id, LedgerFlag.status == "open",
        LedgerFlag.month >= months[0], LedgerFlag.month <= months[1]).scalar_subquery())
    row = session.execute(select(*_sums(), flags.label("open_flags")).where(
        LedgerEntry.staff_id == staff_id, LedgerEntry.month >= months[0],
        LedgerEntry.month <= months[1])).one()
    return {"reward_points": float(row.reward_points), "penalty_points": float(row.penalty_points),
            "entries": row.entries, "held": row.held, "open_flags": row.open_flags or 0}
