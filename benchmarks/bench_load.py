"""The harness's recorded load against the cluster's capacity, same cluster, same run.

Starts one local 3-node cluster (root needed; R3 file stream, default sync)
and runs three phases of ``--seconds`` each, ``--rounds`` times, the order
rotating every round (the stream is purged before each phase, so none runs
on a bigger store):

- capacity: a bare pipelined nats-py client — ``--processes`` OS processes,
  each with one connection per node and up to ``--bare-window``
  ``publish_async`` un-acked on each — recording nothing;
- harness: the queue workload's main phase as a run does it with
  ``rate: 0`` — ``harness.clientprocs`` client processes, ``--concurrency``
  workers of ``--window`` logical processes each, every op written to a
  history segment, the segments merged into ``history.jsonl`` at the end;
- one-at-a-time: the old path — the interpreter in this process, one op per
  worker at a time (``window`` 1), every op written to ``history.jsonl``.

Each phase counts acknowledged publishes inside its measured window (after
a 0.5 s warm-up; the harness phases count the ``ok`` lines of their
history). Prints each round and the median ratios harness/capacity (target
>= 0.8) and one-at-a-time/capacity. Usage::

    .venv/bin/python benchmarks/bench_load.py [--seconds 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nats

from harness import segments, servers
from harness.backends.local import LocalCluster
from harness.clientprocs import ClientProcesses, plans_for
from harness.clients import ClientPool, connect_real
from harness.history import NEMESIS, HistoryWriter
from harness.interpreter import Counters, Interpreter
from harness.runner import wait_ready
from harness.runstate import RunState, new_tag
from harness.scenario import Scenario, scenario_from_dict
from harness.workloads import WorkloadContext
from harness.workloads.queue import QueueWorkload

WARMUP = 0.5
_OK_TIME = re.compile(rb'"time":(\d+),"type":"ok"')


def acked_in_window(history: Path, t0_ns: int, start: float, seconds: float) -> int:
    """``ok`` lines of ``history`` whose time (ns since ``t0_ns``) lies in the window
    [``start``, ``start + seconds``] (monotonic seconds)."""
    lo = int(start * 1e9) - t0_ns
    hi = lo + int(seconds * 1e9)
    return sum(1 for m in _OK_TIME.finditer(history.read_bytes()) if lo <= int(m[1]) <= hi)


async def bare_child(urls: list[str], subject: str, seconds: float, window: int) -> None:
    """One capacity process: a connection per node, ``window`` publishes in flight on each."""
    conns = [await nats.connect(u, allow_reconnect=False) for u in urls]
    acked = 0
    t_start = time.monotonic() + WARMUP
    t_end = t_start + seconds

    def landed(fut: asyncio.Future) -> None:
        nonlocal acked
        if not fut.cancelled() and fut.exception() is None and t_start <= time.monotonic() <= t_end:
            acked += 1

    async def publisher(i: int, nc: nats.NATS) -> None:
        js = nc.jetstream(publish_async_max_pending=window)
        v = 10**12 + i * 10**9
        while time.monotonic() < t_end:
            v += 1
            fut = await js.publish_async(subject, b"%d" % v)
            fut.add_done_callback(landed)
        await asyncio.wait_for(js.publish_async_completed(), timeout=30)

    await asyncio.gather(*(publisher(i, nc) for i, nc in enumerate(conns)))
    for nc in conns:
        await nc.close()
    print(acked)


async def capacity(args: argparse.Namespace, urls: list[str], subject: str) -> int:
    """Acks within the window of ``--processes`` bare processes together."""
    argv = [__file__, "--bare", json.dumps(urls), subject, str(args.seconds), str(args.bare_window)]
    pipe = asyncio.subprocess.PIPE
    procs = [
        await asyncio.create_subprocess_exec(sys.executable, *argv, stdout=pipe)
        for _ in range(args.processes)
    ]
    outs = await asyncio.gather(*(p.communicate() for p in procs))
    return sum(int(out.split()[-1]) for out, _ in outs)


async def harness(
    args: argparse.Namespace, sc: Scenario, cluster: LocalCluster, state: RunState, d: Path
) -> int:
    """Acks within the window of the main phase through client processes (every op recorded)."""
    d.mkdir()
    history = HistoryWriter(d / "history.jsonl")
    counters = Counters()
    procs = ClientProcesses(args.processes, counters, state, d / segments.SEGMENTS)
    urls = {n: cluster.client_url(n) for n in cluster.nodes}
    plans = plans_for(sc.to_yaml(), urls, list(cluster.nodes), sc.concurrency, args.window,
                      args.processes, d, "bench")  # fmt: skip
    try:
        await procs.spawn()
        await procs.start(plans, 60)
        t0 = time.monotonic()
        await procs.run(history.t0, t0 + WARMUP + args.seconds)
    finally:
        await procs.stop()
    history.absorb(d / segments.SEGMENTS)
    history.close()
    return acked_in_window(d / "history.jsonl", history.t0, t0 + WARMUP, args.seconds)


async def one_at_a_time(
    args: argparse.Namespace, workload: QueueWorkload, pool: ClientPool, d: Path
) -> int:
    """Acks within the window of the interpreter in this process, one op per worker."""
    d.mkdir()
    history = HistoryWriter(d / "history.jsonl")
    interp = Interpreter(history, pool.get)
    nodes = list(workload.cluster.nodes)
    t0 = time.monotonic()
    await interp.run(workload, nodes, args.concurrency, 0.0, t0 + WARMUP + args.seconds)
    history.close()
    return acked_in_window(d / "history.jsonl", history.t0, t0 + WARMUP, args.seconds)


async def main_async(
    args: argparse.Namespace, sc: Scenario, cluster: LocalCluster, state: RunState, tmp: Path
) -> None:
    await wait_ready(cluster)
    pool = ClientPool(connect_real(cluster.client_url))
    notes = HistoryWriter(tmp / "setup.jsonl")

    def note(f: str, value: dict) -> None:
        notes.append("info", NEMESIS, f, value)

    workload = QueueWorkload(WorkloadContext(sc, cluster, pool.get, note))
    await workload.setup()
    nc = await nats.connect(cluster.client_url(cluster.nodes[0]))
    jsm = nc.jsm()
    urls = [cluster.client_url(n) for n in cluster.nodes]
    phases = {
        "capacity": lambda r: capacity(args, urls, workload.subject),
        "harness": lambda r: harness(args, sc, cluster, state, tmp / f"h{r}"),
        "one-at-a-time": lambda r: one_at_a_time(args, workload, pool, tmp / f"o{r}"),
    }
    names = list(phases)
    rows = []
    for r in range(args.rounds):
        got: dict[str, float] = {}
        for name in names[r % 3 :] + names[: r % 3]:
            await jsm.purge_stream(sc.stream.name)
            got[name] = await phases[name](r) / args.seconds
        rows.append(got)
        print(
            f"round {r + 1}: capacity {got['capacity']:7.0f}/s  harness {got['harness']:7.0f}/s"
            f" ({got['harness'] / got['capacity']:.2f})  one-at-a-time "
            f"{got['one-at-a-time']:6.0f}/s ({got['one-at-a-time'] / got['capacity']:.2f})",
            flush=True,
        )
    await nc.close()
    await pool.close()
    notes.close()
    ratio = statistics.median(g["harness"] / g["capacity"] for g in rows)
    old = statistics.median(g["one-at-a-time"] / g["capacity"] for g in rows)
    cap = statistics.median(g["capacity"] for g in rows)
    print(f"median: capacity {cap:.0f} acked/s; harness/capacity {ratio:.2f} (target >= 0.8); "
          f"one-at-a-time/capacity {old:.2f}")  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        urls, subject, seconds, window = sys.argv[2:6]
        asyncio.run(bare_child(json.loads(urls), subject, float(seconds), int(window)))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=9, help="harness workers")
    ap.add_argument("--window", type=int, default=128, help="logical processes per worker")
    ap.add_argument("--processes", type=int, default=2, help="client processes (both sides)")
    ap.add_argument("--bare-window", type=int, default=256, help="in flight per connection")
    ap.add_argument("--version", default=servers.DEFAULT_VERSION)
    args = ap.parse_args()
    sc = scenario_from_dict(
        {"name": "bench", "workload": {"rate": 0, "concurrency": args.concurrency}}, "bench"
    )
    state = RunState(new_tag())
    state.save()
    tmp = Path(tempfile.mkdtemp(prefix="nc-bench-load-"))
    cluster = LocalCluster(sc, servers.resolve_binary(args.version), tmp / "nodes", state)
    try:
        cluster.start()
        asyncio.run(main_async(args, sc, cluster, state, tmp))
    finally:
        cluster.stop()
        state.remove()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
