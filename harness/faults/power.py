"""Power loss: the node's process dies and every byte it had not fsynced is gone.

``start`` picks the targets and, for each (all in one instant when
``coordinated``, else one after another), SIGKILLs nats-server, tells the
node's lazyfs to drop its un-fsynced data and remounts it; the history value
records per node the bytes dropped (``dropped_bytes``), with ``keep`` or
``torn_write`` the bytes that survived whole or torn (``kept_bytes``,
``torn_bytes``), and the node's fsyncs so far (``fsyncs``, summed over
remounts). ``stop`` powers the nodes back on (restarts nats-server on what
survived). Needs the ``power`` ability: node
stores on lazyfs, which a scenario with this fault gets
(:attr:`harness.scenario.Scenario.uses_lazyfs`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from harness.backends.base import POWER, PROCESS
from harness.faults.base import FaultContext, FaultKind, NodeFaultSpec
from harness.faults.kill import KillFault
from harness.faults.targets import describe

NEEDS = frozenset({PROCESS, POWER})


class PowerLossSpec(NodeFaultSpec):
    """SIGKILL + drop every un-fsynced byte (lazyfs) + remount; restart when the window ends.

    ``coordinated`` hits every target in the same instant (kill all, then drop
    all); otherwise targets lose power one after another. A torn power loss
    (LazyFS's torn-op and torn-seq faults): ``keep`` is the share of un-fsynced
    writes that reach the disk anyway (each pending extent, at random, seeded),
    ``torn_write`` has part of one more reach it.
    """

    kind: Literal["power-loss"]
    coordinated: bool = False
    keep: float = Field(default=0.0, ge=0.0, le=1.0)  # share of un-fsynced writes that survive
    torn_write: bool = False  # … and part of one more (a write torn by the power loss)


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
        figures: dict[str, dict[str, int]] = {}
        torn = (self.spec.keep, self.spec.torn_write, ctx.rng.randrange(2**31))
        for group in groups:
            figures.update(ctx.power().power_fail(group, *torn))
        value = {**done, "coordinated": coordinated}
        for key in ("dropped_bytes", "kept_bytes", "torn_bytes", "fsyncs"):
            if any(key in f for f in figures.values()):
                value[key] = {n: f.get(key, 0) for n, f in figures.items()}
        return value


def label(spec: PowerLossSpec) -> str:
    """``power-loss targets=all coordinated``."""
    torn = (f" keep={spec.keep:g}" if spec.keep else "") + (" torn" if spec.torn_write else "")
    coordinated = " coordinated" if spec.coordinated else ""
    return f"power-loss targets={describe(spec.targets)}{coordinated}{torn}"


KIND = FaultKind(PowerLossSpec, PowerLossFault, NEEDS, label)
