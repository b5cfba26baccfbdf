"""Benchmark the batch checker on a synthetic history of a million ops.

In: ``--ops N`` (history lines of batch ops, half invokes and half
completions; default 1,000,000), ``--max-batch K`` (sizes 2 … K, default 5),
optionally ``--history PATH`` to write (or reuse) the file. Batches are
invoked in rounds of 10 processes and then completed; 1 % end ``info``
(half of them stored; the process is retired), 1 % ``fail`` (not stored),
the rest ``ok`` with the commit's seq and count. The three final reads hold
every stored batch in stream order, except that n3 lacks the last message
of the first committed batch (a planted partial batch).

Out: the time of (a) ``load_history`` with the workload's ``pairs_fs``,
(b) ``check_batch`` alone and (c) ``check_history`` with what a batch run
composes but the server logs (``wellformed``, ``stats``, ``batch``), the
peak RSS after each, and a check that exactly the planted anomaly was found.

Run: ``.venv/bin/python benchmarks/bench_batch.py --ops 1000000``
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

from checkers.batch import check_batch  # noqa: E402
from checkers.compose import check_history  # noqa: E402
from harness.history import load_history  # noqa: E402

PAIRS_FS: frozenset[str] = frozenset()  # harness.workloads.REGISTRY["batch"].pairs_fs
NAMES = ("wellformed", "stats", "batch")
NODES = ["n1", "n2", "n3"]
CONCURRENCY = 10


def write_history(path: Path, ops: int, max_batch: int, seed: int = 1) -> None:
    """A well-formed batch history of ``ops`` batch lines, plus 3 final reads."""
    rng = np.random.default_rng(seed)
    m = ops // 2
    sizes = rng.integers(2, max_batch + 1, m)
    fate = rng.random(m)  # < .01 info (stored when < .005), < .02 fail, else ok
    stored = (fate < 0.005) | (fate >= 0.02)
    procs = list(range(CONCURRENCY))
    next_proc = CONCURRENCY
    seq, value, index, lines = 0, 0, 0, []
    rows: list[list[int]] = []
    planted: int | None = None  # the first committed batch's last row

    def line(rec: dict[str, Any]) -> None:
        nonlocal index
        rec["index"] = index
        rec["time"] = index * 1000
        index += 1
        lines.append(orjson.dumps(rec))

    for start in range(0, m, CONCURRENCY):
        batch = range(start, min(start + CONCURRENCY, m))
        values = {}
        for slot, i in enumerate(batch):
            values[i] = list(range(value, value + int(sizes[i])))
            value += int(sizes[i])
            line({"type": "invoke", "process": procs[slot], "f": "batch",
                  "value": [i + 1, values[i]]})  # fmt: skip
        for slot, i in enumerate(batch):
            rec: dict[str, Any] = {
                "process": procs[slot],
                "f": "batch",
                "value": [i + 1, values[i]],
            }
            if stored[i]:
                rows += [[seq + p, i + 1, p, v] for p, v in enumerate(values[i], 1)]
                seq += len(values[i])
            if fate[i] < 0.01:
                rec.update(type="info", error="timeout")
                procs[slot], next_proc = next_proc, next_proc + 1
            elif fate[i] < 0.02:
                rec.update(type="fail", error="api-error 10176: atomic publish batch is incomplete")
            else:
                rec.update(type="ok", seq=seq, count=len(values[i]))
                planted = len(rows) - 1 if planted is None else planted
            line(rec)
        if len(lines) >= 100_000:
            with path.open("ab") as f:
                f.write(b"\n".join(lines) + b"\n")
            lines = []
    for j, node in enumerate(NODES):
        held = rows if node != "n3" else rows[:planted] + rows[planted + 1 :]
        line({"type": "invoke", "process": 10**6 + j, "f": "read", "value": None, "node": node})
        line({"type": "ok", "process": 10**6 + j, "f": "read", "value": held, "node": node,
              "routes": 0})  # fmt: skip
    with path.open("ab") as f:
        f.write(b"\n".join(lines) + b"\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", type=int, default=1_000_000)
    ap.add_argument("--max-batch", type=int, default=5)
    ap.add_argument("--history", type=Path)
    args = ap.parse_args()
    path = args.history or Path(tempfile.mkdtemp()) / "history.jsonl"
    if not path.exists():
        t = time.perf_counter()
        write_history(path, args.ops, args.max_batch)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.0f} MiB) in "
              f"{time.perf_counter() - t:.1f}s")  # fmt: skip
    loaded, t_load = timed(lambda: load_history(path, PAIRS_FS))
    ops = loaded.ops
    rss_load = peak_rss_mib()
    ctx = {"nodes": NODES}
    alone, t_check = timed(lambda: check_batch(ops, ctx))
    rss_check = peak_rss_mib()
    composed, t_all = timed(lambda: check_history(ops, ctx, NAMES, "batch"))
    rss_all = peak_rss_mib()
    print(f"ops: {len(ops):,}  batches: {alone['batch_count']:,}  "
          f"messages: {alone['message_count']:,}")  # fmt: skip
    print("| phase | seconds | peak RSS (MiB) |\n|---|---:|---:|")
    print(f"| load_history | {t_load:.2f} | {rss_load:.0f} |")
    print(f"| check_batch | {t_check:.2f} | {rss_check:.0f} |")
    print(f"| check_history ({', '.join(NAMES)}) | {t_all:.2f} | {rss_all:.0f} |")
    found = (alone["anomalies"], alone["partial_count"], alone["recovered_count"])
    assert found[:2] == (["partial-batch"], 1), found
    assert alone["per_node"]["n3"]["partial_count"] == 1, alone["per_node"]["n3"]
    assert composed["checkers"]["batch"]["valid"] is False
    print(f"verdict: {composed['checkers']['batch']['summary']['headline']}")


if __name__ == "__main__":
    main()
