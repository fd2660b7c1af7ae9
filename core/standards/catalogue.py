"""What the app ships: the rule registry and the standards of every loaded plugin.

Both are built once per app from the plugins' ``register_rule_types`` and
``register_standards`` hooks and kept in ``app.extensions`` (two apps in one process may
load different plugins, so nothing here is a module global). They are built when the
standards blueprint is registered, so a plugin that breaks the contract stops
``create_app`` instead of failing the first request that scores a record.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from flask import Flask, current_app

from servq.core.plugins.manager import CORE_PREFIX, PluginError
from servq.core.plugins.app import get_plugins
from servq.core.scoring import RuleRegistry, RuleType, Standard, StandardError, default_rules
from servq.core.scoring import dump_standard, parse_standard
from servq.core.scoring.standard import read_document

RULES_KEY = "servq.rule_registry"
SHIPPED_KEY = "servq.shipped_standards"
CORE_CODE_PREFIX = "core."


@dataclass(frozen=True)
class ShippedStandard:
    """A standard file shipped by a plugin, loaded with the app's rule registry.

    ``document`` is the canonical form (:func:`core.scoring.dump_standard`) of the file:
    defaults filled in and durations written the one way, so that comparing it with a
    tenant's version shows only real differences.
    """

    plugin: str
    standard: Standard
    document: dict[str, Any]
    source: str

    @property
    def code(self) -> str:
        return self.standard.code

    @property
    def version(self) -> int:
        return self.standard.version

    @property
    def baseline(self) -> str:
        """``"<plugin id>:<code>@<shipped version>"``, stored with each tenant version."""
        return f"{self.plugin}:{self.standard.code}@{self.standard.version}"

    @property
    def core(self) -> bool:
        """Core's standards are seen by every tenant; a plugin's only where it is enabled."""
        return self.plugin.startswith(CORE_PREFIX)


def _app(app: Flask | None) -> Flask:
    return app if app is not None else current_app._get_current_object()


def rule_registry(app: Flask | None = None) -> RuleRegistry:
    """Core's rule types plus every loaded plugin's ``register_rule_types`` (cached per app).

    :raises PluginError: a plugin's rule type is not named ``<plugin id>.<name>``, is not
        a :class:`core.scoring.RuleType`, or takes a name already registered.
    """
    app = _app(app)
    registry = app.extensions.get(RULES_KEY)
    if registry is not None:
        return registry
    registry = default_rules()
    for plugin_id, rule_types in get_plugins(app).contributions("register_rule_types"):
        for rule_type in rule_types:
            if not isinstance(rule_type, RuleType):
                raise PluginError(f"plugin {plugin_id!r} registered {rule_type!r} as a rule "
                                  "type: return core.scoring.RuleType objects")
            if not plugin_id.startswith(CORE_PREFIX) and not rule_type.name.startswith(f"{plugin_id}."):
                raise PluginError(f"plugin {plugin_id!r} registered rule type {rule_type.name!r}: "
                                  f"a plugin's rule types are named '{plugin_id}.<name>'")
            if rule_type.name in registry:
                raise PluginError(f"rule type {rule_type.name!r} is registered twice "
                                  f"(again by plugin {plugin_id!r})")
            registry.register(rule_type)
    app.extensions[RULES_KEY] = registry
    return registry


def _files(package: str, folder: str):
    try:
        directory = resources.files(package).joinpath(*folder.split("/"))
        nodes = [node for node in directory.iterdir()
                 if node.is_file() and node.name.rsplit(".", 1)[-1].lower() in ("toml", "json")]
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError) as error:
        raise PluginError(f"standards folder {package}:{folder} cannot be read: {error}") from error
    return sorted(nodes, key=lambda node: node.name)


#: Parsed shipped files by (source, text, rule types): every app of a process (a test
#: run makes hundreds) parses the same files with the same rule types the same way.
_PARSED: dict[tuple, tuple[Standard, dict[str, Any]]] = {}


def _parsed(node, source: str, registry: RuleRegistry) -> tuple[Standard, dict[str, Any]]:
    """A shipped file's standard and canonical document (parsed once per process for
    the same text and rule types). :raises StandardError: it does not load."""
    text = node.read_text(encoding="utf-8")
    key = (source, text, frozenset(registry.items()))
    parsed = _PARSED.get(key)
    if parsed is None:
        document = read_document(text, node.name.rsplit(".", 1)[-1].lower(), source=source)
        standard = parse_standard(document, rules=registry, source=source)
        parsed = _PARSED[key] = (standard, dump_standard(standard, rules=registry))
    return parsed


def shipped_standards(app: Flask | None = None) -> dict[str, ShippedStandard]:
    """Every loaded plugin's shipped standards by code (cached per app).

    Loaded from the ``(package, folder)`` pairs of ``register_standards`` with the app's
    :func:`rule_registry`. Which tenant sees which is decided by the caller: core's always,
    a plugin's where the tenant enabled it.

    :raises PluginError: a file does not load (the message names it and the problem), a
        plugin's code does not start with ``<plugin id>.`` (core's: ``core.``), or a code
        is shipped twice.
    """
    app = _app(app)
    shipped = app.extensions.get(SHIPPED_KEY)
    if shipped is not None:
        return shipped
    registry = rule_registry(app)
    shipped = {}
    for plugin_id, folders in get_plugins(app).contributions("register_standards"):
        prefix = CORE_CODE_PREFIX if plugin_id.startswith(CORE_PREFIX) else f"{plugin_id}."
        for entry in folders:
            try:
                package, folder = entry
            except (TypeError, ValueError):
                raise PluginError(f"plugin {plugin_id!r}: register_standards returns "
                                  f"(package, folder) pairs, not {entry!r}") from None
            for node in _files(package, folder):
                source = f"{package}:{folder}/{node.name}"
                try:
                    standard, canonical = _parsed(node, source, registry)
                except StandardError as error:
                    raise PluginError(f"plugin {plugin_id!r} ships a standard that does not "
                                      f"load: {error}") from error
                if not standard.code.startswith(prefix):
                    raise PluginError(f"plugin {plugin_id!r} ships standard {standard.code!r} "
                                      f"({source}): its codes start with '{prefix}'")
                if standard.code in shipped:
                    raise PluginError(f"standard {standard.code!r} is shipped twice "
                                      f"({shipped[standard.code].source} and {source})")
                shipped[standard.code] = ShippedStandard(plugin_id, standard, canonical, source)
    app.extensions[SHIPPED_KEY] = shipped
    return shipped


def reserved_prefix(code: str, app: Flask | None = None) -> str | None:
    """The prefix that reserves ``code`` for shipped standards (``core.`` or a loaded
    plugin's ``<id>.``), or ``None`` when a tenant may use it for a standard of its own."""
    if code.startswith(CORE_CODE_PREFIX):
        return CORE_CODE_PREFIX
    for plugin_id in get_plugins(_app(app)).ids():
        if code.startswith(f"{plugin_id}."):
            return f"{plugin_id}."
    return None


def init_app(app: Flask) -> None:
    """Build the registry and the shipped catalogue now, so a bad plugin fails at start."""
    rule_registry(app)
    shipped_standards(app)


def shipped_by_kind(app: Flask | None = None) -> dict[str, tuple[ShippedStandard, ...]]:
    """:func:`shipped_standards` indexed by the record kinds each applies to (cached)."""
    app = _app(app)
    index = app.extensions.get(SHIPPED_KEY + ".by_kind")
    if index is None:
        grouped: dict[str, list[ShippedStandard]] = {}
        for code in sorted(shipped_standards(app)):
            shipped = shipped_standards(app)[code]
            for kind in shipped.standard.applies_to:
                grouped.setdefault(kind, []).append(shipped)
        index = app.extensions[SHIPPED_KEY + ".by_kind"] = {k: tuple(v) for k, v in grouped.items()}
    return index
