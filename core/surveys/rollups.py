"""Hourly running sums of a survey's answers (``survey_rollups``).

Every response adds to the rollup rows of its survey and submission hour, in the same
transaction that stores the response: one row counting the response (level 0), one per
answered item (level 1) and one per dimension it touched (level 2). The addition is an
``INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x`` (SQLite and PostgreSQL), so
concurrent responses in the same hour add up without losing any.

Results over whole hours read these sums (tens of thousands of rows for years of
answers) instead of every answer; the parts of a period that cut through an hour, and
the filters by site, staff and kind, are summed from the answers themselves
(:mod:`core.surveys.results`). :func:`rebuild_rollups` recomputes a survey's rollups
from its answers (after a bulk load, or to check them).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import Integer, and_, case, cast, delete, func, insert, literal, select

from servq.core.db import dialect_insert
from servq.core.models import SurveyAnswer, SurveyDimensionScore, SurveyResponse, SurveyRollup

#: The summed columns, in the order results read them.
SUMS = ("n", "s_e", "s_ee", "s_a", "s_aa", "s_d", "s_dd", "s_p", "s_pp", "s_pe", "s_pa", "s_pd",
        "w_n", "s_w", "s_ww", "promoters", "detractors", "satisfied")
RESPONSES, ITEM, DIMENSION = 0, 1, 2
HOUR = timedelta(hours=1)


def floor_hour(at: datetime) -> datetime:
    """The start of the UTC hour holding ``at``."""
    at = at.astimezone(timezone.utc)
    return at.replace(minute=0, second=0, microsecond=0)


def ceil_hour(at: datetime) -> datetime:
    """The first whole UTC hour at or after ``at``."""
    start = floor_hour(at)
    return start if start == at else start + HOUR


def _zero() -> dict:
    return {name: 0 for name in SUMS}


def _sq(value) -> float:
    return 0 if value is None else value * value


def _mul(x, y) -> float:
    return 0 if x is None or y is None else x * y


def _cols(row: dict) -> dict:
    """The sums one stored answer or dimension row contributes."""
    e, a, d, p = row["expectation"], row["adequate"], row["desired"], row["perceived"]
    return {
        "n": 0 if p is None else 1,
        "s_e": e or 0, "s_ee": _sq(e), "s_a": a or 0, "s_aa": _sq(a), "s_d": d or 0, "s_dd": _sq(d),
        "s_p": p or 0, "s_pp": _sq(p), "s_pe": _mul(p, e), "s_pa": _mul(p, a), "s_pd": _mul(p, d),
    }


def response_rows(tenant_id: uuid.UUID, survey_id: uuid.UUID, at: datetime, answers: list[dict],
                  dimensions: list[dict]) -> list[dict]:
    """The rollup increments of one response (``answers`` and ``dimensions`` as
    :func:`core.surveys.answers.score_answers` returns them)."""
    bucket = floor_hour(at)
    base = {"tenant_id": tenant_id, "survey_id": survey_id, "bucket": bucket}
    rows = [{**base, **_zero(), "level": RESPONSES, "key": 0, "n": 1}]
    for answer in answers:
        p = answer["perceived"]
        rows.append({**base, **_zero(), **_cols(answer), "level": ITEM, "key": answer["item"],
                     "promoters": int(p >= 9), "detractors": int(p <= 6), "satisfied": int(p >= 4)})
    for dim in dimensions:
        w = dim["importance"]
        rows.append({**base, **_zero(), **_cols(dim), "level": DIMENSION, "key": dim["dimension"],
                     "w_n": 0 if w is None else 1, "s_w": w or 0, "s_ww": _sq(w)})
    for row in rows:
        row["id"] = uuid.uuid4()
    return rows


def add_rollups(session, rows: list[dict]) -> None:
    """Add ``rows`` to the stored sums (one statement; creates the rows that are missing)."""
    if not rows:
        return
    stmt = dialect_insert(session)(SurveyRollup).values(rows)
    table = SurveyRollup.__table__
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "survey_id", "bucket", "level", "key"],
        set_={name: table.c[name] + stmt.excluded[name] for name in SUMS},
    )
    session.execute(stmt)


def _hour_expression(session, column):
    """SQL for the UTC hour of ``column``, stored the way :class:`core.db.UTCDateTime` does."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("hour", column.op("AT TIME ZONE")(literal("UTC"))).op("AT TIME ZONE")(literal("UTC"))
    return func.strftime("%Y-%m-%d %H:00:00.000000", column)


def rebuild_rollups(session, survey_id: uuid.UUID) -> int:
    """Recompute the rollups of one survey from its stored responses, answers and
    dimension scores (the caller commits). Returns the number of rollup rows."""
    session.execute(delete(SurveyRollup).where(SurveyRollup.survey_id == survey_id))
    r = SurveyResponse
    bucket = _hour_expression(session, r.submitted_at).label("bucket")

    def total(x):
        return func.coalesce(func.sum(x), 0)

    def sums(model, key, extra, whole: bool):
        p, e, a, d = model.perceived, model.expectation, model.adequate, model.desired

        def prod(x, y):
            return total(cast(x, Integer) * y) if whole else total(x * y)

        cols = [func.count(p), total(e), prod(e, e), total(a), prod(a, a), total(d), prod(d, d),
                total(p), prod(p, p), prod(p, e), prod(p, a), prod(p, d), *extra(model)]
        return (select(bucket, key, *cols)
                .join(r, and_(r.tenant_id == model.tenant_id, r.id == model.response_id))
                .where(model.survey_id == survey_id)
                .group_by(bucket, key))

    def item_extra(m):
        p = m.perceived
        return [literal(0), literal(0), literal(0),
                func.sum(case((p >= 9, 1), else_=0)), func.sum(case((p <= 6, 1), else_=0)),
                func.sum(case((p >= 4, 1), else_=0))]

    def dim_extra(m):
        w = m.importance
        return [func.count(w), total(w), total(cast(w, Integer) * w), literal(0), literal(0), literal(0)]

    rows = []
    queries = (
        (ITEM, sums(SurveyAnswer, SurveyAnswer.item, item_extra, True)),
        (DIMENSION, sums(SurveyDimensionScore, SurveyDimensionScore.dimension, dim_extra, False)),
        (RESPONSES, select(bucket, literal(0), func.count()).where(r.survey_id == survey_id).group_by(bucket)),
    )
    for level, stmt in queries:
        for found in session.execute(stmt):
            at = found[0]
            if isinstance(at, str):  # SQLite hands back the text it computed
                at = datetime.fromisoformat(at)
            values = dict(zip(SUMS, found[2:]))
            rows.append({"id": uuid.uuid4(), "tenant_id": session.tenant_id, "survey_id": survey_id,
                         "bucket": floor_hour(at if at.tzinfo else at.replace(tzinfo=timezone.utc)),
                         "level": level, "key": found[1], **_zero(), **values})
    for start in range(0, len(rows), 1000):
        session.execute(insert(SurveyRollup), rows[start:start + 1000])
    return len(rows)


def rollup_sums(session, survey_id: uuid.UUID, start: datetime | None, end: datetime | None) -> dict:
    """``{(level, key): {sum: value}}`` over the whole hours in ``[start, end)``."""
    ro = SurveyRollup
    stmt = (select(ro.level, ro.key, *[func.sum(getattr(ro, name)).label(name) for name in SUMS])
            .where(ro.survey_id == survey_id).group_by(ro.level, ro.key))
    if start is not None:
        stmt = stmt.where(ro.bucket >= start)
    if end is not None:
        stmt = stmt.where(ro.bucket < end)
    return {(row.level, row.key): {name: getattr(row, name) or 0 for name in SUMS}
            for row in session.execute(stmt)}

