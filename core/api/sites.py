"""Sites: the places where service is delivered. HTTP only: the rules are :mod:`core.org.sites`."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate

from servq.core.api.blueprint import Blueprint
from servq.core.api.context import actor_id, require
from servq.core.api.errors import refusals
from servq.core.api.pagination import PAGINATION_HEADER_DOC, PageArgs, paginate
from servq.core.db.session import request_session
from servq.core.models import Site
from servq.core.org import sites
from servq.core.org.errors import OrgError

URL = "/sites"
blp = Blueprint("sites", __name__, description="Sites: hotels, estates, depots, service centres.")

CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
                       error="Use 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit.")


class SiteSchema(Schema):
    id = fields.UUID(dump_only=True)
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    address = fields.String(load_default="", validate=validate.Length(max=500))
    active = fields.Boolean(load_default=True)
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)


class SiteQuery(PageArgs):
    q = fields.String(validate=validate.Length(max=100), metadata={"description": "Code or name contains this text (any case; % and _ match themselves)"})
    active = fields.Boolean()


def get_site(site_id: uuid.UUID) -> Site:
    """The current tenant's site or 404."""
    site = sites.find_site(request_session(), site_id)
    if site is None:
        abort(404, message="Site not found.")
    return site


@blp.route("")
class Sites(MethodView):
    @require("read")
    @blp.arguments(SiteQuery(), location="query")
    @blp.response(200, SiteSchema(many=True), headers=PAGINATION_HEADER_DOC)
    def get(self, args):
        """List sites, by code."""
        stmt = sites.sites_statement(args.get("q"), args.get("active"))
        headers = {}
        return paginate(request_session(), stmt, args, headers), 200, headers

    @require("manage")
    @blp.arguments(SiteSchema())
    @blp.created(SiteSchema)
    @blp.alt_response(409, description="A site with this code exists")
    def post(self, body):
        """Create a site."""
        session = request_session()
        with refusals(OrgError):
            site = sites.create_site(session, body, actor_id())
        session.commit()
        return site


@blp.route("/<uuid:site_id>")
class SiteById(MethodView):
    @require("read")
    @blp.etag
    @blp.response(200, SiteSchema)
    def get(self, site_id):
        """Get a site."""
        return get_site(site_id)

    @require("manage")
    @blp.etag
    @blp.arguments(SiteSchema(partial=True))
    @blp.response(200, SiteSchema)
    def patch(self, body, site_id):
        """Change a site (needs If-Match)."""
        session = request_session()
        site = get_site(site_id)
        blp.check_etag(site, SiteSchema)
        with refusals(OrgError):
            sites.change_site(session, site, body, actor_id())
        session.commit()
        return site

    @require("manage")
    @blp.etag
    @blp.response(204)
    @blp.alt_response(409, description="The site is still referenced; deactivate it instead")
    def delete(self, site_id):
        """Delete a site that nothing refers to (needs If-Match)."""
        session = request_session()
        site = get_site(site_id)
        blp.check_etag(site, SiteSchema)
        sites.delete_site(session, site, actor_id())
        session.commit()
