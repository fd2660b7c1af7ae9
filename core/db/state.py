"""Typed session state: what packages keep on a session, each slot declared once.

A package that keeps something on a session (a cache of the tenant's calendar, a mark
that a job is already queued in this transaction) declares a :class:`Slot` for it, at
import, with a type and a **lifetime**, and reads and writes it through the session's
:class:`SessionState` (``session.state``)::

    CALENDAR: Slot[tuple[uuid.UUID, Calendar]] = Slot("servq.calendar", TENANT, __name__)

    cached = session.state.get(CALENDAR)
    session.state.set(CALENDAR, (session.tenant_id, calendar))

The session drops a slot's value when its lifetime ends, whoever forgets to check
(:mod:`servq.core.db.tenancy` listens):

- :data:`SESSION`: kept as long as the session (the tenant, the tenancy switches).
- :data:`TENANT`: dropped when the session switches to another tenant and when its
  outermost transaction rolls back (a value read from rolled-back writes is stale).
- :data:`TRANSACTION`: dropped when the outermost transaction ends (commit, rollback or
  close).

Values live in ``session.info`` (SQLAlchemy's per-session dictionary) under the slot's
name: a :class:`Slot` *is* its name (a ``str``), so ``session.info["standards_revision"]``
and ``session.state.get(STANDARDS_REVISION)`` are the same entry. Declaring a name twice
is an error: one owner per slot.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")

SESSION = "session"
TENANT = "tenant"
TRANSACTION = "transaction"
LIFETIMES = (SESSION, TENANT, TRANSACTION)

_DECLARED: dict[str, "Slot"] = {}
#: The slot names of each lifetime the session drops (tuples: read on every drop).
_ENDING: dict[str, tuple[str, ...]] = {TENANT: (), TRANSACTION: ()}


class Slot(str, Generic[T]):
    """A declared slot of session state: its name, its lifetime and its owner (the
    declaring module). Holds values of type ``T`` (for the type checker)."""

    lifetime: str
    owner: str

    def __new__(cls, name: str, lifetime: str, owner: str) -> "Slot[T]":
        if lifetime not in LIFETIMES:
            raise ValueError(f"slot {name!r}: lifetime {lifetime!r} is none of {LIFETIMES}")
        declared = _DECLARED.get(name)
        if declared is not None and declared.owner != owner:
            raise ValueError(f"slot {name!r} is already declared by {declared.owner}")
        slot = super().__new__(cls, name)
        slot.lifetime = lifetime
        slot.owner = owner
        _DECLARED[name] = slot
        if lifetime in _ENDING and name not in _ENDING[lifetime]:
            _ENDING[lifetime] = (*_ENDING[lifetime], name)
        return slot

    def __repr__(self) -> str:
        return f"Slot({str(self)!r}, {self.lifetime}, {self.owner})"


def declared_slots() -> dict[str, Slot]:
    """Every slot declared so far, by name."""
    return dict(_DECLARED)


class SessionState:
    """A session's typed state (``session.state``): get, set and drop declared slots."""

    __slots__ = ("_info",)

    def __init__(self, info: dict) -> None:
        self._info = info

    @overload
    def get(self, slot: Slot[T]) -> T | None: ...

    @overload
    def get(self, slot: Slot[T], default: T) -> T: ...

    def get(self, slot, default=None):
        return self._info.get(slot, default)

    def set(self, slot: Slot[T], value: T) -> None:
        self._info[slot] = value

    def setdefault(self, slot: Slot[T], value: T) -> T:
        return self._info.setdefault(slot, value)

    def pop(self, slot: Slot[T], default: Any = None) -> T | None:
        return self._info.pop(slot, default)

    def end(self, lifetime: str) -> None:
        """Drop the values of every slot of ``lifetime`` (the tenancy calls it)."""
        info = self._info
        for name in _ENDING[lifetime]:
            if name in info:
                del info[name]
