"""Staff: the people whose work is recorded and scored. HTTP only: the rules are
:mod:`core.org.staff`."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate

from servq.core.api.blueprint import Blueprint
from servq.core.api.context import actor_id, require
from servq.core.api.errors import refusals
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.api.sites import CODE
from servq.core.db.session import request_session
from servq.core.models import Staff
from servq.core.org import staff as rules
from servq.core.org.errors import OrgError

URL = "/staff"
blp = Blueprint("staff", __name__, description="Staff: housekeepers, engineers, couriers, agents.")


class StaffSchema(Schema):
    id = fields.UUID(dump_only=True)
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    title = fields.String(load_default="", validate=validate.Length(max=200))
    site_id = fields.UUID(load_default=None, allow_none=True,
                          metadata={"description": "A site of this tenant"})
    user_id = fields.UUID(load_default=None, allow_none=True,
                          metadata={"description": "A user who is a member of this tenant"})
    reports_to = fields.UUID(load_default=None, allow_none=True, metadata={
        "description": "The member of staff this one reports to (their manager): of this "
                       "tenant, not themselves, no cycle"})
    active = fields.Boolean(load_default=True)
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)


class StaffQuery(PageArgs):
    site_id = fields.UUID()
    q = fields.String(validate=validate.Length(max=100), metadata={"description": "Code or name contains this text (any case; % and _ match themselves)"})
    active = fields.Boolean()
    reports_to = fields.UUID(metadata={"description": "Direct reports of this member of staff"})


def get_staff(staff_id: uuid.UUID) -> Staff:
    """The current tenant's member of staff or 404."""
    staff = rules.find_staff(request_session(), staff_id)
    if staff is None:
        abort(404, message="Staff member not found.")
    return staff


@blp.route("")
class StaffList(MethodView):
    @require("read")
    @blp.arguments(StaffQuery(), location="query")
    @blp.response(200, StaffSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """List staff, by code."""
        stmt = rules.staff_statement(args.get("site_id"), args.get("q"), args.get("active"),
                                     args.get("reports_to"))
        headers = {}
        return paginate(request_session(), stmt, args, headers), 200, headers

    @require("manage")
    @blp.arguments(StaffSchema())
    @blp.created(StaffSchema)
    @blp.alt_response(409, description="A staff member with this code exists")
    def post(self, body):
        """Add a member of staff."""
        session = request_session()
        with refusals(OrgError):
            staff = rules.create_staff(session, body, actor_id())
        session.commit()
        return staff


@blp.route("/<uuid:staff_id>")
class StaffById(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, StaffSchema)
    def get(self, staff_id):
        """Get a member of staff."""
        return get_staff(staff_id)

    @require("manage")
    @blp.etag
    @blp.arguments(StaffSchema(partial=True))
    @blp.response(200, StaffSchema)
    def patch(self, body, staff_id):
        """Change a member of staff (needs If-Match)."""
        session = request_session()
        staff = get_staff(staff_id)
        blp.check_etag(staff, StaffSchema)
        with refusals(OrgError):
            rules.change_staff(session, staff, body, actor_id())
        session.commit()
        return staff

    @require("manage")
    @blp.etag
    @blp.response(204)
    @blp.alt_response(409, description="Records refer to this staff member; deactivate instead")
    def delete(self, staff_id):
        """Delete a member of staff no record refers to (needs If-Match)."""
        session = request_session()
        staff = get_staff(staff_id)
        blp.check_etag(staff, StaffSchema)
        with refusals(OrgError):
            rules.delete_staff(session, staff, actor_id())
        session.commit()
