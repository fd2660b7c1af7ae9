"""What a plugin contributes when it registers a record kind."""

from __future__ import annotations

from dataclasses import dataclass, field

from marshmallow import Schema


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
    """

    name: str
    schema: type[Schema]
    title: dict[str, str] = field(default_factory=dict)
    description: str = ""
    statuses: tuple[str, ...] = ("open", "closed")
    plugin: str = ""

    @property
    def initial_status(self) -> str:
        return self.statuses[0]
