"""What each workload's histories are checked with, declared once and imported cheaply.

In: nothing (plain class attributes). Out: one small class per workload and
:data:`CHECKS`, its name -> that class. Each workload class in
``harness.workloads`` inherits its class from here, so these attributes are
the workload's own (``harness.workloads.REGISTRY[name].checkers`` is
``CHECKS[name].checkers``), while ``nats-chaos check``, ``report`` and
``check --workload``'s choices read them without importing the workloads'
run-time layers (nats-py, pydantic, the backends and faults):

- ``name``: the registry key and the scenario's ``workload.name``;
- ``checkers``: names in ``checkers.compose.REGISTRY`` its histories are
  checked with (every check adds ``wellformed``, and ``logs`` over a run's
  ``nodes/``);
- ``headline_checker``: the checker whose ``summary`` is the run's headline;
- ``writes``: the client op names that are writes (an ``ok`` one is an
  acknowledged write; the ``availability`` checker measures gaps between them);
- ``anomalies``: every anomaly name those checkers can report;
- ``pairs_fs``: op names whose ``ok`` value is a list of ``[int, int]``
  pairs, which the history loader turns into an int64 array of shape (n, 2);
- ``offline_fs``: the per-node final-read fs the runner may perform again
  on a node's store, served offline, when the live read did not end ok
  (``harness.offline``; ``checkers.reads.how_read`` reports how each was read).
"""

from __future__ import annotations

from typing import ClassVar

from checkers import anomalies


class CheckSpec:
    """The attributes above; a workload sets every one without a default."""

    name: ClassVar[str]
    checkers: ClassVar[tuple[str, ...]]
    headline_checker: ClassVar[str]
    writes: ClassVar[tuple[str, ...]]
    anomalies: ClassVar[tuple[str, ...]]
    pairs_fs: ClassVar[frozenset[str]] = frozenset()
    offline_fs: ClassVar[tuple[str, ...]] = ("read",)  # one ``read`` per replica node


class QueueChecks(CheckSpec):
    name: ClassVar[str] = "queue"
    checkers: ClassVar[tuple[str, ...]] = ("stats", "queue", "availability")
    headline_checker: ClassVar[str] = "queue"
    writes: ClassVar[tuple[str, ...]] = ("publish",)  # ok: an acknowledged publish
    anomalies: ClassVar[tuple[str, ...]] = (
        "lost",
        "unexpected",
        "duplicated",
        "stream-lost",
        "stalled",
        "replica-groups",
        "holes",
        "divergence",
        "failed-but-read",
    )
    pairs_fs: ClassVar[frozenset[str]] = frozenset({"read"})


class DedupChecks(CheckSpec):
    name: ClassVar[str] = "dedup"
    checkers: ClassVar[tuple[str, ...]] = ("stats", "dedup", "availability")
    headline_checker: ClassVar[str] = "dedup"
    # ok: an acknowledged publish (a duplicate ack too: the server answered)
    writes: ClassVar[tuple[str, ...]] = ("publish",)
    anomalies: ClassVar[tuple[str, ...]] = anomalies.DEDUP


class ConsumerChecks(CheckSpec):
    name: ClassVar[str] = "consumer"
    checkers: ClassVar[tuple[str, ...]] = ("stats", "consumer", "availability")
    headline_checker: ClassVar[str] = "consumer"
    writes: ClassVar[tuple[str, ...]] = ("publish",)  # ok: the producers' acknowledged publishes
    anomalies: ClassVar[tuple[str, ...]] = (
        "lost-to-consumer",
        "redelivered-after-ack",
        "out-of-order",
        "consumer-state-mismatch",
        "unexpected",
    )
    offline_fs: ClassVar[tuple[str, ...]] = ()  # the drain is no replica read


class CounterChecks(CheckSpec):
    name: ClassVar[str] = "counter"
    checkers: ClassVar[tuple[str, ...]] = ("stats", "counter", "availability")
    headline_checker: ClassVar[str] = "counter"
    writes: ClassVar[tuple[str, ...]] = ("incr",)  # ok: an increment whose PubAck carried the total
    anomalies: ClassVar[tuple[str, ...]] = anomalies.COUNTER
    pairs_fs: ClassVar[frozenset[str]] = frozenset({"read"})


class BatchChecks(CheckSpec):
    name: ClassVar[str] = "batch"
    checkers: ClassVar[tuple[str, ...]] = ("stats", "batch", "availability")
    headline_checker: ClassVar[str] = "batch"
    writes: ClassVar[tuple[str, ...]] = ("batch",)  # ok: a committed batch, acknowledged
    anomalies: ClassVar[tuple[str, ...]] = anomalies.BATCH


class KvChecks(CheckSpec):
    name: ClassVar[str] = "kv"
    checkers: ClassVar[tuple[str, ...]] = ("stats", "kv", "linear-kv", "availability")
    headline_checker: ClassVar[str] = "kv"
    # ok: a KV write the server acknowledged with its revision
    writes: ClassVar[tuple[str, ...]] = ("put", "create", "update", "delete")
    anomalies: ClassVar[tuple[str, ...]] = anomalies.KV


class CasChecks(CheckSpec):
    name: ClassVar[str] = "cas"
    # cas runs the cas-register search
    checkers: ClassVar[tuple[str, ...]] = ("stats", "cas", "availability")
    headline_checker: ClassVar[str] = "cas"
    writes: ClassVar[tuple[str, ...]] = ("cas",)  # ok: a CAS that won
    anomalies: ClassVar[tuple[str, ...]] = anomalies.CAS
    offline_fs: ClassVar[tuple[str, ...]] = ("read-node",)


CHECKS: dict[str, type[CheckSpec]] = {
    c.name: c
    for c in (
        QueueChecks,
        DedupChecks,
        ConsumerChecks,
        CounterChecks,
        BatchChecks,
        KvChecks,
        CasChecks,
    )
}
