"""Which nodes a fault hits: ``one``, ``minority``, ``majority``, ``all``, ``leader``
(the stream leader) or ``follower`` (one node that is not the stream leader).

Resolution is a pure function of the node list, a seeded RNG and (for
``leader``) the stream leader as the cluster reports it at fault time, so a
schedule is reproducible for a seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def resolve(
    spec: str, nodes: list[str], rng: random.Random, leader: Callable[[], str | None]
) -> list[str]:
    """The nodes ``spec`` names; ``leader`` falls back to one random node if none is known."""
    n = len(nodes)
    shuffled = rng.sample(nodes, n)
    if spec == "one":
        return sorted(shuffled[:1])
    if spec == "minority":
        return sorted(shuffled[: max(1, (n - 1) // 2)])
    if spec == "majority":
        return sorted(shuffled[: n // 2 + 1])
    if spec == "all":
        return sorted(nodes)
    if spec in ("leader", "follower"):
        who = leader()
        if spec == "leader":
            return [who] if who in nodes else sorted(shuffled[:1])
        return [next(n for n in shuffled if n != who)] if n > 1 else sorted(shuffled[:1])
    raise ValueError(f"unknown target {spec!r}")
