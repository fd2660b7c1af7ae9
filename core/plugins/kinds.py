"""What a plugin contributes when it registers a record kind."""

from __future__ import annotations

from dataclasses import dataclass, field

from marshmallow import Schema


@dataclass(frozen=True)
class Transition:
    """One action of a workflow: from any of ``sources`` to ``target``.

    :param action: the name a client posts (``acknowledge``, ``resolve``).
    :param sources: the states it may be taken from.
    :param target: the state it leads to.
    :param stamp: the timestamp it records in ``record.timestamps`` (``acknowledged_at``),
        which deadline rules read; ``None`` stamps nothing.
    :param title: ``{"en": ..., "zh": ...}``.
    """

    action: str
    sources: tuple[str, ...]
    target: str
    stamp: str | None = None
    title: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Workflow:
    """The states a kind's records move through (the kind's ``statuses``) and how.

    :param transitions: the allowed actions.
    :param initial_stamp: the timestamp stamped with ``occurred_at`` when a record is
        created (``received_at``), or ``None``.
    :param waiting: states that pause the record's deadline clocks (waiting for the
        customer); entering one needs a reason.
    :param final: states after which no clock runs.
    """

    transitions: tuple[Transition, ...]
    initial_stamp: str | None = None
    waiting: tuple[str, ...] = ()
    final: tuple[str, ...] = ()

    def allowed(self, state: str) -> list[str]:
        """The actions allowed from ``state``."""
        return [t.action for t in self.transitions if state in t.sources]

    def transition(self, state: str, action: str) -> Transition | None:
        """The transition ``action`` takes from ``state``, or ``None`` when not allowed."""
        for t in self.transitions:
            if t.action == action and state in t.sources:
                return t
        return None


@dataclass(frozen=True)
class RecordKind:
    """A kind of quality record.

    :param name: unique name; a plugin's kinds are named ``<plugin id>.<kind>``
        (``property.work_order``); core's kinds have bare names (``observation``).
    :param schema: marshmallow schema class validating the record's ``data``.
    :param title: ``{"en": ..., "zh": ...}``.
    :param description: one paragraph for the API description.
    :param statuses: the statuses a record of this kind may take; the first is the
        initial one.
    :param plugin: id of the plugin that registered it (filled in by the manager).
    :param workflow: the kind's :class:`Workflow`, or ``None``: then ``status`` is set
        freely among ``statuses``.
    """

    name: str
    schema: type[Schema]
    title: dict[str, str] = field(default_factory=dict)
    description: str = ""
    statuses: tuple[str, ...] = ("open", "closed")
    plugin: str = ""
    workflow: Workflow | None = None

    @property
    def initial_status(self) -> str:
        return self.statuses[0]
