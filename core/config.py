"""Settings, read from the environment when the app is created (never at import time)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

#: Core's own plugins: ``{plugin id: module}``. The ids are stored data
#: (``standard_versions.baseline``) and API output (``/kinds``, ``/kpis/metrics``), so
#: they never change; moving a module changes only its value here.
CORE_PLUGINS: dict[str, str] = {
    "core.kinds.observation": "servq.core.records.kinds.observation",
    "core.kinds.inspection": "servq.core.records.kinds.inspection",
    "core.kinds.complaint": "servq.core.records.kinds.complaint",
    "core.kinds.exports": "servq.tenants.export_job",
    "core.notify": "servq.core.notify.delivery",
    "core.deadlines": "servq.core.deadlines.watch",
    "core.standards.plugin": "servq.core.records.plugin",
    "core.surveys.plugin": "servq.core.surveys.plugin",
    "core.kpis.plugin": "servq.core.kpis.plugin",
    "core.reports.plugin": "servq.core.reports.plugin",
}

#: Plugins loaded into every app. Core's own behaviour is registered through the same
#: hooks as any industry plugin; the built-in industry plugins follow. Names are modules,
#: imported by the plugin manager, so core never imports an industry plugin itself.
DEFAULT_PLUGINS: tuple[str, ...] = tuple(CORE_PLUGINS.values())

#: Built-in industry plugins shipped in the ``plugins`` package.
BUILTIN_INDUSTRY_PLUGINS: tuple[str, ...] = ("servq.plugins.property", "servq.plugins.hotel",
                                             "servq.plugins.courier", "servq.plugins.aftersales")


def default_instance_path() -> Path:
    """The instance folder: ``SERVQ_INSTANCE_PATH`` or ``./instance``."""
    return Path(os.environ.get("SERVQ_INSTANCE_PATH") or Path.cwd() / "instance").resolve()


def load_settings(overrides: dict | None = None) -> dict:
    """Build the app's settings from the environment, then apply ``overrides``.

    Called by :func:`core.create_app`; nothing here runs at import time, so tests and
    several apps in one process each get their own settings.
    """
    env = os.environ
    overrides = dict(overrides or {})
    instance = Path(overrides.get("INSTANCE_PATH") or default_instance_path())
    settings = {
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": env.get("DATABASE_URL") or f"sqlite:///{instance / 'servq.db'}",
        # Role the application switches to on PostgreSQL so row-level security applies
        # even when DATABASE_URL names the owner (see README, "PostgreSQL").
        "DATABASE_APP_ROLE": env.get("SERVQ_DB_ROLE") or None,
        "REDIS_URL": env.get("REDIS_URL") or None,
        "SECRET_KEY": env.get("SECRET_KEY") or None,
        "PLUGINS": DEFAULT_PLUGINS + BUILTIN_INDUSTRY_PLUGINS,
        "LOAD_ENTRY_POINTS": True,
        "TOKEN_TTL_SECONDS": 30 * 24 * 3600,
        "LOGIN_RATE_LIMIT": env.get("SERVQ_LOGIN_RATE_LIMIT") or "10 per minute",
        # Public survey links: per client address and per link token (core/api/public.py).
        "SURVEY_RATE_LIMIT": env.get("SERVQ_SURVEY_RATE_LIMIT") or "60 per minute",
        "SURVEY_LINK_RATE_LIMIT": env.get("SERVQ_SURVEY_LINK_RATE_LIMIT") or "20 per minute",
        # Where customers answer; "{token}" is replaced by the link token.
        "SURVEY_LINK_URL": env.get("SERVQ_SURVEY_LINK_URL") or "/api/v1/public/surveys/{token}",
        "ORM_TENANT_FILTER": True,
        "MAX_PAGE_SIZE": 500,
        "JOB_QUEUE": env.get("SERVQ_QUEUE") or "servq",
        # rq workers (core/jobs, README "Production"): a running job's worker heartbeats
        # every JOB_HEARTBEAT_INTERVAL s; a job whose worker died is abandoned
        # JOB_ABANDONED_AFTER s after its last heartbeat and retried once a worker's
        # registry cleanup (every JOB_MAINTENANCE_INTERVAL s) finds it.
        "JOB_HEARTBEAT_INTERVAL": int(env.get("SERVQ_JOB_HEARTBEAT_INTERVAL") or 15),
        "JOB_ABANDONED_AFTER": int(env.get("SERVQ_JOB_ABANDONED_AFTER") or 45),
        "JOB_MAINTENANCE_INTERVAL": int(env.get("SERVQ_JOB_MAINTENANCE_INTERVAL") or 30),
        # A weekly report of a week with more records than this runs as a job (docs/reports.md).
        "REPORT_INLINE_MAX_RECORDS": int(env.get("SERVQ_REPORT_INLINE_MAX_RECORDS") or 20000),
        # Webhook deliveries (core/notify/delivery.py, docs/webhooks.md): seconds before each retry
        # (attempts = len + 1) and the HTTP timeout of one attempt.
        "WEBHOOK_RETRY_DELAYS": env.get("SERVQ_WEBHOOK_RETRY_DELAYS") or "30,120,600,3600,21600,21600,21600",
        "WEBHOOK_TIMEOUT": env.get("SERVQ_WEBHOOK_TIMEOUT") or "10",
        # Webhooks to loopback, private and link-local addresses (cloud metadata): refused
        # unless this is on, e.g. for a local demo receiver (a request-forgery hole otherwise).
        "WEBHOOK_ALLOW_PRIVATE": env.get("SERVQ_WEBHOOK_ALLOW_PRIVATE") or "0",
        # Operations (docs/operations.md, core/api/ops.py). LOG_FORMAT "json" or "plain":
        # servq sets up logging to stderr (servq serve and worker always do, plain by
        # default); unset, an app leaves the process's logging alone.
        "LOG_FORMAT": (env.get("SERVQ_LOG_FORMAT") or "").strip().lower() or None,
        # /metrics is served only when this is set, to callers sending it as a bearer token.
        "METRICS_TOKEN": env.get("SERVQ_METRICS_TOKEN") or None,
        # Browser origins allowed by CORS, comma-separated ("https://a.example,https://b.example");
        # unset: no CORS headers at all.
        "CORS_ORIGINS": env.get("SERVQ_CORS_ORIGINS") or "",
    }
    settings.update(overrides)
    if not settings["SECRET_KEY"]:
        # A random key is fine for the embedded default; production sets SECRET_KEY.
        settings["SECRET_KEY"] = secrets.token_hex(32)
    return settings
