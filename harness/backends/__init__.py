"""Backends, and the one place that picks one for a run.

``scenario.backend`` (or ``--backend``) names it: ``local`` (processes in
network namespaces, :mod:`harness.backends.local`), ``docker``
(containers, :mod:`harness.backends.docker`) or ``ssh`` (processes on the
hosts of ``scenario.inventory``, :mod:`harness.backends.ssh`). Each is
imported only when a cluster is made, so importing this package costs nothing.

- ``preflight(scenario)`` checks what the backend needs before anything of
  a run exists and raises :class:`~harness.errors.CannotRun` (exit 3) with
  one line saying how to get it: root, tools, FUSE for lazyfs, for Docker an
  engine that answers — and that the backend offers every ability a
  planned fault needs (:func:`harness.faults.preflight` with :func:`lacks`).
- ``lacks(backend, ability)`` is None when ``backend`` offers ``ability``
  on this host, else why not, as a clause ("which this kernel lacks (…)");
  :func:`harness.faults.preflight` turns it into the one-line refusal of a
  fault the backend cannot do.
- ``binary_for(scenario, explicit)`` is the nats-server binary the run uses
  (None for Docker with a scenario-named image).
- ``make_cluster(...)`` builds the cluster (not started). A run's cluster
  offers the core :class:`~harness.backends.base.Cluster` protocol and
  every ability protocol (:class:`~harness.backends.base.FullCluster`);
  ``abilities`` names them (``netem`` only where the kernel has it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from harness import engine, faults, servers, shipped, workloads
from harness.backends.base import FullCluster
from harness.backends.host import host_lacks
from harness.errors import CannotRun, PrivilegeError
from harness.net import netns
from harness.runstate import RunState

if TYPE_CHECKING:
    from harness.scenario import Scenario

BACKENDS = ("local", "docker", "ssh")

# tool -> the Debian package that brings it (the Makefile installs them)
TOOLS = {"ip": "iproute2", "iptables": "iptables", "nsenter": "util-linux", "ss": "iproute2"}


def _require_tools(tools: list[str]) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pkgs = " ".join(sorted({TOOLS.get(t, t) for t in missing}))
        raise CannotRun(f"missing {', '.join(missing)}: apt-get install {pkgs}")


def preflight(scenario: Scenario) -> None:
    """Raise CannotRun (one line, with the fix) if ``scenario.backend`` cannot run here."""
    _require_host(scenario)
    faults.preflight(scenario, lambda ability: lacks(scenario.backend, ability))
    workloads.preflight(scenario, lambda ability: lacks(scenario.backend, ability))


def _require_host(scenario: Scenario) -> None:
    if scenario.backend == "ssh":
        from harness import inventory
        from harness.backends import ssh

        assert scenario.inventory is not None, "the scenario's validation requires it"
        ssh.preflight(inventory.load(scenario.inventory), scenario.node_names, scenario.uses_lazyfs)
        return
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
    why = engine.diagnose()
    if why is not None:
        raise CannotRun(f"the docker backend needs a Docker engine: {why[0]}; {why[1]}")
    if scenario.server.image is None and not shipped.DOCKERFILE.is_file():
        raise CannotRun(f"{shipped.DOCKERFILE} is missing: the nats-chaos install is incomplete")


def lacks(backend: str, ability: str) -> str | None:
    """Why ``backend`` cannot offer ``ability`` here (a clause), or None when it can.

    The local and Docker backends put every node on this host, so they offer
    the same: every ability, netem only where the kernel has it. The ssh
    backend offers ``process``, ``network``, ``files`` and ``power``.
    """
    if backend not in BACKENDS:
        return f"which no {backend} backend exists to offer"
    if backend == "ssh":
        from harness.backends.ssh import ABILITIES

        return None if ability in ABILITIES else "which the ssh backend does not offer yet"
    return host_lacks(ability)


def binary_for(scenario: Scenario, explicit: str | None) -> Path | None:
    """The run's nats-server binary: ``explicit`` or the scenario's (None: a named image)."""
    if scenario.backend == "docker" and scenario.server.image and not explicit:
        return None
    return servers.resolve_binary(scenario.server.version, explicit or scenario.server.binary)


def make_cluster(
    scenario: Scenario, binary: Path | None, workdir: Path, state: RunState
) -> FullCluster:
    """The cluster for ``scenario.backend`` (not started)."""
    if scenario.backend == "ssh":
        from harness import inventory
        from harness.backends.ssh import SshCluster

        assert binary is not None and scenario.inventory is not None
        return SshCluster(scenario, binary, workdir, state, inventory.load(scenario.inventory))
    if scenario.backend == "docker":
        from harness.backends.docker import DockerCluster

        return DockerCluster(scenario, binary, workdir, state)
    from harness.backends.local import LocalCluster

    assert binary is not None, "the local backend runs a binary"
    return LocalCluster(scenario, binary, workdir, state)
