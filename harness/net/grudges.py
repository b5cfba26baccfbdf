"""Partition shapes: who must not hear whom, as pure functions of the node list.

A grudge maps a node to the nodes it must not hear (Jepsen's ``nemesis.clj``
grudges). An entry ``a -> {b}`` means *a drops what it receives from b*; a
pair named in both directions is a full cut. Shapes compute a
:class:`Partition`: the grudge, plus ``side``, the nodes whose entries stay
when the partition is one-way (the side that stops hearing; the other side
keeps hearing it). Random choices come from one ``rng.sample`` of the node
list, so a seed reproduces a shape; with the nodes in the given order
(``ordered``) every shape is easy to check by hand.

Shapes (``SHAPES``):

- ``one``: one random node against all others; ``side`` = that node.
- ``halves``: nodes in the given order, the first ``n // 2`` (the minority)
  against the rest; ``side`` = the minority.
- ``random-halves``: the same after shuffling.
- ``ring``: a majorities ring. In a shuffled ring each node hears the
  nodes within ring distance ``k = m // 2`` (``m = n // 2 + 1``, a
  majority): every node hears at least a majority (itself included), and
  no two nodes hear the same set. The grudge is symmetric, because over TCP
  a one-way drop breaks a link both ways: Jepsen's directional ring would,
  for 3 or 7 nodes, leave nodes with fewer than a majority of working
  links. Three nodes cannot form a majorities ring (two nodes that hear
  each other would share their majority), so ``ring`` needs 4 or more.
  ``side`` is ``None``: there is no one-way variant.
- ``bridge``: shuffled, the first ``(n - 1) // 2`` nodes against the last
  ``n // 2``, with the node in between hearing and heard by everyone;
  ``side`` = the first component.
- ``stream-leader`` / ``meta-leader``: the named leader against all others
  (the fault looks the leader up at fault time); ``side`` = the leader.

``cut_off(grudge, nodes)`` names the nodes that cannot reach a majority over
links that work both ways (networkx connected components); a partition with
``cut_clients`` also cuts the clients from exactly those nodes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import networkx as nx

Grudge = dict[str, frozenset[str]]

SHAPES = ("one", "halves", "random-halves", "ring", "bridge", "stream-leader", "meta-leader")


@dataclass(frozen=True)
class Partition:
    """A grudge and the side that keeps its entries when the partition is one-way."""

    grudge: Grudge
    side: frozenset[str] | None


def majority(n: int) -> int:
    """Smallest number of nodes that is more than half of ``n``."""
    return n // 2 + 1


def complete(a: list[str] | frozenset[str], b: list[str] | frozenset[str]) -> Grudge:
    """Every node of ``a`` against every node of ``b`` and back (a symmetric cut)."""
    grudge: dict[str, set[str]] = {}
    for x in a:
        grudge.setdefault(x, set()).update(b)
    for y in b:
        grudge.setdefault(y, set()).update(a)
    return {k: frozenset(v) for k, v in grudge.items() if v}


def symmetric(grudge: Grudge) -> Grudge:
    """The union of both directions: if ``a`` must not hear ``b``, ``b`` must not hear ``a``."""
    out: dict[str, set[str]] = {}
    for a, enemies in grudge.items():
        for b in enemies:
            out.setdefault(a, set()).add(b)
            out.setdefault(b, set()).add(a)
    return {k: frozenset(v) for k, v in out.items()}


def one_way(partition: Partition) -> Grudge:
    """Only the side's entries: the side stops hearing the others, the others still hear it."""
    if partition.side is None:
        raise ValueError("this shape has no one-way variant (it is directional already)")
    return {a: e for a, e in partition.grudge.items() if a in partition.side}


def isolate(node: str, nodes: list[str]) -> Partition:
    """``node`` against every other node."""
    return Partition(complete([node], [n for n in nodes if n != node]), frozenset([node]))


def apart(side: list[str], nodes: list[str]) -> Partition:
    """The nodes of ``side`` against every other node (``side`` may hold several)."""
    return Partition(complete(side, [n for n in nodes if n not in side]), frozenset(side))


def halves(nodes: list[str]) -> Partition:
    """The first ``n // 2`` nodes (a minority) against the rest."""
    k = len(nodes) // 2
    minority, rest = nodes[:k], nodes[k:]
    return Partition(complete(minority, rest), frozenset(minority))


def ring(nodes: list[str]) -> Partition:
    """A majorities ring over ``nodes`` in ring order (4 or more nodes)."""
    n = len(nodes)
    if n < 4:
        raise ValueError(f"a majorities ring needs at least 4 nodes, not {n}")
    k = majority(n) // 2
    links = nx.relabel_nodes(nx.circulant_graph(n, range(1, k + 1)), dict(enumerate(nodes)))
    everyone = frozenset(nodes)
    grudge = {a: everyone - {a} - set(links.neighbors(a)) for a in nodes}
    return Partition({a: e for a, e in grudge.items() if e}, None)


def bridge(nodes: list[str]) -> Partition:
    """Two components joined by one node that hears, and is heard by, everyone."""
    k = (len(nodes) - 1) // 2
    left, right = nodes[:k], nodes[k + 1 :]
    return Partition(complete(left, right), frozenset(left))


def shape(name: str, nodes: list[str], rng: random.Random, leader: str | None = None) -> Partition:
    """The partition called ``name`` over ``nodes``; ``leader`` is needed by the leader shapes.

    Shapes that choose use ``rng.sample(nodes, n)`` once, so the same seed
    gives the same partition. A leader shape with no known leader isolates
    one random node instead (the caller records that).
    """
    order = rng.sample(list(nodes), len(nodes))
    if name == "one":
        return isolate(order[0], nodes)
    if name == "halves":
        return halves(list(nodes))
    if name == "random-halves":
        return halves(order)
    if name == "ring":
        return ring(order)
    if name == "bridge":
        return bridge(order)
    if name in ("stream-leader", "meta-leader"):
        return isolate(leader if leader in nodes else order[0], nodes)
    raise ValueError(f"unknown partition shape {name!r} (one of: {', '.join(SHAPES)})")


def cut_off(grudge: Grudge, nodes: list[str]) -> frozenset[str]:
    """Nodes that cannot reach a majority (themselves included) over two-way links."""
    links = nx.Graph()
    links.add_nodes_from(nodes)
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            if b not in grudge.get(a, frozenset()) and a not in grudge.get(b, frozenset()):
                links.add_edge(a, b)
    need = majority(len(nodes))
    out: set[str] = set()
    for component in nx.connected_components(links):
        if len(component) < need:
            out |= component
    return frozenset(out)


def as_lists(grudge: Grudge) -> dict[str, list[str]]:
    """The grudge as JSON-able sorted lists (for the history)."""
    return {k: sorted(v) for k, v in sorted(grudge.items())}
