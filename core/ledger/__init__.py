"""The rewards and penalties ledger (奖罚): entries per staff member posted by the tenant's
rules from evaluations, complaints and suggestions, or by a manager; flags of repeated
faults for a manager to decide; a monthly summary by person and site.

- :mod:`.rules`: the tenant's rules document (validated; read once per transaction).
- :mod:`.posting`: the write pipeline's posting step (:func:`post_records`, set-based:
  one SELECT of existing keys and one INSERT per chunk), the repeat-fault flags, and
  holding / releasing the entries of a disputed evaluation.
- :mod:`.entries`: manual entries, transitions, the monthly summary.

Sits above evaluation, notify, org and calendar; the record pipeline (records), disputes,
KPIs (quality files) and reports call it. See docs/ledger.md.
"""

from servq.core.ledger.entries import (LedgerRefused, TRANSITIONS, manual_entry, month_of_now,
                                       person_totals, summary, transition)
from servq.core.ledger.posting import hold_entries, post_records, release_entries
from servq.core.ledger.rules import load_rules, rules_for, validate_rules

__all__ = ["LedgerRefused", "TRANSITIONS", "hold_entries", "load_rules", "manual_entry", "month_of_now",
           "person_totals", "post_records", "release_entries", "rules_for", "summary", "transition",
           "validate_rules"]
