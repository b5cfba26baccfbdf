"""The cluster protocol every backend implements, with one-line contracts.

The runner, workloads and faults see a cluster only through
:class:`Cluster`. Abilities are kept small so a fake cluster (tests) or
another backend (Docker) can provide them:

- lifecycle: ``start()`` brings every node up; ``stop()`` releases every
  resource of the run and is safe to call twice or after a failed start;
- addressing: ``client_url(node)`` and ``monitor_url(node)``;
- process faults: ``kill``, ``start_node``, ``pause``, ``resume``, ``running``;
- network: ``isolate(grudge)`` applies a grudge (node -> nodes it must not
  hear), ``heal_network()`` removes every rule the run added;
- evidence: ``collect(dest)`` copies configs and logs into the result folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from harness import config

Grudge = dict[str, frozenset[str]]


class Cluster(Protocol):
    """A running set of nats-server nodes that faults can act on."""

    nodes: list[str]

    def start(self) -> None:
        """Bring every node up (not necessarily ready: see harness.ready)."""

    def stop(self) -> None:
        """Stop every node and release every resource; idempotent."""

    def client_url(self, node: str) -> str:
        """Where a client connects to reach ``node``."""

    def monitor_url(self, node: str) -> str:
        """``node``'s HTTP monitoring endpoint."""

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

    def isolate(self, grudge: Grudge) -> None:
        """Drop traffic so each node in ``grudge`` no longer hears the nodes it names."""

    def heal_network(self) -> None:
        """Remove every network rule this run added."""

    def collect(self, dest: Path) -> None:
        """Copy each node's config and log into ``dest/<node>/``."""


class NodeAddressing:
    """Addresses and data dirs from ``self.topo.ip(node)`` and ``self._nodes[node].data``.

    Shared by the backends: each node listens on its own address with the
    standard ports (harness.config), and keeps its store in ``<node dir>/data``.
    """

    topo: Any
    _nodes: dict[str, Any]

    def address(self, node: str) -> config.NodeAddress:
        """Where ``node`` listens (``start()`` must have chosen the addresses)."""
        assert self.topo is not None, "start() first"
        return config.NodeAddress(node, self.topo.ip(node))

    def client_url(self, node: str) -> str:
        return self.address(node).client_url

    def monitor_url(self, node: str) -> str:
        return self.address(node).monitor_url

    def data_dir(self, node: str) -> Path:
        """Host path of ``node``'s JetStream store (faults such as corruption act on it)."""
        return Path(self._nodes[node].data)
