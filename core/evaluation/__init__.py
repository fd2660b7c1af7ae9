"""Evaluation: score records against the standards in force and store the results; and
the corrective actions that failures open. It starts no effect by itself: the record's
write pipeline (:mod:`servq.core.records.evaluate`) calls it, then each effect in turn.

- :func:`score_records` / :func:`store_evaluations`: score records against the standards
  in force (:mod:`core.standards`) with the pure engine, store one evaluation per record
  and standard (:func:`insert_evaluations`: a bulk import's new records, as rows only); :func:`failures` and :func:`timed` say which scores need a corrective
  action or a deadline clock.
- :func:`check_record`: what an inspection must satisfy before it is written (its
  standard, inspector and answers); the record pipeline calls it while validating.
- :func:`record_values`: the mapping the rules read for a record.
- :func:`open_action`, :func:`open_failure_actions`: open corrective actions, idempotently
  on their ``source_key``.
- :class:`RecordInvalid`: a record that cannot be accepted (re-exported by the records package).

The pure engine (:mod:`core.scoring`) knows nothing of this: here is where records,
standards, the tenant's calendar and the database meet. User guide: ``docs/quality.md``.
"""

from servq.core.evaluation.actions import (TransitionRefused, action_key, allowed_actions, is_overdue,
                                           open_action, open_failure_actions, transition)
from servq.core.evaluation.errors import RecordInvalid
from servq.core.evaluation.evaluations import (calendar_for_actions, failures, insert_evaluations,
                                               score_records, store_evaluations, timed)
from servq.core.evaluation.inspections import check_record
from servq.core.evaluation.values import record_values

__all__ = [
    "RecordInvalid", "TransitionRefused", "action_key", "allowed_actions", "calendar_for_actions",
    "check_record", "failures", "insert_evaluations", "is_overdue", "open_action", "open_failure_actions",
    "record_values", "score_records", "store_evaluations", "timed", "transition",
]
