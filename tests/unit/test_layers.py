"""Imports go one way: harness -> checkers, never back (docs/extending.md, the layers).

Checkers are pure functions of a history; if ``checkers`` imported
``harness``, a checker could depend on a cluster, and ``harness.results``
-> ``checkers.report`` -> ``harness.results`` was a real cycle once.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# PIL: pillow, which matplotlib needs; the report encodes its plots' pixels with it
ALLOWED = {"numpy", "pandas", "matplotlib", "PIL", "rich", "checkers", "__future__"}


def _imports(path: Path) -> set[str]:
    """Top-level package names ``path`` imports (absolute imports only)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_checkers_import_only_the_stdlib_numpy_pandas_and_themselves() -> None:
    """No ``harness`` import anywhere under checkers/: so no cycle through it either."""
    stdlib = set(sys.stdlib_module_names)
    bad = {}
    for path in sorted((ROOT / "checkers").rglob("*.py")):
        outside = _imports(path) - ALLOWED - stdlib
        if outside:
            bad[str(path.relative_to(ROOT))] = sorted(outside)
    assert bad == {}


def test_importing_checkers_loads_no_harness_module() -> None:
    code = (
        "import json, sys\n"
        "import checkers.queue, checkers.compose, checkers.report, checkers.verdict\n"
        "import checkers.report.markdown, checkers.report.terminal, checkers.wellformed\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'harness')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == []


def test_the_harness_side_imports_cleanly_from_a_fresh_interpreter() -> None:
    """harness.history imports checkers.schema at its top: that must not need harness."""
    code = (
        "import harness.history, harness.results, harness.resultfolder, harness.cli\n"
        "import checkers.compose\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
