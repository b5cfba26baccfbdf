"""The nemesis: runs a fault plan against a cluster and records every start and stop.

Concurrency lives here and only here: each window's start and stop run in a
worker thread (``asyncio.to_thread``) so clients keep running while a node
is killed or restarted. Every start and stop is a history op with
``process: "nemesis"``, ``type: "info"``, ``f`` = the fault kind and a
``value`` that says what was done (``{"start": "kill", "nodes": [...]}``).
``heal_all`` stops whatever is still active and makes sure every node runs
— it is called at the end of the main phase and on any error.
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
from harness.faults import REGISTRY, Fault
from harness.faults.schedule import Window
from harness.faults.targets import resolve
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
        self.faults: dict[str, Fault] = {}
        self.active: list[tuple[Fault, list[str]]] = []
        self.started = 0

    def fault(self, kind: str) -> Fault:
        if kind not in self.faults:
            self.faults[kind] = REGISTRY[kind](self.cluster)
        return self.faults[kind]

    def stream_leader(self) -> str | None:
        """The stream leader as any running node reports it."""
        for node in self.cluster.nodes:
            if self.cluster.running(node):
                view = monitor.stream_view(self.cluster.monitor_url(node), self.stream)
                if view and view.leader:
                    return view.leader
        return None

    async def run(self, windows: list[Window], t0: float) -> None:
        """Play ``windows`` relative to ``t0`` (monotonic seconds of the main phase start)."""
        for w in windows:
            await self._sleep_until(t0 + w.start)
            fault = self.fault(w.fault.kind)
            rng = random.Random(w.seed)
            nodes = await asyncio.to_thread(
                resolve, w.fault.targets, self.cluster.nodes, rng, self.stream_leader
            )
            await self._start(fault, nodes, w.fault.targets)
            await self._sleep_until(t0 + w.stop)
            await self._stop(fault, nodes)

    async def _sleep_until(self, t: float) -> None:
        delay = t - self.clock()
        if delay > 0:
            await self.sleep(delay)

    async def _start(self, fault: Fault, nodes: list[str], targets: str) -> None:
        self.active.append((fault, nodes))
        self.started += 1
        done = await asyncio.to_thread(fault.start, nodes)
        value = {"start": fault.kind, "targets": targets, **done}
        self.history.append("info", NEMESIS, fault.kind, value)
        log.info("nemesis: start %s on %s", fault.kind, ",".join(nodes))

    async def _stop(self, fault: Fault, nodes: list[str]) -> None:
        done = await asyncio.to_thread(fault.stop, nodes)
        self.history.append("info", NEMESIS, fault.kind, {"stop": fault.kind, **done})
        if (fault, nodes) in self.active:
            self.active.remove((fault, nodes))
        log.info("nemesis: stop %s on %s", fault.kind, ",".join(nodes))

    @property
    def active_kinds(self) -> list[str]:
        return [f.kind for f, _ in self.active]

    async def heal_all(self) -> None:
        """Stop every active fault, resume and start every node, heal the network."""
        for fault, nodes in list(self.active):
            await self._stop(fault, nodes)
        for node in self.cluster.nodes:
            await asyncio.to_thread(self.cluster.resume, node)
            if not self.cluster.running(node):
                await asyncio.to_thread(self.cluster.start_node, node)
        await asyncio.to_thread(self.cluster.heal_network)
