"""A toy workload, its checker and a toy fault, defined outside the harness.

They show (and ``test_extending.py`` proves) that a workload is one module
plus one registry line, and a fault is one module plus one registry line:
nothing else in the harness is edited for them.

``tally``: every worker publishes ``1`` to ``<stream>.t``; the final read
counts each node's messages. Its checker: every node holds at least the
acknowledged and at most the attempted publishes.

``hiccup``: SIGSTOP then, 50 ms later, SIGCONT of its targets when the
window starts; nothing to undo when it ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import pandas as pd

from harness.backends.base import PROCESS
from harness.clients import NatsClient
from harness.faults.base import FaultContext, FaultKind, NodeFault, NodeFaultSpec
from harness.interpreter import Completion, Operation
from harness.workloads import WorkloadContext, WorkloadSpecBase, streams


class TallySpec(WorkloadSpecBase):
    name: Literal["tally"] = "tally"


class TallyWorkload:
    name: ClassVar[str] = "tally"
    Spec: ClassVar[type[WorkloadSpecBase]] = TallySpec
    checkers: ClassVar[tuple[str, ...]] = ("tally",)
    writes: ClassVar[tuple[str, ...]] = ("add",)
    headline_checker: ClassVar[str] = "tally"
    anomalies: ClassVar[tuple[str, ...]] = ("miscounted",)
    needs: ClassVar[frozenset[str]] = frozenset()
    min_server: ClassVar[str | None] = None
    pairs_fs: ClassVar[frozenset[str]] = frozenset()
    offline_fs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ctx: WorkloadContext) -> None:
        self.ctx = ctx
        self.stream = ctx.scenario.stream.name

    async def setup(self) -> dict[str, Any]:
        config = {"name": self.stream, "subjects": [f"{self.stream}.>"], "num_replicas": 3}
        client = await self.ctx.client_for(self.ctx.cluster.nodes[0])
        await streams.create_stream(lambda: client.add_stream(config, 5), self.stream, 5)
        nodes = await streams.wait_replicas(self.ctx.cluster, self.stream, 3, 5)
        return {"replica_nodes": nodes}

    def operations(self, worker: int, node: str) -> Iterator[Operation]:
        while True:
            yield Operation("add", 1, node)

    async def invoke(self, client: NatsClient, op: Operation) -> Completion:
        if op.f == "add":
            await client.publish(f"{self.stream}.t", b"1", 2.0)
            return Completion()
        msgs = await client.direct_get(self.stream, 1, 1_000_000, 2.0)
        return Completion("ok", len(msgs or []))

    async def recover(self, bound: float) -> dict[str, Any]:
        nodes = list(self.ctx.cluster.nodes)
        return await streams.wait_converged(self.ctx.cluster, nodes, self.stream, bound)

    async def prepare_reads(self, bound: float) -> dict[str, Any]:
        return {}

    def final_ops(self) -> list[Operation]:
        return [Operation("count", None, n) for n in self.ctx.cluster.nodes]

    async def after_reads(self) -> None:
        return None

    async def close(self) -> None:
        return None


def check_tally(ops: pd.DataFrame, context: dict[str, Any]) -> dict[str, Any]:
    """Each node's count lies between the acknowledged and the attempted adds."""
    adds = ops[ops["f"] == "add"]
    attempted = int((adds["type"] == "invoke").sum())
    acked = int((adds["type"] == "ok").sum())
    counts = ops[(ops["f"] == "count") & (ops["type"] == "ok")]
    wrong = [
        n
        for n, v in zip(counts["node"], counts["value"], strict=True)
        if not acked <= v <= attempted
    ]
    valid: bool | str = not wrong if len(counts) else "unknown"
    phrase = f"{len(wrong)} nodes miscounted" if wrong else f"{acked:,} acknowledged adds kept"
    return {
        "valid": valid,
        "anomalies": ["miscounted"] if wrong else [],
        "acknowledged": acked,
        "summary": {
            "headline": phrase,
            "counts": [{"name": "acknowledged", "value": acked, "bad": False}],
        },
    }


class HiccupSpec(NodeFaultSpec):
    kind: Literal["hiccup"]


class HiccupFault(NodeFault):
    kind = "hiccup"

    def act(self, ctx: FaultContext, node: str) -> None:
        ctx.process().pause(node)
        time.sleep(0.05)
        ctx.process().resume(node)

    def undo(self, ctx: FaultContext, node: str) -> None:
        return None


HICCUP = FaultKind(HiccupSpec, HiccupFault, frozenset({PROCESS}))

__all__ = ["HICCUP", "HiccupSpec", "TallySpec", "TallyWorkload", "check_tally"]
