"""Staff: the people whose work is recorded and scored (housekeepers, engineers, couriers, agents)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from servq.core.audit import apply_changes, audit, jsonable
from servq.core.models import Membership, Record, Site, Staff
from servq.core.org.errors import OrgConflict, OrgInvalid
from servq.core.org.sites import FOUND, text_search


def staff_statement(site_id: uuid.UUID | None = None, q: str | None = None, active: bool | None = None,
                    reports_to: uuid.UUID | None = None):
    """SELECT of the tenant's staff by code: of a site, whose code or name contains ``q``,
    active or not, reporting to a member of staff."""
    stmt = select(Staff).order_by(Staff.code)
    if reports_to is not None:
        stmt = stmt.where(Staff.reports_to == reports_to)
    if site_id is not None:
        stmt = stmt.where(Staff.site_id == site_id)
    if q:
        stmt = stmt.where(text_search(q, Staff.code, Staff.name))
    if active is not None:
        stmt = stmt.where(Staff.active.is_(active))
    return stmt


def find_staff(session, staff_id: uuid.UUID) -> Staff | None:
    """The tenant's member of staff, or ``None``."""
    return session.scalar(select(Staff).where(Staff.id == staff_id))


def check_references(session, values: dict) -> None:
    """``site_id`` and ``user_id`` must belong to this tenant (checked here rather than
    left to the foreign key, which would be a 409/500 and no clue which field).

    :raises OrgInvalid: naming the fields.
    """
    errors = {}
    if values.get("site_id") is not None and session.scalar(
            select(Site.id).where(Site.id == values["site_id"])) is None:
        errors["site_id"] = ["No such site in this tenant."]
    if values.get("user_id") is not None and session.scalar(
            select(Membership.id).where(Membership.user_id == values["user_id"])) is None:
        errors["user_id"] = ["This user is not a member of this tenant."]
    if values.get("reports_to") is not None and session.scalar(
            select(Staff.id).where(Staff.id == values["reports_to"])) is None:
        errors["reports_to"] = ["No such member of staff in this tenant."]
    if errors:
        raise OrgInvalid("Unknown reference.", errors)


def check_reporting_line(session, staff_id: uuid.UUID, manager_id: uuid.UUID | None) -> None:
    """``staff_id`` may report to ``manager_id``: not themselves, and not someone who
    reports to them, directly or not (one recursive query walks up from the manager).

    :raises OrgInvalid: naming ``reports_to``.
    """
    if manager_id is None:
        return
    if manager_id == staff_id:
        raise OrgInvalid("A member of staff cannot report to themselves.",
                         {"reports_to": ["A member of staff cannot report to themselves."]})
    # The manager's chain upwards; a cycle elsewhere in the data cannot loop forever:
    # UNION (not UNION ALL) stops at a row already seen.
    chain = (select(Staff.id, Staff.reports_to).where(Staff.id == manager_id)
             .cte("chain", recursive=True))
    up = select(Staff.id, Staff.reports_to).join(chain, Staff.id == chain.c.reports_to)
    chain = chain.union(up)
    if session.scalar(select(chain.c.id).where(chain.c.id == staff_id).limit(1)) is not None:
        message = "This would make a reporting cycle: the manager reports to this member of staff."
        raise OrgInvalid(message, {"reports_to": [message]})


def _code_taken(session, code: str) -> None:
    if session.scalar(select(Staff.id).where(Staff.code == code)):
        raise OrgConflict(f"A staff member with code {code!r} exists.")


def create_staff(session, values: dict, actor_id: uuid.UUID | None) -> Staff:
    """Add a member of staff, audited.

    :raises OrgInvalid: an unknown site or user. :raises OrgConflict: the code is taken.
    """
    check_references(session, values)
    _code_taken(session, values["code"])
    staff = Staff(**values)
    session.add(staff)
    session.flush()
    audit(session, "staff", staff.id, "created", actor_id,
          {k: [None, jsonable(v)] for k, v in values.items()})
    return staff


def change_staff(session, staff: Staff, values: dict, actor_id: uuid.UUID | None) -> dict:
    """Change a member of staff; audit what changed and return it.

    :raises OrgInvalid: an unknown site, user or manager, a reporting cycle.
    :raises OrgConflict: the new code is taken.
    """
    check_references(session, values)
    if "reports_to" in values:
        check_reporting_line(session, staff.id, values["reports_to"])
    if "code" in values and values["code"] != staff.code:
        _code_taken(session, values["code"])
    changes = apply_changes(staff, values)
    if changes:
        audit(session, "staff", staff.id, "changed", actor_id, changes)
    return changes


def delete_staff(session, staff: Staff, actor_id: uuid.UUID | None) -> None:
    """Delete a member of staff no record refers to, audited.

    :raises OrgConflict: records (deleted ones too) refer to them.
    """
    # Soft-deleted records still hold the foreign key, so they count too.
    if session.scalar(select(Record.id).where(Record.staff_id == staff.id).limit(1)):
        raise OrgConflict("Records refer to this staff member; set active to false instead.")
    if session.scalar(select(Staff.id).where(Staff.reports_to == staff.id).limit(1)):
        raise OrgConflict("Staff report to this member of staff; change their reports_to first.")
    audit(session, "staff", staff.id, "deleted", actor_id)
    session.delete(staff)
    session.state.pop(FOUND)
