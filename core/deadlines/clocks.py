"""Deadline clocks: kept in step with records, paused in waiting states, watched for breaches.

One :class:`~core.models.Clock` exists per record and ``deadline`` item of each standard
the record is scored against (the clock of "serious complaints resolved within 5 working
days" on complaint C). Three things move a clock:

* :func:`sync_clocks` (called by the quality engine whenever a record is evaluated: on
  creation, change, workflow transition, re-scoring) computes start, target, due time,
  the 50 % / 75 % warning instants, the state and ``next_check_at`` from the record's
  timestamps, the item's limit (or the moment it is due at: ``due``, ``due_time``, kept
  in ``anchor_at``; :mod:`core.scoring.dated`), the pauses so far and the tenant's
  business calendar.
  It has no side effects beyond the clock rows: no notification, no escalation.
* :func:`pause_clocks` / :func:`resume_clocks` (called by workflow transitions into and
  out of waiting states) record a pause with its reason; on resume the due time moves
  later by the working time the pause held (real time for wall-clock limits).
* :func:`core.deadlines.breaches.scan` (the breach watch, run every minute by
  :mod:`core.deadlines.watch` and after a sync that finds something due) looks only at
  clocks whose ``next_check_at`` has come, with one indexed query and set-based
  UPDATEs: it sends each warning once, and on a breach marks the clock ``breached``,
  raises the record's escalation level, notifies the roles the item names
  (``escalate_to``) and, where the item says ``action_on_failure``, opens a corrective
  action.

States: ``running`` → ``met`` (stopped in time) or ``breached`` (due time passed, or
stopped late); ``running`` ⇄ ``paused``. The state always follows the record's stamped
history, whenever it arrives: a record entered after the fact (a complaint filed weeks
late, its workflow steps entered afterwards with their real instants, a bulk import) is
escalated at creation only when its history as entered shows a breach given the current
time, and a breach that the watch escalated but that the history entered later
disproves (a stop in time, a pause) is *withdrawn* (:func:`withdraw_breaches`): the
record's escalation level goes back down (audited ``escalation_withdrawn``), the
withdrawal is kept on the clock (``withdrawals``), the breach's corrective action is
closed as ``raised_in_error`` and ``clock.breach_withdrawn`` goes where the breach's
notification went.

Percentages, time left and time over count in the clock's own time: working time of
the tenant's calendar for working limits (``"5 working days"``), real time otherwise.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from servq.core.calendar import WALL, Limit, WallClock, due as calendar_due, parse_limit
from servq.core.calendar.arithmetic import merge_pauses
from servq.core.audit import audit
from servq.core.calendar.tenant import tenant_calendar
from servq.core.db import utcnow
from servq.core.db.fast import RowView, new_ids
from servq.core.db.state import TRANSACTION, Slot
from servq.core.deadlines.pauses import (close_pause as _close_pause, open_pause_cap, open_state as _open_state,
                                         pause_cap, pause_rules, pauses_in)
from servq.core.models import Clock, OutboxEvent, Record, StandardVersion
from servq.core.notify.outbox import emit_many
from servq.core.scoring import dated
from servq.core.scoring.registry import deadline_applies, reader
from servq.core.scoring.rules import as_instant

log = logging.getLogger(__name__)

#: The warning levels, in percent of the target; 100 is the due time.
LEVELS = (50, 75, 100)
#: States in which the breach watch may still have something to do.
WATCHED = ("running", "breached")


# -- time keeping ----------------------------------------------------------------------------


def timekeeper(working: bool, calendar: Any):
    """What counts a clock's time: the business ``calendar`` for working limits, else real time.

    ``calendar`` may be ``None`` or a plain wall clock (a tenant without a calendar): then
    every limit counts real time.
    """
    if working and calendar is not None and hasattr(calendar, "elapsed_excluding") \
            and not isinstance(calendar, WallClock):
        return calendar
    return WALL


def _instant(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def iso_utc(value: datetime | None) -> str | None:
    """``value`` as ISO 8601 text in UTC (how clocks store and notify instants)."""
    return None if value is None else value.astimezone(timezone.utc).isoformat()


def pause_spans(clock: Clock, *, close_at: datetime | None = None) -> list[tuple[datetime, datetime | None]]:
    """The clock's pauses as ``(start, end)`` pairs; an open pause ends at ``close_at``
    when given (else ``None``)."""
    spans = []
    for pause in clock.pauses or ():
        end = _instant(pause.get("end"))
        spans.append((_instant(pause["start"]), end if end is not None else close_at))
    return spans


def _shifted(keeper, start: datetime, amount: timedelta,
             pauses: Sequence[tuple[datetime, datetime]]) -> datetime:
    """``start`` + ``amount`` of the keeper's time, pushed back by each pause that begins
    before the (moving) result, by the keeper's time that pause held."""
    result = keeper.add(start, amount)
    for a, b in merge_pauses(start, None, pauses):
        if a >= result:
            break
        result = keeper.add(result, keeper.elapsed(a, b))
    return result


@dataclass(frozen=True)
class Times:
    """The instants of one clock given its pauses: due time and warning instants."""

    due_at: datetime
    warn50_at: datetime
    warn75_at: datetime
    total: timedelta  # the target in the keeper's time (pauses excluded)


def clock_times(keeper, start: datetime, limit: Limit | datetime,
                pauses: Sequence[tuple[datetime, datetime]]) -> Times:
    """Due time and the 50 % / 75 % instants of a clock started at ``start``.

    ``limit`` is the clock's limit, or the instant it is due at before any pause (a clock
    due at a moment: its ``anchor_at``). ``pauses`` are closed ``(start, end)`` pairs; each
    one that begins before the due time moves it (and the warnings after it) later by the
    time it held, counted by ``keeper``. A clock due at or before its start is due there,
    warnings and all.
    """
    if keeper is WALL and not pauses and limit.__class__ is Limit:
        # Real time, never paused (nearly every new clock): what the general path gives.
        begin = start.astimezone(timezone.utc)
        total = limit.timedelta
        if total > timedelta(0):
            return Times(begin + total, begin + total / 2, begin + total * 3 / 4, total)
    if isinstance(limit, datetime):
        due_at = _anchored_due(keeper, start, limit, pauses)
        if due_at <= start:
            due_at = due_at.astimezone(timezone.utc)
            return Times(due_at, due_at, due_at, timedelta(0))
    else:
        due_at = calendar_due(start, limit, keeper if keeper is not WALL else None, pauses)
    total = keeper.elapsed_excluding(start, due_at, pauses)
    return Times(due_at.astimezone(timezone.utc),
                 _shifted(keeper, start, total / 2, pauses).astimezone(timezone.utc),
                 _shifted(keeper, start, total * 3 / 4, pauses).astimezone(timezone.utc),
                 total)


def _anchored_due(keeper, start: datetime, anchor: datetime,
                  pauses: Sequence[tuple[datetime, datetime]]) -> datetime:
    """``anchor`` moved later by each pause that begins before the (moving) due time, by
    the keeper's time that pause held (as :func:`core.calendar.due` does for a limit)."""
    result = anchor
    for a, b in merge_pauses(start, None, pauses):
        if a >= result:
            break
        result = keeper.add(result, keeper.elapsed(a, b))
    return result


def refresh(clock: Clock, keeper, now: datetime, calendar: Any = None) -> None:
    """Recompute a clock's due time, warning instants, state and ``next_check_at`` from
    its start, target, stop and pauses, as of ``now``; and its measured time once it has
    stopped (:func:`measure`, working time on ``calendar``, the tenant's)."""
    limit = clock.anchor_at if clock.anchor_at is not None else parse_limit(clock.target)
    stop = clock.stop_at
    if stop is not None and clock.paused_since is not None:
        # Stopped while waiting (resolved during a pause): the pause ends there.
        _close_pause(clock, max(stop, clock.paused_since), calendar)
    closed = [(a, b) for a, b in pause_spans(clock) if b is not None]
    measure(clock, closed, calendar)
    times = clock_times(keeper, clock.start_at, limit, closed)
    _put(clock, due_at=times.due_at, warn50_at=times.warn50_at, warn75_at=times.warn75_at)
    _judge(clock, stop, now)
    if clock.state == "paused":  # the watch resumes it at its pause cap, if it has one
        _put(clock, next_check_at=open_pause_cap(clock, calendar)[0])
    if clock.breached_at is not None and clock.state == "breached":
        # Escalated already: the breach stands (at the due time the history gives now).
        _put(clock, breached_at=clock.due_at, next_check_at=None)
    # Escalated but no longer breached: the caller withdraws it (withdraw_breaches).


def _put(clock: Clock, **values) -> None:
    """Set the attributes of ``clock`` whose value differs: an attribute set to the value
    it has would still mark the clock changed for the next flush (a record's clocks are
    recomputed at every step of its history, and mostly come out as they were)."""
    loaded = clock.__dict__
    for key, value in values.items():
        if key not in loaded or loaded[key] != value:
            setattr(clock, key, value)


def _judge(clock: Clock, stop: datetime | None, now: datetime) -> None:
    """The state and ``next_check_at`` that the clock's history gives as of ``now``."""
    if stop is not None:
        if stop <= clock.due_at:
            _put(clock, state="met", next_check_at=None)
        else:  # stopped late: the watch escalates it at its next pass
            _put(clock, state="breached", next_check_at=clock.due_at)
        return
    if clock.paused_since is not None:
        _put(clock, state="paused", next_check_at=None)
        return
    if now >= clock.due_at:
        _put(clock, state="breached", next_check_at=clock.due_at)
        return
    warned = set(clock.warned or ())
    pending = [at for level, at in ((50, clock.warn50_at), (75, clock.warn75_at), (100, clock.due_at))
               if level not in warned]
    _put(clock, state="running", next_check_at=min(pending) if pending else clock.due_at)


def measure(clock: Clock, pauses: Sequence[tuple[datetime, datetime]], calendar: Any) -> None:
    """Set ``elapsed_seconds`` and ``working_seconds`` of a stopped clock (``None`` while
    it runs): start to stop less the ``pauses``, in real time and in the working time of
    ``calendar`` (the tenant's business calendar, whatever the clock's own limit counts),
    so the response and resolution KPIs aggregate plain columns in SQL. A clock stopped
    late (breached) is measured too."""
    if clock.stop_at is None:
        _put(clock, elapsed_seconds=None, working_seconds=None)
        return
    end = max(clock.stop_at, clock.start_at)
    _put(clock, elapsed_seconds=WALL.elapsed_excluding(clock.start_at, end, pauses).total_seconds(),
         working_seconds=timekeeper(True, calendar).elapsed_excluding(clock.start_at, end, pauses).total_seconds())


# -- keeping clocks in step with records -------------------------------------------------------


def deadline_items(compiled) -> list:
    """The items of a compiled standard whose rule is a ``deadline``."""
    return [item for item in compiled.standard.items if item.rule.type == "deadline"]


def sync_clocks(session, record: Record, version: StandardVersion | None, compiled, calendar,
                now: datetime | None = None) -> list[Clock]:
    """Create or update the clocks of ``record`` for each deadline item of ``compiled``.

    ``version`` is the stored standard version the record is scored against (its number
    is kept on the clock); ``calendar`` is the tenant's business calendar. No start
    timestamp, no clock (an existing one that the watch has not escalated is removed).
    Adds to the session; the caller commits. Returns the record's clocks of this standard.
    """
    return sync_clocks_many(session, [(record, version, compiled)], calendar, now)


def sync_clocks_many(session, entries: Iterable[tuple[Record, StandardVersion | None, Any]],
                     calendar, now: datetime | None = None, *, new: bool = False,
                     writer: Any = None) -> list[Clock]:
    """:func:`sync_clocks` for many ``(record, version, compiled)`` at once: one SELECT of
    the existing clocks per 500 records, whatever their number (bulk imports), and none
    for records whose clocks this transaction has read or written already (a record's
    history replayed step by step: :func:`_clocks_of`) or that were inserted in it
    (``new``: they have no clock yet).

    :param writer: a bulk writer (``writer.fresh``: the records were just inserted by a
        bulk import): their clocks are computed as usual but written as rows by the
        writer, with the chunk's other rows, instead of through the session's unit of
        work (which cost an import more than the clocks' computation); the returned
        clocks are then rows read as attributes (:class:`~servq.core.db.fast.RowView`),
        not objects of the session.
    """
    from servq.core.evaluation import record_values  # evaluation imports clocks (up-edge)

    now = now or utcnow()
    work = []
    for record, version, compiled in entries:
        items = deadline_items(compiled)
        if items:
            work.append((record, version, compiled, items))
    if not work:
        return []
    rows_only = writer is not None and writer.fresh
    if rows_only:  # just inserted by the caller: no clock yet, none kept
        existing = {record.id: {} for record, *_ in work}
    else:
        existing = _clocks_of(session, [record for record, *_ in work], new)
    out = []
    made = []
    ids: list = []  # ids of new clock rows (rows_only), made a batch at a time
    records = {}
    plans: dict[int, tuple] = {}  # id(rule params) -> (due_of, stop_of, target, working)
    for record, version, compiled, items in work:
        values = record_values(record)
        code = compiled.standard.code
        number = version.version if version is not None else compiled.standard.version
        mine = existing[record.id].setdefault(code, {})
        wanted = set()
        for item in items:
            params = item.rule.params
            if not deadline_applies(params, values):
                continue  # the item's ``when`` leaves this record out: no clock
            start = as_instant(reader(params["start"])(values), "start")
            if start is None:
                continue  # no start, no clock
            plan = plans.get(id(params))
            if plan is None:  # read once per item, not once per record (bulk imports)
                plan = plans[id(params)] = (dated.due_of(params) if dated.is_dated(params) else None,
                                            dated.stop_of(params), dated.target_text(params),
                                            dated.working(params))
            due_of, stop_of, target, working = plan
            anchor = None
            if due_of is not None:  # due at a moment: the same instant as the evaluation's
                anchor = due_of(values, start, calendar if calendar is not None else WALL)
                if anchor is None:
                    continue  # no moment in the record, no clock
            wanted.add(item.code)
            stop = stop_of(values)
            clock = mine.get(item.code)
            if clock is None:
                if rows_only:  # a row read as attributes: no ORM object to build and track
                    if not ids:
                        ids = new_ids(len(work))
                    clock = RowView({**_CLOCK_DEFAULTS, "id": ids.pop(), "record_id": record.id,
                                     "standard_code": code, "item_code": item.code, "pauses": [],
                                     "warned": [], "withdrawals": [], "state": "running"})
                    made.append(clock)
                else:
                    clock = Clock(id=uuid.uuid4(), record_id=record.id, standard_code=code,
                                  item_code=item.code, pauses=[], warned=[], state="running")
                    session.add(clock)
                mine[item.code] = clock
            _put(clock, standard_version=number, target=target, business=working, anchor_at=anchor,
                 pause_rules=pause_rules(params), start_at=start.astimezone(timezone.utc),
                 stop_at=None if stop is None else stop.astimezone(timezone.utc))
            refresh(clock, timekeeper(working, calendar), now, calendar)
            out.append(clock)
            records[clock.record_id] = record
        for item_code in [c for c in mine if c not in wanted]:
            # The start is gone or the standard no longer has this deadline item; a
            # breach already escalated stays on record.
            clock = mine.pop(item_code)
            if clock.breached_at is None:
                session.delete(clock)
    if made:
        _write_rows(session, writer, made, now)
    withdraw_breaches(session, [(records[c.record_id], c) for c in out], now)
    _watch_soon(session, out, now)
    return out


_CLOCK_COLUMNS = tuple(column.key for column in Clock.__table__.columns)
#: What a new clock row holds where its computation set nothing (the columns' defaults).
_CLOCK_DEFAULTS = {"paused_since": None, "pause_reason": None, "paused_seconds": 0.0, "cap_hits": 0,
                   "withdrawals": [], "breached_at": None, "elapsed_seconds": None, "working_seconds": None,
                   "next_check_at": None, "warn50_at": None, "warn75_at": None, "anchor_at": None,
                   "stop_at": None, "pause_rules": None, "business": False}


def _write_rows(session, writer, clocks: Sequence[RowView], now: datetime) -> None:
    """Write new ``clocks`` (rows read as attributes) with ``writer``, every column
    given; records inserted in the transaction can no longer be taken to have no clock,
    so a later call for one reads the rows."""
    tenant_id = session.tenant_id
    rows = []
    for clock in clocks:
        values = clock.__dict__
        row = {key: values[key] if key in values else _CLOCK_DEFAULTS.get(key) for key in _CLOCK_COLUMNS}
        row["tenant_id"], row["updated_at"] = tenant_id, now
        rows.append(row)
    writer.insert(session, Clock.__table__, rows)
    held, transaction = session.info.get(_KNOWN), session.get_transaction()
    if held is not None and held[0] is transaction:
        held[2] = False
    elif transaction is not None:
        session.info[_KNOWN] = [transaction, {}, False]


#: The clocks this transaction knows: ``[root transaction, {record id: {standard code:
#: {item code: Clock}}}, whether records inserted in the transaction can be taken to have
#: no clock]``.
_KNOWN: Slot[list] = Slot("servq.deadlines.clocks", TRANSACTION, __name__)
#: Calls with more records than this (an import's chunk, a re-score) keep nothing: their
#: clocks are not needed again, and a big transaction would hold every one in memory.
KEEP_BATCH = 50
#: At most this many records' clocks are kept per transaction (then it starts afresh).
KEEP_RECORDS = 20_000


def _clocks_of(session, records: Sequence, new: bool = False) -> dict:
    """Every clock of each of ``records``: ``{record id: {standard code: {item code: Clock}}}``.

    One SELECT per 500 records; none when the records are ``new`` (inserted in this
    transaction and not yet evaluated, so without a clock). The clocks of a call with
    few records (a request, a step of a history replayed one transition at a time) are
    kept on the session for the rest of the transaction, so the record's next step
    reads none: :func:`sync_clocks_many` is the only writer of clock rows (created with
    ``session.add``, removed with ``session.delete``, both through the dicts returned
    here), so within the transaction the dicts stay what the table holds. The breach
    watch's set-based UPDATEs change columns of rows, not which rows exist, and leave
    loaded objects as they are, whether or not they are selected again. A rollback (of a
    savepoint too: it may bring back a removed clock) forgets them and reads them again,
    ``new`` records included; a commit starts afresh.
    """
    transaction = session.get_transaction()
    held = session.info.get(_KNOWN)
    if held is None or held[0] is not transaction:
        held = [transaction, {}, True]
        if transaction is not None:
            session.info[_KNOWN] = held
    known: dict = held[1]
    keep = transaction is not None and len(records) <= KEEP_BATCH
    if keep and len(known) >= KEEP_RECORDS:
        known.clear()
        held[2] = False
    out = known if keep else {}
    missing = []
    for record in records:
        record_id = record.id
        if record_id in out:
            continue
        mine = known.get(record_id)
        if mine is None:
            mine = {}
            missing.append(record_id)
        out[record_id] = mine
    if not (new and held[2]):
        for start in range(0, len(missing), 500):
            for clock in session.scalars(select(Clock).where(Clock.record_id.in_(missing[start:start + 500]))):
                out[clock.record_id].setdefault(clock.standard_code, {})[clock.item_code] = clock
    if not keep and not new and missing:
        # Clocks made for these now are not kept: a later call for a record inserted in
        # this transaction must read them.
        held[2] = False
    if transaction is None:  # the SELECT began one: the cache starts with it next time
        session.info.pop(_KNOWN, None)
    return out


@event.listens_for(Session, "after_soft_rollback")
def _forget_clocks(session, previous_transaction) -> None:
    """A rollback undid clock rows this transaction wrote or removed: read them again."""
    held = session.info.get(_KNOWN)
    if held is not None:
        held[1].clear()
        held[2] = False


def _watch_soon(session, clocks: Iterable[Clock], now: datetime) -> None:
    """Ask for a scan after commit when one of ``clocks`` needs the watch already."""
    if any(c.next_check_at is not None and c.next_check_at <= now for c in clocks):
        from servq.core.deadlines.watch import request_scan

        request_scan(session)


def _pause_audit(session, clock: Clock, action: str, **changes) -> None:
    audit(session, "records", clock.record_id, action, None, {
        "clock_id": str(clock.id), "standard_code": clock.standard_code,
        "item_code": clock.item_code, **changes})


def pause_clocks(session, record: Record, at: datetime, reason: str | None = None,
                 state: str | None = None) -> list[Clock]:
    """The record entered waiting state ``state`` at ``at`` with ``reason``: pause the
    clocks ``state`` pauses (:mod:`core.deadlines.pauses`), each until its cap at most.

    From another waiting state, the old state's pauses close at ``at`` and a clock the
    new state does not pause (or whose cap is used up) runs again. Clocks past due at
    ``at``, stopped or capped are left alone; a breached clock not yet due at ``at`` (after
    the fact) is paused and its breach withdrawn by the evaluation that follows. Audited
    ``clock_paused`` / ``clock_resumed``. The caller commits. Returns the clocks paused.
    """
    at = at.astimezone(timezone.utc)
    clocks = list(session.scalars(select(Clock).where(
        Clock.record_id == record.id, Clock.state.in_((*WATCHED, "paused")), Clock.stop_at.is_(None))))
    calendar = tenant_calendar(session) if clocks else None
    paused, resumed = [], []
    for clock in clocks:
        moving = clock.state == "paused"
        why = reason
        if moving:  # from one waiting state to another: the old state's pause ends here
            why = reason or clock.pause_reason  # no new reason: the waiting goes on for the old one
            left = _open_state(clock)
            _close_pause(clock, at, calendar)
            _pause_audit(session, clock, "clock_resumed", at=iso_utc(at), state=left, to=state)
        elif clock.due_at <= at:
            continue
        cap_at, cap = pause_cap(clock, state, at, calendar)
        if not pauses_in(clock, state) or (cap_at is not None and cap_at <= at):
            if cap_at is not None and cap_at <= at and pauses_in(clock, state):
                _pause_audit(session, clock, "clock_pause_capped", at=iso_utc(at), state=state,
                             reason=why, cap=cap, paused=False)
            if moving:
                resumed.append(clock)
            continue
        clock.pauses = [*(clock.pauses or ()), {"start": iso_utc(at), "end": None,
                                                "reason": why, "state": state}]
        clock.paused_since = at
        clock.pause_reason = why
        clock.state, clock.next_check_at = "paused", cap_at
        _pause_audit(session, clock, "clock_paused", at=iso_utc(at), state=state, reason=why,
                     cap_at=iso_utc(cap_at), cap=cap)
        paused.append(clock)
    if resumed:
        now = utcnow()
        for clock in resumed:
            refresh(clock, timekeeper(clock.business, calendar), now, calendar)
        withdraw_breaches(session, [(record, clock) for clock in resumed], now)
        _watch_soon(session, resumed, now)
    return paused


def resume_clocks(session, record: Record, at: datetime, *, now: datetime | None = None) -> list[Clock]:
    """Resume the record's paused clocks at ``at`` (the waiting state ended).

    Each clock's due time moves later by the time the pause held, counted in the clock's
    own time (working time for working limits). Audited ``clock_resumed``. The caller
    commits. Returns the clocks.
    """
    now = now or utcnow()
    clocks = list(session.scalars(select(Clock).where(Clock.record_id == record.id,
                                                      Clock.state == "paused")))
    calendar = tenant_calendar(session) if clocks else None
    for clock in clocks:
        state = _open_state(clock)
        _close_pause(clock, at.astimezone(timezone.utc), calendar)
        _pause_audit(session, clock, "clock_resumed", at=iso_utc(at), state=state)
        refresh(clock, timekeeper(clock.business, calendar), now, calendar)
    withdraw_breaches(session, [(record, clock) for clock in clocks], now)
    _watch_soon(session, clocks, now)
    return clocks


def cap_pause(session, clock: Clock, at: datetime, cap: str | None, now: datetime, calendar: Any) -> None:
    """End ``clock``'s pause at its cap instant ``at`` (the breach watch found it due):
    the clock runs again while the record stays waiting; audited ``clock_pause_capped``.
    The caller notifies and commits."""
    state = _open_state(clock)
    reason = clock.pause_reason
    _close_pause(clock, at, calendar, cap=cap or "total")
    _pause_audit(session, clock, "clock_pause_capped", at=iso_utc(at), state=state, reason=reason,
                 cap=cap, paused=True)
    refresh(clock, timekeeper(clock.business, calendar), now, calendar)


# -- breaches the history disproves -----------------------------------------------------------


def breach_key(clock_id, episode: int) -> str:
    """The dedupe key of the ``clock.breached`` notification of a clock's ``episode``-th
    escalation (1 for the first; a clock escalates again after a withdrawal)."""
    return f"clock.breached:{clock_id}" if episode <= 1 else f"clock.breached:{clock_id}:{episode}"


def withdraw_breaches(session, pairs: Iterable[tuple[Any, Clock]], now: datetime) -> list[Clock]:
    """Withdraw the escalated breach of each ``(record, clock)`` whose clock the record's
    history no longer shows breached (met, paused, or running with time left).

    For each: ``breached_at`` is cleared and the withdrawal appended to the clock's
    ``withdrawals``; the record's ``escalation_level`` goes down by one (audited
    ``escalation_withdrawn`` on the record, with the clock and item); the corrective
    action opened for the breach (``action_on_failure``), while open or in progress, is
    closed as ``raised_in_error`` (audited); and where a ``clock.breached`` notification
    went out for this escalation, ``clock.breach_withdrawn`` goes to the same roles and
    webhooks (dedupe key ``clock.breach_withdrawn:<clock id>:<episode>``). Adds to the
    session; the caller commits. Returns the clocks withdrawn.
    """
    disproved = [(record, clock) for record, clock in pairs
                 if clock.breached_at is not None and clock.state != "breached"]
    if not disproved:
        return []
    from servq.core.evaluation.actions import action_key, withdraw_action  # as above

    events: list[tuple[str, dict, tuple, str]] = []
    for record, clock in disproved:
        breached_at = clock.breached_at
        episode = len(clock.withdrawals or ()) + 1
        clock.withdrawals = [*(clock.withdrawals or ()), {
            "breached_at": iso_utc(breached_at), "withdrawn_at": iso_utc(now), "state": clock.state}]
        clock.breached_at = None  # running with time left: the watch looks again at its due time
        level = _lower_escalation(session, record, now)
        audit(session, "records", clock.record_id, "escalation_withdrawn", None, {
            "escalation_level": [level + 1, level] if level is not None else None,
            "clock_id": str(clock.id), "standard_code": clock.standard_code,
            "item_code": clock.item_code, "breached_at": [iso_utc(breached_at), None],
            "state": ["breached", clock.state]})
        withdraw_action(session, action_key(clock.record_id, clock.standard_code, clock.item_code),
                        note=f"The {clock.target} deadline of item {clock.item_code!r} was not "
                             f"breached: the record's history shows it {clock.state}.", now=now)
        sent = session.execute(select(OutboxEvent.roles, OutboxEvent.payload).where(
            OutboxEvent.dedupe_key == breach_key(clock.id, episode))).first()
        if sent is not None:
            events.append(("clock.breach_withdrawn", {
                "clock_id": str(clock.id), "record_id": str(clock.record_id),
                "record_kind": getattr(record, "kind", None),
                "standard_code": clock.standard_code, "standard_version": clock.standard_version,
                "item_code": clock.item_code, "item_title": (sent.payload or {}).get("item_title"),
                "target": clock.target, "time": "working" if clock.business else "wall",
                "start_at": iso_utc(clock.start_at), "due_at": iso_utc(clock.due_at),
                "stop_at": iso_utc(clock.stop_at), "breached_at": iso_utc(breached_at),
                "state": clock.state, "withdrawn_at": iso_utc(now), "escalation_level": level},
                tuple(sent.roles or ()), f"clock.breach_withdrawn:{clock.id}:{episode}"))
    if events:
        emit_many(session, events)
    return [clock for _, clock in disproved]


def _lower_escalation(session, record, now: datetime) -> int | None:
    """Lower the record's escalation level by one (not below 0); the new level."""
    if isinstance(record, Record):
        record.escalation_level = max(0, (record.escalation_level or 0) - 1)
        return record.escalation_level
    row = session.execute(
        update(Record).where(Record.id == record.id, Record.escalation_level > 0)
        .values(escalation_level=Record.escalation_level - 1, updated_at=now)
        .returning(Record.escalation_level).execution_options(synchronize_session=False)).first()
    return row[0] if row is not None else None
