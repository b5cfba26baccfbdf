"""Fixtures for the Docker backend: a running engine, the node image, runs and leftover checks.

As root these tests always run: the session fixture installs docker.io and
starts dockerd when no engine answers (as ``.ci/run`` does), then builds the
node image. Only a non-root user skips them (nothing here works without root).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from harness import engine, images, servers
from harness.backends.docker import RUN_LABEL

ROOT = Path(__file__).resolve().parents[2]
WORK_ROOT = Path("/var/tmp/nats-chaos")

if os.geteuid() != 0:  # nsenter, iptables in container namespaces, lazyfs mounts
    pytest.skip("docker tests need root", allow_module_level=True)


@pytest.fixture(scope="session")
def dc() -> Iterator[docker.DockerClient]:
    """A client for an engine that answers (installed and started here if needed)."""
    engine.ensure_engine(install=True)
    client = images.engine_client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def node_image(dc: docker.DockerClient) -> str:
    """The default node image, built for this session from the cached binary."""
    servers.install(servers.DEFAULT_VERSION)
    return images.build(servers.DEFAULT_VERSION, dc=dc)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Environment for a harness subprocess with its own state directory."""
    e = dict(os.environ)
    e["NATS_CHAOS_STATE"] = str(tmp_path / "state")
    e["PYTHONUNBUFFERED"] = "1"
    return e


@pytest.fixture
def nats_chaos(
    tmp_path: Path, env: dict[str, str], node_image: str
) -> Callable[..., subprocess.Popen[str]]:
    """Start ``nats-chaos ARGS`` in a subprocess (run/compare results under tmp_path/results)."""

    def start(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        cmd = [sys.executable, "-m", "harness.cli", *args]
        if args and args[0] in ("run", "compare"):
            cmd += ["--results-dir", str(tmp_path / "results")]
        return subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**env, **(extra_env or {})},
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    return start


@pytest.fixture
def run_dir_of(tmp_path: Path) -> Callable[[str], Path]:
    def find(scenario: str) -> Path:
        runs = sorted(p for p in (tmp_path / "results" / scenario).iterdir() if p.name != "latest")
        assert runs, "no result folder"
        return runs[-1]

    return find


def results_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


@pytest.fixture
def results() -> Callable[[Path], dict]:
    return results_json


@pytest.fixture
def docker_leftovers(dc: docker.DockerClient) -> Callable[[str], list[str]]:
    """What run ``tag`` left on the engine and host: containers, networks, links, mounts, dirs."""

    def left(tag: str) -> list[str]:
        label = {"label": f"{RUN_LABEL}={tag}"}
        out = [f"container {c.name}" for c in dc.containers.list(all=True, filters=label)]
        out += [f"network {n.name}" for n in dc.networks.list(filters=label)]
        if subprocess.run(["ip", "link", "show", f"{tag}-d"], capture_output=True).returncode == 0:
            out.append(f"link {tag}-d")
        out += [f"mount {line.split()[1]}" for line in _mounts() if f"/{tag}/" in line]
        if (WORK_ROOT / tag).exists():
            out.append(f"dir {WORK_ROOT / tag}")
        return out

    return left


def _mounts() -> list[str]:
    return Path("/proc/mounts").read_text().splitlines()


@pytest.fixture
def assert_nothing_left(
    docker_leftovers: Callable[[str], list[str]], tmp_path: Path
) -> Callable[[str], None]:
    def check(tag: str) -> None:
        assert docker_leftovers(tag) == []
        assert not (tmp_path / "state" / f"{tag}.json").exists()

    return check
