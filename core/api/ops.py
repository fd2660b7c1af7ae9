"""What operators need of the HTTP service (docs/operations.md): health and readiness
probes, Prometheus metrics, a request id on every request, one access-log line per
request (JSON with ``SERVQ_LOG_FORMAT=json``), and CORS when origins are configured.

The probes and ``/metrics`` sit outside the API prefix and outside the OpenAPI document:
they are for load balancers, orchestrators and Prometheus, not for API clients.
"""

from __future__ import annotations

import hmac
import logging
import re
import sys
import time
import uuid
from functools import lru_cache

from flask import Blueprint, Flask, Response, current_app, g, has_request_context, request
from sqlalchemy import func, select, text

from servq.core import metrics

REQUEST_ID_HEADER = "X-Request-ID"
#: A client's request id is kept when it is 1-128 characters of these (a UUID, a trace
#: id, a load balancer's id); anything else is replaced, so that no log line or header
#: carries what a client smuggled in.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: Response headers a browser client may read when CORS is on.
CORS_EXPOSED_HEADERS = ["ETag", "Location", "X-Pagination", REQUEST_ID_HEADER, "RateLimit-Limit",
                        "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy", "Retry-After"]

access_log = logging.getLogger("servq.access")
blp = Blueprint("ops", __name__)


def init_app(app: Flask) -> None:
    """Request ids, metrics and the access log on every request; the probes, /metrics and
    CORS (when ``CORS_ORIGINS`` is set)."""
    if app.config.get("LOG_FORMAT"):
        configure_logging(app.config["LOG_FORMAT"])
    metrics.watch_pool(app.extensions["servq.engine"])
    # First of all before-request functions, so that every answer (a 422 for a NUL
    # character, a plugin's 404 gate) has the id; last of the after-request ones.
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.after_request_funcs.setdefault(None, []).insert(0, _finish)
    app.register_blueprint(blp)
    origins = [o.strip() for o in (app.config.get("CORS_ORIGINS") or "").split(",") if o.strip()]
    if origins:
        from flask_cors import CORS

        CORS(app, origins=origins, expose_headers=CORS_EXPOSED_HEADERS,
             allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match",
                            REQUEST_ID_HEADER],
             methods=sorted(_METHODS), supports_credentials=False, max_age=600)


# -- request id, metrics, access log ----------------------------------------------------------


def request_id() -> str | None:
    """The current request's id (``None`` outside a request)."""
    return g.get("request_id") if has_request_context() else None


def _begin() -> None:
    g.request_started = time.perf_counter()
    given = request.headers.get(REQUEST_ID_HEADER)
    g.request_id = given if given and _CLIENT_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _finish(response: Response) -> Response:
    rid = g.get("request_id")
    if rid is None:  # a response made before _begin ran (cannot happen in a request)
        return response
    response.headers[REQUEST_ID_HEADER] = rid
    limits = g.get("ratelimit_headers")
    if limits:
        for name, value in limits.items():
            response.headers.setdefault(name, value)
    elapsed = time.perf_counter() - g.request_started
    rule = request.url_rule
    endpoint = rule.rule if rule is not None else "<unmatched>"
    method = request.method if request.method in _METHODS else "other"
    status = response.status_code
    metrics.HTTP_REQUESTS.labels(method, endpoint, str(status)).inc()
    metrics.HTTP_LATENCY.labels(method, endpoint).observe(elapsed)
    if access_log.isEnabledFor(logging.INFO):
        ms = round(elapsed * 1000, 1)
        access_log.info("%s %s %s %.1fms from %s", request.method, request.path, status, ms,
                        request.remote_addr,
                        extra={"method": request.method, "path": request.path, "status": status,
                               "latency_ms": ms, "endpoint": endpoint, "remote_addr": request.remote_addr})
    return response


# -- logging ---------------------------------------------------------------------------------


class RequestFields(logging.Filter):
    """Adds the request id, tenant id and user id (when known) to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = g.get("request_id")
            tenant, user = g.get("tenant"), g.get("user")
            record.tenant_id = str(tenant.id) if tenant is not None else None
            record.user_id = str(user.id) if user is not None else None
        else:
            for name in ("request_id", "tenant_id", "user_id"):
                if not hasattr(record, name):
                    setattr(record, name, None)
        return True


class _StdHandler(logging.StreamHandler):
    """A stream handler writing to whatever ``sys.stderr`` (or ``sys.stdout``, when
    ``to_stdout``) is at the time."""

    to_stdout = False

    @property
    def stream(self):
        return sys.stdout if self.to_stdout else sys.stderr

    @stream.setter
    def stream(self, value):
        pass


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(f"{name}={value}" for name in ("request_id", "tenant_id", "user_id")
                         if (value := getattr(record, name, None)) is not None)
        return f"{line} [{extra}]" if extra else line


def configure_logging(fmt: str, *, stdout: bool = False) -> logging.Handler:
    """Log servq's lines (and every other library's warnings) to stderr (``stdout``: to
    stdout, as ``servq serve`` does), one line each: JSON objects when ``fmt`` is
    ``json``, plain text otherwise; each with the request id, tenant id and user id of the
    request it belongs to. Idempotent: the one handler is reused (its format and stream
    follow the last call)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StdHandler)), None)
    if handler is None:
        handler = _StdHandler()
        handler.addFilter(RequestFields())
        root.addHandler(handler)
    handler.to_stdout = stdout
    if fmt == "json":
        # orjson (a dependency already) encodes several times faster than json.
        from pythonjsonlogger.orjson import OrjsonFormatter

        handler.setFormatter(OrjsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(tenant_id)s %(user_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    servq = logging.getLogger("servq")
    if servq.level == logging.NOTSET:
        servq.setLevel(logging.INFO)
    return handler


# -- probes and metrics ----------------------------------------------------------------------


@blp.get("/healthz")
def healthz():
    """The process answers (liveness): nothing is checked."""
    return {"status": "ok"}


@blp.get("/readyz")
def readyz():
    """Ready for traffic: the database answers and is at the newest schema, and Redis
    (when configured) answers; 503 naming what is not."""
    checks: dict[str, str] = {}
    problems: list[str] = []
    engine = current_app.extensions["servq.engine"]
    try:
        with engine.connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as exc:
        checks["database"] = "unreachable"
        problems.append(f"database unreachable ({type(exc).__name__})")
    else:
        checks["database"] = "ok"
        head = _head_revision()
        if current == head:
            checks["schema"] = "ok"
        else:
            checks["schema"] = "behind"
            problems.append(f"database schema at {current or 'nothing'}, not at {head}: "
                            "run `servq db upgrade`")
    redis = current_app.extensions.get("servq.redis")
    if redis is not None:
        try:
            redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = "unreachable"
            problems.append(f"redis unreachable ({type(exc).__name__})")
    if problems:
        return {"status": "unavailable", "checks": checks, "reason": "; ".join(problems),
                "request_id": g.get("request_id")}, 503
    return {"status": "ok", "checks": checks}


def warm_up() -> None:
    """Read what /readyz compares with (the migrations' head) now, e.g. before a fork."""
    _head_revision()


@lru_cache(maxsize=1)
def _head_revision() -> str:
    from servq.core.db.migrate import head_revision

    return head_revision()


@blp.get("/metrics")
def metrics_view():
    """Prometheus' text exposition; 404 unless ``METRICS_TOKEN`` is set, then only with
    ``Authorization: Bearer <token>``."""
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        return _json_error(404, "Not Found", "Not found.")
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        response = _json_error(401, "Unauthorized", "The metrics token is required.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="servq-metrics"'
        return response
    _count_tenants()
    return Response(metrics.render(), mimetype=metrics.CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Content-Type": metrics.CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})


def _count_tenants() -> None:
    """The one tenant figure in the metrics: how many there are (no label names one)."""
    from servq.core.db.session import new_session
    from servq.core.models import Tenant

    try:
        with new_session() as session:
            metrics.TENANTS.set(session.scalar(select(func.count()).select_from(Tenant)) or 0)
    except Exception:  # the database is down: /readyz says so; the rest is still worth scraping
        logging.getLogger(__name__).warning("tenant count for /metrics failed", exc_info=True)


def _json_error(code: int, status: str, message: str) -> Response:
    response = current_app.json.response({"code": code, "status": status, "message": message,
                                          "request_id": g.get("request_id")})
    response.status_code = code
    return response
