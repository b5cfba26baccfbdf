"""The command line starts without its heavy layers (harness.lazy).

``nats-chaos --version`` and ``--help`` must not import pandas, numpy,
matplotlib, docker, nats-py or the columnar engine; ``check`` and ``report``
import only what checking a history and drawing its report need: no client
(nats-py), cluster (docker, asyncssh), fault (networkx), scenario model
(pydantic) or workload. Each check runs in a fresh interpreter, because this
test process has long imported them all.
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
# What neither check nor report uses: the run-time layers of a run.
RUN_ONLY = ("nats", "networkx", "docker", "asyncssh", "pydantic", "harness.workloads",
            "harness.scenario", "harness.faults", "harness.backends", "harness.clients",
            "harness.interpreter", "harness.servers")  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]


# Imported, not only registered by harness.lazy (a lazy module is loaded on first use).
LOADED = (
    "def loaded(m):\n"
    "    return m in sys.modules and type(sys.modules[m]).__name__ != '_LazyModule'\n"
)


def _fresh(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout


def _loaded_after(argv: list[str], modules: tuple[str, ...] = HEAVY) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after ``nats-chaos ARGV``."""
    code = (
        "import json, sys\n"
        "from harness.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit as e:\n    print('exit', e.code)\n"
        f"{LOADED}print(json.dumps(sorted(m for m in {modules!r} if loaded(m))))\n"
    )
    return json.loads(_fresh(code).splitlines()[-1])


def test_importing_the_cli_loads_no_heavy_module() -> None:
    assert _loaded_after([]) == []


def test_version_and_help_load_no_heavy_module() -> None:
    assert _loaded_after(["--version"]) == []
    assert _loaded_after(["--help"]) == []


def test_check_help_lists_the_workloads_without_importing_them() -> None:
    assert _loaded_after(["check", "--help"], HEAVY + RUN_ONLY) == []


def _history(path: Path) -> Path:
    """A small queue history by hand: three acknowledged publishes, one of them lost."""
    ops = []
    for i, v in enumerate((1, 2, 3)):
        ops += [("invoke", i, "publish", v, "n1"), ("ok", i, "publish", v, "n1")]
    ops += [("invoke", 3, "read", None, "n1"), ("ok", 3, "read", [[1, 1], [2, 2]], "n1")]
    keys = ("type", "process", "f", "value", "node")
    lines = [
        json.dumps({"index": k, "time": k * 1_000_000, **dict(zip(keys, op, strict=True))})
        for k, op in enumerate(ops)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_check_imports_no_run_time_layer_and_no_plotting(tmp_path: Path) -> None:
    history = _history(tmp_path / "history.jsonl")
    code = (
        "import json, subprocess, sys\n"
        "from click.testing import CliRunner\n"
        "from harness.cli import main\n"
        f"out = CliRunner().invoke(main, ['check', {str(history)!r}]).output\n"
        "print(json.dumps(out))\n"
        f"{LOADED}print(json.dumps([m for m in {(*RUN_ONLY, 'matplotlib')!r} if loaded(m)]))\n"
    )
    *_, out, loaded = _fresh(code).splitlines()
    assert json.loads(out).startswith("INVALID")  # it did check: the lost publish 3 was found
    assert json.loads(loaded) == []
    # and a command that needs the heavy layers still loads them
    assert {"numpy", "pandas"} <= set(_loaded_after(["check", str(history)]))
    # a folder `check --report` wrote has no scenario: its report needs none either
    assert _loaded_after(["check", str(history), "--report", str(tmp_path)], RUN_ONLY) == []
    assert _loaded_after(["report", str(tmp_path)], RUN_ONLY) == []
    assert (tmp_path / "report.html").is_file()


def test_report_of_a_run_imports_no_run_time_layer(tmp_path: Path) -> None:
    from fakerun import run, scenario

    out, _ = run(tmp_path, scenario())
    (out.run_dir / "report.html").unlink()
    assert _loaded_after(["report", str(out.run_dir)], RUN_ONLY) == []
    assert (out.run_dir / "report.html").is_file()
    assert "matplotlib" in _loaded_after(["report", str(out.run_dir)])


def test_check_lists_every_workload_and_refuses_another() -> None:
    from harness.workloads import REGISTRY

    runner = CliRunner()
    text = runner.invoke(main, ["check", "--help"]).output
    assert f"[{'|'.join(sorted(REGISTRY))}]" in text.replace("\n", "").replace(" ", "")
    res = runner.invoke(main, ["check", "x.jsonl", "--workload", "nope"])
    assert res.exit_code == 2
    assert "'nope' is not one of" in res.output
