"""`nats-chaos check HISTORY --workload NAME` re-checks a saved run of every workload.

Each registered workload runs on the fake cluster under a kill; `check` on its
history and nodes folder must give the run's own verdict line and exit code,
and the workload's headline checker must be among the checkers it ran.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from fakerun import run, scenario

from harness import workloads
from harness.cli import main
from harness.results import exit_code_for, verdict_line

FIELDS: dict[str, dict[str, Any]] = {"kv": {"stream": {"name": "KV_chaos"}}}


@pytest.mark.parametrize("name", sorted(workloads.REGISTRY))
def test_check_gives_the_runs_own_verdict(name: str, tmp_path) -> None:
    sc = scenario(
        workload={"name": name},
        faults=[{"kind": "kill", "targets": "leader"}],
        **FIELDS.get(name, {}),
    )
    outcome, _ = run(tmp_path, sc)
    run_dir = outcome.run_dir
    saved = json.loads((run_dir / "results.json").read_text())
    res = CliRunner().invoke(
        main,
        ["check", str(run_dir / "history.jsonl"), "--workload", name,
         "--nodes-dir", str(run_dir / "nodes")],
    )  # fmt: skip
    assert res.exit_code == exit_code_for(saved), res.output
    assert res.stdout.strip() == verdict_line(saved)
    assert saved["valid"] is True, verdict_line(saved)  # the fake loses nothing under a kill
    checked = json.loads(
        CliRunner()
        .invoke(main, ["check", str(run_dir / "history.jsonl"), "--workload", name, "--json"])
        .stdout
    )
    assert workloads.REGISTRY[name].headline_checker in checked["checkers"]


def test_each_workload_inherits_what_it_is_checked_with_from_its_checkspec() -> None:
    """``check`` reads ``harness.checkspec.CHECKS`` (no workload imported): every registered
    workload has its class there, inherits it, and restates none of its attributes."""
    from harness.checkspec import CHECKS, CheckSpec

    assert sorted(CHECKS) == sorted(workloads.REGISTRY)
    declared = {a for c in CheckSpec.__mro__ for a in getattr(c, "__annotations__", {})}
    assert {"name", "checkers", "headline_checker", "pairs_fs", "offline_fs"} <= declared
    for name, workload in workloads.REGISTRY.items():
        assert issubclass(workload, CHECKS[name]) and workload.name == name
        others = [k for k in workload.__mro__ if k not in CHECKS[name].__mro__]
        restated = [f"{k.__name__}.{a}" for k in others for a in sorted(declared & set(vars(k)))]
        assert restated == [], f"{name} restates {restated}"


def test_each_workload_declares_every_anomaly_its_checkers_can_report() -> None:
    """checkspec's ``anomalies`` (what ``expect:`` accepts) holds every checker's ANOMALIES."""
    import importlib

    from checkers.compose import REGISTRY as CHECKERS
    from harness.checkspec import CHECKS

    for name, spec in CHECKS.items():
        for checker in spec.checkers:
            module = importlib.import_module(CHECKERS[checker].__module__)
            missing = set(getattr(module, "ANOMALIES", ())) - set(spec.anomalies)
            assert not missing, f"{name}: {checker} reports {sorted(missing)}, not declared"
