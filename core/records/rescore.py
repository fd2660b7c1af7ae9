"""Re-score a range of records after a standard changed (a background job).

A record keeps the version it was scored with until it is scored again; this job scores
again every live record of the kinds the standard applies to whose ``occurred_at`` is in
``[since, until)``, against the versions in force now (through
:func:`core.records.evaluate.evaluate_records`, so every standard that applies to those records is
brought up to date, not only this one).
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import and_, func, or_, select

from servq.core.db import utcnow
from servq.core.evaluation import RecordInvalid
from servq.core.models import Record, StandardRescore
from servq.core.records import evaluate
from servq.core.standards.store import standard_in_force

log = logging.getLogger(__name__)

#: Records evaluated, and committed, per step.
CHUNK = 500
MAX_ERROR = 2000


def _records(job: StandardRescore, kinds: list[str]):
    stmt = select(Record).where(Record.kind.in_(kinds), Record.deleted_at.is_(None),
                                Record.occurred_at >= job.since, Record.occurred_at < job.until)
    return stmt


def _evaluate(session, evaluate_records, records: list[Record]) -> int:
    """Score ``records``; leave out those a rule cannot judge. Returns how many were left out.

    ``evaluate_records`` writes nothing when a record is refused and names the refused
    positions, so the chunk is scored again without them (once: the rules are pure).
    """
    try:
        evaluate_records(session, records)
        return 0
    except RecordInvalid as exc:
        bad = {position for position in exc.errors if isinstance(position, int)}
        if not bad:
            raise
        for position in sorted(bad):
            log.warning("re-score: record %s cannot be scored: %s", records[position].id,
                        exc.errors[position])
        rest = [record for position, record in enumerate(records) if position not in bad]
        if rest:
            evaluate_records(session, rest)
        return len(bad)


def rescore_standard(session, rescore_id: str) -> str | None:
    """Run re-score ``rescore_id`` of the session's tenant; return its final status.

    Idempotent and resumable: a finished job is left alone; an interrupted one goes on
    after the last chunk it committed. A failure marks the job ``failed`` with the error
    and raises again (rq retries it; the retry resumes).
    """
    evaluate_records = evaluate.evaluate_records  # looked up per run (a test replaces it)
    job_uuid = uuid.UUID(str(rescore_id))
    job = session.scalar(select(StandardRescore).where(StandardRescore.id == job_uuid))
    if job is None:
        log.warning("re-score %s not found; nothing to do", rescore_id)
        return None
    if job.status == "done":
        return job.status
    try:
        found = standard_in_force(session, job.code)
        if found is None:
            raise LookupError(f"standard {job.code!r} is no longer available to this tenant")
        version, compiled = found
        kinds = sorted(compiled.standard.applies_to)
        if job.total is None:
            job.total = session.scalar(select(func.count()).select_from(
                _records(job, kinds).subquery()))
        job.status, job.version, job.error = "running", version.version, None
        job.started_at = job.started_at or utcnow()
        session.commit()
        while True:
            stmt = _records(job, kinds)
            if job.cursor_at is not None:
                stmt = stmt.where(or_(Record.occurred_at > job.cursor_at,
                                      and_(Record.occurred_at == job.cursor_at,
                                           Record.id > job.cursor_id)))
            records = list(session.scalars(stmt.order_by(Record.occurred_at, Record.id).limit(CHUNK)))
            if not records:
                break
            job.skipped += _evaluate(session, evaluate_records, records)
            job.processed += len(records)
            job.cursor_at, job.cursor_id = records[-1].occurred_at, records[-1].id
            session.commit()
        job.status, job.finished_at = "done", utcnow()
        session.commit()
        return job.status
    except Exception as exc:
        session.rollback()
        job = session.scalar(select(StandardRescore).where(StandardRescore.id == job_uuid))
        if job is not None:
            job.status, job.finished_at = "failed", utcnow()
            job.error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
            session.commit()
        raise
