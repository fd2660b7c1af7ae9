"""Why a survey rule refused a change; the HTTP API answers with the error's ``status``.

``errors`` maps the offending field of the request body to its messages (or is ``None``).
"""

from __future__ import annotations

from typing import Any


class SurveyError(Exception):
    """A survey rule refused the change; nothing was stored."""

    status = 422

    def __init__(self, message: str, errors: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors


class SurveyInvalid(SurveyError):
    """The values break a rule of the instrument, survey or invitation (422)."""

    status = 422


class SurveyConflict(SurveyError):
    """The object is not in a state for this change (409)."""

    status = 409


class SurveyNotFound(SurveyError):
    """No such object in the tenant (404)."""

    status = 404
