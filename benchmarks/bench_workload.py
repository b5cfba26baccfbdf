"""Recorded client throughput vs bare nats-py publishing, same cluster, same run.

Starts one local 3-node cluster (root needed), creates the R3 stream, then
runs two phases of ``--seconds`` each, ``--rounds`` times, in alternating order:

- bare: ``concurrency`` asyncio tasks doing acknowledged ``js.publish`` as fast
  as they can on the same per-node connections, recording nothing;
- recorded: the queue workload through the client interpreter (``Interpreter.run`` with
  ``rate: 0``), writing every op to a real ``history.jsonl``.

Prints acknowledged publishes/s for each and the ratio recorded/bare (the
target is >= 0.8). Usage::

    .venv/bin/python benchmarks/bench_workload.py [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from localcluster import run_on_local_cluster

from harness import servers
from harness.backends.local import LocalCluster
from harness.clients import ClientPool, connect_real
from harness.history import NEMESIS, HistoryWriter
from harness.interpreter import Interpreter
from harness.runner import wait_ready
from harness.scenario import scenario_from_dict
from harness.workloads import WorkloadContext
from harness.workloads.queue import QueueWorkload


async def bare(workload: QueueWorkload, pool: ClientPool, workers: int, seconds: float) -> int:
    """Acknowledged publishes in ``seconds`` with no recording."""
    nodes = workload.cluster.nodes
    deadline = time.monotonic() + seconds
    acked = 0

    async def worker(w: int) -> None:
        nonlocal acked
        client = await pool.get(nodes[w % len(nodes)])
        v = 10**12 + w * 10**9
        while time.monotonic() < deadline:
            v += 1
            try:
                await client.publish(workload.subject, b"%d" % v, 5.0)
                acked += 1
            except Exception:
                pass

    await asyncio.gather(*(worker(w) for w in range(workers)))
    return acked


async def recorded(
    interp: Interpreter, workload: QueueWorkload, workers: int, seconds: float
) -> int:
    """Acknowledged publishes in ``seconds`` through the interpreter, every op recorded."""
    before = interp.counters.ok
    nodes = list(workload.cluster.nodes)
    await interp.run(workload, nodes, workers, 0.0, time.monotonic() + seconds)
    return interp.counters.ok - before


async def main_async(args: argparse.Namespace, cluster: LocalCluster, tmp: Path) -> None:
    await wait_ready(cluster)
    history = HistoryWriter(tmp / "history.jsonl")
    pool = ClientPool(connect_real(cluster.client_url))
    interp = Interpreter(history, pool.get)

    def note(f: str, value: dict) -> None:
        history.append("info", NEMESIS, f, value)

    workload = QueueWorkload(WorkloadContext(cluster.scenario, cluster, pool.get, note))
    await workload.setup()
    workers = cluster.scenario.concurrency
    rows = []
    for r in range(args.rounds):
        if r % 2 == 0:  # alternate the order: the stream grows, so later phases run on more data
            b = await bare(workload, pool, workers, args.seconds)
            rec = await recorded(interp, workload, workers, args.seconds)
        else:
            rec = await recorded(interp, workload, workers, args.seconds)
            b = await bare(workload, pool, workers, args.seconds)
        rows.append((b / args.seconds, rec / args.seconds))
        print(
            f"round {r + 1}: bare {b / args.seconds:8.0f}/s  recorded {rec / args.seconds:8.0f}/s"
        )
    await pool.close()
    history.close()
    bare_rate = sum(b for b, _ in rows) / len(rows)
    rec_rate = sum(r for _, r in rows) / len(rows)
    print(f"history lines: {history.count:,}")
    print(f"mean: bare {bare_rate:.0f} acked/s, recorded {rec_rate:.0f} acked/s, "
          f"ratio {rec_rate / bare_rate:.2f} (target >= 0.8)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=9)
    ap.add_argument("--version", default=servers.DEFAULT_VERSION)
    args = ap.parse_args()
    scenario = scenario_from_dict(
        {"name": "bench", "workload": {"rate": 0, "concurrency": args.concurrency}}, "bench"
    )
    run_on_local_cluster(
        scenario, args.version, lambda cluster, _state, tmp: main_async(args, cluster, tmp)
    )


if __name__ == "__main__":
    main()
