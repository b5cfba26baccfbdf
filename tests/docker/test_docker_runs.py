"""Runs on the Docker backend: the same verdicts as local, and nothing left behind.

Kill and stream-leader partitions must stay valid; coordinated power loss
must lose acknowledged writes with the default sync_interval and none with
``always``. After a normal end, a failed run (a node's container removed
under the harness), SIGTERM, and SIGKILL + ``clean``, no container, network,
host link, mount, work dir or state file of the run may remain (listed by
the run's label).
"""

from __future__ import annotations

import csv
import re
import signal
import time
from pathlib import Path

import pytest
from folders import the_folder

from harness.backends.docker import RUN_LABEL
from harness.history import load_history

pytestmark = pytest.mark.docker

SHORT = ["--set", "time_limit=14", "--set", "schedule.quiet=3"]
LONG = ["--set", "time_limit=120"]
WINDOWS = ["--set", "schedule.interval=5", "--set", "schedule.duration=3"]


def wait_for_main_phase(run_dir_of, scenario: str, timeout: float = 90) -> Path:
    """Until the run has acknowledged some publishes; return its folder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            run_dir = run_dir_of(scenario)
        except (FileNotFoundError, AssertionError):
            run_dir = None
        if run_dir is not None:
            hist = run_dir / "history.jsonl"
            if hist.exists() and hist.read_bytes().count(b'"type":"ok"') > 50:
                return run_dir
        time.sleep(0.2)
    raise AssertionError("the run never reached its main phase")


def only_tag(tmp_path: Path) -> str:
    [state] = list((tmp_path / "state").glob("nc*.json"))
    return state.stem


def test_kill_run_is_valid_and_leaves_nothing(
    nats_chaos, run_dir_of, results, assert_nothing_left, node_image
) -> None:
    proc = nats_chaos("run", "scenarios/kill.yaml", "--backend", "docker", *SHORT, *WINDOWS)
    out, err = proc.communicate(timeout=240)
    run_dir = run_dir_of("kill")
    result = results(run_dir)
    assert proc.returncode == 0, (out, err)
    assert out.startswith("VALID: no anomalies in ")
    q = result["checkers"]["queue"]
    assert q["acknowledged_count"] > 0 and q["lost_count"] == 0
    assert all(d["status"] == "read" for d in q["per_node"].values())
    assert result["server"]["backend"] == "docker"
    assert result["server"]["image"] == node_image
    assert result["isolated_for_reads"] is True
    ops = load_history(run_dir / "history.jsonl").ops
    kills = [v for v in ops.loc[ops["f"] == "kill", "value"] if "start" in v]
    assert len(kills) >= 2 and all(v["nodes"] for v in kills)
    log = (run_dir / "nodes" / "n1" / "nats-server.log").read_text()
    assert "Starting nats-server" in log and re.search(r"Name:\s+n1\b", log)
    assert (run_dir / "nodes" / "n2" / "nats-server.conf").exists()
    assert (run_dir / "nodes" / "n3" / "data.tar.gz").exists()
    assert_nothing_left(result["tag"])


def test_stream_leader_partition_is_valid(
    nats_chaos, run_dir_of, results, assert_nothing_left
) -> None:
    proc = nats_chaos(
        "run", "scenarios/partition-leader.yaml", "--backend", "docker",
        "--set", "time_limit=18", "--set", "schedule.quiet=3",
        "--set", "schedule.interval=8", "--set", "schedule.duration=5",
    )  # fmt: skip
    out, err = proc.communicate(timeout=240)
    run_dir = run_dir_of("partition-leader")
    result = results(run_dir)
    assert proc.returncode == 0, (out, err)
    assert result["checkers"]["queue"]["lost_count"] == 0
    ops = load_history(run_dir / "history.jsonl").ops
    starts = [v for v in ops.loc[ops["f"] == "partition", "value"] if "start" in v]
    assert len(starts) == 2
    for v in starts:  # the leader against both others, in both directions
        leader = v["leader"]
        assert sorted(v["grudge"][leader]) == sorted({"n1", "n2", "n3"} - {leader})
    fails = ops[(ops["f"] == "publish") & (ops["type"].isin(["fail", "info"]))]
    assert len(fails) > 0, "cutting the leader off must disturb publishing"
    assert_nothing_left(result["tag"])


def test_power_loss_default_loses_acked_writes_always_does_not(
    nats_chaos, tmp_path: Path, results, assert_nothing_left
) -> None:
    proc = nats_chaos(
        "compare", "scenarios/power-loss-coordinated.yaml",
        "--vary", "server.sync_interval=default,always",
        "--set", "backend=docker", "--set", "time_limit=14", "--set", "schedule.quiet=5",
    )  # fmt: skip
    out, err = proc.communicate(timeout=420)
    assert proc.returncode == 0, (out, err)
    cmp_dir = the_folder(tmp_path / "results" / "compare")
    with open(cmp_dir / "compare.csv") as fh:
        rows = {r["variant"]: r for r in csv.DictReader(fh)}
    default = rows["server.sync_interval=default"]
    always = rows["server.sync_interval=always"]
    assert int(default["acknowledged"]) > 0 and int(always["acknowledged"]) > 0
    assert int(default["lost"]) > 0 and default["verdict"] == "INVALID"
    assert int(always["lost"]) == 0 and always["verdict"] == "valid"
    for variant in (default, always):
        result = results(Path(variant["run_dir"]))
        assert result["server"]["backend"] == "docker"
        ops = load_history(Path(variant["run_dir"]) / "history.jsonl").ops
        [start] = [v for v in ops.loc[ops["f"] == "power-loss", "value"] if "start" in v]
        assert start["coordinated"] is True and sorted(start["nodes"]) == ["n1", "n2", "n3"]
        assert_nothing_left(result["tag"])


def test_failed_run_leaves_nothing(
    nats_chaos, run_dir_of, results, assert_nothing_left, dc, tmp_path: Path
) -> None:
    proc = nats_chaos("run", "scenarios/kill.yaml", "--backend", "docker", *SHORT, *WINDOWS)
    run_dir = wait_for_main_phase(run_dir_of, "kill")
    tag = only_tag(tmp_path)
    dc.containers.get(f"{tag}-n2").remove(force=True)  # the engine loses a node under the run
    out, err = proc.communicate(timeout=240)
    result = results(run_dir)
    assert proc.returncode != 0, (out, err)
    assert result["error"] and "n2" in result["error"]
    assert result["valid"] != True  # noqa: E712 - a failed run proves nothing
    assert_nothing_left(tag)


def test_sigterm_stops_the_run_and_removes_everything(
    nats_chaos, run_dir_of, results, assert_nothing_left, dc, tmp_path: Path
) -> None:
    proc = nats_chaos(
        "run", "scenarios/kill.yaml", "--backend", "docker", "--set", "time_limit=120"
    )
    run_dir = wait_for_main_phase(run_dir_of, "kill")
    tag = only_tag(tmp_path)
    running = dc.containers.list(filters={"label": f"{RUN_LABEL}={tag}"})
    assert len(running) >= 2  # a kill window may have one down
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, (out, err)
    assert results(run_dir)["interrupted"] == "SIGTERM"
    assert_nothing_left(tag)


def test_sigkilled_harness_is_cleaned_by_label(
    nats_chaos, run_dir_of, docker_leftovers, assert_nothing_left, tmp_path: Path
) -> None:
    proc = nats_chaos(
        "run", "scenarios/kill.yaml", "--backend", "docker", "--set", "time_limit=120"
    )
    wait_for_main_phase(run_dir_of, "kill")
    tag = only_tag(tmp_path)
    proc.kill()
    proc.communicate(timeout=30)
    left = docker_leftovers(tag)
    assert f"network {tag}-net" in left and any(x.startswith("container ") for x in left)
    clean = nats_chaos("clean")
    out, err = clean.communicate(timeout=120)
    assert clean.returncode == 0, err
    assert f"{tag}: remove network {tag}-net" in out
    assert_nothing_left(tag)


def test_no_engine_is_exit_3_with_the_fix(nats_chaos, tmp_path: Path) -> None:
    proc = nats_chaos(
        "run", "scenarios/kill.yaml", "--backend", "docker",
        extra_env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"},
    )  # fmt: skip
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert err.count("\n") == 1 and "Docker engine" in err and "dockerd" in err
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
