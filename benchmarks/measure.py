"""Measuring helpers shared by the checker benchmarks.

``peak_rss_mib()``: this process's peak resident set size so far, in MiB
(Linux reports ``ru_maxrss`` in KiB). ``timed(fn)``: ``(fn(), seconds)``,
after a garbage collection so an earlier phase's garbage is not charged to it.
"""

from __future__ import annotations

import gc
import resource
import time
from collections.abc import Callable
from typing import Any


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and the seconds it took."""
    gc.collect()
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t
