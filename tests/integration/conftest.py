"""Fixtures for runs on real clusters: a CLI runner in a subprocess and a leftover check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.net.netns import list_namespaces

ROOT = Path(__file__).resolve().parents[2]

if os.geteuid() != 0:  # the local backend needs network namespaces
    pytest.skip("integration tests need root", allow_module_level=True)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Environment for a harness subprocess with its own state directory."""
    e = dict(os.environ)
    e["NATS_CHAOS_STATE"] = str(tmp_path / "state")
    e["PYTHONUNBUFFERED"] = "1"
    return e


@pytest.fixture
def nats_chaos(tmp_path: Path, env: dict[str, str]) -> Callable[..., subprocess.Popen[str]]:
    """Start ``nats-chaos ARGS`` in a subprocess (results under tmp_path/results)."""

    def start(*args: str) -> subprocess.Popen[str]:
        cmd = [sys.executable, "-m", "harness.cli", *args]
        if args and args[0] == "run":
            cmd += ["--results-dir", str(tmp_path / "results")]
        return subprocess.Popen(
            cmd, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    return start


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
