"""The standards catalogue: shipped standards, a tenant's versions, overrides, caching.

What the rest of servq calls (see ``docs/standards.md`` for the whole story):

- :func:`shipped_standards` / :func:`rule_registry`: what the app's plugins ship
  (``register_standards``, ``register_rule_types``), loaded once per app.
- :func:`standards_for_kind`, :func:`standard_in_force`, :func:`standard_version`: the
  tenant's versions, compiled and cached, adopting shipped standards on first use.
- :func:`change_standard` and :func:`apply_manifest_standards`: new versions from the API
  and from tenant manifests.
"""

from servq.core.standards.catalogue import (ShippedStandard, reserved_prefix, rule_registry,
                                      shipped_by_kind, shipped_standards)
from servq.core.standards.overrides import OverrideError, apply_overrides, diff
from servq.core.standards.changes import apply_manifest_standards, baseline_document, change_standard
from servq.core.standards.store import (StandardConflict, StandardInvalid, StandardNotFound, adopt,
                                  adopt_visible, standard_in_force, standard_version,
                                  standards_for_kind, tenant_state)

__all__ = [
    "OverrideError", "ShippedStandard", "StandardConflict", "StandardInvalid",
    "StandardNotFound", "adopt", "adopt_visible", "apply_manifest_standards",
    "apply_overrides", "baseline_document", "change_standard", "diff", "reserved_prefix",
    "rule_registry", "shipped_by_kind", "shipped_standards", "standard_in_force",
    "standard_version", "standards_for_kind", "tenant_state",
]
