"""Surveys' core plugin: triggers that invite a record's customer to a survey.

Registered in ``DEFAULT_PLUGINS`` like core's record kinds, so it runs for every tenant.
"""

from __future__ import annotations

from servq.core.plugins import hookimpl
from servq.core.surveys.invitations import invite_for_record, triggers_by_kind


@hookimpl
def record_created(session, record):
    """Invite when a record of a triggering kind is created (in a triggering status)."""
    invite_for_record(session, record, record.status, created=True)


def _watched(session, kind: str) -> bool:
    """Whether a trigger of an active survey watches records of ``kind`` (cached)."""
    return kind in triggers_by_kind(session)


# Records of kinds no trigger watches need not reach the hook (core.plugins.manager.wanted):
# a bulk import of them builds no ORM records.
record_created.wants = _watched


@hookimpl
def record_changed(session, record, changes):
    """Invite when a record enters a triggering status."""
    if "status" in changes and changes["status"][1] != changes["status"][0]:
        invite_for_record(session, record, changes["status"][1], created=False)
