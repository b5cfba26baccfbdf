"""What a user waits for: ``nats-chaos check`` and ``report`` of a big run, end to end.

In: ``--history PATH`` (a queue-workload history; made with
``synth_history.write_history`` when missing, ``--publishes`` of them, with
kill windows so the report has fault bands) and ``--rounds N``.
Out: per round and command, the wall seconds, CPU seconds and peak RSS of
one fresh ``python -m harness.cli`` process (``os.wait4``'s rusage, so
interpreter start and imports count), once with the history's columnar
sidecar (``harness.sidecar``) beside it and once without, alternated; then
the medians and the ratio.

- ``check``: ``nats-chaos check RUN/history.jsonl`` — load + every checker
  of the queue workload + the verdict line;
- ``report``: ``nats-chaos report RUN`` — load + plots, ``report.html``
  and ``summary.md`` from the folder's ``results.json`` (no re-check).

The folder ``RUN`` is a copy of the history in a temp dir, with a
``results.json`` written once by ``check --report RUN`` before timing.

Run: ``.venv/bin/python benchmarks/bench_check_cli.py --history /tmp/hr1m.jsonl --rounds 3``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]

from synth_history import write_history  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> dict[str, float]:
    """One fresh ``python -m harness.cli ARGS``: wall, CPU seconds and peak RSS (MiB)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    os.sync()  # the bench's own copies and sidecars are written back before, not during
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # 1: the history's verdict is INVALID (planted lost writes)
        raise SystemExit(f"{args}: exit {code}: {err.decode()[-500:]}")
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss": ru.ru_maxrss / 1024}


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(x[k] for x in runs) for k in ("wall", "cpu", "rss")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--history", type=Path, required=True, help="reuse (or create) this file")
    ap.add_argument("--publishes", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not args.history.exists():
        planted = write_history(args.history, args.publishes, faults=4)
        print(f"wrote {args.history}: {planted}")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        run.mkdir()
        history = run / "history.jsonl"
        shutil.copyfile(args.history, history)
        side = history.with_name("history.columns")
        cli("check", str(history), "--report", str(run))  # results.json for `report`
        print(f"{history.stat().st_size / 2**20:.0f} MiB history; rounds: {args.rounds}")
        runs: dict[tuple[str, str], list[dict[str, float]]] = {}
        for r in range(args.rounds):
            for source in ("sidecar", "jsonl") if r % 2 == 0 else ("jsonl", "sidecar"):
                for command in ("check", "report"):
                    if source == "jsonl":
                        side.unlink(missing_ok=True)
                    elif not side.exists():
                        cli("report", str(run))  # `report` writes the sidecar it did not find
                    m = cli(
                        *(("check", str(history)) if command == "check" else ("report", str(run)))
                    )
                    runs.setdefault((command, source), []).append(m)
                    print(f"round {r + 1} {command:<6} {source:<7} wall {m['wall']:6.2f}s "
                          f"cpu {m['cpu']:6.2f}s rss {m['rss']:5.0f} MiB")  # fmt: skip
        for command in ("check", "report"):
            med = {s: _medians(runs[command, s]) for s in ("sidecar", "jsonl")}
            for s, m in med.items():
                print(f"median {command:<6} {s:<7} wall {m['wall']:6.2f}s cpu {m['cpu']:6.2f}s "
                      f"rss {m['rss']:5.0f} MiB")  # fmt: skip
            ratio = med["sidecar"]["wall"] / med["jsonl"]["wall"]
            print(f"{command}: sidecar / jsonl wall {ratio:.2f}")


if __name__ == "__main__":
    main()
