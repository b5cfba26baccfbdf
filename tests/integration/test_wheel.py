"""The wheel is a complete install: built from the checkout, installed into a fresh venv outside
it, and run from another directory — shipped scenarios by name, power loss (lazyfs) on the
local backend, and the node image and a run on the Docker backend.

Dependencies: by default the fresh venv reaches the running environment's packages through a
``.pth`` file (offline and fast; the wheel itself is installed with ``--no-deps``). With
``NATS_CHAOS_WHEEL_DEPS=index`` pip installs the wheel's declared dependencies from the package
index instead (CI's wheel job: proves the dependency list too).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from chaosrun import ROOT

from harness import engine

SKIP = shutil.ignore_patterns(
    ".git", ".venv", "results", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
    ".hypothesis", "node_modules",
)  # fmt: skip


@dataclass(frozen=True)
class WheelEnv:
    venv: Path
    cwd: Path  # a directory outside the checkout, where commands run
    env: dict[str, str]
    build_s: float

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.venv / "bin" / "nats-chaos"), *args]
        return subprocess.run(cmd, cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip


def _clean_env() -> dict[str, str]:
    """This environment without what would make the checkout importable (or look installed)."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _pip(cwd: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", *args]
    p = subprocess.run(cmd, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WheelEnv]:
    t0 = time.monotonic()
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=SKIP)  # a clean tree: no stale build/
    _pip(base, "wheel", "--no-deps", "-w", str(base / "dist"), str(src))
    (wheel,) = (base / "dist").glob("nats_chaos-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    if os.environ.get("NATS_CHAOS_WHEEL_DEPS") == "index":
        _pip(base, "--python", python, "install", str(wheel))
    else:
        _pip(base, "--python", python, "install", "--no-deps", str(wheel))
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        site = venv / "lib" / version / "site-packages"
        deps = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
        (site / "_nats_chaos_test_deps.pth").write_text("\n".join(deps) + "\n")
    cwd = base / "elsewhere"
    cwd.mkdir()
    env = _clean_env()
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["NATS_CHAOS_STATE"] = str(base / "state")
    yield WheelEnv(venv, cwd, env, time.monotonic() - t0)


@pytest.mark.integration
def test_the_wheel_holds_everything_and_runs_power_loss_from_elsewhere(wheel_env: WheelEnv) -> None:
    where = subprocess.run([str(wheel_env.venv / "bin" / "python"), "-c",
                            "import harness; print(harness.__file__)"], cwd=wheel_env.cwd,
                           env=wheel_env.env, capture_output=True, text=True)  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(wheel_env.venv), where  # not the checkout
    listed = wheel_env.run("scenarios")
    assert listed.returncode == 0, listed.stderr
    names = {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}
    assert {"quick", "power-loss-single", "nightly", "jepsen/part-kill"} <= names
    plan = wheel_env.run("run", "quick", "--plan")
    assert plan.returncode == 0 and plan.stdout.startswith("quick: 3 faults in 30s"), plan.stderr
    doctor = wheel_env.run("doctor", "power-loss-single")
    assert doctor.returncode == 0 and "power-loss-single: can run here" in doctor.stdout

    t0 = time.monotonic()
    run = wheel_env.run("run", "power-loss-single", "--set", "time_limit=8",
                        "--set", "schedule={quiet: 2, interval: 3, duration: 2}")  # fmt: skip
    run_s = time.monotonic() - t0
    assert run.returncode in (0, 1), run.stderr[-2000:]  # a verdict, not a broken run
    run_dir = wheel_env.cwd / "results" / "power-loss-single" / "latest"
    result = json.loads((run_dir / "results.json").read_text())
    assert result["versions"]["nats_server"]
    ops = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    starts = [o for o in ops if o["f"] == "power-loss" and "start" in (o.get("value") or {})]
    assert starts and not any(o.get("error") for o in starts)  # lazyfs ran from the wheel
    assert (run_dir / "report.html").is_file()
    print(f"wheel build + venv {wheel_env.build_s:.1f}s, power-loss run {run_s:.1f}s")


@pytest.mark.integration
@pytest.mark.docker
def test_the_wheel_builds_the_node_image_and_runs_on_docker(wheel_env: WheelEnv) -> None:
    engine.ensure_engine(install=True)  # as the Docker tests do: never skipped as root
    built = wheel_env.run("image", "build")
    assert built.returncode == 0, built.stderr  # the Dockerfile is found inside the package
    assert built.stdout.startswith("nats-chaos/nats-server:")
    run = wheel_env.run("run", "quick", "--backend", "docker", "--set", "time_limit=5",
                        "--set", "schedule={quiet: 1, interval: 2, duration: 1}")  # fmt: skip
    assert run.returncode in (0, 1), run.stderr[-2000:]
    result = json.loads(
        (wheel_env.cwd / "results" / "quick" / "latest" / "results.json").read_text()
    )
    assert result["versions"]["nats_server"]
