"""Survey results, aggregated in SQL.

Everything comes from sums that SQL computes with ``GROUP BY`` the same way on SQLite
and PostgreSQL: per item (from ``survey_answers``) and per dimension (from
``survey_dimension_scores``), ``n`` and the sums, sums of squares and sums of cross
products of the columns the form asks for, the importance points and the NPS/CSAT
counts, and the number of responses. Whole hours of a period are read from the hourly
rollups (:mod:`core.surveys.rollups`), kept in step with every response; partial hours
at either end, and any filter by site, staff or kind, are summed from the answers.

Python then turns sums into means and standard errors: for values ``x`` with sum ``S``
and sum of squares ``Q`` over ``n`` answers, mean = ``S / n`` and
SE = ``sqrt((Q - n·mean²) / (n - 1)) / sqrt(n)`` (``None`` below two answers). A
difference such as the gap ``P - E`` uses ``S_P - S_E`` and
``Q_P - 2·Σ(P·E) + Q_E``, so it needs no extra pass.

Definitions (see docs/surveys.md):

* item gap = mean(P − E) over the respondents who answered the item;
* a respondent's dimension score = the mean over the items of that dimension they
  answered; the dimension's mean and SE are taken over respondents (the items of one
  respondent are not independent observations);
* the unweighted score of a measure = the mean of its dimension means; the weighted
  score = Σ dimension mean × mean importance points / 100;
* three-column form: adequacy = P − adequate, superiority = P − desired; an item or a
  dimension is ``below`` the zone of tolerance when mean P < mean adequate, ``above``
  when mean P > mean desired, ``within`` otherwise;
* NPS = % of answers 9-10 − % of answers 0-6; CSAT = % of answers 4 and 5; both with
  the SE of the proportion (in percentage points).

Filters go through the response: ``since``/``until`` on ``submitted_at``; ``site_id``,
``staff_id`` and ``kind`` on the record the invitation was about (responses to
invitations without a record are left out by these three).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, select

from servq.core.models import Record, Survey, SurveyAnswer, SurveyDimensionScore, SurveyResponse
from servq.core.surveys.rollups import DIMENSION, ITEM, RESPONSES, SUMS, ceil_hour, floor_hour, rollup_sums

#: The measures each form gives, per item and dimension.
MEASURES = {
    "single": ("perception",),
    "two_column": ("expectation", "perception", "gap"),
    "three_column": ("adequate", "desired", "perception", "adequacy", "superiority"),
}
#: The measures whose dimension means make up the overall scores.
SCORED = {
    "single": ("perception",),
    "two_column": ("gap", "perception"),
    "three_column": ("adequacy", "superiority", "perception"),
}


@dataclass(frozen=True)
class Filters:
    """What ``GET /surveys/<id>/results`` narrows to."""

    since: datetime | None = None
    until: datetime | None = None
    site_id: Any = None
    staff_id: Any = None
    kind: str | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def stat(n: int, total: float | None, squares: float | None) -> dict | None:
    """``{"n", "mean", "se"}`` of ``n`` values with sum ``total`` and sum of squares
    ``squares``; ``None`` when there is nothing."""
    if not n or total is None:
        return None
    mean = total / n
    se = None
    if n > 1 and squares is not None:
        variance = max(0.0, (squares - n * mean * mean) / (n - 1))
        se = math.sqrt(variance) / math.sqrt(n)
    return {"n": n, "mean": mean, "se": se}


def _difference(n: int, a: tuple, b: tuple, cross: float | None) -> dict | None:
    """Stat of ``x - y`` from the sums ``a = (Σx, Σx²)``, ``b = (Σy, Σy²)`` and ``Σxy``."""
    if a[0] is None or b[0] is None or cross is None:
        return None
    return stat(n, a[0] - b[0], a[1] - 2 * cross + b[1])


def _zone(p: dict | None, adequate: dict | None, desired: dict | None) -> str | None:
    if not p or not adequate or not desired:
        return None
    if p["mean"] < adequate["mean"]:
        return "below"
    if p["mean"] > desired["mean"]:
        return "above"
    return "within"


def _measures(row, form: str) -> dict:
    """Means and SEs of every measure of ``form`` from one entry of sums."""
    n = int(row.n or 0)
    p = (float(row.p), float(row.pp))
    out: dict[str, Any] = {"n": n, "perception": stat(n, *p)}
    if form == "two_column":
        e = (float(row.e), float(row.ee))
        out["expectation"] = stat(n, *e)
        out["gap"] = _difference(n, p, e, float(row.pe))
    elif form == "three_column":
        a = (float(row.a), float(row.aa))
        d = (float(row.d), float(row.dd))
        out["adequate"] = stat(n, *a)
        out["desired"] = stat(n, *d)
        out["adequacy"] = _difference(n, p, a, float(row.pa))
        out["superiority"] = _difference(n, p, d, float(row.pd))
        out["zone"] = _zone(out["perception"], out["adequate"], out["desired"])
    return out


def _responses(survey_id, filters: Filters, since: datetime | None, until: datetime | None):
    """SELECT of the ids of the responses in ``[since, until)`` that the record filters keep."""
    r = SurveyResponse
    stmt = select(r.id).where(r.survey_id == survey_id)
    if since is not None:
        stmt = stmt.where(r.submitted_at >= since)
    if until is not None:
        stmt = stmt.where(r.submitted_at < until)
    if filters.site_id is not None or filters.staff_id is not None or filters.kind is not None:
        stmt = stmt.join(Record, and_(Record.tenant_id == r.tenant_id, Record.id == r.record_id))
        if filters.site_id is not None:
            stmt = stmt.where(Record.site_id == filters.site_id)
        if filters.staff_id is not None:
            stmt = stmt.where(Record.staff_id == filters.staff_id)
        if filters.kind is not None:
            stmt = stmt.where(Record.kind == filters.kind)
    return stmt


def _aggregates(model, whole: bool, form: str, extra) -> list:
    """Count, then Σ and Σ of products of the columns ``form`` asks for, labelled as in
    :data:`core.surveys.rollups.SUMS`; what the form does not ask for is 0."""
    p, e, a, d = model.perceived, model.expectation, model.adequate, model.desired

    def prod(x, y):
        return func.sum(cast(x, Integer) * y) if whole else func.sum(x * y)

    wanted = {"n": func.count(p), "s_p": func.sum(p), "s_pp": prod(p, p)}
    if form == "two_column":
        wanted.update(s_e=func.sum(e), s_ee=prod(e, e), s_pe=prod(p, e))
    elif form == "three_column":
        wanted.update(s_a=func.sum(a), s_aa=prod(a, a), s_d=func.sum(d), s_dd=prod(d, d),
                      s_pa=prod(p, a), s_pd=prod(p, d))
    wanted.update(extra)
    return [expr.label(name) for name, expr in wanted.items()]


def _raw_sums(session, survey: Survey, filters: Filters, since, until, metrics: bool) -> dict:
    """The sums of :func:`core.surveys.rollups.rollup_sums`, straight from the answers of
    the responses the filters keep."""
    keep = _responses(survey.id, filters, since, until)
    out: dict[tuple[int, int], dict] = {}

    def collect(level, stmt):
        for row in session.execute(stmt):
            values = row._mapping
            out[(level, row[0])] = {name: values.get(name) or 0 for name in SUMS}

    ans = SurveyAnswer
    extra = {}
    if metrics:
        p = ans.perceived
        extra = {"promoters": func.sum(case((p >= 9, 1), else_=0)),
                 "detractors": func.sum(case((p <= 6, 1), else_=0)),
                 "satisfied": func.sum(case((p >= 4, 1), else_=0))}
    collect(ITEM, select(ans.item, *_aggregates(ans, True, survey.form, extra))
            .where(ans.survey_id == survey.id, ans.response_id.in_(keep)).group_by(ans.item))
    if survey.instrument.get("dimensions"):
        ds = SurveyDimensionScore
        w = ds.importance
        extra = {"w_n": func.count(w), "s_w": func.sum(w), "s_ww": func.sum(cast(w, Integer) * w)}
        collect(DIMENSION, select(ds.dimension, *_aggregates(ds, False, survey.form, extra))
                .where(ds.survey_id == survey.id, ds.response_id.in_(keep)).group_by(ds.dimension))
    count = session.scalar(select(func.count()).select_from(keep.subquery()))
    if count:
        out[(RESPONSES, 0)] = {**{name: 0 for name in SUMS}, "n": count}
    return out


def _add(into: dict, more: dict) -> dict:
    for key, sums in more.items():
        if key in into:
            into[key] = {name: into[key][name] + sums[name] for name in SUMS}
        else:
            into[key] = dict(sums)
    return into


def collect_sums(session, survey: Survey, filters: Filters = Filters()) -> dict:
    """``{(level, key): sums}`` of the responses ``filters`` keeps.

    Without a site, staff or kind filter, the whole hours of the period come from the
    rollups and only the partial hours at either end from the answers; with one, the
    answers of the matching responses are summed directly.
    """
    metrics = any(item.get("metric") for item in survey.instrument["items"])
    since, until = filters.since, filters.until
    if filters.site_id is not None or filters.staff_id is not None or filters.kind is not None:
        return _raw_sums(session, survey, filters, since, until, metrics)
    try:
        start = ceil_hour(since) if since is not None else None
    except OverflowError:  # the last hour of year 9999: no whole hour follows
        return _raw_sums(session, survey, filters, since, until, metrics)
    end = floor_hour(until) if until is not None else None
    if start is not None and end is not None and start >= end:
        return _raw_sums(session, survey, filters, since, until, metrics)  # within one or two hours
    sums = rollup_sums(session, survey.id, start, end)
    if since is not None and since < start:
        _add(sums, _raw_sums(session, survey, filters, since, start, metrics))
    if until is not None and end < until:
        _add(sums, _raw_sums(session, survey, filters, end, until, metrics))
    return sums


class _Sums:
    """Attribute access to one entry of the sums, with the names :func:`_measures` reads."""

    NAMES = {"n": "n", "e": "s_e", "ee": "s_ee", "a": "s_a", "aa": "s_aa", "d": "s_d", "dd": "s_dd",
             "p": "s_p", "pp": "s_pp", "pe": "s_pe", "pa": "s_pa", "pd": "s_pd", "wn": "w_n",
             "w": "s_w", "ww": "s_ww", "promoters": "promoters", "detractors": "detractors",
             "satisfied": "satisfied"}

    def __init__(self, sums: dict | None):
        self._sums = sums or {}

    def __getattr__(self, name):
        return self._sums.get(self.NAMES[name], 0)


def survey_results(session, survey: Survey, filters: Filters = Filters()) -> dict:
    """The results of ``survey`` (see the module docstring for every definition)."""
    doc = survey.instrument
    form = survey.form
    items = doc["items"]
    dims = doc.get("dimensions", [])
    sums = collect_sums(session, survey, filters)

    item_results = []
    for position, item in enumerate(items, start=1):
        row = _Sums(sums.get((ITEM, position)))
        item_form = "single" if item.get("metric") else form
        entry = {"code": item["code"], "dimension": item.get("dimension"),
                 "text": item["text"], "reverse": bool(item.get("reverse")),
                 **_measures(row, item_form)}
        if item.get("metric") == "nps":
            entry["nps"] = _nps(row)
        elif item.get("metric") == "csat":
            entry["csat"] = _csat(row)
        item_results.append(entry)

    dim_results = []
    for position, dim in enumerate(dims, start=1):
        row = _Sums(sums.get((DIMENSION, position)))
        entry = {"code": dim["code"], "title": dim.get("title"), **_measures(row, form)}
        entry["importance"] = stat(int(row.wn or 0), float(row.w), float(row.ww))
        dim_results.append(entry)

    scores = {}
    for measure in SCORED[form]:
        present = [d for d in dim_results if d.get(measure)]
        unweighted = (sum(d[measure]["mean"] for d in present) / len(present)) if present else None
        weighted_parts = [d for d in present if d["importance"]]
        weighted = (sum(d[measure]["mean"] * d["importance"]["mean"] / 100 for d in weighted_parts)
                    if weighted_parts else None)
        scores[measure] = {"unweighted": unweighted, "weighted": weighted}

    nps = next((i["nps"] for i in item_results if i.get("nps")), None)
    csat = next((i["csat"] for i in item_results if i.get("csat")), None)
    return {
        "survey_id": survey.id,
        "form": form,
        "filters": filters.as_dict(),
        "responses": int(_Sums(sums.get((RESPONSES, 0))).n),
        "items": item_results,
        "dimensions": dim_results,
        "scores": scores if dims else {},
        "nps": nps,
        "csat": csat,
    }


def _nps(row) -> dict | None:
    n = int(row.n or 0)
    if not n:
        return None
    promoters, detractors = int(row.promoters or 0), int(row.detractors or 0)
    # NPS is the mean of +100 (promoter), 0 (passive), -100 (detractor).
    s = stat(n, 100.0 * (promoters - detractors), 10_000.0 * (promoters + detractors))
    return {"score": s["mean"], "se": s["se"], "n": n,
            "promoters": 100.0 * promoters / n, "passives": 100.0 * (n - promoters - detractors) / n,
            "detractors": 100.0 * detractors / n}


def _csat(row) -> dict | None:
    n = int(row.n or 0)
    if not n:
        return None
    satisfied = int(row.satisfied or 0)
    s = stat(n, 100.0 * satisfied, 10_000.0 * satisfied)
    return {"score": s["mean"], "se": s["se"], "n": n}


__all__ = ["Filters", "MEASURES", "survey_results", "stat"]
