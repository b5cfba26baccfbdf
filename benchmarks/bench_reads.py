"""Final reads: the raw-connection reader against the nats-py subscription reader, same run.

Starts one local 3-node cluster (root needed), creates the R3 stream of the
queue workload, fills it with ``--messages`` unique integers (one nats-py
connection per node, ``--window`` ``publish_async`` in flight each), waits
until every replica holds them all, and cuts every route as the runner does
before its final reads (``streams.isolate_for_reads``). Then, in each round
(the order alternates, since the machine is shared):

- ``old``: one node read by :func:`harness.workloads.streams.direct_read`
  over :meth:`NatsPyClient.subscribed_get` (what every batch used before:
  nats-py ``next_msg`` per message);
- ``new``: the same node by the same ``direct_read`` over the raw connection
  (:class:`harness.rawget.RawDirectGet`, what ``NatsPyClient.direct_get`` now uses);
- ``new x3``: every node at once, as the runner's final reads do.

Each read is checked (after it is timed): every stored value, once, in
stream order. Prints
msgs/s per node for old and new, their ratio, and the time of the three-node
read (target: 3 x 1,000,000 in <= 30 s).

    sudo .venv/bin/python benchmarks/bench_reads.py --messages 1000000 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import nats
from loadgen import quiet

from harness import servers
from harness.backends.local import LocalCluster
from harness.clients import ClientPool, Message, NatsPyClient, connect_real
from harness.runner import wait_ready
from harness.runstate import RunState, new_tag
from harness.scenario import scenario_from_dict
from harness.workloads import WorkloadContext, streams
from harness.workloads.queue import QueueWorkload

STALL = 60.0  # the scenario default read_timeout


class Subscribed:
    """A client whose batched direct gets go through nats-py's subscription (the old path)."""

    def __init__(self, client: NatsPyClient) -> None:
        self.client = client

    def server_version(self) -> str | None:
        return self.client.server_version()

    async def direct_get(
        self, stream: str, seq: int, batch: int, timeout: float
    ) -> Sequence[Message] | None:
        return await self.client.subscribed_get(stream, seq, batch, timeout)


def _pair(msg: Message) -> list[int]:
    return [msg.seq, int(msg.data)]


async def fill(urls: list[str], subject: str, total: int, window: int) -> float:
    """Publish the values 0 … total-1 (split over one connection per URL); seconds taken."""
    t = time.perf_counter()

    async def publisher(i: int, url: str) -> None:
        nc = await nats.connect(url, error_cb=quiet, pending_size=64 * 1024 * 1024)
        js = nc.jetstream(publish_async_max_pending=window, timeout=60)
        for v in range(i, total, len(urls)):
            await js.publish_async(subject, b"%d" % v)
        await js.publish_async_completed()
        await nc.close()

    await asyncio.gather(*(publisher(i, u) for i, u in enumerate(urls)))
    return time.perf_counter() - t


async def settled(cluster: LocalCluster, stream: str, total: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        views = [cluster.monitor(n).stream_view(stream) for n in cluster.nodes]
        if all(v and v.messages == total for v in views):
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"replicas never held all {total} messages")


async def read(client: object, stream: str) -> tuple[list[list[int]], float]:
    """The whole stream read through ``client``, and the seconds it took."""
    t = time.perf_counter()
    rows = await streams.direct_read(client, stream, STALL, _pair)  # type: ignore[arg-type]
    return rows, time.perf_counter() - t


def check(rows: list[list[int]], total: int) -> None:
    values = sorted(v for _, v in rows)
    if values != list(range(total)) or [s for s, _ in rows] != list(range(1, total + 1)):
        raise SystemExit(f"a read returned {len(rows)} rows, not the {total} stored")


async def main_async(args: argparse.Namespace, cluster: LocalCluster) -> None:
    await wait_ready(cluster)
    pool = ClientPool(connect_real(cluster.client_url))
    ctx = WorkloadContext(cluster.scenario, cluster, pool.get, lambda f, v: None)
    workload = QueueWorkload(ctx)
    await workload.setup()
    urls = [cluster.client_url(n) for n in cluster.nodes]
    took = await fill(urls, workload.subject, args.messages, args.window)
    print(f"filled {args.messages:,} in {took:.1f}s ({args.messages / took:,.0f} acked/s)")
    await settled(cluster, workload.stream, args.messages)
    if not await streams.isolate_for_reads(cluster, 30):
        raise SystemExit("routes did not go down")
    nodes = list(cluster.nodes)
    clients = {n: await pool.get(n) for n in nodes}
    one = clients[nodes[0]]
    assert isinstance(one, NatsPyClient)
    n, old_rates, new_rates, three = args.messages, [], [], []
    for r in range(args.rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for which in order:
            c = Subscribed(one) if which == "old" else one
            cpu = time.process_time()
            rows, s = await read(c, workload.stream)
            cpu = time.process_time() - cpu
            check(rows, n)
            (old_rates if which == "old" else new_rates).append(n / s)
            print(
                f"round {r + 1}: {which:3} 1 node   {s:6.1f}s  {n / s:9,.0f} msgs/s"
                f"  (harness CPU {cpu:.1f}s)"
            )
        t, cpu = time.perf_counter(), time.process_time()
        got = await asyncio.gather(*(read(clients[x], workload.stream) for x in nodes))
        three.append(time.perf_counter() - t)
        cpu = time.process_time() - cpu
        for rows, _ in got:
            check(rows, n)
        per = n / three[-1]
        print(
            f"round {r + 1}: new x3 nodes {three[-1]:6.1f}s  {per:9,.0f} msgs/s per node"
            f"  (harness CPU {cpu:.1f}s)"
        )
    await streams.heal(cluster)
    await pool.close()
    old, new = sum(old_rates) / len(old_rates), sum(new_rates) / len(new_rates)
    ratios = [b / a for a, b in zip(old_rates, new_rates, strict=True)]
    print(
        f"mean msgs/s per node: old {old:,.0f}, new {new:,.0f}; per-round new/old "
        f"{', '.join(f'{x:.1f}' for x in ratios)}; 3 x {n:,} at once: "
        f"{', '.join(f'{x:.1f}s' for x in three)} (target <= 30s)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--window", type=int, default=512, help="publish_async in flight per node")
    ap.add_argument("--version", default=servers.DEFAULT_VERSION)
    ap.add_argument("--batch", type=int, default=streams.READ_BATCH, help="messages per get")
    args = ap.parse_args()
    streams.READ_BATCH = args.batch
    scenario = scenario_from_dict({"name": "bench-reads", "workload": {"rate": 0}}, "bench")
    state = RunState(new_tag())
    state.save()
    tmp = Path(tempfile.mkdtemp(prefix="nc-bench-"))
    cluster = LocalCluster(scenario, servers.resolve_binary(args.version), tmp / "nodes", state)
    try:
        cluster.start()
        asyncio.run(main_async(args, cluster))
    finally:
        cluster.stop()
        state.remove()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
