"""The app's database: engine, session factory and the per-request session."""

from __future__ import annotations

from typing import Any, Callable

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import configure_mappers, sessionmaker

from servq.core.db.citus import watch as watch_citus
from servq.core.db.fast.driver import listen_for_deferred
from servq.core.db.tenancy import ORM_FILTER, TenantSession


SUPPORTED_URL_PREFIXES = ("sqlite", "postgresql")

#: Functions run on every new DB-API connection of an SQLite engine, after its pragmas:
#: what a package above the floor needs on each connection (KPIs' SQL functions),
#: registered by that package with :func:`on_sqlite_connect`, so the floor imports none.
_SQLITE_CONNECT: list[Callable[[Any], None]] = []


def on_sqlite_connect(fn: Callable[[Any], None]) -> Callable[[Any], None]:
    """Run ``fn(dbapi_connection)`` on every new SQLite connection (from then on; register
    at import, before an engine connects). Usable as a decorator; registering twice runs
    it once."""
    if fn not in _SQLITE_CONNECT:
        _SQLITE_CONNECT.append(fn)
    return fn

#: Execution option of a connection whose transactions write (a write request's): on
#: SQLite they begin with ``BEGIN IMMEDIATE``, so write transactions run one at a time.
WRITE_TRANSACTION = "servq_write_transaction"


def make_engine(url: str, app_role: str | None = None) -> Engine:
    """Create the engine for ``url``.

    SQLite: WAL, foreign keys on, a busy timeout. PostgreSQL: ``SET ROLE app_role`` on
    every new connection when given, so row-level security applies to the application
    even when it connects as the owner.
    """
    if not url.startswith(SUPPORTED_URL_PREFIXES):
        raise ValueError(f"servq runs on SQLite or PostgreSQL; DATABASE_URL names neither: "
                         f"{url.split(':', 1)[0]}")
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        # No pre-ping: it costs a round trip per request; a dropped connection is
        # detected on use, the pool is invalidated and the request answers 503.
        kwargs.update(pool_size=10, max_overflow=20, pool_recycle=900)
    engine = create_engine(url, **kwargs)

    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Let SQLAlchemy own transactions: pysqlite's own BEGIN handling breaks
            # SAVEPOINTs and "BEGIN IMMEDIATE".
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            for fn in _SQLITE_CONNECT:  # e.g. KPIs' tenant-local periods and percentiles
                fn(dbapi_conn)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # A write request's connection (WRITE_TRANSACTION, see
            # core.db.session.request_session) takes the database's write lock at BEGIN:
            # SQLite writers then wait for each other (busy timeout above) instead of
            # reading, comparing an ETag, and failing to upgrade to a writer (or both
            # winning). Reads keep the plain BEGIN and run alongside (WAL).
            if conn.get_execution_options().get(WRITE_TRANSACTION):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

    else:
        listen_for_deferred(engine)
        # A Citus coordinator: SET LOCAL reaches the workers (servq.core.db.citus); it
        # runs before the SET ROLE below, which Citus then propagates too.
        watch_citus(engine)

    if engine.dialect.name != "sqlite" and app_role:

        @event.listens_for(engine, "connect")
        def _set_role(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute(f'SET ROLE "{app_role}"')
            cur.close()
            dbapi_conn.commit()

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker:
    """A session factory bound to ``engine`` whose sessions carry tenancy (see tenancy)."""
    return sessionmaker(bind=engine, class_=TenantSession, expire_on_commit=False)


#: HTTP methods that do not write (RFC 9110 "safe").
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_app(app: Flask) -> None:
    """Create the engine and session factory of ``app`` from ``DATABASE_URL``.

    The mapped classes are imported first by the caller (:func:`servq.core.create_app`
    imports :mod:`servq.core.models`): they are configured here, all at once.
    """
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


def new_session(app: Flask | None = None, tenant_id=None, *, writer: bool = False) -> TenantSession:
    """A new session of ``app`` (default: the current app), scoped to ``tenant_id``.

    With no tenant the session is a *system* session: it may read the global tables
    (tenants, users) and fails on any tenant-owned table. ``writer``: on SQLite its
    transactions begin ``IMMEDIATE``, holding the write lock from the start (waiting
    for it up to the busy timeout); elsewhere it changes nothing.
    """
    app = app or current_app
    session = app.extensions["servq.sessionmaker"]()
    session.state.set(ORM_FILTER, app.config.get("ORM_TENANT_FILTER", True))
    if tenant_id is not None:
        session.set_tenant(tenant_id)
    if writer:
        write_engine = app.extensions.get("servq.write_engine")
        if write_engine is not None:
            session.bind = write_engine
    return session


#: ``g``'s mark of a safe request running again as a writer (:func:`rerun_as_writer`).
_RERUN_AS_WRITER = "servq_rerun_as_writer"


def request_session() -> TenantSession:
    """The session of the current request (or CLI command), created on first use."""
    session = g.get("db")
    if session is None:
        # A write request may compare an ETag and then write: on SQLite its transaction
        # holds the write lock from BEGIN, so write requests run one at a time
        # (PostgreSQL locks the row instead: servq.core.api.blueprint.lock_for_write).
        session = g.db = new_session(writer=has_request_context() and (
            request.method not in SAFE_METHODS or bool(g.get(_RERUN_AS_WRITER))))
    return session


def lost_write_lock(exc: BaseException) -> bool:
    """Whether ``exc`` (a SQLAlchemy error) is SQLite's ``SQLITE_BUSY``, any of its
    extended codes (``SQLITE_BUSY_SNAPSHOT`` …), on the current app, whose writers can
    wait for the lock instead (:func:`new_session`'s ``writer``).

    A transaction that began with a plain ``BEGIN`` and read is never let wait for the
    write lock: if a writer holds it, or committed since the read began, its first write
    fails at once, whatever the busy timeout. The work is then to be done again as a
    writer: a request that reads (:func:`rerun_as_writer`), a job
    (``core.jobs.run_job``).
    """
    code = getattr(getattr(exc, "orig", None), "sqlite_errorcode", None)
    return (code is not None and code & 0xFF == 5
            and current_app.extensions.get("servq.write_engine") is not None)


def rerun_as_writer(exc: BaseException) -> bool:
    """Whether the current request may run again, as a writer, after ``exc``.

    On SQLite a safe request (GET) reads in a plain ``BEGIN``, alongside writers (WAL).
    Some reads write on the way: a token's use (once a minute), the audit event of a
    read of personal data, standards adopted on first read. Such a write fails at once
    when another writer is about (:func:`lost_write_lock`), and the caller would get a
    503 whenever anyone else writes. Such a request runs once more: its session is
    closed (what it had not committed is rolled back) and the next one begins
    ``IMMEDIATE``, waiting its turn like a write request. A safe request changes nothing
    the client asked for, so running it again answers the same question. Elsewhere
    (PostgreSQL, a write request, a second failure, another error) the error stands:
    ``False``.
    """
    if (not has_request_context() or request.method not in SAFE_METHODS or g.get(_RERUN_AS_WRITER)
            or not lost_write_lock(exc)):
        return False
    _close_session(None)
    g.setdefault(_RERUN_AS_WRITER, True)
    return True


def _close_session(_exc) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
