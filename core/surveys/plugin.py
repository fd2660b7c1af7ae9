"""Surveys' core plugin: triggers that invite a record's customer to a survey.

Registered in ``DEFAULT_PLUGINS`` like core's record kinds, so it runs for every tenant.
"""

from __future__ import annotations

from core.plugins import hookimpl
from core.surveys.invitations import invite_for_record


@hookimpl
def record_created(session, record):
    """Invite when a record of a triggering kind is created (in a triggering status)."""
    invite_for_record(session, record, record.status, created=True)


@hookimpl
def record_changed(session, record, changes):
    """Invite when a record enters a triggering status."""
    if "status" in changes and changes["status"][1] != changes["status"][0]:
        invite_for_record(session, record, changes["status"][1], created=False)
