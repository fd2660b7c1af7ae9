"""Log in (issue a token), log out (revoke it), and who am I."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from servq.core import ratelimit
from servq.core.api.blueprint import Blueprint
from servq.core.api.context import require
from servq.core.auth.passwords import verify_password
from servq.core.auth.tokens import issue_token
from servq.core.db.session import request_session
from servq.core.db import utcnow
from servq.core.models import Membership, Tenant, User

URL = ""
blp = Blueprint("auth", __name__, description="Log in and out; who am I.")


class LoginSchema(Schema):
    tenant = fields.String(required=True, validate=validate.Length(min=1, max=63),
                           metadata={"description": "The tenant's slug"})
    email = fields.Email(required=True)
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=1024))
    label = fields.String(load_default="", validate=validate.Length(max=100),
                          metadata={"description": "What the token is for (shown in lists)"})


class TokenSchema(Schema):
    token = fields.String(required=True, metadata={"description": "Send as 'Authorization: Bearer <token>'"})
    token_type = fields.String(dump_default="Bearer")
    expires_at = fields.AwareDateTime(required=True)
    tenant = fields.String(required=True)
    role = fields.String(required=True)


class MeSchema(Schema):
    user_id = fields.UUID()
    email = fields.Email()
    name = fields.String()
    role = fields.String()
    tenant = fields.Dict()
    token_expires_at = fields.AwareDateTime()


@blp.route("/auth/token")
class TokenResource(MethodView):
    @blp.arguments(LoginSchema())
    @blp.response(201, TokenSchema)
    @blp.alt_response(401, description="Unknown tenant, unknown user or wrong password")
    @blp.alt_response(429, description="Too many attempts")
    @blp.doc(security=[])
    def post(self, body):
        """Log in: exchange a tenant slug, email and password for a bearer token."""
        email = body["email"].strip().lower()
        ratelimit.hit(current_app.config["LOGIN_RATE_LIMIT"],
                      f"login:{body['tenant']}:{email}", f"login-ip:{request.remote_addr}")
        session = request_session()
        tenant = session.scalar(select(Tenant).where(Tenant.slug == body["tenant"]))
        user = session.scalar(select(User).where(User.email == email))
        membership = None
        if tenant is not None and user is not None and user.is_active:
            session.set_tenant(tenant.id)
            membership = session.scalar(select(Membership).where(Membership.user_id == user.id))
        ok, new_hash = verify_password(user.password_hash if membership else None, body["password"])
        if not ok:
            abort(401, message="Wrong tenant, email or password.")
        if new_hash:
            user.password_hash = new_hash
        ttl = timedelta(seconds=current_app.config["TOKEN_TTL_SECONDS"])
        clear, token = issue_token(session, membership, ttl, label=body["label"])
        session.commit()
        return {"token": clear, "token_type": "Bearer", "expires_at": token.expires_at,
                "tenant": tenant.slug, "role": membership.role}

    @require("read")
    @blp.response(204)
    def delete(self):
        """Log out: revoke the token used for this request."""
        g.token.revoked_at = utcnow()
        request_session().commit()


@blp.route("/me")
class MeResource(MethodView):
    @require("read")
    @blp.response(200, MeSchema)
    def get(self):
        """Who the token belongs to: user, role and tenant."""
        t = g.tenant
        return {
            "user_id": g.user.id, "email": g.user.email, "name": g.user.name,
            "role": g.membership.role, "token_expires_at": g.token.expires_at,
            "tenant": {"id": str(t.id), "slug": t.slug, "name": t.name, "industry": t.industry,
                       "timezone": t.timezone, "locale": t.locale},
        }
