"""Backends, and the one place that picks one for a run.

``scenario.backend`` (or ``--backend``) names it: ``local`` (processes in
network namespaces, :mod:`harness.backends.local`) or ``docker``
(containers, :mod:`harness.backends.docker`, imported only when used).

- ``preflight(scenario)`` checks what the backend needs before anything of
  a run exists and raises :class:`~harness.errors.CannotRun` (exit 3) with
  one line saying how to get it: root, and for Docker an engine that answers.
- ``binary_for(scenario, explicit)`` is the nats-server binary the run uses
  (None for Docker with a scenario-named image).
- ``make_cluster(...)`` builds the cluster; ``server_info(cluster, binary)``
  is what results.json records about the server.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import servers
from harness.backends.local import LocalCluster
from harness.engine import HOW_TO_START, ping
from harness.errors import CannotRun, PrivilegeError
from harness.net import netns
from harness.runstate import RunState
from harness.scenario import Scenario

if TYPE_CHECKING:
    from harness.backends.docker import DockerCluster

    RunCluster = LocalCluster | DockerCluster
else:
    RunCluster = Any


# tool -> the Debian package that brings it (the Makefile installs them)
TOOLS = {"ip": "iproute2", "iptables": "iptables", "nsenter": "util-linux", "ss": "iproute2"}


def _require_tools(tools: list[str]) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pkgs = " ".join(sorted({TOOLS.get(t, t) for t in missing}))
        raise CannotRun(f"missing {', '.join(missing)}: apt-get install {pkgs}")


def preflight(scenario: Scenario) -> None:
    """Raise CannotRun (one line, with the fix) if ``scenario.backend`` cannot run here."""
    if scenario.uses_lazyfs:
        if not os.path.exists("/dev/fuse"):
            raise CannotRun("power loss needs FUSE and there is no /dev/fuse (modprobe fuse)")
        if shutil.which("fusermount3") is None:
            raise CannotRun("power loss needs FUSE: apt-get install fuse3 libfuse3-3")
    if scenario.backend == "local":
        netns.require_root()
        _require_tools(["ip", "iptables", "nsenter", "ss"])
        return
    if os.geteuid() != 0:
        raise PrivilegeError(
            "the docker backend needs root (iptables in container namespaces via nsenter, "
            "lazyfs mounts); run nats-chaos as root"
        )
    if shutil.which("nsenter") is None:
        raise CannotRun("the docker backend needs nsenter (apt-get install util-linux)")
    if not ping():
        raise CannotRun(
            f"the docker backend needs a Docker engine and none answers; {HOW_TO_START}"
        )


def binary_for(scenario: Scenario, explicit: str | None) -> Path | None:
    """The run's nats-server binary: ``explicit`` or the scenario's (None: a named image)."""
    if scenario.backend == "docker" and scenario.server.image and not explicit:
        return None
    return servers.resolve_binary(scenario.server.version, explicit or scenario.server.binary)


def make_cluster(
    scenario: Scenario, binary: Path | None, workdir: Path, state: RunState
) -> RunCluster:
    """The cluster for ``scenario.backend`` (not started)."""
    if scenario.backend == "docker":
        from harness.backends.docker import DockerCluster

        return DockerCluster(scenario, binary, workdir, state)
    assert binary is not None, "the local backend runs a binary"
    return LocalCluster(scenario, binary, workdir, state)


def server_info(cluster: RunCluster, binary: Path | None) -> dict[str, Any]:
    """What results.json records about the server: backend, binary or image, version."""
    info = getattr(cluster, "server_info", None)
    if info is not None:
        return info()
    assert binary is not None
    return {"backend": "local", "binary": str(binary), "version": servers.binary_version(binary)}
