"""A run stopped by SIGTERM, Ctrl-C or SIGKILL: history kept, nothing left (after clean)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from chaosrun import assert_nothing_left, results_json, run_dir_of, server_pids_under

from harness.history import load_history

pytestmark = pytest.mark.integration


def wait_for_main_phase(tmp_path: Path, scenario: str, timeout: float = 90) -> Path:
    """Until the run has recorded some acknowledged publishes; return its folder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        root = tmp_path / "results" / scenario
        if root.exists():
            run_dir = run_dir_of(tmp_path, scenario)
            hist = run_dir / "history.jsonl"
            if hist.exists() and hist.read_bytes().count(b'"type":"ok"') > 50:
                return run_dir
        time.sleep(0.2)
    raise AssertionError("the run never reached its main phase")


def state_tags(state_dir: Path) -> list[str]:
    return [p.stem for p in state_dir.glob("nc*.json")]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_the_run_and_releases_everything(sig, code, nats_chaos, tmp_path) -> None:
    proc = nats_chaos("run", "scenarios/kill.yaml", "--set", "time_limit=120")
    run_dir = wait_for_main_phase(tmp_path, "kill")
    [tag] = state_tags(tmp_path / "state")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, (out, err)
    assert f"interrupted by {sig.name}" in out
    result = results_json(run_dir)
    assert result["interrupted"] == sig.name
    assert result["valid"] != True  # noqa: E712 - an interrupted run proves nothing
    assert len(load_history(run_dir / "history.jsonl").ops) > 100
    assert_nothing_left(tag, tmp_path / "state")


def test_sigkilled_harness_keeps_history_and_clean_removes_leftovers(
    nats_chaos, tmp_path: Path
) -> None:
    proc = nats_chaos("run", "scenarios/kill.yaml", "--set", "time_limit=120")
    run_dir = wait_for_main_phase(tmp_path, "kill")
    [tag] = state_tags(tmp_path / "state")
    busy = nats_chaos("clean")  # the harness still runs: its run is not a leftover
    assert busy.communicate(timeout=60)[0].strip() == "nothing to clean"
    assert server_pids_under(f"/var/tmp/nats-chaos/{tag}/")
    proc.kill()
    proc.wait(30)
    time.sleep(0.5)
    # the servers outlive their harness: exactly the leftovers clean must remove (a node
    # the kill fault had down when the harness died has no process left to end)
    alive = server_pids_under(f"/var/tmp/nats-chaos/{tag}/")
    assert alive
    state = json.loads((tmp_path / "state" / f"{tag}.json").read_text())
    assert set(alive) <= {int(pid) for pid in state["pids"]}
    loaded = load_history(run_dir / "history.jsonl")
    assert len(loaded.ops) > 100
    dry = nats_chaos("clean", "--dry-run")
    out, _ = dry.communicate(timeout=60)
    assert f"{tag}: kill pid" in out and f"{tag}: delete namespace {tag}-n1" in out
    assert server_pids_under(f"/var/tmp/nats-chaos/{tag}/")
    cleaner = nats_chaos("clean")
    out, err = cleaner.communicate(timeout=60)
    assert cleaner.returncode == 0, err
    for pid in alive:
        assert f"{tag}: kill pid {pid}" in out
    assert_nothing_left(tag, tmp_path / "state")
    again = nats_chaos("clean")
    assert again.communicate(timeout=60)[0].strip() == "nothing to clean"


def test_sigkilled_harness_with_lazyfs_mounts_is_cleaned(nats_chaos, tmp_path: Path) -> None:
    proc = nats_chaos("run", "scenarios/power-loss-single.yaml", "--set", "time_limit=120")
    run_dir = wait_for_main_phase(tmp_path, "power-loss-single")
    [tag] = state_tags(tmp_path / "state")
    state = json.loads((tmp_path / "state" / f"{tag}.json").read_text())
    assert len(state["mounts"]) == 3
    assert sorted(state["pids"].values()).count("harness.lazyfs") == 3
    proc.kill()
    proc.wait(30)
    mounts = Path("/proc/mounts").read_text()
    assert all(m in mounts for m in state["mounts"])  # left behind by the killed harness
    cleaner = nats_chaos("clean")
    out, err = cleaner.communicate(timeout=120)
    assert cleaner.returncode == 0, err
    for m in state["mounts"]:
        assert f"{tag}: unmount {m}" in out
    assert len(load_history(run_dir / "history.jsonl").ops) > 100
    assert_nothing_left(tag, tmp_path / "state")
