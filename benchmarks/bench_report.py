"""How long the report of a big history takes, and how big ``report.html`` gets.

In: a publish count (default 1,000,000), lost values to plant, and a seed;
or an existing ``--history``. The synthetic history comes from
``benchmarks/synth_history.py`` (concurrent publishes, ~1 % fail, 0.5 %
info, three full final reads) with four kill windows among the publishes,
so the plots have fault bands to shade. Out: seconds to load the history, check it and
write the report (``summary.md``, ``plots/*.png``, ``report.html``), the
HTML size, and a check that the report counts what was planted (thinning
the drawn points must never change a count).

Run: ``.venv/bin/python benchmarks/bench_report.py --publishes 1000000``
(``--line-by-line``: load without the typed-column path, as before it, for a
before/after in the same session).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import peak_rss_mib
from synth_history import write_history

from harness import history as loader
from harness.resultfolder import write_all
from harness.results import check_loaded, load

LIMIT_S, LIMIT_MB = 20.0, 10.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--publishes", type=int, default=1_000_000)
    ap.add_argument("--lost", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--history", type=Path, help="Use this history instead of a synthetic one.")
    ap.add_argument(
        "--out", type=Path, help="Write the report here and delete the synthetic history after."
    )
    ap.add_argument("--line-by-line", action="store_true", help="no typed-column loader")
    args = ap.parse_args()
    if args.line_by_line:
        loader.COLUMNAR_FROM = 1 << 62

    tmp = Path(tempfile.mkdtemp(prefix="bench-report-"))
    out = args.out or tmp / "run"
    history = args.history
    planted = None
    if history is None:
        history = tmp / "history.jsonl"
        t = time.perf_counter()
        planted = write_history(history, args.publishes, lost=args.lost, seed=args.seed, faults=4)
        print(f"synthetic history: {history.stat().st_size / 2**20:,.0f} MiB "
              f"in {time.perf_counter() - t:.1f}s ({planted})")  # fmt: skip

    t0 = time.perf_counter()
    loaded = load(history, "queue")
    t1 = time.perf_counter()
    result = check_loaded(loaded, None)
    t2 = time.perf_counter()
    report = write_all(out, result, loaded.ops, None, history=history)
    t3 = time.perf_counter()

    q = result["checkers"]["queue"]
    assert result["checkers"]["wellformed"]["valid"] is True, result["checkers"]["wellformed"]
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
    print(f"all three      {t3 - t0:6.1f} s   peak RSS {peak_rss_mib():.0f} MiB")
    print(f"report.html    {html_mb:6.2f} MiB limit {LIMIT_MB:.0f} MB")
    print("plots:", ", ".join(f"{k} {v / 1024:,.0f} KiB" for k, v in pngs.items()))
    print(f"report: {report}")
    if args.out is not None:  # the report stays; the synthetic history is big and goes
        shutil.rmtree(tmp, ignore_errors=True)
    ok = (t3 - t2) <= LIMIT_S and report.stat().st_size <= LIMIT_MB * 1e6
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
