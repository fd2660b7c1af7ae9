"""servq installs as one import package, ``servq``, and the code base says so.

The repository keeps the owner's top-level folders (``core/``, ``plugins/``, ``tenants/``,
``cli.py``); ``src/servq/`` maps them into the one namespace (see its ``__init__``). These
tests look at what the installed distribution puts into site-packages, at what an
interpreter outside the repository can import, and at every import statement of the tree.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from click.testing import CliRunner

import servq
import servq.core
from servq import cli

ROOT = Path(__file__).resolve().parents[1]
OURS = ("core", "plugins", "tenants", "cli")


def test_the_distribution_installs_servq_and_nothing_else():
    dist = metadata.distribution("servq")
    assert dist.read_text("top_level.txt").split() == ["servq"]
    top = set()
    for file in dist.files or ():
        first = file.parts[0]
        if first == ".." or first.endswith((".dist-info", ".egg-info")) or first == "__pycache__":
            continue  # the console script, the metadata
        if first.startswith("__editable__"):
            continue  # setuptools' own path file of an editable (development) install
        top.add(first.removesuffix(".py"))
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct.get("dir_info", {}).get("editable"):
        assert top == set()  # the package is read from src/servq, nothing is copied
    else:
        assert top == {"servq"}


def test_outside_the_repository_only_servq_is_importable(tmp_path):
    probe = ("import importlib.util as u, servq.core, servq.plugins, servq.tenants, servq.cli; "
             f"print([n for n in {OURS!r} if u.find_spec(n)])")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                         text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"


def test_no_module_imports_our_code_by_its_folder_name():
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in (".git", "src", "build", ".venv") or "site-packages" in relative.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in OURS:
                    offenders.append(f"{relative}:{node.lineno}: {name}")
    assert offenders == [], "import servq.<folder> instead:\n" + "\n".join(offenders)


def test_servq_version():
    result = CliRunner().invoke(cli.make_cli(), ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"servq, version {metadata.version('servq')}"
    assert servq.__version__ == metadata.version("servq") == servq.core.__version__
