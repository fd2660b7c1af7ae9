"""Members: who may use this tenant, and in which role. Owners and admins only.

A member is a membership (user × tenant × role). Users are global, so adding an email
that already has a servq account only gives that person a membership here; their
password and name stay theirs. HTTP only: the rules are :mod:`core.org.members`.
"""

from __future__ import annotations

import uuid

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate

from servq.core.api.blueprint import Blueprint, lock_for_write
from servq.core.api.context import actor_id, require
from servq.core.api.errors import refusals
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.auth.passwords import MIN_LENGTH
from servq.core.auth.permissions import ROLES
from servq.core.db.session import request_session
from servq.core.models import Membership, User
from servq.core.org import members
from servq.core.org.errors import OrgError

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
    found = members.find_member(request_session(), membership_id)
    if found is None:
        abort(404, message="Member not found.")
    return found


@blp.route("")
class Members(MethodView):
    @require("admin")
    @blp.arguments(MemberQuery(), location="query")
    @blp.response(200, MemberSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """List members, by email."""
        session = request_session()
        headers = {}
        memberships = paginate(session, members.members_statement(args.get("role")), args, headers)
        users = members.users_of(session, memberships)
        return [member_view(m, users[m.user_id]) for m in memberships], 200, headers

    @require("admin")
    @blp.arguments(MemberCreateSchema())
    @blp.created(MemberSchema)
    @blp.alt_response(409, description="This person is already a member")
    def post(self, body):
        """Add a member: creates the account if the email is new."""
        session = request_session()
        with refusals(OrgError):
            membership, user = members.add_member(session, body, g.membership.role, actor_id())
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
        with refusals(OrgError):
            members.change_member(session, membership, user, body, g.membership.role, actor_id())
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
        with refusals(OrgError):
            members.remove_member(session, membership, user, g.membership.role, actor_id())
        session.commit()
