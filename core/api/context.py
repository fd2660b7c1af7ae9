"""Who is calling: bearer-token authentication and the permission check of every route."""

from __future__ import annotations

from functools import wraps

from flask import g, request
from flask_smorest import Blueprint, abort

from core.auth.permissions import allowed
from core.auth.tokens import authenticate
from core.database import request_session
from core.db import utcnow

BEARER = [{"bearerAuth": []}]


def bearer_token() -> str | None:
    """The token of the request's ``Authorization: Bearer`` header, or ``None``."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate_request() -> None:
    """Resolve the bearer token to ``g.tenant``, ``g.membership``, ``g.user``, ``g.token``
    and scope ``g.db`` to the tenant; 401 otherwise."""
    if "membership" in g:
        return
    token = bearer_token()
    session = request_session()
    found = authenticate(session, token) if token else None
    if found is None:
        abort(401, message="A valid bearer token is required.",
              headers={"WWW-Authenticate": 'Bearer realm="servq"'})
    g.tenant, g.membership, g.user, g.token = found
    now = utcnow()
    # Record use at most once a minute to keep reads free of writes.
    if g.token.last_used_at is None or (now - g.token.last_used_at).total_seconds() > 60:
        g.token.last_used_at = now
        session.commit()


def require(permission: str):
    """Decorate a view: authenticate, then demand ``permission`` (403 otherwise).

    Put it above flask-smorest's decorators so that authentication runs before the body
    is parsed; it also declares bearer security on the operation in the OpenAPI document.
    """

    def decorator(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            authenticate_request()
            if not allowed(g.membership.role, permission):
                abort(403, message=f"Your role ({g.membership.role}) may not do this: "
                                   f"it needs the '{permission}' permission.")
            return fn(*args, **kwargs)

        return Blueprint.doc(security=BEARER)(wrapper)

    return decorator


def actor_id():
    """The id of the user making the request."""
    return g.user.id
