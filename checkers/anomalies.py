"""The anomaly names each workload checker can report, in the order its results list them.

In: nothing; out: one tuple per checker. This module imports nothing, so
``harness.checkspec`` (what ``check --workload`` and ``expect:`` read, loaded
without numpy) and the checkers themselves share one list each.
"""

from __future__ import annotations

BATCH = (
    "partial-batch",
    "split-batch",
    "failed-batch-visible",
    "lost-batch",
    "duplicated",
    "unexpected",
    "bad-ack",
    "stream-lost",
    "stalled",
    "replica-groups",
    "holes",
    "divergence",
)
CAS = (
    "non-linearizable",
    "double-winner",
    "lost",
    "phantom-read",
    "stream-lost",
    "stalled",
    "divergence",
)
COUNTER = (
    "lost-increment",
    "phantom-increment",
    "inconsistent-total",
    "duplicate-total",
    "stream-lost",
    "stalled",
    "divergence",
)
DEDUP = (
    "duplicated-id",
    "lost",
    "phantom-duplicate",
    "unexpected",
    "failed-but-read",
    "stream-lost",
    "stalled",
    "replica-groups",
    "holes",
    "divergence",
)
KV = ("non-linearizable", "lost-write", "stream-lost", "stalled", "divergence")
