"""What a workload is: its spec, its hooks, and what it declares for the rest of the harness.

A workload is one module with one class (registered in
``harness.workloads.REGISTRY``). The runner only calls its hooks, in this
order; the client interpreter (``harness.interpreter``) performs and records
every operation, so a workload never writes a history line or picks a
process id:

1. ``setup()`` — create what it writes to (stream, bucket); return what
   results.json records (e.g. ``replica_nodes``); raise
   :class:`~harness.errors.NoStreamLeader` (or another ``RunBroken``) if the
   cluster never lets it, :class:`~harness.errors.BadInput` for a config the
   server refuses;
2. ``operations(worker, node)`` / ``invoke(client, op)`` — the main phase:
   an endless iterator of :class:`~harness.interpreter.Operation` per worker,
   and how to perform one over a :class:`~harness.clients.NatsClient`
   (return a :class:`~harness.interpreter.Completion`; raise for errors:
   ``clients.Failed`` for a certain refusal, anything else is classified);
3. ``recover(bound)`` — after the heal: wait (at most ``bound`` seconds)
   until the replicas can be read; return what results.json records;
4. ``prepare_reads(bound)`` / ``final_ops()`` / ``after_reads()`` — the final
   reads: make each node's read provably its own, list the read operations
   (performed through ``invoke`` like any other), and undo the preparation;
5. ``close()`` — release connections (never raises).

A workload whose main-phase ops may be in flight together (the queue's
publishes) gives its spec the fields of :class:`PipelinedSpec` and a
classmethod ``pipeline(scenario, shard, shards)`` returning a
:class:`~harness.interpreter.Pipelined` client for one of ``shards``
client processes (values of its own, from plain data: it runs in a process
with no cluster object). The others perform one op per worker at a time.

Class attributes (read without running anything): ``Spec`` (its
pydantic spec, a member of the scenario's ``workload`` union, discriminated
by ``name``), ``needs`` (backend abilities, checked in preflight),
``min_server`` (the oldest nats-server it works on, None for any; checked
in preflight), and, inherited from its class in :mod:`harness.checkspec`
(what a check of its histories needs), ``name``, ``checkers``, ``writes``,
``headline_checker``, ``anomalies``, ``pairs_fs`` and ``offline_fs``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import Field

from harness.clients import NatsClient
from harness.interpreter import Completion, Operation, Pipelined
from harness.spec import Seconds, _Model

if TYPE_CHECKING:  # the scenario imports the workload registry: no import at run time
    from harness.backends.base import Cluster
    from harness.scenario import Scenario


class WorkloadSpecBase(_Model):
    """Fields every workload has: how many clients, how fast, how long one may wait."""

    name: str
    concurrency: int | None = Field(default=None, ge=1, le=256)
    rate: float = Field(
        default=200.0, ge=0, description="total target ops/s; 0 = as fast as the cluster takes"
    )
    timeout: Seconds = 5.0


SATURATING_WINDOW = 128  # logical processes in flight per worker when ``rate`` is 0


class PipelinedSpec(WorkloadSpecBase):
    """The fields of a workload whose main-phase ops can be pipelined (``pipeline`` below).

    ``window``: logical processes each worker keeps in flight on its
    connection (each still has at most one op outstanding); ``processes``:
    client OS processes the workers are spread over (0: the harness process
    itself). Unset, both follow ``rate``: one at a time in the harness for a
    paced rate, and for ``rate: 0`` (as fast as the cluster takes)
    :data:`SATURATING_WINDOW` per worker over one client process per core.
    """

    window: int | None = Field(default=None, ge=1, le=4096)
    processes: int | None = Field(default=None, ge=0, le=64)

    def pipelining(self, workers: int) -> tuple[int, int]:
        """``(window, processes)`` as this spec resolves them for ``workers`` workers."""
        saturate = self.rate == 0
        window = self.window or (SATURATING_WINDOW if saturate else 1)
        processes = self.processes
        if processes is None:
            processes = min(workers, os.cpu_count() or 1) if saturate else 0
        return window, min(processes, workers)  # auto: never more processes than workers


def pipeline(workload: type, scenario: Scenario, shard: int, shards: int) -> Pipelined:
    """The main-phase client of a workload that pipelines (its optional classmethod
    ``pipeline(scenario, shard, shards)``), for client process ``shard`` of ``shards``."""
    make = getattr(workload, "pipeline", None)
    if make is None:
        raise TypeError(f"workload {getattr(workload, 'name', workload)!r} does not pipeline")
    client: Pipelined = make(scenario, shard, shards)
    return client


def pipelining(spec: WorkloadSpecBase, workers: int) -> tuple[int, int]:
    """``(window, processes)`` of any spec: ``(1, 0)`` unless it is a :class:`PipelinedSpec`."""
    return spec.pipelining(workers) if isinstance(spec, PipelinedSpec) else (1, 0)


class ReadWatch:
    """When the final reads last made progress: the runner's reads deadline counts from it.

    Every batch a final read receives calls :meth:`tick`; ``last`` is then
    ``time.monotonic()`` (the clock of the asyncio loop), ``messages`` the
    messages received by every read so far.
    """

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.messages = 0

    def tick(self, messages: int) -> None:
        self.last = time.monotonic()
        self.messages += messages


@dataclass
class WorkloadContext:
    """What a workload is given: the scenario, the cluster, clients and a settle-note recorder.

    ``client_for(node)`` returns the run's client bound to ``node``;
    ``note(f, value)`` records a nemesis ``info`` op for an action the
    workload takes on the cluster while settling it (a leader step-down
    during the recovery wait), so the history shows it; ``reads`` is ticked
    by the final reads as they receive messages (the runner's reads deadline
    counts from the last tick).
    """

    scenario: Scenario
    cluster: Cluster
    client_for: Callable[[str], Awaitable[NatsClient]]
    note: Callable[[str, dict[str, Any]], None]
    reads: ReadWatch = field(default_factory=ReadWatch)

    @property
    def spec(self) -> Any:
        return self.scenario.workload


class Workload(Protocol):
    """The hooks the runner calls (see the module docstring for their order)."""

    name: ClassVar[str]
    Spec: ClassVar[type[WorkloadSpecBase]]
    checkers: ClassVar[tuple[str, ...]]
    writes: ClassVar[tuple[str, ...]]  # client fs that are writes: ok = acknowledged (availability)
    headline_checker: ClassVar[str]
    anomalies: ClassVar[tuple[str, ...]]
    needs: ClassVar[frozenset[str]]
    min_server: ClassVar[str | None]
    pairs_fs: ClassVar[frozenset[str]]
    # final-read fs the runner may perform again on a node's store, served offline, when
    # the live read did not end ok (harness.offline.reads; the workload keeps ``.cluster``)
    offline_fs: ClassVar[tuple[str, ...]]

    def __init__(self, ctx: WorkloadContext) -> None: ...

    async def setup(self) -> dict[str, Any]:
        """Create what the workload writes to; what results.json records."""

    def operations(self, worker: int, node: str) -> Iterator[Operation]:
        """Worker ``worker``'s main-phase operations (sent to ``node``)."""

    async def invoke(self, client: NatsClient, op: Operation) -> Completion:
        """Perform one operation (main phase or final read)."""

    async def recover(self, bound: float) -> dict[str, Any]:
        """After the heal: wait until the replicas can be read; what results.json records."""

    async def prepare_reads(self, bound: float) -> dict[str, Any]:
        """Make each node's final read its own; what results.json records."""

    def final_ops(self) -> list[Operation]:
        """The final read operations, one or more per node."""

    async def after_reads(self) -> None:
        """Undo ``prepare_reads``."""

    async def close(self) -> None:
        """Release what ``setup`` opened; never raises."""
