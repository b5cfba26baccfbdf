"""``nats-chaos clean`` trusts no state file: it validates first, acts only inside the run's own
work dir, copies node files into the result folder before removing them, then forgets the run."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.runstate import WORK_ROOT, BadStateFile, load, new_tag


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "state"
    d.mkdir()
    monkeypatch.setenv("NATS_CHAOS_STATE", str(d))
    return d


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def state(tag: str, **fields: Any) -> dict[str, Any]:
    return {"tag": tag, "harness_pid": dead_pid(), "harness_start": None, "pids": {},
            "namespaces": [], "mounts": [], "containers": [], "networks": [],
            "started": 1.0, **fields}  # fmt: skip


def clean(*args: str) -> Any:
    return CliRunner().invoke(main, ["clean", *args])


def test_a_state_file_with_a_path_for_a_tag_touches_nothing(
    state_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    victim = tmp_path / "some" / "dir"
    (victim / "inner").mkdir(parents=True)
    (victim / "precious.txt").write_text("keep me")
    tag = "../../.." + str(victim)  # WORK_ROOT / tag is the victim dir
    assert (WORK_ROOT / tag).resolve() == victim.resolve()
    mounted = os.geteuid() == 0  # a real mount the crafted file names must stay mounted
    if mounted:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(victim / "inner")],
                       check=True)  # fmt: skip
        (victim / "inner" / "on-the-mount").write_text("here")
    request.addfinalizer(lambda: subprocess.run(["umount", str(victim / "inner")],
                                                capture_output=True, check=False))  # fmt: skip
    crafted = state(tag, mounts=[str(victim / "inner")], namespaces=[f"{tag}-n1"])
    (state_dir / "nc0badbad0.json").write_text(json.dumps(crafted))
    (state_dir / "garbage.json").write_bytes(b"\x00\xff{not json")
    res = clean()
    assert res.exit_code == 2, res.output
    lines = res.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"nats-chaos: {state_dir / 'garbage.json'}: not a run state (")
    assert lines[1].startswith(f"nats-chaos: {state_dir / 'nc0badbad0.json'}: not a run state (tag")
    assert all("nothing it names was touched" in line for line in lines)
    assert res.stdout == ""
    assert (victim / "precious.txt").read_text() == "keep me" and (victim / "inner").is_dir()
    again = clean()  # reported every time, never trusted
    assert again.exit_code == 2 and again.stderr.splitlines() == lines
    forced = clean("--force")
    assert forced.exit_code == 0, forced.output
    assert "moved aside to" in forced.stderr
    assert sorted(p.name for p in state_dir.iterdir()) == [
        "garbage.json.rejected",
        "nc0badbad0.json.rejected",
    ]
    assert (victim / "precious.txt").read_text() == "keep me"
    if mounted:
        assert str(victim / "inner") in Path("/proc/mounts").read_text()
        assert (victim / "inner" / "on-the-mount").read_text() == "here"
    assert clean().stdout.strip() == "nothing to clean"


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"mounts": ["/var/tmp/nats-chaos/nc00000001/n1/data"]}, "is not inside the run's"),
        ({"mounts": ["{work}/n1/../../../../etc"]}, "is not inside the run's"),
        ({"mounts": ["relative/data"]}, "is not inside the run's"),
        ({"namespaces": ["other-n1"]}, "namespace 'other-n1' does not carry the run's tag"),
        ({"containers": ["web"]}, "container 'web' does not carry"),
        ({"pids": {"1": "init"}}, "is not a pid"),
        ({"pids": {"12": "../bin/sh"}}, "is not a pid"),
        ({"run_dir": "{work}/results"}, "result folder"),
        ({"run_dir": "results/x"}, "result folder"),
        ({"tag": "nc0000000g"}, "tag"),
        ({"extra": 1}, "extra"),
        ({"harness_pid": "12"}, "harness_pid"),
    ],
)
def test_the_schema_refuses_what_is_not_the_runs(
    state_dir: Path, fields: dict[str, Any], why: str
) -> None:
    tag = new_tag()
    work = str(WORK_ROOT / tag)
    data = state(tag)
    for k, v in fields.items():
        data[k] = json.loads(json.dumps(v).replace("{work}", work))
    path = state_dir / f"{data['tag']}.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BadStateFile, match="not a run state") as e:
        load(path)
    assert why in str(e.value)


def test_a_state_file_whose_name_is_not_its_tag_is_refused(state_dir: Path) -> None:
    path = state_dir / "nc11111111.json"
    path.write_text(json.dumps(state("nc22222222")))
    with pytest.raises(BadStateFile, match="its tag nc22222222 is not its name"):
        load(path)


def test_clean_copies_node_files_into_the_result_folder_then_forgets_the_run(
    state_dir: Path, tmp_path: Path
) -> None:
    tag = new_tag()
    work = WORK_ROOT / tag
    run_dir = tmp_path / "results" / "kill" / "20260101T000000"
    run_dir.mkdir(parents=True)
    (run_dir / "scenario.yaml").write_text("name: kill\n")
    (run_dir / "history.jsonl").write_text('{"index":0}\n')
    partial = run_dir / ".history.columns.tmp"  # the run was killed writing its sidecar
    partial.write_bytes(b"NCHAOS-COLUMNS\n")
    try:
        for node in ("n1", "n2"):
            d = work / node
            (d / "data" / "jetstream").mkdir(parents=True)
            (d / "data" / "jetstream" / "1.blk").write_bytes(b"block of " + node.encode())
            (d / "nats-server.conf").write_text(f"server_name: {node}\n")
            (d / "nats-server.log").write_text(f"[INF] {node} ready\n")
        (state_dir / f"{tag}.json").write_text(json.dumps(state(tag, run_dir=str(run_dir))))
        res = clean()
        assert res.exit_code == 0, res.output
        assert f"{tag}: copy node files from {work} into {run_dir / 'nodes'}" in res.stdout
        assert f"{tag}: remove {work}" in res.stdout
        assert f"{tag}: remove the half-written {partial}" in res.stdout
        assert not partial.exists() and (run_dir / "history.jsonl").exists()
        for node in ("n1", "n2"):
            out = run_dir / "nodes" / node
            assert (out / "nats-server.conf").read_text() == f"server_name: {node}\n"
            assert (out / "nats-server.log").read_text() == f"[INF] {node} ready\n"
            with tarfile.open(out / "data.tar.gz") as tar:
                member = tar.extractfile("data/jetstream/1.blk")
                assert member is not None and member.read() == b"block of " + node.encode()
        assert not work.exists()
        assert list(state_dir.iterdir()) == []
        assert clean().stdout.strip() == "nothing to clean"
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)


def test_node_files_that_cannot_be_copied_keep_the_work_dir_and_the_state_file(
    state_dir: Path, tmp_path: Path
) -> None:
    tag = new_tag()
    work = WORK_ROOT / tag
    try:
        (work / "n1").mkdir(parents=True)
        (work / "n1" / "nats-server.log").write_text("the only copy\n")
        gone = tmp_path / "removed-results"  # the result folder was deleted meanwhile
        (state_dir / f"{tag}.json").write_text(json.dumps(state(tag, run_dir=str(gone))))
        res = clean()
        assert res.exit_code == 0, res.output
        assert f"{tag}: {gone} is not the run's result folder; node files kept in {work}" in (
            res.stdout
        )
        assert (work / "n1" / "nats-server.log").read_text() == "the only copy\n"
        assert (state_dir / f"{tag}.json").is_file()  # a later clean finishes the job
        forced = clean("--force")
        assert f"{tag}: remove {work}" in forced.stdout
        assert not work.exists() and list(state_dir.iterdir()) == []
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)
