"""Folders a command cannot write are one line naming the path and why (exit 3), up front.

Read-only and full folders are real: a tmpfs mounted read-only, or so small
it is full (root only; skipped otherwise). Each command is refused before
anything of a run exists: no cluster, no result folder, no traceback.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
QUICK = str(SCENARIOS / "quick.yaml")
HISTORY = (
    '{"index":0,"time":1,"type":"invoke","process":0,"f":"publish","value":1,"node":"n1"}\n'
    '{"index":1,"time":2,"type":"ok","process":0,"f":"publish","value":1,"node":"n1"}\n'
)

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


def one_line(args: list[str], code: int = 3, env: dict[str, str] | None = None) -> str:
    res = CliRunner().invoke(main, args, env=env)
    assert res.exit_code == code, (res.exit_code, res.stdout, res.stderr, res.exception)
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("nats-chaos: "), res.stderr
    return res.stderr.strip()


def _mount(path: Path, options: str) -> None:
    path.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[list[Path]]:
    made: list[Path] = []
    yield made
    for m in reversed(made):
        subprocess.run(["umount", "-l", str(m)], check=False)


@pytest.fixture
def read_only(tmp_path: Path, mounts: list[Path]) -> Path:
    ro = tmp_path / "ro"
    _mount(ro, "size=4m,ro")
    mounts.append(ro)
    return ro


@pytest.fixture
def full(tmp_path: Path, mounts: list[Path]) -> Path:
    d = tmp_path / "full"
    _mount(d, "size=3m")
    mounts.append(d)
    with open(d / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return d


@root_only
def test_run_into_a_read_only_results_dir(read_only: Path) -> None:
    line = one_line(["run", QUICK, "--results-dir", str(read_only)])
    assert line == f"nats-chaos: {read_only}: cannot write the results dir: Read-only file system"


@root_only
def test_run_into_a_missing_dir_under_a_read_only_one(read_only: Path) -> None:
    target = read_only / "a" / "b"
    line = one_line(["run", QUICK, "--results-dir", str(target)])
    assert line == (
        f"nats-chaos: {target}: cannot write the results dir (in {read_only}): "
        "Read-only file system"
    )


@root_only
def test_run_into_a_full_results_dir(full: Path) -> None:
    line = one_line(["run", QUICK, "--results-dir", str(full)])
    assert line in (
        f"nats-chaos: {full}: cannot write the results dir: No space left on device",
        f"nats-chaos: {full}: the results dir has 0.0 MiB free; nats-chaos needs at least "
        "16 MiB for a result folder",
    )
    assert sorted(p.name for p in full.iterdir()) == ["filler"]


@root_only
def test_run_into_a_dir_too_small_for_a_result_folder(tmp_path: Path, mounts: list[Path]) -> None:
    small = tmp_path / "small"
    _mount(small, "size=3m")
    mounts.append(small)
    line = one_line(["run", QUICK, "--results-dir", str(small)])
    assert line == (
        f"nats-chaos: {small}: the results dir has 3.0 MiB free; nats-chaos needs at least "
        "16 MiB for a result folder"
    )
    assert list(small.iterdir()) == []


@root_only
@pytest.mark.parametrize(
    "command",
    [
        ["suite", QUICK],
        ["compare", QUICK, "--vary", "server.sync_interval=default,always"],
    ],
    ids=["suite", "compare"],
)
def test_suite_and_compare_into_a_read_only_results_dir(read_only: Path, command: list) -> None:
    line = one_line([*command, "--results-dir", str(read_only)])
    assert line == f"nats-chaos: {read_only}: cannot write the results dir: Read-only file system"


@root_only
def test_report_of_a_folder_on_a_read_only_disk(tmp_path: Path, mounts: list[Path]) -> None:
    disk = tmp_path / "disk"
    _mount(disk, "size=4m")
    mounts.append(disk)
    run = disk / "run"
    run.mkdir()
    (run / "history.jsonl").write_text(HISTORY)
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    line = one_line(["report", str(run)])
    assert line == f"nats-chaos: {run}: cannot write the result folder: Read-only file system"


@root_only
def test_server_install_into_a_read_only_cache(read_only: Path) -> None:
    line = one_line(["server", "install", "2.14.0"], env={"NATS_CHAOS_CACHE": str(read_only)})
    assert line == f"nats-chaos: {read_only}/servers: Read-only file system"


def test_check_report_into_proc(tmp_path: Path) -> None:
    h = tmp_path / "h.jsonl"
    h.write_text(HISTORY)
    line = one_line(["check", str(h), "--report", "/proc/1"])
    assert line.startswith("nats-chaos: /proc/1: cannot write the --report dir: ")


def test_results_dir_below_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "results"
    line = one_line(["run", QUICK, "--results-dir", str(target)])
    assert line == (
        f"nats-chaos: {target}: the results dir must be a directory, and {tmp_path / 'file'} "
        "is a file"
    )
