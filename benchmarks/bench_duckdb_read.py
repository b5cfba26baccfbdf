"""Where the typed-column loader's time goes: its DuckDB read of a history's prefix, beside
DuckDB's own floor on the same bytes.

In: ``--history FILE`` (a JSONL history big enough for the typed-column path, e.g. one
from ``synth_history.py --publishes 1000000``) and ``--rounds N``. Out: per case, the
median [min–max] wall seconds and the median CPU seconds of its process (all its
threads), both from after the imports. Each case runs
in a child process of its own, alternated within each round, so a loaded host slows all
alike:

- ``loader``: the loader's whole typed-column read (``history_columns.open_prefix``):
  DuckDB fed by a pipe while a thread counts the marks, then the fetch, the proof and the
  build of the column piece;
- ``pipe``: DuckDB alone running the loader's query (``_Load._create_sql``) on the
  prefix from a pipe, nothing counted;
- ``file``: the same query on a copy of the prefix in a regular file (the copy's time
  included), which DuckDB reads with all its threads;
- ``ints``: only the integer fields (``index``, ``time``, ``process``, ``value`` and the
  integer extras), from that copy: the floor of DuckDB's JSON parse.

Run: ``.venv/bin/python benchmarks/bench_duckdb_read.py --history /tmp/h1m.jsonl --rounds 3``
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

CASES = ("loader", "pipe", "file", "ints")
PAIRS_FS = frozenset({"read"})  # the queue workload's


def _split(path: Path) -> int:
    """Where the loader's typed-column prefix ends in ``path``."""
    from harness import history

    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        return history._tail_start(buf, len(buf))


def _ints_query(source: str, typed: list[str]) -> str:
    columns = ", ".join(f"{k}: 'BIGINT'" for k in typed)
    return (
        f"CREATE TEMP TABLE h AS SELECT * FROM read_json('{source}', "
        f"format='newline_delimited', ignore_errors=true, columns={{{columns}}})"
    )


def _copy(path: Path, split: int) -> int:
    """An unnamed regular file beside ``path`` holding its first ``split`` bytes."""
    fd = os.open(path.parent, os.O_TMPFILE | os.O_RDWR)
    with path.open("rb") as src:
        done = 0
        while done < split:
            done += os.copy_file_range(src.fileno(), fd, split - done, done, done)
    return fd


def _feed(path: Path, split: int, wfd: int) -> None:
    from harness import history

    with path.open("rb", buffering=0) as fh:
        pos = 0
        while pos < split:
            data = os.pread(fh.fileno(), min(8 << 20, split - pos), pos)
            pos += len(data)
            history._write_all(wfd, data)
    os.close(wfd)


def child(case: str, path: Path) -> dict[str, float]:
    """One case, timed from after the imports."""
    from harness import history, history_columns

    split = _split(path)
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        extras = history._head_extras(path, buf, len(buf), PAIRS_FS)
    load = history_columns.open_prefix(path, split, extras or {}, PAIRS_FS)
    assert load is not None, "not a history the typed-column path reads"
    started, cpu = time.perf_counter(), time.process_time()
    if case == "loader":
        assert load.result() is not None, "handed back to the line-by-line parse"
    elif case == "pipe":
        rfd, wfd = os.pipe()
        feeder = threading.Thread(target=_feed, args=(path, split, wfd))
        feeder.start()
        load.con.execute(load._create_sql(f"/dev/fd/{rfd}"))
        feeder.join()
    else:
        source = f"/proc/self/fd/{_copy(path, split)}"
        if case == "file":
            load.con.execute(load._create_sql(source))
        else:
            load.con.execute(_ints_query(source, load.typed))
    return {"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--history", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.history)))
        return
    runs: dict[str, list[dict[str, float]]] = {case: [] for case in CASES}
    for _ in range(args.rounds):
        for case in CASES:
            argv = [sys.executable, __file__, "--history", str(args.history), "--child", case]
            out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
            runs[case].append(json.loads(out.splitlines()[-1]))
    print(f"{'case':8} {'wall s, median [min-max]':>26} {'cpu s':>7}")
    for case, got in runs.items():
        wall = [g["wall"] for g in got]
        cpu = statistics.median(g["cpu"] for g in got)
        span = f"{statistics.median(wall):.2f} [{min(wall):.2f}-{max(wall):.2f}]"
        print(f"{case:8} {span:>26} {cpu:7.2f}")


if __name__ == "__main__":
    main()
