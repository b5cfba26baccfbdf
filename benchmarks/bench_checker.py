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

``--rounds N`` instead runs load + check in a fresh child process per
measurement, alternating the loader's typed-column path (``columnar``,
``harness.history_columns``) with the line-by-line one (``lines``, the loader
before it) in the same run, and prints each child's load, check and total
wall seconds, CPU seconds and peak RSS, then the medians and the ratio;
``--before ROOT`` adds the line-by-line loader of another checkout (e.g. main) to the rotation,
``--sidecar`` the history's columnar sidecar (``harness.sidecar``; written first if missing):
``.venv/bin/python benchmarks/bench_checker.py --history /tmp/h1m.jsonl --rounds 3 --sidecar``
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]

import harness  # noqa: E402, F401  (first: numpy's environment, harness/__init__.py)

# isort: split
from measure import peak_rss_mib, timed  # noqa: E402
from synth_history import NODES, write_history  # noqa: E402

from checkers.compose import check_history  # noqa: E402
from checkers.wellformed import check_wellformed  # noqa: E402
from harness import history  # noqa: E402
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


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (every thread)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _load(path: Path, loader: str) -> history.LoadedHistory:
    if loader != "sidecar":
        return load_history(path, pairs_fs=PAIRS_FS)
    from harness import sidecar

    loaded = sidecar.read(path, PAIRS_FS)
    assert loaded is not None, f"no sidecar matching {path}"
    return loaded


def child(path: Path, loader: str) -> None:
    """One load + check with ``loader``; prints one JSON line."""
    history.COLUMNAR_FROM = 1 << 62 if loader == "lines" else 1 << 20
    context = {"nodes": list(NODES)}
    cpu0 = cpu_seconds()
    loaded, t_load = timed(lambda: _load(path, loader))
    cpu_load, rss_load = cpu_seconds() - cpu0, peak_rss_mib()
    result, t_check = timed(
        lambda: check_history(loaded.ops, context, NAMES, "queue", loaded.views)
    )
    q = result["checkers"]["queue"]
    out = {"loader": loader, "load": t_load, "check": t_check, "total": t_load + t_check}
    out |= {"cpu": cpu_seconds() - cpu0, "rss": peak_rss_mib(), "valid": result["valid"]}
    out |= {"load_cpu": cpu_load, "load_rss": rss_load}
    print(json.dumps(out | {"lost": q.get("lost_count"), "recovered": q.get("recovered_count")}))


def _line(m: dict) -> str:
    return (f"load {m['load']:6.2f}s (cpu {m['load_cpu']:5.2f}s) check {m['check']:5.2f}s "
            f"total {m['total']:6.2f}s cpu {m['cpu']:6.2f}s rss {m['rss']:5.0f} MiB")  # fmt: skip


def compare(path: Path, rounds: int, before: Path | None, side: bool = False) -> None:
    """Alternate the loaders in fresh processes (rotating their order each round); print every
    round and the medians. ``before``: also the line-by-line loader of that checkout;
    ``side``: also the history's columnar sidecar (written first when it has none)."""
    loaders = ["columnar", "lines", *(["before"] if before else []), *(["sidecar"] if side else [])]
    if side:
        from harness import sidecar

        if sidecar.read(path, PAIRS_FS) is None:
            sidecar.write(load_history(path, pairs_fs=PAIRS_FS), path, PAIRS_FS)
    runs: dict[str, list[dict]] = {k: [] for k in loaders}
    for r in range(rounds):
        for loader in loaders[r % len(loaders) :] + loaders[: r % len(loaders)]:
            root = before if loader == "before" else Path(__file__).resolve().parent.parent
            assert root is not None
            out = subprocess.run(
                [sys.executable, str(root / "benchmarks" / "bench_checker.py"), "--history",
                 str(path), "--child", "lines" if loader == "before" else loader],
                check=True, capture_output=True, text=True,
                env=os.environ | {"PYTHONPATH": str(root)},
            ).stdout.splitlines()[-1]  # fmt: skip
            run = {"load_cpu": float("nan")} | json.loads(out)
            runs[loader].append(run)
            print(f"round {r + 1} {loader:<8} {_line(run)} lost={run['lost']} "
                  f"recovered={run['recovered']} valid={run['valid']}")  # fmt: skip
    keys = ("load", "load_cpu", "check", "total", "cpu", "rss")
    med = {k: {m: statistics.median(x[m] for x in v) for m in keys} for k, v in runs.items()}
    for k, m in med.items():
        print(f"median  {k:<8} {_line(m)}")
    if before:
        print(f"columnar / before: load {med['columnar']['load'] / med['before']['load']:.2f}, "
              f"total {med['columnar']['total'] / med['before']['total']:.2f}, "
              f"cpu {med['columnar']['cpu'] / med['before']['cpu']:.2f}")  # fmt: skip
    if side:
        print(f"sidecar / lines: total {med['sidecar']['total'] / med['lines']['total']:.2f}, "
              f"cpu {med['sidecar']['cpu'] / med['lines']['cpu']:.2f}")  # fmt: skip
    print(
        f"columnar / lines: load {med['columnar']['load'] / med['lines']['load']:.2f} "
        f"(cpu {med['columnar']['load_cpu'] / med['lines']['load_cpu']:.2f}), "
        f"total {med['columnar']['total'] / med['lines']['total']:.2f}, "
        f"cpu {med['columnar']['cpu'] / med['lines']['cpu']:.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--publishes", type=int, default=1_000_000)
    ap.add_argument("--history", type=Path, help="reuse (or create) this history file")
    ap.add_argument("--no-tracemalloc", action="store_true", help="skip the traced pass")
    ap.add_argument("--rounds", type=int, help="compare the two loaders in fresh processes")
    ap.add_argument("--before", type=Path, help="with --rounds: also that checkout's loader")
    ap.add_argument("--sidecar", action="store_true", help="with --rounds: also the sidecar")
    ap.add_argument("--child", choices=("columnar", "lines", "sidecar"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.history, args.child)

    tmp = tempfile.TemporaryDirectory()
    path = args.history or Path(tmp.name) / "history.jsonl"
    if not path.exists():
        t = time.perf_counter()
        planted = write_history(path, args.publishes)
        print(
            f"wrote {path} ({path.stat().st_size / MIB:.0f} MiB) in "
            f"{time.perf_counter() - t:.1f}s: {planted}"
        )
    if args.rounds:
        return compare(path, args.rounds, args.before, args.sidecar)
    context = {"nodes": list(NODES)}
    rss0 = peak_rss_mib()
    loaded, t_load = timed(lambda: load_history(path, pairs_fs=PAIRS_FS))
    rss_load = peak_rss_mib()
    wellformed, t_wf = timed(lambda: check_wellformed(loaded.ops, context))
    rss_wf = peak_rss_mib()
    result, t_check = timed(
        lambda: check_history(loaded.ops, context, NAMES, "queue", loaded.views)
    )
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
            lambda: check_history(loaded.ops, context, NAMES, "queue", loaded.views)
        )
    print(f"\nbaseline RSS before loading: {rss0:.0f} MiB")
    print(f"{'phase':<15}{'seconds':>9}{'peak RSS MiB':>14}{'traced peak MiB':>17}")
    for name, secs, rss in rows:
        tm = f"{traced[name]:.0f}" if name in traced else "-"
        print(f"{name:<15}{secs:>9.2f}{rss:>14.0f}{tm:>17}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
