"""Composed faults: several faults in one window, started in order, stopped in reverse.

Jepsen's part-kill and pause-kill: ``steps: [partition, kill]`` partitions,
waits ``gap`` seconds, kills; when the window ends the kill is undone first
(the node restarts into the partition), then the partition heals. Each step
is an ordinary fault object built from its spec through the registry and
sharing the window's seeded context, so the whole is reproducible. ``stop``
undoes exactly the steps that started, also after a step failed to start.

A step is any registered fault but ``compose`` itself: the spec's ``steps``
type, ``StepSpec``, is the registry's union minus this one, filled in by
:mod:`harness.faults` once every fault is registered. A composed fault
needs what its steps need (:func:`harness.faults.needs` walks them).

History value: ``{"steps": [{"kind": …, "at": s, <that step's value>}, …]}``,
``at`` being when the step began, in seconds after the window's first step
began (the op itself is recorded once every step has started).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from harness.faults.base import Fault, FaultContext, FaultKind, FaultSpecBase
from harness.spec import Seconds

if TYPE_CHECKING:  # at run time the name is resolved by ComposeSpec.model_rebuild
    from harness.faults import StepSpec

NEEDS: frozenset[str] = frozenset()


class ComposeSpec(FaultSpecBase):
    """Start ``steps`` in order (``gap`` seconds apart), stop them in reverse (Jepsen part-kill)."""

    kind: Literal["compose"]
    steps: tuple[StepSpec, ...] = Field(min_length=2)
    gap: Seconds = 0.0


def label(spec: ComposeSpec, label_of: Callable[[Any], str]) -> str:
    """``compose(partition shape=halves -> kill targets=one, gap=1s)``."""
    return f"compose({' -> '.join(label_of(s) for s in spec.steps)}, gap={spec.gap:g}s)"


class ComposeFault:
    """The steps of one composed window."""

    kind = "compose"

    def __init__(self, spec: ComposeSpec, make: Callable[[Any], Fault]) -> None:
        self.spec = spec
        self.steps = [make(s) for s in spec.steps]
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


def kind(make: Callable[[Any], Fault], label_of: Callable[[Any], str]) -> FaultKind:
    """The registry entry, given the registry's own ``make`` and ``label`` for the steps."""
    return FaultKind(
        ComposeSpec,
        lambda spec: ComposeFault(spec, make),
        NEEDS,
        lambda spec: label(spec, label_of),
    )
