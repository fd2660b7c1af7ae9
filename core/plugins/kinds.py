"""What a plugin contributes when it registers a record kind."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from marshmallow import Schema

from servq.core.plugins.conditions import check_conditions

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class Transition:
    """One action of a workflow: from any of ``sources`` to ``target``.

    :param action: the name a client posts (``acknowledge``, ``resolve``).
    :param sources: the states it may be taken from.
    :param target: the state it leads to.
    :param stamp: the timestamp it records in ``record.timestamps`` (``acknowledged_at``),
        which deadline rules read; ``None`` stamps nothing. A stamp is written the first
        time only (the first acknowledgement counts), unless ``restamp`` is set or a
        transition ``clears`` it in between.
    :param title: ``{"en": ..., "zh": ...}``.
    :param clears: stamps this transition removes (reopening a complaint clears
        ``resolved_at`` and ``closed_at``, so the resolution deadline runs again).
    :param restamp: overwrite ``stamp`` when it is already set (``reopened_at`` holds the
        latest reopening).
    :param requires: guards on the record's ``data`` that must all hold for the action to
        be taken, as data (:mod:`core.plugins.conditions`): ``{"service_sheet.signed":
        [True], "waiver.approver_id": {"present": True}, "result": {"not": ["rejected"]}}``.
        A transition whose guards fail is refused (409) naming the fields; nothing changes.
    """

    action: str
    sources: tuple[str, ...]
    target: str
    stamp: str | None = None
    title: dict[str, str] = field(default_factory=dict)
    clears: tuple[str, ...] = ()
    restamp: bool = False
    requires: dict | None = None


@dataclass(frozen=True)
class Workflow:
    """The states a kind's records move through (the kind's ``statuses``) and how.

    :param transitions: the allowed actions.
    :param initial_stamp: the timestamp stamped with ``occurred_at`` when a record is
        created (``received_at``), or ``None``.
    :param stamp_by: a field of ``data`` whose value keys a copy of the initial stamp:
        with ``stamp_by="severity"`` a serious complaint is also stamped
        ``serious_received_at`` (and a general one ``general_received_at``), so a
        standard can give each value its own deadline: the other values' items have no
        start and are n.a. Kept in step when ``data`` changes.
    :param waiting: states that pause the record's deadline clocks (waiting for the
        customer); entering one needs a reason.
    :param final: states after which no clock runs.
    :param stalled_after: the stalled-record watch: a record that has not moved (no
        transition) for this long in a state that is not final is *stalled*: a limit as
        text (``"48h"``, ``"3 working days"``: working time counts the tenant's business
        calendar) for every non-final state, or ``{state: limit}`` for some states only.
        Each stall notifies once (``record.stalled``); a move re-arms the watch.
    :param stalled_notify: the roles ``record.stalled`` is addressed to (``("manager",)``).
    :param stalled_action: also open a corrective action for each stall.
    """

    transitions: tuple[Transition, ...]
    initial_stamp: str | None = None
    stamp_by: str | None = None
    waiting: tuple[str, ...] = ()
    final: tuple[str, ...] = ()
    stalled_after: str | dict | None = None
    stalled_notify: tuple[str, ...] = ()
    stalled_action: bool = False

    def stall_limits(self, statuses: tuple[str, ...]) -> dict[str, str]:
        """``{state: limit text}``: the states in which a record can stall (never a final one)."""
        rule = self.stalled_after
        if rule is None:
            return {}
        if isinstance(rule, str):
            return {state: rule for state in statuses if state not in self.final}
        return {state: limit for state, limit in rule.items() if state not in self.final}

    def allowed(self, state: str) -> list[str]:
        """The actions allowed from ``state``."""
        return [t.action for t in self.transitions if state in t.sources]

    def allowed_transitions(self, state: str) -> list[Transition]:
        """The transitions allowed from ``state``, in declaration order."""
        return [t for t in self.transitions if state in t.sources]

    def transition(self, state: str, action: str) -> Transition | None:
        """The transition ``action`` takes from ``state``, or ``None`` when not allowed."""
        for t in self.transitions:
            if t.action == action and state in t.sources:
                return t
        return None

    def actions(self) -> list[str]:
        """Every action of the workflow, once each, in declaration order."""
        return list(dict.fromkeys(t.action for t in self.transitions))

    def keyed_stamp(self, data: dict | None) -> str | None:
        """The copy of the initial stamp keyed by ``data[stamp_by]`` (``serious_received_at``),
        or ``None`` when there is no such key or no value."""
        if not self.initial_stamp or not self.stamp_by or not isinstance(data, dict):
            return None
        value = data.get(self.stamp_by)
        if not isinstance(value, str) or not _NAME_RE.match(value):
            return None
        return f"{value}_{self.initial_stamp}"

    def check(self, statuses: tuple[str, ...]) -> None:
        """Raise ``ValueError`` when the workflow does not fit ``statuses``."""
        known = set(statuses)
        problems = []
        for t in self.transitions:
            if not _NAME_RE.match(t.action):
                problems.append(f"action {t.action!r} is not a lower-case name")
            for state in (*t.sources, t.target):
                if state not in known:
                    problems.append(f"action {t.action!r} names unknown state {state!r}")
            for stamp in (t.stamp, *t.clears):
                if stamp is not None and not _NAME_RE.match(stamp):
                    problems.append(f"action {t.action!r}: stamp {stamp!r} is not a lower-case name")
            if not t.sources:
                problems.append(f"action {t.action!r} has no source state")
            if t.requires is not None:
                try:
                    check_conditions(t.requires, f"action {t.action!r}: requires")
                except ValueError as exc:
                    problems.append(str(exc))
        seen: set[tuple[str, str]] = set()
        for t in self.transitions:
            for source in t.sources:
                if (t.action, source) in seen:
                    problems.append(f"action {t.action!r} is declared twice from {source!r}")
                seen.add((t.action, source))
        for state in (*self.waiting, *self.final):
            if state not in known:
                problems.append(f"unknown state {state!r} in waiting/final")
        if statuses and statuses[0] in self.waiting:
            problems.append("the initial state cannot be a waiting state")
        if self.initial_stamp is not None and not _NAME_RE.match(self.initial_stamp):
            problems.append(f"initial stamp {self.initial_stamp!r} is not a lower-case name")
        if self.stamp_by is not None and self.initial_stamp is None:
            problems.append("stamp_by needs an initial_stamp")
        problems.extend(self._check_stall(known))
        if problems:
            raise ValueError("; ".join(problems))

    def _check_stall(self, known: set[str]) -> list[str]:
        """The shape of the stall rule (its limits and roles are read by
        ``core.deadlines.stalled.check_kinds`` when the app starts: calendar and roles
        are above this layer)."""
        rule, problems = self.stalled_after, []
        if rule is None:
            if self.stalled_notify or self.stalled_action:
                problems.append("stalled_notify/stalled_action need stalled_after")
            return problems
        if isinstance(rule, str):
            if not rule.strip():
                problems.append("stalled_after is empty")
        elif isinstance(rule, dict) and rule:
            for state, limit in rule.items():
                if state not in known:
                    problems.append(f"stalled_after names unknown state {state!r}")
                elif state in self.final:
                    problems.append(f"stalled_after names final state {state!r}: final states never stall")
                if not isinstance(limit, str) or not limit.strip():
                    problems.append(f"stalled_after[{state!r}] is not a limit such as '3 working days'")
        else:
            problems.append("stalled_after is a limit ('3 working days') or {state: limit}")
        if isinstance(self.stalled_notify, str) or not all(isinstance(r, str) for r in self.stalled_notify):
            problems.append("stalled_notify is a tuple of role names")
        return problems


@dataclass(frozen=True)
class RecordKind:
    """A kind of quality record.

    :param name: unique name; a plugin's kinds are named ``<plugin id>.<kind>``
        (``property.work_order``); core's kinds have bare names (``observation``).
    :param schema: marshmallow schema class validating the record's ``data``.
    :param title: ``{"en": ..., "zh": ...}``.
    :param description: one paragraph for the API description.
    :param statuses: the statuses a record of this kind may take; the first is the
        initial one.
    :param plugin: id of the plugin that registered it (filled in by the manager).
    :param workflow: the kind's :class:`Workflow`, or ``None``: then ``status`` is set
        freely among ``statuses``. With a workflow, ``status`` changes only through
        ``POST /api/v1/records/<id>/transitions``.
    :param personal: paths in ``data`` holding personal data (``"customer"`` or
        ``"customer.phone"``); masked in every response for roles without the
        ``personal_data`` permission, and each read by a role with it is audited.
    :param links: paths in ``data`` holding the id of another record of the same tenant
        (a complaint's ``record_id``); checked on every write: an id that is not a live
        record of the tenant is refused (422).
    :param first_time_fix: the name of a top-level boolean field of ``data`` that says
        whether the job was fixed the first time (``"fixed_first_time"``), or ``None``.
        The ``first_time_fix`` KPI is the share of ``true`` among the records of every kind
        that names one, counting only records whose field is ``true`` or ``false``.
    :param kb_text: paths in ``data`` whose text feeds the knowledge base's suggestions for
        a record (``("description", "product.name")``; a path to an object or list gives
        every string in it), in order of importance (the suggestion uses the first 50
        search tokens). Empty: every string of ``data`` except the ``personal`` paths.
    :param kb_product: paths in ``data`` whose values are the record's product (an article
        whose ``product`` equals one of them, ignoring case, scores 3). Empty:
        ``data.product`` and ``data.tags``.
    :param kb_category: likewise for the article's ``category`` (2 points). Empty:
        ``data.category`` and ``data.tags``.
    :param reference: the name of a top-level text field of ``data`` that identifies a
        record of this kind in the tenant (``"waybill_no"``, a ticket or order number), or
        ``None``. No two live records of the kind share a value: a second one is refused
        (422 naming the field; an import names the lines), a deleted record's value may be
        used again. ``GET /api/v1/records?reference=`` finds a record by it.
    """

    name: str
    schema: type[Schema]
    title: dict[str, str] = field(default_factory=dict)
    description: str = ""
    statuses: tuple[str, ...] = ("open", "closed")
    plugin: str = ""
    workflow: Workflow | None = None
    personal: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    first_time_fix: str | None = None
    kb_text: tuple[str, ...] = ()
    kb_product: tuple[str, ...] = ()
    kb_category: tuple[str, ...] = ()
    reference: str | None = None

    def __post_init__(self) -> None:
        for what, name in (("first_time_fix", self.first_time_fix), ("reference", self.reference)):
            if name is not None and not (isinstance(name, str) and _PATH_RE.match(name) and "." not in name):
                raise ValueError(f"record kind {self.name!r}: {what} {name!r} is not the name "
                                 f"of a top-level field of data")
        if self.reference is not None:
            names = {f.data_key or name for name, f in self.schema().fields.items()}
            if self.reference not in names:
                raise ValueError(f"record kind {self.name!r}: reference {self.reference!r} is not a field "
                                 f"of its schema")
        for what, paths in (("personal", self.personal), ("links", self.links), ("kb_text", self.kb_text),
                            ("kb_product", self.kb_product), ("kb_category", self.kb_category)):
            bad = [p for p in paths if not isinstance(p, str) or not _PATH_RE.match(p)]
            if bad:
                raise ValueError(f"record kind {self.name!r}: {what} paths {bad!r} are not dotted names")
        if self.workflow is not None:
            try:
                self.workflow.check(tuple(self.statuses))
            except ValueError as exc:
                raise ValueError(f"record kind {self.name!r}: {exc}") from None

    @property
    def initial_status(self) -> str:
        return self.statuses[0]
