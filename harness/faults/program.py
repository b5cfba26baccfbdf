"""Fault programs: named steps in one window, each started or stopped at its own time.

Jepsen's part-kill choreography without seed searching: cut A, power-fail
X, restart X and heal, cut B, heal::

    - kind: program
      steps:
        - {name: cut-a, fault: {kind: partition, targets: [n1, n2]}, wait: 30}
        - {name: crash, fault: {kind: power-loss, targets: [n3]}, wait: 2}
        - {stop: [crash, cut-a], wait: 5}
        - {name: cut-b, fault: {kind: partition, targets: {other_than: cut-a, count: 2}}, wait: 30}
        - {stop: all}

A step either starts a fault (``fault``, any registered kind but ``compose``
and ``program``; ``name`` lets later steps stop it or aim at the nodes it
hit: ``targets: {same_as: NAME}`` / ``{other_than: NAME}``) or stops faults
started earlier (``stop``: names in the order to stop them, or ``all``),
then waits ``wait`` seconds. The program lasts the sum of its waits; a
fault still running at its end is stopped then (last started first).

The planner (:mod:`harness.faults.schedule`) expands a program into one
window per started fault — its start, its stop, and an order for ties — so
each is an ordinary, separately recorded nemesis op pair, and windows may
overlap. :func:`timeline` is that expansion relative to the program's start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from harness.faults.base import FaultKind, FaultSpecBase
from harness.faults.targets import step_refs
from harness.spec import Seconds, _Model

if TYPE_CHECKING:  # at run time the name is resolved by ProgramSpec.model_rebuild
    from harness.faults import StepSpec

NEEDS: frozenset[str] = frozenset()
NAME = r"^[a-z][a-z0-9_-]{0,30}$"


class ProgramStep(_Model):
    """Start one fault (``fault``, optionally ``name``d) or stop some (``stop``); then wait."""

    name: str | None = Field(default=None, pattern=NAME)
    fault: StepSpec | None = None
    stop: tuple[str, ...] | Literal["all"] | None = None
    wait: Seconds = 0.0

    @model_validator(mode="after")
    def _one_action(self) -> ProgramStep:
        if (self.fault is None) == (self.stop is None):
            raise ValueError("a step has either fault (start one) or stop (names, or all)")
        if self.name is not None and self.fault is None:
            raise ValueError("only a step that starts a fault has a name")
        return self


class ProgramSpec(FaultSpecBase):
    """Steps in order, in one window (see the module docstring)."""

    kind: Literal["program"]
    steps: tuple[ProgramStep, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_make_sense(self) -> ProgramSpec:
        if self.duration is not None:
            raise ValueError("a program lasts the sum of its steps' waits: give no duration")
        started: set[str] = set()
        running: set[str] = set()
        for i, step in enumerate(self.steps):
            where = f"steps.{i}"
            if step.fault is not None:
                for ref in step_refs(getattr(step.fault, "targets", None)):
                    if ref not in started:
                        raise ValueError(f"{where}: targets refer to {ref!r}, no earlier step")
                if step.name is not None:
                    if step.name in started:
                        raise ValueError(f"{where}: the name {step.name!r} is taken")
                    started.add(step.name)
                    running.add(step.name)
            elif step.stop != "all":
                for name in step.stop or ():
                    if name not in running:
                        what = "already stopped" if name in started else "no earlier step"
                        raise ValueError(f"{where}: stop {name!r}: {what}")
                    running.discard(name)
            else:
                running.clear()
        if total(self) <= 0:
            raise ValueError("a program needs some wait (it lasts the sum of its waits)")
        return self


def total(spec: ProgramSpec) -> float:
    """How long the program lasts: the sum of its waits."""
    return sum(s.wait for s in spec.steps)


@dataclass(frozen=True)
class Part:
    """One started fault of a program: when it starts and stops (seconds after the program
    began), the order of those two events among the program's events, its step name."""

    name: str
    fault: Any
    start: float
    stop: float
    start_order: int
    stop_order: int


def timeline(spec: ProgramSpec) -> list[Part]:
    """Each started fault of ``spec`` with its times and event order (module docstring)."""
    t, order = 0.0, 0
    opened: dict[str, tuple[int, float, int]] = {}  # name -> (step, start, start order)
    parts: list[Part] = []

    def close(name: str) -> None:
        nonlocal order
        i, t0, o0 = opened.pop(name)
        parts.append(Part(name, spec.steps[i].fault, t0, t, o0, order))
        order += 1

    for i, step in enumerate(spec.steps):
        if step.fault is not None:
            opened[step.name or f"step{i}"] = (i, t, order)
            order += 1
        else:
            names = list(reversed(opened)) if step.stop == "all" else list(step.stop or ())
            for name in names:
                close(name)
        t += step.wait
    for name in reversed(list(opened)):
        close(name)
    return sorted(parts, key=lambda p: p.start_order)


def label(spec: ProgramSpec, label_of: Callable[[Any], str]) -> str:
    """``program(cut-a: partition targets=[n1,n2] +30s; stop cut-a; …)``."""
    words = []
    for i, s in enumerate(spec.steps):
        did = (
            f"{s.name or f'step{i}'}: {label_of(s.fault)}"
            if s.fault is not None
            else f"stop {s.stop if s.stop == 'all' else ','.join(s.stop or ())}"
        )
        words.append(did + (f" +{s.wait:g}s" if s.wait else ""))
    return f"program({'; '.join(words)})"


def _not_made(spec: ProgramSpec) -> Any:
    raise TypeError("a fault program is expanded into its steps' windows by the planner")


def kind(label_of: Callable[[Any], str]) -> FaultKind:
    """The registry entry, given the registry's own ``label`` for the steps."""
    return FaultKind(ProgramSpec, _not_made, NEEDS, lambda spec: label(spec, label_of))
