"""Rate limits (the ``limits`` library): Redis storage when ``REDIS_URL`` is set, memory
otherwise, so several app processes share one budget in production.

Without Redis each worker process counts on its own: with ``servq serve --workers N`` a
client may get up to N times the limit before a 429 (docs/operations.md). Every limited
request answers the IETF draft headers ``RateLimit-Limit``, ``RateLimit-Remaining``,
``RateLimit-Reset`` (seconds) and ``RateLimit-Policy`` of its tightest key, a 429 also
``Retry-After``."""

from __future__ import annotations

import time

from flask import Flask, current_app, g, has_request_context
from flask_smorest import abort
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter


def init_app(app: Flask) -> None:
    uri = app.config.get("REDIS_URL") or "memory://"
    storage = storage_from_string(uri)
    app.extensions["servq.ratelimit"] = MovingWindowRateLimiter(storage)


def hit(limit: str, *keys: str) -> None:
    """Count one attempt against ``limit`` (e.g. ``"10 per minute"``) for each key; 429
    with ``Retry-After`` when one is exhausted (the attempt is then not counted)."""
    limiter: MovingWindowRateLimiter = current_app.extensions["servq.ratelimit"]
    item = parse(limit)
    for key in keys:
        if not limiter.test(item, "servq", key):
            reset = limiter.get_window_stats(item, "servq", key).reset_time
            retry = max(1, int(reset - time.time()))
            headers = _headers(item, 0, retry)
            headers["Retry-After"] = str(retry)
            abort(429, message=f"Too many attempts; retry in {retry} seconds.", headers=headers)
    tightest = None
    for key in keys:
        limiter.hit(item, "servq", key)
        stats = limiter.get_window_stats(item, "servq", key)
        if tightest is None or stats.remaining < tightest.remaining:
            tightest = stats
    if tightest is not None and has_request_context():
        # Added to the response by core.api.ops (the tightest of every limit hit so far).
        reset = max(1, int(tightest.reset_time - time.time()))
        held = g.get("ratelimit_headers")
        if held is None or tightest.remaining < int(held["RateLimit-Remaining"]):
            g.ratelimit_headers = _headers(item, tightest.remaining, reset)


def _headers(item, remaining: int, reset: int) -> dict[str, str]:
    """The draft's headers for ``item`` (draft-ietf-httpapi-ratelimit-headers)."""
    return {"RateLimit-Limit": str(item.amount), "RateLimit-Remaining": str(max(0, remaining)),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{item.amount};w={item.get_expiry()}"}


def reset(app: Flask) -> None:
    """Forget every counter (tests)."""
    app.extensions["servq.ratelimit"].storage.reset()
