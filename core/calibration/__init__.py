"""Calibration sessions (校准): several reviewers score the same 3-5 records against one
pinned standard version, blind, so that their judgements converge.

- :mod:`.store`: creating a session, submitting a review (scored by the pure engine
  against the pinned version, stored apart from records and evaluations, so it never
  counts in KPIs, quality files, corrective actions or the ledger), stopping and closing.
- :mod:`.agreement`: agreement per item, each reviewer's deviation from the expert or the
  consensus, inter-rater reliability (share of subjects within ±10 points).
- :mod:`.preview`: how a proposed change of the standard would re-score the last 30 days.

See docs/calibration.md.
"""

from servq.core.calibration.agreement import TOLERANCE, results
from servq.core.calibration.preview import PREVIEW_DAYS, preview
from servq.core.calibration.store import (CalibrationRefused, close_session, create_session,
                                          stop_reviews, submit_review)

__all__ = ["CalibrationRefused", "PREVIEW_DAYS", "TOLERANCE", "close_session", "create_session",
           "preview", "results", "stop_reviews", "submit_review"]
