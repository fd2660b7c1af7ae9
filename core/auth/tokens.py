"""Opaque bearer tokens.

A token reads ``sq_<tenant id hex>_<secret>``. The tenant part lets the lookup run inside
that tenant's scope (ORM filter and row-level security) before anything is known; only
the SHA-256 of the whole token is stored, so a database leak reveals no usable token.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from core.db import utcnow
from core.models import Membership, Tenant, TenantPlugin, Token, User
from core.plugins_ext import remember_enabled_plugins

PREFIX = "sq"
_TOKEN_RE = re.compile(r"sq_([0-9a-f]{32})_([A-Za-z0-9_-]{20,128})")


def hash_token(token: str) -> str:
    """The SHA-256 (hex) under which a token is stored and looked up."""
    return hashlib.sha256(token.encode()).hexdigest()


def tenant_of(token: str) -> uuid.UUID | None:
    """The tenant a token claims to belong to, or ``None`` if it is not a servq token."""
    match = _TOKEN_RE.fullmatch(token or "")
    return uuid.UUID(match.group(1)) if match else None


def issue_token(session, membership: Membership, ttl: timedelta, label: str = "") -> tuple[str, Token]:
    """Create a token for ``membership``; returns the clear token (shown once) and its row."""
    secret = secrets.token_urlsafe(32)
    clear = f"{PREFIX}_{membership.tenant_id.hex}_{secret}"
    row = Token(
        tenant_id=membership.tenant_id,
        membership_id=membership.id,
        token_hash=hash_token(clear),
        label=label,
        expires_at=utcnow() + ttl,
    )
    session.add(row)
    session.flush()
    return clear, row


def authenticate(session, clear: str) -> tuple[Tenant, Membership, User, Token] | None:
    """Resolve a bearer token to its live membership, scoping ``session`` to its tenant.

    Returns ``None`` for an unknown, revoked or expired token, or a deactivated user.
    """
    tenant_id = tenant_of(clear)
    if tenant_id is None:
        return None
    # Scope first, then one query: the RLS context is set once as the transaction
    # begins, and an unknown tenant simply finds no token.
    session.set_tenant(tenant_id)
    now = utcnow()
    # The tenant's active plugin ids ride along, so a request needs no second query
    # to learn which plugins (routes, kinds, hooks) it may use.
    plugin_ids = (
        select(func.aggregate_strings(TenantPlugin.plugin_id, ","))
        .where(TenantPlugin.tenant_id == Token.tenant_id, TenantPlugin.active.is_(True))
        .scalar_subquery()
    )
    row = session.execute(
        select(Token, Membership, User, Tenant, plugin_ids)
        .join(Membership, (Membership.tenant_id == Token.tenant_id) & (Membership.id == Token.membership_id))
        .join(User, User.id == Membership.user_id)
        .join(Tenant, Tenant.id == Token.tenant_id)
        .where(Token.token_hash == hash_token(clear))
    ).first()
    if row is None:
        session.set_tenant(None)
        return None
    token, membership, user, tenant, plugins = row
    if token.revoked_at is not None or token.expires_at <= now or not user.is_active:
        session.set_tenant(None)
        return None
    remember_enabled_plugins(session, set(plugins.split(",")) if plugins else set())
    return tenant, membership, user, token


def revoke_tokens_of(session, membership_id: uuid.UUID, when: datetime | None = None) -> int:
    """Revoke every live token of a membership (role change, removal)."""
    result = session.execute(
        update(Token)
        .where(Token.membership_id == membership_id, Token.revoked_at.is_(None))
        .values(revoked_at=when or utcnow())
    )
    return result.rowcount or 0
