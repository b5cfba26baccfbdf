"""Helpers for tests on real runs: find result folders, prove nothing of a run remains."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from harness.net.netns import list_namespaces

ROOT = Path(__file__).resolve().parents[2]


def run_dir_of(tmp_path: Path, scenario: str) -> Path:
    runs = sorted(p for p in (tmp_path / "results" / scenario).iterdir() if p.name != "latest")
    assert runs, "no result folder"
    return runs[-1]


def server_pids_under(path: str) -> list[int]:
    """Pids of nats-server processes whose command line mentions ``path``."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "nats-server" in cmd and path in cmd:
                out.append(int(d.name))
    return out


def assert_nothing_left(tag: str, state_dir: Path) -> None:
    """No namespace, process, mount, state file or work dir of run ``tag`` remains."""
    assert [n for n in list_namespaces() if n.startswith(f"{tag}-")] == []
    assert server_pids_under(f"/var/tmp/nats-chaos/{tag}/") == []
    assert not (state_dir / f"{tag}.json").exists()
    assert not Path(f"/var/tmp/nats-chaos/{tag}").exists()
    mounts = Path("/proc/mounts").read_text()
    assert f"/{tag}/" not in mounts
    link = subprocess.run(["ip", "link", "show", f"{tag}-h"], capture_output=True)
    assert link.returncode != 0


def results_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def wait_for_log(run_dir: Path, line: str, timeout: float = 120) -> None:
    """Until ``run_dir/harness.log`` has a line with ``line`` in it (e.g. "phase: check")."""
    deadline = time.monotonic() + timeout
    log = run_dir / "harness.log"
    while time.monotonic() < deadline:
        if log.exists() and line in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{log} never said {line!r}")


def assert_whole_files(run_dir: Path) -> None:
    """No 0-byte file and no temporary file (``.name.pid.tmp``) anywhere in ``run_dir``."""
    every = [p for p in run_dir.rglob("*") if p.is_file()]
    assert [str(p) for p in every if p.name.startswith(".") or p.stat().st_size == 0] == []
