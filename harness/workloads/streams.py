"""What every stream-backed workload needs: create a stream, wait for its replicas,
wait until they agree, make each node's read provably its own, and read it.

In: a cluster (its nodes' own monitors, :class:`harness.monitor.NodeMonitor`)
and a :class:`~harness.clients.NatsClient`. Out: plain dicts for
results.json, a node's messages as rows, and exceptions from the error tree
when the cluster never gets there. A workload module calls these from its
hooks; the runner never does.

Why per-node reads are local. Direct gets are answered by a queue
subscription every caught-up replica holds, and queue delivery is random
between local and routed members; so a direct get is answered by the node it
was sent to only when that node has zero routes. :func:`isolate_for_reads`
gives every node a grudge against all the others (TCP resets kill the route
connections at once) and waits until each node's own ``/routez`` shows 0.
:func:`direct_read` reads in batched direct gets (over the client's own raw
connection to its node, decoded in bulk: :mod:`harness.rawget`), or on a
server that announces a version without them (2.10) in single ones; either
way on the one isolated node the client is bound to, and bounded by
progress: it ends (:class:`ReadStalled`, an ``info`` read) only after
``stall`` seconds without a batch, however big the stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from nats.errors import MaxPayloadError
from nats.js.errors import APIError

from harness import monitor
from harness.clients import Message, NatsClient, Unknown, classify
from harness.errors import BadInput, NoStreamLeader
from harness.interpreter import Completion, Operation
from harness.servers import batched_direct_get

if TYPE_CHECKING:  # the scenario imports the workload registry: no import at run time
    from harness.backends.base import Cluster, NetworkControl
    from harness.workloads.base import ReadWatch, WorkloadContext

READ_BATCH = 1000  # messages per batched direct get
LIVE = "live"  # a final read's ``via`` when the node's own server answered it
SINGLE_WINDOW = 64  # single direct gets in flight at once where batches are not answered
NUDGE_EVERY = 5.0  # seconds a replica may lag in joining the direct-get group before a nudge
GONE_AFTER = 10.0  # every node answers without the stream this long: it is gone, stop waiting


async def _views(
    cluster: Cluster, nodes: list[str], stream: str
) -> list[monitor.StreamView | None]:
    return list(
        await asyncio.gather(
            *(asyncio.to_thread(cluster.monitor(n).stream_view, stream) for n in nodes)
        )
    )


async def create_stream(
    add: Callable[[], Awaitable[None]],
    stream: str,
    timeout: float,
    poll: float = 0.5,
    what: str = "stream",
) -> None:
    """Call ``add()`` until the stream exists, retrying while the cluster settles.

    An API error after ``timeout`` seconds: a 400 is the user's config
    (:class:`BadInput`), anything else the cluster's (:class:`NoStreamLeader`).
    A request too big to send is bad input at once. ``what`` names the thing
    in those errors (a workload creating a consumer the same way says so).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            await add()
            return
        except MaxPayloadError as e:  # the request itself is too big: retrying won't help
            raise BadInput(f"cannot create {what} {stream}: {e}") from None
        except APIError as e:  # 400s too: "no suitable peers" is one while nodes settle
            if time.monotonic() > deadline:
                cls = BadInput if e.code == 400 else NoStreamLeader
                raise cls(f"cannot create {what} {stream}: {e}") from None
        except Exception as e:  # settling cluster: retry until the bound
            if time.monotonic() > deadline:
                raise NoStreamLeader(f"could not create {what} {stream}: {e}") from None
        await asyncio.sleep(poll)


async def open_stream(ctx: WorkloadContext, extra: dict[str, Any] | None = None) -> list[str]:
    """The setup of a stream workload: a client per node, the scenario's stream, its replicas.

    The stream is ``<name>.>`` with the scenario's replicas and storage and
    direct gets allowed, plus ``extra`` config fields (``StreamConfig``
    names); returns the nodes that hold it once each of them sees a leader.
    """
    sc, cluster = ctx.scenario, ctx.cluster
    for node in cluster.nodes:
        await ctx.client_for(node)
    config = {
        "name": sc.stream.name,
        "subjects": [f"{sc.stream.name}.>"],
        "num_replicas": sc.stream.replicas,
        "storage": sc.stream.storage,
        "allow_direct": True,
        **(extra or {}),
    }
    first = await ctx.client_for(cluster.nodes[0])
    bound = sc.recovery.setup
    deadline = time.monotonic() + bound
    await create_stream(lambda: first.add_stream(config, timeout=5), sc.stream.name, bound)
    left = max(0.0, deadline - time.monotonic())
    return await wait_replicas(cluster, sc.stream.name, sc.stream.replicas, left)


async def wait_replicas(
    cluster: Cluster, stream: str, replicas: int, timeout: float, poll: float = 0.2
) -> list[str]:
    """Until ``replicas`` nodes hold ``stream`` and all see a leader; those nodes."""
    deadline = time.monotonic() + timeout
    nodes = list(cluster.nodes)
    while True:
        views = await _views(cluster, nodes, stream)
        holders = [n for n, v in zip(nodes, views, strict=True) if v and v.present]
        if len(holders) == replicas and all(v.leader for v in views if v and v.present):
            return holders
        if time.monotonic() > deadline:
            raise NoStreamLeader(
                f"stream {stream} has no leader on {replicas} replicas after {timeout:.0f}s "
                f"(held by: {', '.join(holders) or 'none'})"
            )
        await asyncio.sleep(poll)


async def wait_converged(
    cluster: Cluster,
    nodes: list[str],
    stream: str,
    timeout: float,
    nudge: Callable[[str], Awaitable[Any]] | None = None,
    poll: float = 0.5,
    serving: bool = True,
) -> dict[str, Any]:
    """Until every replica node reports the same state for ``stream``, with a leader.

    With ``serving`` (for workloads that read each replica by direct gets),
    also until every replica serves direct gets itself.

    Gives up after ``timeout``, or after ``GONE_AFTER`` seconds in which every
    node answered without the stream (a power loss can delete it everywhere).
    A replica can agree on the state yet never rejoin the direct-get group
    (seen after a power loss corrupted its ``meta.inf``); then ``nudge(node)``
    (a step-down in its favour: leaders always serve direct gets) is tried,
    at most every ``NUDGE_EVERY`` seconds.
    """
    start = time.monotonic()
    views: list[monitor.StreamView | None] = []
    absent_since: float | None = None
    nudges = 0
    last_nudge = start
    while True:
        views = await _views(cluster, nodes, stream)
        states = {v.state for v in views if v and v.present}
        agreed = all(v and v.present and v.leader for v in views) and len(states) == 1
        if agreed and serving:  # and every replica answers direct gets itself (the reads need it)
            direct = await asyncio.gather(
                *(asyncio.to_thread(cluster.monitor(n).serves_direct_get, stream) for n in nodes)
            )
            agreed = all(direct)
            now = time.monotonic()
            if not agreed and nudge is not None and now - last_nudge >= NUDGE_EVERY:
                await nudge(next(n for n, d in zip(nodes, direct, strict=True) if not d))
                nudges, last_nudge = nudges + 1, now
        elapsed = time.monotonic() - start
        if all(v is not None and not v.present for v in views):
            absent_since = absent_since if absent_since is not None else elapsed
        else:
            absent_since = None
        gone = absent_since is not None and elapsed - absent_since >= GONE_AFTER
        if agreed or gone or elapsed > timeout:
            break
        await asyncio.sleep(poll)
    return {
        "converged": agreed,
        "seconds": round(time.monotonic() - start, 3),
        "nudges": nudges,
        "nodes": {n: _view_dict(v) for n, v in zip(nodes, views, strict=True)},
    }


def _view_dict(v: monitor.StreamView | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {
        "present": v.present,
        "messages": v.messages,
        "first_seq": v.first_seq,
        "last_seq": v.last_seq,
        "leader": v.leader,
    }


async def step_down_to(ctx: WorkloadContext, stream: str, node: str) -> dict[str, Any]:
    """Ask the stream leader to step down in favour of ``node`` (recorded as a nemesis op).

    A stream leader always serves direct gets, so this is how the recovery
    wait gets a replica that never rejoined the direct-get group (seen after
    a power loss corrupted its ``meta.inf``) to answer the final read itself
    (the ``nudge`` of :func:`wait_converged`). The server's reply, or
    ``{"error"}``.
    """
    client = await ctx.client_for(node)
    req = json.dumps({"placement": {"preferred": node}}).encode()
    try:
        data = await client.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", req, timeout=5)
        reply = json.loads(data)
    except Exception as e:
        reply = {"error": classify(e)[1]}
    ctx.note("step-down", {"settle": "step-down", "preferred": node, "reply": reply})
    return reply


async def isolate_for_reads(cluster: Cluster, timeout: float, poll: float = 0.25) -> bool:
    """Cut every route (each node against all others); wait until no node has a route.

    Needs the ``network`` ability (the workload declares it; preflight checks it).
    """
    nodes = list(cluster.nodes)
    grudge = {n: frozenset(m for m in nodes if m != n) for n in nodes}
    await asyncio.to_thread(cast("NetworkControl", cluster).isolate, grudge)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = await asyncio.gather(
            *(asyncio.to_thread(cluster.monitor(n).route_count) for n in nodes)
        )
        if all(c == 0 for c in counts if c is not None):
            return True
        await asyncio.sleep(poll)
    return False


async def heal(cluster: Cluster) -> None:
    """Remove the read isolation again (every rule of the run)."""
    await asyncio.to_thread(cast("NetworkControl", cluster).heal_network)


Row = Callable[[Message], list[int]]
"""How a workload turns one stored message into one row of its read value."""


BATCHED, SINGLE, BY_SUBJECT = "batched", "single", "last-by-subject"
"""How a final read read its node (its completion's ``direct``): batched direct gets,
single direct gets (2.10: no batches), or one direct get of each key's last message."""


def direct_mode(client: NatsClient) -> str:
    """How :func:`direct_read` reads over ``client``: :data:`BATCHED` or :data:`SINGLE`."""
    return BATCHED if batched_direct_get(client.server_version()) else SINGLE


async def read_alone(
    cluster: Cluster,
    node: str,
    stream: str,
    read: Callable[[], Awaitable[Any]],
    absent: Any,
    direct: str,
) -> Completion:
    """One node's final read of ``stream``, provably its own: ``ok`` with what ``read()``
    returned, ``routes: 0``, ``via: "live"`` and ``direct`` (how ``read()`` reads:
    :data:`BATCHED`, :data:`SINGLE` or :data:`BY_SUBJECT`; an offline read says
    ``via: "offline"``, :mod:`harness.offline.reads`).

    A node whose ``/jsz`` shows no such stream reads as ``ok`` with ``absent``,
    a ``note`` and ``absent: true`` (the stream is gone: that is data). A node that does not
    answer, holds the stream without serving direct gets, or had a route
    before or after the read raises ``Unknown`` (an ``info`` read, not
    evidence); so does a read that stalls (:class:`ReadStalled`: ``info`` with
    ``read_count`` and ``last_seq``, what it had read, and ``messages``, what
    the node's ``/jsz`` said it holds). Call it after :func:`isolate_for_reads`.
    """
    mon = cluster.monitor(node)
    view = await asyncio.to_thread(mon.stream_view, stream)
    if view is None:
        raise Unknown("node did not answer /jsz")
    if not view.present:
        note = f"stream {stream} is absent on {node}"
        return Completion("ok", absent, extra={"note": note, "absent": True, "via": LIVE})
    if not await asyncio.to_thread(mon.serves_direct_get, stream):
        raise Unknown(
            f"{node} holds the stream but does not serve direct gets (replica not caught up)"
        )
    routes_before = await asyncio.to_thread(mon.route_count)
    try:
        value = await read()
    except ReadStalled as e:
        done = {"read_count": e.read_count, "last_seq": e.last_seq, "messages": view.messages}
        return Completion("info", error=str(e)[:200], extra={**done, "via": LIVE, "direct": direct})
    routes_after = await asyncio.to_thread(mon.route_count)
    if routes_before != 0 or routes_after != 0:
        raise Unknown(f"node had routes during the read ({routes_before}, {routes_after})")
    return Completion("ok", value, extra={"routes": 0, "via": LIVE, "direct": direct})


class ReadStalled(Unknown):
    """A final read that received nothing for ``stall`` seconds; what it had read by then.

    An ``info`` read (:func:`read_alone` records ``read_count`` and
    ``last_seq``): the node stopped answering, which is no evidence of loss.
    """

    def __init__(self, read_count: int, last_seq: int, stall: float) -> None:
        super().__init__(
            f"read stalled: nothing for {stall:g}s after {read_count:,} messages"
            f" (last seq {last_seq})"
        )
        self.read_count = read_count
        self.last_seq = last_seq


async def direct_read(
    client: NatsClient, stream: str, stall: float, row: Row, watch: ReadWatch | None = None
) -> list[list[int]]:
    """Every message of ``stream`` as ``row(msg)``: in batched direct gets where the
    client's server answers them (:func:`batched_direct_get`), else in single ones
    (:func:`_single_reads`).

    Bounded by progress, not by size: each batch (or window of single gets)
    must arrive within ``stall`` seconds, and the read goes on as long as they
    do, so a big stream read at any steady pace is read to its end, and a node
    that stops answering ends the read ``stall`` seconds later with
    :class:`ReadStalled` (the bound holds: every wait is cancellable). Each
    batch ticks ``watch``.
    """
    if direct_mode(client) == SINGLE:
        return await _single_reads(client, stream, stall, row, watch)
    rows: list[list[int]] = []
    seq = 1
    while True:
        try:
            async with asyncio.timeout(stall):
                batch = await client.direct_get(stream, seq, READ_BATCH, stall)
        except TimeoutError:  # nats-py's timeout is one too
            raise ReadStalled(len(rows), seq - 1, stall) from None
        if not batch:
            return rows
        rows += map(row, batch)
        seq = batch[-1].seq + 1
        if watch is not None:
            watch.tick(len(batch))


async def _single_reads(
    client: NatsClient, stream: str, stall: float, row: Row, watch: ReadWatch | None
) -> list[list[int]]:
    """Every message from single direct gets, ``SINGLE_WINDOW`` in flight at a time, each
    window within ``stall`` seconds.

    Each get asks for the first message at or after its sequence. In a window
    ``s … s+W-1`` every stored message up to ``s+W-1`` answers its own get, and
    the last get answers the first one past the window (the one the next window
    starts after) or nothing (the end), so holes are skipped and nothing is
    missed.
    """
    rows: list[list[int]] = []
    seq = 1
    while True:
        window = range(seq, seq + SINGLE_WINDOW)
        try:
            async with asyncio.timeout(stall):
                got = await asyncio.gather(
                    *(client.direct_get(stream, s, 1, stall) for s in window)
                )
        except TimeoutError:
            raise ReadStalled(len(rows), seq - 1, stall) from None
        found = {m.seq: m for msgs in got for m in msgs or []}
        rows += [row(found[s]) for s in sorted(found)]
        if watch is not None:
            watch.tick(len(found))
        if not got[-1]:
            return rows
        seq = max(found) + 1


class ReplicaReads:
    """The recovery and final-read hooks of a workload that reads each replica on its own.

    Mixed into a workload class that sets ``ctx``, ``cluster``, ``stream`` and
    ``replica_nodes`` (the nodes holding the stream, from :func:`open_stream`)
    and performs ``read`` ops in its ``invoke`` (usually via
    :func:`read_alone`): ``recover`` waits until every replica agrees and
    serves direct gets (nudging a straggler with :func:`step_down_to`),
    ``prepare_reads`` cuts every route (:func:`isolate_for_reads`),
    ``final_ops`` is one ``read`` per replica node, ``after_reads`` heals.
    """

    ctx: WorkloadContext
    cluster: Cluster
    stream: str
    replica_nodes: list[str]

    async def recover(self, bound: float) -> dict[str, Any]:
        """Until every replica agrees on the stream and serves direct gets (or ``bound``)."""
        return await wait_converged(
            self.cluster, self.replica_nodes, self.stream, bound, nudge=self.lead_from
        )

    async def lead_from(self, node: str) -> dict[str, Any]:
        """A step-down in favour of ``node`` (:func:`step_down_to`)."""
        return await step_down_to(self.ctx, self.stream, node)

    async def prepare_reads(self, bound: float) -> dict[str, Any]:
        return {"isolated_for_reads": await isolate_for_reads(self.cluster, bound)}

    def final_ops(self) -> list[Operation]:
        return [Operation("read", None, node) for node in self.replica_nodes]

    async def after_reads(self) -> None:
        await heal(self.cluster)

    async def close(self) -> None:
        """Nothing of its own: the runner closes the clients."""
