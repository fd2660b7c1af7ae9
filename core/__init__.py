"""servq core: the platform every industry plugin builds on."""

from __future__ import annotations

from types import FunctionType

from flask import Flask
from sqlalchemy.exc import OperationalError

from servq import __version__  # noqa: F401  (one version: the distribution's)


class ServqFlask(Flask):
    """Flask, remembering which functions are plain ``def``.

    Flask asks ``inspect.iscoroutinefunction`` of the view and of every request hook on
    every request (``ensure_sync``, eight times for creating a record); the answer for a
    function never changes, so it is kept. Coroutine functions are still wrapped. A read
    that lost SQLite's write lock while writing on the way runs once more, as a writer
    (:meth:`dispatch_request`).
    """

    def ensure_sync(self, func):
        # Keyed by the function itself: a MethodView's dispatch_request is a new bound
        # method on every request, its __func__ is not.
        code = getattr(func, "__func__", func)
        if type(code) is not FunctionType:
            return super().ensure_sync(func)
        plain = self.__dict__.setdefault("_servq_plain_functions", set())
        if code in plain:
            return func
        wrapped = super().ensure_sync(func)
        if wrapped is func:
            plain.add(code)
        return wrapped

    def dispatch_request(self):
        # A read that had to write on the way and lost SQLite's write lock runs once more,
        # as a writer (core.api.context.rerun_read_as_writer); any other error stands.
        try:
            return super().dispatch_request()
        except OperationalError as exc:
            from servq.core.api.context import rerun_read_as_writer

            if not rerun_read_as_writer(exc):
                raise
        return super().dispatch_request()


def create_app(test_config: dict | None = None) -> Flask:
    """Create a servq app configured from the environment (and ``test_config``).

    Nothing is read from the environment at import time: each call builds its own
    settings, database engine, plugin manager and job queue.
    """
    from servq.core import jobs, ratelimit
    from servq.core import models  # noqa: F401  (every mapped class, before the engine)
    from servq.core.api import app as api
    from servq.core.db import session as database
    from servq.core.kpis import sql  # noqa: F401  (its SQLite functions, on each connection)
    # Registered by their packages at import: the per-tenant facts of the authentication
    # query (core.auth.facts), before any request builds it.
    from servq.core.standards import store  # noqa: F401
    from servq.core.surveys import invitations  # noqa: F401
    from servq.core.plugins import app as plugins_ext
    from servq.core.config import load_settings

    settings = load_settings(test_config)
    app = ServqFlask(__name__, instance_path=settings["INSTANCE_PATH"])
    app.config.update(settings)
    # The instance folder is not created here: making an app must not leave a folder (and
    # then an empty database) wherever a command happens to run. `servq serve` and
    # `servq db upgrade` create the embedded default's folder (core.db.migrate.upgrade).

    database.init_app(app)
    plugins_ext.init_app(app)
    from servq.core.deadlines import stalled  # the stall rules' limits and roles, checked once
    stalled.check_kinds(plugins_ext.get_plugins(app).kinds.values())
    from servq.core.notify.outbox import event_types  # the plugins' event types, checked once
    event_types(app)
    jobs.init_app(app)
    ratelimit.init_app(app)
    api.init_app(app)
    return app
