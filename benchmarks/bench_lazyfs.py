"""JetStream acknowledged-publish throughput: store_dir on a lazyfs mount vs a plain directory.

In: a nats-server binary (``--nats-server PATH``, else ``harness.servers.resolve_binary``),
how long each measurement runs, how many rounds and publishers, and which storages
(``plain``; ``exact``: lazyfs with ``kernel_cache=False``; ``cache``: lazyfs with the
kernel writeback cache). Out: one line per run with acked publishes/s, then per sync
mode and storage the median, min and max over the rounds and the median of the
per-round ratios to plain, printed to stdout (``--json`` adds a machine-readable line).

Each measurement starts its own single-node nats-server on 127.0.0.1 (random free
port, JetStream in a fresh directory), creates an R1 file-storage stream, and runs
``--publishers`` asyncio publishers, each with its own connection and up to
``--window`` un-acked ``publish_async`` messages in flight. The storages run one
after the other within each round (plain first) so drift on the host hits all of
them; a per-round ratio compares runs made seconds apart. Only processes this
script started are ever signalled. Needs root and /dev/fuse for the lazyfs mount.

    .venv/bin/python benchmarks/bench_lazyfs.py --seconds 5 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import nats
from loadgen import acked_within, quiet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.lazyfs import LazyFSMount

# storage name -> LazyFSMount kernel_cache; "exact1": the exact mode with a single-threaded
# FUSE loop, what a run's stores use under sync_interval: always (harness.backends.lazystore)
LAZYFS_MODES = {"exact": False, "cache": True, "exact1": False}
SINGLE_THREAD = {"exact1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_binary(path: str | None) -> Path:
    if path:
        return Path(path)
    try:
        from harness.servers import resolve_binary
    except ImportError:
        sys.exit("pass --nats-server PATH (harness.servers is not available)")
    return resolve_binary()


def write_config(workdir: Path, store_dir: Path, port: int, sync: str) -> Path:
    sync_line = "" if sync == "default" else f"  sync_interval: {sync}\n"
    conf = workdir / "nats.conf"
    conf.write_text(
        f"server_name: bench\nlisten: 127.0.0.1:{port}\n"
        f'jetstream {{\n  store_dir: "{store_dir}"\n{sync_line}}}\n'
    )
    return conf


async def publish_load(url: str, seconds: float, publishers: int, window: int, size: int) -> int:
    """Acks received within ``seconds`` (after a short warm-up) by all publishers together."""
    conns = [
        await nats.connect(url, max_reconnect_attempts=0, error_cb=quiet) for _ in range(publishers)
    ]
    js0 = conns[0].jetstream()
    await js0.add_stream(name="BENCH", subjects=["bench.>"], storage="file", num_replicas=1)
    payload = b"x" * size
    return await acked_within(conns, seconds, window, payload)


async def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nats-server exited with {proc.returncode}")
        try:
            nc = await nats.connect(
                url, max_reconnect_attempts=0, connect_timeout=1, error_cb=quiet
            )
        except Exception:
            await asyncio.sleep(0.05)
            continue
        try:
            await nc.jetstream().account_info()
            return
        except Exception:
            await asyncio.sleep(0.05)
        finally:
            await nc.close()
    raise RuntimeError("nats-server did not become ready")


def measure(binary: Path, base: Path, storage: str, sync: str, args: argparse.Namespace) -> dict:
    """Run one server with its store on ``storage`` (plain|exact|cache); return its figures."""
    work = Path(tempfile.mkdtemp(prefix=f"{storage}-{sync}-", dir=base))
    backing = work / "data"
    backing.mkdir()
    mount: AbstractContextManager[object] = nullcontext()
    store = backing
    lazy = None
    if storage in LAZYFS_MODES:
        lazy = LazyFSMount(
            work / "mnt",
            backing,
            work / "ctl.sock",
            log_path=work / "lazyfs.log",
            kernel_cache=LAZYFS_MODES[storage],
            extra_args=("--single-thread",) if storage in SINGLE_THREAD else (),
        )
        mount, store = lazy, work / "mnt"
    port = free_port()
    conf = write_config(work, store / "js", port, sync)
    result: dict = {"storage": storage, "sync": sync}
    with mount:
        log = open(work / "server.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([str(binary), "-c", str(conf)], stdout=log, stderr=log)
        try:
            url = f"nats://127.0.0.1:{port}"
            asyncio.run(wait_ready(url, proc))
            acked = asyncio.run(
                publish_load(url, args.seconds, args.publishers, args.window, args.size)
            )
            result["acked_per_s"] = acked / args.seconds
            if lazy is not None:
                result["lazyfs"] = lazy.client.stats()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def summary(results: list[dict], sync: str, storages: list[str]) -> list[str]:
    """One line per storage: median, min and max acked/s, and the per-round ratio to plain."""
    runs = [r for r in results if r["sync"] == sync]
    plain = {r["round"]: r["acked_per_s"] for r in runs if r["storage"] == "plain"}
    lines = []
    for st in storages:
        rates = [r["acked_per_s"] for r in runs if r["storage"] == st]
        line = f"{st:6} {statistics.median(rates):8.0f} [{min(rates):.0f}-{max(rates):.0f}]"
        ratios = [
            r["acked_per_s"] / plain[r["round"]]
            for r in runs
            if r["storage"] == st and plain.get(r["round"])
        ]
        if st != "plain" and ratios:
            line += f"  ratio {statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"
            of_medians = statistics.median(rates) / statistics.median(plain.values())
            line += f", of medians {of_medians:.2f}"
        lines.append(line)
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--nats-server", help="nats-server binary (default: harness.servers)")
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    p.add_argument("--rounds", type=int, default=1, help="runs of every storage per sync mode")
    p.add_argument(
        "--storages",
        default="plain,exact,cache",
        help="comma list, run in this order each round: plain, exact, exact1, cache",
    )
    p.add_argument("--publishers", type=int, default=4)
    p.add_argument("--window", type=int, default=64, help="un-acked publishes per publisher")
    p.add_argument("--size", type=int, default=128, help="payload bytes")
    p.add_argument("--sync", default="default,always", help="comma list: default, always, 1s…")
    p.add_argument("--workdir", default="/var/tmp", help="where stores live (use a real disk)")
    p.add_argument("--keep", action="store_true", help="keep store dirs and logs")
    p.add_argument("--json", action="store_true", help="also print results as one JSON line")
    args = p.parse_args()
    unknown = set(args.storages.split(",")) - {"plain", *LAZYFS_MODES}
    if unknown or "plain" not in args.storages.split(","):
        p.error(f"--storages needs plain and only plain, exact, exact1, cache ({args.storages})")
    binary = server_binary(args.nats_server)
    base = Path(tempfile.mkdtemp(prefix="bench-lazyfs-", dir=args.workdir))
    print(f"nats-server {binary}; {args.publishers} publishers x window {args.window}, ", end="")
    print(f"{args.size} B payload, {args.seconds:g} s per run, {args.rounds} round(s)")
    storages = args.storages.split(",")
    results = []
    try:
        for sync in args.sync.split(","):
            for rnd in range(args.rounds):
                for storage in storages:
                    r = measure(binary, base, storage, sync, args)
                    r["round"] = rnd
                    results.append(r)
                    extra = ""
                    if "lazyfs" in r:
                        s = r["lazyfs"]
                        extra = f"  (lazyfs writes={s['writes']} fsyncs={s['fsyncs']})"
                    print(f"  sync={sync:8} {storage:6} {r['acked_per_s']:10.0f} acked/s{extra}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print("acked/s over rounds: median [min-max]; median of per-round ratios to plain:")
    for sync in args.sync.split(","):
        for line in summary(results, sync, storages):
            print(f"  sync={sync:8} {line}")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
