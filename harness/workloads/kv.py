"""The kv workload: a NATS KV bucket over a few keys, read and written concurrently,
checked for linearizability per key.

A KV bucket ``B`` is the stream ``KV_B`` on the subjects ``$KV.B.>``: key
``k`` is the subject ``$KV.B.<k>``, an entry's revision is its stream
sequence, a delete is a message with the header ``KV-Operation: DEL``, and
an update "if the key is still at revision r" is a publish with
``Nats-Expected-Last-Subject-Sequence: r`` (what nats-py's ``KeyValue``
sends). The bucket is created with ``js.create_key_value`` (the scenario's
replicas and storage, the spec's ``history``); the ops are those plain
publishes and gets, so each get can be sent to the stream leader or to any
replica, as chosen. The bucket's stream is the scenario's stream: name it
``KV_<bucket>`` (``stream: {name: KV_chaos}``), so that faults aimed at the
stream leader find it; another name is refused at setup (exit 2).

Ops (docs/contracts.md §1; independent keys: ``value`` is ``[key,
argument]``, ``key`` an integer in ``0 .. keys-1``; every ``ok`` carries the
entry's stream sequence as ``revision``; these are the ``kv`` model's ops in
:mod:`checkers.linear_models`):

- ``get`` (``reads: leader``): ``[key, null]``; a ``STREAM.MSG.GET`` with
  ``last_by_subj``, answered by the stream leader. ``ok`` value ``[key,
  value]``: the value, or null when the key was never written (``revision``
  0) or its last entry is a delete (its ``revision``).
- ``get-direct`` (``reads: direct``): the same through a direct get, which
  any caught-up replica may answer, so it may be stale: the linear checker
  ignores this ``f``; the kv checker counts the stale ones.
- ``put``: ``[key, value]``, a blind write of a run-unique integer.
- ``create``: ``[key, value]``; written only if the key is absent (never
  written, or deleted): as nats-py does, a publish expecting revision 0,
  and when that is refused and the leader's last entry is a delete, one
  expecting that delete's revision. Refused: ``fail`` with ``key exists``
  and the server's error code (10071, or 10164: another conditional
  write to the key was in flight on the leader).
- ``update``: ``[key, [value, last]]``, written only if the key's revision
  is still ``last`` — the revision the worker's previous ``get`` returned
  (each update follows a get of its key). Refused: ``fail`` with ``wrong
  revision`` and the server's error code (10071 or 10164).
- ``delete``: ``[key, null]``, a blind delete marker.
- ``read`` (final reads, one per replica node, after healing): the ``ok``
  value is ``[[key, value, revision], …]`` for every key, each key's last
  entry in that node's own replica (a direct get of the subject's last
  message with every route cut, :func:`harness.workloads.streams.read_alone`;
  ``[key, null, 0]`` for none, ``[key, null, r]`` for a delete), with
  ``routes: 0``. A node without the stream reads as every key absent with a
  ``note``; a node that could not be read alone is ``info``.

A timeout or a dropped connection is ``info``; no responders (no stream
leader) ``fail``. Worker ``w`` draws its ops from a generator seeded by the
scenario's seed and ``w``: a key, then get-and-update (weight 5), create
(2), put (2) or delete (1). Checked by ``checkers/kv.py`` (with
``linear-kv``).
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
from harness.checkspec import KvChecks
from harness.clients import Ack, Failed, NatsClient, StoredMsg, classify
from harness.errors import BadInput
from harness.interpreter import Completion, Operation
from harness.workloads import streams
from harness.workloads.base import WorkloadContext, WorkloadSpecBase

EXPECT_LAST = "Nats-Expected-Last-Subject-Sequence"
KV_OPERATION = "KV-Operation"
REMOVED = ("DEL", "PURGE")  # KV-Operation values of an entry that removes its key
# err_codes of a refused expected-sequence publish: the subject's last sequence is another
# (10071), or another publish to the subject is in flight on the stream leader (10164); both
# are sent by the leader before it proposes the message, so nothing was stored
WRONG_LAST = (10071, 10164)
ACTIONS = ("update", "create", "put", "delete")  # "update" is a get, then the update
WEIGHTS = (5, 2, 2, 1)


class KvSpec(WorkloadSpecBase):
    """A KV bucket over a few keys: gets, creates, conditional updates, puts and deletes."""

    name: Literal["kv"] = "kv"
    keys: int = Field(default=5, ge=1, le=1000)
    history: int = Field(default=5, ge=1, le=64, description="entries the bucket keeps per key")
    reads: Literal["leader", "direct"] = Field(
        default="leader",
        description="gets through the stream leader (linearizable) or direct (any replica)",
    )


class KvWorkload(KvChecks, streams.ReplicaReads):
    """Reads and conditionally writes a few KV keys; reads every node's last entries back."""

    Spec: ClassVar[type[WorkloadSpecBase]] = KvSpec
    needs: ClassVar[frozenset[str]] = frozenset({NETWORK})  # per-node reads cut every route
    min_server: ClassVar[str | None] = None

    def __init__(self, ctx: WorkloadContext) -> None:
        self.ctx = ctx
        self.cluster = ctx.cluster
        self.spec: KvSpec = ctx.spec
        self.stream = ctx.scenario.stream.name
        self.bucket = self.stream.removeprefix("KV_")
        self.timeout = self.spec.timeout
        self.read_timeout = ctx.scenario.recovery.read_timeout
        self.replica_nodes: list[str] = list(ctx.cluster.nodes)
        self._values = itertools.count(1)
        self._seen: dict[int, int] = {}  # id(get op) -> the revision it returned, until used

    def subject(self, key: int) -> str:
        return f"$KV.{self.bucket}.{key}"

    async def setup(self) -> dict[str, Any]:
        """Create the bucket; wait for its stream's replicas and leader."""
        sc = self.ctx.scenario
        if not self.stream.startswith("KV_") or self.stream == "KV_":
            raise BadInput(
                f"workload kv: stream.name {self.stream!r} must be KV_<bucket>, the bucket's "
                "stream, so faults aimed at the stream leader find it "
                "(e.g. --set stream.name=KV_chaos)"
            )
        for node in self.cluster.nodes:
            await self.ctx.client_for(node)
        config = {
            "bucket": self.bucket,
            "history": self.spec.history,
            "replicas": sc.stream.replicas,
            "storage": sc.stream.storage,
            "direct": True,  # allow_direct: nats-py leaves it off unless asked
        }
        first = await self.ctx.client_for(self.cluster.nodes[0])
        deadline = time.monotonic() + sc.recovery.setup
        await streams.create_stream(
            lambda: first.add_key_value(config, 5), self.bucket, sc.recovery.setup, what="bucket"
        )
        left = max(0.0, deadline - time.monotonic())
        self.replica_nodes = await streams.wait_replicas(
            self.cluster, self.stream, sc.stream.replicas, left
        )
        return {"replica_nodes": self.replica_nodes, "bucket": self.bucket}

    def operations(self, worker: int, node: str) -> Iterator[Operation]:
        """Seeded random ops on random keys, forever (see the module docstring).

        An update uses the revision its get returned: the interpreter asks
        for the next op only once the last one completed, so :meth:`invoke`
        has recorded it by then (nothing when the get did not end ``ok``).
        """
        rng = random.Random(f"kv-{self.ctx.scenario.seed}-{worker}")
        get = "get" if self.spec.reads == "leader" else "get-direct"
        while True:
            key = rng.randrange(self.spec.keys)
            action = rng.choices(ACTIONS, WEIGHTS)[0]
            if action == "update":
                op = Operation(get, [key, None], node)
                yield op
                last = self._seen.pop(id(op), None)
                if last is not None:
                    yield Operation("update", [key, [next(self._values), last]], node)
            elif action == "delete":
                yield Operation("delete", [key, None], node)
            else:
                yield Operation(action, [key, next(self._values)], node)

    async def invoke(self, client: NatsClient, op: Operation) -> Completion:
        if op.f == "read":
            assert op.node is not None
            absent = [[k, None, 0] for k in range(self.spec.keys)]
            return await streams.read_alone(
                self.cluster,
                op.node,
                self.stream,
                lambda: self._entries(client),
                absent,
                streams.BY_SUBJECT,
            )
        key, arg = op.value
        subject = self.subject(key)
        if op.f in ("get", "get-direct"):
            get = client.msg_get_last if op.f == "get" else client.direct_get_last
            value, revision = entry(await get(self.stream, subject, self.timeout))
            self._seen[id(op)] = revision
            return Completion("ok", [key, value], extra={"revision": revision})
        if op.f == "put":
            ack = await client.publish(subject, b"%d" % arg, self.timeout)
        elif op.f == "delete":
            ack = await client.publish(subject, b"", self.timeout, {KV_OPERATION: "DEL"})
        elif op.f == "update":
            ack = await self._write_if(client, subject, arg[0], arg[1], "wrong revision")
        elif op.f == "create":
            ack = await self._create(client, subject, arg)
        else:
            raise ValueError(f"kv workload has no operation {op.f!r}")
        return Completion("ok", extra={"revision": ack.seq})

    async def _write_if(
        self, client: NatsClient, subject: str, value: int, last: int, refusal: str
    ) -> Ack:
        """Write ``value`` if ``subject``'s last revision is ``last``; refused: ``Failed``."""
        try:
            return await client.publish(
                subject, b"%d" % value, self.timeout, {EXPECT_LAST: str(last)}
            )
        except APIError as e:
            if e.err_code in WRONG_LAST:
                raise Failed(f"{refusal} (err_code {e.err_code}: {e.description})") from None
            raise

    async def _create(self, client: NatsClient, subject: str, value: int) -> Ack:
        """nats-py's ``create``: expect revision 0; refused, expect the delete marker's."""
        try:
            return await self._write_if(client, subject, value, 0, "key exists")
        except Failed as refused:
            first = refused
        try:  # nothing was written yet: whatever this lookup does, the create did not happen
            last = await client.msg_get_last(self.stream, subject, self.timeout)
        except Exception as e:
            raise Failed(f"{first}; its last entry could not be read: {classify(e)[1]}") from None
        if last is None or entry(last)[0] is not None:
            raise first
        return await self._write_if(client, subject, value, last.seq, "key exists")

    async def _entries(self, client: NatsClient) -> list[list[Any]]:
        """``[[key, value, revision], …]``: this node's last entry of every key, within
        ``recovery.read_timeout``."""
        deadline = time.monotonic() + self.read_timeout
        out: list[list[Any]] = []
        for key in range(self.spec.keys):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            value, revision = entry(
                await client.direct_get_last(self.stream, self.subject(key), left)
            )
            out.append([key, value, revision])
        return out


def entry(msg: StoredMsg | None) -> tuple[int | None, int]:
    """A key's last message as ``(value, revision)``: ``(None, 0)`` for none, ``(None, seq)``
    for a delete or purge marker, -1 for a value this harness did not write."""
    if msg is None:
        return None, 0
    if (msg.headers or {}).get(KV_OPERATION) in REMOVED:
        return None, msg.seq
    try:
        return int(msg.data), msg.seq
    except ValueError:
        return -1, msg.seq
