"""Power loss: the node's process dies and every byte it had not fsynced is gone.

``start`` picks the targets and, for each (all in one instant when
``coordinated``, else one after another), SIGKILLs nats-server, tells the
node's lazyfs to drop its un-fsynced data and remounts it; the history value
records the bytes dropped per node. ``stop`` powers the nodes back on
(restarts nats-server on what survived). Needs the ``power`` ability: node
stores on lazyfs, which a scenario with this fault gets
(:attr:`harness.scenario.Scenario.uses_lazyfs`).
"""

from __future__ import annotations

from typing import Any, Literal

from harness.backends.base import POWER, PROCESS
from harness.faults.base import FaultContext, FaultKind, NodeFaultSpec
from harness.faults.kill import KillFault
from harness.faults.targets import describe

NEEDS = frozenset({PROCESS, POWER})


class PowerLossSpec(NodeFaultSpec):
    """SIGKILL + drop every un-fsynced byte (lazyfs) + remount; restart when the window ends.

    ``coordinated`` hits every target in the same instant (kill all, then drop
    all); otherwise targets lose power one after another.
    """

    kind: Literal["power-loss"]
    coordinated: bool = False


class PowerLossFault(KillFault):
    """Kill + drop un-fsynced data + remount; restart (KillFault's undo) when the window ends."""

    kind = "power-loss"
    spec: PowerLossSpec

    def __init__(self, spec: PowerLossSpec) -> None:
        super().__init__(spec)

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        done = self.choose(ctx)
        coordinated = self.spec.coordinated
        groups = [self.nodes] if coordinated else [[n] for n in self.nodes]
        dropped: dict[str, int] = {}
        for group in groups:
            dropped.update(ctx.power().power_fail(group))
        return {**done, "coordinated": coordinated, "dropped_bytes": dropped}


def label(spec: PowerLossSpec) -> str:
    """``power-loss targets=all coordinated``."""
    return f"power-loss targets={describe(spec.targets)}" + (
        " coordinated" if spec.coordinated else ""
    )


KIND = FaultKind(PowerLossSpec, PowerLossFault, NEEDS, label)
