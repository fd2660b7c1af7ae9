"""THE FAST LANE: the storage floor's speed tricks, behind this one door.

Every module outside :mod:`servq.core.db` imports them from here (``from
servq.core.db.fast import insert_rows``), never from the modules behind it (``driver``,
``insert``, ``bulk``, ``arrays``, ``writer``, ``loads``); an import-linter contract in ``pyproject.toml`` holds
them to it. Each trick gives the same result as the plain path it replaces, and falls
back to that path whenever it cannot be sure to: the figures below are what each one
measured when it went in (``docs/performance.md``, ``docs/ingestion.md``).

Request path (one record created over HTTP on PostgreSQL: two round trips, median
``ratio`` 0.625 against a bare Flask + SQLAlchemy app in ``bench/records_http.py``):

- :func:`begin_with` (``TenantSession.begin_with``, :func:`driver_begin_with`): the
  transaction's ``BEGIN``, its RLS context and the authentication query in **one**
  round trip, the query prepared on the server once per connection. Gain: one round
  trip per request, about 0.1 ms of client CPU (three round trips for a record instead
  of four). Fallback: ``None`` when the session is already in a transaction or not on
  PostgreSQL (SQLite): the caller runs its query as usual; a statement the server lost
  (``DEALLOCATE ALL``) is prepared again after a rollback, two more round trips once.
- :func:`driver_begin`: ``BEGIN`` and one statement without parameters (the RLS
  context) in one message. Gain: the round trip psycopg spends on its ``BEGIN``.
  Fallback: ``False`` (nothing sent) in a transaction already open or in autocommit:
  run the statement with :func:`driver_execute`.
- Prepared statements (:class:`Prepared`, :func:`prepared`, :func:`prepare_on_begin`):
  named after their text, prepared in the ``BEGIN`` message the first time a connection
  needs them, so the server plans them as rarely as psycopg's own. Fallback: a
  statement the server refuses to prepare is left out on that connection.
- :func:`driver_execute` (and :func:`driver_cursor`): a fixed statement straight on
  psycopg. Gain: SQLAlchemy's statement machinery costs several times what the driver
  does for a small statement (the RLS context, the audit row). Fallback: none needed
  on PostgreSQL; SQLite runs the same statements through SQLAlchemy Core.
- Statements held to ``COMMIT`` (:func:`driver_defer`, :func:`connection_used`): right
  after :func:`begin_with`, a prepared statement is held back and sent with the
  ``COMMIT`` in one message. Gain: one round trip per record created (four round trips
  became two with :func:`begin_with`). Fallback: ``False`` (run it now) unless the
  transaction began with :func:`driver_begin_with` and nothing ran since; anything
  else sent first sends it, a rollback drops it.
- :func:`insert_one` (``TenantSession.insert``): one new ORM object, and its audit row
  ``along``, written with **one** statement and left persistent, without the unit of
  work. Gain: ``ratio`` 0.43 → 0.59 with the survey-trigger skip (``bench/
  records_http.py``). Fallback: SQLAlchemy Core INSERTs (one per row) on SQLite or for a
  column type the driver does not take as it is.

Bulk path (``servq records import``, ``POST /records/batch``, evaluations: 4,773 →
13,155 records/s on 1,000,000 records, 0.61 of a plain ``executemany`` for three rows
per record, ``bench/records_import.py``):

- :func:`insert_rows` / :func:`insert_tables` with binary arrays: a chunk's rows as
  **one** ``INSERT … SELECT FROM unnest($1::uuid[], …)``, one parameter per column in
  PostgreSQL's binary array form. Gain: 7,200 → 7,920 records/s, the server's CPU per
  record 146 → 118 µs. Fallback: psycopg's own arrays for values these cannot carry
  exactly; SQLAlchemy's ``executemany`` on SQLite or for rows neither describes.
- Queued statements (``wait=False``, :func:`send_queued`, :func:`drain`): a chunk's
  INSERTs sent as one statement and not waited for, so the server writes chunk *n*
  while Python validates chunk *n + 1*. Gain: 5,600 → 7,200 records/s (50,000
  in-process). Fallback: executed at once on SQLite; collected before the connection's
  next statement, commit or rollback, so an error still fails the import.
- :func:`new_ids`: time-ordered uuids made client-side, several times faster than
  :func:`uuid.uuid4`. Gain: 7,920 → 10,460 records/s (server 112 → 93 µs per record,
  whole-page WAL images 0.22 → 0.06 per record). Fallback: none needed (valid uuids
  everywhere).
- :class:`BulkWriter` (and :class:`Writer`, :data:`WRITER`, the single-record path's):
  the writer the record pipeline hands to each step instead of flags. A bulk writer's
  rows belong to records it inserted in this transaction, so the steps read nothing
  before writing (no SELECT of existing evaluations or actions: part of the 4,773 →
  13,155), its INSERTs are queued, :meth:`BulkWriter.send` sends a chunk's, and
  :meth:`Writer.attach` (both writers) makes persistent ORM objects of inserted rows without the
  unit of work (a few times faster than ``make_transient_to_detached`` + ``add``).
  Fallback: :data:`WRITER` reads first and executes each INSERT at once.
- :class:`RowView`, :class:`JsonText`: rows read without ORM objects, JSON serialised
  once and passed through as it is. Fallback: a plain value is serialised as usual.

Bodies (``core.api``, the import's validation):

- :func:`fast_loader`: a plainly valid payload loaded with exactly ``schema.load``'s
  result (and, for ``load_data``, the JSON form of its dump): flat schemas in a few
  microseconds (part of the import's 4× of ``513222d``); nested schemas, hooks and custom
  fields too (the hooks and custom fields' own code run as in marshmallow). Gain:
  ``load_data`` of a courier delivery with a six-turn transcript 250 → 42 µs, of an
  after-sales call 110 → 40 µs (``core.db.fast.loads``). Fallback: ``None`` for anything
  else, which then goes through marshmallow, errors unchanged.
- :class:`FastDumpSchema`: plain fields dumped by calling each conversion directly.
  Fallback: marshmallow's own dump for every other field.
"""

from __future__ import annotations

from servq.core.db.fast.driver import (Prepared, connection_used, driver_begin, driver_begin_with,
                                       driver_cursor, driver_defer, driver_execute,
                                       prepare_on_begin, prepared)
from servq.core.db.fast.insert import insert_one
from servq.core.db.fast.bulk import (JsonText, RowView, bulk_gc, drain, insert_rows, insert_tables, new_ids,
                                     send_queued)
from servq.core.db.fast.loads import FastDumpSchema, fast_loader
from servq.core.db.fast.writer import WRITER, BulkWriter, Writer


def begin_with(session, statement: Prepared, args) -> list[tuple] | None:
    """Begin ``session``'s transaction with ``statement`` in the ``BEGIN``'s round trip
    and return its rows: :meth:`servq.core.db.tenancy.TenantSession.begin_with`."""
    return session.begin_with(statement, args)


__all__ = [
    "WRITER", "BulkWriter", "Writer", "bulk_gc", "FastDumpSchema", "JsonText", "Prepared", "RowView", "begin_with", "connection_used", "drain",
    "driver_begin", "driver_begin_with", "driver_cursor", "driver_defer", "driver_execute",
    "fast_loader", "insert_one", "insert_rows", "insert_tables", "new_ids", "prepare_on_begin",
    "prepared", "send_queued",
]
