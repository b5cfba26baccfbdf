"""Benchmark the linearizability checker on a simulated linearizable history.

In: ``--ops`` (100,000), ``--keys`` (100), ``--workers`` (10 concurrent
processes), ``--info`` (share of unknown outcomes, 1 %), ``--model``
(cas-register) and a seed. The history comes from
``benchmarks/synth_linear.py`` (linearizable by construction), written as
JSONL by a child process (so its memory is not counted here) and loaded
with ``load_history`` like a run's. Out: the time of the load and of
``check_linear`` (target ≤ 10 s), the search steps, and this process's
peak RSS after loading and after checking (target ≤ 1 GiB); exits 1 if
the verdict is not valid.

Run: ``.venv/bin/python benchmarks/bench_linear.py``
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]

from measure import peak_rss_mib  # noqa: E402
from synth_linear import MIXES  # noqa: E402

from checkers.linear import check_linear  # noqa: E402
from harness.history import load_history  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="cas-register", choices=sorted(MIXES))
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--workers", type=int, default=10)
    ap.add_argument("--info", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.jsonl"
        t = time.perf_counter()
        synth = [sys.executable, str(Path(__file__).parent / "synth_linear.py"), "--out", str(path)]
        for k in ("model", "ops", "keys", "workers", "info", "seed"):
            synth += [f"--{k}", str(getattr(a, k))]
        subprocess.run(synth, check=True)
        print(f"simulated {a.ops:,} {a.model} ops in {time.perf_counter() - t:.1f}s")
        gc.collect()
        t = time.perf_counter()
        ops = load_history(path).ops
        load_s = time.perf_counter() - t
    gc.collect()
    rss_before = peak_rss_mib()
    t = time.perf_counter()
    r = check_linear(ops, {}, a.model)
    check_s = time.perf_counter() - t
    print(f"load_history  {load_s:6.2f} s  ({len(ops):,} lines)")
    print(
        f"check_linear  {check_s:6.2f} s  valid={r['valid']}  keys={r['key_count']}  "
        f"ops={r['op_count']:,}  info={r['info_count']:,}  failed={r['fail_count']:,}  "
        f"steps={r['steps']:,}"
    )
    print(f"peak RSS      {peak_rss_mib():6.0f} MiB (after loading: {rss_before:.0f} MiB)")
    sys.exit(0 if r["valid"] is True else 1)


if __name__ == "__main__":
    main()
