"""Staff: the people whose work is recorded and scored."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from servq.core.api.args import text_search
from servq.core.api.blueprint import Blueprint
from servq.core.api.context import actor_id, require
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.api.sites import CODE
from servq.core.audit import apply_changes, audit, jsonable
from servq.core.db.session import request_session
from servq.core.models import Membership, Record, Site, Staff

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
    active = fields.Boolean(load_default=True)
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)


class StaffQuery(PageArgs):
    site_id = fields.UUID()
    q = fields.String(validate=validate.Length(max=100), metadata={"description": "Code or name contains this text (any case; % and _ match themselves)"})
    active = fields.Boolean()


def get_staff(staff_id: uuid.UUID) -> Staff:
    """The current tenant's member of staff or 404."""
    staff = request_session().scalar(select(Staff).where(Staff.id == staff_id))
    if staff is None:
        abort(404, message="Staff member not found.")
    return staff


def _check_references(session, body: dict) -> None:
    """422 unless ``site_id`` and ``user_id`` belong to this tenant (checked here rather
    than left to the foreign key, which would be a 409/500 and no clue which field)."""
    errors = {}
    if body.get("site_id") is not None and session.scalar(
            select(Site.id).where(Site.id == body["site_id"])) is None:
        errors["site_id"] = ["No such site in this tenant."]
    if body.get("user_id") is not None and session.scalar(
            select(Membership.id).where(Membership.user_id == body["user_id"])) is None:
        errors["user_id"] = ["This user is not a member of this tenant."]
    if errors:
        abort(422, message="Unknown reference.", errors={"json": errors})


def _code_taken(session, code: str) -> None:
    if session.scalar(select(Staff.id).where(Staff.code == code)):
        abort(409, message=f"A staff member with code {code!r} exists.")


@blp.route("")
class StaffList(MethodView):
    @require("read")
    @blp.arguments(StaffQuery(), location="query")
    @blp.response(200, StaffSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """List staff, by code."""
        stmt = select(Staff).order_by(Staff.code)
        if "site_id" in args:
            stmt = stmt.where(Staff.site_id == args["site_id"])
        if args.get("q"):
            stmt = stmt.where(text_search(args["q"], Staff.code, Staff.name))
        if "active" in args:
            stmt = stmt.where(Staff.active.is_(args["active"]))
        headers = {}
        return paginate(request_session(), stmt, args, headers), 200, headers

    @require("manage")
    @blp.arguments(StaffSchema())
    @blp.created(StaffSchema)
    @blp.alt_response(409, description="A staff member with this code exists")
    def post(self, body):
        """Add a member of staff."""
        session = request_session()
        _check_references(session, body)
        _code_taken(session, body["code"])
        staff = Staff(**body)
        session.add(staff)
        session.flush()
        audit(session, "staff", staff.id, "created", actor_id(),
              {k: [None, jsonable(v)] for k, v in body.items()})
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
        _check_references(session, body)
        if "code" in body and body["code"] != staff.code:
            _code_taken(session, body["code"])
        changes = apply_changes(staff, body)
        if changes:
            audit(session, "staff", staff.id, "changed", actor_id(), changes)
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
        # Soft-deleted records still hold the foreign key, so they count too.
        if session.scalar(select(Record.id).where(Record.staff_id == staff.id).limit(1)):
            abort(409, message="Records refer to this staff member; set active to false instead.")
        audit(session, "staff", staff.id, "deleted", actor_id())
        session.delete(staff)
        session.commit()
