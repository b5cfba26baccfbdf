"""Client processes: the main phase's workers spread over OS processes.

One asyncio process cannot record more than a few tens of thousands of
ops a second, which a JetStream cluster takes easily; so a pipelined
workload (``harness.interpreter.Pipelined``) may run its main phase in
``processes`` client processes (``python -m harness.clientprocs``), each
running the interpreter over its share of the workers (worker ``w`` goes to
process ``w % processes``) with connections of its own, and writing its ops
to its own history segment (``harness.segments``) on the run's clock. Each
process ``k`` of ``n`` hands out the process ids ``k, k + n, …`` and the
workload's ``pipeline(scenario, k, n)`` gives it values of its own, so ids
and values stay unique within the run.

The harness side (:class:`ClientProcesses`): ``spawn`` starts them before
the cluster comes up (a process takes a second or more to import what it
runs, longer on a loaded host) — each pid is recorded in the run state as
``harness.clientprocs`` at once, so ``nats-chaos clean`` kills what a
killed harness left; ``start(plans)`` tells each its :class:`Plan` and waits
until every one has connected; ``run(t0, deadline)`` lets them go and follows
their counts (the progress line) until they exit; ``stop`` ends the ones
still running (SIGTERM, then SIGKILL) and never raises. A client process
dies with the harness: it asks the kernel for SIGTERM when its parent
dies, and stops at EOF on its stdin. On SIGTERM or SIGINT it records every
op in flight as ``info`` ``interrupted``, flushes its segment and exits.

The conversation, one JSON line each way: the harness writes the
:class:`Plan`; the process answers ``{"ready": true}`` once connected (or
exits non-zero, its reason in its log); the harness writes ``{"t0": <the
run's time zero, monotonic ns>, "deadline": <monotonic seconds>}``; the
process writes ``{"ok": n, "fail": n, "info": n}`` every half second and
when it is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import json
import logging
import os
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness import segments
from harness.errors import ClientProcessFailed
from harness.interpreter import Counters
from harness.runstate import pid_is

EXE = "harness.clientprocs"  # how the run state recognises a client process
REPORT_EVERY = 0.5
STOP_GRACE = 5.0  # seconds a stopped client process has to record its ops in flight
log = logging.getLogger("nats-chaos")


@dataclass(frozen=True)
class Plan:
    """What client process ``shard`` of ``shards`` is told to do."""

    scenario: str  # the resolved scenario, as YAML
    urls: dict[str, str]  # node -> client URL
    nodes: list[str]
    shard: int
    shards: int
    workers: int  # every worker of the run (the process runs those with w % shards == shard)
    window: int
    segment: str
    name: str  # the connections' name prefix


class ClientProcesses:
    """The client processes of one run's main phase (see the module docstring)."""

    def __init__(self, processes: int, counters: Counters, state: Any, logs: Path) -> None:
        self.n = processes
        self.counters = counters
        self.state = state  # RunState: add_pid / drop_pid
        self.logs = logs
        self.procs: list[asyncio.subprocess.Process] = []
        self._seen: list[Counters] = [Counters() for _ in range(processes)]

    async def spawn(self) -> None:
        """Start the client processes (each then imports what it runs, and waits)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        for k in range(self.n):
            with open(self.log_path(k), "ab") as err:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", EXE, self.state.tag, str(k),
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )  # fmt: skip
            self.procs.append(proc)
            self.state.add_pid(proc.pid, EXE)

    async def start(self, plans: list[Plan], timeout: float) -> None:
        """Tell each client process its plan; wait until each has connected to its nodes."""
        for plan, proc in zip(plans, self.procs, strict=True):
            Path(plan.segment).parent.mkdir(parents=True, exist_ok=True)
            self._send(proc, asdict(plan))
        try:
            async with asyncio.timeout(timeout):
                for plan, proc in zip(plans, self.procs, strict=True):
                    assert proc.stdout is not None
                    line = await proc.stdout.readline()
                    if not line or not json.loads(line).get("ready"):
                        await proc.wait()
                        raise ClientProcessFailed(self._why(plan.shard, "did not start"))
        except TimeoutError:
            raise ClientProcessFailed(
                f"client processes did not connect within {timeout:g}s"
            ) from None

    async def run(self, t0: int, deadline: float) -> None:
        """Let every process go (the run's time zero, the deadline); return when all are done."""
        for proc in self.procs:
            self._send(proc, {"t0": t0, "deadline": deadline})
        await asyncio.gather(*(self._follow(k, p) for k, p in enumerate(self.procs)))

    @staticmethod
    def _send(proc: asyncio.subprocess.Process, message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(message).encode() + b"\n")

    async def _follow(self, k: int, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            counts = json.loads(line)
            seen = self._seen[k]
            for kind in ("ok", "fail", "info"):
                delta = counts[kind] - getattr(seen, kind)
                setattr(self.counters, kind, getattr(self.counters, kind) + delta)
                setattr(seen, kind, counts[kind])
        code = await proc.wait()
        self.state.drop_pid(proc.pid)
        if code != 0:
            raise ClientProcessFailed(self._why(k, f"exited with {code}"))

    def log_path(self, shard: int) -> Path:
        """Where client process ``shard``'s stderr goes (beside the segments)."""
        return self.logs / f"client-{shard}.log"

    def _why(self, shard: int, what: str) -> str:
        path = self.log_path(shard)
        with contextlib.suppress(OSError):
            lines = path.read_text(errors="replace").strip().splitlines()
            if lines:
                return f"client process {shard} {what}: {lines[-1][:200]}"
        return f"client process {shard} {what}"

    async def stop(self) -> None:
        """End every client process still running (SIGTERM, then SIGKILL); never raises."""
        running = [p for p in self.procs if p.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(
                asyncio.gather(*(p.wait() for p in running), return_exceptions=True),
                STOP_GRACE,
            )
        except TimeoutError:
            pass
        finally:
            self.kill()

    def kill(self) -> None:
        """SIGKILL every client process not known to be gone, forget it, and move what each
        said on stderr into the harness's log (synchronous)."""
        for k, proc in enumerate(self.procs):
            if proc.returncode is None and pid_is(proc.pid, EXE):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
            if str(proc.pid) in self.state.pids:
                self.state.drop_pid(proc.pid)
            with contextlib.suppress(OSError):
                said = self.log_path(k).read_text(errors="replace").splitlines()
                for line in said[-20:]:
                    log.warning("client process %d: %s", k, line)
                self.log_path(k).unlink()


def plans_for(
    scenario_yaml: str,
    urls: dict[str, str],
    nodes: list[str],
    workers: int,
    window: int,
    processes: int,
    run_dir: Path,
    name: str,
) -> list[Plan]:
    """One :class:`Plan` per client process."""
    segment = segments.segment_path
    return [
        Plan(scenario_yaml, urls, nodes, k, processes, workers, window,
             str(segment(run_dir, k)), f"{name}-c{k}")
        for k in range(processes)
    ]  # fmt: skip


# -- the client process ---------------------------------------------------------------------


def _die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the harness dies (prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


async def _client_main(parent: int) -> None:
    from harness.clients import ClientPool, connect_real
    from harness.history import HistoryWriter
    from harness.interpreter import Interpreter
    from harness.scenario import scenario_from_dict
    from harness.workloads import REGISTRY
    from harness.workloads.base import pipeline
    from harness.yamlfile import parse

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    if os.getppid() != parent:  # the harness died before the kernel was asked
        return
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    line = await reader.readline()
    if not line:
        return
    plan = Plan(**json.loads(line))
    scenario = scenario_from_dict(parse(plan.scenario, "client plan"), "client plan")
    client = pipeline(REGISTRY[scenario.workload.name], scenario, plan.shard, plan.shards)
    pool = ClientPool(connect_real(plan.urls.__getitem__), plan.name)
    mine = [w for w in range(plan.workers) if w % plan.shards == plan.shard]
    try:
        await asyncio.gather(*(pool.get(plan.nodes[w % len(plan.nodes)]) for w in mine))
        _say({"ready": True})
        line = await reader.readline()
        if not line:
            return
        go = json.loads(line)
        history = HistoryWriter(Path(plan.segment), t0=go["t0"], batched=True)
        interp = Interpreter(history, pool.get, processes=itertools.count(plan.shard, plan.shards))
        reporter = asyncio.create_task(_report(interp.counters))
        watcher = asyncio.create_task(_watch_stdin(reader, task))
        try:
            await interp.run(
                client, plan.nodes, plan.workers, scenario.workload.rate, go["deadline"],
                plan.window, scenario.workload.timeout, only=mine,
            )  # fmt: skip
        finally:
            reporter.cancel()
            watcher.cancel()
            history.close()
        _say(asdict(interp.counters))
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await pool.close()


async def _report(counters: Counters) -> None:
    while True:
        await asyncio.sleep(REPORT_EVERY)
        _say(asdict(counters))


async def _watch_stdin(reader: asyncio.StreamReader, task: asyncio.Task[Any]) -> None:
    """EOF on stdin: the harness is gone (or closed it): stop."""
    await reader.read()
    task.cancel()


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    """``python -m harness.clientprocs TAG SHARD``; the plan comes on stdin."""
    parent = os.getppid()
    _die_with_parent()
    # what the plan needs, imported while the cluster comes up
    import harness.clients
    import harness.interpreter
    import harness.scenario  # noqa: F401

    try:
        asyncio.run(_client_main(parent))
    except asyncio.CancelledError:
        pass
    except Exception as e:  # its one line is what the harness reports
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
