"""Plugins import core only through the plugin surface, ``core.surface``.

Every module under ``plugins/`` (their ``tests`` excepted) and ``examples/`` is parsed with
``ast``; an import of any other module of ``core`` or ``tenants`` fails the test, naming the
file, the line and the import. Core's inner layout is then free to change.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import core.surface

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = "core.surface"
GUARDED = ("core", "tenants")


def forbidden_imports(path: Path) -> list[str]:
    """``"<file>:<line>: <import>"`` for each import of core or tenants other than the surface."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            text = f"from {node.module} import {', '.join(a.name for a in node.names)}"
            if node.module in GUARDED:  # ``from core import db`` imports the module core.db
                modules = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
            text = f"import {', '.join(a.name for a in node.names)}"
        else:
            continue
        if any(m.split(".")[0] in GUARDED and m != ALLOWED for m in modules):
            found.append((node.lineno, f"{path.relative_to(ROOT)}:{node.lineno}: {text}"))
    return [line for _, line in sorted(found)]


def plugin_modules() -> list[Path]:
    # plugins/<plugin>/tests/... may import core's internals to assert on them
    paths = [p for p in (ROOT / "plugins").rglob("*.py") if "tests" not in p.relative_to(ROOT).parts[2:]]
    return sorted(paths + list((ROOT / "examples").rglob("*.py")))


def test_plugins_import_only_the_surface():
    modules = plugin_modules()
    assert ROOT / "plugins" / "property" / "kpis.py" in modules
    assert ROOT / "examples" / "servq-example-plugin" / "servq_example" / "__init__.py" in modules
    assert not any("tests" in p.parts for p in modules if p.is_relative_to(ROOT / "plugins"))
    offenders = [line for path in modules for line in forbidden_imports(path)]
    assert offenders == [], "plugins must import core only via core.surface:\n" + "\n".join(offenders)


def test_the_check_names_file_line_and_import(monkeypatch):
    module = ROOT / "plugins" / "_surface_probe.py"
    source = ("from core.surface import hookimpl\n"
              "def f():\n    from core.schedules import matches_statement\n"
              "import tenants.manifest\nfrom core import db\n")
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: source)
    assert forbidden_imports(module) == [
        "plugins/_surface_probe.py:3: from core.schedules import matches_statement",
        "plugins/_surface_probe.py:4: import tenants.manifest",
        "plugins/_surface_probe.py:5: from core import db",
    ]


def test_every_surface_name_resolves_and_is_described():
    described = core.surface.__doc__
    for name in core.surface.__all__:
        assert getattr(core.surface, name) is not None
        assert f"``{name}" in described, f"{name} has no description in core.surface's docstring"


def test_importing_the_surface_loads_nothing_of_core():
    """``import core.surface`` is cheap and has no side effects: names load on first use."""
    code = ("import sys, core.surface; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('core', 'tenants')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['core', 'core.surface']"
