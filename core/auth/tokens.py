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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, func, select, update

from servq.core.auth.facts import tenant_facts
from servq.core.db import utcnow
from servq.core.db.fast import driver_execute, prepared
from servq.core.models import Membership, Tenant, TenantPlugin, Token, User
from servq.core.plugins.app import remember_enabled_plugins

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


@dataclass(frozen=True, slots=True)
class CallerTenant:
    """The caller's tenant as read with the token (``g.tenant``): a read-only snapshot."""

    id: uuid.UUID
    slug: str
    name: str
    industry: str
    timezone: str
    locale: str
    standards_revision: int


@dataclass(frozen=True, slots=True)
class CallerUser:
    """The caller (``g.user``): a read-only snapshot of the user row."""

    id: uuid.UUID
    email: str
    name: str
    is_active: bool


@dataclass(frozen=True, slots=True)
class CallerMembership:
    """The caller's membership (``g.membership``): a read-only snapshot."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    user_id: uuid.UUID
    role: str


@dataclass(frozen=True, slots=True)
class TokenUse:
    """The token as read by :func:`authenticate`: enough to check it and record its use.

    ``g.token`` (see :mod:`core.api.context`) is the ORM row itself, loaded on first use.
    """

    tenant_id: uuid.UUID
    id: uuid.UUID
    membership_id: uuid.UUID
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class Caller(NamedTuple):
    """Who is calling, from one query: tenant, membership, user and token."""

    tenant: CallerTenant
    membership: CallerMembership
    user: CallerUser
    token: TokenUse


_AUTH: tuple | None = None  # (Core statement, PostgreSQL SQL, prepared, fact positions)

# The columns every authentication reads, for SQLAlchemy Core (SQLite) and, in the same
# order, as PostgreSQL runs them through the driver (every request runs it).
_POSTGRESQL_COLUMNS = (
    "t.id", "t.membership_id", "t.expires_at", "t.revoked_at", "t.last_used_at",
    "m.user_id", "m.role", "u.email", "u.name", "u.is_active",
    "n.slug", "n.name", "n.industry", "n.timezone", "n.locale", "n.standards_revision",
    "(SELECT string_agg(p.plugin_id, ',') FROM tenant_plugins p\n"
    "         WHERE p.tenant_id = %(tenant_id)s AND p.active) AS plugins",
)
_POSTGRESQL_FROM = """
FROM tokens t
JOIN memberships m ON m.tenant_id = t.tenant_id AND m.id = t.membership_id
JOIN users u ON u.id = m.user_id
JOIN tenants n ON n.id = t.tenant_id
WHERE t.tenant_id = %(tenant_id)s AND m.tenant_id = %(tenant_id)s AND t.token_hash = %(token_hash)s
"""


def _auth():
    """The one query of :func:`authenticate`, built once per process (on first use, with
    the per-tenant facts registered by then: :mod:`servq.core.auth.facts`).

    A Core statement (no ORM entities to build for four rows on every request) in which
    every tenant-owned table is explicitly restricted to the token's tenant by the
    ``tenant_id`` bind, which also lets PostgreSQL use the ``(tenant_id, token_hash)``
    index; row-level security still applies on top, since it runs on the session's
    connection after the transaction's ``servq.tenant_id`` is set. The tenant's active
    plugin ids and the facts its packages registered (its standards revision, the kinds
    its survey triggers watch…) ride along, so a request needs no second query to learn
    which plugins (routes, kinds, hooks) it may use, whether the compiled standards
    cached in this process are current, or whether a new record may invite to a survey.

    Returns ``(statement, sql, prepared, positions)``: the Core statement, the same as
    the driver's SQL for PostgreSQL and prepared on the server (sent with the
    transaction's BEGIN: :meth:`core.db.tenancy.TenantSession.begin_with`), and each
    fact with the position of its column in the row (a fact that is a column already
    read, ``n.standards_revision``, is not read twice).
    """
    global _AUTH
    if _AUTH is None:
        tk, ms, us, tn, tp = (Token.__table__, Membership.__table__, User.__table__,
                              Tenant.__table__, TenantPlugin.__table__)
        tenant_id = bindparam("tenant_id", type_=tk.c.tenant_id.type)
        plugin_ids = (
            select(func.aggregate_strings(tp.c.plugin_id, ","))
            .where(tp.c.tenant_id == tenant_id, tp.c.active.is_(True))
            .scalar_subquery()
        )
        columns = [tk.c.id, tk.c.membership_id, tk.c.expires_at, tk.c.revoked_at, tk.c.last_used_at,
                   ms.c.user_id, ms.c.role,
                   us.c.email, us.c.name, us.c.is_active,
                   tn.c.slug, tn.c.name, tn.c.industry, tn.c.timezone, tn.c.locale,
                   tn.c.standards_revision,
                   plugin_ids]
        texts = list(_POSTGRESQL_COLUMNS)
        positions = []
        for fact in tenant_facts():
            if fact.postgresql in texts:
                positions.append((fact, texts.index(fact.postgresql)))
                continue
            positions.append((fact, len(texts)))
            columns.append(fact.column(tenant_id))
            texts.append(fact.postgresql)
        statement = (
            select(*columns)
            .select_from(tk.join(ms, (ms.c.tenant_id == tk.c.tenant_id) & (ms.c.id == tk.c.membership_id))
                         .join(us, us.c.id == ms.c.user_id)
                         .join(tn, tn.c.id == tk.c.tenant_id))
            .where(tk.c.tenant_id == tenant_id, ms.c.tenant_id == tenant_id,
                   tk.c.token_hash == bindparam("token_hash", type_=tk.c.token_hash.type))
        )
        sql = "\nSELECT " + ",\n       ".join(texts) + _POSTGRESQL_FROM
        statement_prepared = prepared(
            "auth", sql.replace("%(tenant_id)s", "$1").replace("%(token_hash)s", "$2"), ("uuid", "text"))
        _AUTH = (statement, sql, statement_prepared, tuple(positions))
    return _AUTH


def authenticate(session, clear: str) -> Caller | None:
    """Resolve a bearer token to its live membership, scoping ``session`` to its tenant.

    One query: token, membership, user, tenant, the tenant's active plugin ids and the
    per-tenant facts its packages registered (:mod:`servq.core.auth.facts`), each handed
    to the package that registered it to keep on the session. On PostgreSQL, when ``session`` has no transaction yet
    (a request's), the query travels with the ``BEGIN`` and the RLS context: one round
    trip. Returns ``None`` for an unknown, revoked or expired token, or a deactivated
    user.
    """
    tenant_id = tenant_of(clear)
    if tenant_id is None:
        return None
    # Scope first, then one query: the RLS context is set once as the transaction
    # begins, and an unknown tenant simply finds no token.
    session.set_tenant(tenant_id)
    token_hash = hash_token(clear)
    statement, sql, statement_prepared, positions = _auth()
    if session.get_bind().dialect.name == "postgresql":
        rows = session.begin_with(statement_prepared, (tenant_id, token_hash))
        if rows is None:
            rows = driver_execute(session.connection(), sql,
                                  {"tenant_id": tenant_id, "token_hash": token_hash}).fetchall()
        row = rows[0] if rows else None
    else:
        row = session.connection().execute(
            statement, {"tenant_id": tenant_id, "token_hash": token_hash}).first()
    if row is None:
        session.set_tenant(None)
        return None
    (token_id, membership_id, expires_at, revoked_at, last_used_at, user_id, role,
     email, user_name, is_active, slug, tenant_name, industry, timezone, locale,
     revision, plugins) = row[:17]
    if revoked_at is not None or expires_at <= utcnow() or not is_active:
        session.set_tenant(None)
        return None
    remember_enabled_plugins(session, set(plugins.split(",")) if plugins else set())
    revision = revision or 0
    for fact, position in positions:
        fact.remember(session, tenant_id, row[position])
    return Caller(
        CallerTenant(tenant_id, slug, tenant_name, industry, timezone, locale, revision),
        CallerMembership(tenant_id, membership_id, user_id, role),
        CallerUser(user_id, email, user_name, is_active),
        TokenUse(tenant_id, token_id, membership_id, expires_at, revoked_at, last_used_at),
    )


def touch_token(session, token: TokenUse, when: datetime) -> None:
    """Record that ``token`` was used at ``when`` (one UPDATE, not committed)."""
    tk = Token.__table__
    session.connection().execute(
        update(tk).where(tk.c.tenant_id == token.tenant_id, tk.c.id == token.id)
        .values(last_used_at=when))


def revoke_tokens_of(session, membership_id: uuid.UUID, when: datetime | None = None) -> int:
    """Revoke every live token of a membership (role change, removal)."""
    result = session.execute(
        update(Token)
        .where(Token.membership_id == membership_id, Token.revoked_at.is_(None))
        .values(revoked_at=when or utcnow())
    )
    return result.rowcount or 0
