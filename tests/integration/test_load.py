"""Saturating load on a real cluster: client processes writing history segments.

A run with ``rate: 0`` spreads the queue workload's pipelined publishes over
client processes; their segments are merged into ``history.jsonl``. The
merged history must be as well-formed as one the harness wrote alone and
give the same verdict; the client processes must not outlive a harness
stopped by SIGTERM, and after a SIGKILL they end on their own and ``clean``
merges what they wrote.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from chaosrun import assert_nothing_left, results_json, run_dir_of

from harness.clientprocs import EXE
from harness.history import load_history
from harness.runstate import pid_is

pytestmark = pytest.mark.integration

FLAT_OUT = ["--set", "workload.rate=0", "--set", "workload.processes=2"]


def client_ops(run_dir: Path) -> dict[str, int]:
    """Counts of the merged history's publishes by type, and of the client process ids."""
    ops = load_history(run_dir / "history.jsonl").ops
    pub = ops[ops["f"] == "publish"]
    counts = {str(k): int(v) for k, v in pub["type"].value_counts().items()}
    counts["processes"] = int(pub["process"].nunique())
    return counts


def wellformed_counts(run_dir: Path) -> dict[str, int]:
    return results_json(run_dir)["checkers"]["wellformed"]["counts"]


def test_client_processes_give_a_well_formed_history_and_the_same_verdict(
    nats_chaos, tmp_path: Path
) -> None:
    verdicts = {}
    for label, how in (
        ("processes", FLAT_OUT),
        ("harness alone", ["--set", "workload.window=1", "--set", "workload.processes=0"]),
    ):
        proc = nats_chaos("run", "scenarios/quick.yaml", "--set", "time_limit=10", *how)
        out, err = proc.communicate(timeout=300)
        run_dir = run_dir_of(tmp_path, "quick")
        result = results_json(run_dir)
        assert proc.returncode == 0, (label, out, err)
        assert set(wellformed_counts(run_dir).values()) == {0}, label
        assert not (run_dir / "segments").exists()
        verdicts[label] = (result["valid"], result["anomalies"])
        counts = client_ops(run_dir)
        assert counts["invoke"] == counts["ok"] + counts.get("fail", 0) + counts.get("info", 0)
        if label == "processes":
            assert result["clients"] == {"window": 128, "processes": 2}
            assert counts["processes"] >= 9 * 128  # every worker's whole window was used
        else:
            assert result["clients"] == {"window": 1, "processes": 0}
        time.sleep(1.1)  # the next run's folder is stamped with another second
    assert verdicts["processes"] == verdicts["harness alone"] == (True, [])


def segment_oks(run_dir: Path) -> int:
    return sum(p.read_bytes().count(b'"type":"ok"') for p in run_dir.glob("segments/*.jsonl"))


def wait_for_segments(tmp_path: Path, scenario: str, timeout: float = 120) -> Path:
    """Until the client processes' segments hold some acknowledged publishes; the run folder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        where = tmp_path / "results" / scenario
        runs = sorted(p for p in where.iterdir() if p.name != "latest") if where.exists() else []
        if runs and segment_oks(runs[-1]) > 500:
            return runs[-1]
        time.sleep(0.2)
    raise AssertionError("the client processes never published")


def client_pids(tmp_path: Path) -> tuple[str, list[int]]:
    [path] = (tmp_path / "state").glob("nc*.json")
    state = json.loads(path.read_text())
    pids = [int(p) for p, exe in state["pids"].items() if exe == EXE]
    assert len(pids) == 2 and all(pid_is(p, EXE) for p in pids)
    return state["tag"], pids


def gone(pids: list[int], within: float) -> bool:
    deadline = time.monotonic() + within
    while any(pid_is(p, EXE) for p in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def test_sigterm_of_the_harness_ends_its_client_processes(nats_chaos, tmp_path: Path) -> None:
    proc = nats_chaos("run", "scenarios/quick.yaml", "--set", "time_limit=120", *FLAT_OUT)
    run_dir = wait_for_segments(tmp_path, "quick")
    tag, pids = client_pids(tmp_path)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 143, (out, err)
    assert gone(pids, 0)  # before the harness exited
    assert results_json(run_dir)["interrupted"] == "SIGTERM"
    counts = wellformed_counts(run_dir)  # the processes recorded their ops in flight
    assert counts["missing-completion"] == counts["time-decreasing"] == 0
    assert set(counts.values()) == {0}
    assert client_ops(run_dir)["ok"] > 500
    assert not (run_dir / "segments").exists()
    assert_nothing_left(tag, tmp_path / "state")


def test_sigkilled_harness_client_processes_end_and_clean_merges_their_segments(
    nats_chaos, tmp_path: Path
) -> None:
    proc = nats_chaos("run", "scenarios/quick.yaml", "--set", "time_limit=120", *FLAT_OUT)
    run_dir = wait_for_segments(tmp_path, "quick")
    tag, pids = client_pids(tmp_path)
    proc.kill()
    proc.wait(30)
    assert gone(pids, 10)  # the kernel told them their harness died
    acked = segment_oks(run_dir)
    assert acked > 500
    cleaner = nats_chaos("clean")
    out, err = cleaner.communicate(timeout=120)
    assert cleaner.returncode == 0, err
    history = run_dir / "history.jsonl"
    assert f"{tag}: merge the client processes' history segments into {history}" in out
    assert not (run_dir / "segments").exists()
    ops = load_history(history).ops
    assert (ops["type"] == "ok").sum() == acked
    assert list(ops["index"]) == list(range(len(ops)))
    assert ops["time"].is_monotonic_increasing
    assert_nothing_left(tag, tmp_path / "state")
