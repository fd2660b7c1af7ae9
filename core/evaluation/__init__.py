"""The quality loop around the scoring engine: evaluations, inspections, corrective actions.

- :func:`evaluate_record` / :func:`evaluate_records`: score records against the
  standards in force (:mod:`core.standards`), store one evaluation per record and
  standard, open the corrective actions of failed items, synchronise deadline clocks and
  fire ``record_evaluated``. :mod:`core.records.pipeline` calls them after every create and change.
- :func:`check_record`: what an inspection must satisfy before it is written (its
  standard, inspector and answers); :mod:`core.records.pipeline` calls it while validating.
- :func:`record_values`: the mapping the rules read for a record.
- :func:`open_action`: open a corrective action, idempotently on its ``source_key``.

The pure engine (:mod:`core.scoring`) knows nothing of this: here is where records,
standards, the tenant's calendar and the database meet. User guide: ``docs/quality.md``.
"""

from servq.core.evaluation.actions import (TransitionRefused, action_key, allowed_actions, is_overdue,
                                  open_action, transition)
from servq.core.evaluation.evaluations import evaluate_record, evaluate_records
from servq.core.evaluation.inspections import check_record
from servq.core.evaluation.values import record_values

__all__ = [
    "TransitionRefused", "action_key", "allowed_actions", "check_record", "evaluate_record",
    "evaluate_records", "is_overdue", "open_action", "record_values", "transition",
]
