"""When faults start and stop: a pure, seeded plan, computed before anything runs.

``plan(scenario)`` lays fault windows over the main phase: the first starts
after ``schedule.quiet`` seconds, each next one ``schedule.interval`` seconds
after the previous start (never before the previous one stopped), each
lasting its own ``duration`` or the schedule's. After every
``schedule.stable_every`` windows comes a stable period of
``schedule.stable_for`` seconds with no fault at all (the next start moves
back by that much; ``Window.stable_before`` records it). The fault of each
window — a single fault or a composed one (``kind: compose``) — is drawn
from ``scenario.faults`` with ``random.Random(seed)``, so the same scenario
and seed always give the same plan, and the plan can be printed (``run
--plan``) or unit-tested with no cluster. Windows that would not end before
``time_limit`` are left out, so every fault heals inside the main phase.
``plan`` also rejects what only the node count makes impossible (a ring
partition of fewer than 4 nodes) with a one-line :class:`ScenarioError`.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from typing import Any

from harness.errors import ScenarioError
from harness.scenario import FaultSpec, Scenario


@dataclass(frozen=True)
class Window:
    """One planned fault: start and stop in seconds from the start of the main phase."""

    start: float
    stop: float
    fault: FaultSpec
    index: int
    seed: int  # for this window's own choices (targets), independent of other windows
    stable_before: float = 0.0  # a stable period (no fault) ended when this window starts


def _check(scenario: Scenario) -> None:
    for i, spec in enumerate(scenario.faults):
        for s in getattr(spec, "steps", None) or [spec]:
            if getattr(s, "shape", None) == "ring" and scenario.nodes < 4:
                raise ScenarioError(
                    f"faults.{i}: a ring partition needs at least 4 nodes (nodes is "
                    f"{scenario.nodes}); use shape halves or bridge"
                )


def plan(scenario: Scenario) -> list[Window]:
    """The fault windows of a run, in start order."""
    _check(scenario)
    faults = scenario.faults
    if not faults:
        return []
    rng = random.Random(scenario.seed)
    sched = scenario.schedule
    windows: list[Window] = []
    t = sched.quiet
    stable = 0.0
    while True:
        if sched.order == "cycle":
            fault = faults[len(windows) % len(faults)]
        else:
            fault = faults[rng.randrange(len(faults))] if len(faults) > 1 else faults[0]
        duration = fault.duration if fault.duration is not None else sched.duration
        stop = t + duration
        if stop >= scenario.time_limit:
            break
        wseed = zlib.crc32(f"{scenario.seed}:{len(windows)}:{fault.kind}".encode())
        windows.append(Window(t, stop, fault, len(windows), wseed, stable))
        t = max(t + sched.interval, stop + 0.5)
        stable = 0.0
        if sched.stable_every and sched.stable_for and len(windows) % sched.stable_every == 0:
            stable = sched.stable_for
            t = max(t, stop + stable)
    return windows


def label(spec: Any) -> str:
    """A fault spec in a few words: ``partition shape=stream-leader``, ``compose(…)``."""
    kind = spec.kind
    if kind == "compose":
        return f"compose({' -> '.join(label(s) for s in spec.steps)}, gap={spec.gap:g}s)"
    if kind == "partition":
        extra = (" one-way" if spec.one_way else "") + (" cut-clients" if spec.cut_clients else "")
        return f"partition shape={spec.shape}{extra}"
    if kind == "step-down":
        return f"step-down leader={spec.leader}"
    if kind == "corrupt":
        down = " while-down" if spec.while_down else ""
        types = ",".join(spec.file_types)
        return f"corrupt {spec.mode} files={types} targets={spec.targets}{down}"
    if kind == "delay":
        return f"delay {spec.delay * 1000:g}ms±{spec.jitter * 1000:g}ms targets={spec.targets}"
    if kind == "loss":
        return f"loss {spec.percent:g}% targets={spec.targets}"
    return f"{kind} targets={spec.targets}"


def describe(windows: list[Window]) -> list[str]:
    """One line per window (and per stable period), for ``--plan`` and the harness log."""
    lines = []
    for w in windows:
        if w.stable_before:
            lines.append(f"{w.start - w.stable_before:7.1f}s – {w.start:7.1f}s  stable (no faults)")
        lines.append(f"{w.start:7.1f}s – {w.stop:7.1f}s  {label(w.fault)}")
    return lines
