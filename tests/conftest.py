"""Fixtures: a fresh database per test (SQLite by default; PostgreSQL and Redis when
``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` are set), the app, a client and factories."""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import datetime, timezone

import pytest
import time_machine
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from servq.core import create_app
from servq.core.db import Base, tenant_tables
from servq.core.db.migrate import upgrade

from tests.factories import Factory

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
APP_ROLE = "servq_app"

ON_POSTGRES = bool(TEST_DATABASE_URL and TEST_DATABASE_URL.startswith("postgresql"))


def _on_citus() -> bool:
    """Whether ``TEST_DATABASE_URL`` is a Citus coordinator's database (the extension)."""
    engine = create_engine(TEST_DATABASE_URL)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT 1 FROM pg_extension WHERE extname = 'citus'")).scalar())
    finally:
        engine.dispose()


#: The suite runs on a Citus coordinator (docs/citus.md).
ON_CITUS = ON_POSTGRES and _on_citus()


def pytest_report_header(config):
    days = config.getoption("--shift-clock")
    return [f"servq database: {('Citus' if ON_CITUS else 'PostgreSQL') + ' (app role, RLS on)' if ON_POSTGRES else 'SQLite'}; "
            f"jobs: {'rq on Redis' if TEST_REDIS_URL else 'inline'}; "
            f"clock: {f'shifted {days:+d} days, now {datetime.now(timezone.utc):%Y-%m-%d}' if days else 'real'}"]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("postgres") and not ON_POSTGRES:
            item.add_marker(pytest.mark.skip(reason="needs TEST_DATABASE_URL (PostgreSQL)"))
        if item.get_closest_marker("plain_postgres") and ON_CITUS:
            item.add_marker(pytest.mark.skip(reason="a plain-PostgreSQL fast path; Citus runs its own session mode"))
        if item.get_closest_marker("redis") and not TEST_REDIS_URL:
            item.add_marker(pytest.mark.skip(reason="needs TEST_REDIS_URL"))


@pytest.fixture(scope="session")
def database(tmp_path_factory):
    """A migrated database for the session: ``{"url", "kind", "template"}``."""
    if ON_CITUS:
        # A Citus coordinator: a new database would need the extension and the workers
        # added again, so the session uses the cluster's database, emptied first.
        url = make_url(TEST_DATABASE_URL)
        engine = create_engine(url)
        with engine.begin() as conn:
            for (name,) in conn.execute(text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).all():
                conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
        upgrade(engine, app_role=APP_ROLE)
        yield {"url": url.render_as_string(hide_password=False), "kind": "postgresql",
               "engine": engine, "citus": True}
        engine.dispose()
    elif ON_POSTGRES:
        admin_url = make_url(TEST_DATABASE_URL)
        name = f"servq_test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.set(database=name)
        engine = create_engine(url)
        try:
            upgrade(engine, app_role=APP_ROLE)
        except Exception:
            # Another test session may be creating the shared role at the same moment.
            upgrade(engine, app_role=APP_ROLE)
        yield {"url": url.render_as_string(hide_password=False), "kind": "postgresql", "engine": engine}
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        template = tmp_path_factory.mktemp("db") / "template.db"
        engine = create_engine(f"sqlite:///{template}")
        upgrade(engine)
        engine.dispose()
        yield {"url": None, "kind": "sqlite", "template": template}


def _empty_all(engine) -> None:
    """Delete every row of every table, as the owner (a superuser: no row-level
    security), with foreign-key triggers off so the order does not matter.

    ``DELETE`` rather than ``TRUNCATE``: a test leaves a few rows in a few tables, and
    TRUNCATE's fixed cost per table (new files for the table and its indexes) made it
    the slowest step of most PostgreSQL tests."""
    with engine.begin() as conn:
        if ON_CITUS:
            # Citus: one shard after another (a reference table may not be changed after
            # parallel writes to the shards in one transaction), children before parents
            # (the replication role does not reach the workers).
            conn.execute(text("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"))
        else:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(text(f'DELETE FROM "{table.name}"'))


# "Today" for tests whose rows are dated in 2026 and must lie in the past when they are
# entered and evaluated (deadlines that ran out, weeks that ended). Such a module says
# ``pytestmark = pytest.mark.usefixtures("present")``: its tenants, tokens and rows are then
# made on this day whatever the real date is (``--shift-clock`` included).
PRESENT = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)


@pytest.fixture
def present():
    """Today is ``PRESENT`` (the clock still ticks) for the whole test."""
    with time_machine.travel(PRESENT, tick=True):
        yield PRESENT


@pytest.fixture
def app_config(database, tmp_path, request):
    """Settings of the test app; tests may change them before ``app`` is created.

    Tests marked ``sample_plugin`` run with ``tests/sample_plugin.py`` loaded as the
    plugin ``sample``, its record of hook calls empty at the start and cleared after.
    """
    config = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "test",
        "LOAD_ENTRY_POINTS": False,
        "REDIS_URL": TEST_REDIS_URL,
        "LOGIN_RATE_LIMIT": "1000 per minute",
        # The webhook tests deliver to receivers on 127.0.0.1 (tests/test_webhook_addresses.py
        # turns this off to test the refusal).
        "WEBHOOK_ALLOW_PRIVATE": True,
    }
    if database["kind"] == "postgresql":
        _empty_all(database["engine"])
        config.update(DATABASE_URL=database["url"], DATABASE_APP_ROLE=APP_ROLE)
    else:
        path = tmp_path / "servq.db"
        shutil.copy(database["template"], path)
        config["DATABASE_URL"] = f"sqlite:///{path}"
    if request.node.get_closest_marker("sample_plugin"):
        from tests import sample_plugin

        config["EXTRA_PLUGINS"] = [("sample", sample_plugin)]
        sample_plugin.CALLS.clear()
        request.addfinalizer(sample_plugin.CALLS.clear)
    return config


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    if TEST_REDIS_URL:
        app.extensions["servq.redis"].flushdb()
    yield app
    app.extensions["servq.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def factory(app, client):
    """Makes tenants, users and tokens straight in the database (see tests/factories.py)."""
    return Factory(app, client)


@pytest.fixture
def acme(factory):
    """Tenant ``acme`` with an owner; ``acme.api`` is a client authenticated as the owner."""
    return factory.tenant("acme")


@pytest.fixture
def globex(factory):
    """A second tenant, to prove the first one's data is invisible to it."""
    return factory.tenant("globex")


__all__ = ["tenant_tables"]



