"""The app's database: engine, session factory and the per-request session."""

from __future__ import annotations

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy.orm import configure_mappers

from servq.core.db import WRITE_TRANSACTION, make_engine, make_sessionmaker
from servq.core.db.tenancy import TenantSession


#: HTTP methods that do not write (RFC 9110 "safe").
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_app(app: Flask) -> None:
    """Create the engine and session factory of ``app`` from ``DATABASE_URL``."""
    import servq.core.models  # noqa: F401  (every mapped class, before configuring them)

    # Mappers configured now rather than by the first query: the hot paths build
    # objects without their constructor (servq.core.records.pipeline.create_record, servq.core.records.ingest).
    configure_mappers()
    engine = make_engine(app.config["DATABASE_URL"], app.config.get("DATABASE_APP_ROLE"))
    app.extensions["servq.engine"] = engine
    app.extensions["servq.sessionmaker"] = make_sessionmaker(engine)
    if engine.dialect.name == "sqlite":
        # The same engine (pool, listeners) whose transactions begin IMMEDIATE.
        app.extensions["servq.write_engine"] = engine.execution_options(**{WRITE_TRANSACTION: True})
    app.teardown_appcontext(_close_session)


def new_session(app: Flask | None = None, tenant_id=None) -> TenantSession:
    """A new session of ``app`` (default: the current app), scoped to ``tenant_id``.

    With no tenant the session is a *system* session: it may read the global tables
    (tenants, users) and fails on any tenant-owned table.
    """
    app = app or current_app
    session = app.extensions["servq.sessionmaker"]()
    session.info["orm_filter"] = app.config.get("ORM_TENANT_FILTER", True)
    if tenant_id is not None:
        session.set_tenant(tenant_id)
    return session


def request_session() -> TenantSession:
    """The session of the current request (or CLI command), created on first use."""
    session = g.get("db")
    if session is None:
        session = g.db = new_session()
        if has_request_context() and request.method not in SAFE_METHODS:
            # A write request may compare an ETag and then write: on SQLite its
            # transaction holds the write lock from BEGIN, so write requests run one at
            # a time (PostgreSQL locks the row instead: servq.core.api.blueprint.lock_for_write).
            write_engine = current_app.extensions.get("servq.write_engine")
            if write_engine is not None:
                session.bind = write_engine
    return session


def _close_session(_exc) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
