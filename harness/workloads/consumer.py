"""The consumer workload: Jepsen's drain, done properly — consumers read through one durable
pull consumer with explicit acks while producers publish, under the faults.

Ops (docs/contracts.md §1):

- ``publish`` (producer workers): as in the queue workload — ``value`` an
  integer unique within the run and increasing per process, published to
  ``<stream>.q``; the ``ok`` completion carries the stream sequence as
  ``seq``.
- ``fetch`` (consumer workers): invoke ``value`` is ``{"worker": w,
  "batch": b}``; the ``ok`` completion's ``value`` is the messages delivered,
  as ``[stream_seq, value, num_delivered]`` triples in delivery order (the
  delivery count from the message metadata: 1 the first time), and it
  carries ``worker``. A fetch that got nothing within ``fetch_timeout`` is
  ``ok`` with ``[]``: nothing was delivered to this client (what the server
  sent and we never received comes back later with a higher count).
- ``ack`` (consumer workers, one per delivered message, after its fetch):
  ``value`` is ``[stream_seq, value]``; ``ok`` only when ``ack_sync``
  returned, i.e. the server confirmed the ack; a timeout is ``info``, no
  responders ``fail``.
- ``drain`` (the final read, one op after the heal and the recovery wait):
  fetch and ack until a fetch comes back empty and the consumer reports
  nothing pending or ack-pending, or ``recovery.read_timeout`` passes. The
  ``ok`` completion's ``value`` is every delivery as ``[stream_seq, value,
  num_delivered, acked]`` (``acked`` 1 when that delivery's ``ack_sync``
  returned, else 0), in delivery order; it carries ``batches`` (the number
  of deliveries of each fetch, in order: a delivery is after the acks of
  every earlier fetch), ``drained`` (true when it ended empty),
  ``ack_errors`` (the first few failed acks) and ``state``: the consumer's
  state after the drain (``consumer_info``: ``present``,
  ``delivered_stream``, ``ack_floor_stream``, ``num_pending``,
  ``num_ack_pending``, ``num_redelivered``, ``num_waiting``), or
  ``{"present": false}`` when the server has no such consumer (null: it did
  not answer), and ``error_seen`` (the last error of a call the drain
  retried, or null). The state
  is a field of the drain rather than an op of its own because the final
  reads run concurrently: only the drain itself can ask after its last ack.

Main phase: ``concurrency`` workers; worker ``w`` is bound to node
``nodes[w % n]``; workers ``0 … producers-1`` publish (default: one per
node), the others consume — so every node has producers and consumers on
it. Each consumer worker fetches up to ``batch`` messages, then acks them one
by one, then fetches again. Every worker is paced at ``rate / concurrency``
ops/s by the interpreter, and an ack is an op, so the default leaves twice
as many consumers as producers.

The consumer (``durable``, explicit acks, ``ack_wait``, deliver all,
replicated like the stream) is created once in ``setup``; clients only bind
to it, so a consumer the server lost stays lost (the checker reports it).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any, ClassVar, Literal

from pydantic import Field

from harness.checkspec import ConsumerChecks
from harness.clients import Delivery, NatsClient, classify
from harness.errors import BadInput
from harness.interpreter import Completion, Operation
from harness.spec import Seconds
from harness.workloads import streams
from harness.workloads.base import WorkloadContext, WorkloadSpecBase
from harness.workloads.queue import _decode

ACK_ERRORS = 10  # the drain records this many failed acks


class ConsumerSpec(WorkloadSpecBase):
    """Producers publish unique integers; consumers drain them through one durable consumer."""

    name: Literal["consumer"] = "consumer"
    producers: int | None = Field(
        default=None, ge=1, description="publishing workers (default: one per node)"
    )
    durable: str = Field(default="drain", pattern=r"^[A-Za-z0-9_-]+$")
    batch: int = Field(default=10, ge=1, le=1000, description="messages per fetch")
    fetch_timeout: Seconds = Field(default=1.0, gt=0, description="how long a fetch waits")
    ack_wait: Seconds = Field(default=5.0, gt=0, description="redelivery after this")


class ConsumerWorkload(ConsumerChecks):
    """Publishes unique integers and consumes them through one durable pull consumer."""

    Spec: ClassVar[type[WorkloadSpecBase]] = ConsumerSpec
    needs: ClassVar[frozenset[str]] = frozenset()  # reads go through the consumer: no isolation
    min_server: ClassVar[str | None] = None

    def __init__(self, ctx: WorkloadContext) -> None:
        self.ctx = ctx
        self.cluster = ctx.cluster
        self.spec: ConsumerSpec = ctx.spec
        self.stream = ctx.scenario.stream.name
        self.subject = f"{self.stream}.q"
        self.durable = self.spec.durable
        self.timeout = self.spec.timeout
        self.producers = self.spec.producers or len(ctx.cluster.nodes)
        self._values = itertools.count()
        self.replica_nodes: list[str] = list(ctx.cluster.nodes)

    # -- setup --------------------------------------------------------------
    async def setup(self) -> dict[str, Any]:
        """Create the stream, wait for its replicas, then create the durable consumer."""
        sc = self.ctx.scenario
        if self.producers >= sc.concurrency:
            raise BadInput(
                f"workload.producers ({self.producers}) leaves none of the {sc.concurrency} "
                "workers (workload.concurrency) to consume"
            )
        config = {
            "name": self.stream,
            "subjects": [f"{self.stream}.>"],
            "num_replicas": sc.stream.replicas,
            "storage": sc.stream.storage,
            "allow_direct": True,
        }
        first = await self.ctx.client_for(self.cluster.nodes[0])
        bound = sc.recovery.setup
        deadline = time.monotonic() + bound
        await streams.create_stream(lambda: first.add_stream(config, timeout=5), self.stream, bound)
        self.replica_nodes = await streams.wait_replicas(
            self.cluster, self.stream, sc.stream.replicas, max(0.0, deadline - time.monotonic())
        )
        consumer = {
            "durable_name": self.durable,
            "ack_policy": "explicit",
            "ack_wait": self.spec.ack_wait,
            "deliver_policy": "all",
            "filter_subject": self.subject,
        }
        left = max(1.0, deadline - time.monotonic())
        await streams.create_stream(  # the same retry-while-settling, for the consumer
            lambda: first.add_consumer(self.stream, consumer, timeout=5),
            self.durable,
            left,
            what="consumer",
        )
        return {"replica_nodes": self.replica_nodes, "consumer": self.durable}

    # -- main phase ---------------------------------------------------------
    def operations(self, worker: int, node: str) -> Iterator[Operation]:
        """Publishes for producer workers; fetch-then-ack rounds for consumer workers."""
        if worker < self.producers:
            values = self._values
            while True:
                yield Operation("publish", next(values), node)
        inbox: deque[Delivery] = deque()
        while True:
            if inbox:
                d = inbox.popleft()
                yield Operation("ack", [d.seq, _decode(d.data)], node, d)  # data: the delivery
            else:
                value = {"worker": worker, "batch": self.spec.batch}
                yield Operation("fetch", value, node, inbox)  # data: the worker's inbox

    async def invoke(self, client: NatsClient, op: Operation) -> Completion:
        if op.f == "publish":
            ack = await client.publish(self.subject, b"%d" % op.value, self.timeout)
            return Completion("ok", extra={"seq": ack.seq})
        if op.f == "fetch":
            got = await client.fetch(
                self.stream, self.durable, op.value["batch"], self.spec.fetch_timeout
            )
            op.data.extend(got)
            triples = [[d.seq, _decode(d.data), d.num_delivered] for d in got]
            return Completion("ok", triples, extra={"worker": op.value["worker"]})
        if op.f == "ack":
            await client.ack_sync(op.data, self.timeout)
            return Completion("ok")
        if op.f == "drain":
            return await self._drain(client)
        raise ValueError(f"consumer workload has no operation {op.f!r}")

    # -- recovery -------------------------------------------------------------
    async def recover(self, bound: float) -> dict[str, Any]:
        """Until the replicas agree on the stream, then until the consumer answers (``bound``)."""
        deadline = time.monotonic() + bound
        out = await streams.wait_converged(
            self.cluster, self.replica_nodes, self.stream, bound, serving=False
        )
        client = await self.ctx.client_for(self.cluster.nodes[0])
        out["consumer"] = "no answer"
        while time.monotonic() < deadline:
            try:
                state = await client.consumer_info(self.stream, self.durable, 2.0)
                out["consumer"] = "present" if state else "absent"
                break
            except Exception as e:  # no consumer leader yet: try again until the bound
                out["consumer"] = f"no answer ({classify(e)[1]})"
                await asyncio.sleep(0.5)
        return out

    # -- the final drain ------------------------------------------------------
    async def prepare_reads(self, bound: float) -> dict[str, Any]:
        return {}

    def final_ops(self) -> list[Operation]:
        return [Operation("drain", None, self.cluster.nodes[0])]

    async def after_reads(self) -> None:
        return None

    async def _drain(self, client: NatsClient) -> Completion:
        """Fetch and ack until empty (see the module docstring); ``read_timeout`` in all.

        A consumer or fetch call that errs (no consumer leader yet) is tried
        again until the deadline; the last error is recorded as ``error_seen``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ctx.scenario.recovery.read_timeout
        deliveries: list[list[int]] = []
        batches: list[int] = []
        ack_errors: list[list[Any]] = []
        drained = gone = False
        seen: str | None = None
        while not (drained or gone) and loop.time() < deadline:
            left = deadline - loop.time()
            try:
                state = await client.consumer_info(self.stream, self.durable, min(2.0, left))
                if state is None:
                    gone = True  # the server has no such consumer: nothing to drain
                    break
                got = await client.fetch(
                    self.stream, self.durable, self.spec.batch, min(self.spec.fetch_timeout, left)
                )
            except Exception as e:
                seen = classify(e)[1]
                await asyncio.sleep(min(0.5, max(0.0, deadline - loop.time())))
                continue
            if got:
                batches.append(len(got))
            for d in got:
                deliveries.append([d.seq, _decode(d.data), d.num_delivered, 1])
                try:
                    await client.ack_sync(d, self.timeout)
                except Exception as e:
                    deliveries[-1][3] = 0
                    if len(ack_errors) < ACK_ERRORS:
                        ack_errors.append([d.seq, _decode(d.data), classify(e)[1]])
            drained = not got and state.num_pending == 0 and state.num_ack_pending == 0
        extra = {
            "batches": batches,
            "drained": drained,
            "ack_errors": ack_errors,
            "state": await self._final_state(client, gone),
            "error_seen": seen,
        }
        return Completion("ok", deliveries, extra=extra)

    async def _final_state(self, client: NatsClient, gone: bool) -> dict[str, Any] | None:
        """The consumer's state after the drain's last ack; None if it did not answer."""
        if gone:
            return {"present": False}
        try:
            state = await client.consumer_info(self.stream, self.durable, self.timeout)
        except Exception:
            return None
        return {"present": True, **asdict(state)} if state else {"present": False}

    async def close(self) -> None:
        """Nothing of its own: the runner closes the clients."""
