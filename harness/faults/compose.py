"""Composed faults: several faults in one window, started in order, stopped in reverse.

Jepsen's part-kill and pause-kill: ``steps: [partition, kill]`` partitions,
waits ``gap`` seconds, kills; when the window ends the kill is undone first
(the node restarts into the partition), then the partition heals. Each step
is an ordinary fault object built from its spec through the registry and
sharing the window's seeded context, so the whole is reproducible. ``stop``
undoes exactly the steps that started, also after a step failed to start.

History value: ``{"steps": [{"kind": …, "at": s, <that step's value>}, …]}``,
``at`` being when the step began, in seconds after the window's first step
began (the op itself is recorded once every step has started).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from harness.faults.base import Fault, FaultContext
from harness.scenario import ComposeSpec


class ComposeFault:
    """The steps of one composed window."""

    kind = "compose"

    def __init__(self, spec: ComposeSpec, registry: dict[str, Callable[[Any], Fault]]) -> None:
        self.spec = spec
        self.steps = [registry[s.kind](s) for s in spec.steps]
        self.started: list[Fault] = []

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        values = []
        t0 = time.monotonic()
        for i, step in enumerate(self.steps):
            if i and self.spec.gap:
                time.sleep(self.spec.gap)
            self.started.append(step)
            at = round(time.monotonic() - t0, 3)
            values.append({"kind": step.kind, "at": at, **step.start(ctx)})
        return {"steps": values}

    def stop(self, ctx: FaultContext) -> dict[str, Any]:
        values = []
        for step in reversed(self.started):
            values.append({"kind": step.kind, **step.stop(ctx)})
        self.started = []
        return {"steps": values}
