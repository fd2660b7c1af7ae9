"""Posting entries from the write pipeline, the repeat-fault flags, and holding the
entries of a disputed evaluation.

:func:`post_records` is one step of :func:`servq.core.records.evaluate.evaluate_records`:
when the tenant has no rules it costs one SELECT per transaction and nothing else. With
rules it builds the candidate rows in Python, reads which keys exist (one SELECT per
thousand, skipped for a bulk import's new records), counts the month's penalties of the
people concerned (one grouped SELECT), and writes the new entries and flags with one
INSERT each (queued with a bulk import's chunk).
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from servq.core.audit import audit_row
from servq.core.db import utcnow
from servq.core.db.fast import WRITER, Writer
from servq.core.db.tenancy import NoTenantContext
from servq.core.ledger.rules import rules_for
from servq.core.models import AuditEvent, Evaluation, LedgerEntry, LedgerFlag, Staff

ENTITY = "ledger_entries"
_ENTRIES = LedgerEntry.__table__
_FLAGS = LedgerFlag.__table__
_FAILED = ("fail", "breached")
CHUNK = 1000
#: The complaint channel that makes a complaint internal (rule 3).
INTERNAL = "internal"


def month_in(instant: datetime, tz: str) -> str:
    """``YYYY-MM`` of ``instant`` in time zone ``tz``."""
    return instant.astimezone(ZoneInfo(tz)).strftime("%Y-%m")


def _row(tenant_id, now, *, staff_id, site_id, kind, points, amount, currency, rule, month,
         source_key, record_id=None, standard_code=None, item_code=None, complaint_id=None,
         status="proposed", actor_id=None) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "id": uuid.uuid4(), "staff_id": staff_id, "site_id": site_id,
            "kind": kind, "points": float(points), "amount": amount, "currency": currency if amount is not None else None,
            "rule": rule, "record_id": record_id, "standard_code": standard_code, "item_code": item_code,
            "complaint_id": complaint_id, "month": month, "status": status, "large": False, "note": None,
            "source_key": source_key, "created_by": actor_id, "created_at": now, "updated_at": now}


def _money(document: dict, amount: float | None, factor: float = 1) -> float | None:
    return amount * factor if document.get("money") and amount is not None else None


def _candidates(session, records, scored, document: dict, tz: str, actor_id) -> list[dict]:
    tenant_id = session.tenant_id
    now = utcnow()
    currency = document.get("currency")
    rows: list[dict] = []
    failed_rule = document.get("failed_item")
    if failed_rule:
        for record, version, compiled, known, result in scored:
            if record.staff_id is None:
                continue
            items = compiled.standard.items
            month = None
            for n, outcome in enumerate(result.items):
                if outcome.outcome.value not in _FAILED:
                    continue
                item = items[n]
                factor = failed_rule["critical_multiplier"] if item.critical else 1
                month = month or month_in(record.occurred_at, tz)
                rows.append(_row(tenant_id, now, staff_id=record.staff_id, site_id=record.site_id,
                                 kind="penalty", points=failed_rule["points"] * factor,
                                 amount=_money(document, failed_rule.get("amount"), factor), currency=currency,
                                 rule="critical_item" if item.critical else "failed_item", month=month,
                                 source_key=f"item:{record.id}:{version.code}:{item.code}",
                                 record_id=record.id, standard_code=version.code, item_code=item.code,
                                 actor_id=actor_id))
    market, internal, suggestion = (document.get(name) for name in
                                    ("market_complaint", "internal_complaint", "suggestion"))
    if market or internal or suggestion:
        tags = set((suggestion or {}).get("tags") or ())
        supervisors = _reports_to(session, records) if market and market.get("supervisor_points") else {}
        for record in records:
            kind = record.kind
            if record.staff_id is None or kind not in ("complaint", "observation"):
                continue
            data = record.data or {}
            base = dict(site_id=record.site_id, currency=currency, record_id=record.id, actor_id=actor_id,
                        month=month_in(record.occurred_at, tz))
            if kind == "complaint":
                if data.get("channel") == INTERNAL:
                    if internal:
                        rows.append(_row(tenant_id, now, staff_id=record.staff_id, kind="penalty",
                                         points=internal["points"], amount=_money(document, internal.get("amount")),
                                         rule="internal_complaint", source_key=f"complaint:{record.id}:responsible",
                                         complaint_id=record.id, **base))
                elif market:
                    rows.append(_row(tenant_id, now, staff_id=record.staff_id, kind="penalty",
                                     points=market["points"], amount=_money(document, market.get("amount")),
                                     rule="market_complaint", source_key=f"complaint:{record.id}:responsible",
                                     complaint_id=record.id, **base))
                    supervisor = (supervisors.get(record.staff_id)
                                  or (document.get("supervisors") or {}).get(str(record.site_id)))
                    if supervisor and market.get("supervisor_points") and str(supervisor) != str(record.staff_id):
                        rows.append(_row(tenant_id, now, staff_id=uuid.UUID(str(supervisor)), kind="penalty",
                                         points=market["supervisor_points"],
                                         amount=_money(document, market.get("supervisor_amount")),
                                         rule="market_complaint_supervisor",
                                         source_key=f"complaint:{record.id}:supervisor",
                                         complaint_id=record.id, **base))
            elif suggestion and tags.intersection(data.get("tags") or ()):
                rows.append(_row(tenant_id, now, staff_id=record.staff_id, kind="reward",
                                 points=suggestion["points"], amount=_money(document, suggestion.get("amount")),
                                 rule="suggestion", source_key=f"suggestion:{record.id}", **base))
    return rows


def _reports_to(session, records) -> dict:
    """``staff id → reports_to`` of the staff of the market complaints among ``records``
    (one SELECT; none when there is no such complaint)."""
    people = {record.staff_id for record in records if record.kind == "complaint" and record.staff_id
              and (record.data or {}).get("channel") != INTERNAL}
    if not people:
        return {}
    return dict(session.execute(select(Staff.id, Staff.reports_to).where(
        Staff.id.in_(list(people)), Staff.reports_to.is_not(None))).all())


def post_records(session, records: Sequence, scored: Sequence[tuple], *, writer: Writer = WRITER,
                 actor_id: uuid.UUID | None = None) -> int:
    """Post the entries the tenant's rules give for ``records`` and their ``scored``
    evaluations (``(record, version, compiled, facts, result)`` each), once per
    ``source_key``; raise the repeat-fault flags they complete. Returns how many were
    posted. Entries from an evaluation that is disputed now start ``held``."""
    found = rules_for(session)
    if found is None:
        return 0
    document, tz = found
    if session.tenant_id is None:
        raise NoTenantContext("posting ledger entries with no tenant in context")
    rows = _candidates(session, records, scored, document, tz, actor_id)
    if not rows:
        return 0
    if not writer.fresh:
        keys = [row["source_key"] for row in rows]
        existing: set[str] = set()
        for start in range(0, len(keys), CHUNK):
            existing.update(session.scalars(select(LedgerEntry.source_key)
                                            .where(LedgerEntry.source_key.in_(keys[start:start + CHUNK]))))
        seen: set[str] = set()
        rows = [row for row in rows if row["source_key"] not in existing
                and not (row["source_key"] in seen or seen.add(row["source_key"]))]
        if not rows:
            return 0
        scored_ids = list({row["record_id"] for row in rows if row["standard_code"]})
        disputed = set()
        for start in range(0, len(scored_ids), CHUNK):
            disputed.update(session.execute(select(Evaluation.record_id, Evaluation.standard_code).where(
                Evaluation.record_id.in_(scored_ids[start:start + CHUNK]), Evaluation.disputed.is_(True))).all())
        for row in rows:
            if (row["record_id"], row["standard_code"]) in disputed:
                row["status"] = "held"
    flags = _flags(session, rows, document.get("flag_threshold") or 3)
    # A concurrent scoring of the same record may post the same keys meanwhile: on
    # PostgreSQL the unique key skips them (SQLite runs write transactions one at a time).
    _insert(session, _ENTRIES, rows, writer, "source_key")
    if flags:
        _raise_flags(session, flags, writer)
    return len(rows)


def _insert(session, table, rows: list[dict], writer: Writer, key: str) -> None:
    """One INSERT of ``rows``: a bulk writer's (queued; new records, new keys) as it
    is; otherwise on PostgreSQL ``ON CONFLICT (tenant_id, key) DO NOTHING``."""
    if writer.fresh or session.get_bind().dialect.name != "postgresql":
        writer.insert(session, table, rows)
        return
    from sqlalchemy.dialects.postgresql import insert

    session.execute(insert(table).values(rows).on_conflict_do_nothing(index_elements=["tenant_id", key]))


def _flags(session, rows: list[dict], threshold: int) -> list[dict]:
    """The flags the new penalty ``rows`` complete: a staff member with ``threshold``
    penalties (not voided) in a month, whatever the item; one per person and month."""
    new = Counter((row["staff_id"], row["month"], row["item_code"]) for row in rows if row["kind"] == "penalty")
    if not new:
        return []
    people = {staff for staff, _, _ in new}
    months = {month for _, month, _ in new}
    counts: Counter = Counter()
    for staff, month, item, count in session.execute(
            select(LedgerEntry.staff_id, LedgerEntry.month, LedgerEntry.item_code, func.count())
            .where(LedgerEntry.staff_id.in_(people), LedgerEntry.month.in_(months),
                   LedgerEntry.kind == "penalty", LedgerEntry.status != "voided")
            .group_by(LedgerEntry.staff_id, LedgerEntry.month, LedgerEntry.item_code)):
        counts[(staff, month, item)] += count
    counts.update(new)
    totals: dict[tuple, int] = defaultdict(int)
    items: dict[tuple, list] = defaultdict(list)
    for (staff, month, item), count in counts.items():
        totals[(staff, month)] += count
        if item is not None:
            items[(staff, month)].append({"item": item, "count": count})
    touched = {(staff, month) for staff, month, _ in new}
    due = [pair for pair in touched if totals[pair] >= threshold]
    if not due:
        return []
    keys = {f"{staff}:{month}": (staff, month) for staff, month in due}
    existing = set(session.scalars(select(LedgerFlag.flag_key).where(LedgerFlag.flag_key.in_(list(keys)))))
    now = utcnow()
    return [{"tenant_id": session.tenant_id, "id": uuid.uuid4(), "staff_id": staff, "month": month,
             "count": totals[(staff, month)],
             "items": sorted(items[(staff, month)], key=lambda i: (-i["count"], i["item"])),
             "status": "open", "flag_key": key, "created_at": now}
            for key, (staff, month) in keys.items() if key not in existing]


def _raise_flags(session, flags: list[dict], writer: Writer) -> None:
    from servq.core.notify.outbox import emit_many

    _insert(session, _FLAGS, flags, writer, "flag_key")
    emit_many(session, [("ledger.flagged", flag_payload(flag), ("manager",), f"ledger.flagged:{flag['flag_key']}")
                        for flag in flags], writer=writer)


def flag_payload(flag) -> dict[str, Any]:
    get = flag.get if isinstance(flag, dict) else lambda name: getattr(flag, name)
    return {"id": str(get("id")), "staff_id": str(get("staff_id")), "month": get("month"),
            "count": get("count"), "items": get("items"), "status": get("status")}


def _set_status(session, where, frm: Sequence[str], to: str, actor_id, note: str) -> int:
    """UPDATE the matching entries from ``frm`` to ``to``, audited in one INSERT."""
    ids = list(session.scalars(select(LedgerEntry.id).where(*where, LedgerEntry.status.in_(frm))))
    if not ids:
        return 0
    session.execute(update(LedgerEntry).where(LedgerEntry.id.in_(ids))
                    .values(status=to, updated_at=utcnow()).execution_options(synchronize_session="fetch"))
    WRITER.insert(session, AuditEvent.__table__, [
        audit_row(session, ENTITY, entry_id, to, actor_id, {"status": [None, to], "note": [None, note]})
        for entry_id in ids])
    return len(ids)


def hold_entries(session, record_id: uuid.UUID, standard_code: str, *, actor_id=None) -> int:
    """Hold the proposed and approved entries from an evaluation being disputed."""
    return _set_status(session, (LedgerEntry.record_id == record_id, LedgerEntry.standard_code == standard_code),
                       ("proposed", "approved"), "held", actor_id, "The evaluation is disputed.")


def release_entries(session, record_id: uuid.UUID, standard_code: str, items: Sequence[dict] | None = None,
                    *, actor_id=None) -> int:
    """Settle the held entries of an evaluation whose dispute ended: back to proposed
    when their item still fails in ``items`` (the evaluation's items after the decision;
    ``None``: withdrawn, all go back), voided when it no longer does (accepted)."""
    where = (LedgerEntry.record_id == record_id, LedgerEntry.standard_code == standard_code)
    if items is None:
        return _set_status(session, where, ("held",), "proposed", actor_id, "The dispute was withdrawn.")
    failed = [item["code"] for item in items if item.get("outcome") in _FAILED]
    kept = _set_status(session, (*where, LedgerEntry.item_code.in_(failed)), ("held",), "proposed",
                       actor_id, "The dispute was decided: the item still fails.")
    voided = _set_status(session, where, ("held",), "voided", actor_id,
                         "The dispute was decided: the item no longer fails.")
    return kept + voided
