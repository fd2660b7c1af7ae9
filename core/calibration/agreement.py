"""What a calibration session shows: agreement per item, each reviewer's deviation, IRR.

The *reference* of a subject is the expert's review when the session has an expert (and
they reviewed it), otherwise the consensus: the mean percent of the participants'
reviews, and per item the most common outcome (ties: none; the item then agrees with no
one). With ``R`` the non-expert reviews:

- agreement of an item: the share of ``R`` whose outcome of the item is the reference's;
- deviation of a reviewer: the mean absolute difference, in points, between their percent
  and the reference percent over the subjects they reviewed;
- IRR (inter-rater reliability): the share of subjects whose every non-expert review lies
  within ±:data:`TOLERANCE` points of the reference percent (target ≥ 85 %).

Reviews that score nothing (every item n.a.) take no part in percent figures.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable

TOLERANCE = 10.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def results(row, reviews: Iterable[Any]) -> dict[str, Any]:
    """The session's figures from its ``reviews`` (:class:`~servq.core.models.CalibrationReview`)."""
    expert = str(row.expert_id) if row.expert_id else None
    by_subject: dict[str, dict[str, Any]] = defaultdict(dict)
    for review in reviews:
        by_subject[str(review.subject_record_id)][str(review.participant_id)] = review
    subjects, item_hits, item_total = [], Counter(), Counter()
    deviations: dict[str, list[float]] = defaultdict(list)
    within = 0
    judged = 0
    for subject in row.subject_record_ids:
        reviews_of = by_subject.get(subject, {})
        others = {p: r for p, r in reviews_of.items() if p != expert}
        reference = reviews_of.get(expert) if expert else None
        scored = [r.percent for r in others.values() if r.percent is not None]
        if reference is not None:
            ref_percent = reference.percent
            ref_items = {i["code"]: i["outcome"] for i in reference.items}
        else:
            ref_percent = sum(scored) / len(scored) if scored else None
            ref_items = {}
            for code in {i["code"] for r in others.values() for i in r.items}:
                counts = Counter(i["outcome"] for r in others.values() for i in r.items if i["code"] == code)
                top = counts.most_common(2)
                if top and (len(top) == 1 or top[0][1] > top[1][1]):
                    ref_items[code] = top[0][0]
        for review in others.values():
            for item in review.items:
                item_total[item["code"]] += 1
                if ref_items.get(item["code"]) == item["outcome"]:
                    item_hits[item["code"]] += 1
            if review.percent is not None and ref_percent is not None:
                deviations[str(review.participant_id)].append(abs(review.percent - ref_percent))
        agrees = None
        if ref_percent is not None and others:
            agrees = all(r.percent is not None and abs(r.percent - ref_percent) <= TOLERANCE
                         for r in others.values())
            judged += 1
            within += bool(agrees)
        subjects.append({"record_id": subject, "reference": "expert" if reference is not None else "consensus",
                         "reference_percent": _round(ref_percent), "reviews": len(reviews_of),
                         "within_tolerance": agrees,
                         "percents": {p: r.percent for p, r in sorted(reviews_of.items())}})
    items = [{"item": code, "reviews": item_total[code],
              "agreement": _round(100.0 * item_hits[code] / item_total[code])}
             for code in sorted(item_total)]
    participants = [{"participant_id": p, "subjects": len(d),
                     "mean_deviation": _round(sum(d) / len(d)) if d else None}
                    for p, d in sorted(deviations.items())]
    return {"tolerance": TOLERANCE, "irr": _round(100.0 * within / judged) if judged else None,
            "subjects": subjects, "items": items, "participants": participants}
