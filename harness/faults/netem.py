"""Packet delay and loss: a netem root qdisc on each target's ``eth0`` for one window.

``delay`` delays everything a target sends (to peers and to clients) by
``delay`` ± ``jitter``; ``loss`` drops ``percent`` of it. ``start`` puts the
qdisc in through the node's Remote (``tc qdisc replace …``,
:mod:`harness.net.netem`), ``stop`` deletes it. Both need the ``netem``
ability — a kernel with the qdisc; this one may have none, and then
preflight refuses the run before anything exists ("the local backend cannot
do fault delay: it needs netem, which this kernel lacks (…)") — and the
``files`` ability for the Remote. History value: ``{"targets", "nodes",
"netem": "delay 100ms 10ms"}``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from harness.backends.base import FILES, NETEM
from harness.faults.base import FaultContext, FaultKind, NodeFaultSpec
from harness.faults.targets import describe
from harness.net import netem
from harness.spec import Seconds

NEEDS = frozenset({FILES, NETEM})


class DelaySpec(NodeFaultSpec):
    """Delay every packet the targets send (netem ``delay``, with ``jitter``)."""

    kind: Literal["delay"]
    delay: Seconds = 0.1
    jitter: Seconds = 0.0


class LossSpec(NodeFaultSpec):
    """Drop a share of the packets the targets send (netem ``loss``, in percent)."""

    kind: Literal["loss"]
    percent: float = Field(default=10.0, gt=0, le=100)


def delay_args(spec: DelaySpec) -> list[str]:
    """netem arguments for ``spec``: ``delay 100ms [10ms]``."""
    args = ["delay", f"{spec.delay * 1000:g}ms"]
    return [*args, f"{spec.jitter * 1000:g}ms"] if spec.jitter else args


def loss_args(spec: LossSpec) -> list[str]:
    """netem arguments for ``spec``: ``loss 10%``."""
    return ["loss", f"{spec.percent:g}%"]


def delay_label(spec: DelaySpec) -> str:
    """``delay 100ms±10ms targets=one``."""
    return (
        f"delay {spec.delay * 1000:g}ms±{spec.jitter * 1000:g}ms targets={describe(spec.targets)}"
    )


def loss_label(spec: LossSpec) -> str:
    """``loss 10% targets=one``."""
    return f"loss {spec.percent:g}% targets={describe(spec.targets)}"


class _NetemFault:
    kind = ""

    def __init__(self, spec: NodeFaultSpec, args: list[str]) -> None:
        self.spec = spec
        self.args = args
        self.nodes: list[str] = []

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        files = ctx.files()
        self.nodes = ctx.targets(self.spec)
        for node in self.nodes:
            files.remote(node).run(netem.add(self.args))
        return {
            "targets": describe(self.spec.targets),
            "nodes": self.nodes,
            "netem": " ".join(self.args),
        }

    def stop(self, ctx: FaultContext) -> dict[str, Any]:
        files = ctx.files()
        for node in self.nodes:
            files.remote(node).run(netem.delete(), check=False)
        return {"nodes": self.nodes}


class DelayFault(_NetemFault):
    """Delay what the targets send by ``delay`` ± ``jitter``."""

    kind = "delay"

    def __init__(self, spec: DelaySpec) -> None:
        super().__init__(spec, delay_args(spec))


class LossFault(_NetemFault):
    """Drop ``percent`` of what the targets send."""

    kind = "loss"

    def __init__(self, spec: LossSpec) -> None:
        super().__init__(spec, loss_args(spec))


DELAY = FaultKind(DelaySpec, DelayFault, NEEDS, delay_label)
LOSS = FaultKind(LossSpec, LossFault, NEEDS, loss_label)
