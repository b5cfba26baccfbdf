"""Benchmark the history loader and the queue checkers on a synthetic history.

In: ``--publishes N`` (and optionally ``--history PATH`` to reuse a file).
Out: a table with the time of (a) ``load_history`` (the queue workload's
``pairs_fs``, so final reads parse straight to numpy), (b) ``wellformed``
alone and (c) ``check_history`` with every checker a run composes but logs,
the process's peak RSS after each (``ru_maxrss``), and the peak Python
allocation of each phase (``tracemalloc``, measured in a second pass because
tracing slows the code it watches). Also checks the verdict found the
planted lost values.

Run: ``.venv/bin/python benchmarks/bench_checker.py --publishes 1000000``
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]

from measure import peak_rss_mib, timed  # noqa: E402
from synth_history import NODES, write_history  # noqa: E402

from checkers.compose import check_history  # noqa: E402
from checkers.wellformed import check_wellformed  # noqa: E402
from harness.history import load_history  # noqa: E402

PAIRS_FS = frozenset({"read"})  # harness.workloads.REGISTRY["queue"].pairs_fs
NAMES = ("wellformed", "stats", "queue", "availability")  # a run composes these and logs

MIB = 1024 * 1024


def traced_peak(fn: Callable[[], Any]) -> float:
    """Peak bytes allocated through Python's allocators while ``fn`` runs (MiB)."""
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / MIB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--publishes", type=int, default=1_000_000)
    ap.add_argument("--history", type=Path, help="reuse (or create) this history file")
    ap.add_argument("--no-tracemalloc", action="store_true", help="skip the traced pass")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory()
    path = args.history or Path(tmp.name) / "history.jsonl"
    if not path.exists():
        t = time.perf_counter()
        planted = write_history(path, args.publishes)
        print(
            f"wrote {path} ({path.stat().st_size / MIB:.0f} MiB) in "
            f"{time.perf_counter() - t:.1f}s: {planted}"
        )
    context = {"nodes": list(NODES)}
    rss0 = peak_rss_mib()
    loaded, t_load = timed(lambda: load_history(path, pairs_fs=PAIRS_FS))
    rss_load = peak_rss_mib()
    wellformed, t_wf = timed(lambda: check_wellformed(loaded.ops, context))
    rss_wf = peak_rss_mib()
    result, t_check = timed(lambda: check_history(loaded.ops, context, NAMES, "queue"))
    rss_check = peak_rss_mib()
    queue = result["checkers"]["queue"]
    print(
        f"rows={len(loaded.ops)} valid={result['valid']} anomalies={result['anomalies']} "
        f"lost={queue.get('lost_count')} recovered={queue.get('recovered_count')} "
        f"error={queue.get('error')} wellformed={wellformed['valid']}"
    )
    rows = [
        ("load_history", t_load, rss_load),
        ("wellformed", t_wf, rss_wf),
        ("check_history", t_check, rss_check),
        ("total", t_load + t_check, rss_check),
    ]
    traced = {}
    if not args.no_tracemalloc:
        traced["load_history"] = traced_peak(lambda: load_history(path, pairs_fs=PAIRS_FS))
        traced["check_history"] = traced_peak(
            lambda: check_history(loaded.ops, context, NAMES, "queue")
        )
    print(f"\nbaseline RSS before loading: {rss0:.0f} MiB")
    print(f"{'phase':<15}{'seconds':>9}{'peak RSS MiB':>14}{'traced peak MiB':>17}")
    for name, secs, rss in rows:
        tm = f"{traced[name]:.0f}" if name in traced else "-"
        print(f"{name:<15}{secs:>9.2f}{rss:>14.0f}{tm:>17}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
