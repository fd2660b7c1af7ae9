"""Corrective actions: opening them (by hand or from a failed item), their states, overdue.

States::

    open ──start──▶ in_progress ──complete──▶ done ──verify──▶ verified
      └───────────complete──────────────────▶ done
    done / verified / raised_in_error ──reopen──▶ open
    open / in_progress ──(the breach it was opened for is withdrawn)──▶ raised_in_error

An action is *overdue* when it has a due time in the past and is neither done nor
verified. An automatic action's ``source_key`` is ``"<record id>:<standard code>:<item
code>"`` (:func:`action_key`); the unique key makes opening idempotent, so re-scoring a
record never opens a second action for the same failure, and never reopens one that
people have closed (a new failure is a new record, which opens its own action).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError

from servq.core.audit import audit, audit_row, jsonable
from servq.core.db import utcnow
from servq.core.db.state import TRANSACTION, Slot
from servq.core.models import Action, AuditEvent, Record, Tenant
from servq.core.db.fast import WRITER, Writer
from servq.core.db.tenancy import NoTenantContext

ENTITY = "actions"
_ACTIONS = Action.__table__
STATUSES = ("open", "in_progress", "done", "verified", "raised_in_error")
#: Closed: nothing more to do. ``raised_in_error``: opened for a deadline breach that the
#: record's history, entered later, disproved (:func:`withdraw_action`).
CLOSED = ("done", "verified", "raised_in_error")
SOURCES = ("critical", "item", "deadline", "manual")
#: action → (states it may be taken from, state it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "start": (("open",), "in_progress"),
    "complete": (("open", "in_progress"), "done"),
    "verify": (("done",), "verified"),
    "reopen": (("done", "verified", "raised_in_error"), "open"),
}
#: The status of an automatic action whose failure turned out not to be one.
RAISED_IN_ERROR = "raised_in_error"


class TransitionRefused(Exception):
    """The action cannot take this step from its state; ``allowed`` lists what it can."""

    def __init__(self, status: str, action: str, allowed: list[str]):
        super().__init__(f"{action!r} is not allowed while the action is {status}; "
                         f"allowed: {', '.join(allowed) or 'none'}.")
        self.allowed = allowed


def allowed_actions(status: str) -> list[str]:
    """The transitions an action in ``status`` may take, in workflow order."""
    return [name for name, (sources, _) in TRANSITIONS.items() if status in sources]


def is_overdue(action: Action, now: datetime | None = None) -> bool:
    """Whether ``action`` is past its due time and neither done nor verified."""
    return (action.due_at is not None and action.status not in CLOSED
            and action.due_at < (now or utcnow()))


def overdue_clause(now: datetime):
    """SQL condition: the action is overdue at ``now``."""
    return and_(Action.due_at.is_not(None), Action.due_at < now, Action.status.not_in(CLOSED))


def not_overdue_clause(now: datetime):
    """SQL condition: the action is not overdue at ``now``."""
    return or_(Action.due_at.is_(None), Action.due_at >= now, Action.status.in_(CLOSED))


def action_key(record_id: uuid.UUID | str, standard_code: str, item_code: str) -> str:
    """The ``source_key`` of the action opened for one item of one record's evaluation."""
    return f"{record_id}:{standard_code}:{item_code}"


def action_payload(action: Action) -> dict[str, Any]:
    """A JSON-safe description of ``action`` (for events and notifications)."""
    return {name: jsonable(getattr(action, name)) for name in (
        "id", "title", "source", "source_key", "record_id", "standard_code", "standard_version",
        "item_code", "owner_id", "status", "due_at", "created_at")}


def _standard_ref(standard: Any) -> tuple[str | None, int | None]:
    """``(code, version)`` of a StandardVersion, a scoring Standard or a bare code."""
    if standard is None:
        return None, None
    if isinstance(standard, str):
        return standard, None
    return getattr(standard, "code", None), getattr(standard, "version", None)


def open_action(session, *, title: str, record: Record | None = None, item_code: str | None = None,
                standard: Any = None, due_at: datetime | None = None, source: str = "manual",
                source_key: str | None = None, owner_id: uuid.UUID | None = None,
                actor_id: uuid.UUID | None = None, description: str | None = None,
                roles: Sequence[str] = ()) -> Action:
    """Open a corrective action in the session's tenant (audited; not committed).

    Idempotent on ``source_key``: when an action with that key exists (whatever its
    state) it is returned unchanged. ``standard`` is a :class:`core.models.StandardVersion`,
    a :class:`core.scoring.Standard` or a code. ``owner_id`` must be a member of the
    tenant (the API checks it). ``action.opened`` is emitted to ``roles`` and the
    tenant's webhooks once the action exists.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown action source {source!r}; one of {SOURCES}")
    if source_key is not None:
        existing = session.scalar(select(Action).where(Action.source_key == source_key))
        if existing is not None:
            return existing
    code, version = _standard_ref(standard)
    action = Action(title=title[:300], description=description, source=source,
                    source_key=source_key, record_id=record.id if record is not None else None,
                    standard_code=code, standard_version=version, item_code=item_code,
                    owner_id=owner_id, status="open", due_at=due_at, created_by=actor_id)
    if source_key is None:
        session.add(action)
        session.flush()
    else:
        try:
            # A concurrent evaluation may open the same action: the unique key decides.
            with session.begin_nested():
                session.add(action)
        except IntegrityError:
            existing = session.scalar(select(Action).where(Action.source_key == source_key))
            if existing is None:
                raise
            return existing
    _opened(session, [action], actor_id, {action.id: tuple(roles)})
    return action


def _opened(session, actions: Iterable[Action], actor_id, roles: dict, *,
            writer: Writer = WRITER) -> None:
    """Audit each new action and emit ``action.opened`` for each: the audit events in
    one INSERT and the notifications with one :func:`core.notify.outbox.emit_many`, the same as
    auditing and emitting them one by one, in fewer statements. A bulk ``writer``: the
    actions are new in this transaction (their notifications' keys too), and the INSERTs
    are queued (:class:`~servq.core.db.fast.BulkWriter`)."""
    from servq.core.notify.outbox import emit_many

    rows, events = [], []
    for action in actions:
        payload = action_payload(action)
        rows.append(audit_row(session, ENTITY, action.id, "created", actor_id,
                              {name: [None, value] for name, value in payload.items()
                               if name not in ("id", "created_at") and value is not None}))
        events.append(("action.opened", payload, roles.get(action.id, ()),
                       f"action.opened:{action.id}"))
    if rows:
        writer.insert(session, AuditEvent.__table__, rows)
        emit_many(session, events, writer=writer)


def transition(session, action: Action, name: str, *, note: str | None = None,
               actor_id: uuid.UUID | None = None, now: datetime | None = None) -> dict[str, list]:
    """Take step ``name`` (start, complete, verify, reopen); audited with ``note``.

    :raises TransitionRefused: when the step is not allowed from the action's state.
    """
    step = TRANSITIONS.get(name)
    if step is None or action.status not in step[0]:
        raise TransitionRefused(action.status, name, allowed_actions(action.status))
    now = now or utcnow()
    before = {"status": action.status, "done_at": action.done_at, "verified_at": action.verified_at}
    action.status = step[1]
    if name == "complete":
        action.done_at = now
    elif name == "verify":
        action.verified_at = now
    elif name == "reopen":
        action.done_at = action.verified_at = None
    changes = {key: [jsonable(old), jsonable(getattr(action, key))]
               for key, old in before.items() if getattr(action, key) != old}
    if note:
        changes["note"] = [None, note]
    session.flush()
    audit(session, ENTITY, action.id, name, actor_id, changes)
    return changes


def withdraw_action(session, source_key: str, *, note: str, now: datetime | None = None) -> Action | None:
    """Close the automatic action ``source_key`` as raised in error, when it is open or in
    progress: the deadline breach it was opened for was withdrawn (the record's history,
    entered later, shows the deadline met). Audited (``raised_in_error``, with ``note``);
    an action people have completed is left as it is. Returns the action closed."""
    action = session.scalar(select(Action).where(Action.source_key == source_key))
    if action is None or action.status not in ("open", "in_progress"):
        return None
    old = action.status
    action.status = RAISED_IN_ERROR
    action.updated_at = now or utcnow()
    session.flush()
    audit(session, ENTITY, action.id, RAISED_IN_ERROR, None,
          {"status": [old, RAISED_IN_ERROR], "note": [None, note]})
    return action


def reopen_withdrawn(session, source_key: str, *, note: str) -> Action | None:
    """Reopen the automatic action ``source_key`` when it was closed as raised in error
    (the deadline is breached after all); audited ``reopen``. Returns it, else ``None``."""
    action = session.scalar(select(Action).where(Action.source_key == source_key,
                                                 Action.status == RAISED_IN_ERROR))
    if action is None:
        return None
    transition(session, action, "reopen", note=note)
    return action


def failure_title(session, item, locale: str | None = None) -> str:
    """The title of the action opened for a failed ``item``, in the tenant's language."""
    if locale is None:
        tenant = session.get(Tenant, session.tenant_id)
        locale = tenant.locale if tenant is not None else "en"
    if (locale or "").lower().startswith("zh"):
        return f"整改：{item.title.zh}"
    return f"Corrective action: {item.title.en}"


def due_after(start: datetime, fix_within: Any, calendar: Any) -> datetime | None:
    """When an action for a failure at ``start`` is due: ``start + fix_within``.

    ``fix_within`` is a ``timedelta`` (wall-clock time) or a :class:`core.calendar.Limit`
    (working limits count on the tenant's ``calendar``); ``None`` gives no due time.
    """
    if fix_within is None:
        return None
    if isinstance(fix_within, timedelta):
        return start + fix_within
    from servq.core.calendar import due

    return due(start, fix_within, calendar)


def open_failure_actions(session, failures: Sequence[tuple], calendar: Any,
                         actor_id: uuid.UUID | None = None, *, writer: Writer = WRITER) -> list[Action]:
    """Open the actions for ``failures`` (``(record, version, standard, item, outcome)``
    each) that have none yet: one SELECT for the existing keys, one INSERT for the rest.

    A failed critical item opens a ``critical`` action, a breached deadline a
    ``deadline`` one and any other failed ``action_on_failure`` item an ``item`` one;
    due at the record's ``occurred_at`` + the item's ``fix_within``. The new actions are
    written with one INSERT (in a savepoint) and come back as persistent objects of the
    session.

    A bulk ``writer`` (:class:`~servq.core.db.fast.BulkWriter`): the records were created
    in this transaction with new ids (a bulk import), so no action can have their keys
    yet: the SELECT is skipped, and the INSERTs of the actions, their audit events and
    notifications are queued with the import's other writes. Should an action exist all the same, the unique
    key refuses the INSERT: the IntegrityError is raised (on PostgreSQL by the next
    statement at the latest), not handled, and the transaction cannot commit.
    """
    if not failures:
        return []
    keyed = {action_key(record.id, standard.code, item.code): (record, version, standard, item, outcome)
             for record, version, standard, item, outcome in failures}
    existing: set[str] = set()
    keys = list(keyed)
    for start in range(0, 0 if writer.fresh else len(keys), 1000):
        existing.update(session.scalars(
            select(Action.source_key).where(Action.source_key.in_(keys[start:start + 1000]))))
    todo = [(key, value) for key, value in keyed.items() if key not in existing]
    if not todo:
        return []
    tenant_id = session.tenant_id
    if tenant_id is None:
        raise NoTenantContext("opening corrective actions with no tenant in context")
    locale = _tenant_locale(session)
    now = utcnow()
    rows, roles = [], {}
    for key, (record, version, standard, item, outcome) in todo:
        source = "deadline" if outcome == "breached" else "critical" if item.critical else "item"
        # Every column, as a flush of Action(...) would write it (the defaults filled in).
        row = {"tenant_id": tenant_id, "id": uuid.uuid4(),
               "title": failure_title(session, item, locale)[:300],
               "description": (f"Item {item.code!r} of standard {standard.code!r} (version "
                               f"{standard.version}) {'was breached' if outcome == 'breached' else 'failed'} "
                               f"on {record.kind} record {record.id} of {record.occurred_at.isoformat()}."),
               "source": source, "source_key": key, "record_id": record.id,
               "standard_code": standard.code, "standard_version": standard.version,
               "item_code": item.code, "owner_id": None, "status": "open",
               "due_at": due_after(record.occurred_at, item.fix_within, calendar),
               "created_by": actor_id, "created_at": now, "updated_at": now, "done_at": None,
               "verified_at": None}
        rows.append(row)
        roles[row["id"]] = tuple(item.escalate_to)
    # One INSERT (core.db.fast.bulk) rather than a flush of the unit of work.
    if writer.fresh:
        writer.insert(session, _ACTIONS, rows)
    else:
        try:
            with session.begin_nested():
                writer.insert(session, _ACTIONS, rows)
        except IntegrityError:
            # Someone opened one of them meanwhile: open them one by one, idempotently.
            opened = []
            for row in rows:
                found = session.scalar(select(Action.id).where(Action.source_key == row["source_key"]))
                if found is None:
                    opened.append(open_action(
                        session, title=row["title"], description=row["description"],
                        source=row["source"], source_key=row["source_key"],
                        record=session.get(Record, (tenant_id, row["record_id"])),
                        standard=_Ref(row["standard_code"], row["standard_version"]),
                        item_code=row["item_code"], due_at=row["due_at"], actor_id=actor_id,
                        roles=roles[row["id"]]))
            return opened
    # In the database: persistent objects of the session, as if loaded.
    actions = writer.attach(session, Action, rows)
    _opened(session, actions, actor_id, roles, writer=writer)
    return actions


_LOCALE_INFO: Slot[tuple] = Slot("servq.actions.locale", TRANSACTION, __name__)  # (transaction, locale)


def _tenant_locale(session) -> str:
    """The tenant's language (its column alone: no Tenant object to build for it), read
    once per transaction."""
    transaction = session.get_transaction()
    cached = session.state.get(_LOCALE_INFO)
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1]
    locale = session.scalar(select(Tenant.locale).where(Tenant.id == session.tenant_id)) or "en"
    session.state.set(_LOCALE_INFO, (transaction, locale))
    return locale


class _Ref:
    """A standard named by code and version (for :func:`open_action`)."""

    def __init__(self, code: str, version: int):
        self.code, self.version = code, version


def actions_query(filters: dict, now: datetime):
    """The SELECT of actions matching the list filters of ``GET /actions``."""
    stmt = select(Action)
    for name in ("status", "owner_id", "record_id", "source"):
        if filters.get(name) is not None:
            stmt = stmt.where(getattr(Action, name) == filters[name])
    if filters.get("overdue") is True:
        stmt = stmt.where(overdue_clause(now))
    elif filters.get("overdue") is False:
        stmt = stmt.where(not_overdue_clause(now))
    if filters.get("due_before") is not None:
        stmt = stmt.where(Action.due_at < filters["due_before"])
    return stmt


__all__ = [
    "CLOSED", "ENTITY", "SOURCES", "STATUSES", "TRANSITIONS", "TransitionRefused", "action_key",
    "action_payload", "actions_query", "allowed_actions", "due_after", "is_overdue",
    "open_action", "open_failure_actions", "overdue_clause", "transition",
]
