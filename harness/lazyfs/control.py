"""The lazyfs control socket: one JSON request per line in, one JSON response per line out.

Requests (``{"op": ...}``) and what they answer:

- ``ping``  -> ``{"ok": true, "pid": <lazyfs pid>}``
- ``stats`` -> ``{"ok": true, "un_fsynced_bytes", "pending_files", "fsyncs", "drops",
  "writes", "flushed_by_writeback", "flushed_by_writeback_bytes", "kernel_cache"}``:
  pending bytes and files now; file fsyncs, drops and FUSE writes so far; files (and
  bytes) the writeback model persisted so far; 1 in kernel-cache mode (then data the
  kernel still holds dirty is not counted yet), else 0
- ``drop``  -> ``{"ok": true, "dropped_bytes", "files", "kept_bytes", "torn_bytes"}``: power
  loss, every un-fsynced byte of every file is forgotten (in kernel-cache mode, remount
  before using the mount again); with ``"keep": p`` (0..1) each pending extent is written to
  the backing file first with probability p, with ``"torn_write": true`` part of one more
  (``"seed"`` seeds the choice): a torn power loss
- ``flush`` -> ``{"ok": true, "files", "bytes"}``: persist everything lazyfs holds, like
  ``sync(1)`` (``LazyFSMount.flush`` first has the kernel write its dirty pages)

A bad request gets ``{"ok": false, "error": "..."}``. :class:`ControlServer` runs in the
lazyfs process over a :class:`~harness.lazyfs.fs.LazyFS`; :class:`ControlClient` is what
the harness uses.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import threading
from typing import Any, Protocol

from harness.errors import CannotRun


class Controlled(Protocol):
    """What the control socket drives (``LazyFS`` implements it)."""

    def stats(self) -> dict[str, int]: ...
    def drop(
        self, keep: float = 0.0, torn_write: bool = False, seed: int = 0
    ) -> dict[str, int]: ...
    def flush_all(self) -> dict[str, int]: ...


class LazyFSControlError(CannotRun):
    """The lazyfs control socket did not answer or refused a request."""


def handle_request(fs: Controlled, line: bytes) -> dict[str, Any]:
    """Answer one request line; never raises."""
    try:
        request = json.loads(line)
        op = request["op"]
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}
        if op == "stats":
            return {"ok": True, **fs.stats()}
        if op == "drop":
            keep, torn = float(request.get("keep", 0.0)), bool(request.get("torn_write", False))
            if not 0.0 <= keep <= 1.0:
                return {"ok": False, "error": f"keep must be within 0..1, not {keep}"}
            return {"ok": True, **fs.drop(keep, torn, int(request.get("seed", 0)))}
        if op == "flush":
            return {"ok": True, **fs.flush_all()}
        return {"ok": False, "error": f"unknown op {op!r}"}
    except Exception as e:  # a bad client must not take the filesystem down
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


class _Handler(socketserver.StreamRequestHandler):
    server: ControlServer

    def handle(self) -> None:
        for line in self.rfile:
            if line.strip():
                reply = handle_request(self.server.fs, line)
                self.wfile.write(json.dumps(reply).encode() + b"\n")
                self.wfile.flush()


class ControlServer(socketserver.ThreadingUnixStreamServer):
    """Serves the control protocol on a unix socket path in daemon threads."""

    daemon_threads = True

    def __init__(self, path: str, fs: Controlled) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.fs = fs
        super().__init__(path, _Handler)
        os.chmod(path, 0o600)

    def start(self) -> threading.Thread:
        """Serve in a daemon thread and return it."""
        thread = threading.Thread(target=self.serve_forever, name="lazyfs-control", daemon=True)
        thread.start()
        return thread


class ControlClient:
    """Talks to a lazyfs control socket; each call opens a short connection."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 10.0) -> None:
        self.path = os.fspath(path)
        self.timeout = timeout

    def request(self, op: str, **params: Any) -> dict[str, Any]:
        """Send ``{"op": op, **params}`` and return the reply; raise LazyFSControlError on
        failure."""
        buf = self.exchange(json.dumps({"op": op, **params}).encode() + b"\n")
        try:
            reply = json.loads(buf)
        except ValueError as e:
            raise LazyFSControlError(f"lazyfs control socket {self.path}: bad reply {buf!r}") from e
        if not reply.get("ok"):
            raise LazyFSControlError(f"lazyfs {op} failed: {reply.get('error')}")
        return reply

    def exchange(self, line: bytes) -> bytes:
        """Send one request line, return the reply line (a client on another host overrides
        this: :class:`harness.backends.ssh_lazyfs.RemoteControl`)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.path)
                sock.sendall(line)
                buf = b""
                while not buf.endswith(b"\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
        except OSError as e:
            raise LazyFSControlError(f"lazyfs control socket {self.path}: {e}") from e
        return buf

    def ping(self) -> int:
        """Return the lazyfs process id."""
        return int(self.request("ping")["pid"])

    def stats(self) -> dict[str, int]:
        """Counters: un_fsynced_bytes, pending_files, fsyncs, drops, writes, ...."""
        return _without_ok(self.request("stats"))

    def drop(self, keep: float = 0.0, torn_write: bool = False, seed: int = 0) -> dict[str, int]:
        """Simulate power loss (torn: ``keep``, ``torn_write``, :meth:`LazyFS.drop`); return
        dropped_bytes, files, kept_bytes and torn_bytes."""
        return _without_ok(self.request("drop", keep=keep, torn_write=torn_write, seed=seed))

    def flush(self) -> dict[str, int]:
        """Persist everything; return files and bytes."""
        return _without_ok(self.request("flush"))


def _without_ok(reply: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in reply.items() if k != "ok"}
