"""The offline-reads phase: final reads that failed live, done again on each node's store.

In: the run's cluster (it must have the ``process`` and ``files`` abilities),
the workload, the interpreter, the final-read ops that did not end ``ok``
whose ``f`` the workload lists in ``offline_fs``, and a nats-server binary.
For each op: the node's server is killed (its store stays as it was), the
store is fetched through the node's Remote, made single-replica and served by
an :class:`~harness.offline.OfflineServer` on loopback (its pid in the run
state while it lives); the workload performs the same op against it through a
view of the cluster in which that node's monitor is the offline server's, so
the workload's own proof that a read is local (no routes, the node serves
direct gets) holds unchanged. The op is recorded like any final read, its
completion marked ``via: "offline"`` with a ``note``.

Out: per node how it was read offline (``"ok"``, ``"info"``, ``"fail"``) or
why it could not be (``"not read: …"``); results.json keeps it as
``offline_reads``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from harness.backends.base import Cluster, FileAccess, ProcessControl
from harness.clients import NatsPyClient
from harness.interpreter import Completion, Interpreter, Operation
from harness.monitor import HttpMonitor, NodeMonitor
from harness.offline import OfflineServer, prepare
from harness.runstate import RunState

log = logging.getLogger(__name__)
VIA = "offline"


class OfflineView:
    """``cluster`` as a workload sees it, but ``node``'s monitor is the offline server's."""

    def __init__(self, cluster: Cluster, node: str, monitor_url: str) -> None:
        self._cluster = cluster
        self._node = node
        self._url = monitor_url

    def monitor(self, node: str) -> NodeMonitor:
        return HttpMonitor(self._url) if node == self._node else self._cluster.monitor(node)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)


@contextlib.contextmanager
def reading_from(workload: Any, cluster: Any) -> Iterator[None]:
    """Let ``workload`` (which keeps its cluster as ``.cluster``) see ``cluster`` for a while."""
    saved = workload.cluster
    workload.cluster = cluster
    try:
        yield
    finally:
        workload.cluster = saved


def serve_store(
    cluster: Cluster, node: str, binary: Path, workdir: Path, state: RunState
) -> OfflineServer:
    """Kill ``node``'s server, copy its store and serve the copy alone (module docstring)."""
    if not isinstance(cluster, ProcessControl) or not isinstance(cluster, FileAccess):
        raise RuntimeError("the backend cannot stop a node and fetch its store")
    if cluster.running(node):
        cluster.kill(node)
    here = workdir / node
    cluster.remote(node).fetch(cluster.store_dir(node), here / "store")
    if not prepare(here / "store", here / "copy"):
        raise RuntimeError("its store holds no stream")
    server = OfflineServer(binary, here / "copy", here)
    server.start()
    assert server.pid is not None
    state.add_pid(server.pid, Path(binary).name)
    return server


async def read_offline(
    cluster: Cluster,
    workload: Any,
    interp: Interpreter,
    ops: list[Operation],
    binary: Path,
    workdir: Path,
    state: RunState,
) -> dict[str, str]:
    """Perform each of ``ops`` (final reads of the workload's ``offline_fs``, each naming its
    node) again on its node's offline store; how each went."""
    out: dict[str, str] = {}
    for op in ops:
        node = op.node
        assert node is not None
        try:
            server = await asyncio.to_thread(serve_store, cluster, node, binary, workdir, state)
        except Exception as e:
            log.warning("offline read of %s: %s", node, e)
            out[node] = f"not read: {type(e).__name__}: {e}"[:300]
            continue
        try:
            client = await NatsPyClient.open(server.url, f"nats-chaos-offline-{node}")
            try:
                view = cast(Cluster, OfflineView(cluster, node, server.monitor_url))
                with reading_from(workload, view):
                    out[node] = await interp.perform(
                        interp.new_process(), op, _marked(workload, node), client
                    )
            finally:
                await client.close()
        finally:
            pid = server.pid
            await asyncio.to_thread(server.stop)
            if pid is not None:
                state.drop_pid(pid)
    return out


def _marked(workload: Any, node: str) -> Any:
    async def invoke(client: Any, op: Operation) -> Completion:
        done: Completion = await workload.invoke(client, op)
        note = done.extra.get("note") or f"read offline: {node}'s store, copied and served alone"
        return done._replace(extra={**done.extra, "via": VIA, "note": note})

    return invoke
