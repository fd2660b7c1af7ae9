"""How a proposed change of a standard would re-score the last 30 days, before adopting it.

A calibration session often ends in "the standard is unclear here": its facilitator
proposes a changed document and sees, without writing anything, what it would have made of
the records scored against that standard in the last :data:`PREVIEW_DAYS` days: the mean
percent and pass rate now and with the change, and the records whose pass or fail would
flip. The records are read a thousand at a time and scored by the pure engine; overrides
of decided disputes are honoured as every scoring does.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping

from sqlalchemy import and_, select

from servq.core.calendar.tenant import tenant_calendar
from servq.core.evaluation.overrides import overrides_for
from servq.core.evaluation.values import INSPECTION, inspection_plan, record_values
from servq.core.models import Evaluation, Record
from servq.core.scoring import RuleInputError, compile_standard, evaluate, parse_standard
from servq.core.standards import rule_registry

PREVIEW_DAYS = 30
#: At most this many records are re-scored by one preview (the most recent first).
PREVIEW_LIMIT = 20_000
CHUNK = 1000


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _rate(flags: list[bool]) -> float | None:
    return round(100.0 * sum(flags) / len(flags), 1) if flags else None


def preview(session, code: str, document: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """What ``document`` (a whole standard document for ``code``) would make of the records
    scored against ``code`` that occurred in the last :data:`PREVIEW_DAYS` days.

    :raises servq.core.scoring.StandardError: the document is not a valid standard.
    """
    registry = rule_registry()
    compiled = compile_standard(parse_standard(document, rules=registry, source=code), registry)
    plan = inspection_plan(compiled, registry)
    calendar = tenant_calendar(session)
    since = now - timedelta(days=PREVIEW_DAYS)
    stmt = (select(Record, Evaluation.percent, Evaluation.passed)
            .join(Evaluation, and_(Evaluation.tenant_id == Record.tenant_id, Evaluation.record_id == Record.id))
            .where(Evaluation.standard_code == code, Record.occurred_at >= since, Record.occurred_at < now,
                   Record.deleted_at.is_(None))
            .order_by(Record.occurred_at.desc(), Record.id).limit(PREVIEW_LIMIT + 1))
    rows = session.execute(stmt).all()
    truncated = len(rows) > PREVIEW_LIMIT
    rows = rows[:PREVIEW_LIMIT]
    before, after, passed_before, passed_after, flips, refused = [], [], [], [], [], 0
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        decided = overrides_for(session, [record.id for record, *_ in chunk])
        for record, percent, passed in chunk:
            target, values = ((plan.compiled, record_values(record, plan)) if record.kind == INSPECTION
                              else (compiled, record_values(record)))
            try:
                result = evaluate(target, values, now, calendar, overrides=decided.get((record.id, code)))
            except RuleInputError:
                refused += 1
                continue
            if percent is not None:
                before.append(percent)
            if result.percent is not None:
                after.append(result.percent)
            if passed is not None:
                passed_before.append(passed)
            if result.passed is not None:
                passed_after.append(result.passed)
            if passed is not None and result.passed is not None and passed != result.passed:
                flips.append({"record_id": str(record.id), "kind": record.kind,
                              "percent": [percent, result.percent],
                              "passed": [passed, result.passed]})
    return {"standard_code": code, "since": since, "until": now, "records": len(rows) - refused,
            "truncated": truncated, "refused": refused,
            "mean_percent": [_mean(before), _mean(after)],
            "pass_rate": [_rate(passed_before), _rate(passed_after)],
            "flipped": len(flips), "flips": flips[:100]}
