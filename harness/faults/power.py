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
from harness.faults.process import KillFault


class PowerLossFault(KillFault):
    """Kill + drop un-fsynced data + remount; restart (KillFault's undo) when the window ends."""

    kind = "power-loss"

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        done = self.choose(ctx)
        power_fail = ctx.cluster.power_fail  # type: ignore[attr-defined]
        coordinated = bool(getattr(self.spec, "coordinated", False))
        groups = [self.nodes] if coordinated else [[n] for n in self.nodes]
        dropped: dict[str, int] = {}
        for group in groups:
            dropped.update(power_fail(group))
        return {**done, "coordinated": coordinated, "dropped_bytes": dropped}
