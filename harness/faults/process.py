"""Process faults: kill (SIGKILL, restart when the fault ends) and pause (SIGSTOP/SIGCONT).

A fault is a small object: ``start(nodes)`` acts and returns what it did,
``stop(nodes)`` undoes it. Both run in a worker thread (they block on
signals and process waits) and both are safe to call on nodes that are
already in the target state, so the final heal can stop everything blindly.
"""

from __future__ import annotations

from typing import Any

from harness.backends.base import Cluster


class KillFault:
    """SIGKILL the targets; stopping the fault starts them again."""

    kind = "kill"

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def start(self, nodes: list[str]) -> dict[str, Any]:
        for node in nodes:
            self.cluster.kill(node)
        return {"nodes": nodes}

    def stop(self, nodes: list[str]) -> dict[str, Any]:
        for node in nodes:
            self.cluster.start_node(node)
        return {"nodes": nodes}


class PauseFault:
    """SIGSTOP the targets; stopping the fault sends SIGCONT."""

    kind = "pause"

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def start(self, nodes: list[str]) -> dict[str, Any]:
        for node in nodes:
            self.cluster.pause(node)
        return {"nodes": nodes}

    def stop(self, nodes: list[str]) -> dict[str, Any]:
        for node in nodes:
            self.cluster.resume(node)
        return {"nodes": nodes}
