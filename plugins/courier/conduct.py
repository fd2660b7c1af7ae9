"""Enforcement and the repeat rule, run from the plugin's record hooks.

* **Photo of a failed attempt** (CoopCycle #3813; rxtrax #48: enforce on the server): a
  delivery entering ``attempt_failed`` for a reason the tenant's ``photo_required_on`` names
  without a photo in ``failure_evidence`` is refused, whichever route moved it: 409 with
  ``unmet`` naming ``data.failure_evidence`` and a message, nothing changed.
* **The repeat rule** (S ``000 公司…范本 §六.4 同样事故或同一责任人当月连续出现三次``): when a
  prohibited act (a critical item of :data:`PROHIBITED`) has failed for the same courier
  ``repeat_threshold`` times (default 3) in a calendar month of the tenant's time zone, one
  ``courier.repeat_offence`` notification goes to the managers (deduplicated per courier, act
  and month: a fourth time sends nothing more). A flag for a person to decide on, never a
  sanction. The count is of the corrective actions the critical failures opened (one per
  record and item), so re-scoring a record never counts it twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from servq import (Action, Record, TransitionBlocked, emit_many, plugin_settings, schedule_zone,
                   transaction_memo)
from servq.plugins.courier.config import CourierConfig

PLUGIN = "courier"
DELIVERY = "courier.delivery"
STANDARDS = ("courier.delivery", "courier.pickup")
#: The four prohibited acts of 第四条: the critical items counted by the repeat rule.
PROHIBITED = ("appointment_kept_or_notified", "no_private_rush_fee", "no_gift_withheld", "waited_for_check")
EVENT = "courier.repeat_offence"
#: The plugin's event types (``register_event_types``): webhooks may subscribe to them.
EVENT_TYPES = {EVENT: ("A courier failed the same prohibited act the tenant's repeat_threshold times (3) in a "
                       "calendar month: a flag for the station manager to decide on, never a sanction.")}


def configuration(session) -> dict:
    """The tenant's stored configuration of the plugin, defaults filled in (read only when
    a failed attempt or a prohibited act needs it: rare)."""
    return CourierConfig().load(plugin_settings(session, PLUGIN))


def check_failure_photo(session, record, changes) -> None:
    """Refuse a failed attempt without the photo its reason needs (see the module)."""
    if record.kind != DELIVERY or "status" not in changes or changes["status"][1] != "attempt_failed":
        return
    reason = (record.data or {}).get("failure_reason")
    if not configuration(session)["photo_required_on"].get(reason):
        return
    if (record.data or {}).get("failure_evidence"):
        return
    message = (f"A failed attempt for the reason '{reason}' needs a photo: add it to data.failure_evidence "
               f"first (this tenant's photo_required_on).")
    raise TransitionBlocked(message, ["fail"], [{
        "field": "data.failure_evidence", "requires": {"present": True}, "message": message}])


def _month(session, when: datetime) -> tuple[str, datetime, datetime]:
    local = when.astimezone(schedule_zone(session))
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return f"{start.year:04d}-{start.month:02d}", start, end


def repeat_rule(session, evaluated) -> None:
    """Flag the courier's third (``repeat_threshold``) same prohibited act of the month,
    for each record of ``evaluated`` (``records_evaluated``'s pairs) that failed one.
    Nothing is read for a write without a prohibited act (nearly all of them).

    The failures are read once per act and transaction (:func:`_history`), not at every
    write: a bulk import calls this once per chunk, and a read there would wait for the
    server to finish writing the chunk before (its writes are sent without waiting). The
    flags of one write are stored together, and a flag already stored in the transaction
    is not stored again (the outbox would skip it by its key anyway)."""
    failed = []
    for record, evaluations in evaluated:
        if record.staff_id is None:
            continue
        acts = {code for evaluation in evaluations if evaluation.standard_code in STANDARDS
                for code in (evaluation.failed_critical or ()) if code in PROHIBITED}
        if acts:
            failed.append((record, acts))
    if not failed:
        return
    threshold = configuration(session)["repeat_threshold"]
    memo = transaction_memo(session, PLUGIN)
    history = _history(session, memo, {act for _, acts in failed for act in acts})
    for record, acts in failed:  # each opened a corrective action (source "critical")
        for act in acts:
            history[act][record.id] = (record.staff_id, record.occurred_at)
    flagged = memo.setdefault("flagged", set())
    events = []
    # In the order they happened: of a month imported at once, the third is flagged.
    for record, acts in sorted(failed, key=lambda pair: pair[0].occurred_at):
        events.extend(_flags(session, record, acts, threshold, history, flagged))
    if events:
        emit_many(session, events)


def _history(session, memo: dict, acts: set[str]) -> dict[str, dict]:
    """``{act: {record id: (staff id, occurred at)}}`` for ``acts`` and more: every live
    record whose prohibited act opened a corrective action, read from the database the
    first time the transaction needs an act (:func:`_failures`) and kept in ``memo``,
    where :func:`repeat_rule` adds the failures of each later write."""
    history = memo.setdefault("history", {})
    missing = acts - history.keys()
    if missing:
        found = _failures(session, missing)
        for act in missing:
            history[act] = {record_id: (staff_id, occurred_at)
                            for staff_id, occurred_at, record_id in found.get(act, ())}
    return history


def _failures(session, acts: set[str]) -> dict[str, list[tuple]]:
    """``{act: [(staff id, occurred at, record id)]}``: every live record whose prohibited
    act opened a corrective action, read with two plain statements (the actions of those
    items, few; then their records by key), not one join per flagged record: a join's
    plan, made before a large import's rows are analysed, scanned the records for each of
    them."""
    pairs = session.execute(select(Action.item_code, Action.record_id).where(
        Action.item_code.in_(sorted(acts)), Action.standard_code.in_(STANDARDS),
        Action.source == "critical")).all()
    ids = list({record_id for _, record_id in pairs})
    records = {}
    for start in range(0, len(ids), 1000):
        records.update((row.id, (row.staff_id, row.occurred_at)) for row in session.execute(
            select(Record.id, Record.staff_id, Record.occurred_at).where(
                Record.id.in_(ids[start:start + 1000]), Record.deleted_at.is_(None))))
    found: dict[str, list[tuple]] = {}
    for act, record_id in pairs:
        if record_id in records:
            staff_id, occurred_at = records[record_id]
            found.setdefault(act, []).append((staff_id, occurred_at, record_id))
    return found


def _flags(session, record, acts: set[str], threshold: int, history: dict[str, dict],
           flagged: set[str]) -> list[tuple]:
    """The flags (``emit_many`` tuples) of ``record``'s acts that the courier failed
    ``threshold`` times in the month up to it (not after it: a whole month imported at
    once flags the third, with three), but for those ``flagged`` already (a key of the
    transaction's flags, which this adds to)."""
    label, start, end = _month(session, record.occurred_at)
    out = []
    for act in sorted(acts):
        key = f"{EVENT}:{record.staff_id}:{act}:{label}"
        if key in flagged:
            continue
        records = {record_id for record_id, (staff_id, occurred_at) in history[act].items()
                   if staff_id == record.staff_id and start <= occurred_at < end
                   and occurred_at <= record.occurred_at}
        records.add(record.id)
        if len(records) >= threshold:
            flagged.add(key)
            out.append((EVENT, {
                "staff_id": record.staff_id, "site_id": record.site_id, "item": act, "month": label,
                "count": len(records), "threshold": threshold,
                "record_ids": sorted(str(r) for r in records),
                "decision": "for the station manager: reassignment, a talk or nothing; no sanction is applied",
            }, ("manager",), key))
    return out
