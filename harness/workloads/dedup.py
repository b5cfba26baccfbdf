"""The dedup workload: publish with ``Nats-Msg-Id``, retry as a real producer does,
then read every node back with each message's id.

JetStream promises that a message whose ``Nats-Msg-Id`` it already stored
within the stream's ``duplicate_window`` is not stored again: the ack says
``duplicate`` and gives the original's sequence. A producer that timed out
(or lost its connection) re-sends the same message with the same id, and
trusts the server to keep one copy. This workload does exactly that across
leader changes, kills and power loss.

Ops (docs/contracts.md §1):

- ``publish``: ``value`` is an integer unique per logical message within
  the run; the message goes to ``<stream>.d`` with the payload ``value``
  and the header ``Nats-Msg-Id: <value>``. The ``ok`` completion carries the
  ack's ``seq`` and ``duplicate`` (true: the server says it held this id
  already, at ``seq``). After an ``info`` the same value is published again
  (up to ``retries`` more attempts, each its own op under a new process, as
  the interpreter retires a process after ``info``); after an ``ok``, a
  fraction ``resend`` of the values is published once more, as by a producer
  that never saw its ack, so the ``duplicate`` flag is exercised without
  faults too. A value's attempts are therefore all the ``publish`` invokes
  with that value, in history order.
- ``read`` (final reads, one per replica node, after healing; as the queue
  workload's, :func:`harness.workloads.streams.read_alone`): the ``ok``
  completion's ``value`` is the node's stream as ``[stream_seq, msg_id,
  value]`` triples in stream order (``msg_id`` from the ``Nats-Msg-Id``
  header, ``value`` from the payload; -1 for one missing or not an integer),
  with ``routes: 0`` and the stream's ``duplicate_window`` in seconds; a node
  without the stream reads as ``ok``, ``[]`` and a ``note``; a node that
  could not be read alone is ``info``.

Spec fields besides the common ones: ``duplicate_window`` (the stream's,
default ``2m``), ``retries`` (attempts after the first that ended ``info``,
default 3) and ``resend`` (fraction of acknowledged values sent once more,
default 0.05). Checked by :mod:`checkers.dedup`.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field

from harness.backends.base import NETWORK
from harness.checkspec import DedupChecks
from harness.clients import INFO, Message, NatsClient, classify
from harness.interpreter import Completion, Operation
from harness.spec import Seconds
from harness.workloads import streams
from harness.workloads.base import WorkloadContext, WorkloadSpecBase

MSG_ID = "Nats-Msg-Id"


class DedupSpec(WorkloadSpecBase):
    """Msg-Id deduplication: unique messages with ids, retried after unknown outcomes."""

    name: Literal["dedup"] = "dedup"
    duplicate_window: Seconds = Field(default=120.0, gt=0)
    retries: int = Field(default=3, ge=0, le=20, description="attempts after an info outcome")
    resend: float = Field(default=0.05, ge=0, le=1, description="acked values sent once more")


class DedupWorkload(DedupChecks, streams.ReplicaReads):
    """Publishes unique messages with Msg-Ids, retrying after ``info``; reads every node back."""

    Spec: ClassVar[type[WorkloadSpecBase]] = DedupSpec
    needs: ClassVar[frozenset[str]] = frozenset({NETWORK})  # per-node reads cut every route
    min_server: ClassVar[str | None] = None

    def __init__(self, ctx: WorkloadContext) -> None:
        self.ctx = ctx
        self.cluster = ctx.cluster
        self.spec: DedupSpec = ctx.spec
        self.stream = ctx.scenario.stream.name
        self.subject = f"{self.stream}.d"
        self.read_timeout = ctx.scenario.recovery.read_timeout
        self.replica_nodes: list[str] = list(ctx.cluster.nodes)
        self._values = itertools.count()
        self._outcomes: dict[int, str] = {}  # value -> type of its last attempt, until looked at

    async def setup(self) -> dict[str, Any]:
        """The stream with the spec's ``duplicate_window``; its replica nodes."""
        extra = {"duplicate_window": self.spec.duplicate_window}
        self.replica_nodes = await streams.open_stream(self.ctx, extra)
        return {"replica_nodes": self.replica_nodes}

    def operations(self, worker: int, node: str) -> Iterator[Operation]:
        """New values; the same value again after an ``info`` (and sometimes after an ``ok``).

        The interpreter asks for the next op only once the last one has
        completed, so its outcome (recorded by :meth:`invoke`) is known here.
        """
        rng = random.Random(f"{self.ctx.scenario.seed}:dedup:{worker}")
        while True:
            value = next(self._values)
            for _ in range(1 + self.spec.retries):
                yield Operation("publish", value, node)
                outcome = self._outcomes.pop(value, INFO)
                if outcome != INFO:
                    break
            if outcome == "ok" and rng.random() < self.spec.resend:
                yield Operation("publish", value, node)
                self._outcomes.pop(value, None)

    async def invoke(self, client: NatsClient, op: Operation) -> Completion:
        if op.f == "publish":
            try:
                ack = await client.publish(
                    self.subject, b"%d" % op.value, self.spec.timeout, {MSG_ID: str(op.value)}
                )
            except Exception as e:
                self._outcomes[op.value] = classify(e)[0]
                raise
            self._outcomes[op.value] = "ok"
            return Completion("ok", extra={"seq": ack.seq, "duplicate": ack.duplicate})
        if op.f == "read":
            assert op.node is not None

            def read() -> Awaitable[list[list[int]]]:
                return streams.direct_read(
                    client, self.stream, self.read_timeout, _triple, self.ctx.reads
                )

            direct = streams.direct_mode(client)
            done = await streams.read_alone(self.cluster, op.node, self.stream, read, [], direct)
            window = {"duplicate_window": self.spec.duplicate_window}
            return Completion(done.type, done.value, extra={**window, **done.extra})
        raise ValueError(f"dedup workload has no operation {op.f!r}")


def _triple(msg: Message) -> list[int]:
    return [msg.seq, _int((msg.headers or {}).get(MSG_ID)), _int(msg.data)]


def _int(text: str | bytes | None) -> int:
    try:
        return int(text) if text is not None else -1
    except ValueError:
        return -1  # not something this harness wrote: the checker reports it as unexpected
