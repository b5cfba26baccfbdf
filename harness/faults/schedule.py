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
``plan`` also rejects what the scenario makes impossible for a fault (each
fault's own ``check``, e.g. a ring partition of fewer than 4 nodes) with a
one-line :class:`~harness.errors.ScenarioError` (:func:`harness.faults.check`).
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

from harness import faults
from harness.faults import FaultSpec
from harness.scenario import Scenario


@dataclass(frozen=True)
class Window:
    """One planned fault: start and stop in seconds from the start of the main phase."""

    start: float
    stop: float
    fault: FaultSpec
    index: int
    seed: int  # for this window's own choices (targets), independent of other windows
    stable_before: float = 0.0  # a stable period (no fault) ended when this window starts


def plan(scenario: Scenario) -> list[Window]:
    """The fault windows of a run, in start order."""
    faults.check(scenario)
    specs = scenario.faults
    if not specs:
        return []
    rng = random.Random(scenario.seed)
    sched = scenario.schedule
    windows: list[Window] = []
    t = sched.quiet
    stable = 0.0
    while True:
        if sched.order == "cycle":
            fault = specs[len(windows) % len(specs)]
        else:
            fault = specs[rng.randrange(len(specs))] if len(specs) > 1 else specs[0]
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


def describe(windows: list[Window]) -> list[str]:
    """One line per window (and per stable period), for ``--plan`` and the harness log."""
    lines = []
    for w in windows:
        if w.stable_before:
            lines.append(f"{w.start - w.stable_before:7.1f}s – {w.start:7.1f}s  stable (no faults)")
        lines.append(f"{w.start:7.1f}s – {w.stop:7.1f}s  {faults.label(w.fault)}")
    return lines
