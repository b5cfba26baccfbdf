"""The queue workload: publish unique integers, then read every node back.

Main phase. ``concurrency`` workers (default 3 per node), worker ``w`` bound
to node ``nodes[w % n]``, each publishing the next value of one run-wide
counter (unique, and increasing per process) to ``<stream>.q`` with an
acknowledged JetStream publish, at ``rate / concurrency`` ops/s. The ack's
stream sequence is recorded as ``seq``. Errors become ``fail``/``info`` in
``harness.clients.classify``; after an ``info`` the worker continues under a
new process id (the old one is never reused).

Final reads, and why each one returns that node's replica. After healing
and the recovery wait, the runner cuts every route (each node gets a grudge
against all others, with TCP resets so route connections die at once) and
waits until every node's own ``/routez`` reports zero routes. Then, for each
node, a client connected to that node sends batched direct gets
(``$JS.API.DIRECT.GET.<stream>`` with ``batch``). Direct gets are answered
by a queue subscription that every replica of the stream holds; a message
published by a client can only reach subscribers on the server it arrived
at or on servers it has a route to. With zero routes, before and after the
read (checked on the node's ``/routez``, and the DROP/RESET rules stop any
route from re-forming in between), the only subscriber the request can
reach is the node's own replica — so the pairs read are that replica's
content, not another node's. Before reading, the node's ``/subsz`` (which
lists only its local subscriptions) must show its own direct-get
subscription; a follower joins that queue group only once caught up, and the
recovery wait waits for it on every replica. A node whose ``/jsz`` shows no such stream is
read as ``ok`` with no values and a note (the stream is gone: that is data,
its losses count); a node that is down or never answers is an ``info`` read
(unknown, not evidence).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client
from nats.errors import MaxPayloadError
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import APIError

from harness import clients, monitor
from harness.backends.base import Cluster
from harness.errors import BadInput
from harness.history import NEMESIS, HistoryWriter
from harness.scenario import Scenario

log = logging.getLogger(__name__)
READ_BATCH = 1000


@dataclass
class Counters:
    """Live counts the progress line and the runner read."""

    ok: int = 0
    fail: int = 0
    info: int = 0
    by_node: dict[str, int] = field(default_factory=dict)


class QueueWorkload:
    """Publishes unique integers to one stream and reads every node back."""

    name = "queue"
    checkers = ("stats", "queue")
    headline_checker = "queue"
    anomalies = ("lost", "unexpected", "duplicated", "divergence", "failed-but-read")
    pairs_fs = frozenset({"read"})

    def __init__(self, scenario: Scenario, cluster: Cluster, history: HistoryWriter) -> None:
        self.scenario = scenario
        self.cluster = cluster
        self.history = history
        self.stream = scenario.stream.name
        self.subject = f"{self.stream}.q"
        self.counters = Counters()
        self._values = itertools.count()
        self._next_process = itertools.count()
        self._conns: dict[str, Client] = {}
        self.replica_nodes: list[str] = list(cluster.nodes)  # nodes that hold the stream

    # -- setup --------------------------------------------------------------
    async def _conn(self, node: str) -> Client:
        if node not in self._conns:
            self._conns[node] = await clients.connect(
                self.cluster.client_url(node), f"nats-chaos-{node}"
            )
        return self._conns[node]

    async def setup(self, timeout: float = 60.0) -> None:
        """Open a connection per node; create the stream, retrying while the cluster settles."""
        for node in self.cluster.nodes:
            await self._conn(node)
        cfg = StreamConfig(
            name=self.stream,
            subjects=[f"{self.stream}.>"],
            num_replicas=self.scenario.stream.replicas,
            storage=StorageType(self.scenario.stream.storage),
            allow_direct=True,
        )
        js = self._conns[self.cluster.nodes[0]].jetstream(timeout=5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                await js.add_stream(cfg)
                break
            except MaxPayloadError as e:  # the request itself is too big: retrying won't help
                raise BadInput(f"cannot create stream {self.stream}: {e}") from None
            except APIError as e:  # 400s too: "no suitable peers" is one while nodes settle
                if time.monotonic() > deadline:
                    cls = BadInput if e.code == 400 else RuntimeError
                    raise cls(f"cannot create stream {self.stream}: {e}") from None
                await asyncio.sleep(0.5)
            except Exception as e:  # settling cluster: retry until the bound
                if time.monotonic() > deadline:
                    raise RuntimeError(f"could not create stream {self.stream}: {e}") from e
                await asyncio.sleep(0.5)
        want = self.scenario.stream.replicas
        while time.monotonic() < deadline:
            views = await asyncio.gather(
                *(
                    asyncio.to_thread(monitor.stream_view, self.cluster.monitor_url(n), self.stream)
                    for n in self.cluster.nodes
                )
            )
            holders = [n for n, v in zip(self.cluster.nodes, views, strict=True) if v and v.present]
            if len(holders) == want and all(v.leader for v in views if v and v.present):
                self.replica_nodes = holders
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"stream {self.stream} has no leader after {timeout:.0f}s")

    # -- main phase ---------------------------------------------------------
    async def run(self, deadline: float, clock: Callable[[], float] = time.monotonic) -> None:
        """Publish from every worker until ``deadline`` (monotonic seconds)."""
        n = self.scenario.concurrency
        await asyncio.gather(*(self._worker(w, deadline, clock) for w in range(n)))

    async def _worker(self, w: int, deadline: float, clock: Callable[[], float]) -> None:
        nodes = self.cluster.nodes
        node = nodes[w % len(nodes)]
        js = (await self._conn(node)).jetstream(timeout=self.scenario.workload.timeout)
        rate = self.scenario.workload.rate
        period = self.scenario.concurrency / rate if rate > 0 else 0.0
        process = next(self._next_process)
        append = self.history.append
        counters = self.counters
        subject = self.subject
        next_at = clock() + period * (w / max(1, self.scenario.concurrency))
        while clock() < deadline:
            if period:
                delay = next_at - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_at = max(next_at + period, clock() - period)
                if clock() >= deadline:
                    break
            value = next(self._values)
            append("invoke", process, "publish", value, node)
            try:
                ack = await js.publish(subject, b"%d" % value)
            except Exception as e:
                kind, err = clients.classify(e)
                append(kind, process, "publish", value, node, err)
                if kind == "info":
                    counters.info += 1
                    process = next(self._next_process)
                else:
                    counters.fail += 1
                continue
            append("ok", process, "publish", value, node, seq=ack.seq)
            counters.ok += 1

    async def lead_from(self, node: str) -> dict[str, Any]:
        """Ask the stream leader to step down in favour of ``node`` (recorded as a nemesis op).

        A stream leader always serves direct gets, so this is how the recovery
        wait gets a replica that never rejoined the direct-get group (seen after
        a power loss corrupted its ``meta.inf``) to answer the final read itself.
        """
        nc = await self._conn(node)
        req = json.dumps({"placement": {"preferred": node}}).encode()
        try:
            msg = await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{self.stream}", req, timeout=5)
            reply = json.loads(msg.data)
        except Exception as e:
            reply = {"error": clients.classify(e)[1]}
        value = {"settle": "step-down", "preferred": node, "reply": reply}
        self.history.append("info", NEMESIS, "step-down", value)
        return reply

    # -- final reads ----------------------------------------------------------
    async def final_reads(self, timeout: float) -> None:
        """Read every replica node, one ``read`` op per node (see module docstring)."""
        await asyncio.gather(*(self._read_node(node, timeout) for node in self.replica_nodes))

    async def _read_node(self, node: str, timeout: float) -> None:
        process = next(self._next_process)
        self.history.append("invoke", process, "read", None, node)
        url = self.cluster.monitor_url(node)
        view = await asyncio.to_thread(monitor.stream_view, url, self.stream)
        if view is None:
            self.history.append("info", process, "read", None, node, "node did not answer /jsz")
            return
        if not view.present:
            note = f"stream {self.stream} is absent on {node}"
            self.history.append("ok", process, "read", [], node, note=note)
            return
        if not await asyncio.to_thread(monitor.serves_direct_get, url, self.stream):
            err = f"{node} holds the stream but does not serve direct gets (replica not caught up)"
            self.history.append("info", process, "read", None, node, err)
            return
        try:
            routes_before = await asyncio.to_thread(monitor.route_count, url)
            pairs = await asyncio.wait_for(self._direct_read(node), timeout)
            routes_after = await asyncio.to_thread(monitor.route_count, url)
        except Exception as e:
            _, err = clients.classify(e)
            self.history.append("info", process, "read", None, node, err)
            return
        if routes_before != 0 or routes_after != 0:
            err = f"node had routes during the read ({routes_before}, {routes_after})"
            self.history.append("info", process, "read", None, node, err)
            return
        self.history.append("ok", process, "read", pairs, node, routes=0)

    async def _direct_read(self, node: str) -> list[list[int]]:
        nc = await self._conn(node)
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        pairs: list[list[int]] = []
        seq = 1
        try:
            while True:
                req = json.dumps({"seq": seq, "batch": READ_BATCH}).encode()
                await nc.publish(f"$JS.API.DIRECT.GET.{self.stream}", req, reply=inbox)
                got = 0
                while True:
                    msg = await sub.next_msg(timeout=10)
                    status = (msg.headers or {}).get("Status")
                    if status == "204":  # end of batch
                        break
                    if status == "404":  # nothing at or after seq
                        return pairs
                    if status:
                        raise RuntimeError(f"direct get from {node}: status {status}")
                    s = int(msg.headers["Nats-Sequence"])
                    pairs.append([s, _decode(msg.data)])
                    got += 1
                    seq = s + 1
                if got == 0:
                    return pairs
        finally:
            await sub.unsubscribe()

    async def close(self) -> None:
        for nc in self._conns.values():
            try:
                await asyncio.wait_for(nc.close(), 5)
            except Exception as e:  # closing a connection to a dead node may fail
                log.debug("close: %s", e)
        self._conns.clear()


def _decode(data: bytes) -> int:
    try:
        return int(data)
    except ValueError:
        return -1  # not a value this harness wrote: the checker reports it as unexpected
