"""The stalled-record watch: records of a workflow kind that have not moved for too long.

A kind's :class:`~core.plugins.Workflow` may declare ``stalled_after`` (a limit such as
``"48h"`` or ``"3 working days"``, for every non-final state, or ``{state: limit}``),
``stalled_notify`` (roles) and ``stalled_action``. A record is *stalled* when it has
stayed in such a state (``record.status_since``, set at creation and by every transition)
past the limit: wall time for a plain limit, the tenant's business calendar (working
hours, holidays) for a working one. A final state never stalls.

:func:`scan` runs in every tenant's deadline scan (:func:`core.deadlines.watch.scan_tenant`).
One indexed query (``tenant_id, kind, status, status_since``) finds the records not yet
marked and not moved since each rule's cutoff: ``now - limit`` for a wall limit; for a
working limit the latest start whose working time has run out by now, found by bisection
on the calendar (:func:`cutoff`, a few dozen calendar sums per rule, none per record). For each stalled record,
a guarded UPDATE sets ``stalled_at`` (so each stall is acted on once, however many scans
run), an audit event ``stalled`` is written, ``record.stalled`` goes to the outbox
(addressed to ``stalled_notify``; its dedupe key holds the instant the record took its
status) and, with ``stalled_action``, a corrective action is opened (source
``deadline``, one per stall). A transition clears ``stalled_at`` and moves
``status_since``: the watch re-arms.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping

from sqlalchemy import and_, or_, select, update

from servq.core.auth.permissions import ROLES
from servq.core.calendar import LimitError, NoWorkingTime, due, parse_limit
from servq.core.calendar.tenant import tenant_calendar
from servq.core.db import utcnow
from servq.core.evaluation.actions import open_action
from servq.core.models import AuditEvent, Record
from servq.core.notify.outbox import emit_many
from servq.core.plugins import RecordKind
from servq.core.plugins.app import enabled_plugin_ids, get_plugins
from servq.core.plugins.manager import PluginError
from servq.core.settings import stall_limits, stalled_overrides

EVENT = "record.stalled"
#: Records marked per scan at most (the rest wait for the next minute's scan).
BATCH = 5000


def check_kinds(kinds: Iterable[RecordKind]) -> None:
    """Refuse (``PluginError``) a kind whose stall rule has an unreadable limit or an unknown
    role: called when the app starts, where the calendar and the roles can be read."""
    problems = []
    for kind in kinds:
        workflow = kind.workflow
        if workflow is None:
            continue
        for state, text in workflow.stall_limits(tuple(kind.statuses)).items():
            try:
                parse_limit(text)
            except LimitError as exc:
                problems.append(f"record kind {kind.name!r}: stalled_after[{state!r}]: {exc}")
        unknown = [r for r in workflow.stalled_notify if r not in ROLES]
        if unknown:
            problems.append(f"record kind {kind.name!r}: stalled_notify names unknown roles "
                            f"{unknown!r}; roles are {', '.join(ROLES)}")
    if problems:
        raise PluginError("; ".join(problems))


def _shortest_wall(limit) -> timedelta:
    """The least wall time ``limit`` can take: working time never runs faster than the
    wall clock; N working days span at least N - 1 whole days."""
    if limit.working and limit.unit == "day":
        return timedelta(days=limit.amount - 1)
    return limit.timedelta


#: How far back :func:`cutoff` looks for a working limit's start, beyond the limit itself
#: (the longest holidays a calendar may hold between two working days).
_SEARCH_BEYOND = timedelta(days=120)


def cutoff(limit, now: datetime, calendar) -> datetime | None:
    """The latest ``status_since`` of a record stalled at ``now`` under ``limit``: a wall
    limit's is ``now - limit``; a working limit's is found by bisection on the calendar
    (``due`` grows with the start), to the second. ``None``: no start stalls yet (no
    working time in the calendar)."""
    if not limit.working:
        return now - limit.timedelta
    hi = now - _shortest_wall(limit)
    lo = hi - limit.timedelta * (7 if limit.unit == "day" else 1) - _SEARCH_BEYOND
    try:
        if due(lo, limit, calendar) > now:
            return None
        if due(hi, limit, calendar) <= now:
            return hi
        while hi - lo > timedelta(seconds=1):
            mid = lo + (hi - lo) / 2
            if due(mid, limit, calendar) <= now:
                lo = mid
            else:
                hi = mid
    except NoWorkingTime:
        return None
    return lo


def rules(kinds: Mapping[str, RecordKind], overrides: Mapping[str, Any] | None = None
          ) -> dict[tuple[str, str], list[str]]:
    """``{(kind, limit text): [states]}`` of the kinds with a stall rule: the kind's own,
    with the tenant's ``stalled_after`` settings (``overrides``, by kind) over it."""
    out: dict[tuple[str, str], list[str]] = {}
    overrides = overrides or {}
    for name, kind in kinds.items():
        for state, text in stall_limits(kind, overrides.get(name)).items():
            out.setdefault((name, text), []).append(state)
    return out


def scan(session, now: datetime | None = None, kinds: Mapping[str, RecordKind] | None = None) -> dict:
    """Mark, notify and (where declared) open an action for each newly stalled record of
    the session's tenant. Does not commit. ``kinds``: the tenant's (default: those its
    enabled plugins give). Returns ``{"stalled": n, "stall_actions": n}``."""
    now = now or utcnow()
    result = {"stalled": 0, "stall_actions": 0}
    if kinds is None:
        kinds = get_plugins().kinds_for(enabled_plugin_ids(session))
    declared = rules(kinds, stalled_overrides(session))
    if not declared:
        return result
    limits = {key: parse_limit(key[1]) for key in declared}
    calendar = tenant_calendar(session) if any(limit.working for limit in limits.values()) else None
    cutoffs = {key: cutoff(limit, now, calendar) for key, limit in limits.items()}
    clauses = [and_(Record.kind == name, Record.status.in_(states), Record.status_since <= cutoffs[(name, text)])
               for (name, text), states in declared.items() if cutoffs[(name, text)] is not None]
    if not clauses:
        return result
    rows = session.execute(
        select(Record.id, Record.kind, Record.status, Record.status_since, Record.site_id,
               Record.staff_id)
        .where(or_(*clauses), Record.stalled_at.is_(None), Record.deleted_at.is_(None))
        .order_by(Record.status_since).limit(BATCH)).all()
    if not rows:
        return result
    by_state = {(name, state): text for (name, text), states in declared.items() for state in states}
    stalled = []
    for row in rows:  # the exact instant each ran out (and a check of the cutoff)
        limit = limits[(row.kind, by_state[(row.kind, row.status)])]
        try:
            until = due(row.status_since, limit, calendar)
        except NoWorkingTime:  # a calendar with no working time: working limits never run out
            continue
        if until is not None and until <= now:
            stalled.append((row, until))
    if not stalled:
        return result
    marked = set()
    ids = [row.id for row, _ in stalled]
    for start in range(0, len(ids), 1000):
        marked.update(session.scalars(
            update(Record)
            .where(Record.id.in_(ids[start:start + 1000]), Record.stalled_at.is_(None))
            .values(stalled_at=now, updated_at=Record.updated_at)  # not a change of the record
            .returning(Record.id)
            .execution_options(synchronize_session=False)))
    events, needs_action = [], []
    for row, until in stalled:
        if row.id not in marked:
            continue
        workflow = kinds[row.kind].workflow
        since = row.status_since.isoformat()
        limit_text = by_state[(row.kind, row.status)]
        session.add(AuditEvent(entity="records", entity_id=row.id, action="stalled", actor_user_id=None,
                               at=now, changes={"stalled_at": [None, now.isoformat()],
                                                "status": row.status, "status_since": since,
                                                "stalled_after": limit_text}))
        payload = {"record_id": str(row.id), "record_kind": row.kind, "status": row.status,
                   "site_id": row.site_id and str(row.site_id), "staff_id": row.staff_id and str(row.staff_id),
                   "status_since": since, "stalled_after": limit_text,
                   "stalled_since": until.isoformat()}
        events.append((EVENT, payload, tuple(workflow.stalled_notify), f"{EVENT}:{row.id}:{since}"))
        if workflow.stalled_action:
            needs_action.append((row, since, limit_text, workflow))
    result["stalled"] = len(events)
    if events:
        emit_many(session, events)
    if needs_action:
        records = {r.id: r for r in session.scalars(
            select(Record).where(Record.id.in_([row.id for row, *_ in needs_action])))}
        for row, since, limit_text, workflow in needs_action:
            _open_stall_action(session, records[row.id], since, limit_text, workflow.stalled_notify)
            result["stall_actions"] += 1
    return result


def stall_key(record_id: uuid.UUID, since: str) -> str:
    """The ``source_key`` of the action opened for one stall of one record."""
    return f"{record_id}:stalled:{since}"


def _open_stall_action(session, record: Record, since: str, limit_text: str, roles) -> None:
    open_action(session, title=f"Record stalled in {record.status!r}", record=record,
                source="deadline", source_key=stall_key(record.id, since),
                description=(f"The {record.kind} record has been {record.status!r} since {since}, "
                             f"longer than {limit_text} without moving."),
                roles=tuple(roles))
