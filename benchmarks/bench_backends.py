"""Local vs Docker vs ssh backend: cluster-ready time and acknowledged publish throughput.

In: rounds, measured seconds, publishers and window, nodes and sync mode.
Out: one line per measurement, then per backend the median, min and max of

- ``ready_s``: ``cluster.start()`` until every node reports a JetStream meta
  leader (``harness.runner.wait_ready``) — namespaces or network, configs,
  processes or containers, cluster formation;
- ``stream_s``: creating an R3 file stream (retried while the cluster
  settles) until it has a leader on every replica;
- ``acked_per_s``: acknowledged publishes per second, ``--publishers``
  asyncio publishers spread over the nodes (one connection each, up to
  ``--window`` un-acked ``publish_async`` in flight, 128 B payloads);
- ``stop_s``: ``cluster.stop()`` (every resource released).

Both backends run in the same process, on the same host, alternating within
each round (local first), through the same ``harness.backends.make_cluster``
a run uses, each with its own run tag and state file (under a temporary
``NATS_CHAOS_STATE``). Only resources of those tags are touched. Needs root
and a Docker engine (``python3 -m harness.engine``); the ssh backend needs
``--inventory`` (``nats-chaos hosts up 3 --inventory F`` makes stand-in hosts).

    .venv/bin/python benchmarks/bench_backends.py --rounds 3 --seconds 5
    .venv/bin/python benchmarks/bench_backends.py --backends local,ssh --inventory F
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
from loadgen import acked_within, quiet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import backends, monitor
from harness.runner import WORK_ROOT, wait_ready
from harness.runstate import RunState, new_tag
from harness.scenario import scenario_from_dict

STREAM = "BENCH"


async def create_stream(urls: list[str], monitor_urls: list[str], replicas: int) -> None:
    deadline = time.monotonic() + 30
    nc = await nats.connect(urls[0], error_cb=quiet)
    try:
        js = nc.jetstream(timeout=5)
        while True:  # right after the meta leader appears, peers may not all be known yet
            try:
                await js.add_stream(
                    name=STREAM, subjects=["bench.>"], storage="file", num_replicas=replicas
                )
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
    finally:
        await nc.close()
    while time.monotonic() < deadline:
        views = [monitor.stream_view(u, STREAM) for u in monitor_urls]
        if sum(1 for v in views if v and v.present and v.leader) >= replicas:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the stream got no leader within 30s")


async def publish_load(urls: list[str], seconds: float, publishers: int, window: int) -> int:
    """Acks received within ``seconds`` (after a 0.5 s warm-up) by all publishers together."""
    conns = [
        await nats.connect(urls[i % len(urls)], max_reconnect_attempts=0, error_cb=quiet)
        for i in range(publishers)
    ]
    return await acked_within(conns, seconds, window, b"x" * 128)


def measure(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Bring one cluster up on ``backend``, load it, tear it down; return the timings."""
    raw = {
        "name": "bench",
        "backend": backend,
        "nodes": args.nodes,
        "server": {"sync_interval": args.sync},
        "stream": {"replicas": min(3, args.nodes)},
    }
    if backend == "ssh":
        raw["inventory"] = str(Path(args.inventory).absolute())
    sc = scenario_from_dict(raw, "bench")
    backends.preflight(sc)
    binary = backends.binary_for(sc, args.nats_server)
    state = RunState(new_tag())
    state.save()
    cluster = backends.make_cluster(sc, binary, WORK_ROOT / state.tag, state)
    out: dict[str, Any] = {"backend": backend}
    try:
        if backend == "docker":  # resolve (and build if missing) the image outside the timing
            out["image"] = cluster.server_info()["image"]
        t0 = time.monotonic()
        cluster.start()
        asyncio.run(wait_ready(cluster))
        out["ready_s"] = time.monotonic() - t0
        urls = [cluster.client_url(n) for n in cluster.nodes]
        mons = [cluster.monitor_url(n) for n in cluster.nodes]
        t1 = time.monotonic()
        asyncio.run(create_stream(urls, mons, sc.stream.replicas))
        out["stream_s"] = time.monotonic() - t1
        acked = asyncio.run(publish_load(urls, args.seconds, args.publishers, args.window))
        out["acked_per_s"] = acked / args.seconds
    finally:
        t2 = time.monotonic()
        cluster.stop()
        out["stop_s"] = time.monotonic() - t2
        state.remove()
    return out


def summary(rows: list[dict[str, Any]], backend: str) -> str:
    mine = [r for r in rows if r["backend"] == backend]
    parts = [f"{backend:6}"]
    for key, fmt in (("ready_s", ".2f"), ("stream_s", ".2f"), ("acked_per_s", ".0f"),
                     ("stop_s", ".2f")):  # fmt: skip
        vals = [r[key] for r in mine]
        med = statistics.median(vals)
        parts.append(f"{key} {med:{fmt}} [{min(vals):{fmt}}-{max(vals):{fmt}}]")
    return "  ".join(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0, help="measured publishing seconds")
    p.add_argument("--publishers", type=int, default=6)
    p.add_argument("--window", type=int, default=64, help="un-acked publishes per publisher")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--sync", default="default", help="server.sync_interval (default, always, …)")
    p.add_argument("--backends", default="local,docker")
    p.add_argument("--inventory", help="the hosts of the ssh backend")
    p.add_argument("--nats-server", help="nats-server binary (default: the scenario version)")
    p.add_argument("--json", action="store_true", help="also print every row as JSON")
    args = p.parse_args()
    os.environ.setdefault("NATS_CHAOS_STATE", tempfile.mkdtemp(prefix="bench-state-"))
    names = args.backends.split(",")
    rows = []
    for r in range(args.rounds):
        for backend in names:
            row = {"round": r + 1, **measure(backend, args)}
            rows.append(row)
            print(
                f"round {r + 1} {backend:6} ready {row['ready_s']:.2f}s  "
                f"stream {row['stream_s']:.2f}s  acked {row['acked_per_s']:.0f}/s  "
                f"stop {row['stop_s']:.2f}s",
                flush=True,
            )
    print()
    for backend in names:
        print(summary(rows, backend))
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
