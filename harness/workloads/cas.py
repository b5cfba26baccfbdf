"""The cas workload: per-key registers written with an expected last sequence (a CAS).

Each key ``k`` in ``0 .. keys-1`` is a register on the subject
``<stream>.k.<k>``. A worker picks a key (seeded), reads it through the
stream leader (``STREAM.MSG.GET`` with ``last_by_subj``: only the leader
answers), then publishes a new value unique within the run with
``Nats-Expected-Last-Subject-Sequence: <the sequence it read>`` (0 when the
subject held nothing): JetStream stores it only if no other write to the
key came in between, so of all the writers that read one sequence, exactly
one may win. With ``expect: stream`` the header is
``Nats-Expected-Last-Sequence`` (the stream's last sequence): one winner
per stream sequence, over every key. Some reads (``direct_reads``, a
fraction) also go through direct get first, which any replica may answer,
so it may be stale.

The mapping onto the linearizability checker's ``cas-register`` model
(``checkers/linear_models.py``) is on values, and exact: values are unique
and a key never holds one value twice, so "the subject's last sequence is
``s``" holds exactly when "the key holds the value stored at ``s``" — the
value the worker read with ``s``, which is the CAS's expected value.
(After a data loss that reuses sequences the two part, and then the model
rightly rejects a history in which the register went back.) In stream mode
a won CAS implies the key still holds the value read (nothing was written
since); a refused one is dropped by the model anyway.

Ops (docs/contracts.md §1; independent keys, ``value`` is ``[key, argument]``):

- ``read`` (through the leader): invoke ``[key, null]``; ``ok`` value
  ``[key, v]`` — ``v`` the integer value read, null when the subject holds
  nothing — with the subject's last sequence as ``seq`` (0: none). In
  stream mode the read first asks for the stream's last message
  (``last_by_subj: <stream>.>``) and carries its sequence as ``stream_seq``.
- ``cas``: invoke ``[key, [expected, new]]`` (``expected`` the value the
  preceding read returned, null for none; ``new`` a fresh integer); ``ok``:
  it won, with the ack's ``seq`` and the sequence it expected as
  ``expected_seq`` (subject mode) or ``expected_stream_seq`` (stream mode).
  ``fail``: refused with err_code 10071 or 10164 (wrong last sequence; both
  are decided before the write is proposed, or by every replica alike while
  applying it), or no stream leader got it (no responders); another
  JetStream API error, a timeout or a dropped connection is ``info`` (it may
  have been stored).
- ``read-direct``: invoke ``[key, null]``; ``ok`` value ``[key, v]`` and
  ``seq`` as ``read``, through a direct get of the last message by subject
  (any replica with ``allow_direct`` may answer). Another ``f`` than
  ``read``: the linear checker ignores it; ``checkers/cas.py`` counts the
  stale ones.
- ``read-node`` (final reads, one per replica node, after healing): ``ok``
  value ``[[key, seq, v], …]`` for every key from that node's replica alone
  (``read_alone``: direct gets with zero routes), ``seq`` 0 and ``v`` -1
  where the subject holds nothing, ``v`` -2 for a payload that is not an
  integer; with ``routes: 0`` and ``leader``, the stream leader the nodes
  agreed on when the replicas converged (null if they did not). A node
  without the stream reads as ``ok``, every key absent, and a ``note``;
  one that could not be read alone is ``info``.

Main phase: ``concurrency`` workers (default 3 per node), worker ``w`` bound
to node ``nodes[w % n]``, each op paced at ``rate / concurrency`` per
second. Checked by ``checkers/cas.py`` (double winners, linearizability of
``read`` and ``cas`` per key, stale direct reads, final replicas).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from nats.js.errors import APIError
from pydantic import Field

from harness.backends.base import NETWORK
from harness.checkspec import CasChecks
from harness.clients import Failed, NatsClient, StoredMsg, Unknown
from harness.interpreter import Completion, Operation
from harness.workloads import streams
from harness.workloads.base import WorkloadContext, WorkloadSpecBase

HEADERS = {
    "subject": "Nats-Expected-Last-Subject-Sequence",
    "stream": "Nats-Expected-Last-Sequence",
}
# err_codes of a refused expected-sequence publish: 10071 "wrong last sequence: <seq>" (the
# leader's check before proposing, or every replica's while applying, alike); 10164 "wrong
# last sequence" (2.11+: another expected-sequence write of the subject is in flight)
WRONG_LAST_SEQUENCE = frozenset({10071, 10164})
ABSENT, FOREIGN = -1, -2  # a final read's value for no message, for a payload not an integer


class CasSpec(WorkloadSpecBase):
    """Read-then-CAS on a few per-subject registers; some reads through direct get."""

    name: Literal["cas"] = "cas"
    keys: int = Field(default=8, ge=1, le=1000, description="registers: subjects <stream>.k.<key>")
    expect: Literal["subject", "stream"] = Field(
        default="subject",
        description="subject: Nats-Expected-Last-Subject-Sequence; stream: -Last-Sequence",
    )
    direct_reads: float = Field(
        default=0.25, ge=0, le=1, description="fraction of reads also made through direct get"
    )


class CasWorkload(CasChecks, streams.ReplicaReads):
    """CAS writes with an expected last sequence, leader and direct reads, per-node finals."""

    Spec: ClassVar[type[WorkloadSpecBase]] = CasSpec
    needs: ClassVar[frozenset[str]] = frozenset({NETWORK})  # per-node reads cut every route
    min_server: ClassVar[str | None] = None

    def __init__(self, ctx: WorkloadContext) -> None:
        self.ctx = ctx
        self.cluster = ctx.cluster
        self.spec: CasSpec = ctx.spec
        self.stream = ctx.scenario.stream.name
        self.header = HEADERS[self.spec.expect]
        self.read_timeout = ctx.scenario.recovery.read_timeout
        self.replica_nodes: list[str] = list(ctx.cluster.nodes)
        self.leader: str | None = None
        self._values = itertools.count(1)
        # per op object (the generator holds it until it resumes, so its id is not reused):
        self._reads: dict[int, tuple[int, int | str | None]] = {}  # read -> (expected seq, value)
        self._expected: dict[int, int] = {}  # cas -> the sequence it expects

    def subject(self, key: int) -> str:
        return f"{self.stream}.k.{key}"

    async def setup(self) -> dict[str, Any]:
        """Create the stream; wait for its replicas and leader."""
        self.replica_nodes = await streams.open_stream(self.ctx)
        return {"replica_nodes": self.replica_nodes}

    def operations(self, worker: int, node: str) -> Iterator[Operation]:
        """Seeded keys: sometimes a direct read, then a leader read and, if it was ok, a CAS.

        The interpreter asks for the next op only once the last one has
        completed, so the read's outcome (stored by :meth:`invoke`) is known here.
        """
        rng = random.Random(f"cas-{self.ctx.scenario.seed}-{worker}")
        while True:
            key = rng.randrange(self.spec.keys)
            if rng.random() < self.spec.direct_reads:
                yield Operation("read-direct", [key, None], node)
            read = Operation("read", [key, None], node)
            yield read
            got = self._reads.pop(id(read), None)
            if got is None:  # the read failed or its outcome is unknown: nothing to expect
                continue
            seq, value = got
            cas = Operation("cas", [key, [value, next(self._values)]], node)
            self._expected[id(cas)] = seq
            yield cas

    async def invoke(self, client: NatsClient, op: Operation) -> Completion:
        if op.f == "read":
            return await self._read(client, op)
        if op.f == "cas":
            return await self._cas(client, op)
        if op.f == "read-direct":
            key = op.value[0]
            msg = await client.direct_get_last(self.stream, self.subject(key), self.spec.timeout)
            return Completion("ok", [key, _value(msg)], extra={"seq": msg.seq if msg else 0})
        if op.f == "read-node":
            assert op.node is not None
            absent = [[k, 0, ABSENT] for k in range(self.spec.keys)]
            done = await streams.read_alone(
                self.cluster,
                op.node,
                self.stream,
                lambda: self._finals(client),
                absent,
                streams.BY_SUBJECT,
            )
            return Completion(done.type, done.value, extra={**done.extra, "leader": self.leader})
        raise ValueError(f"cas workload has no operation {op.f!r}")

    async def _read(self, client: NatsClient, op: Operation) -> Completion:
        """A leader read; remembers what the next CAS of this worker expects."""
        key, timeout = op.value[0], self.spec.timeout
        extra: dict[str, Any] = {}
        if self.spec.expect == "stream":  # the stream's last sequence first, then the key
            last = await client.msg_get_last(self.stream, f"{self.stream}.>", timeout)
            extra["stream_seq"] = last.seq if last else 0
        msg = await client.msg_get_last(self.stream, self.subject(key), timeout)
        value, seq = _value(msg), msg.seq if msg else 0
        extra["seq"] = seq
        self._reads[id(op)] = (extra.get("stream_seq", seq), value)
        return Completion("ok", [key, value], extra=extra)

    async def _cas(self, client: NatsClient, op: Operation) -> Completion:
        key, (_, new) = op.value
        expected = self._expected.pop(id(op))
        headers = {self.header: str(expected)}
        try:
            ack = await client.publish(self.subject(key), b"%d" % new, self.spec.timeout, headers)
        except APIError as e:
            if getattr(e, "err_code", None) in WRONG_LAST_SEQUENCE:
                raise Failed(f"wrong last sequence (expected {expected})") from None
            # another API error may come from applying an entry already committed: unknown
            raise Unknown(f"api-error {e.err_code or e.code}: {e.description}") from None
        field = "expected_seq" if self.spec.expect == "subject" else "expected_stream_seq"
        return Completion("ok", extra={"seq": ack.seq, field: expected})

    async def _finals(self, client: NatsClient) -> list[list[int]]:
        """``[[key, seq, value], …]`` from this node's replica, within ``read_timeout``."""
        deadline = time.monotonic() + self.read_timeout
        out = []
        for key in range(self.spec.keys):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            msg = await client.direct_get_last(self.stream, self.subject(key), left)
            value = _value(msg)
            if msg is None:
                out.append([key, 0, ABSENT])
            else:
                out.append([key, msg.seq, value if isinstance(value, int) else FOREIGN])
        return out

    async def recover(self, bound: float) -> dict[str, Any]:
        """Until every replica agrees on the stream and serves direct gets (or ``bound``)."""
        recovery = await super().recover(bound)
        seen = {(v or {}).get("leader") for v in recovery["nodes"].values()}
        self.leader = seen.pop() if recovery["converged"] and len(seen) == 1 else None
        return recovery

    def final_ops(self) -> list[Operation]:
        return [Operation("read-node", None, node) for node in self.replica_nodes]


def _value(msg: StoredMsg | None) -> int | str | None:
    """A stored register value: its integer, None for no message, the text if not a number."""
    if msg is None:
        return None
    try:
        return int(msg.data)
    except ValueError:
        return msg.data.decode(errors="replace")[:80]
