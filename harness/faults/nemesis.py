"""The nemesis: runs a fault plan against a cluster and records every start and stop.

Concurrency lives here and only here: each window's start and stop run in a
worker thread (``asyncio.to_thread``) so clients keep running while a node
is killed or restarted. Each window gets a fresh fault object built from its
spec and a ``random.Random`` seeded for that window, so targets are
reproducible. Every start and stop is a history op with ``process:
"nemesis"``, ``type: "info"``, ``f`` = the fault kind and a ``value`` that
says what was done (``{"start": "kill", "nodes": [...], "began": ns, "leaders":
{"stream": "n2", "meta": "n1"}}``; ``began`` is when the fault started acting
— the op itself is written once it is in effect, which for a power loss is
seconds later — and ``leaders`` who led the stream and the meta group just
before). ``heal_all``
stops whatever is still active and makes sure every node runs and the
network is whole — called at the end of the main phase and on any error.

Windows may overlap (a fault program's steps, fault packages): every start
and stop is an event, played in time order (:meth:`Nemesis.run`); each op
names its window (``"window": "3.cut-a"``), so a stop pairs with its start
even when two faults of one kind run at once. A program step's nodes are
kept by name for later steps' relational targets, a ``fixed`` spec's first
nodes for its later windows (:meth:`FaultContext.targets`).

A fault whose ``start`` or ``stop`` raises does not stop the run: the op is
written all the same, with the exception as its ``error`` field
(``"<ExceptionType>: <message>"``, at most 300 characters) and only what
is known in its value — ``{"start": kind, "began": ns}`` or ``{"stop":
kind}``. A fault whose start raised stays active, so its window's end (or
``heal_all``) still calls its ``stop``, which undoes whatever part did
happen; a fault whose stop raised is no longer active, and ``heal_all``'s
resume / restart / heal of every node and the network repairs the rest.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from harness import faults
from harness.backends.base import Cluster, NetworkControl, ProcessControl
from harness.faults import Fault, FaultContext
from harness.faults.schedule import Window
from harness.history import NEMESIS, HistoryWriter

log = logging.getLogger(__name__)
ERROR_CHARS = 300
LEADERS_WAIT = 0.5  # seconds the leaders are looked up for before a fault starts


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:ERROR_CHARS]


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
        self.chosen: dict[str, list[str]] = {}  # program step name -> the nodes it hit
        self.pinned: dict[int, list[str]] = {}  # a ``fixed`` spec's first nodes

    def _leader(self, which: str) -> str | None:
        cluster = self.cluster
        for node in cluster.nodes:
            if isinstance(cluster, ProcessControl) and not cluster.running(node):
                continue
            mon = cluster.monitor(node)
            if which == "meta":
                who = mon.meta_leader()
            else:
                view = mon.stream_view(self.stream)
                who = view.leader if view else None
            if who:
                return who
        return None

    async def leaders(self) -> dict[str, str | None]:
        """The stream and meta leader as the running nodes say within :data:`LEADERS_WAIT`
        seconds (None: no node that answered in time knew one).

        Every node is asked at once and a node that does not answer in time (a
        paused one) is left out, so looking the leaders up never holds a fault
        back by more than that.
        """
        cluster = self.cluster
        nodes = [
            n
            for n in cluster.nodes
            if not isinstance(cluster, ProcessControl) or cluster.running(n)
        ]

        def stream_leader(node: str) -> str | None:
            view = cluster.monitor(node).stream_view(self.stream)
            return view.leader if view else None

        asks = {
            (which, n): asyncio.ensure_future(asyncio.to_thread(fn, n))
            for n in nodes
            for which, fn in (("stream", stream_leader), ("meta", self._meta_leader))
        }
        if asks:
            await asyncio.wait(asks.values(), timeout=LEADERS_WAIT)
        found: dict[str, str | None] = {"stream": None, "meta": None}
        for (which, _), task in asks.items():  # in node order: the first that knows says
            if found[which] is None and task.done() and not task.exception():
                found[which] = task.result() or None
        return found

    def _meta_leader(self, node: str) -> str | None:
        return self.cluster.monitor(node).meta_leader()

    def context(self, seed: int) -> FaultContext:
        """A fault context with its own seeded RNG."""
        return FaultContext(
            cluster=self.cluster,
            rng=random.Random(seed),
            stream=self.stream,
            stream_leader=lambda: self._leader("stream"),
            meta_leader=lambda: self._leader("meta"),
            chosen=self.chosen,
            pinned=self.pinned,
            now=self.history.now,
        )

    async def run(self, windows: list[Window], t0: float) -> None:
        """Play ``windows`` relative to ``t0`` (monotonic seconds of the main phase start).

        Every start and stop is an event at its time; events are played one at a
        time in ``(time, package, order)`` order, so windows may overlap (programs,
        packages) and a start or stop that takes long delays the events after it.
        """
        events = [(w.start, w.package, w.order[0], 0, i) for i, w in enumerate(windows)]
        events += [(w.stop, w.package, w.order[1], 1, i) for i, w in enumerate(windows)]
        running: dict[int, tuple[Fault, FaultContext]] = {}
        for at, _, _, is_stop, i in sorted(events):
            await self._sleep_until(t0 + at)
            w = windows[i]
            if not is_stop:
                fault, ctx = faults.make(w.fault), self.context(w.seed)
                running[i] = (fault, ctx)
                done = await self.start(fault, ctx, w.id)
                if w.name and isinstance(done.get("nodes"), list):
                    self.chosen[w.name] = list(done["nodes"])
            elif i in running:
                await self.stop(*running.pop(i), w.id)

    async def _sleep_until(self, t: float) -> None:
        delay = t - self.clock()
        if delay > 0:
            await self.sleep(delay)

    async def start(
        self, fault: Fault, ctx: FaultContext, window: str | None = None
    ) -> dict[str, Any]:
        """Start one fault now and record it (with its ``error`` if starting raised).

        Returns what the fault did (empty if it raised); ``window`` names the
        window in the op's value, so its stop pairs with it exactly.
        """
        self.active.append((fault, ctx))
        self.started += 1
        leaders = await self.leaders()  # who led just before the fault
        began = self.history.now()  # the fault acts from here; the op is written when it is done
        tag = {"window": window} if window is not None else {}
        try:
            done = await asyncio.to_thread(fault.start, ctx)
        except Exception as e:
            log.warning("nemesis: start %s failed", fault.kind, exc_info=True)
            value = {"start": fault.kind, **tag, "began": began, "leaders": leaders}
            self.history.append("info", NEMESIS, fault.kind, value, error=_error(e))
            return {}
        value = {"start": fault.kind, **tag, **done, "began": began, "leaders": leaders}
        self.history.append("info", NEMESIS, fault.kind, value)
        log.info("nemesis: start %s %s", fault.kind, done)
        return done

    async def stop(self, fault: Fault, ctx: FaultContext, window: str | None = None) -> None:
        """Stop one fault now and record it (with its ``error`` if stopping raised)."""
        tag = {"window": window} if window is not None else {}
        try:
            done = await asyncio.to_thread(fault.stop, ctx)
        except Exception as e:
            log.warning("nemesis: stop %s failed", fault.kind, exc_info=True)
            value = {"stop": fault.kind, **tag}
            self.history.append("info", NEMESIS, fault.kind, value, error=_error(e))
        else:
            self.history.append("info", NEMESIS, fault.kind, {"stop": fault.kind, **tag, **done})
            log.info("nemesis: stop %s %s", fault.kind, done)
        finally:
            self.active = [(f, c) for f, c in self.active if f is not fault]

    @property
    def active_kinds(self) -> list[str]:
        return [f.kind for f, _ in self.active]

    async def heal_all(self) -> None:
        """Stop every active fault, resume and start every node, heal the network."""
        for fault, ctx in list(self.active):
            await self.stop(fault, ctx)
        cluster = self.cluster
        if isinstance(cluster, ProcessControl):
            for node in cluster.nodes:
                await asyncio.to_thread(cluster.resume, node)
                if not cluster.running(node):
                    await asyncio.to_thread(cluster.start_node, node)
        if isinstance(cluster, NetworkControl):
            await asyncio.to_thread(cluster.heal_network)
