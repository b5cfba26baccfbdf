"""Network partitions: a grudge in a shape, applied as iptables rules in node namespaces.

``start`` computes the shape (``harness.net.grudges``; the leader shapes ask
the cluster for the leader at that moment), keeps it symmetric or one-way,
and applies it through the ``network`` ability (``isolate``). With
``cut_clients`` the nodes left without a majority (``grudges.cut_off``) are
also cut off from the clients and the harness (``cut_clients``) —
symmetric: both ways with resets; one-way: only what they receive from
them. ``stop`` heals: ``heal_network()`` removes exactly the rules the run
added. A ring needs at least 4 nodes (:func:`check`).

``targets`` (a named set, a list of nodes or a set relative to a program
step, :mod:`harness.faults.targets`) cuts exactly those nodes off from the
rest, instead of a shape.

History value: ``{"shape", "one_way", "grudge": {node: [nodes]}, "cut_off":
[...], "clients_cut": [...], "cut_at", "cut_s", "leader": …}`` (with
``targets``: also ``targets`` and ``nodes``, the side cut off). ``cut_at``
is when the cut was complete (ns on the history clock: every namespace's
rules committed, ``harness.net.iptables`` applies them all at once), ``cut_s``
how long applying them took; the stop (``{"healed": true}``) is written
once every namespace's rules are gone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import model_validator

from harness.backends.base import NETWORK
from harness.faults.base import FaultContext, FaultKind, FaultSpecBase
from harness.faults.targets import Targets, describe
from harness.net import grudges

if TYPE_CHECKING:
    from harness.scenario import Scenario

NEEDS = frozenset({NETWORK})

PartitionShape = Literal[
    "one", "halves", "random-halves", "ring", "bridge", "stream-leader", "meta-leader"
]


class PartitionSpec(FaultSpecBase):
    """Cut node↔node traffic in a shape (``harness.net.grudges``); heal when the window ends.

    ``one_way``: only the shape's side stops hearing the others (they still
    hear it). ``cut_clients``: the nodes left without a majority also lose
    the clients (and the harness's monitor requests), in the same direction.
    """

    kind: Literal["partition"]
    shape: PartitionShape = "one"
    targets: Targets | None = None  # these nodes against the rest (``shape`` is then ignored)
    fixed: bool = False  # with ``targets``: the first window's nodes in every window
    one_way: bool = False
    cut_clients: bool = False

    @model_validator(mode="after")
    def _ring_is_symmetric(self) -> PartitionSpec:
        if self.one_way and self.shape == "ring" and self.targets is None:
            raise ValueError("shape ring has no one-way variant (set one_way: false)")
        if self.targets is not None and self.shape != "one":
            raise ValueError(f"give targets or shape {self.shape}, not both")
        if self.fixed and self.targets is None:
            raise ValueError("fixed needs targets (the nodes to cut off in every window)")
        return self


def label(spec: PartitionSpec) -> str:
    """``partition shape=stream-leader one-way cut-clients``."""
    extra = (" one-way" if spec.one_way else "") + (" cut-clients" if spec.cut_clients else "")
    if spec.targets is not None:
        return f"partition targets={describe(spec.targets)}{' fixed' if spec.fixed else ''}{extra}"
    return f"partition shape={spec.shape}{extra}"


def check(spec: PartitionSpec, scenario: Scenario) -> str | None:
    """What the node count makes impossible: a majorities ring of fewer than 4 nodes."""
    if spec.shape == "ring" and scenario.nodes < 4:
        return (
            f"a ring partition needs at least 4 nodes (nodes is {scenario.nodes}); "
            "use shape halves or bridge"
        )
    return None


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
        side = ctx.targets(spec) if spec.targets is not None else None
        if side is not None:
            part = grudges.apart(side, nodes)
        else:
            part = grudges.shape(spec.shape, nodes, ctx.rng, leader)
        grudge = grudges.one_way(part) if spec.one_way else grudges.symmetric(part.grudge)
        cut_off = grudges.cut_off(grudge, nodes)
        clients = sorted(cut_off) if spec.cut_clients else []
        self.applied = True
        net = ctx.network()
        applying = ctx.now()
        net.isolate(grudge)
        if clients:
            net.cut_clients(clients, both_ways=not spec.one_way)
        done = ctx.now()
        value: dict[str, Any] = {
            "shape": spec.shape,
            "one_way": spec.one_way,
            "grudge": grudges.as_lists(grudge),
            "cut_off": sorted(cut_off),
            "clients_cut": clients,
            "cut_at": done,
            "cut_s": round((done - applying) / 1e9, 4),
        }
        if spec.shape.endswith("-leader"):
            value["leader"] = leader
            value["nodes"] = sorted(part.side or [])
        if side is not None:
            value["targets"] = describe(spec.targets)
            value["nodes"] = side
        return value

    def stop(self, ctx: FaultContext) -> dict[str, Any]:
        if self.applied:
            ctx.network().heal_network()
        self.applied = False
        return {"healed": True}


KIND = FaultKind(PartitionSpec, PartitionFault, NEEDS, label, check)
