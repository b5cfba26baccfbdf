"""The counter workload: distributed counters (``allow_msg_counter``, nats-server 2.12+).

A stream created with ``allow_msg_counter`` keeps, per subject, a counter:
a publish with the header ``Nats-Incr: <n>`` (and an empty body) adds ``n``
to the subject's total, stores a message whose body is the new total as
``{"val": "<total>"}`` and acknowledges with the total in the PubAck's
``val``. Any other publish to the stream is refused (err_code 10169).

Ops (docs/contracts.md §1; independent keys, ``value`` is ``[key, argument]``):

- ``incr``: ``value`` is ``[key, n]``, an integer key in ``0 .. keys-1``
  (the subject ``<stream>.c.<key>``) and an increment ``n`` in
  ``1 .. max_increment``, both drawn from a random generator seeded by the
  scenario's seed and the worker; the ``ok`` completion carries the counter's
  new total as ``total`` and the stream sequence as ``seq``. ``fail`` (the
  server refused, or no stream leader got it) means not applied; ``info``
  (a timeout, a dropped connection) may or may not have been.
- ``read`` (final reads, one per replica node, after healing): ``node`` is
  the node read from; the ``ok`` completion's ``value`` is ``[[key, total],
  …]`` for every key, each the body of the last message on that key's
  subject in the node's own replica (a direct get of the last message by
  subject; ``0`` where the subject holds none), with ``routes: 0``. A node
  whose ``/jsz`` shows no such stream reads as ``ok`` with every total ``0``
  and a ``note``; a node that could not be read alone is an ``info`` read.

Main phase: ``concurrency`` workers (default 3 per node), worker ``w`` bound
to node ``nodes[w % n]``, at ``rate / concurrency`` increments/s each.
Recovery and final reads are the queue workload's
(:mod:`harness.workloads.streams`): wait until every replica agrees and
serves direct gets, cut every route, read each node alone.

Checked by ``checkers/counter.py`` (bounds on every replica's final value,
the totals' consistency with one order, duplicate totals, divergence).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field

from harness.backends.base import NETWORK
from harness.checkspec import CounterChecks
from harness.clients import NatsClient, Unknown
from harness.interpreter import Completion, Operation
from harness.workloads import streams
from harness.workloads.base import WorkloadContext, WorkloadSpecBase

INCR = "Nats-Incr"


class CounterSpec(WorkloadSpecBase):
    """Random increments of a few counters in one counter stream, read back from each node."""

    name: Literal["counter"] = "counter"
    keys: int = Field(default=3, ge=1, le=1000, description="counters: subjects <stream>.c.<key>")
    max_increment: int = Field(default=100, ge=1, description="increments are 1..max_increment")


class CounterWorkload(CounterChecks, streams.ReplicaReads):
    """Increments counters with ``Nats-Incr`` and reads every node's totals back."""

    Spec: ClassVar[type[WorkloadSpecBase]] = CounterSpec
    needs: ClassVar[frozenset[str]] = frozenset({NETWORK})  # per-node reads cut every route
    min_server: ClassVar[str | None] = "2.12.0"  # allow_msg_counter came with 2.12

    def __init__(self, ctx: WorkloadContext) -> None:
        self.ctx = ctx
        self.cluster = ctx.cluster
        self.stream = ctx.scenario.stream.name
        self.keys: int = ctx.spec.keys
        self.max_increment: int = ctx.spec.max_increment
        self.timeout = ctx.spec.timeout
        self.seed = ctx.scenario.seed
        self.replica_nodes: list[str] = list(ctx.cluster.nodes)
        self.read_timeout = ctx.scenario.recovery.read_timeout

    def subject(self, key: int) -> str:
        return f"{self.stream}.c.{key}"

    async def setup(self) -> dict[str, Any]:
        """Create the counter stream; wait for its replicas and leader."""
        self.replica_nodes = await streams.open_stream(self.ctx, {"allow_msg_counter": True})
        return {"replica_nodes": self.replica_nodes}

    def operations(self, worker: int, node: str) -> Iterator[Operation]:
        """Seeded random increments of random keys, forever (the interpreter stops them)."""
        rng = random.Random(f"counter-{self.seed}-{worker}")
        while True:
            key = rng.randrange(self.keys)
            yield Operation("incr", [key, rng.randint(1, self.max_increment)], node)

    async def invoke(self, client: NatsClient, op: Operation) -> Completion:
        if op.f == "incr":
            key, n = op.value
            ack = await client.publish(self.subject(key), b"", self.timeout, {INCR: str(n)})
            if ack.val is None:
                raise Unknown(f"stored at seq {ack.seq}, but the ack carries no counter total")
            return Completion("ok", extra={"total": int(ack.val), "seq": ack.seq})
        if op.f == "read":
            assert op.node is not None
            zeros = [[k, 0] for k in range(self.keys)]
            return await streams.read_alone(
                self.cluster,
                op.node,
                self.stream,
                lambda: self._totals(client),
                zeros,
                streams.BY_SUBJECT,
            )
        raise ValueError(f"counter workload has no operation {op.f!r}")

    async def _totals(self, client: NatsClient) -> list[list[int]]:
        """``[[key, total], …]``: each key's last stored total on this node (0: none),
        all within ``recovery.read_timeout``."""
        deadline = time.monotonic() + self.read_timeout
        out = []
        for key in range(self.keys):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            msg = await client.direct_get_last(self.stream, self.subject(key), left)
            out.append([key, 0 if msg is None else _total(msg.data)])
        return out


def _total(data: bytes) -> int:
    """A counter message's body ``{"val": "123"}`` as 123."""
    try:
        return int(json.loads(data)["val"])
    except (ValueError, KeyError, TypeError) as e:
        raise Unknown(f"a counter message that is not a total: {data[:80]!r}") from e
