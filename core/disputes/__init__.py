"""Disputes of evaluations: a staff member contests the evaluation of their own record, an
arbitrator decides per item, one appeal goes to a second level, and accepted items
become overrides that every later scoring honours.

- :mod:`.store`: filing, deciding, appealing, closing and withdrawing, with their rules
  (who may, within which window, in which state); each step audited and notified.
- :mod:`.summary`: dispute and overturn rates by standard, item and reviewer, and the
  time to decide, in SQL.

The overrides themselves live with the evaluations (:mod:`servq.core.evaluation.overrides`);
re-scoring goes through the record pipeline (:func:`servq.core.records.evaluate.evaluate_record`).
See docs/disputes.md.
"""

from servq.core.disputes.store import (DisputeRefused, RESULTS, TYPES, WINDOWS, appeal_dispute,
                                       close_dispute, decide_dispute, file_dispute, withdraw_dispute)
from servq.core.disputes.summary import summary

__all__ = ["DisputeRefused", "RESULTS", "TYPES", "WINDOWS", "appeal_dispute", "close_dispute",
           "decide_dispute", "file_dispute", "summary", "withdraw_dispute"]
