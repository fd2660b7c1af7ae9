"""Rate limits (the ``limits`` library): Redis storage when ``REDIS_URL`` is set, memory
otherwise, so several app processes share one budget in production."""

from __future__ import annotations

import time

from flask import Flask, current_app
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
            abort(429, message=f"Too many attempts; retry in {retry} seconds.",
                  headers={"Retry-After": str(retry)})
    for key in keys:
        limiter.hit(item, "servq", key)


def reset(app: Flask) -> None:
    """Forget every counter (tests)."""
    app.extensions["servq.ratelimit"].storage.reset()
