"""Final reads of a big stream on a real 3-node R3 cluster, through the queue workload.

200,000 messages are stored once (bulk ``publish_async``), every route is cut
as before the runner's final reads, and then:

- all three nodes are read at once to completion: each read is ``ok`` with
  ``routes: 0`` and holds every stored value, once, in stream order;
- a node that stops answering mid-read (SIGSTOP after the first batches)
  ends its read as ``info`` ``read_timeout`` seconds after its last batch,
  with what it had read, instead of hanging.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import nats
import pytest

from harness import servers
from harness.backends.local import LocalCluster
from harness.clients import ClientPool, connect_real
from harness.interpreter import Completion, Operation
from harness.runner import wait_ready
from harness.runstate import WORK_ROOT, RunState, new_tag
from harness.scenario import scenario_from_dict
from harness.workloads import WorkloadContext, streams
from harness.workloads.queue import QueueWorkload

pytestmark = pytest.mark.integration

STORED = 200_000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A 3-node cluster whose queue stream holds the values 0 … STORED-1, routes cut."""
    sc = scenario_from_dict({"name": "reads", "workload": {"rate": 0}}, "t")
    state = RunState(new_tag())
    state.save()
    c = LocalCluster(sc, servers.resolve_binary(sc.server.version), WORK_ROOT / state.tag, state)
    try:
        c.start()
        asyncio.run(_fill(c))
        yield c
    finally:
        c.stop()
        state.remove()


async def _fill(c: LocalCluster) -> None:
    await wait_ready(c)
    workload, pool = _queue(c)
    await workload.setup()
    await pool.close()

    async def publisher(i: int, url: str) -> None:
        nc = await nats.connect(url)
        js = nc.jetstream(publish_async_max_pending=512, timeout=60)
        for v in range(i, STORED, 3):
            await js.publish_async(workload.subject, b"%d" % v)
        await js.publish_async_completed()
        await nc.close()

    await asyncio.gather(*(publisher(i, c.client_url(n)) for i, n in enumerate(c.nodes)))
    views = await workload.recover(120)
    assert views["converged"], views
    assert {v["messages"] for v in views["nodes"].values()} == {STORED}
    assert await streams.isolate_for_reads(c, 30)


def _queue(c: LocalCluster) -> tuple[QueueWorkload, ClientPool]:
    pool = ClientPool(connect_real(c.client_url))
    ctx = WorkloadContext(c.scenario, c, pool.get, lambda f, v: None)
    return QueueWorkload(ctx), pool


def test_every_node_reads_all_200k_messages_at_once(cluster: LocalCluster) -> None:
    async def main() -> dict[str, tuple[str, list[list[int]], int | None]]:
        workload, pool = _queue(cluster)
        try:

            async def read(node: str) -> tuple[str, list[list[int]], int | None]:
                done = await workload.invoke(await pool.get(node), Operation("read", None, node))
                return done.type, done.value, done.extra.get("routes")

            got = await asyncio.gather(*(read(n) for n in cluster.nodes))
            return dict(zip(cluster.nodes, got, strict=True))
        finally:
            await pool.close()

    for node, (kind, pairs, routes) in asyncio.run(main()).items():
        assert (kind, routes) == ("ok", 0), node
        assert len(pairs) == STORED, node
        assert [s for s, _ in pairs] == list(range(1, STORED + 1)), node
        assert sorted(v for _, v in pairs) == list(range(STORED)), node


def test_a_node_that_stops_answering_mid_read_ends_info_at_the_bound(
    cluster: LocalCluster,
) -> None:
    node = cluster.nodes[0]
    bound = 2.0

    async def main() -> tuple[Completion, float]:
        workload, pool = _queue(cluster)
        workload.read_timeout = bound
        client = await pool.get(node)
        task = asyncio.create_task(workload.invoke(client, Operation("read", None, node)))
        try:
            while workload.ctx.reads.messages == 0 and not task.done():
                await asyncio.sleep(0.001)
            await asyncio.to_thread(cluster.pause, node)
            done = await asyncio.wait_for(task, 30)
            return done, time.monotonic() - workload.ctx.reads.last
        finally:
            await asyncio.to_thread(cluster.resume, node)
            await pool.close()

    done, since_last_batch = asyncio.run(main())
    assert done.type == "info", done
    assert done.error.startswith(f"read stalled: nothing for {bound:g}s after "), done.error
    read = done.extra["read_count"]
    assert 0 < read < STORED and done.extra["last_seq"] == read
    assert done.extra["messages"] == STORED
    assert bound <= since_last_batch < bound + 3, since_last_batch  # the bound held
