"""When faults start and stop: a pure, seeded plan, computed before anything runs.

``plan(scenario)`` lays fault windows over the main phase: the first starts
after ``schedule.quiet`` seconds, each next one ``schedule.interval`` seconds
after the previous start (never before the previous one stopped), each
lasting its own ``duration`` or the schedule's. The fault kind of each window
is drawn from ``scenario.faults`` with ``random.Random(seed)``, so the same
scenario and seed always give the same plan — and the plan can be printed or
unit-tested with no cluster. Windows that would not end before
``time_limit`` are left out, so every fault heals inside the main phase.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

from harness.scenario import FaultSpec, Scenario


@dataclass(frozen=True)
class Window:
    """One planned fault: start and stop in seconds from the start of the main phase."""

    start: float
    stop: float
    fault: FaultSpec
    index: int
    seed: int  # for this window's own choices (targets), independent of other windows


def plan(scenario: Scenario) -> list[Window]:
    """The fault windows of a run, in start order."""
    faults = scenario.faults
    if not faults:
        return []
    rng = random.Random(scenario.seed)
    sched = scenario.schedule
    windows: list[Window] = []
    t = sched.quiet
    while True:
        fault = faults[rng.randrange(len(faults))] if len(faults) > 1 else faults[0]
        duration = fault.duration if fault.duration is not None else sched.duration
        stop = t + duration
        if stop >= scenario.time_limit:
            break
        wseed = zlib.crc32(f"{scenario.seed}:{len(windows)}:{fault.kind}".encode())
        windows.append(Window(t, stop, fault, len(windows), wseed))
        t = max(t + sched.interval, stop + 0.5)
    return windows


def describe(windows: list[Window]) -> list[str]:
    """One line per window, for ``--plan`` and the harness log."""
    return [
        f"{w.start:7.1f}s – {w.stop:7.1f}s  {w.fault.kind:<8} targets={w.fault.targets}"
        for w in windows
    ]
