"""A tenant's standards: adoption, versions in force, the compiled cache.

Changes (new versions from the API and from manifests) are in :mod:`core.standards.changes`.

Every tenant standard is a series of immutable :class:`~core.models.StandardVersion`
rows; the highest version is in force. A shipped standard is *adopted* (stored as the
tenant's version 1, a copy of the shipped document) the first time the tenant uses it:
when a record of a kind it applies to is scored, when the tenant reads the catalogue
through the API, or when it overrides it. Adoption is race-safe: ``INSERT … ON CONFLICT
DO NOTHING`` on the unique ``(tenant_id, code, version)``, so two requests adopting at
once both succeed and one row is stored.

Caching. :func:`standards_for_kind` runs on every record write, so the compiled
standards in force are cached per process (per app) under ``(tenant id, standards
revision)``; every version write bumps ``tenants.standards_revision`` in the same
transaction. The revision comes from the session's :data:`STANDARDS_REVISION` (read with a
request's token: a fact of the authentication query) or from one query, remembered on the session. Compiled
versions are also cached by ``(tenant id, code, version)``: versions never change. A
session that has written versions and not committed yet reads from the database and
caches nothing, so uncommitted (maybe rolled back) data never reaches the cache.

The :class:`StandardVersion` objects returned by the lookups are detached snapshots
shared between requests: read them, never change them or add them to a session.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping

from flask import Flask, current_app
from sqlalchemy import and_, event, func, or_, select, update

from servq.core.audit import audit
from servq.core.auth.facts import tenant_fact
from servq.core.db import dialect_insert, utcnow
from servq.core.db.state import TENANT, TRANSACTION, Slot
from servq.core.models import StandardVersion, Tenant
from servq.core.plugins.manager import CORE_PREFIX
from servq.core.plugins.app import enabled_plugin_ids
from servq.core.scoring import CompiledStandard, StandardError, compile_standard
from servq.core.scoring import parse_standard
from servq.core.standards.catalogue import ShippedStandard, rule_registry, shipped_by_kind, shipped_standards
from servq.core.db.tenancy import TenantSession

log = logging.getLogger(__name__)

#: Audit entity of version writes.
ENTITY = "standard_versions"
CACHE_KEY = "servq.standards_cache"
#: How many times the transaction wrote versions (not committed yet).
DIRTY: Slot[int] = Slot("servq.standards_dirty", TRANSACTION, __name__)
#: (tenant id, writes, state) read back from the uncommitted versions.
LOCAL: Slot[tuple] = Slot("servq.standards_local", TRANSACTION, __name__)
#: (tenant id, revision) read by :func:`_revision`.
REVISION: Slot[tuple] = Slot("servq.standards_revision", TENANT, __name__)
#: (tenant id, revision) read with the request's token (or the bare revision, set by a
#: caller that knows it).
STANDARDS_REVISION: Slot[tuple | int] = Slot("standards_revision", TENANT, __name__)
# The revision rides along with the authentication query: no query of its own.
tenant_fact("standards_revision", lambda tenant_id: Tenant.__table__.c.standards_revision,
            "n.standards_revision",
            lambda session, tenant_id, value: session.state.set(STANDARDS_REVISION, (tenant_id, value or 0)))
#: How many tenants' states and compiled versions one process keeps.
MAX_TENANTS = 10_000
MAX_COMPILED = 50_000


class StandardNotFound(LookupError):
    """No standard with this code is visible to the tenant."""


class StandardInvalid(ValueError):
    """A change was refused; ``errors`` maps each path of the input to its messages."""

    def __init__(self, errors: Mapping[str, list[str]], message: str = "The standard is not valid."):
        super().__init__(message)
        self.errors = dict(errors)
        self.message = message


class StandardConflict(RuntimeError):
    """Another change created the version this one was going to create."""


# -- the process cache ------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One stored version with what the lookups need: snapshot, compiled, plugin."""

    version: StandardVersion
    compiled: CompiledStandard | None  # None: the stored document no longer loads
    plugin: str | None  # the shipping plugin (from ``baseline``); None for a tenant's own

    @property
    def applies_to(self) -> tuple[str, ...]:
        return tuple(self.version.document.get("applies_to") or ())


@dataclass(frozen=True)
class TenantState:
    """A tenant's versions in force at one revision, indexed by code and by kind."""

    revision: int | None
    in_force: dict[str, Entry]
    by_kind: dict[str, tuple[str, ...]]


class StandardsCache:
    """Per-app LRU caches of tenant states and compiled versions (thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.states: OrderedDict[uuid.UUID, TenantState] = OrderedDict()
        self.compiled: OrderedDict[tuple, Entry] = OrderedDict()

    def state(self, tenant_id, revision) -> TenantState | None:
        with self.lock:
            state = self.states.get(tenant_id)
            if state is None or state.revision != revision:
                return None
            self.states.move_to_end(tenant_id)
            return state

    def put_state(self, tenant_id, state: TenantState) -> None:
        with self.lock:
            current = self.states.get(tenant_id)
            if current is not None and (current.revision or 0) > (state.revision or 0):
                return  # a newer state is here already
            self.states[tenant_id] = state
            self.states.move_to_end(tenant_id)
            while len(self.states) > MAX_TENANTS:
                self.states.popitem(last=False)

    def entry(self, key) -> Entry | None:
        with self.lock:
            entry = self.compiled.get(key)
            if entry is not None:
                self.compiled.move_to_end(key)
            return entry

    def put_entry(self, key, entry: Entry) -> None:
        with self.lock:
            self.compiled[key] = entry
            self.compiled.move_to_end(key)
            while len(self.compiled) > MAX_COMPILED:
                self.compiled.popitem(last=False)


def _app() -> Flask:
    return current_app._get_current_object()


def _cache(app: Flask) -> StandardsCache:
    cache = app.extensions.get(CACHE_KEY)
    if cache is None:
        cache = app.extensions.setdefault(CACHE_KEY, StandardsCache())
    return cache


def _dirty(session) -> bool:
    return bool(session.state.get(DIRTY))


@event.listens_for(TenantSession, "after_soft_rollback")
def _forget_dirty(session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.state.pop(DIRTY)
        session.state.pop(LOCAL)


def _mark_dirty(session) -> None:
    """The session wrote versions: bypass the caches until it commits."""
    session.state.set(DIRTY, session.state.get(DIRTY, 0) + 1)
    session.state.pop(STANDARDS_REVISION)
    session.state.pop(REVISION)
    session.after_commit(lambda: _clean(session))


def _clean(session) -> None:
    session.state.pop(DIRTY)
    session.state.pop(LOCAL)


def _revision(session) -> int:
    tenant_id = session.tenant_id
    given = session.state.get(STANDARDS_REVISION)
    if isinstance(given, tuple) and len(given) == 2 and given[0] == tenant_id:
        given = given[1]
    if isinstance(given, int) and not isinstance(given, bool):
        return given
    remembered = session.state.get(REVISION)
    if remembered is not None and remembered[0] == tenant_id:
        return remembered[1]
    revision = session.scalar(select(Tenant.standards_revision).where(Tenant.id == tenant_id)) or 0
    session.state.set(REVISION, (tenant_id, revision))
    return revision


def _plugin_of(baseline: str | None) -> str | None:
    return baseline.split(":", 1)[0] if baseline else None


def _snapshot(row: StandardVersion) -> StandardVersion:
    """A detached copy of ``row`` that outlives its session."""
    return StandardVersion(
        id=row.id, tenant_id=row.tenant_id, code=row.code, version=row.version,
        document=row.document, baseline=row.baseline, overrides=row.overrides or {},
        note=row.note, created_by=row.created_by, created_at=row.created_at)


def _entry(app: Flask, row: StandardVersion) -> Entry:
    registry = rule_registry(app)
    compiled = None
    try:
        compiled = compile_standard(parse_standard(row.document, rules=registry,
                                                   source=f"{row.code}@{row.version}"), registry)
    except (StandardError, KeyError) as error:
        log.warning("standard %s version %s of tenant %s does not load and is not used: %s",
                    row.code, row.version, row.tenant_id, error)
    return Entry(_snapshot(row), compiled, _plugin_of(row.baseline))


def _entry_for(session, row: StandardVersion, *, cache_it: bool) -> Entry:
    app = _app()
    cache = _cache(app)
    key = (row.tenant_id, row.code, row.version)
    entry = cache.entry(key)
    if entry is None:
        entry = _entry(app, row)
        if cache_it:
            cache.put_entry(key, entry)
    return entry


def in_force_stmt(session):
    """SELECT of the tenant's version in force of every standard, by code."""
    latest = (select(StandardVersion.code, func.max(StandardVersion.version).label("version"))
              .where(StandardVersion.tenant_id == session.tenant_id)
              .group_by(StandardVersion.code).subquery())
    return (select(StandardVersion)
            .join(latest, and_(StandardVersion.code == latest.c.code,
                               StandardVersion.version == latest.c.version))
            .order_by(StandardVersion.code))


def _load_state(session, revision: int | None, *, cache_it: bool) -> TenantState:
    in_force: dict[str, Entry] = {}
    by_kind: dict[str, list[str]] = {}
    for row in session.scalars(in_force_stmt(session)):
        entry = _entry_for(session, row, cache_it=cache_it)
        in_force[row.code] = entry
        for kind in entry.applies_to:
            by_kind.setdefault(kind, []).append(row.code)
    return TenantState(revision, in_force, {k: tuple(v) for k, v in by_kind.items()})


def tenant_state(session) -> TenantState:
    """The tenant's versions in force, from the process cache when it is current."""
    if _dirty(session):
        # Uncommitted versions: read them, keep the result on this session only, until
        # the session writes again.
        writes = session.state.get(DIRTY)
        local = session.state.get(LOCAL)
        if local is not None and local[:2] == (session.tenant_id, writes):
            return local[2]
        state = _load_state(session, None, cache_it=False)
        session.state.set(LOCAL, (session.tenant_id, writes, state))
        return state
    cache = _cache(_app())
    revision = _revision(session)
    state = cache.state(session.tenant_id, revision)
    if state is None:
        state = _load_state(session, revision, cache_it=True)
        if not _dirty(session):
            cache.put_state(session.tenant_id, state)
    return state


# -- visibility and adoption ------------------------------------------------------------


class _Visibility:
    """Which plugins' standards the session's tenant sees (asks for the list lazily)."""

    def __init__(self, session):
        self.session = session
        self._enabled: set[str] | None = None

    def __call__(self, plugin: str | None) -> bool:
        if plugin is None or plugin.startswith(CORE_PREFIX):
            return True
        if self._enabled is None:
            self._enabled = enabled_plugin_ids(self.session)
        return plugin in self._enabled


def visible_filter(session):
    """SQL condition: a stored version the tenant may see (its own, core's, enabled plugins')."""
    enabled = sorted(enabled_plugin_ids(session))
    return or_(StandardVersion.baseline.is_(None),
               StandardVersion.baseline.startswith(CORE_PREFIX, autoescape=True),
               *[StandardVersion.baseline.startswith(f"{plugin}:", autoescape=True)
                 for plugin in enabled])


def _insert(session, values: dict[str, Any]) -> bool:
    """Insert a version unless ``(tenant, code, version)`` exists; whether it was inserted."""
    insert = dialect_insert(session)
    table = StandardVersion.__table__
    stmt = (insert(table).values(**values)
            .on_conflict_do_nothing(index_elements=["tenant_id", "code", "version"])
            .returning(table.c.id))
    # RETURNING, not rowcount: psycopg reports -1 for this statement.
    return session.execute(stmt).first() is not None


def _bump_revision(session) -> None:
    session.execute(update(Tenant).where(Tenant.id == session.tenant_id)
                    .values(standards_revision=Tenant.standards_revision + 1)
                    .execution_options(synchronize_session=False))


def _store(session, *, code: str, version: int, document: dict, baseline: str | None,
           overrides: dict, note: str | None, actor_id, action: str) -> StandardVersion | None:
    """Insert one version, bump the revision and audit it; ``None`` if it existed."""
    values = {"id": uuid.uuid4(), "tenant_id": session.tenant_id, "code": code,
              "version": version, "document": document, "baseline": baseline,
              "overrides": overrides, "note": note, "created_by": actor_id,
              "created_at": utcnow()}
    if not _insert(session, values):
        return None
    _bump_revision(session)
    _mark_dirty(session)
    audit(session, ENTITY, values["id"], action, actor_id,
          {"code": [None, code], "version": [None, version], "baseline": [None, baseline],
           "overrides": [None, overrides], "note": [None, note]})
    return StandardVersion(**values)


def _in_force_row(session, code: str) -> StandardVersion | None:
    return session.scalar(select(StandardVersion).where(StandardVersion.code == code)
                          .order_by(StandardVersion.version.desc()).limit(1))


def adopt(session, shipped: ShippedStandard, actor_id=None) -> StandardVersion:
    """Store ``shipped`` as the tenant's version 1 unless it is stored already (race-safe).

    Returns the version in force afterwards (this one, or what a concurrent adoption or
    change stored). Flushes nothing else; the caller commits.
    """
    document = {**shipped.document, "version": 1}
    row = _store(session, code=shipped.code, version=1, document=document,
                 baseline=shipped.baseline, overrides={},
                 note=f"adopted {shipped.baseline}", actor_id=actor_id, action="adopted")
    return row if row is not None else _in_force_row(session, shipped.code)


def adopt_visible(session, actor_id=None) -> int:
    """Adopt every shipped standard the tenant sees and has not adopted yet.

    Costs no query when the cached state shows everything adopted. Returns how many
    were adopted now (the caller commits when that is not 0).
    """
    state = tenant_state(session)
    visible = _Visibility(session)
    adopted = 0
    for code, shipped in sorted(shipped_standards().items()):
        if code not in state.in_force and visible(shipped.plugin):
            adopt(session, shipped, actor_id)
            adopted += 1
    return adopted


# -- the lookups of the quality engine -----------------------------------------------------


def _usable(entry: Entry) -> tuple[StandardVersion, CompiledStandard] | None:
    return (entry.version, entry.compiled) if entry.compiled is not None else None


def _adopted_entry(session, shipped: ShippedStandard) -> Entry:
    row = adopt(session, shipped)
    return _entry_for(session, row, cache_it=False)


def standards_for_kind(session, kind: str) -> list[tuple[StandardVersion, CompiledStandard]]:
    """The tenant's standards in force that apply to records of ``kind``, compiled, by code.

    Only the tenant's own standards, core's, and those of plugins the tenant has enabled,
    less those that one of them ``replaces``.
    A shipped standard the tenant has not adopted yet is adopted now (in the session's
    transaction). With a warm cache a kind no standard applies to costs no query.
    """
    state = tenant_state(session)
    stored = state.by_kind.get(kind, ())
    shipped = shipped_by_kind().get(kind, ())
    if not stored and not shipped:
        return []
    visible = _Visibility(session)
    found: dict[str, tuple[StandardVersion, CompiledStandard]] = {}
    for code in stored:
        entry = state.in_force[code]
        if visible(entry.plugin) and entry.compiled is not None:
            found[code] = (entry.version, entry.compiled)
    for candidate in shipped:
        if candidate.code not in state.in_force and visible(candidate.plugin):
            entry = _adopted_entry(session, candidate)
            if kind in entry.applies_to and entry.compiled is not None:
                found[candidate.code] = (entry.version, entry.compiled)
    # A standard in force may replace others for these records (``replaces``): a plugin's
    # complaint standard stands in for core's default where the plugin is enabled.
    replaced = {code for _, compiled in found.values() for code in compiled.standard.replaces}
    return [found[code] for code in sorted(found) if code not in replaced]


def standard_in_force(session, code: str) -> tuple[StandardVersion, CompiledStandard] | None:
    """The tenant's version in force of ``code``, compiled; ``None`` when the tenant does
    not see such a standard (or its stored document no longer loads). Adopts a shipped
    standard on first use."""
    state = tenant_state(session)
    entry = state.in_force.get(code)
    visible = _Visibility(session)
    if entry is not None:
        return _usable(entry) if visible(entry.plugin) else None
    shipped = shipped_standards().get(code)
    if shipped is None or not visible(shipped.plugin):
        return None
    return _usable(_adopted_entry(session, shipped))


def standard_version(session, code: str, version: int) -> tuple[StandardVersion, CompiledStandard] | None:
    """Version ``version`` of the tenant's standard ``code``, compiled, or ``None``.

    Any stored version is returned, even of a plugin the tenant has since disabled: a
    record keeps the version it was scored with. Version 1 of a visible shipped standard
    not adopted yet is adopted now.
    """
    state = tenant_state(session)
    entry = state.in_force.get(code)
    if entry is not None and entry.version.version == version:
        return _usable(entry)
    key = (session.tenant_id, code, version)
    cached = _cache(_app()).entry(key)
    if cached is not None:
        return _usable(cached)
    row = session.scalar(select(StandardVersion).where(StandardVersion.code == code,
                                                       StandardVersion.version == version))
    if row is None:
        shipped = shipped_standards().get(code)
        if version == 1 and entry is None and shipped is not None and _Visibility(session)(shipped.plugin):
            return standard_in_force(session, code)
        return None
    return _usable(_entry_for(session, row, cache_it=not _dirty(session)))
