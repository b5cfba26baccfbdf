"""The harness's recorded load against the cluster's capacity, same cluster, same run.

Starts one local 3-node cluster (root needed; R3 file stream, default sync)
and runs four phases of ``--seconds`` each, ``--rounds`` times, the order
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
  worker at a time (``window`` 1), every op written to ``history.jsonl``;
- lean bare: as capacity, but over the harness's own pipelined publish
  (``NatsPyClient.publish_async``, leaner than nats-py's) — what the
  harness's client could do if it recorded nothing.

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
import statistics
import sys
import time
from pathlib import Path

import nats
from loadgen import acked_within, quiet
from localcluster import run_on_local_cluster

from harness import segments, servers
from harness.backends.local import LocalCluster
from harness.clientprocs import ClientProcesses, plans_for
from harness.clients import ClientPool, NatsPyClient, connect, connect_real
from harness.history import NEMESIS, HistoryWriter
from harness.interpreter import Counters, Interpreter
from harness.runner import wait_ready
from harness.runstate import RunState
from harness.scenario import Scenario, scenario_from_dict
from harness.workloads import WorkloadContext
from harness.workloads.queue import QueueWorkload

WARMUP = 0.5  # as loadgen.acked_within's
_OK_TIME = re.compile(rb'"time":(\d+),"type":"ok"')


def acked_in_window(history: Path, t0_ns: int, start: float, seconds: float) -> int:
    """``ok`` lines of ``history`` whose time (ns since ``t0_ns``) lies in the window
    [``start``, ``start + seconds``] (monotonic seconds)."""
    lo = int(start * 1e9) - t0_ns
    hi = lo + int(seconds * 1e9)
    return sum(1 for m in _OK_TIME.finditer(history.read_bytes()) if lo <= int(m[1]) <= hi)


async def bare_child(urls: list[str], seconds: float, window: int) -> None:
    """One capacity process: a connection per node, ``window`` publishes in flight on each
    (``loadgen.acked_within``, to ``bench.<i>``: the benchmark's stream takes ``bench.>``)."""
    conns = [await nats.connect(u, allow_reconnect=False, error_cb=quiet) for u in urls]
    print(await acked_within(conns, seconds, window, b"%d" % 10**6))


async def lean_child(urls: list[str], seconds: float, window: int) -> None:
    """As ``bare_child``, over the harness's own pipelined publish
    (``NatsPyClient.publish_async``), recording nothing."""
    conns = [NatsPyClient(await connect(u, "bench")) for u in urls]
    acked = 0
    t_start = time.monotonic() + WARMUP
    t_end = t_start + seconds

    async def publisher(i: int, client: NatsPyClient) -> None:
        room = asyncio.Semaphore(window)

        def landed(fut: asyncio.Future) -> None:
            nonlocal acked
            room.release()
            if not fut.cancelled() and fut.exception() is None:
                acked += t_start <= time.monotonic() <= t_end

        while time.monotonic() < t_end:
            await room.acquire()
            fut = await client.publish_async(f"bench.{i}", b"%d" % 10**6)
            fut.add_done_callback(landed)
        for _ in range(window):  # every ack in
            await asyncio.wait_for(room.acquire(), 30)

    await asyncio.gather(*(publisher(i, c) for i, c in enumerate(conns)))
    for c in conns:
        await c.close()
    print(acked)


async def capacity(args: argparse.Namespace, urls: list[str], how: str = "--bare") -> int:
    """Acks within the window of ``--processes`` bare processes together."""
    argv = [__file__, how, json.dumps(urls), str(args.seconds), str(args.bare_window)]
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
    """The rounds, on the cluster ``run_on_local_cluster`` started."""
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
        "capacity": lambda r: capacity(args, urls),
        "lean": lambda r: capacity(args, urls, "--lean"),
        "harness": lambda r: harness(args, sc, cluster, state, tmp / f"h{r}"),
        "one-at-a-time": lambda r: one_at_a_time(args, workload, pool, tmp / f"o{r}"),
    }
    names = list(phases)
    rows = []
    for r in range(args.rounds):
        got: dict[str, float] = {}
        for name in names[r % len(names) :] + names[: r % len(names)]:
            await jsm.purge_stream(sc.stream.name)
            got[name] = await phases[name](r) / args.seconds
        rows.append(got)
        cap = got["capacity"]
        print(
            f"round {r + 1}: capacity {cap:7.0f}/s  harness {got['harness']:7.0f}/s "
            f"({got['harness'] / cap:.2f})  one-at-a-time {got['one-at-a-time']:6.0f}/s "
            f"({got['one-at-a-time'] / cap:.2f})  lean bare {got['lean']:7.0f}/s "
            f"(harness/lean {got['harness'] / got['lean']:.2f})",
            flush=True,
        )
    await nc.close()
    await pool.close()
    notes.close()
    ratio = statistics.median(g["harness"] / g["capacity"] for g in rows)
    old = statistics.median(g["one-at-a-time"] / g["capacity"] for g in rows)
    cap = statistics.median(g["capacity"] for g in rows)
    lean = statistics.median(g["harness"] / g["lean"] for g in rows)
    print(f"median: capacity {cap:.0f} acked/s; harness/capacity {ratio:.2f} (target >= 0.8); "
          f"one-at-a-time/capacity {old:.2f}; harness/lean bare {lean:.2f}")  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("--bare", "--lean"):
        child = bare_child if sys.argv[1] == "--bare" else lean_child
        urls, seconds, window = sys.argv[2:5]
        asyncio.run(child(json.loads(urls), float(seconds), int(window)))
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
    workload = {"rate": 0, "concurrency": args.concurrency}
    sc = scenario_from_dict({"name": "bench", "stream": {"name": "bench"}, "workload": workload},
                            "bench")  # fmt: skip
    run_on_local_cluster(
        sc, args.version, lambda cluster, state, tmp: main_async(args, sc, cluster, state, tmp)
    )


if __name__ == "__main__":
    main()
