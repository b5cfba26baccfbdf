"""Kill: SIGKILL the targets when the window starts, start them again when it ends.

The restarted server finds its store as the kernel left it (every write it
made reached the page cache). History value: ``{"targets", "nodes"}`` when
it starts, ``{"nodes"}`` when it stops.
"""

from __future__ import annotations

from typing import Literal

from harness.backends.base import PROCESS
from harness.faults.base import FaultContext, FaultKind, NodeFault, NodeFaultSpec

NEEDS = frozenset({PROCESS})


class KillSpec(NodeFaultSpec):
    """SIGKILL the targets; restart them when the window ends."""

    kind: Literal["kill"]


class KillFault(NodeFault):
    """SIGKILL the targets; stopping the fault starts them again."""

    kind = "kill"

    def act(self, ctx: FaultContext, node: str) -> None:
        ctx.process().kill(node)

    def undo(self, ctx: FaultContext, node: str) -> None:
        ctx.process().start_node(node)


KIND = FaultKind(KillSpec, KillFault, NEEDS)
