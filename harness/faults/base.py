"""What every fault gets and gives: a context in, a history value out.

A fault is a small object made from its spec for ONE window. ``start(ctx)``
chooses its targets (with ``ctx.rng``, so a seed reproduces them), acts, and
returns a JSON-able value for the history; it keeps what it did so that
``stop(ctx)`` can undo exactly that. ``stop`` must be safe to call after a
failed or partial ``start``: the final heal calls it blindly.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.backends.base import Cluster


@dataclass
class FaultContext:
    """What a fault may use: the cluster, a seeded RNG and leader lookups."""

    cluster: Cluster
    rng: random.Random
    stream: str
    stream_leader: Callable[[], str | None] = lambda: None
    meta_leader: Callable[[], str | None] = lambda: None
    extra: dict[str, Any] = field(default_factory=dict)


class Fault(Protocol):
    """One window's fault: acts when it starts, undoes that when it stops."""

    kind: str

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        """Inject the fault; return what was done (it goes into the history)."""

    def stop(self, ctx: FaultContext) -> dict[str, Any]:
        """Undo what ``start`` did; safe when already undone or never done."""
