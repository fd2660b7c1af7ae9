"""The write pipeline's scoring step and the effects it starts, in their order.

Every path that writes records ends here: ``POST /records`` and a record's change
(:mod:`.pipeline`, one record, :data:`~servq.core.db.fast.WRITER`), a workflow transition,
``POST /records/batch`` and ``servq records import`` (:mod:`.ingest`, a chunk at a time
with a :class:`~servq.core.db.fast.BulkWriter`), a re-score (:mod:`.rescore`). The
order of effects is this module's, the same for all of them:

1. score against the standards in force (:func:`servq.core.evaluation.score_records`;
   a value a rule cannot judge refuses the whole call, nothing written);
2. store the evaluations (:func:`servq.core.evaluation.store_evaluations`; a bulk
   writer's are written last, queued with the chunk: step 7);
3. open the corrective actions of failed critical and ``action_on_failure`` items;
4. synchronise the deadline clocks of standards with deadline items;
5. post the rewards and penalties the tenant's ledger rules give (failed items,
   complaints, suggestions: :func:`servq.core.ledger.post_records`; a request reads
   the rules with its token, a job or an import once; runs for records no standard scores too);
6. mark the KPI days of the scored records dirty (a bulk writer's records were marked
   in the statement that inserted them);
7. fire ``record_evaluated`` per record, with its evaluations as ORM objects, then
   ``records_evaluated`` once with every record and its evaluations as read-only views.

Before these, the steps that write the record itself: :mod:`.pipeline` (one record:
validate, write with its audit event, ``record_created`` or ``record_changed``) and
:mod:`.ingest` (a chunk: the same steps with a bulk writer).

:mod:`servq.core.evaluation` scores and stores and starts nothing itself.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Sequence

from servq.core.calendar.tenant import tenant_calendar
from servq.core.db import utcnow
from servq.core.db.fast import WRITER, JsonText, RowView, Writer
from servq.core.deadlines.clocks import sync_clocks_many
from servq.core.evaluation import (calendar_for_actions, failures, insert_evaluations,
                                   open_failure_actions, score_records, store_evaluations, timed)
from servq.core.kpis.rollups import mark_dirty
from servq.core.ledger import post_records
from servq.core.models import Evaluation, Record
from servq.core.plugins.app import hooks_for_session

#: The writer of :func:`evaluate_record`: evaluations come back as ORM objects.
OBJECTS = Writer(objects=True)


def evaluate_records(session, records: Sequence[Record], *, now: datetime | None = None,
                     actor_id: uuid.UUID | None = None, writer: Writer = WRITER,
                     new: bool = False) -> list:
    """Score ``records`` (flushed or pending, of the session's tenant) against the
    standards in force that apply to each, store the evaluations and start their effects
    (see the module docstring). Nothing is committed.

    :param now: the instant of the evaluation (default: now).
    :param writer: ``WRITER`` (the default): the records may have evaluations and actions
        already, which are read and replaced; the stored rows come back as dicts.
        ``Writer(objects=True)``: as ORM objects. A :class:`~servq.core.db.fast.BulkWriter`:
        the records were inserted in this transaction by the caller (a bulk import), so
        none has an evaluation or a corrective action yet: nothing is read before writing,
        and the records need only the attributes the rules read (``id``, ``kind``,
        ``data``, ``occurred_at``, …): ORM objects are needed only by plugins implementing
        ``record_evaluated``.
    :param new: the records were inserted in this transaction (as a bulk writer's are):
        no item of theirs can be overridden yet, so the overrides are not read.
    :raises servq.core.records.pipeline.RecordInvalid: when a value cannot be judged by
        its item's rule; its ``errors`` are keyed by the position of each bad record in
        ``records`` (``{3: {"data": {...}}}``) and nothing has been written.
    """
    now = now or utcnow()
    hooks = hooks_for_session(session)
    hook, bulk = hooks.record_evaluated, hooks.records_evaluated
    hooked = bool(hook.get_hookimpls())
    if writer.fresh and not hooked:
        # Fresh records are only read (no plugin gets them here): through their columns.
        records = list(map(_readable, records))
    scored, calendar = score_records(session, records, now, overrides=not (new or writer.fresh))
    if not scored:
        post_records(session, records, scored, writer=writer, actor_id=actor_id)
        return []
    if not writer.fresh:
        rows, stored = store_evaluations(session, scored, writer, new=new)
    failed = failures(scored)
    if failed:
        open_failure_actions(session, failed, calendar or calendar_for_actions(session, failed),
                             actor_id, writer=writer)
    clocked = timed(scored)
    if clocked:
        sync_clocks_many(session, clocked, calendar or tenant_calendar(session), now,
                         new=new or writer.fresh, writer=writer)
    post_records(session, records, scored, writer=writer, actor_id=actor_id)
    if not writer.fresh:
        # Fresh records were marked by whoever inserted them.
        mark_dirty(session, [record.occurred_at for record, *_ in scored])
    else:
        # Written last, queued (PostgreSQL): they go with the rest of the caller's chunk.
        if hooked or writer.objects:
            rows, stored = store_evaluations(session, scored, writer)
        else:
            rows, stored = insert_evaluations(session, scored, writer), []
    if hooked:
        stored = _fire(session, hook, scored, rows, stored)
    if bulk.get_hookimpls():
        _fire_bulk(session, bulk, scored, rows, stored)
    return stored if writer.objects else rows


def evaluate_record(session, record: Record, *, now: datetime | None = None,
                    actor_id: uuid.UUID | None = None, new: bool = False) -> list[Evaluation]:
    """Score ``record`` against the standards in force that apply to it (an inspection:
    the standard it names), with every effect, and return its stored
    :class:`~servq.core.models.Evaluation` rows, by standard code; ``[]`` when none
    applies. See :func:`evaluate_records`.

    :raises servq.core.records.pipeline.RecordInvalid: when a value cannot be judged (the
        error names the item); nothing has been written.
    """
    return sorted(evaluate_records(session, [record], now=now, actor_id=actor_id, writer=OBJECTS, new=new),
                  key=lambda evaluation: evaluation.standard_code)


#: The columns of a record that scoring, corrective actions and clocks read.
_READ = frozenset({"id", "kind", "data", "occurred_at", "created_at", "status", "site_id",
                   "staff_id", "timestamps"})


def _readable(record):
    """``record`` for reading: an ORM record whose columns are all loaded (a fresh one) is
    read through its ``__dict__`` (:class:`~servq.core.db.fast.RowView`), a dict lookup
    per attribute instead of the ORM's descriptor; anything else as it is."""
    if record.__class__ is Record:
        columns = record.__dict__
        if columns.keys() >= _READ:
            return RowView(columns)
    return record


def _fire(session, hook, scored, rows, stored) -> list[Evaluation]:
    """Fire ``record_evaluated`` once per scored record with its evaluation rows; returns
    the evaluations as ORM objects."""
    if not stored or len(stored) < len(rows):
        by_id = {(obj.record_id, obj.standard_code): obj for obj in stored}
        stored = [by_id.get((row["record_id"], row["standard_code"])) or Evaluation(**row)
                  for row in rows]
    per_record: dict[uuid.UUID, list[Evaluation]] = defaultdict(list)
    for evaluation in stored:
        per_record[evaluation.record_id].append(evaluation)
    seen = set()
    for record, *_ in scored:
        if record.id in seen:
            continue
        seen.add(record.id)
        hook(session=session, record=record,
             evaluations=sorted(per_record[record.id], key=lambda e: e.standard_code))
    return stored


class EvaluationView(RowView):
    """A stored evaluation row read as attributes, like a :class:`core.models.Evaluation`
    (what ``records_evaluated`` gets when no ORM object was built); ``items`` decoded on
    first reading when the bulk path serialised them beforehand."""

    __slots__ = ()

    @property
    def items(self) -> list:
        value = self.__dict__["items"]
        if value.__class__ is JsonText:
            value = self.__dict__["items"] = value.value()
        return value


def _fire_bulk(session, hook, scored, rows, stored) -> None:
    """Fire ``records_evaluated`` once with every scored record (in the order scored) and
    its evaluations, sorted by standard code: the ORM objects when they exist (the
    records' own), else views of the rows."""
    evaluations = stored if stored and len(stored) >= len(rows) else list(map(EvaluationView, rows))
    per_record: dict[uuid.UUID, list] = defaultdict(list)
    for evaluation in evaluations:
        per_record[evaluation.record_id].append(evaluation)
    seen, evaluated = set(), []
    for record, *_ in scored:
        if record.id not in seen:
            seen.add(record.id)
            evaluated.append((record, sorted(per_record[record.id], key=lambda e: e.standard_code)))
    hook(session=session, evaluated=evaluated)
