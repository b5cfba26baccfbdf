"""Pause: SIGSTOP the targets when the window starts, SIGCONT them when it ends.

A paused nats-server keeps its sockets open but answers nothing, like a
node stuck in a long GC pause or a frozen VM. History value: ``{"targets",
"nodes"}`` when it starts, ``{"nodes"}`` when it stops.
"""

from __future__ import annotations

from typing import Literal

from harness.backends.base import PROCESS
from harness.faults.base import FaultContext, FaultKind, NodeFault, NodeFaultSpec

NEEDS = frozenset({PROCESS})


class PauseSpec(NodeFaultSpec):
    """SIGSTOP the targets; SIGCONT when the window ends."""

    kind: Literal["pause"]


class PauseFault(NodeFault):
    """SIGSTOP the targets; stopping the fault sends SIGCONT."""

    kind = "pause"

    def act(self, ctx: FaultContext, node: str) -> None:
        ctx.process().pause(node)

    def undo(self, ctx: FaultContext, node: str) -> None:
        ctx.process().resume(node)


KIND = FaultKind(PauseSpec, PauseFault, NEEDS)
