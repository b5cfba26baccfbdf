"""How long the report of a big history takes, and how big ``report.html`` gets.

In: a publish count (default 1,000,000), lost values to plant, and a seed;
or an existing ``--history``. The synthetic history comes from
``benchmarks/synth_history.py`` (concurrent publishes, ~1 % fail, 0.5 %
info, three full final reads); a few kill windows are appended so the plots
have fault bands to shade. Out: seconds to load the history, check it and
write the report (``summary.md``, ``plots/*.png``, ``report.html``), the
HTML size, and a check that the report counts what was planted (thinning
the drawn points must never change a count).

Run: ``.venv/bin/python benchmarks/bench_report.py --publishes 1000000``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth_history import write_history

from checkers.report.folder import write_all
from harness.history import load_history
from harness.results import check_loaded

LIMIT_S, LIMIT_MB = 20.0, 10.0


def add_faults(path: Path, windows: int = 4) -> None:
    """Append kill start/stop pairs spread over the publishing.

    They land after the final reads in file order; no checker or plot relies on
    the file being in time order.
    """
    last_line = b""
    with path.open("rb") as fh:
        for line in fh:
            if b'"publish"' in line:
                last_line = line  # publishes are written in time order
    last = orjson.loads(last_line)["time"]
    with path.open("ab") as fh:
        index = 10**9
        for i in range(windows):
            start = last * (2 * i + 1) // (2 * windows + 1)
            nodes = [f"n{i % 3 + 1}"]
            for t, value in (
                (start, {"start": "kill", "nodes": nodes}),
                (start + last // 20, {"stop": "kill", "nodes": nodes}),
            ):
                rec = {"index": index, "time": t, "type": "info", "process": "nemesis"}
                fh.write(orjson.dumps({**rec, "f": "kill", "value": value}) + b"\n")
                index += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--publishes", type=int, default=1_000_000)
    ap.add_argument("--lost", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--history", type=Path, help="Use this history instead of a synthetic one.")
    ap.add_argument(
        "--out", type=Path, help="Write the report here and delete the synthetic history after."
    )
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-report-"))
    out = args.out or tmp / "run"
    history = args.history
    planted = None
    if history is None:
        history = tmp / "history.jsonl"
        t = time.perf_counter()
        planted = write_history(history, args.publishes, lost=args.lost, seed=args.seed)
        add_faults(history)
        print(f"synthetic history: {history.stat().st_size / 2**20:,.0f} MiB "
              f"in {time.perf_counter() - t:.1f}s ({planted})")  # fmt: skip

    t0 = time.perf_counter()
    loaded = load_history(history)
    t1 = time.perf_counter()
    result = check_loaded(loaded, None)
    t2 = time.perf_counter()
    report = write_all(out, result, loaded.ops, None, None, history=history)
    t3 = time.perf_counter()

    q = result["checkers"]["queue"]
    if planted is not None:
        assert q["lost_count"] == planted.lost, (q["lost_count"], planted.lost)
        assert q["acknowledged_count"] == planted.acknowledged
    html_mb = report.stat().st_size / 2**20
    pngs = {p.name: p.stat().st_size for p in sorted((out / "plots").glob("*.png"))}
    print(f"ops: {len(loaded.ops):,}  acknowledged: {q['acknowledged_count']:,}  "
          f"lost: {q['lost_count']:,}")  # fmt: skip
    print(f"load history   {t1 - t0:6.1f} s")
    print(f"check          {t2 - t1:6.1f} s")
    print(f"report (write) {t3 - t2:6.1f} s   limit {LIMIT_S:.0f} s")
    print(f"report.html    {html_mb:6.2f} MiB limit {LIMIT_MB:.0f} MB")
    print("plots:", ", ".join(f"{k} {v / 1024:,.0f} KiB" for k, v in pngs.items()))
    print(f"report: {report}")
    if args.out is not None:  # the report stays; the synthetic history is big and goes
        shutil.rmtree(tmp, ignore_errors=True)
    ok = (t3 - t2) <= LIMIT_S and report.stat().st_size <= LIMIT_MB * 1e6
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
