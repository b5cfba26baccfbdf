"""What every fault gets and gives: a spec in, a context to act through, a history value out.

A fault is a small object made from its spec for ONE window. ``start(ctx)``
chooses its targets (with ``ctx.rng``, so a seed reproduces them), acts, and
returns a JSON-able value for the history; it keeps what it did so that
``stop(ctx)`` can undo exactly that. ``stop`` must be safe to call after a
failed or partial ``start``: the final heal calls it blindly.

A fault reaches the cluster only through the ability it declares it
``needs`` (see :mod:`harness.faults`): ``ctx.process()``,
``ctx.network()``, ``ctx.power()``, ``ctx.files()`` return the cluster as
that protocol, or raise :class:`~harness.errors.Unsupported` if it has not
got it (preflight normally refuses such a run before it starts).

Specs: every fault spec is a :class:`FaultSpecBase` (a ``kind`` and an
optional ``duration``); one that hits a set of nodes is a
:class:`NodeFaultSpec` (plus ``targets``). :class:`NodeFault` is the shared
shape of a fault that acts on each target when it starts and undoes that
on the same nodes when it stops (kill, pause, power loss).

:class:`FaultKind` is what a fault module hands the registry
(:data:`harness.faults.REGISTRY`): its spec, how to make the fault, the
abilities it needs, its ``--plan`` label and its scenario check.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from harness.backends.base import (
    FILES,
    NETWORK,
    POWER,
    PROCESS,
    Cluster,
    FileAccess,
    NetworkControl,
    PowerControl,
    ProcessControl,
)
from harness.errors import Unsupported
from harness.faults.targets import Targets, describe, resolve
from harness.spec import Seconds, _Model

if TYPE_CHECKING:
    from harness.scenario import Scenario


class FaultSpecBase(_Model):
    """Fields every fault has: its kind, and how long it lasts (else the schedule's duration)."""

    kind: str
    duration: Seconds | None = None


class NodeFaultSpec(FaultSpecBase):
    """A fault that hits a set of nodes, chosen when its window starts (``fixed``: when its
    first window starts, and the same nodes in every later window)."""

    targets: Targets = "one"
    fixed: bool = False


def _lacks(name: str) -> Unsupported:
    return Unsupported(f"this backend has no {name} ability")


@dataclass
class FaultContext:
    """What a fault may use: the cluster (through its abilities), a seeded RNG, leader lookups,
    and ``now()``, the history's clock (ns since the run started; the nemesis sets it)."""

    cluster: Cluster
    rng: random.Random
    stream: str
    stream_leader: Callable[[], str | None] = lambda: None
    meta_leader: Callable[[], str | None] = lambda: None
    chosen: dict[str, list[str]] = field(default_factory=dict)  # program step -> nodes it hit
    pinned: dict[int, list[str]] = field(default_factory=dict)  # id(fixed spec) -> its nodes
    now: Callable[[], int] = time.monotonic_ns

    def targets(self, spec: Any) -> list[str]:
        """The nodes ``spec.targets`` names now (those of its first window if ``spec.fixed``)."""
        fixed = getattr(spec, "fixed", False)
        if fixed and id(spec) in self.pinned:
            return list(self.pinned[id(spec)])
        nodes = resolve(spec.targets, self.cluster.nodes, self.rng, self.stream_leader, self.chosen)
        if fixed:
            self.pinned[id(spec)] = nodes
        return nodes

    def process(self) -> ProcessControl:
        """The cluster's ``process`` ability."""
        if PROCESS not in self.cluster.abilities or not isinstance(self.cluster, ProcessControl):
            raise _lacks(PROCESS)
        return self.cluster

    def network(self) -> NetworkControl:
        """The cluster's ``network`` ability."""
        if NETWORK not in self.cluster.abilities or not isinstance(self.cluster, NetworkControl):
            raise _lacks(NETWORK)
        return self.cluster

    def power(self) -> PowerControl:
        """The cluster's ``power`` ability."""
        if POWER not in self.cluster.abilities or not isinstance(self.cluster, PowerControl):
            raise _lacks(POWER)
        return self.cluster

    def files(self) -> FileAccess:
        """The cluster's ``files`` ability (a Remote per node, and its store)."""
        if FILES not in self.cluster.abilities or not isinstance(self.cluster, FileAccess):
            raise _lacks(FILES)
        return self.cluster


class Fault(Protocol):
    """One window's fault: acts when it starts, undoes that when it stops."""

    kind: str

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        """Inject the fault; return what was done (it goes into the history)."""

    def stop(self, ctx: FaultContext) -> dict[str, Any]:
        """Undo what ``start`` did; safe when already undone or never done."""


class NodeFault:
    """Act on each target when the window starts; undo it on the same nodes when it ends.

    Subclasses set ``kind`` and write ``act`` and ``undo``; a restart or
    resume never reaches a node the fault did not touch.
    """

    kind = ""

    def __init__(self, spec: NodeFaultSpec) -> None:
        self.spec = spec
        self.nodes: list[str] = []

    def choose(self, ctx: FaultContext) -> dict[str, Any]:
        """Pick this window's targets (seeded) and describe them for the history."""
        self.nodes = ctx.targets(self.spec)
        return {"targets": describe(self.spec.targets), "nodes": self.nodes}

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        done = self.choose(ctx)
        for node in self.nodes:
            self.act(ctx, node)
        return done

    def stop(self, ctx: FaultContext) -> dict[str, Any]:
        for node in self.nodes:
            self.undo(ctx, node)
        return {"nodes": self.nodes}

    def act(self, ctx: FaultContext, node: str) -> None:
        raise NotImplementedError

    def undo(self, ctx: FaultContext, node: str) -> None:
        raise NotImplementedError


def default_label(spec: FaultSpecBase) -> str:
    """``kill targets=one``; just the kind for a fault without targets."""
    if not isinstance(spec, NodeFaultSpec):
        return spec.kind
    return f"{spec.kind} targets={describe(spec.targets)}{' fixed' if spec.fixed else ''}"


@dataclass(frozen=True)
class FaultKind:
    """What the harness knows about one kind of fault (one registry entry)."""

    spec: type[FaultSpecBase]  # the pydantic model; its ``kind`` is a one-value Literal
    make: Callable[[Any], Fault]  # spec -> the fault object for one window
    needs: frozenset[str] = frozenset()  # ability names (harness.backends.base.ABILITIES)
    label: Callable[[Any], str] = default_label  # spec -> a few words for --plan
    check: Callable[[Any, Scenario], str | None] | None = None  # why the scenario forbids it
