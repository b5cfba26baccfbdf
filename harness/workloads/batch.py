"""The batch workload: atomic batch publishes (nats-server 2.12+), then every node read back.

A stream created with ``allow_atomic: true`` stores a batch of messages all
at once or not at all (ADR-50). A batch is a run of messages with the
headers ``Nats-Batch-Id: <id>`` and ``Nats-Batch-Sequence: <i>`` (1-based);
the last one also carries ``Nats-Batch-Commit: 1``. The server stages the
others at the stream leader and stores them with the commit, whose PubAck
gives the last message's sequence and the batch id and size (``batch``,
``count``). A gap in the sequence, a batch the leader does not hold (it
changed, restarted, or the batch was abandoned after 10 s without a
message) or an unknown batch is refused with err_code 10176 ("atomic
publish batch is incomplete"); a stream without ``allow_atomic`` refuses
batch headers with 10174. Checked on nats-server 2.14.0: message 1 sent as
a request is answered with an empty reply, the others need no reply.

How a batch is sent: message 1 as a request (its empty reply says the
stream leader staged it; an error reply is the refusal), the middle ones as
plain publishes (no reply is asked for), the commit as a JetStream publish.
Nothing is stored unless the commit arrives, and a batch id is never used
twice, so anything that goes wrong before the commit is sent is a certain
``fail``; the commit's own outcome is classified as any publish's.

Ops (docs/contracts.md §1):

- ``batch``: ``value`` is ``[batch_id, [v1, v2, …]]``: a batch id unique
  within the run (an integer, sent as the ``Nats-Batch-Id`` text) and the
  batch's 2 … ``max_batch`` values in batch order (the size drawn from a
  random generator seeded by the scenario's seed and the worker), each an
  integer unique within the run and the payload of one message to
  ``<stream>.b``. The ``ok`` completion carries the commit ack's ``seq``
  (the stream sequence of the last message) and ``count`` (the batch size
  the server reports; null if it gives none). ``fail``: certainly not
  stored (refused before or at the commit, or never committed); ``info``:
  the commit's outcome is unknown (a timeout, a dropped connection), so the
  batch may be stored, whole, or not at all.
- ``read`` (final reads, one per replica node, after healing, as the queue
  workload's: :func:`harness.workloads.streams.read_alone`): the ``ok``
  completion's ``value`` is the node's stream as ``[stream_seq, batch_id,
  batch_seq, value]`` rows in stream order (the two headers and the
  payload; -1 for one missing or not an integer), with ``routes: 0``; a node
  without the stream reads as ``ok``, ``[]`` and a ``note``; a node that
  could not be read alone is ``info``.

Spec fields besides the common ones: ``max_batch`` (the largest batch,
2 … 1000, the server's limit; default 5). Checked by :mod:`checkers.batch`
(committed batches whole and contiguous, failed ones absent, unknown ones
all or nothing, on every replica).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field

from harness.backends.base import NETWORK
from harness.checkspec import BatchChecks
from harness.clients import Failed, Message, NatsClient, Unknown, classify
from harness.interpreter import Completion, Operation
from harness.workloads import streams
from harness.workloads.base import WorkloadContext, WorkloadSpecBase

BATCH_ID = "Nats-Batch-Id"
BATCH_SEQ = "Nats-Batch-Sequence"
BATCH_COMMIT = "Nats-Batch-Commit"


class BatchSpec(WorkloadSpecBase):
    """Atomic batches of 2 … ``max_batch`` unique values, read back from each node."""

    name: Literal["batch"] = "batch"
    max_batch: int = Field(default=5, ge=2, le=1000, description="messages in the largest batch")


class BatchWorkload(BatchChecks, streams.ReplicaReads):
    """Publishes atomic batches and reads every node's stream back with the batch headers."""

    Spec: ClassVar[type[WorkloadSpecBase]] = BatchSpec
    needs: ClassVar[frozenset[str]] = frozenset({NETWORK})  # per-node reads cut every route
    min_server: ClassVar[str | None] = "2.12.0"  # allow_atomic came with 2.12

    def __init__(self, ctx: WorkloadContext) -> None:
        self.ctx = ctx
        self.cluster = ctx.cluster
        self.spec: BatchSpec = ctx.spec
        self.stream = ctx.scenario.stream.name
        self.subject = f"{self.stream}.b"
        self.read_timeout = ctx.scenario.recovery.read_timeout
        self.replica_nodes: list[str] = list(ctx.cluster.nodes)
        self._ids = itertools.count(1)
        self._values = itertools.count()

    async def setup(self) -> dict[str, Any]:
        """The stream with ``allow_atomic``; its replica nodes."""
        self.replica_nodes = await streams.open_stream(self.ctx, {"allow_atomic": True})
        return {"replica_nodes": self.replica_nodes}

    def operations(self, worker: int, node: str) -> Iterator[Operation]:
        """Batches of seeded random sizes, with fresh ids and values, forever."""
        rng = random.Random(f"batch-{self.ctx.scenario.seed}-{worker}")
        while True:
            size = rng.randint(2, self.spec.max_batch)
            values = [next(self._values) for _ in range(size)]
            yield Operation("batch", [next(self._ids), values], node)

    async def invoke(self, client: NatsClient, op: Operation) -> Completion:
        if op.f == "batch":
            return await self._batch(client, *op.value)
        if op.f == "read":
            assert op.node is not None

            def read() -> Awaitable[list[list[int]]]:
                return streams.direct_read(
                    client, self.stream, self.read_timeout, _row, self.ctx.reads
                )

            direct = streams.direct_mode(client)
            return await streams.read_alone(self.cluster, op.node, self.stream, read, [], direct)
        raise ValueError(f"batch workload has no operation {op.f!r}")

    async def _batch(self, client: NatsClient, batch_id: int, values: list[int]) -> Completion:
        """Stage every message but the last (the first confirmed), then commit with the last."""
        bid, timeout = str(batch_id), self.spec.timeout
        for i, v in enumerate(values[:-1], 1):
            headers = {BATCH_ID: bid, BATCH_SEQ: str(i)}
            try:
                await client.publish_staged(
                    self.subject, b"%d" % v, headers, timeout if i == 1 else None
                )
            except Exception as e:  # no commit was sent: nothing of the batch can be stored
                raise Failed(f"not committed (message {i}: {classify(e)[1]})") from e
        n = len(values)
        commit = {BATCH_ID: bid, BATCH_SEQ: str(n), BATCH_COMMIT: "1"}
        ack = await client.publish(self.subject, b"%d" % values[-1], timeout, commit)
        if ack.batch is not None and ack.batch != bid:
            raise Unknown(f"the commit's ack is for batch {ack.batch!r}, at seq {ack.seq}")
        return Completion("ok", extra={"seq": ack.seq, "count": ack.count})


def _row(msg: Message) -> list[int]:
    """``[stream_seq, batch_id, batch_seq, value]`` of one stored message."""
    headers = msg.headers or {}
    return [msg.seq, _int(headers.get(BATCH_ID)), _int(headers.get(BATCH_SEQ)), _int(msg.data)]


def _int(text: str | bytes | None) -> int:
    try:
        return int(text) if text is not None else -1
    except ValueError:
        return -1  # not something this harness wrote: the checker reports it as unexpected
