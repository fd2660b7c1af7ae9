"""servq's test fixtures as a pytest plugin, for plugins' own test suites (in tree or out).

Installed with servq (entry point ``pytest11``: ``servq = "servq.testing"``), so any
project that has servq installed gets these fixtures in its tests without a conftest:

- ``servq_database`` (session): a database migrated once per test session, emptied for
  each test. SQLite by default (a copy of a migrated template per test); PostgreSQL when
  ``TEST_DATABASE_URL`` is set (a database of its own per session, the app running as
  the non-owner role ``servq_app`` with row-level security on); rq on Redis when
  ``TEST_REDIS_URL`` is set, else jobs run inline.
- ``app_config``: the settings of the test app, a dict to change before ``app`` is
  made. Installed plugins load through their entry points (``LOAD_ENTRY_POINTS``, as in
  production); a plugin that is not installed is given as ``EXTRA_PLUGINS``::

      @pytest.fixture
      def app_config(app_config):
          app_config["EXTRA_PLUGINS"] = [("myplugin", myplugin)]
          return app_config

- ``app`` (a servq app on that database), ``client`` (its Flask test client);
- ``factory``: makes tenants, users and tokens straight in the database
  (:class:`Factory`);
- ``tenant``: the tenant ``acme`` with an owner; ``tenant.api`` is a client sending the
  owner's bearer token and JSON, ``tenant.enable("myplugin", {...})`` enables a plugin
  for it, ``tenant.as_role("viewer")`` is another member's client, ``tenant.session()``
  a database session bound to it;
- ``other_tenant``: ``globex``, to prove ``tenant``'s data is invisible (a 404) to it;
- ``token``: the bearer token of ``tenant``'s owner, for a client of your own;
- ``onboard_manifest``: ``onboard_manifest(manifest)`` onboards a tenant from a manifest
  (a dict: plugins, sites, staff, admins, calendar) as ``servq tenants onboard`` does and
  returns an :class:`Onboarded`: its owner's client (``.api``), a client per admin role
  (``.manager``, ``.inspector``, …), its sites' and staff's ids by code.

One fixture is used by every test (autouse): a test that runs ``servq serve`` (which
installs servq's log handler on stdout for the rest of its process) leaves no handler to
the next test, whose command output would otherwise carry log lines.

Everything is imported on first use: having servq installed costs a pytest run that does
not use these fixtures nothing. servq's own suite (``tests/conftest.py``) defines fixtures
of the same names, which take precedence there. See docs/plugins.md, "Testing a plugin".
"""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

PASSWORD = "correct horse battery staple"
#: Test tokens outlive any instant a test may travel to with time_machine.
TEST_TOKEN_TTL = timedelta(days=20 * 365)
#: The non-owner role the app runs as on PostgreSQL (row-level security applies to it).
APP_ROLE = "servq_app"


def _database_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL")


def _redis_url() -> str | None:
    return os.environ.get("TEST_REDIS_URL")


@functools.lru_cache(maxsize=1)
def password_hash() -> str:
    from servq.core.auth.passwords import hash_password

    return hash_password(PASSWORD)


class ApiClient:
    """A Flask test client that sends a bearer token and JSON."""

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
    """A tenant made by :class:`Factory`, with its owner's authenticated client."""

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
        """Enable a plugin for this tenant (stored as it is: use ``PUT /api/v1/plugins/<id>``
        to test the configuration schema)."""
        from servq.core.models import TenantPlugin

        with self.factory.session(self.id) as s:
            s.add(TenantPlugin(plugin_id=plugin_id, active=True, configuration=configuration or {}))
            s.commit()

    def session(self):
        return self.factory.session(self.id)


class Factory:
    """Tenants, users and tokens made straight in the database of ``app``."""

    def __init__(self, app, client):
        self.app = app
        self.client = client

    def session(self, tenant_id=None):
        from servq.core.db.session import new_session

        return new_session(self.app, tenant_id)

    def tenant(self, slug: str, industry: str = "general", timezone: str = "Asia/Shanghai",
               plugins: tuple[str, ...] = ()) -> TenantHandle:
        from servq.core.models import Tenant

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
        from sqlalchemy import select

        from servq.core.models import Membership, User

        with self.session() as s:
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

        from servq.core.auth.tokens import issue_token
        from servq.core.models import Membership, User

        with self.session() as s:
            user = s.scalar(select(User).where(User.email == email))
            s.set_tenant(tenant_id)
            membership = s.scalar(select(Membership).where(Membership.user_id == user.id))
            clear, _ = issue_token(s, membership, ttl)
            s.commit()
            return clear


# -- the fixtures -------------------------------------------------------------------------


def empty_all(engine) -> None:
    """Delete every row of every table as the owner, foreign-key triggers off."""
    from sqlalchemy import text

    from servq.core.db import Base

    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(text(f'DELETE FROM "{table.name}"'))


@pytest.fixture(autouse=True)
def _servq_logging_as_it_was():
    """``servq serve`` installs servq's log handler on the root logger (on stdout) for the
    rest of its process; a test that runs it must not leave it to the next test, whose
    command output would then carry log lines."""
    import logging

    root, servq = logging.getLogger(), logging.getLogger("servq")
    handlers, level = list(root.handlers), servq.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    servq.setLevel(level)


@pytest.fixture(scope="session")
def servq_database(tmp_path_factory):
    """A database migrated once for the session: ``{"kind", "url" | "template", ...}``."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from servq.core.db.migrate import upgrade

    url = _database_url()
    if url and url.startswith("postgresql"):
        admin_url = make_url(url)
        name = f"servq_test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        own = admin_url.set(database=name)
        engine = create_engine(own)
        upgrade(engine, app_role=APP_ROLE)
        yield {"kind": "postgresql", "url": own.render_as_string(hide_password=False), "engine": engine}
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        template = tmp_path_factory.mktemp("servq-db") / "template.db"
        engine = create_engine(f"sqlite:///{template}")
        upgrade(engine)
        engine.dispose()
        yield {"kind": "sqlite", "template": template}


@pytest.fixture
def app_config(servq_database, tmp_path):
    """Settings of the test app (a dict); change them before ``app`` is made."""
    config = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "test",
        "LOAD_ENTRY_POINTS": True,
        "REDIS_URL": _redis_url(),
        "LOGIN_RATE_LIMIT": "1000 per minute",
    }
    if servq_database["kind"] == "postgresql":
        empty_all(servq_database["engine"])
        config.update(DATABASE_URL=servq_database["url"], DATABASE_APP_ROLE=APP_ROLE)
    else:
        path = tmp_path / "servq.db"
        shutil.copy(servq_database["template"], path)
        config["DATABASE_URL"] = f"sqlite:///{path}"
    return config


@pytest.fixture
def app(app_config):
    """A servq app made from ``app_config``."""
    from servq.core import create_app

    app = create_app(app_config)
    if app_config.get("REDIS_URL"):
        app.extensions["servq.redis"].flushdb()
    yield app
    app.extensions["servq.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def factory(app, client):
    return Factory(app, client)


@pytest.fixture
def tenant(factory) -> TenantHandle:
    """The tenant ``acme`` with an owner; ``tenant.api`` is the owner's client."""
    return factory.tenant("acme")


@pytest.fixture
def other_tenant(factory) -> TenantHandle:
    """A second tenant, ``globex``: what ``tenant`` makes must be a 404 to it."""
    return factory.tenant("globex")


@pytest.fixture
def token(tenant) -> str:
    """The bearer token of ``tenant``'s owner."""
    return tenant.api.token


@dataclass
class Onboarded:
    """A tenant onboarded from a manifest for a test (:func:`onboard_manifest`).

    ``api`` is its owner's client; ``clients[role]`` (also ``.manager``, ``.inspector``, …
    for every role the manifest's admins have) a client of the first admin with that role,
    whose email is ``emails[role]``; ``sites`` and ``staff`` map the manifest's codes to
    ids (text); ``site_id`` is the id of its only site.
    """

    handle: TenantHandle
    sites: dict[str, str]
    staff: dict[str, str]
    clients: dict[str, ApiClient] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> uuid.UUID:
        return self.handle.id

    @property
    def slug(self) -> str:
        return self.handle.slug

    @property
    def api(self) -> ApiClient:
        """The owner's client."""
        return self.handle.api

    @property
    def site_id(self) -> str:
        """The id of the tenant's only site."""
        if len(self.sites) != 1:
            raise AttributeError(f"the tenant has {len(self.sites)} sites: use sites[code]")
        return next(iter(self.sites.values()))

    def session(self):
        """A database session bound to the tenant."""
        return self.handle.session()

    def __getattr__(self, name: str) -> ApiClient:
        clients = self.__dict__.get("clients") or {}
        if name in clients:
            return clients[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or role client {name!r}")


@pytest.fixture
def onboard_manifest(app, factory):
    """``onboard_manifest(manifest)`` onboards a tenant from a manifest (a dict, as
    ``servq tenants onboard`` reads it from TOML: its plugins, sites, staff, admins,
    calendar…) the way a real one is, and returns an :class:`Onboarded` with a client per
    admin role. A plugin's tests make their tenant this way from the plugin's own
    manifest."""
    from sqlalchemy import select

    from servq.core.models import Site, Staff
    from servq.tenants.onboarding import onboard

    def make(manifest: dict) -> Onboarded:
        report = onboard(app, manifest)
        admins = list(manifest.get("admins") or ())
        owner = next((admin["email"] for admin in admins if admin.get("role") == "owner"), None)
        handle = TenantHandle(factory, report.tenant_id, manifest["slug"], owner)
        with factory.session(report.tenant_id) as session:
            sites = {code: str(i) for code, i in session.execute(select(Site.code, Site.id))}
            staff = {code: str(i) for code, i in session.execute(select(Staff.code, Staff.id))}
        onboarded = Onboarded(handle, sites, staff)
        for admin in admins:
            role = admin.get("role")
            if role != "owner" and role not in onboarded.clients:
                onboarded.emails[role] = admin["email"]
                onboarded.clients[role] = ApiClient(factory.client, factory.token(report.tenant_id, admin["email"]))
        return onboarded

    return make


__all__ = ["ApiClient", "Factory", "Onboarded", "TenantHandle", "PASSWORD", "TEST_TOKEN_TTL", "app", "app_config",
           "client", "factory", "onboard_manifest", "other_tenant", "servq_database", "tenant", "token"]
