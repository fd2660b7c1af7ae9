"""Writers: how a write path puts the rows it makes into the database.

The record's write pipeline (:mod:`servq.core.records`) is one pipeline for one record
and for a million: what differs is the writer it hands to each step, not flags threaded
through the domain modules.

- :data:`WRITER` (a :class:`Writer`): the single-record path (``POST /records``, a change,
  a re-score). What it writes may already have rows (an evaluation replaced, an action
  already open), so the steps read before they write; each INSERT is executed at once.
  ``Writer(objects=True)``: the caller wants ORM objects back (an HTTP answer), so the
  rows go through the ORM.
- :class:`BulkWriter`: the bulk paths (``servq records import``, ``POST /records/batch``).
  Every row it writes belongs to records it inserted itself in this transaction, with new
  ids, so nothing has rows yet and nothing is read first (``fresh``); on PostgreSQL every
  INSERT is queued and the whole chunk goes to the server as one statement at
  :meth:`BulkWriter.send`, not waited for, so the server writes a chunk while Python
  prepares the next. Records it inserts come back as :class:`RowView` rows, or as
  persistent ORM objects when a caller or a plugin needs them.

Either writer makes persistent ORM objects of rows it has written (:meth:`Writer.attach`):
the identity map's internals stay here, in the fast lane.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from sqlalchemy import Table
from sqlalchemy.orm import make_transient_to_detached

from servq.core.db.fast.bulk import insert_rows, insert_tables, send_queued


class Writer:
    """The single-record path's writer (see the module docstring)."""

    #: Everything written belongs to records made in this transaction: read nothing first.
    fresh = False

    def __init__(self, *, objects: bool = False) -> None:
        #: The caller wants ORM objects back, not rows.
        self.objects = objects

    def insert(self, session, table: Table, rows: Sequence[Mapping[str, Any]], *,
               on_conflict: str | None = None) -> None:
        """INSERT ``rows`` into ``table`` now (:func:`~servq.core.db.fast.bulk.insert_rows`)."""
        insert_rows(session.connection(), table, rows, on_conflict=on_conflict)

    def insert_tables(self, session, batches: Sequence[tuple[Table, Sequence[Mapping[str, Any]]]]) -> None:
        """:meth:`insert` for several tables in order (one statement on PostgreSQL)."""
        insert_tables(session.connection(), batches)

    def send(self, session) -> None:
        """Send what is queued: nothing is, on this writer."""

    def attach(self, session, cls: type, rows: Sequence[dict[str, Any]]) -> list:
        """Objects of the mapped class ``cls`` for ``rows``, which are in the database:
        persistent in ``session`` as if a query had loaded them (no INSERT at flush, no
        SELECT on access; a later change is flushed as an UPDATE), built without the
        per-attribute events of ``cls(**row)``.

        Each goes into the identity map the way the ORM's loading does it, a few times
        faster than ``make_transient_to_detached`` + ``Session.add``, whose cascade walk
        and attach events a new object of a model without relationships does not need;
        when the session has attach listeners, those two run instead so that the
        listeners hear of every object. ``cls``'s primary key is ``(tenant_id, id)``.
        """
        new = cls._sa_class_manager.new_instance
        objects = []
        append = objects.append
        dispatch = session.dispatch
        if dispatch.before_attach or dispatch.after_attach or dispatch.detached_to_persistent:
            for row in rows:
                obj = new()
                obj.__dict__.update(row)
                make_transient_to_detached(obj)
                append(obj)
            session.add_all(objects)
            return objects
        add = session.identity_map._add_unpresent
        hash_key = session.hash_key
        for row in rows:
            obj = new()
            obj.__dict__.update(row)
            state = obj._sa_instance_state
            state.key = key = (cls, (row["tenant_id"], row["id"]), None)
            state.session_id = hash_key
            add(state, key)
            append(obj)
        return objects


class BulkWriter(Writer):
    """The bulk paths' writer (see the module docstring): INSERTs queued until :meth:`send`."""

    fresh = True

    def insert(self, session, table: Table, rows: Sequence[Mapping[str, Any]], *,
               on_conflict: str | None = None) -> None:
        """Queue the INSERT of ``rows`` (PostgreSQL; executed at once elsewhere)."""
        insert_rows(session.connection(), table, rows, wait=False, on_conflict=on_conflict)

    def insert_tables(self, session, batches: Sequence[tuple[Table, Sequence[Mapping[str, Any]]]]) -> None:
        insert_tables(session.connection(), batches, wait=False)

    def send(self, session) -> None:
        """Send the chunk's queued INSERTs as one statement, without waiting for it (after
        collecting the result of the one sent before)."""
        send_queued(session.connection())


#: The single-record path's writer, returning rows.
WRITER = Writer()
