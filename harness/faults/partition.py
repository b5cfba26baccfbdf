"""Network partitions: a grudge in a shape, applied as iptables rules in node namespaces.

``start`` computes the shape (``harness.net.grudges``; the leader shapes ask
the cluster for the leader at that moment), keeps it symmetric or one-way,
and applies it through ``cluster.isolate``. With ``cut_clients`` the nodes
left without a majority (``grudges.cut_off``) also stop hearing the host
address the clients and the harness use (``topo.host_ip``) — symmetric:
both ways with resets; one-way: only what they receive from it. ``stop``
heals: ``cluster.heal_network()`` flushes and deletes the run's chain in
every node namespace, which removes exactly the rules the run added.

History value: ``{"shape", "one_way", "grudge": {node: [nodes]}, "cut_off":
[...], "clients_cut": [...], "leader": …}``.
"""

from __future__ import annotations

from typing import Any

from harness.errors import Unsupported
from harness.faults.base import FaultContext
from harness.net import grudges, iptables
from harness.scenario import PartitionSpec


class PartitionFault:
    """Apply one grudge for one window; heal the whole network when it stops."""

    kind = "partition"

    def __init__(self, spec: PartitionSpec) -> None:
        self.spec = spec
        self.applied = False

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        spec = self.spec
        nodes = list(ctx.cluster.nodes)
        leader: str | None = None
        if spec.shape == "stream-leader":
            leader = ctx.stream_leader()
        elif spec.shape == "meta-leader":
            leader = ctx.meta_leader()
        part = grudges.shape(spec.shape, nodes, ctx.rng, leader)
        grudge = grudges.one_way(part) if spec.one_way else grudges.symmetric(part.grudge)
        cut_off = grudges.cut_off(grudge, nodes)
        clients = sorted(cut_off) if spec.cut_clients else []
        self.applied = True
        ctx.cluster.isolate(grudge)
        if clients:
            _cut_clients(ctx, clients, both_ways=not spec.one_way)
        value: dict[str, Any] = {
            "shape": spec.shape,
            "one_way": spec.one_way,
            "grudge": grudges.as_lists(grudge),
            "cut_off": sorted(cut_off),
            "clients_cut": clients,
        }
        if spec.shape.endswith("-leader"):
            value["leader"] = leader
            value["nodes"] = sorted(part.side or [])
        return value

    def stop(self, ctx: FaultContext) -> dict[str, Any]:
        if self.applied:
            ctx.cluster.heal_network()
        self.applied = False
        return {"healed": True}


def _cut_clients(ctx: FaultContext, nodes: list[str], both_ways: bool) -> None:
    topo = getattr(ctx.cluster, "topo", None)
    if topo is None:
        raise Unsupported("cut_clients needs a backend with per-node network namespaces")
    for node in nodes:
        iptables.cut(topo.exec_prefix(node), topo.host_ip, both_ways=both_ways)
