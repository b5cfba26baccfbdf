"""Fixtures for runs on real clusters: a CLI runner in a subprocess and a leftover check."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from chaosrun import ROOT

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
