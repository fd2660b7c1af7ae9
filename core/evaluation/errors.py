"""The error of a record that cannot be accepted, wherever it is found out: its payload
(:mod:`servq.core.records`), an inspection's answers (:mod:`.inspections`) or a value its
standard cannot judge (:mod:`.evaluations`). Re-exported as
``servq.core.records.pipeline.RecordInvalid``."""

from __future__ import annotations

from typing import Any


class RecordInvalid(Exception):
    """A record payload was refused.

    :param errors: field errors shaped like marshmallow's (``{"data": {"title": [...]}}``).
    :param message: one sentence for the client.
    """

    def __init__(self, errors: dict[str, Any], message: str = "The record is not valid."):
        super().__init__(message)
        self.errors = errors
        self.message = message
