"""Power loss: the node's process dies and every byte it had not fsynced is gone.

``start`` picks the targets and, for each (all in one instant when
``coordinated``, else one after another), SIGKILLs nats-server, tells the
node's lazyfs to drop its un-fsynced data and remounts it; the history value
records the bytes dropped per node. ``stop`` powers the nodes back on
(restarts nats-server on what survived). Needs ``storage.lazyfs``.
"""

from __future__ import annotations

from typing import Any

from harness.faults.base import FaultContext
from harness.faults.targets import resolve
from harness.scenario import PowerLossSpec


class PowerLossFault:
    """Kill + drop un-fsynced data + remount; restart when the window ends."""

    kind = "power-loss"

    def __init__(self, spec: PowerLossSpec) -> None:
        self.spec = spec
        self.nodes: list[str] = []

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        self.nodes = resolve(self.spec.targets, ctx.cluster.nodes, ctx.rng, ctx.stream_leader)
        power_fail = ctx.cluster.power_fail  # type: ignore[attr-defined]
        if self.spec.coordinated:
            dropped = power_fail(self.nodes)
        else:
            dropped = {}
            for node in self.nodes:
                dropped.update(power_fail([node]))
        return {
            "targets": self.spec.targets,
            "coordinated": self.spec.coordinated,
            "nodes": self.nodes,
            "dropped_bytes": dropped,
        }

    def stop(self, ctx: FaultContext) -> dict[str, Any]:
        for node in self.nodes:
            ctx.cluster.start_node(node)
        return {"nodes": self.nodes}
