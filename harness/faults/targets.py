"""Which nodes a fault hits: a named set, a list of nodes, or a set relative to another step.

- a name: ``one``, ``minority``, ``majority``, ``all``, ``leader`` (the
  stream leader) or ``follower`` (one node that is not the stream leader);
- a list of node names: ``[n1, n2]`` (checked against the scenario's nodes);
- ``{same_as: STEP}``: the nodes an earlier step of the same fault program
  hit; ``{other_than: STEP}``: the nodes it did not hit, or ``count`` of them
  chosen at random (:mod:`harness.faults.program`).

A spec with ``fixed: true`` hits the nodes its first window chose in every
later window too (Jepsen's fixed corruption minority): the nemesis keeps the
choice (:meth:`harness.faults.base.FaultContext.targets`).

Resolution is a pure function of the node list, a seeded RNG, the stream
leader as the cluster reports it at fault time (for ``leader``/``follower``)
and the nodes earlier program steps hit, so a schedule is reproducible for
a seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from harness.spec import TargetName, _Model

NodeName = Annotated[str, StringConstraints(pattern=r"^n[1-9]$")]


class SameAs(_Model):
    """The nodes the program step named here hit."""

    same_as: str


class OtherThan(_Model):
    """The nodes the program step named here did not hit (``count`` of them, at random)."""

    other_than: str
    count: int | None = Field(default=None, ge=1)


Targets = TargetName | tuple[NodeName, ...] | SameAs | OtherThan


def describe(targets: Any) -> str:
    """A target spec in a few words: ``one``, ``[n1,n2]``, ``same-as:crash``."""
    if isinstance(targets, tuple):
        return "[" + ",".join(targets) + "]"
    if isinstance(targets, SameAs):
        return f"same-as:{targets.same_as}"
    if isinstance(targets, OtherThan):
        n = f"×{targets.count}" if targets.count else ""
        return f"other-than:{targets.other_than}{n}"
    return str(targets)


def step_refs(targets: Any) -> list[str]:
    """The program step names a target spec refers to (none for a name or a list)."""
    if isinstance(targets, SameAs):
        return [targets.same_as]
    if isinstance(targets, OtherThan):
        return [targets.other_than]
    return []


def resolve(
    spec: Targets,
    nodes: list[str],
    rng: random.Random,
    leader: Callable[[], str | None],
    chosen: Mapping[str, list[str]] | None = None,
) -> list[str]:
    """The nodes ``spec`` names; ``leader`` falls back to one random node if none is known.

    ``chosen`` maps the names of program steps that already started to the nodes they hit.
    """
    n = len(nodes)
    if isinstance(spec, tuple):
        unknown = sorted(set(spec) - set(nodes))
        if unknown:
            raise ValueError(f"no node {', '.join(unknown)} in this cluster")
        return sorted(set(spec))
    if isinstance(spec, SameAs | OtherThan):
        name = spec.same_as if isinstance(spec, SameAs) else spec.other_than
        if chosen is None or name not in chosen:
            raise ValueError(f"step {name!r} has not hit any nodes yet")
        if isinstance(spec, SameAs):
            return sorted(chosen[name])
        rest = [x for x in nodes if x not in chosen[name]]
        if spec.count is not None:
            rest = rng.sample(rest, min(spec.count, len(rest)))
        return sorted(rest)
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
