"""A run stopped by SIGTERM, Ctrl-C, SIGKILL or a full disk: what was recorded is kept, and
nothing of the run is left (after ``clean``, which copies the nodes' files first).

The signals are sent when ``harness.log`` says the run reached a phase, so each case hits
the window it names: the main phase, collect, the checkers, the report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaosrun import (
    ROOT,
    assert_nothing_left,
    assert_whole_files,
    results_json,
    server_pids_under,
    wait_for_log,
)

from harness.history import load_history

pytestmark = pytest.mark.integration


def wait_for_main_phase(
    tmp_path: Path, scenario: str, timeout: float = 90, root: Path | None = None
) -> Path:
    """Until the run has recorded some acknowledged publishes; return its folder (under
    ``root``, by default the test's results dir)."""
    deadline = time.monotonic() + timeout
    where = (root if root is not None else tmp_path / "results") / scenario
    while time.monotonic() < deadline:
        runs = sorted(p for p in where.iterdir() if p.name != "latest") if where.exists() else []
        if runs:
            run_dir = runs[-1]
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
    assert f"{tag}: copy node files from /var/tmp/nats-chaos/{tag} into {run_dir}/nodes" in out
    for node in ("n1", "n2", "n3"):  # what a normal run's collect writes, from the work dir
        files = {p.name for p in (run_dir / "nodes" / node).iterdir()}
        assert {"nats-server.conf", "nats-server.log", "data.tar.gz"} <= files, node
        assert b"Server is ready" in (run_dir / "nodes" / node / "nats-server.log").read_bytes()
    assert_whole_files(run_dir)
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
    assert_store_archived(run_dir, ["n1", "n2", "n3"])  # copied while lazyfs still served it
    assert_nothing_left(tag, tmp_path / "state")


def assert_store_archived(run_dir: Path, nodes: list[str]) -> None:
    """Each node's ``data.tar.gz`` holds its JetStream store (not an empty ``data/``)."""
    for node in nodes:
        with tarfile.open(run_dir / "nodes" / node / "data.tar.gz") as tar:
            names = tar.getnames()
        assert any(n.startswith("data/jetstream/") and n.endswith(".blk") for n in names), node


@pytest.mark.parametrize(
    ("phase", "sig", "code"),
    [
        ("collect", signal.SIGINT, 130),
        ("check", signal.SIGTERM, 143),
        ("report", signal.SIGINT, 130),
    ],
)
def test_a_signal_after_the_main_phase_still_writes_the_whole_result_folder(
    phase, sig, code, nats_chaos, tmp_path: Path
) -> None:
    proc = nats_chaos("run", "scenarios/kill.yaml", "--set", "time_limit=8")
    run_dir = wait_for_main_phase(tmp_path, "kill")
    [tag] = state_tags(tmp_path / "state")
    wait_for_log(run_dir, f"phase: {phase}")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, (out, err)
    assert f"{sig.name}: finishing the checks and the report (again to stop now)" in err
    assert "Traceback" not in err and "Aborted" not in err
    result = results_json(run_dir)
    assert result["interrupted"] is None  # nothing was cut short: the verdict stands
    assert out.splitlines()[0].startswith(("VALID", "INVALID", "UNKNOWN"))
    for name in ("summary.md", "report.html", "history.jsonl", "scenario.yaml"):
        assert (run_dir / name).stat().st_size > 0, name
    assert (run_dir.parent / "latest").resolve() == run_dir.resolve()
    assert (run_dir / "nodes" / "n1" / "nats-server.log").is_file()
    assert_whole_files(run_dir)
    assert_nothing_left(tag, tmp_path / "state")


def test_a_second_signal_in_the_checks_stops_at_once_and_keeps_the_history(
    nats_chaos, tmp_path: Path
) -> None:
    proc = nats_chaos("run", "scenarios/kill.yaml", "--set", "time_limit=15")
    run_dir = wait_for_main_phase(tmp_path, "kill")
    [tag] = state_tags(tmp_path / "state")
    wait_for_log(run_dir, "phase: check")
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)  # two of one signal before its handler runs would count once
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, (out, err)  # the first signal names the exit code
    assert err.strip().splitlines()[-1] == (
        f"nats-chaos: stopped by a second SIGINT; the history and the files written so far "
        f"are in {run_dir} (check them again with: nats-chaos report {run_dir})"
    )
    assert "Traceback" not in err
    assert not (run_dir / "report.html").exists()  # stopped before the end
    if (run_dir / "results.json").exists():  # written whole, or not at all
        assert results_json(run_dir)["scenario"] == "kill"
    assert len(load_history(run_dir / "history.jsonl").ops) > 1000
    assert (run_dir.parent / "latest").resolve() == run_dir.resolve()
    assert_store_archived(run_dir, ["n1", "n2", "n3"])  # teardown finished before the stop
    assert_whole_files(run_dir)
    assert_nothing_left(tag, tmp_path / "state")
    again = nats_chaos("report", str(run_dir))
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert results_json(run_dir)["valid"] in (True, False, "unknown")


def test_ctrl_c_to_the_process_group_of_a_power_loss_run_keeps_the_node_data(
    env, tmp_path: Path
) -> None:
    cmd = [sys.executable, "-m", "harness.cli", "run", "scenarios/power-loss-single.yaml",
           "--set", "time_limit=120", "--results-dir", str(tmp_path / "results")]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,  # a terminal's process group of its own, as with Ctrl-C
    )  # fmt: skip
    try:
        run_dir = wait_for_main_phase(tmp_path, "power-loss-single")
        [tag] = state_tags(tmp_path / "state")
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    assert results_json(run_dir)["interrupted"] == "SIGINT"
    assert_store_archived(run_dir, ["n1", "n2", "n3"])
    assert_whole_files(run_dir)
    assert_nothing_left(tag, tmp_path / "state")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 20 MB tmpfs for the results (a run refuses a results dir under 16 MiB free before it
    starts: the test fills it once the run is going), unmounted afterwards."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def test_a_full_results_disk_ends_with_one_line_and_loses_nothing_recorded(
    nats_chaos, env, tmp_path: Path, small_disk: Path
) -> None:
    cmd = [sys.executable, "-m", "harness.cli", "run", "scenarios/kill.yaml",
           "--set", "time_limit=120", "--results-dir", str(small_disk)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    filler = small_disk / "filler"
    try:  # once the run is going, the disk fills up: 512 KiB are left for it
        wait_for_main_phase(tmp_path, "kill", root=small_disk)
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        with open(filler, "wb") as fh:
            fh.truncate(0)
            fh.write(b"\0" * max(0, free - 512 * 1024))
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, stderr
    assert "Traceback" not in stderr
    [tag] = state_tags(tmp_path / "state")  # kept: the nodes' files are not all copied yet
    [run_dir] = [p for p in (small_disk / "kill").iterdir() if p.name != "latest"]
    work = f"/var/tmp/nats-chaos/{tag}"
    assert (
        stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"nats-chaos: {run_dir}: the result folder could not be written (No space left on "
            f"device); the history has "
        )
    )
    assert stderr.strip().endswith(
        f"ops in {run_dir}/history.jsonl; the nodes' logs and data are kept in {work} "
        "(`nats-chaos clean` copies them into the result folder once there is room)"
    )
    assert_whole_files(run_dir)
    assert len(load_history(run_dir / "history.jsonl").ops) > 1_000
    assert (run_dir / "scenario.yaml").is_file()
    assert (run_dir.parent / "latest").resolve() == run_dir.resolve()
    assert sorted(p.name for p in Path(work).iterdir()) == ["n1", "n2", "n3"]
    assert server_pids_under(work + "/") == []  # the cluster itself is released
    filler.unlink()
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    cleaner = nats_chaos("clean")
    out, err = cleaner.communicate(timeout=120)
    assert cleaner.returncode == 0, err
    assert f"{tag}: copy node files from {work} into {run_dir}/nodes" in out
    assert_store_archived(run_dir, ["n1", "n2", "n3"])
    assert_nothing_left(tag, tmp_path / "state")
    report = nats_chaos("report", str(run_dir))
    out, err = report.communicate(timeout=120)
    assert report.returncode == 0, err
    assert results_json(run_dir)["valid"] == "unknown"  # the history was cut short
    assert_whole_files(run_dir)
