"""Roles and what each may do.

Every route states the permission it needs; the permission check is part of the
authentication decorator, so a route cannot forget it.
"""

from __future__ import annotations

ROLES = ("owner", "admin", "manager", "inspector", "agent", "viewer")

#: permission → roles that hold it
PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "write": frozenset({"owner", "admin", "manager", "inspector", "agent"}),
    "manage": frozenset({"owner", "admin", "manager"}),
    "admin": frozenset({"owner", "admin"}),
    # Personal data (customer contacts, owner phone numbers) in clear.
    "personal_data": frozenset({"owner", "admin", "manager"}),
}


def allowed(role: str, permission: str) -> bool:
    """Whether ``role`` holds ``permission``."""
    return role in PERMISSIONS[permission]


def rank(role: str) -> int:
    """0 for owner … 5 for viewer: lower outranks higher."""
    return ROLES.index(role)
