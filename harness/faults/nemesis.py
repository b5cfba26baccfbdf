"""The nemesis: runs a fault plan against a cluster and records every start and stop.

Concurrency lives here and only here: each window's start and stop run in a
worker thread (``asyncio.to_thread``) so clients keep running while a node
is killed or restarted. Each window gets a fresh fault object built from its
spec and a ``random.Random`` seeded for that window, so targets are
reproducible. Every start and stop is a history op with ``process:
"nemesis"``, ``type: "info"``, ``f`` = the fault kind and a ``value`` that
says what was done (``{"start": "kill", "nodes": [...], "began": ns}``; ``began``
is when the fault started acting — the op itself is written once it is in
effect, which for a power loss is seconds later). ``heal_all``
stops whatever is still active and makes sure every node runs and the
network is whole — called at the end of the main phase and on any error.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from harness import monitor
from harness.backends.base import Cluster
from harness.faults import REGISTRY, Fault, FaultContext
from harness.faults.schedule import Window
from harness.history import NEMESIS, HistoryWriter

log = logging.getLogger(__name__)


class Nemesis:
    """Executes fault windows; tracks which faults are active."""

    def __init__(
        self,
        cluster: Cluster,
        history: HistoryWriter,
        stream: str,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.cluster = cluster
        self.history = history
        self.stream = stream
        self.clock = clock
        self.sleep = sleep
        self.active: list[tuple[Fault, FaultContext]] = []
        self.started = 0

    def _leader(self, which: str) -> str | None:
        for node in self.cluster.nodes:
            if not self.cluster.running(node):
                continue
            url = self.cluster.monitor_url(node)
            if which == "meta":
                who = monitor.meta_leader(url)
            else:
                view = monitor.stream_view(url, self.stream)
                who = view.leader if view else None
            if who:
                return who
        return None

    def context(self, seed: int) -> FaultContext:
        """A fault context with its own seeded RNG."""
        return FaultContext(
            cluster=self.cluster,
            rng=random.Random(seed),
            stream=self.stream,
            stream_leader=lambda: self._leader("stream"),
            meta_leader=lambda: self._leader("meta"),
        )

    async def run(self, windows: list[Window], t0: float) -> None:
        """Play ``windows`` relative to ``t0`` (monotonic seconds of the main phase start)."""
        for w in windows:
            await self._sleep_until(t0 + w.start)
            fault = REGISTRY[w.fault.kind](w.fault)
            ctx = self.context(w.seed)
            await self.start(fault, ctx)
            await self._sleep_until(t0 + w.stop)
            await self.stop(fault, ctx)

    async def _sleep_until(self, t: float) -> None:
        delay = t - self.clock()
        if delay > 0:
            await self.sleep(delay)

    async def start(self, fault: Fault, ctx: FaultContext) -> None:
        """Start one fault now and record it."""
        self.active.append((fault, ctx))
        self.started += 1
        began = self.history.now()  # the fault acts from here; the op is written when it is done
        done = await asyncio.to_thread(fault.start, ctx)
        value = {"start": fault.kind, **done, "began": began}
        self.history.append("info", NEMESIS, fault.kind, value)
        log.info("nemesis: start %s %s", fault.kind, done)

    async def stop(self, fault: Fault, ctx: FaultContext) -> None:
        """Stop one fault now and record it."""
        done = await asyncio.to_thread(fault.stop, ctx)
        self.history.append("info", NEMESIS, fault.kind, {"stop": fault.kind, **done})
        self.active = [(f, c) for f, c in self.active if f is not fault]
        log.info("nemesis: stop %s %s", fault.kind, done)

    @property
    def active_kinds(self) -> list[str]:
        return [f.kind for f, _ in self.active]

    async def heal_all(self) -> None:
        """Stop every active fault, resume and start every node, heal the network."""
        for fault, ctx in list(self.active):
            await self.stop(fault, ctx)
        for node in self.cluster.nodes:
            await asyncio.to_thread(self.cluster.resume, node)
            if not self.cluster.running(node):
                await asyncio.to_thread(self.cluster.start_node, node)
        await asyncio.to_thread(self.cluster.heal_network)
