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

A worker runs one of two ways. With ``window`` 1 it performs one op at a
time (``invoke``) under one process. With a larger ``window`` and a
:class:`Pipelined` workload it keeps ``window`` logical processes in flight
on its one connection: each idle process takes the next op, its ``invoke``
is written and the op is sent (``submit``, e.g. a ``publish_async``) without
waiting for the answer; when the answer lands its completion is written
(``complete`` turns it into a :class:`Completion`) and the process is idle
again. Every logical process still has at most one op outstanding, and
every op still gets its invoke and exactly one completion: a sweeper turns
an op unanswered after ``timeout`` seconds into ``info`` (``timeout``, the
answer is dropped if it comes later) and its slot continues under a new
process id, as after any ``info``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, runtime_checkable

from harness import clients
from harness.clients import NatsClient
from harness.history import HistoryWriter

INTERRUPTED = "interrupted"
INFO = clients.INFO


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


class _Flight(NamedTuple):
    """An op of a pipelined worker that is in flight: its future and when it is given up."""

    op: Operation
    future: asyncio.Future[Any]
    expires: float


class _Pace:
    """When a paced worker may send its next op (``period`` 0: at once, unpaced)."""

    def __init__(self, period: float, w: int, workers: int) -> None:
        self.period = period
        self.offset = period * (w / max(1, workers))  # staggered starts
        self.next_at: float | None = None

    async def wait(
        self,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[Any]],
        deadline: float,
    ) -> bool:
        """Until the next op is due; False once the deadline has passed."""
        if clock() >= deadline:
            return False
        if not self.period:
            return True
        if self.next_at is None:
            self.next_at = clock() + self.offset
        delay = self.next_at - clock()
        if delay > 0:
            await sleep(delay)
        self.next_at = max(self.next_at + self.period, clock() - self.period)
        return clock() < deadline


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


@runtime_checkable
class Pipelined(Client, Protocol):
    """A workload whose operations can be sent without waiting for their answers."""

    async def submit(self, client: NatsClient, op: Operation) -> asyncio.Future[Any]:
        """Send ``op`` over ``client``; a future of its answer (never timing out on its own).

        Raise (or fail the future) for an error, classified by the interpreter;
        the interpreter cancels the future when it gives up on the answer.
        """

    def complete(self, op: Operation, answer: Any) -> Completion:
        """How ``op`` ended, given the answer its future resolved to."""


class Interpreter:
    """Runs operations against per-node clients and records each one in the history.

    ``processes`` yields the process ids it hands out (by default 0, 1, 2 …;
    a client process of a multi-process run is given a disjoint stride).
    """

    def __init__(
        self,
        history: HistoryWriter,
        client_for: Callable[[str], Awaitable[NatsClient]],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        processes: Iterator[int] | None = None,
    ) -> None:
        self.history = history
        self.client_for = client_for
        self.clock = clock
        self.sleep = sleep
        self.counters = Counters()
        self._processes = processes if processes is not None else itertools.count()

    def new_process(self) -> int:
        """The next unused process id."""
        return next(self._processes)

    def continue_after(self, process: int) -> None:
        """Hand out ids above ``process`` from now on (ids other processes used up to it)."""
        self._processes = itertools.count(process + 1)

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
        self,
        workload: Client,
        nodes: list[str],
        workers: int,
        rate: float,
        deadline: float,
        window: int = 1,
        timeout: float = 5.0,
        only: Sequence[int] | None = None,
    ) -> None:
        """Every worker performs its operations until ``deadline`` (monotonic seconds).

        ``rate`` is the total target in ops/s (0: as fast as possible); each
        worker is paced at ``rate / workers`` with staggered starts. With
        ``window`` > 1 (``workload`` must be :class:`Pipelined`) each worker
        keeps up to ``window`` ops in flight, each given up on (``info``)
        after ``timeout`` seconds; it stops sending at the deadline and
        waits for the ops still in flight. ``only``: the workers this
        interpreter runs (another client process runs the rest).
        """
        period = workers / rate if rate > 0 else 0.0
        ids = range(workers) if only is None else only
        if window > 1 and not isinstance(workload, Pipelined):
            raise TypeError(f"{type(workload).__name__} cannot pipeline (no submit/complete)")
        await asyncio.gather(
            *(
                self._window_worker(
                    workload, w, nodes[w % len(nodes)], _Pace(period, w, workers), deadline,
                    window, timeout,
                )
                if window > 1 and isinstance(workload, Pipelined)
                else self._worker(
                    workload, w, nodes[w % len(nodes)], _Pace(period, w, workers), deadline
                )
                for w in ids
            )
        )  # fmt: skip

    async def _worker(
        self, workload: Client, w: int, node: str, pace: _Pace, deadline: float
    ) -> None:
        process = self.new_process()
        ops = workload.operations(w, node)
        client = await self.client_for(node)
        while await pace.wait(self.clock, self.sleep, deadline):
            op = next(ops, None)
            if op is None:
                break
            if await self.perform(process, op, workload.invoke, client) == "info":
                process = self.new_process()

    async def _window_worker(
        self,
        workload: Pipelined,
        w: int,
        node: str,
        pace: _Pace,
        deadline: float,
        window: int,
        timeout: float,
    ) -> None:
        """One worker's ``window`` logical processes, pipelined on one connection."""
        clock, append, counters = self.clock, self.history.append, self.counters
        ops = workload.operations(w, node)
        client = await self.client_for(node)
        idle = [self.new_process() for _ in range(window)]
        idle.reverse()  # the lowest id goes first
        flying: dict[int, _Flight] = {}  # by submission, so by expiry too
        room = asyncio.Event()

        def ended(process: int, kind: str) -> None:
            counters.add(kind)
            idle.append(self.new_process() if kind == "info" else process)
            room.set()

        def landed(process: int, fut: asyncio.Future[Any]) -> None:
            flight = flying.pop(process, None)
            if flight is None or fut.cancelled():  # swept or interrupted: recorded already
                return
            op = flight.op
            exc = fut.exception()
            if exc is None:
                try:
                    done = workload.complete(op, fut.result())
                except Exception as e:
                    exc = e
            if exc is not None:
                kind, err = clients.classify(exc)
                append(kind, process, op.f, op.value, op.node, err)
            else:
                kind = done.type
                value = op.value if done.value is _SAME else done.value
                append(kind, process, op.f, value, op.node, done.error, **done.extra)
            ended(process, kind)

        async def sweep() -> None:
            _, gave_up = clients.classify(TimeoutError())
            while True:
                now = clock()
                while flying:
                    process, flight = next(iter(flying.items()))
                    if flight.expires > now:
                        break
                    del flying[process]
                    flight.future.cancel()
                    op = flight.op
                    append(INFO, process, op.f, op.value, op.node, gave_up)
                    ended(process, INFO)
                wait = next(iter(flying.values())).expires - now if flying else timeout
                await self.sleep(max(wait, 0.001))

        sweeper = asyncio.create_task(sweep())
        try:
            while True:
                if pace.period and not await pace.wait(clock, self.sleep, deadline):
                    break
                while not idle:
                    room.clear()
                    await room.wait()
                if clock() >= deadline:
                    break
                op = next(ops, None)
                if op is None:
                    break
                process = idle.pop()
                append("invoke", process, op.f, op.value, op.node)
                try:
                    fut = await workload.submit(client, op)
                except asyncio.CancelledError:
                    append(INFO, process, op.f, op.value, op.node, INTERRUPTED)
                    counters.add(INFO)
                    raise
                except Exception as e:
                    kind, err = clients.classify(e)
                    append(kind, process, op.f, op.value, op.node, err)
                    ended(process, kind)
                    continue
                flying[process] = _Flight(op, fut, clock() + timeout)
                fut.add_done_callback(functools.partial(landed, process))
            while flying:  # past the deadline: every op in flight ends, answered or swept
                room.clear()
                await room.wait()
        except asyncio.CancelledError:
            for process, flight in list(flying.items()):
                del flying[process]
                flight.future.cancel()
                op = flight.op
                append(INFO, process, op.f, op.value, op.node, INTERRUPTED)
                counters.add(INFO)
            raise
        finally:
            sweeper.cancel()

    async def execute(
        self,
        ops: list[Operation],
        invoke: Callable[[NatsClient, Operation], Awaitable[Completion]],
    ) -> list[str]:
        """Perform one-off operations concurrently, each under a new process; their types."""
        return list(
            await asyncio.gather(*(self.perform(self.new_process(), op, invoke) for op in ops))
        )
