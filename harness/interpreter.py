"""The client interpreter: the one place where client operations become history.

Workloads only describe operations (:class:`Operation`: ``f``, ``value``,
the node to send it to) and perform one when asked (``invoke(client, op)``
returning a :class:`Completion`, or raising). The interpreter (after Jepsen's
``generator/interpreter.clj``) does everything else, for the main phase and
for the final reads alike:

- assigns process ids (0, 1, 2 …; never reused);
- writes the ``invoke`` before the operation starts;
- awaits it, and classifies an exception in ``harness.clients.classify``
  (``fail`` is certain, ``info`` is not);
- writes exactly one completion with the same process and ``f`` — also when
  the operation is cancelled (a phase deadline, Ctrl-C): then ``info`` with
  ``error: "interrupted"``, so a history never has an invoke without its end;
- retires a process after ``info``: the worker continues under a new id;
- paces workers to the scenario's rate, and stops them at the deadline.

Concurrency lives here and in the nemesis, nowhere else: ``run`` starts one
asyncio task per worker (worker ``w`` is bound to ``nodes[w % len(nodes)]``)
and ``execute`` runs a list of one-off operations (the final reads)
concurrently, each under its own process.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from harness import clients
from harness.clients import NatsClient
from harness.history import HistoryWriter

INTERRUPTED = "interrupted"


class Operation(NamedTuple):
    """What a workload wants done: ``f`` with ``value``, sent to ``node``.

    ``data`` is the workload's own (what ``invoke`` needs beyond the value, such
    as the message to acknowledge); the history never sees it.
    """

    f: str
    value: Any = None
    node: str | None = None
    data: Any = None


_SAME: Any = object()
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


class Completion(NamedTuple):
    """How an operation ended; ``value`` defaults to the invoke's value.

    (Named tuples: one is made per operation, and they cost a third of a
    frozen dataclass to build.)
    """

    type: str = "ok"
    value: Any = _SAME
    error: str | None = None
    extra: Mapping[str, Any] = _NO_EXTRA


@dataclass
class Counters:
    """Completions so far, for the live progress line."""

    ok: int = 0
    fail: int = 0
    info: int = 0

    def add(self, kind: str) -> None:
        if kind == "ok":
            self.ok += 1
        elif kind == "fail":
            self.fail += 1
        else:
            self.info += 1


class Client(Protocol):
    """What a workload gives the interpreter: operations and how to perform one."""

    def operations(self, worker: int, node: str) -> Iterator[Operation]:
        """Worker ``worker``'s operations during the main phase, sent to ``node``."""

    async def invoke(self, client: NatsClient, op: Operation) -> Completion:
        """Perform ``op`` over ``client``; raise for an error (classified by the interpreter)."""


class Interpreter:
    """Runs operations against per-node clients and records each one in the history."""

    def __init__(
        self,
        history: HistoryWriter,
        client_for: Callable[[str], Awaitable[NatsClient]],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.history = history
        self.client_for = client_for
        self.clock = clock
        self.sleep = sleep
        self.counters = Counters()
        self._processes = itertools.count()

    def new_process(self) -> int:
        """The next unused process id."""
        return next(self._processes)

    async def perform(
        self,
        process: int,
        op: Operation,
        invoke: Callable[[NatsClient, Operation], Awaitable[Completion]],
        client: NatsClient | None = None,
    ) -> str:
        """Record ``op`` under ``process``, perform it, record its completion; the type.

        ``client`` is the one bound to ``op.node`` when the caller has it already.
        """
        append = self.history.append
        append("invoke", process, op.f, op.value, op.node)
        try:
            if client is None:
                if op.node is None:
                    raise ValueError(f"operation {op.f!r} names no node to send it to")
                client = await self.client_for(op.node)
            done = await invoke(client, op)
        except asyncio.CancelledError:
            append("info", process, op.f, op.value, op.node, INTERRUPTED)
            self.counters.add("info")
            raise
        except Exception as e:
            kind, err = clients.classify(e)
            append(kind, process, op.f, op.value, op.node, err)
            self.counters.add(kind)
            return kind
        value = op.value if done.value is _SAME else done.value
        append(done.type, process, op.f, value, op.node, done.error, **done.extra)
        self.counters.add(done.type)
        return done.type

    async def run(
        self, workload: Client, nodes: list[str], workers: int, rate: float, deadline: float
    ) -> None:
        """Every worker performs its operations until ``deadline`` (monotonic seconds).

        ``rate`` is the total target in ops/s (0: as fast as possible); each
        worker is paced at ``rate / workers`` with staggered starts.
        """
        period = workers / rate if rate > 0 else 0.0
        await asyncio.gather(
            *(
                self._worker(workload, w, nodes[w % len(nodes)], period, workers, deadline)
                for w in range(workers)
            )
        )

    async def _worker(
        self, workload: Client, w: int, node: str, period: float, workers: int, deadline: float
    ) -> None:
        clock = self.clock
        process = self.new_process()
        ops = workload.operations(w, node)
        client = await self.client_for(node)
        next_at = clock() + period * (w / max(1, workers))
        while clock() < deadline:
            if period:
                delay = next_at - clock()
                if delay > 0:
                    await self.sleep(delay)
                next_at = max(next_at + period, clock() - period)
                if clock() >= deadline:
                    break
            op = next(ops, None)
            if op is None:
                break
            if await self.perform(process, op, workload.invoke, client) == "info":
                process = self.new_process()

    async def execute(
        self,
        ops: list[Operation],
        invoke: Callable[[NatsClient, Operation], Awaitable[Completion]],
    ) -> list[str]:
        """Perform one-off operations concurrently, each under a new process; their types."""
        return list(
            await asyncio.gather(*(self.perform(self.new_process(), op, invoke) for op in ops))
        )
