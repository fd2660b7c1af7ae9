"""servq core: the platform every industry plugin builds on."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

__version__ = "0.1.0"


def create_app(test_config: dict | None = None) -> Flask:
    """Create a servq app configured from the environment (and ``test_config``).

    Nothing is read from the environment at import time: each call builds its own
    settings, database engine, plugin manager and job queue.
    """
    from core import api, database, jobs, plugins_ext, ratelimit
    from core.config import load_settings

    settings = load_settings(test_config)
    app = Flask("core", instance_path=settings["INSTANCE_PATH"])
    app.config.update(settings)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    database.init_app(app)
    plugins_ext.init_app(app)
    jobs.init_app(app)
    ratelimit.init_app(app)
    api.init_app(app)
    return app
