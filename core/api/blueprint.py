"""The blueprint class of servq's API (and of plugins that want the same speed).

Also where every ``If-Match`` write is made atomic (:func:`lock_for_write`) and where a
``201 Created`` gets its ``ETag`` and ``Location`` (:meth:`Blueprint.created`).
"""

from __future__ import annotations

from functools import wraps

import flask_smorest
from flask_smorest import abort
from flask import request
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.orm import object_session

from servq.core.api.jsonio import ArgumentsParser

CREATED_HEADERS_DOC = {
    "Location": {"description": "The URL of the new object.", "schema": {"type": "string"}},
    "ETag": {"description": "The ETag a GET of the new object returns: send it as If-Match "
                            "to change the object without reading it first.",
             "schema": {"type": "string"}},
}


def lock_for_write(obj) -> None:
    """Hold the database row of ``obj`` (a persistent ORM object) for the rest of the
    transaction and reload it, before its ETag is compared with ``If-Match``: of
    concurrent writers that read the same ETag, one takes the row, writes and commits;
    the next one then sees the new row and its stale ETag is a 412. Without the lock the
    comparison and the write are two steps, and every writer wins (the last silently).

    PostgreSQL: ``SELECT … FOR UPDATE OF <table>`` by the full primary key
    ``(tenant_id, id)`` (one shard on Citus), ``populate_existing`` so the object holds
    what the lock holder committed (READ COMMITTED reads the newest row version after
    the wait). SQLite locks the database, not rows: a write request's transaction starts
    with ``BEGIN IMMEDIATE`` (:func:`core.db.session.request_session`), so write requests
    run one after the other and there is nothing to add here.

    A view built from several rows (a member and its user, a survey and its triggers)
    locks its main row, then is built: every writer of that resource locks the same row.
    """
    session = object_session(obj)
    if session is None or session.get_bind().dialect.name != "postgresql":
        return
    mapper = sa_inspect(obj).mapper
    cls = mapper.class_
    key = mapper.primary_key_from_instance(obj)
    stmt = (select(cls).where(*(column == value for column, value in zip(mapper.primary_key, key)))
            .with_for_update(of=cls).execution_options(populate_existing=True))
    if session.execute(stmt).first() is None:
        # Deleted by the writer that held the lock: the ETag matches nothing now.
        abort(412, message="This object was deleted since you read it.")


def _is_orm_object(value) -> bool:
    try:
        return sa_inspect(value).mapper is not None
    except Exception:  # noqa: BLE001 - not mapped (a dict view)
        return False


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's blueprint whose ``@blp.arguments`` load plainly valid JSON bodies
    with :mod:`core.db.fast.loads` (same result as marshmallow, errors still marshmallow's):
    see :class:`core.api.jsonio.ArgumentsParser`.

    :meth:`check_etag` given an ORM object locks its row first (:func:`lock_for_write`),
    so the comparison and the write that follows are atomic; a route that compares the
    ETag of a view calls :func:`lock_for_write` on the view's row before building it.
    """

    ARGUMENTS_PARSER = ArgumentsParser()

    def check_etag(self, etag_data, etag_schema=None):
        """flask-smorest's ``check_etag`` (412 when ``If-Match`` is stale), the row of an
        ORM object locked and reloaded first (:func:`lock_for_write`)."""
        if _is_orm_object(etag_data):
            lock_for_write(etag_data)
        super().check_etag(etag_data, etag_schema)

    def check_if_match(self, obj, etag_data, *, what: str, required: bool = True,
                       stale: str | None = None) -> None:
        """``If-Match`` for a write flask-smorest does not check itself (a POST that moves
        something on, a PUT that creates on first use): ``428`` without it when
        ``required``, else the row of ``obj`` locked and reloaded (:func:`lock_for_write`)
        and ``412`` when the ETag sent is not the current one. Without ``If-Match`` and not
        ``required``, the row is still locked, so concurrent writers run one after the other.

        :param etag_data: the schema (class or instance) that dumps ``obj`` as a GET does,
            or a callable returning what the GET's ETag is computed from (called after the
            lock, so it sees the row as it is now).
        :param what: the object as the messages name it (``"the dispute"``).
        :param stale: the 412's message (default: ``"<What> changed since you read it; GET it again."``).
        """
        if not request.if_match:
            if required:
                owner = f"{what}'" if what.endswith("s") else f"{what}'s"
                abort(428, message=f"Send If-Match with {owner} ETag (GET it first).")
            lock_for_write(obj)
            return
        lock_for_write(obj)
        if callable(etag_data) and not isinstance(etag_data, type):
            data = etag_data()
        else:
            schema = etag_data() if isinstance(etag_data, type) else etag_data
            data = schema.dump(obj)
        if self._generate_etag(data) not in request.if_match:
            abort(412, message=stale or f"{what[0].upper()}{what[1:]} changed since you read it; GET it again.")

    def created(self, schema, *, etag_schema=None, key: str = "id", description: str | None = None):
        """Decorator of a POST that creates an object, in place of ``@blp.response(201,
        schema)``: the answer carries ``Location`` (the request's URL + ``/<key>`` of the
        new object) and the ``ETag`` a GET of the object returns, so a client may change
        what it just made without reading it first. ``etag_schema``: the GET's schema when
        the 201 body differs from it (a secret shown once)."""

        def decorator(func):
            @wraps(func)
            def view(*args, **kwargs):
                result = func(*args, **kwargs)
                status, headers = 201, {}
                if isinstance(result, tuple):
                    result, status, *rest = result
                    headers = dict(rest[0]) if rest else {}
                if etag_schema is not None:
                    self.set_etag(result, etag_schema)
                value = result[key] if isinstance(result, dict) else getattr(result, key)
                headers.setdefault("Location", f"{request.base_url.rstrip('/')}/{value}")
                return result, status, headers

            return self.etag(self.response(201, schema, description=description,
                                           headers=CREATED_HEADERS_DOC)(view))

        return decorator
