"""Offline replica reads: a node's store, copied and served by a nats-server of its own.

When a node cannot be read live (it serves no direct gets, has no quorum, or
stalled), its data directory still says what it held. In: that directory (a
node's JetStream ``store_dir``, e.g. unpacked from ``nodes/<n>/data.tar.gz``)
and a nats-server binary. Out: a standalone server (JetStream on, no
cluster, no routes, listening on loopback only) serving a copy of the store,
so the same batched direct gets that read a live replica read it — and
nothing but that copy can answer them.

:func:`prepare` copies the store and makes each stream and consumer
single-replica (a standalone server refuses ``num_replicas > 1``), rewriting
its ``meta.inf`` and the HighwayHash checksum beside it
(:mod:`harness.offline.highway`); the Raft state (``_js_``) is left out, the
message blocks are untouched. :class:`OfflineServer` starts the server on the
copy, waits until it answers, and stops it (by pid, in its own session).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from harness.errors import CannotRun
from harness.offline.highway import meta_sum

META, SUM = "meta.inf", "meta.sum"


def prepare(store: Path, dest: Path) -> list[str]:
    """Copy ``store`` (a JetStream store_dir) to ``dest`` for a standalone server; the
    names of the streams it holds (``account/stream``)."""
    root = store / "jetstream"
    if not root.is_dir():
        raise FileNotFoundError(f"{store}: no jetstream directory (not a node's store)")
    shutil.copytree(store, dest, ignore=shutil.ignore_patterns("_js_"), symlinks=True)
    streams = []
    for account in sorted(p for p in (dest / "jetstream").iterdir() if p.is_dir()):
        for stream in sorted(p for p in (account / "streams").glob("*") if p.is_dir()):
            if _single_replica(stream):
                streams.append(f"{account.name}/{stream.name}")
            for consumer in sorted(p for p in (stream / "obs").glob("*") if p.is_dir()):
                _single_replica(consumer)
    return streams


def _single_replica(d: Path) -> bool:
    """Rewrite ``d/meta.inf`` with ``num_replicas: 1`` and its checksum; False if unreadable."""
    try:
        meta = json.loads((d / META).read_bytes())
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict):
        return False
    if "num_replicas" in meta:
        meta["num_replicas"] = 1
    cfg = meta.get("config")
    if isinstance(cfg, dict) and "num_replicas" in cfg:  # a consumer's meta
        cfg["num_replicas"] = 1
    raw = json.dumps(meta).encode()
    (d / META).write_bytes(raw)
    (d / SUM).write_text(meta_sum(d.name, raw))
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OfflineServer:
    """A standalone nats-server on a prepared store copy, on loopback; a context manager."""

    def __init__(self, binary: str | Path, store: Path, workdir: Path) -> None:
        self.binary = str(binary)
        self.store = store
        self.workdir = workdir
        self.port = _free_port()
        self.http = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 20.0) -> OfflineServer:
        """Start the server and wait until its JetStream answers; CannotRun if it never does."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "server_name": "offline",
            "listen": f"127.0.0.1:{self.port}",
            "http": f"127.0.0.1:{self.http}",
            "jetstream": {"store_dir": str(self.store)},
        }
        conf = self.workdir / "offline.conf"
        conf.write_text(json.dumps(config, indent=2))
        log = open(self.workdir / "offline.log", "wb")  # noqa: SIM115 - the server keeps it
        with log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError, ValueError):
                url = f"http://127.0.0.1:{self.http}/healthz?js-enabled-only=true"
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return self
            time.sleep(0.1)
        tail = self.log_tail()
        self.stop()
        raise CannotRun(f"the offline server on {self.store} did not start: {tail}")

    def streams(self) -> dict[str, dict[str, int]]:
        """The streams it serves: name -> {messages, first_seq, last_seq}."""
        url = f"http://127.0.0.1:{self.http}/jsz?streams=true"
        with urllib.request.urlopen(url, timeout=5) as r:
            jsz = json.load(r)
        out = {}
        for account in jsz.get("account_details") or []:
            for s in account.get("stream_detail") or []:
                st = s.get("state", {})
                out[s["name"]] = {
                    k: int(st.get(k, 0)) for k in ("messages", "first_seq", "last_seq")
                }
        return out

    def log_tail(self, lines: int = 3) -> str:
        with contextlib.suppress(OSError):
            text = (self.workdir / "offline.log").read_text(errors="replace").strip()
            return " | ".join(text.splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL), by its pid."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def __enter__(self) -> OfflineServer:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
