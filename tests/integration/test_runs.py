"""Real runs on a local 3-node cluster: kill and pause faults, verdicts, nothing left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from chaosrun import assert_nothing_left, results_json, run_dir_of

from harness.history import load_history

pytestmark = pytest.mark.integration


def finished(proc, timeout: float = 240) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.mark.parametrize("kind", ["kill", "pause"])
def test_fault_run_is_valid_and_leaves_nothing(kind, nats_chaos, tmp_path: Path) -> None:
    proc = nats_chaos(
        "run", f"scenarios/{kind}.yaml", "--set", "time_limit=20",
        "--set", "schedule.quiet=3", "--set", "schedule.interval=6", "--set", "schedule.duration=3",
    )  # fmt: skip
    code, out, err = finished(proc)
    run_dir = run_dir_of(tmp_path, kind)
    result = results_json(run_dir)
    assert code == 0, (out, err)
    assert out.splitlines()[0].startswith("VALID: no anomalies in ")
    assert f"results: {run_dir}" in out
    q = result["checkers"]["queue"]
    assert q["acknowledged_count"] > 0
    assert q["lost_count"] == 0
    assert set(q["per_node"]) == {"n1", "n2", "n3"}
    assert all(d["status"] == "read" for d in q["per_node"].values())
    ops = load_history(run_dir / "history.jsonl").ops
    nemesis = ops[ops["process"] == "nemesis"]
    assert (nemesis["f"] == kind).sum() >= 4  # at least two windows, start + stop each
    starts = [v for v in nemesis["value"] if "start" in v]
    assert all(v["nodes"] for v in starts)
    reads = ops[(ops["f"] == "read") & (ops["type"] == "ok")]
    assert sorted(reads["node"]) == ["n1", "n2", "n3"]
    assert result["isolated_for_reads"] is True
    for name in ("scenario.yaml", "summary.md", "harness.log", "nodes/n1/nats-server.log",
                 "nodes/n2/nats-server.conf", "nodes/n3/data.tar.gz"):  # fmt: skip
        assert (run_dir / name).exists(), name
    assert (run_dir.parent / "latest").resolve() == run_dir.resolve()
    assert_nothing_left(result["tag"], tmp_path / "state")
