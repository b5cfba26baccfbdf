"""Fault families and the registry that maps a scenario's ``kind`` to one.

A new fault is one module with a class that has ``kind``, ``start(nodes)``
and ``stop(nodes)``, plus one line in :data:`REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from harness.backends.base import Cluster
from harness.faults.process import KillFault, PauseFault


class Fault(Protocol):
    """Acts on nodes when it starts; undoes that when it stops."""

    kind: str

    def start(self, nodes: list[str]) -> dict[str, Any]:
        """Inject the fault into ``nodes``; return what was done (goes into the history)."""

    def stop(self, nodes: list[str]) -> dict[str, Any]:
        """Undo the fault on ``nodes``; safe when already undone."""


REGISTRY: dict[str, Callable[[Cluster], Fault]] = {
    "kill": KillFault,
    "pause": PauseFault,
}
