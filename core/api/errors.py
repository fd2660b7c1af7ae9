"""The API's answer to errors raised below it: database errors, JSON nested too deeply
and unexpected exceptions, in the JSON error shape ``{code, status, message, errors,
request_id}`` (``request_id``: the request's ``X-Request-ID``, core/api/ops.py)."""

from __future__ import annotations

import logging
from contextlib import contextmanager

from flask import Flask, g, has_request_context
from flask_smorest import abort
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger("servq.core.api")


@contextmanager
def refusals(*types: type[Exception]):
    """Answer a domain rule's refusal (an exception of ``types`` with ``status``,
    ``message`` and ``errors``: the body's fields and their messages, or ``None``) with
    that status, after undoing the request's unfinished transaction."""
    try:
        yield
    except types as exc:
        _rollback()
        if exc.errors is None:
            abort(exc.status, message=exc.message)
        abort(exc.status, message=exc.message, errors={"json": exc.errors})


def register_error_handlers(app: Flask) -> None:
    """Answer database errors, deep JSON and unexpected exceptions in the API's JSON error
    shape, rolling back the request's unfinished transaction first."""
    api = app.extensions["servq.api"]

    @app.errorhandler(IntegrityError)
    def _integrity(exc):
        _rollback()
        log.info("integrity error: %s", exc.orig)
        return api.handle_http_exception(_http(409, "This conflicts with existing data "
                                                    "(a duplicate code or a missing reference)."))

    @app.errorhandler(DataError)
    def _data(exc):
        # The database refused a value the schemas let through: a NUL character
        # (PostgreSQL text cannot hold one), a number out of range. The client sent it.
        _rollback()
        log.info("data error: %s", exc.orig)
        return api.handle_http_exception(_http(422, "A value cannot be stored: it contains a NUL "
                                                    "character or is out of range."))

    @app.errorhandler(OperationalError)
    def _operational(exc):
        _rollback()
        log.exception("database unavailable")
        return api.handle_http_exception(_http(503, "The database is busy or unavailable; retry."))

    @app.errorhandler(RecursionError)
    def _too_deep(exc):
        # Python's JSON parser gives up on bodies nested thousands of levels deep; no
        # servq document is nested more than a few levels, so the client sent it.
        _rollback()
        return api.handle_http_exception(_http(400, "The JSON body is nested too deeply."))

    @app.errorhandler(Exception)
    def _unexpected(exc):
        if isinstance(exc, HTTPException):
            return api.handle_http_exception(exc)
        _rollback()
        log.exception("unhandled error")
        return api.handle_http_exception(_http(500, "Internal error."))


def with_request_id(payload: dict) -> dict:
    """Add the current request's id to an error body (every JSON error has it)."""
    if has_request_context():
        payload["request_id"] = g.get("request_id")
    return payload


def _rollback() -> None:
    """Undo the request's unfinished transaction before answering an error."""
    session = g.get("db")
    if session is not None:
        session.rollback()


def _http(code: int, message: str) -> HTTPException:
    try:
        abort(code, message=message)
    except HTTPException as exc:
        return exc
    raise AssertionError("unreachable")
