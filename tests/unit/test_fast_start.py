"""The command line starts without its heavy layers (harness.lazy).

``nats-chaos --version`` and ``--help`` must not import pandas, numpy,
matplotlib, docker, nats-py or the columnar engine: each check runs in a
fresh interpreter, because this test process has long imported them all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from harness.cli import main

HEAVY = ("pandas", "numpy", "matplotlib", "docker", "nats", "polars", "pyarrow", "duckdb")
ROOT = Path(__file__).resolve().parents[2]


def _fresh(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout


def _loaded_after(argv: list[str]) -> list[str]:
    code = (
        "import json, sys\n"
        "from harness.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    return json.loads(_fresh(code).splitlines()[-1])


def test_importing_the_cli_loads_no_heavy_module() -> None:
    assert _loaded_after([]) == []


def test_version_and_help_load_no_heavy_module() -> None:
    assert _loaded_after(["--version"]) == []
    assert _loaded_after(["--help"]) == []


def test_a_command_that_needs_them_still_loads_them() -> None:
    # check's --help lists the workloads: the registry (and what it imports) loads then
    assert "numpy" in _loaded_after(["check", "--help"])


def test_check_lists_every_workload_and_refuses_another() -> None:
    from harness.workloads import REGISTRY

    runner = CliRunner()
    text = runner.invoke(main, ["check", "--help"]).output
    assert f"[{'|'.join(sorted(REGISTRY))}]" in text.replace("\n", "").replace(" ", "")
    res = runner.invoke(main, ["check", "x.jsonl", "--workload", "nope"])
    assert res.exit_code == 2
    assert "'nope' is not one of" in res.output
