"""The app's plugin manager: loading, contributions and per-tenant dispatch.

A plugin that fails is named in the error: one that cannot be imported, or whose hook
raises at start-up, makes ``create_app`` raise :class:`PluginError` naming the plugin
(and the hook); an event hook that raises later (``record_created`` …) keeps its
exception's type and gets a note naming the plugin and the hook. :func:`inspect_plugins`
loads each plugin alone, for ``servq plugins list``, so that one broken plugin is listed
as broken, with its error, instead of hiding the others.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import re
from importlib import metadata
from typing import Any, Callable, Iterable

import pluggy

from servq.core.config import CORE_PLUGINS
from servq.core.plugins import hookspecs
from servq.core.plugins.jobs import CORE_JOB_ALIASES, NAMESPACE, legacy_name
from servq.core.plugins.kinds import RecordKind
from servq.core.plugins.markers import PROJECT

ENTRY_POINT_GROUP = PROJECT
CORE_PREFIX = "core."
#: What a tenant-enabled plugin's id may look like: it is a URL segment, a CLI group, an
#: OpenAPI tag and a key in manifests (``tenants.manifest.PLUGIN_ID_RE``).
PLUGIN_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class PluginError(RuntimeError):
    """A plugin broke the contract (duplicate kind, misnamed blueprint, …)."""


#: Module → id of core's own plugins: the inverse of ``core.config.CORE_PLUGINS``.
_CORE_PLUGIN_IDS = {module: plugin_id for plugin_id, module in CORE_PLUGINS.items()}


def plugin_id_for_module(module_name: str) -> str:
    """``plugins.property`` → ``property``; core's own plugins get the stable id
    ``core.config.CORE_PLUGINS`` gives their module (stored data, so never derived from
    where the module lives)."""
    if module_name in _CORE_PLUGIN_IDS:
        return _CORE_PLUGIN_IDS[module_name]
    if module_name.startswith((CORE_PREFIX, NAMESPACE + CORE_PREFIX)):
        raise PluginError(f"core module {module_name!r} has no plugin id: add it to "
                          "CORE_PLUGINS in core/config.py")
    return module_name.rsplit(".", 1)[-1]


class Plugins:
    """The plugins loaded into one app (``app.extensions["servq.plugins"]``).

    Core's own plugins (ids starting with ``core.``) are always on; every other plugin
    runs for a tenant only while the tenant has enabled it.
    """

    def __init__(self, modules: Iterable[str] = (), load_entry_points: bool = True,
                 extra: Iterable[tuple[str, Any]] = ()):
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        #: Plugin id → (distribution name, version) of the plugins loaded from entry points.
        self.distributions: dict[str, tuple[str, str]] = {}
        for name in modules:
            self.pm.register(_load(plugin_id_for_module(name), lambda name=name: importlib.import_module(name)),
                             name=plugin_id_for_module(name))
        for name, plugin in extra:
            self.pm.register(plugin, name=name)
        if load_entry_points:
            for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
                # pluggy's rule: a name already taken (a built-in plugin) is skipped.
                if self.pm.get_plugin(entry_point.name) is not None or self.pm.is_blocked(entry_point.name):
                    continue
                self.pm.register(_load(entry_point.name, entry_point.load), name=entry_point.name)
                if entry_point.dist is not None:
                    self.distributions[entry_point.name] = (entry_point.dist.metadata["Name"],
                                                            entry_point.dist.version)
        self.pm.check_pending()
        _name_plugins_in_errors(self.pm)
        for plugin_id in self.ids():
            if not PLUGIN_ID_RE.match(plugin_id):
                raise PluginError(f"plugin id {plugin_id!r} is not valid: lowercase letters, "
                                  "digits and '_', starting with a letter (at most 63)")
        self.kinds: dict[str, RecordKind] = {}
        for plugin_id, kinds in self.contributions("register_record_kinds"):
            for kind in kinds:
                if not plugin_id.startswith(CORE_PREFIX) and not kind.name.startswith(f"{plugin_id}."):
                    raise PluginError(f"plugin {plugin_id!r} registered record kind {kind.name!r}: "
                                      f"a plugin's kinds are named '{plugin_id}.<name>'")
                if kind.name in self.kinds:
                    raise PluginError(f"record kind {kind.name!r} registered twice")
                # A copy: the plugin's own RecordKind may be shared by other apps.
                self.kinds[kind.name] = dataclasses.replace(kind, plugin=plugin_id)
        self.jobs: dict[str, Any] = {}
        self._job_names: dict[Any, str] = {}
        # Old ``module:qualname`` → stable name, so that jobs an older release queued in
        # Redis still run. Transitional: the aliases go away in the next release.
        self.job_aliases: dict[str, str] = {}
        for plugin_id, jobs in self.contributions("register_jobs"):
            for job in jobs:
                self._add_job(plugin_id, job)

    def _add_job(self, plugin_id: str, job: Any) -> None:
        if not (isinstance(job, tuple) and len(job) == 2 and isinstance(job[0], str)
                and callable(job[1])):
            raise PluginError(f"plugin {plugin_id!r}: register_jobs returned {job!r}; it returns "
                              "Job(name, fn) items (core.plugins.Job)")
        name, fn = job
        if not plugin_id.startswith(CORE_PREFIX) and not name.startswith(f"{plugin_id}."):
            raise PluginError(f"plugin {plugin_id!r} registered job {name!r}: a plugin's jobs "
                              f"are named '{plugin_id}.<name>'")
        if name in self.jobs:
            raise PluginError(f"job {name!r} registered twice (plugin {plugin_id!r}): a job's "
                              "name is unique across all plugins")
        self.jobs[name] = fn
        self._job_names.setdefault(fn, name)
        if plugin_id.startswith(CORE_PREFIX):
            # Core's functions move: their old names are the frozen CORE_JOB_ALIASES.
            for alias, stable in CORE_JOB_ALIASES.items():
                if stable == name:
                    self.job_aliases.setdefault(alias, name)
        else:
            self.job_aliases.setdefault(legacy_name(fn), name)

    def resolve_job(self, name_or_fn: Any) -> str | None:
        """The stable name of a registered job given its name, its function or its old
        ``module:qualname`` alias; ``None`` when no plugin registered it."""
        if not isinstance(name_or_fn, str):
            return self._job_names.get(name_or_fn)
        if name_or_fn in self.jobs:
            return name_or_fn
        return self.job_aliases.get(name_or_fn)

    # -- what is loaded -------------------------------------------------------------

    @functools.cached_property
    def enableable(self) -> frozenset[str]:
        """:meth:`ids` as a set, computed once: plugins are only loaded at start-up."""
        return frozenset(self.ids())

    def ids(self) -> list[str]:
        """Ids of the plugins a tenant can enable (every plugin but core's own)."""
        return sorted(
            name for name, _ in self.pm.list_name_plugin() if not name.startswith(CORE_PREFIX)
        )

    def get(self, plugin_id: str) -> Any | None:
        return self.pm.get_plugin(plugin_id)

    def describe(self, plugin_id: str) -> dict:
        """Id, description (the module's docstring), version and where it comes from."""
        plugin = self.pm.get_plugin(plugin_id)
        doc = (getattr(plugin, "__doc__", None) or "").strip()
        package, version = self.distributions.get(plugin_id, (None, None))
        return {
            "id": plugin_id,
            "description": doc.splitlines()[0] if doc else "",
            "package": package,
            "version": version,
            "kinds": sorted(k.name for k in self.kinds.values() if k.plugin == plugin_id),
        }

    # -- contributions ----------------------------------------------------------------

    def contributions(self, hook_name: str, **kwargs) -> list[tuple[str, list]]:
        """Call a ``register_*`` hook on every plugin: ``[(plugin id, [items...]), ...]`` (a
        dict returned contributes its ``(key, value)`` pairs)."""
        caller = getattr(self.pm.hook, hook_name)
        out = []
        for impl in reversed(caller.get_hookimpls()):  # registration order
            try:
                result = impl.function(*(kwargs[arg] for arg in impl.argnames))
                items = list(result.items()) if isinstance(result, dict) else list(result or [])
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(f"plugin {impl.plugin_name!r}: its hook {hook_name} raised "
                                  f"{type(exc).__name__}: {exc}") from exc
            out.append((impl.plugin_name, items))
        return out

    def call_one(self, plugin_id: str, hook_name: str, **kwargs) -> Any:
        """Call ``hook_name`` on one plugin only; ``None`` when it does not implement it.
        What it raises carries a note naming the plugin (:func:`_named`)."""
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.plugin_name == plugin_id:
                return impl.function(*(kwargs[arg] for arg in impl.argnames))
        return None

    # -- per-tenant dispatch ------------------------------------------------------------

    def hooks_for(self, enabled: Iterable[str]) -> "TenantHooks":
        """Hook callers restricted to core's plugins and the ``enabled`` plugin ids."""
        enabled = set(enabled)
        removed = [
            plugin for name, plugin in self.pm.list_name_plugin()
            if not name.startswith(CORE_PREFIX) and name not in enabled
        ]
        return TenantHooks(self.pm, removed)

    def kinds_for(self, enabled: Iterable[str]) -> dict[str, RecordKind]:
        """The record kinds a tenant with ``enabled`` plugins may use."""
        enabled = set(enabled)
        return {
            name: kind for name, kind in self.kinds.items()
            if kind.plugin.startswith(CORE_PREFIX) or kind.plugin in enabled
        }


#: The contribution hooks called when an app starts (besides kinds and jobs, which the
#: manager collects itself) and when the command line is assembled.
STARTUP_HOOKS = ("register_blueprints", "register_rule_types", "register_standards", "register_kpis",
                 "register_event_types", "register_commands")


def _load(plugin_id: str, load: Callable[[], Any]) -> Any:
    """Import a plugin's module; a failure names the plugin."""
    try:
        return load()
    except Exception as exc:
        raise PluginError(f"plugin {plugin_id!r} cannot be loaded: {type(exc).__name__}: {exc}") from exc


def _name_plugins_in_errors(pm: pluggy.PluginManager) -> None:
    """Make every hook implementation name its plugin when it raises: the exception keeps
    its type (callers may expect it, e.g. :class:`~servq.core.plugins.settings.PluginConfigError`)
    and gets a note, shown under its traceback, naming the plugin and the hook."""
    for hook_name in dir(pm.hook):
        caller = getattr(pm.hook, hook_name)
        if not isinstance(caller, pluggy.HookCaller):
            continue
        for impl in caller.get_hookimpls():
            if getattr(impl.function, "_servq_named", False):
                continue
            impl.function = _named(impl.function, impl.plugin_name, hook_name)


def _named(function: Callable, plugin_id: str, hook_name: str) -> Callable:
    note = f"raised by plugin {plugin_id!r} in its hook {hook_name}"

    @functools.wraps(function)  # keeps the attributes, such as ``wants``
    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            if note not in getattr(exc, "__notes__", ()):
                exc.add_note(note)
            raise

    call._servq_named = True
    return call


def inspect_plugins(modules: Iterable[str] = (), load_entry_points: bool = True,
                    extra: Iterable[tuple[str, Any]] = ()) -> list[dict]:
    """Each plugin of ``modules``, ``extra`` and the entry points, loaded alone: ``{"id",
    "description", "status": "ok" | "broken", "error"}``, by id. What ``servq plugins list``
    shows when the app cannot start: which plugin is at fault and why."""
    candidates: list[tuple[str, Callable[[], Any]]] = []
    for name in modules:
        if name.startswith((CORE_PREFIX, NAMESPACE + CORE_PREFIX)) or name in _CORE_PLUGIN_IDS:
            continue
        candidates.append((plugin_id_for_module(name), lambda name=name: importlib.import_module(name)))
    candidates += [(name, lambda plugin=plugin: plugin) for name, plugin in extra]
    if load_entry_points:
        taken = {name for name, _ in candidates}
        candidates += [(ep.name, ep.load) for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)
                       if ep.name not in taken]
    rows = []
    for plugin_id, load in candidates:
        row = {"id": plugin_id, "description": "", "status": "ok", "error": None}
        try:
            plugin = _load(plugin_id, load)
            doc = (getattr(plugin, "__doc__", None) or "").strip()
            row["description"] = doc.splitlines()[0] if doc else ""
            alone = Plugins(load_entry_points=False, extra=[(plugin_id, plugin)])
            for hook in STARTUP_HOOKS:  # what create_app and the command line call
                alone.contributions(hook)
            alone.call_one(plugin_id, "register_config_schema")
        except Exception as exc:
            row.update(status="broken", error=str(exc) if isinstance(exc, PluginError)
                       else f"{type(exc).__name__}: {exc}")
        rows.append(row)
    return sorted(rows, key=lambda row: row["id"])


class TenantHooks:
    """``hooks.record_created(...)`` calls only the plugins one tenant may run."""

    def __init__(self, pm: pluggy.PluginManager, removed: list):
        self._pm = pm
        self._removed = removed

    def __getattr__(self, name: str):
        if not self._removed:
            return getattr(self._pm.hook, name)
        return self._pm.subset_hook_caller(name, remove_plugins=self._removed)


def wanted(caller, session, kinds: Iterable[str]) -> bool:
    """Whether an implementation of the hook ``caller`` (a tenant's ``record_created``)
    is to hear of records of ``kinds``.

    An implementation may carry ``wants(session, kind) -> bool`` (an attribute of the
    function, see ``docs/plugins.md``); one that answers ``False`` for every kind is left
    out of the count, one without it wants every record. The bulk paths (an import, a
    batch) build ORM records and call the hook only when this is true.
    """
    kinds = set(kinds)
    for impl in caller.get_hookimpls():
        wants = getattr(impl.function, "wants", None)
        if wants is None or any(wants(session, kind) for kind in kinds):
            return True
    return False

