"""Process faults: kill (SIGKILL, restart when the fault ends) and pause (SIGSTOP/SIGCONT).

Both pick their targets from the spec (``one``, ``minority``, ``majority``,
``all``, ``leader``) when they start and act on exactly those nodes when they
stop, so a restart or SIGCONT never reaches a node the fault did not touch.
"""

from __future__ import annotations

from typing import Any

from harness.faults.base import FaultContext
from harness.faults.targets import resolve
from harness.scenario import KillSpec, PauseSpec, PowerLossSpec


class _NodeFault:
    kind = ""

    def __init__(self, spec: KillSpec | PauseSpec | PowerLossSpec) -> None:
        self.spec = spec
        self.nodes: list[str] = []

    def choose(self, ctx: FaultContext) -> dict[str, Any]:
        """Pick this window's targets (seeded) and describe them for the history."""
        self.nodes = resolve(self.spec.targets, ctx.cluster.nodes, ctx.rng, ctx.stream_leader)
        return {"targets": self.spec.targets, "nodes": self.nodes}

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        done = self.choose(ctx)
        for node in self.nodes:
            self.act(ctx, node)
        return done

    def stop(self, ctx: FaultContext) -> dict[str, Any]:
        for node in self.nodes:
            self.undo(ctx, node)
        return {"nodes": self.nodes}

    def act(self, ctx: FaultContext, node: str) -> None:
        raise NotImplementedError

    def undo(self, ctx: FaultContext, node: str) -> None:
        raise NotImplementedError


class KillFault(_NodeFault):
    """SIGKILL the targets; stopping the fault starts them again."""

    kind = "kill"

    def act(self, ctx: FaultContext, node: str) -> None:
        ctx.cluster.kill(node)

    def undo(self, ctx: FaultContext, node: str) -> None:
        ctx.cluster.start_node(node)


class PauseFault(_NodeFault):
    """SIGSTOP the targets; stopping the fault sends SIGCONT."""

    kind = "pause"

    def act(self, ctx: FaultContext, node: str) -> None:
        ctx.cluster.pause(node)

    def undo(self, ctx: FaultContext, node: str) -> None:
        ctx.cluster.resume(node)
