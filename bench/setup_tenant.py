"""Make a benchmark tenant with an owner and a token in a migrated database."""

from __future__ import annotations

from datetime import timedelta

from servq.core.auth.tokens import issue_token
from servq.core.db.session import new_session
from servq.core.models import Membership, Tenant, User


def make_tenant_with_owner(app, slug: str) -> tuple:
    """Returns ``(tenant_id, owner user id, bearer token)``."""
    with new_session(app) as s:
        tenant = Tenant(slug=slug, name=slug, industry="general", timezone="UTC", locale="en")
        user = User(email=f"owner@{slug}.bench", name="owner")
        s.add_all([tenant, user])
        s.flush()
        s.set_tenant(tenant.id)
        membership = Membership(user_id=user.id, role="owner")
        s.add(membership)
        s.flush()
        token, _ = issue_token(s, membership, timedelta(days=1))
        s.commit()
        return tenant.id, user.id, token


def make_tenant(app, slug: str) -> tuple:
    """Returns ``(tenant_id, bearer token)``."""
    tenant_id, _user_id, token = make_tenant_with_owner(app, slug)
    return tenant_id, token
