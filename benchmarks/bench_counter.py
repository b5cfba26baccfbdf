"""Benchmark the counter checker on a synthetic history of a million ops.

In: ``--ops N`` (history lines of increments, half invokes and half
completions; default 1,000,000), ``--keys K`` (default 10), optionally
``--history PATH`` to write (or reuse) the file. The history has
``concurrency`` 10: increments are invoked in rounds of 10 processes and
then completed, totals follow that order; 1 % end ``info`` (half of them
applied; the process is retired), 1 % ``fail``; the final reads of n1 and n2
hold every counter's total and n3's counter 0 is 7 short of the sum of its
acknowledged increments (a planted lost increment).

Out: the time of (a) ``load_history`` with the workload's ``pairs_fs``,
(b) ``check_counter`` alone and (c) ``check_history`` with what a counter
run composes but the server logs (``wellformed``, ``stats``, ``counter``),
the peak RSS after each, and a check that exactly the planted anomaly was
found.

Run: ``.venv/bin/python benchmarks/bench_counter.py --ops 1000000``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]

from measure import peak_rss_mib, timed  # noqa: E402

from checkers.compose import check_history  # noqa: E402
from checkers.counter import check_counter  # noqa: E402
from harness.history import load_history  # noqa: E402

PAIRS_FS = frozenset({"read"})  # harness.workloads.REGISTRY["counter"].pairs_fs
NAMES = ("wellformed", "stats", "counter")
NODES = ["n1", "n2", "n3"]
CONCURRENCY = 10


def write_history(path: Path, ops: int, keys: int, seed: int = 1) -> None:
    """A well-formed counter history of ``ops`` increment lines, plus 3 final reads."""
    rng = np.random.default_rng(seed)
    m = ops // 2
    key = rng.integers(0, keys, m)
    n = rng.integers(1, 101, m)
    fate = rng.random(m)  # < .01 info (applied when < .005), < .02 fail, else ok
    applied = (fate < 0.005) | (fate >= 0.02)
    totals = np.zeros(keys, dtype=np.int64)
    acked = np.zeros(keys, dtype=np.int64)
    procs = list(range(CONCURRENCY))
    next_proc = CONCURRENCY
    seq, index, lines = 0, 0, []

    def line(rec: dict[str, Any]) -> None:
        nonlocal index
        rec["index"] = index
        rec["time"] = index * 1000
        index += 1
        lines.append(orjson.dumps(rec))

    for start in range(0, m, CONCURRENCY):
        batch = range(start, min(start + CONCURRENCY, m))
        for slot, i in enumerate(batch):
            value = [int(key[i]), int(n[i])]
            line({"type": "invoke", "process": procs[slot], "f": "incr", "value": value})
        for slot, i in enumerate(batch):
            value = [int(key[i]), int(n[i])]
            rec: dict[str, Any] = {"process": procs[slot], "f": "incr", "value": value}
            if applied[i]:
                totals[key[i]] += n[i]
                seq += 1
            if fate[i] < 0.01:
                rec.update(type="info", error="timeout")
                procs[slot], next_proc = next_proc, next_proc + 1
            elif fate[i] < 0.02:
                rec.update(type="fail", error="no-responders")
            else:
                rec.update(type="ok", total=int(totals[key[i]]), seq=seq)
                acked[key[i]] += n[i]
            line(rec)
        if len(lines) >= 100_000:
            with path.open("ab") as f:
                f.write(b"\n".join(lines) + b"\n")
            lines = []
    for j, node in enumerate(NODES):
        held = totals.copy()
        if node == "n3":
            held[0] = acked[0] - 7
        pairs = [[k, int(v)] for k, v in enumerate(held)]
        line({"type": "invoke", "process": 10**6 + j, "f": "read", "value": None, "node": node})
        line({"type": "ok", "process": 10**6 + j, "f": "read", "value": pairs, "node": node})
    with path.open("ab") as f:
        f.write(b"\n".join(lines) + b"\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", type=int, default=1_000_000)
    ap.add_argument("--keys", type=int, default=10)
    ap.add_argument("--history", type=Path)
    args = ap.parse_args()
    path = args.history or Path(tempfile.mkdtemp()) / "history.jsonl"
    if not path.exists():
        t = time.perf_counter()
        write_history(path, args.ops, args.keys)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.0f} MiB) in "
              f"{time.perf_counter() - t:.1f}s")  # fmt: skip
    loaded, t_load = timed(lambda: load_history(path, PAIRS_FS))
    ops = loaded.ops
    rss_load = peak_rss_mib()
    ctx = {"nodes": NODES}
    alone, t_check = timed(lambda: check_counter(ops, ctx))
    rss_check = peak_rss_mib()
    composed, t_all = timed(lambda: check_history(ops, ctx, NAMES, "counter"))
    rss_all = peak_rss_mib()
    print(f"ops: {len(ops):,}  keys: {args.keys}  increments: {alone['attempt_count']:,}")
    print("| phase | seconds | peak RSS (MiB) |\n|---|---:|---:|")
    print(f"| load_history | {t_load:.2f} | {rss_load:.0f} |")
    print(f"| check_counter | {t_check:.2f} | {rss_check:.0f} |")
    print(f"| check_history ({', '.join(NAMES)}) | {t_all:.2f} | {rss_all:.0f} |")
    found = (alone["anomalies"], alone["lost_increment_count"], alone["lost_amount"])
    assert found == (["lost-increment", "divergence"], 1, 7), found
    assert composed["checkers"]["counter"]["valid"] is False
    print(f"verdict: {composed['checkers']['counter']['summary']['headline']}")


if __name__ == "__main__":
    main()
