"""Members: who may use this tenant, and in which role.

A member is a membership (user × tenant × role). Users are global, so adding an email
that already has a servq account only gives that person a membership here; their
password and name stay theirs. Only an owner may grant, change or remove the owner role,
and the tenant's last owner stays one.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select, update

from servq.core.audit import apply_changes, audit
from servq.core.auth.passwords import hash_password
from servq.core.models import Membership, Staff, Token, User
from servq.core.org.errors import OrgConflict, OrgForbidden, OrgInvalid


def members_statement(role: str | None = None):
    """SELECT of the tenant's memberships by their user's email (of one role)."""
    stmt = (select(Membership).join(User, User.id == Membership.user_id)
            .order_by(User.email, Membership.id))
    if role is not None:
        stmt = stmt.where(Membership.role == role)
    return stmt


def users_of(session, memberships) -> dict[uuid.UUID, User]:
    """``{user id: user}`` of ``memberships``, in one query."""
    ids = [m.user_id for m in memberships]
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}


def find_member(session, membership_id: uuid.UUID) -> tuple[Membership, User] | None:
    """The tenant's membership and its user, or ``None``."""
    row = session.execute(
        select(Membership, User).join(User, User.id == Membership.user_id)
        .where(Membership.id == membership_id)
    ).first()
    return None if row is None else (row[0], row[1])


def _only_owners_touch_owners(caller_role: str, *roles: str) -> None:
    if "owner" in roles and caller_role != "owner":
        raise OrgForbidden("Only an owner may grant, change or remove the owner role.")


def _keep_an_owner(session, membership: Membership) -> None:
    """Refuse if ``membership`` is the tenant's last owner."""
    if membership.role != "owner":
        return
    # Lock the owners' rows (PostgreSQL) so two concurrent demotions cannot both pass.
    owners = session.scalars(
        select(Membership.id).where(Membership.role == "owner").with_for_update()).all()
    if len(owners) <= 1:
        raise OrgConflict("This is the tenant's last owner; make someone else owner first.")


def add_member(session, values: dict, caller_role: str,
               actor_id: uuid.UUID | None) -> tuple[Membership, User]:
    """Add a member (``email``, ``role``; ``name`` and ``password`` for a new account),
    creating the account if the email is new; audited.

    :raises OrgForbidden: a non-owner grants the owner role.
    :raises OrgInvalid: a password for an existing account.
    :raises OrgConflict: the person is a member already.
    """
    _only_owners_touch_owners(caller_role, values["role"])
    email = values["email"].strip().lower()
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=values.get("name", ""),
                    password_hash=hash_password(values["password"]) if values.get("password") else None)
        session.add(user)
        session.flush()
    else:
        if values.get("password"):
            raise OrgInvalid("This person already has a servq account and logs in with "
                             "their own password; leave out 'password'.",
                             {"password": ["Not allowed for an existing account."]})
        if session.scalar(select(Membership.id).where(Membership.user_id == user.id)):
            raise OrgConflict(f"{email} is already a member.")
    membership = Membership(user_id=user.id, role=values["role"])
    session.add(membership)
    session.flush()
    audit(session, "memberships", membership.id, "created", actor_id,
          {"user_id": [None, str(user.id)], "email": [None, email], "role": [None, values["role"]]})
    return membership, user


def change_member(session, membership: Membership, user: User, values: dict, caller_role: str,
                  actor_id: uuid.UUID | None) -> dict:
    """Change a member's role or name (the person's display name, shared by every tenant
    they belong to); audit what changed and return it.

    :raises OrgForbidden: a non-owner touches the owner role.
    :raises OrgConflict: the last owner would lose it.
    """
    changes = {}
    if "role" in values and values["role"] != membership.role:
        _only_owners_touch_owners(caller_role, membership.role, values["role"])
        _keep_an_owner(session, membership)
        changes.update(apply_changes(membership, {"role": values["role"]}))
    if "name" in values:
        changes.update(apply_changes(user, {"name": values["name"]}))
    if changes:
        session.flush()
        audit(session, "memberships", membership.id, "changed", actor_id, changes)
    return changes


def remove_member(session, membership: Membership, user: User, caller_role: str,
                  actor_id: uuid.UUID | None) -> None:
    """Remove a member and their tokens, audited; the account itself stays. Staff entries
    linked to the person are unlinked (``user_id`` null), since staff may only link to
    members of this tenant.

    :raises OrgForbidden: a non-owner removes an owner.
    :raises OrgConflict: the last owner.
    """
    _only_owners_touch_owners(caller_role, membership.role)
    _keep_an_owner(session, membership)
    tokens = session.execute(delete(Token).where(Token.membership_id == membership.id)).rowcount
    unlinked = session.execute(update(Staff).where(Staff.user_id == user.id)
                               .values(user_id=None)).rowcount
    audit(session, "memberships", membership.id, "deleted", actor_id,
          {"user_id": [str(user.id), None], "email": [user.email, None],
           "role": [membership.role, None], "tokens_deleted": [tokens, 0],
           "staff_unlinked": [unlinked, 0]})
    session.delete(membership)
