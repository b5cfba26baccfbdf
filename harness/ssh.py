"""SSH to a host, synchronously: one asyncssh connection per host, commands and SFTP.

In: a :class:`harness.inventory.Host` and its key file. Out: an
:class:`SshLink` whose methods block (the backend's methods run in worker
threads, as every backend's do), and :class:`SshRemote`, the
:class:`harness.backends.base.Remote` of a node on that host: commands as
shell-quoted argvs over an exec channel, files over SFTP.

Commands go through a small agent each link starts on its host (``python3``
reading one JSON request per line, :data:`AGENT`): an SSH session per
command costs 0.2–0.4 s on a loaded host, the agent a few milliseconds.
A host without python3 gets an exec channel per command instead. The
shell snippets :data:`IS`, :data:`KILL` and :data:`EXISTS` (filled in by
:func:`snippet`) signal a pid only while ``/proc/<pid>/cmdline`` is the
one recorded for it.

All connections of a process share one private event loop in a daemon
thread (:func:`_loop`), so a link works from any thread and needs no loop
of the caller's. A host that cannot be reached, or a command that times
out, is a :class:`~harness.errors.CannotRun` naming the host (the runner
reports one raised mid-run as a broken run).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import posixpath
import shlex
import stat
import subprocess
import threading
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import CannotRun
from harness.inventory import Host

T = TypeVar("T")

# Runs on the host under `python3 -u -c`: one JSON request per line in, one answer per line
# out (any order; each request in a thread of its own), so a command costs no SSH session.
AGENT = """
import json, subprocess, sys, threading
READY = "nats-chaos agent ready"
lock = threading.Lock()
def serve(req):
    r = {"id": req["id"], "rc": None, "out": "", "err": ""}
    try:
        p = subprocess.run(req["argv"], capture_output=True, timeout=req["timeout"],
                           input=(req.get("input") or "").encode())
        r.update(rc=p.returncode, out=p.stdout.decode(errors="replace"),
                 err=p.stderr.decode(errors="replace"))
    except subprocess.TimeoutExpired:
        pass
    except OSError as e:
        r.update(rc=127, err=str(e))
    with lock:
        sys.stdout.write(json.dumps(r) + "\\n")
        sys.stdout.flush()
sys.stdout.write(READY + "\\n")
sys.stdout.flush()
for line in sys.stdin:
    threading.Thread(target=serve, args=(json.loads(line),), daemon=True).start()
"""
READY = "nats-chaos agent ready"
AGENT_START_TIMEOUT = 20.0
CONNECT_TIMEOUT = 10.0

# `sh` snippets run on a host; $1 is a pid, $2 the command line it must have (NULs as spaces).
# IS: $1 runs exactly $2 (a recycled pid does not); GONE: wait up to 10 s while it does;
# KILL: if it does, SIGCONT + SIGKILL it and wait until it is gone; EXISTS: any live $1.
IS = (
    'c=$(tr "\\0" " " < /proc/$1/cmdline 2>/dev/null) && [ "$c" = "$2" ] && '
    "! grep -q '^State:.*Z' /proc/$1/status"
)
GONE = "i=0; while [ $i -lt 200 ] && (" + IS + "); do sleep 0.05; i=$((i+1)); done"
KILL = f"({IS}) || exit 0; kill -CONT $1; kill -KILL $1; {GONE}; ! ({IS})"


def snippet(body: str, pid: int, cmdline: str) -> str:
    return f"set -- {pid} {shlex.quote(cmdline)}; {body}"


EXISTS = "[ -e /proc/$1 ] && ! grep -q '^State:.*Z' /proc/$1/status"  # any process, yet


_LOOP: asyncio.AbstractEventLoop | None = None
_LOCK = threading.Lock()


def _loop() -> asyncio.AbstractEventLoop:
    """The process's SSH event loop, started on first use."""
    global _LOOP
    with _LOCK:
        if _LOOP is None or _LOOP.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="ssh", daemon=True).start()
            _LOOP = loop
        return _LOOP


class SshLink:
    """One SSH connection to ``host`` (opened on first use, reopened if it dropped)."""

    def __init__(self, host: Host, key: Path, known_hosts: Path | None = None) -> None:
        self.host = host
        self.key = key
        self.known_hosts = known_hosts
        self._conn: Any = None
        self._sftp: Any = None
        self._agent: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._no_agent = False
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._lock: asyncio.Lock | None = None
        self.python = "python3"  # the agent's interpreter on the host (found on its PATH)

    @property
    def where(self) -> str:
        return f"host {self.host.name} ({self.host.user}@{self.host.address}:{self.host.port})"

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        fut = asyncio.run_coroutine_threadsafe(coro, _loop())
        try:
            return fut.result(timeout + 5)
        except TimeoutError:
            fut.cancel()
            raise CannotRun(f"{self.where}: no answer within {timeout:g}s") from None

    async def _connection(self) -> Any:
        import asyncssh

        async with self._opening():
            if self._conn is None or self._conn.is_closed():
                self._sftp = self._agent = None
                try:
                    self._conn = await asyncssh.connect(
                        self.host.address,
                        port=self.host.port,
                        username=self.host.user,
                        client_keys=[str(self.key)],
                        known_hosts=str(self.known_hosts) if self.known_hosts else None,
                        connect_timeout=CONNECT_TIMEOUT,
                        keepalive_interval=5,
                        keepalive_count_max=3,
                    )
                except (OSError, asyncssh.Error) as e:
                    raise CannotRun(f"{self.where}: cannot connect ({e})") from None
                except ValueError as e:  # asyncssh.KeyImportError: not a private key
                    raise CannotRun(f"{self.where}: cannot use key {self.key} ({e})") from None
        return self._conn

    def _opening(self) -> asyncio.Lock:
        """One connect (or agent start) at a time per link: concurrent callers share it."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _sftp_client(self) -> Any:
        conn = await self._connection()
        if self._sftp is None:
            self._sftp = await conn.start_sftp_client()
        return self._sftp

    def connect(self) -> None:
        """Open the connection now (preflight): a CannotRun naming the host if it fails."""
        self._call(self._connection(), CONNECT_TIMEOUT)

    # -- commands -------------------------------------------------------------
    def shell(
        self, command: str, check: bool = True, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` (a shell line) on the host; its exit status, stdout and stderr."""
        return self.run(["sh", "-c", command], check=check, timeout=timeout)

    def run(
        self,
        argv: Sequence[str],
        check: bool = True,
        timeout: float = 30.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` on the host (``input`` its stdin): through the agent, else an exec
        channel of its own."""
        proc = self._call(self._run(list(argv), timeout, input), timeout)
        if check and proc.returncode != 0:
            why = proc.stderr.strip() or f"exit {proc.returncode}"
            raise CannotRun(f"{self.where}: {shlex.join(argv)} failed: {why}")
        return proc

    async def _run(
        self, argv: list[str], timeout: float, input: str | None
    ) -> subprocess.CompletedProcess[str]:
        import asyncssh

        agent = await self._agent_process()
        if agent is None:
            return await self._exec(argv, timeout, input)
        self._next_id += 1
        rid = self._next_id
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = answer
        request = {"id": rid, "argv": argv, "timeout": timeout, "input": input}
        try:
            agent.stdin.write(json.dumps(request) + "\n")
        except (OSError, asyncssh.Error) as e:  # the connection dropped: the next call reopens
            self._waiting.pop(rid, None)
            self._agent = None
            raise CannotRun(f"{self.where}: {shlex.join(argv)}: {e}") from None
        try:
            r = await asyncio.wait_for(answer, timeout + 2)
        except TimeoutError:
            raise CannotRun(
                f"{self.where}: timed out after {timeout:g}s: {shlex.join(argv)}"
            ) from None
        finally:
            self._waiting.pop(rid, None)
        if r["rc"] is None:
            raise CannotRun(f"{self.where}: timed out after {timeout:g}s: {shlex.join(argv)}")
        return subprocess.CompletedProcess(argv, int(r["rc"]), r["out"], r["err"])

    async def _exec(
        self, argv: list[str], timeout: float, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        import asyncssh

        conn = await self._connection()
        command = shlex.join(argv)
        try:
            r = await conn.run(command, check=False, timeout=timeout, input=input)
        except asyncssh.TimeoutError:
            raise CannotRun(f"{self.where}: timed out after {timeout:g}s: {command}") from None
        except (OSError, asyncssh.Error) as e:
            raise CannotRun(f"{self.where}: {command}: {e}") from None
        code = r.exit_status if r.exit_status is not None else 255
        return subprocess.CompletedProcess(argv, code, str(r.stdout), str(r.stderr))

    async def _agent_process(self) -> Any:
        """The host's agent (started on first use, again after a drop); None where the host
        has no python3 (then every command gets an exec channel of its own)."""
        import asyncssh

        conn = await self._connection()
        async with self._opening():
            alive = self._reader is not None and not self._reader.done()
            if self._agent is not None and alive and not conn.is_closed():
                return self._agent
            if self._no_agent:
                return None
            try:
                command = f"exec {shlex.quote(self.python)} -u -c {shlex.quote(AGENT)}"
                agent = await conn.create_process(command)
                first = await asyncio.wait_for(agent.stdout.readline(), AGENT_START_TIMEOUT)
            except (OSError, asyncssh.Error, TimeoutError) as e:
                raise CannotRun(f"{self.where}: cannot start the command agent ({e})") from None
            if first.strip() != READY:  # `python3: not found` (exit 127): no agent here
                await agent.wait_closed()
                if agent.exit_status == 127:
                    self._no_agent = True
                    return None
                why = (await agent.stderr.read()).strip() or first.strip()
                raise CannotRun(f"{self.where}: the command agent did not start ({why[:200]})")
            self._agent = agent
            self._reader = asyncio.get_running_loop().create_task(self._read_answers(agent))
            return agent

    async def _read_answers(self, agent: Any) -> None:
        """Hand each answer to its caller; when the agent or the connection ends, every
        caller still waiting hears it at once."""
        try:
            async for line in agent.stdout:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                fut = self._waiting.get(r.get("id"))
                if fut is not None and not fut.done():
                    fut.set_result(r)
        except Exception:  # the connection dropped mid-read
            pass
        finally:
            if self._agent is agent:
                self._agent = None
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(CannotRun(f"{self.where}: the command agent exited"))

    # -- files ----------------------------------------------------------------
    def sftp(self, op: str, *args: Any, timeout: float = 60.0) -> Any:
        """Call the SFTP client's ``op`` with ``args``; an OSError on failure, as for a file."""

        async def go() -> Any:
            import asyncssh

            try:
                client = await self._sftp_client()
                return await getattr(client, op)(*args)
            except asyncssh.Error as e:
                raise OSError(f"{self.where}: {op} {args[0] if args else ''}: {e.reason}") from None

        return self._call(go(), timeout)

    def put(self, local: Path, remote: str, timeout: float = 300.0) -> None:
        self.sftp("put", str(local), remote, timeout=timeout)

    def read_file(self, path: str, offset: int = 0, length: int = -1) -> bytes:
        async def go() -> bytes:
            import asyncssh

            try:
                client = await self._sftp_client()
                async with client.open(path, "rb") as fh:
                    await fh.seek(offset)
                    data: bytes = await fh.read(length)
                    return data
            except asyncssh.Error as e:
                raise OSError(f"{self.where}: read {path}: {e.reason}") from None

        return self._call(go(), 60.0)

    def write_file(self, path: str, offset: int, data: bytes, create: bool = False) -> None:
        async def go() -> None:
            import asyncssh

            try:
                client = await self._sftp_client()
                async with client.open(path, "wb" if create else "r+b") as fh:
                    await fh.seek(offset)
                    await fh.write(data)
                    await fh.fsync()
            except asyncssh.Error as e:
                raise OSError(f"{self.where}: write {path}: {e.reason}") from None

        self._call(go(), 60.0)

    def close(self) -> None:
        async def go() -> None:
            if self._agent is not None:
                with contextlib.suppress(Exception):  # a dropped connection: nothing to end
                    self._agent.stdin.write_eof()
                self._agent = None
            if self._conn is not None:
                self._conn.close()
                await self._conn.wait_closed()
            self._conn = self._sftp = None

        if self._conn is not None:
            self._call(go(), 10.0)


class SshRemote:
    """A node on another host: commands and files through its host's :class:`SshLink`."""

    def __init__(self, link: SshLink) -> None:
        self.link = link

    def run(
        self,
        argv: Sequence[str],
        check: bool = True,
        timeout: float = 30.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return self.link.run(argv, check=check, timeout=timeout, input=input)

    def read(self, path: str, offset: int = 0, length: int = -1) -> bytes:
        return self.link.read_file(path, offset, length)

    def write(self, path: str, offset: int, data: bytes) -> None:
        self.link.write_file(path, offset, data)

    def size(self, path: str) -> int:
        return int(self.link.sftp("stat", path).size)

    def truncate(self, path: str, size: int) -> None:
        self.link.sftp("truncate", path, size)

    def files(self, root: str) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        pending = [""]
        while pending:
            rel = pending.pop()
            try:
                entries = self.link.sftp("readdir", posixpath.join(root, rel) if rel else root)
            except OSError:
                continue  # gone, or not a directory
            for e in entries:
                if e.filename in (".", ".."):
                    continue
                sub = posixpath.join(rel, e.filename) if rel else e.filename
                mode = e.attrs.permissions or 0
                if stat.S_ISDIR(mode):
                    pending.append(sub)
                elif stat.S_ISREG(mode):
                    out.append((sub, int(e.attrs.size or 0)))
        return sorted(out)

    def fetch(self, root: str, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        for rel, _ in self.files(root):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.link.sftp("get", posixpath.join(root, rel), str(target), timeout=300.0)
            except OSError:
                continue  # vanished meanwhile (a compacted block)
