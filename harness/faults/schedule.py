"""When faults start and stop: a pure, seeded plan, computed before anything runs.

``plan(scenario)`` lays fault windows over the main phase: the first starts
after ``schedule.quiet`` seconds, each next one ``schedule.interval`` seconds
after the previous start (never before the previous one stopped), each
lasting its own ``duration`` or the schedule's. After every
``schedule.stable_every`` windows comes a stable period of
``schedule.stable_for`` seconds with no fault at all (the next start moves
back by that much; ``Window.stable_before`` records it). The fault of each
window — a single fault or a composed one (``kind: compose``) — is drawn
from ``scenario.faults`` with ``random.Random(seed)``; a fault program
(``kind: program``) drawn for a window becomes one window per fault it
starts, at its step's time (:func:`harness.faults.program.timeline`). Each
of ``scenario.packages`` is planned the same way on its own schedule (and
its own seeded draw), and its windows may overlap the others'. The same scenario
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
from harness.backends.base import NETWORK
from harness.errors import ScenarioError
from harness.faults import FaultSpec, program
from harness.faults.program import ProgramSpec
from harness.scenario import Scenario, ScheduleSpec


@dataclass(frozen=True)
class Window:
    """One planned fault: start and stop in seconds from the start of the main phase.

    ``order`` breaks ties between events at the same time (a program's "stop
    crash, then cut-a, then start cut-b"): the nemesis plays every start and
    stop in ``(time, package, order)`` order. ``name`` is the program step's
    name (relational targets refer to it); ``id`` names the window in its
    history ops (``"3"``, ``"3.cut-a"``, ``"p1.2"``).
    """

    start: float
    stop: float
    fault: FaultSpec
    index: int
    seed: int  # for this window's own choices (targets), independent of other windows
    stable_before: float = 0.0  # a stable period (no fault) ended when this window starts
    package: int = 0  # 0: the scenario's own faults; k: packages[k - 1]
    name: str | None = None
    order: tuple[int, int] = (0, 0)  # (start order, stop order) among the package's events

    @property
    def id(self) -> str:
        base = f"p{self.package}.{self.index}" if self.package else str(self.index)
        return f"{base}.{self.name}" if self.name else base


def plan(scenario: Scenario) -> list[Window]:
    """The fault windows of a run, every package's, in start order."""
    faults.check(scenario)
    windows = _plan(scenario, scenario.faults, scenario.schedule, 0)
    for k, package in enumerate(scenario.packages, start=1):
        windows += _plan(scenario, package.faults, package.schedule, k)
    windows.sort(key=lambda w: (w.start, w.package, w.order))
    _no_overlapping_cuts(windows)
    return windows


def _no_overlapping_cuts(windows: list[Window]) -> None:
    """Two network faults at once cannot be undone apart: healing one heals the network."""
    cuts = [w for w in windows if faults.needs([w.fault]) & {NETWORK}]
    for i, b in enumerate(cuts[1:], start=1):
        a = max(cuts[:i], key=lambda w: w.stop)  # the earlier cut that lasts longest
        if b.start < a.stop:
            raise ScenarioError(
                f"windows {a.id} ({a.start:g}–{a.stop:g}s) and {b.id} ({b.start:g}–{b.stop:g}s) "
                "both cut the network at once; a heal heals the whole network, so network "
                "faults must not overlap (move a package's quiet or interval)"
            )


def _plan(
    scenario: Scenario, specs: tuple[FaultSpec, ...], sched: ScheduleSpec, package: int
) -> list[Window]:
    if not specs:
        return []
    rng = random.Random(scenario.seed if not package else f"{scenario.seed}:p{package}")
    windows: list[Window] = []
    t = sched.quiet
    stable = 0.0
    slot = 0
    while True:
        if sched.order == "cycle":
            fault = specs[slot % len(specs)]
        else:
            fault = specs[rng.randrange(len(specs))] if len(specs) > 1 else specs[0]
        if isinstance(fault, ProgramSpec):
            duration = program.total(fault)
        else:
            duration = fault.duration if fault.duration is not None else sched.duration
        stop = t + duration
        if stop >= scenario.time_limit:
            break
        salt = "" if not package else f":p{package}"
        wseed = zlib.crc32(f"{scenario.seed}:{slot}:{fault.kind}{salt}".encode())
        base = 1000 * slot  # a program's events are ordered within its slot
        if isinstance(fault, ProgramSpec):
            for part in program.timeline(fault):
                pseed = zlib.crc32(f"{wseed}:{part.name}".encode())
                order = (base + part.start_order, base + part.stop_order)
                windows.append(
                    Window(t + part.start, t + part.stop, part.fault, slot, pseed,
                           stable if not part.start_order else 0.0, package, part.name, order)
                )  # fmt: skip
        else:
            windows.append(Window(t, stop, fault, slot, wseed, stable, package, None, (base, base)))
        slot += 1
        t = max(t + sched.interval, stop + 0.5)
        stable = 0.0
        if sched.stable_every and sched.stable_for and slot % sched.stable_every == 0:
            stable = sched.stable_for
            t = max(t, stop + stable)
    return windows


def describe(windows: list[Window]) -> list[str]:
    """One line per window (and per stable period), for ``--plan`` and the harness log."""
    lines = []
    for w in windows:
        if w.stable_before:
            lines.append(f"{w.start - w.stable_before:7.1f}s – {w.start:7.1f}s  stable (no faults)")
        who = (f"package {w.package}: " if w.package else "") + (f"{w.name}: " if w.name else "")
        lines.append(f"{w.start:7.1f}s – {w.stop:7.1f}s  {who}{faults.label(w.fault)}")
    return lines
