"""What a backend is: a narrow core, optional abilities, and a Remote per node.

The runner, workloads and faults see a cluster only through these protocols
(STYLE §2, §10; Jepsen's ``db.clj`` and ``control.clj``):

- :class:`Cluster` — the core every backend has: ``nodes``, ``start()``,
  ``stop()`` (releases every resource of the run; safe to call twice or after
  a failed start), ``client_url(node)``, ``monitor_url(node)``,
  ``monitor(node)`` (that node's own view, :class:`harness.monitor.NodeMonitor`),
  ``collect(dest, data)`` (configs, logs and data of each node into the
  result folder), ``server_info()`` (what results.json records about the
  server) and ``abilities`` (the names of the ability protocols it offers);
- abilities, each a small protocol a backend may or may not offer, named in
  :data:`ABILITIES`: ``process`` (:class:`ProcessControl`: kill, pause,
  resume, restart, terminate), ``network`` (:class:`NetworkControl`:
  grudges, client cuts, heal), ``power`` (:class:`PowerControl`: power loss
  on lazyfs storage), ``files`` (:class:`FileAccess`: a :class:`Remote` per
  node, and where its store lives on it), ``netem`` (no protocol of its own:
  ``tc qdisc … netem`` works through the node's Remote, i.e. its kernel has
  the qdisc; a fault that needs ``netem`` also needs ``files``);
- :class:`Remote` — how the harness acts ON a node's host: run an argv in the
  node's network namespace, read, write, size and list files, fetch a
  directory (:class:`harness.backends.host.HostRemote` for nodes on this host).
  iptables, netem, corruption and data collection go through it, so a
  backend whose nodes live on other hosts changes one module, not the faults.

A fault declares the abilities it ``needs``; preflight compares them with
what the backend offers on this host before anything of a run exists
(:func:`harness.backends.lacks`, :func:`harness.faults.preflight`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from harness.monitor import NodeMonitor

Grudge = dict[str, frozenset[str]]

PROCESS = "process"
NETWORK = "network"
POWER = "power"
FILES = "files"
NETEM = "netem"
ABILITIES = (PROCESS, NETWORK, POWER, FILES, NETEM)


class Cluster(Protocol):
    """A set of nats-server nodes: the core every backend implements."""

    nodes: list[str]
    abilities: frozenset[str]

    def start(self) -> None:
        """Bring every node up (not necessarily ready: the runner waits for that)."""

    def stop(self, keep_files: bool = False) -> None:
        """Stop every node and release every resource; idempotent.

        The work dir (configs, logs, stores) goes too, unless ``keep_files``
        (its files could not be collected: they must survive the run).
        """

    def client_url(self, node: str) -> str:
        """Where a client connects to reach ``node`` (and only ``node``)."""

    def monitor_url(self, node: str) -> str:
        """``node``'s HTTP monitoring endpoint."""

    def monitor(self, node: str) -> NodeMonitor:
        """``node``'s own view of the cluster (leaders, stream state, routes)."""

    def collect(self, dest: Path, data: bool = True) -> None:
        """Write ``dest/<node>/``: ``nats-server.conf``, ``nats-server.log``, ``lazyfs.log``
        (when on lazyfs) and, with ``data``, ``data.tar.gz`` (the store, as ``data/``).

        Best effort: what cannot be collected is logged and skipped, and once
        every piece was tried, an ``OSError`` says which failed (the run then
        keeps the work dir).
        """

    def server_info(self) -> dict[str, Any]:
        """What results.json records about the server: backend, binary or image, version, and
        the binary's ``sha256`` (None for a named image)."""


@runtime_checkable
class ProcessControl(Protocol):
    """Ability ``process``: signal and restart a node's nats-server."""

    def kill(self, node: str) -> None:
        """SIGKILL ``node``'s server (no-op if it is not running)."""

    def start_node(self, node: str) -> None:
        """Start ``node``'s server again with the same config and data (no-op if running)."""

    def pause(self, node: str) -> None:
        """SIGSTOP ``node``'s server."""

    def resume(self, node: str) -> None:
        """SIGCONT ``node``'s server."""

    def running(self, node: str) -> bool:
        """Is ``node``'s server process alive (paused counts as alive)?"""

    def terminate(self, node: str, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM), SIGKILL after ``timeout``."""


@runtime_checkable
class NetworkControl(Protocol):
    """Ability ``network``: partitions as grudges, and cutting nodes off from clients."""

    def isolate(self, grudge: Grudge) -> None:
        """Drop traffic so each node in ``grudge`` no longer hears the nodes it names."""

    def cut_clients(self, nodes: Sequence[str], both_ways: bool) -> None:
        """Cut ``nodes`` off from the harness's clients and monitor requests."""

    def heal_network(self) -> None:
        """Remove every network rule this run added."""


@runtime_checkable
class PowerControl(Protocol):
    """Ability ``power``: node stores on lazyfs, so un-fsynced writes can be dropped."""

    def power_fail(
        self, nodes: list[str], keep: float = 0.0, torn_write: bool = False, seed: int = 0
    ) -> dict[str, dict[str, int]]:
        """Kill ``nodes`` at one instant, drop their un-fsynced data, remount.

        ``keep`` (0..1) and ``torn_write`` make it torn: that share of the un-fsynced
        writes, and part of one more, reach the disk first (seeded by ``seed``).
        Returns per node ``dropped_bytes`` (and ``kept_bytes``, ``torn_bytes`` when
        torn) and ``fsyncs`` (the node's fsyncs so far).
        """

    def lazyfs_stats(self) -> dict[str, dict[str, int]]:
        """Each mounted node's lazyfs counters."""


class Remote(Protocol):
    """How the harness acts on one node's host (Jepsen's ``Remote``)."""

    def run(
        self,
        argv: Sequence[str],
        check: bool = True,
        timeout: float = 30.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the node's network namespace (``input`` on its stdin); a failure
        with ``check`` raises."""

    def read(self, path: str, offset: int = 0, length: int = -1) -> bytes:
        """``length`` bytes of ``path`` from ``offset`` (all with -1)."""

    def write(self, path: str, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` of the existing file ``path`` and fsync it."""

    def size(self, path: str) -> int:
        """``path``'s size in bytes."""

    def truncate(self, path: str, size: int) -> None:
        """Cut ``path`` to ``size`` bytes."""

    def files(self, root: str) -> list[tuple[str, int]]:
        """Every regular file under ``root``: (path relative to root, size), sorted."""

    def fetch(self, root: str, dest: Path) -> None:
        """Copy the directory ``root`` to ``dest`` on the harness's host (files that
        vanish meanwhile are skipped)."""


@runtime_checkable
class FileAccess(Protocol):
    """Ability ``files``: a Remote per node and where that node keeps its store."""

    def remote(self, node: str) -> Remote:
        """The Remote for ``node``'s host."""

    def store_dir(self, node: str) -> str:
        """``node``'s JetStream store directory, as a path on its Remote."""


@runtime_checkable
class ServerBinary(Protocol):
    """A backend whose nodes run a binary it can hand out (the Docker backend: its image's)."""

    def server_binary(self, dest: Path) -> Path:
        """Copy the nats-server binary the nodes run to the file ``dest``; ``dest``."""


class FullCluster(Cluster, ProcessControl, NetworkControl, PowerControl, FileAccess, Protocol):
    """The core and every ability protocol: what the local and Docker backends are."""
