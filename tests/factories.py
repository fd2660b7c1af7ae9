"""Test factories: tenants, users and tokens made straight in the database.

Every test runs inside a tenant: ``factory.tenant("acme")`` gives a tenant with an owner
and an authenticated API client (``t.api``); ``t.as_role("viewer")`` another member's.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from servq.core.auth.passwords import hash_password
from servq.core.auth.tokens import issue_token
from servq.core.db.session import new_session
from servq.core.models import Membership, Tenant, TenantPlugin, User

PASSWORD = "correct horse battery staple"
# Tests pin instants years apart (time_machine) after their fixtures made the tokens, and
# the suite also runs with the clock a year ahead or back (``--shift-clock``): a test
# token is valid at any instant a test may travel to. Expiry is tested with its own ttl.
TEST_TOKEN_TTL = timedelta(days=20 * 365)


@functools.lru_cache(maxsize=1)
def password_hash() -> str:
    return hash_password(PASSWORD)


class ApiClient:
    """A test client that sends a bearer token and JSON."""

    def __init__(self, client, token: str | None):
        self.client = client
        self.token = token

    def _headers(self, headers=None, etag=None):
        h = dict(headers or {})
        if self.token:
            h.setdefault("Authorization", f"Bearer {self.token}")
        if etag:
            h["If-Match"] = etag
        return h

    def get(self, url, headers=None, **kw):
        return self.client.get(url, headers=self._headers(headers), **kw)

    def post(self, url, json=None, headers=None, **kw):
        return self.client.post(url, json=json, headers=self._headers(headers), **kw)

    def put(self, url, json=None, headers=None, etag=None, **kw):
        return self.client.put(url, json=json, headers=self._headers(headers, etag), **kw)

    def patch(self, url, json=None, headers=None, etag=None, **kw):
        return self.client.patch(url, json=json, headers=self._headers(headers, etag), **kw)

    def delete(self, url, headers=None, etag=None, **kw):
        return self.client.delete(url, headers=self._headers(headers, etag), **kw)

    def update(self, url, json):
        """GET for the ETag, then PATCH with If-Match."""
        etag = self.get(url).headers["ETag"]
        return self.patch(url, json=json, etag=etag)

    def remove(self, url):
        """GET for the ETag, then DELETE with If-Match."""
        etag = self.get(url).headers["ETag"]
        return self.delete(url, etag=etag)


@dataclass
class TenantHandle:
    factory: "Factory"
    id: uuid.UUID
    slug: str
    owner_email: str
    api: ApiClient = field(init=False)

    def __post_init__(self):
        self.api = ApiClient(self.factory.client, self.factory.token(self.id, self.owner_email))

    def add_user(self, role: str, email: str | None = None) -> str:
        email = email or f"{role}-{uuid.uuid4().hex[:6]}@{self.slug}.test"
        self.factory.user(self.id, email, role)
        return email

    def as_role(self, role: str) -> ApiClient:
        """A client for a new member with ``role``."""
        email = self.add_user(role)
        return ApiClient(self.factory.client, self.factory.token(self.id, email))

    def enable(self, plugin_id: str, configuration: dict | None = None) -> None:
        with self.factory.session(self.id) as s:
            s.add(TenantPlugin(plugin_id=plugin_id, active=True, configuration=configuration or {}))
            s.commit()

    def session(self):
        return self.factory.session(self.id)


class Factory:
    def __init__(self, app, client):
        self.app = app
        self.client = client

    def session(self, tenant_id=None):
        return new_session(self.app, tenant_id)

    def tenant(self, slug: str, industry: str = "general", timezone: str = "Asia/Shanghai",
               plugins: tuple[str, ...] = ()) -> TenantHandle:
        with self.session() as s:
            tenant = Tenant(slug=slug, name=slug.title(), industry=industry, timezone=timezone, locale="en")
            s.add(tenant)
            s.commit()
            tenant_id = tenant.id
        email = f"owner@{slug}.test"
        self.user(tenant_id, email, "owner")
        handle = TenantHandle(self, tenant_id, slug, email)
        for plugin_id in plugins:
            handle.enable(plugin_id)
        return handle

    def user(self, tenant_id: uuid.UUID, email: str, role: str) -> uuid.UUID:
        with self.session() as s:
            from sqlalchemy import select

            user = s.scalar(select(User).where(User.email == email))
            if user is None:
                user = User(email=email, name=email.split("@")[0], password_hash=password_hash())
                s.add(user)
                s.flush()
            s.set_tenant(tenant_id)
            s.add(Membership(user_id=user.id, role=role))
            s.commit()
            return user.id

    def token(self, tenant_id: uuid.UUID, email: str, ttl: timedelta = TEST_TOKEN_TTL) -> str:
        from sqlalchemy import select

        with self.session() as s:
            user = s.scalar(select(User).where(User.email == email))
            s.set_tenant(tenant_id)
            membership = s.scalar(select(Membership).where(Membership.user_id == user.id))
            clear, _ = issue_token(s, membership, ttl)
            s.commit()
            return clear
