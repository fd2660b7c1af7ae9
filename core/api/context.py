"""Who is calling: bearer-token authentication, the permission check of every route, and
what the caller's tenant and role may use (its record kinds, personal data in clear)."""

from __future__ import annotations

import logging
from functools import wraps

from flask import g, has_request_context, request
from flask_smorest import abort
from werkzeug.local import LocalProxy

from servq.core.api.blueprint import Blueprint
from servq.core.auth.permissions import allowed
from servq.core.auth.tokens import authenticate, touch_token
from servq.core.db.session import request_session, rerun_as_writer
from servq.core.db import utcnow
from servq.core.models import Token
from servq.core.plugins.app import get_plugins, tenant_enabled_plugins

BEARER = [{"bearerAuth": []}]

log = logging.getLogger(__name__)


def bearer_token() -> str | None:
    """The token of the request's ``Authorization: Bearer`` header, or ``None``."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate_request() -> None:
    """Resolve the bearer token to ``g.tenant``, ``g.membership``, ``g.user``, ``g.token``
    and scope ``g.db`` to the tenant; 401 otherwise.

    ``g.tenant``, ``g.membership`` and ``g.user`` are read-only snapshots read with the
    token (:class:`~core.auth.tokens.CallerTenant` …); query the models to change them.
    ``g.token`` is the :class:`~core.models.Token` row of the session, loaded on first
    use (logging out sets its ``revoked_at``).
    """
    if "membership" in g:
        return
    token = bearer_token()
    session = request_session()
    found = authenticate(session, token) if token else None
    if found is None:
        abort(401, message="A valid bearer token is required.",
              headers={"WWW-Authenticate": 'Bearer realm="servq"'})
    g.tenant, g.membership, g.user, g.token_use = found
    g.token = LocalProxy(_token_row)
    now = utcnow()
    # Record use at most once a minute to keep reads free of writes.
    used = found.token.last_used_at
    if used is None or (now - used).total_seconds() > 60:
        touch_token(session, found.token, now)
        session.commit()


#: What a request's authentication and flask-smorest (ETag, dumped result) keep on ``g``.
_REQUEST_STATE = ("tenant", "membership", "user", "token_use", "token", "_token_row", "_flask_smorest")


def rerun_read_as_writer(exc: BaseException) -> bool:
    """Whether a safe request that lost SQLite's write lock runs again
    (:func:`core.db.session.rerun_as_writer`); then what it learnt is forgotten too: it
    authenticates again, in its new session."""
    if not rerun_as_writer(exc):
        return False
    for name in _REQUEST_STATE:
        g.pop(name, None)
    log.info("a read lost SQLite's write lock while writing on the way; running it again as a writer")
    return True


def _token_row() -> Token:
    """The ORM row of the request's token, from the request's session (one query, once)."""
    row = g.get("_token_row")
    if row is None:
        use = g.token_use
        row = request_session().get(Token, (use.tenant_id, use.id))
        if row is None:  # deleted since authentication (membership removed)
            abort(401, message="A valid bearer token is required.",
                  headers={"WWW-Authenticate": 'Bearer realm="servq"'})
        g._token_row = row
    return row


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

        # x-permission: the 403 of roles without it is documented (core/api/openapi.py).
        return Blueprint.doc(security=BEARER, **{"x-permission": permission})(wrapper)

    return decorator


def actor_id():
    """The id of the user making the request."""
    return g.user.id


def sees_personal_data() -> bool:
    """Whether the caller's role may see personal data in clear (never outside a request)."""
    return has_request_context() and "membership" in g and allowed(g.membership.role, "personal_data")


def enabled_kinds() -> dict:
    """The record kinds the current tenant may use."""
    return get_plugins().kinds_for(tenant_enabled_plugins())
