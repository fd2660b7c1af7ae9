"""The breach watch: act on the deadline clocks whose ``next_check_at`` has come.

:func:`scan` runs every minute from the deadline tick (:mod:`core.deadlines.watch`) and
after a sync that finds a clock due already. It looks only at clocks whose
``next_check_at`` has come, with one indexed query and set-based UPDATEs: it sends each
warning once, and on a breach marks the clock ``breached``, raises the record's escalation
level, notifies the roles the item names (``escalate_to``) and, where the item says
``action_on_failure``, opens a corrective action. How clocks are kept in step with their
records, and how a breach the history disproves is withdrawn, is :mod:`core.deadlines.clocks`.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import and_, or_, select, update

from servq.core import metrics
from servq.core.calendar import due as calendar_due, parse_duration
from servq.core.calendar.tenant import tenant_calendar
from servq.core.db import utcnow
from servq.core.deadlines.clocks import LEVELS, WATCHED, breach_key, cap_pause, iso_utc
from servq.core.deadlines.pauses import open_pause_cap, open_state
from servq.core.evaluation.actions import action_key, open_action, reopen_withdrawn
from servq.core.models import AuditEvent, Clock, Record, StandardVersion
from servq.core.notify.outbox import emit_many

#: Clocks handled per batch by :func:`scan` (each batch is committed).
SCAN_BATCH = 5000


@dataclass
class ScanResult:
    """What one :func:`scan` did."""

    warnings: int = 0
    breaches: int = 0
    escalated_records: int = 0
    actions: int = 0
    pause_caps: int = 0  # paused clocks resumed by their pause cap
    notifications: int = 0
    notify_seconds: float = 0.0  # time spent writing the outbox

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["notify_seconds"] = round(self.notify_seconds, 3)
        return out


_ITEM_CACHE: dict[tuple, dict[str, dict]] = {}
_ITEM_CACHE_LIMIT = 4096


def standard_items(session, pairs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], dict[str, dict]]:
    """``{(code, version): {item code: item document}}`` of the tenant's stored versions.

    Stored versions never change, so they are cached per process; the rest is read with
    one query.
    """
    tenant_id = session.tenant_id
    out, missing = {}, []
    for pair in set(pairs):
        cached = _ITEM_CACHE.get((tenant_id, *pair))
        if cached is not None:
            out[pair] = cached
        else:
            missing.append(pair)
    if missing:
        rows = session.execute(select(StandardVersion.code, StandardVersion.version,
                                      StandardVersion.document).where(or_(*(
            and_(StandardVersion.code == code, StandardVersion.version == version)
            for code, version in missing))))
        for code, version, document in rows:
            items = {item["code"]: item for item in (document or {}).get("items", ())}
            if len(_ITEM_CACHE) > _ITEM_CACHE_LIMIT:
                _ITEM_CACHE.clear()
            _ITEM_CACHE[(tenant_id, code, version)] = items
            out[(code, version)] = items
    return out


def scan(session, now: datetime | None = None, *, batch: int = SCAN_BATCH) -> ScanResult:
    """The breach watch for the session's tenant: act on every clock whose
    ``next_check_at`` has come, and commit.

    One indexed query per batch finds the clocks (``state``, ``next_check_at``); UPDATEs
    over the batch's ids move them on, each guarded by the condition that selected it,
    so concurrent scans never act twice. Then, for the clocks this scan moved:

    * a warning level reached (50 or 75 %): ``clock.warning`` (once per clock and level;
      a level overtaken before the watch saw it is skipped);
    * a paused clock whose pause cap has come (its ``next_check_at``, first of all): the
      pause closes at the cap instant, the clock runs again (the record stays waiting),
      audited ``clock_pause_capped``, and ``clock.pause_capped`` goes to the item's
      ``escalate_to`` roles; a clock that is due by then is judged in the same scan;
    * the due time passed or a late stop: state ``breached``, ``breached_at`` = due
      time, the record's ``escalation_level`` + 1 (audited), ``clock.warning`` at 100 %
      (unless stopped) and ``clock.breached`` to the item's ``escalate_to`` roles, and a
      corrective action (source ``deadline``) when the item says ``action_on_failure``.
    """
    now = now or utcnow()
    result = ScanResult()
    _cap_pauses(session, now, result, batch)
    for _ in range(10_000):  # bounded; each pass moves every clock it selects
        rows = session.execute(
            select(Clock.id, Clock.record_id, Clock.standard_code, Clock.standard_version,
                   Clock.item_code, Clock.state, Clock.target, Clock.business, Clock.start_at,
                   Clock.due_at, Clock.stop_at, Clock.warned, Clock.warn50_at, Clock.warn75_at,
                   Clock.breached_at, Clock.withdrawals)
            .where(Clock.state.in_(WATCHED), Clock.next_check_at <= now)
            .order_by(Clock.next_check_at).limit(batch)).all()
        if not rows:
            break
        metrics.CLOCKS_SCANNED.inc(len(rows))
        _scan_batch(session, rows, now, result)
        session.commit()
        if len(rows) < batch:
            break
    return result


def _cap_pauses(session, now: datetime, result: ScanResult, batch: int) -> None:
    """Resume the paused clocks whose pause cap has come (``state = 'paused'`` and
    ``next_check_at`` due: the same index as the rest of the scan). Each is claimed with
    a guarded UPDATE (so concurrent scans resume it once), then moved on by
    :func:`core.deadlines.clocks.cap_pause`; one notification per cap hit (dedupe key
    ``clock.pause_capped:<clock id>:<n>`` for the clock's n-th)."""
    for _ in range(10_000):
        due = session.execute(
            select(Clock.id, Clock.next_check_at)
            .where(Clock.state == "paused", Clock.next_check_at <= now)
            .order_by(Clock.next_check_at).limit(batch)).all()
        if not due:
            return
        claimed = set(_guarded_update(session, [row.id for row in due], [Clock.state == "paused"],
                                      next_check_at=None, updated_at=now, now=now))
        clocks = list(session.scalars(select(Clock).where(Clock.id.in_(claimed))
                                      .execution_options(populate_existing=True))) if claimed else []
        calendar = tenant_calendar(session) if clocks else None
        at_of = {row.id: row.next_check_at for row in due}
        events = []
        items = standard_items(session, {(c.standard_code, c.standard_version) for c in clocks})
        for clock in clocks:
            at, cap = open_pause_cap(clock, calendar)
            if at is not None and at > now:  # the pauses changed since: not capped yet
                clock.next_check_at = at
                continue
            at = at or at_of[clock.id]
            state = open_state(clock)
            reason = clock.pause_reason
            cap_pause(session, clock, at, cap, now, calendar)
            result.pause_caps += 1
            item = items.get((clock.standard_code, clock.standard_version), {}).get(clock.item_code, {})
            events.append(("clock.pause_capped", {
                "clock_id": str(clock.id), "record_id": str(clock.record_id),
                "standard_code": clock.standard_code, "standard_version": clock.standard_version,
                "item_code": clock.item_code, "item_title": item.get("title"), "target": clock.target,
                "state": state, "reason": reason, "cap": cap,
                "limit": ((clock.pause_rules or {}).get("cap") or {}).get(cap),
                "capped_at": iso_utc(at), "due_at": iso_utc(clock.due_at)},
                tuple(item.get("escalate_to") or ()), f"clock.pause_capped:{clock.id}:{clock.cap_hits}"))
        session.flush()
        _notify(session, events, result)
        session.commit()
        if len(due) < batch:
            return


def _scan_batch(session, rows: Sequence, now: datetime, result: ScanResult) -> None:
    breach, warn75, warn50, other = [], [], [], []
    for row in rows:
        warned = set(row.warned or ())
        if row.breached_at is None and (row.state == "breached" or row.due_at <= now):
            breach.append(row.id)
        elif row.state == "running" and 75 not in warned and row.warn75_at is not None \
                and row.warn75_at <= now < row.due_at:
            warn75.append(row.id)
        elif row.state == "running" and 50 not in warned and row.warn50_at is not None \
                and row.warn50_at <= now < (row.warn75_at or row.due_at):
            warn50.append(row.id)
        else:
            other.append(row)
    by_id = {row.id: row for row in rows}
    moved_breach = _guarded_update(session, breach, [
        Clock.breached_at.is_(None),
        or_(Clock.state == "breached", and_(Clock.state == "running", Clock.due_at <= now))],
        state="breached", breached_at=Clock.due_at, warned=list(LEVELS), next_check_at=None,
        updated_at=now, now=now)
    moved_75 = _guarded_update(session, warn75, [
        Clock.state == "running", Clock.warn75_at <= now, Clock.due_at > now],
        warned=[50, 75], next_check_at=Clock.due_at, updated_at=now, now=now)
    moved_50 = _guarded_update(session, warn50, [
        Clock.state == "running", Clock.warn50_at <= now, Clock.warn75_at > now],
        warned=[50], next_check_at=Clock.warn75_at, updated_at=now, now=now)
    for row in other:  # nothing to send: put the clock back on its next instant
        warned = set(row.warned or ())
        pending = [at for level, at in ((50, row.warn50_at), (75, row.warn75_at), (100, row.due_at))
                   if level not in warned and at is not None and at > now]
        session.execute(update(Clock).where(Clock.id == row.id, Clock.next_check_at <= now)
                        .values(next_check_at=min(pending) if pending else None)
                        .execution_options(synchronize_session=False))
    if not (moved_breach or moved_75 or moved_50):
        return
    moved = [by_id[i] for i in (*moved_breach, *moved_75, *moved_50)]
    items = standard_items(session, {(row.standard_code, row.standard_version) for row in moved})
    events: list[tuple[str, dict, tuple, str]] = []  # (type, payload, roles, dedupe key)

    def item_of(row) -> dict:
        return items.get((row.standard_code, row.standard_version), {}).get(row.item_code, {})

    def payload(row, **extra) -> dict:
        item = item_of(row)
        return {"clock_id": str(row.id), "record_id": str(row.record_id),
                "standard_code": row.standard_code, "standard_version": row.standard_version,
                "item_code": row.item_code, "item_title": item.get("title"), "target": row.target,
                "time": "working" if row.business else "wall", "start_at": iso_utc(row.start_at),
                "due_at": iso_utc(row.due_at), "stop_at": iso_utc(row.stop_at), **extra}

    for level, ids in ((75, moved_75), (50, moved_50)):
        for clock_id in ids:
            row = by_id[clock_id]
            result.warnings += 1
            events.append(("clock.warning", payload(row, level=level),
                           tuple(item_of(row).get("escalate_to") or ()),
                           f"clock.warning:{clock_id}:{level}"))
    if not moved_breach:
        _notify(session, events, result)
        return
    breached = [by_id[i] for i in moved_breach]
    result.breaches += len(breached)
    levels = _escalate(session, Counter(row.record_id for row in breached), now)
    result.escalated_records += len(levels)
    needs_action = [row for row in breached if item_of(row).get("action_on_failure")]
    records = {}
    if needs_action:
        ids = list({row.record_id for row in needs_action})
        records = {r.id: r for r in session.scalars(select(Record).where(Record.id.in_(ids)))}
    for row in breached:
        item = item_of(row)
        roles = item.get("escalate_to") or ()
        level, kind = levels.get(row.record_id, (None, None))
        episode = len(row.withdrawals or ()) + 1
        again = "" if episode == 1 else f":{episode}"
        if row.stop_at is None:
            events.append(("clock.warning", payload(row, level=100), tuple(roles),
                           f"clock.warning:{row.id}:100{again}"))
        events.append(("clock.breached", payload(row, breached_at=iso_utc(row.due_at), record_kind=kind,
                                                 escalation_level=level),
                       tuple(roles), breach_key(row.id, episode)))
        if item.get("action_on_failure") and row.record_id in records:
            _open_breach_action(session, records[row.record_id], row, item, roles)
            result.actions += 1
    _notify(session, events, result)


def _notify(session, events: list[tuple[str, dict, tuple, str]], result: "ScanResult") -> None:
    """Put ``events`` in the outbox (``core.notify.outbox.emit_many``), in the scan's
    transaction, in one statement."""
    if not events:
        return
    started = time.perf_counter()
    emit_many(session, events)
    result.notifications += len(events)
    result.notify_seconds += time.perf_counter() - started


def _guarded_update(session, ids: list, guards: list, *, now: datetime, **values) -> list:
    """UPDATE the clocks ``ids`` that still match ``guards`` (and are due); their ids."""
    moved = []
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        moved.extend(session.scalars(
            update(Clock)
            .where(Clock.id.in_(chunk), Clock.next_check_at <= now, *guards)
            .values(**values)
            .returning(Clock.id)
            .execution_options(synchronize_session=False)))
    return moved


def _escalate(session, counts: Counter, now: datetime) -> dict[uuid.UUID, tuple[int, str]]:
    """Raise each record's escalation level by its count of new breaches (audited);
    ``{record id: (new level, kind)}``."""
    levels: dict[uuid.UUID, tuple[int, str]] = {}
    by_count: dict[int, list] = {}
    for record_id, n in counts.items():
        by_count.setdefault(n, []).append(record_id)
    for n, ids in by_count.items():
        for start in range(0, len(ids), 1000):
            rows = session.execute(
                update(Record).where(Record.id.in_(ids[start:start + 1000]))
                .values(escalation_level=Record.escalation_level + n, updated_at=now)
                .returning(Record.id, Record.escalation_level, Record.kind)
                .execution_options(synchronize_session=False))
            for record_id, level, kind in rows:
                levels[record_id] = (level, kind)
                session.add(AuditEvent(entity="records", entity_id=record_id, action="escalated",
                                       actor_user_id=None, at=now,
                                       changes={"escalation_level": [level - n, level]}))
    return levels


def _open_breach_action(session, record: Record, row, item: Mapping[str, Any], roles) -> None:
    if reopen_withdrawn(session, action_key(record.id, row.standard_code, row.item_code),
                        note="The deadline is breached again: the record's history shows it breached."):
        return  # breached again after a withdrawal: the action closed as raised in error reopens

    title = (item.get("title") or {}).get("en") or row.item_code
    fix_within = item.get("fix_within")
    due_at = None
    if fix_within:
        try:
            due_at = row.due_at + parse_duration(fix_within)
        except ValueError:
            due_at = calendar_due(row.due_at, fix_within, tenant_calendar(session))
    open_action(session, title=f"Deadline breached: {title}", record=record, item_code=row.item_code,
                standard=_Ref(row.standard_code, row.standard_version), due_at=due_at,
                source="deadline", source_key=action_key(record.id, row.standard_code, row.item_code),
                description=(f"The {row.target} deadline of item {row.item_code!r} of standard "
                             f"{row.standard_code!r} (version {row.standard_version}) was due at "
                             f"{iso_utc(row.due_at)} and was breached."),
                roles=tuple(roles))


class _Ref:
    """A standard named by code and version (what ``open_action`` reads)."""

    def __init__(self, code: str, version: int):
        self.code, self.version = code, version
