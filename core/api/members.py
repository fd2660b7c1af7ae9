"""Members: who may use this tenant, and in which role. Owners and admins only.

A member is a membership (user × tenant × role). Users are global, so adding an email
that already has a servq account only gives that person a membership here; their
password and name stay theirs.
"""

from __future__ import annotations

import uuid

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from sqlalchemy import delete, select, update

from servq.core.api.blueprint import Blueprint, lock_for_write
from servq.core.api.context import actor_id, require
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.audit import apply_changes, audit
from servq.core.auth.passwords import MIN_LENGTH, hash_password
from servq.core.auth.permissions import ROLES
from servq.core.db.session import request_session
from servq.core.models import Membership, Staff, Token, User

URL = "/members"
blp = Blueprint("members", __name__, description="Members of this tenant and their roles.")

ROLE = validate.OneOf(ROLES)
NAME = validate.Length(max=200)


class MemberSchema(Schema):
    id = fields.UUID(dump_only=True, metadata={"description": "The membership id"})
    user_id = fields.UUID(dump_only=True)
    email = fields.Email(dump_only=True)
    name = fields.String(validate=NAME)
    role = fields.String(required=True, validate=ROLE)
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)


class MemberCreateSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    role = fields.String(required=True, validate=ROLE)
    name = fields.String(validate=NAME, metadata={"description": "For a new account only"})
    password = fields.String(load_only=True, validate=validate.Length(min=MIN_LENGTH, max=1024),
                             metadata={"description": "For a new account only; without it the "
                                                      "person cannot log in until one is set"})


class MemberQuery(PageArgs):
    role = fields.String(validate=ROLE)


def member_view(membership: Membership, user: User) -> dict:
    """The API's view of one member (never the password hash)."""
    return {"id": membership.id, "user_id": user.id, "email": user.email, "name": user.name,
            "role": membership.role, "created_at": membership.created_at,
            "updated_at": membership.updated_at}


def get_member(membership_id: uuid.UUID) -> tuple[Membership, User]:
    """The current tenant's membership and its user, or 404."""
    row = request_session().execute(
        select(Membership, User).join(User, User.id == Membership.user_id)
        .where(Membership.id == membership_id)
    ).first()
    if row is None:
        abort(404, message="Member not found.")
    return row[0], row[1]


def _only_owners_touch_owners(*roles: str) -> None:
    if "owner" in roles and g.membership.role != "owner":
        abort(403, message="Only an owner may grant, change or remove the owner role.")


def _keep_an_owner(membership: Membership) -> None:
    """409 if ``membership`` is the tenant's last owner."""
    if membership.role != "owner":
        return
    # Lock the owners' rows (PostgreSQL) so two concurrent demotions cannot both pass.
    owners = request_session().scalars(
        select(Membership.id).where(Membership.role == "owner").with_for_update()).all()
    if len(owners) <= 1:
        abort(409, message="This is the tenant's last owner; make someone else owner first.")


@blp.route("")
class Members(MethodView):
    @require("admin")
    @blp.arguments(MemberQuery(), location="query")
    @blp.response(200, MemberSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """List members, by email."""
        session = request_session()
        stmt = (select(Membership).join(User, User.id == Membership.user_id)
                .order_by(User.email, Membership.id))
        if "role" in args:
            stmt = stmt.where(Membership.role == args["role"])
        headers = {}
        memberships = paginate(session, stmt, args, headers)
        ids = [m.user_id for m in memberships]
        users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
        return [member_view(m, users[m.user_id]) for m in memberships], 200, headers

    @require("admin")
    @blp.arguments(MemberCreateSchema())
    @blp.created(MemberSchema)
    @blp.alt_response(409, description="This person is already a member")
    def post(self, body):
        """Add a member: creates the account if the email is new."""
        session = request_session()
        _only_owners_touch_owners(body["role"])
        email = body["email"].strip().lower()
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(email=email, name=body.get("name", ""),
                        password_hash=hash_password(body["password"]) if body.get("password") else None)
            session.add(user)
            session.flush()
        else:
            if body.get("password"):
                abort(422, message="This person already has a servq account and logs in with "
                                   "their own password; leave out 'password'.",
                      errors={"json": {"password": ["Not allowed for an existing account."]}})
            if session.scalar(select(Membership.id).where(Membership.user_id == user.id)):
                abort(409, message=f"{email} is already a member.")
        membership = Membership(user_id=user.id, role=body["role"])
        session.add(membership)
        session.flush()
        audit(session, "memberships", membership.id, "created", actor_id(),
              {"user_id": [None, str(user.id)], "email": [None, email], "role": [None, body["role"]]})
        session.commit()
        return member_view(membership, user)


@blp.route("/<uuid:membership_id>")
class MemberById(MethodView):
    @require("admin")
    @blp.etag
    @blp.response(200, MemberSchema)
    def get(self, membership_id):
        """Get a member."""
        return member_view(*get_member(membership_id))

    @require("admin")
    @blp.etag
    @blp.arguments(MemberSchema(partial=True))
    @blp.response(200, MemberSchema)
    def patch(self, body, membership_id):
        """Change a member's role or name (needs If-Match).

        Only an owner may grant or take away the owner role; the last owner keeps it.
        ``name`` is the person's display name, shared by every tenant they belong to.
        """
        session = request_session()
        membership, user = get_member(membership_id)
        lock_for_write(membership)
        lock_for_write(user)  # the name is the user's; a GET shows both
        blp.check_etag(member_view(membership, user), MemberSchema)
        changes = {}
        if "role" in body and body["role"] != membership.role:
            _only_owners_touch_owners(membership.role, body["role"])
            _keep_an_owner(membership)
            changes.update(apply_changes(membership, {"role": body["role"]}))
        if "name" in body:
            changes.update(apply_changes(user, {"name": body["name"]}))
        if changes:
            session.flush()
            audit(session, "memberships", membership.id, "changed", actor_id(), changes)
        session.commit()
        return member_view(membership, user)

    @require("admin")
    @blp.etag
    @blp.response(204)
    @blp.alt_response(409, description="The last owner cannot be removed")
    def delete(self, membership_id):
        """Remove a member and their tokens (needs If-Match); the account itself stays.

        Staff entries linked to the person are unlinked (``user_id`` null), since staff
        may only link to members of this tenant.
        """
        session = request_session()
        membership, user = get_member(membership_id)
        lock_for_write(membership)
        lock_for_write(user)
        blp.check_etag(member_view(membership, user), MemberSchema)
        _only_owners_touch_owners(membership.role)
        _keep_an_owner(membership)
        tokens = session.execute(delete(Token).where(Token.membership_id == membership.id)).rowcount
        unlinked = session.execute(update(Staff).where(Staff.user_id == user.id)
                                   .values(user_id=None)).rowcount
        audit(session, "memberships", membership.id, "deleted", actor_id(),
              {"user_id": [str(user.id), None], "email": [user.email, None],
               "role": [membership.role, None], "tokens_deleted": [tokens, 0],
               "staff_unlinked": [unlinked, 0]})
        session.delete(membership)
        session.commit()
