"""Why a rule of the tenant's organisation refused a change; the HTTP API answers with
the error's ``status``. ``errors`` maps the offending field of the body to its messages."""

from __future__ import annotations

from typing import Any


class OrgError(Exception):
    """A rule refused the change; nothing was stored."""

    status = 422

    def __init__(self, message: str, errors: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors


class OrgInvalid(OrgError):
    """A value breaks a rule, e.g. names another tenant's site (422)."""

    status = 422


class OrgConflict(OrgError):
    """The change conflicts with what exists: a code taken, the last owner (409)."""

    status = 409


class OrgForbidden(OrgError):
    """The caller's role may not make this change (403)."""

    status = 403
