"""How long ``nats-chaos --version`` takes to start, beside a bare interpreter.

In: ``--rounds N`` and optionally ``--before DIR``, another checkout of the
project (e.g. the main branch) to time in the same rounds. Out: per command,
the median [min–max] wall time of ``python -m harness.cli --version`` (each
with ``PYTHONPATH`` set to its checkout) and of ``python -c pass`` (the
interpreter's own start, the floor), alternated within each round so a
loaded host slows all alike.

Run: ``.venv/bin/python benchmarks/bench_start.py --rounds 15 --before /work/main``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def once(argv: list[str], pythonpath: Path) -> float:
    """Wall seconds of one run of ``argv`` with ``PYTHONPATH=pythonpath``."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    t = time.perf_counter()
    subprocess.run(argv, env=env, cwd=pythonpath, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--before", type=Path, help="another checkout to time beside this one")
    args = ap.parse_args()
    version = [sys.executable, "-m", "harness.cli", "--version"]
    cases = {"python -c pass": ([sys.executable, "-c", "pass"], HERE)}
    if args.before:
        cases["--version (before)"] = (version, args.before.resolve())
    cases["--version"] = (version, HERE)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, (argv, path) in cases.items():
            times[name].append(once(argv, path))
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<22} {med:6.3f} s  [{min(ts):.3f}–{max(ts):.3f}]  over {len(ts)} rounds")


if __name__ == "__main__":
    main()
