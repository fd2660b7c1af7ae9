"""The scoring engine: standards, rule types, scoring methods, evaluation. Pure code.

Nothing here touches the database, the app or a plugin: the caller loads a
:class:`Standard` (from a file with :func:`load_standard` or from stored JSON with
:func:`parse_standard`), compiles it once (:func:`compile_standard`) and calls
:func:`evaluate` with the record's values, the current time and, for business-time
deadlines, the tenant's :class:`core.calendar.Calendar` (:data:`core.calendar.WALL` by
default).

How a rule gets its input: ``values`` is one mapping per record (its fields, its
``data`` or an inspection's answers, flattened or nested as the caller likes). Each
item's rule reads the key named by the rule's ``field`` parameter, which defaults to the
item's code; a ``deadline`` rule reads the two timestamps named by its ``start`` and
``stop`` parameters and holds a :class:`core.calendar.Limit` (``"4h"``, ``"5 working
days"``): working limits count the calendar's time, plain ones wall time
(:func:`core.calendar.deadline_limit` says which a loaded rule counts). Dotted names
(``"timestamps.closed_at"``) walk nested mappings.
A missing key reads as ``None``, which each rule type treats as documented in
:mod:`core.scoring.rules` (mostly n.a.).

Rule types are looked up in a :class:`RuleRegistry`; :func:`default_rules` returns one
with core's types (``check``, ``measure``, ``deadline``, ``deduction``, ``phrases``) and
plugins add :class:`RuleType` objects to the app's copy.
"""

from servq.core.scoring.engine import (CompiledStandard, Evaluation, ItemInputError, ItemOutcome, Override,
                                 compile_standard, evaluate)
from servq.core.scoring.methods import METHODS
from servq.core.scoring.registry import Context, RuleRegistry, RuleType, default_rules
from servq.core.scoring.rules import Outcome, RuleInputError, RuleResult
from servq.core.scoring.standard import (DIMENSIONS, GradeBand, Item, Rule, Standard, StandardError,
                                   StandardSchema, Title, dump_standard, load_standard,
                                   load_standards, parse_standard)

__all__ = [
    "DIMENSIONS", "METHODS", "CompiledStandard", "Context", "Evaluation", "GradeBand", "Item",
    "ItemInputError", "ItemOutcome", "Outcome", "Override", "Rule", "RuleInputError", "RuleRegistry",
    "RuleResult", "RuleType", "Standard", "StandardError", "StandardSchema", "Title",
    "compile_standard", "default_rules", "dump_standard", "evaluate", "load_standard",
    "load_standards", "parse_standard",
]
