"""The queue workload: publish unique integers, then read every node back.

Ops (docs/contracts.md §1):

- ``publish``: ``value`` is an integer unique within the run and increasing
  per process, sent as the payload of an acknowledged JetStream publish to
  ``<stream>.q``; the ``ok`` completion carries the ack's stream sequence as
  ``seq``.
- ``read`` (final reads, one per replica node, after healing): ``node`` is
  the node read from; the ``ok`` completion's ``value`` is the node's stream
  as ``[stream_seq, value]`` pairs in stream order, with ``routes: 0``; a node
  whose ``/jsz`` shows no such stream is read as ``ok`` with ``[]`` and a
  ``note`` (the stream is gone: that is data, its losses count); a node that
  is down, never answers, or is not alone is an ``info`` read (not evidence).

Main phase: ``concurrency`` workers (default 3 per node), worker ``w`` bound
to node ``nodes[w % n]``, each publishing the next value of one run-wide
counter at ``rate / concurrency`` ops/s (paced by the interpreter). The
publishes pipeline (:class:`QueuePublisher`, ``window``/``processes`` in the
spec; with ``rate: 0`` they saturate the cluster): a client process ``k`` of
``n`` publishes the values ``k, k+n, k+2n …``, so values stay unique within
the run and increasing per process.

Final reads, and why each one returns that node's replica. After the
recovery wait (every replica reports the same stream state, and serves
direct gets itself), ``prepare_reads`` cuts every route
(:func:`harness.workloads.streams.isolate_for_reads`). Then, for each node, a
client connected to that node sends batched direct gets
(:func:`harness.workloads.streams.read_alone`). With zero routes, before and
after the read (checked on the node's ``/routez``; the DROP/RESET rules stop
any route from re-forming in between), the only subscriber the request can
reach is the node's own replica. Before reading, the node's ``/subsz``
(which lists only its local subscriptions) must show its own direct-get
subscription.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from harness.backends.base import NETWORK
from harness.checkspec import QueueChecks
from harness.clients import Message, NatsClient
from harness.interpreter import Completion, Operation
from harness.workloads import streams
from harness.workloads.base import PipelinedSpec, WorkloadContext, WorkloadSpecBase

if TYPE_CHECKING:
    from harness.scenario import Scenario


class QueueSpec(PipelinedSpec):
    """The queue workload: unique integers published to one stream, read back from each node."""

    name: Literal["queue"] = "queue"


class QueuePublisher:
    """The main phase's publishes of shard ``shard`` of ``shards`` (one per client process):
    the values ``shard, shard + shards, …``, one at a time (``invoke``) or pipelined
    (``submit``/``complete``, :class:`~harness.interpreter.Pipelined`)."""

    def __init__(self, subject: str, timeout: float, shard: int = 0, shards: int = 1) -> None:
        self.subject = subject
        self.timeout = timeout
        self._values = itertools.count(shard, shards)

    def operations(self, worker: int, node: str) -> Iterator[Operation]:
        """Publishes of the next value, forever (the interpreter stops them)."""
        values = self._values
        while True:
            yield Operation("publish", next(values), node)

    async def invoke(self, client: NatsClient, op: Operation) -> Completion:
        ack = await client.publish(self.subject, b"%d" % op.value, self.timeout)
        return Completion("ok", extra={"seq": ack.seq})

    async def submit(self, client: NatsClient, op: Operation) -> asyncio.Future[Any]:
        return await client.publish_async(self.subject, b"%d" % op.value)

    def complete(self, op: Operation, answer: Any) -> Completion:
        return Completion("ok", extra={"seq": answer.seq})


class QueueWorkload(QueueChecks, streams.ReplicaReads):
    """Publishes unique integers to one stream and reads every node back."""

    Spec: ClassVar[type[WorkloadSpecBase]] = QueueSpec
    needs: ClassVar[frozenset[str]] = frozenset({NETWORK})  # per-node reads cut every route
    min_server: ClassVar[str | None] = None

    def __init__(self, ctx: WorkloadContext) -> None:
        self.ctx = ctx
        self.cluster = ctx.cluster
        self.stream = ctx.scenario.stream.name
        self.subject = f"{self.stream}.q"
        self.timeout = ctx.spec.timeout
        self.publisher = QueuePublisher(self.subject, self.timeout)
        self.replica_nodes: list[str] = list(ctx.cluster.nodes)  # nodes that hold the stream
        self.read_timeout = ctx.scenario.recovery.read_timeout

    # -- setup --------------------------------------------------------------
    async def setup(self) -> dict[str, Any]:
        """Open a client per node; create the stream and wait for its replicas and leader."""
        self.replica_nodes = await streams.open_stream(self.ctx)
        return {"replica_nodes": self.replica_nodes}

    # -- main phase ---------------------------------------------------------
    @classmethod
    def pipeline(cls, scenario: Scenario, shard: int, shards: int) -> QueuePublisher:
        """The main phase's client of one of ``shards`` client processes."""
        return QueuePublisher(f"{scenario.stream.name}.q", scenario.workload.timeout, shard, shards)

    def operations(self, worker: int, node: str) -> Iterator[Operation]:
        """Publishes of the next run-wide value, forever (the interpreter stops them)."""
        return self.publisher.operations(worker, node)

    async def invoke(self, client: NatsClient, op: Operation) -> Completion:
        if op.f == "publish":
            return await self.publisher.invoke(client, op)
        if op.f == "read":
            assert op.node is not None
            return await self._read(client, op.node)
        raise ValueError(f"queue workload has no operation {op.f!r}")

    # -- final reads ----------------------------------------------------------
    async def _read(self, client: NatsClient, node: str) -> Completion:
        """One node's replica, provably its own (see the module docstring)."""

        def read() -> Awaitable[list[list[int]]]:
            return streams.direct_read(
                client, self.stream, self.read_timeout, _pair, self.ctx.reads
            )

        direct = streams.direct_mode(client)
        return await streams.read_alone(self.cluster, node, self.stream, read, [], direct)


def _pair(msg: Message) -> list[int]:
    return [msg.seq, _decode(msg.data)]


def _decode(data: bytes) -> int:
    try:
        return int(data)
    except ValueError:
        return -1  # not a value this harness wrote: the checker reports it as unexpected
