"""One run, phase by phase (DESIGN §1). No fault or checker logic lives here.

``execute(scenario, options)`` creates the result folder, starts the
cluster, runs the workload with the nemesis, heals, waits for the replicas
to agree, reads every node, collects evidence, checks the history and
writes the results. Whatever happens — an error, Ctrl-C, SIGTERM — the
``finally`` path stops every node, deletes every namespace and forgets the
run's state file, and the history written so far stays on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import tarfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import backends, monitor, results
from harness.backends import RunCluster
from harness.errors import HarnessError
from harness.faults import netem, schedule
from harness.faults.nemesis import Nemesis
from harness.history import HistoryWriter
from harness.progress import Progress, Status
from harness.runstate import RunState, new_tag
from harness.scenario import Scenario
from harness.workloads.queue import QueueWorkload

log = logging.getLogger("nats-chaos")
WORK_ROOT = Path("/var/tmp/nats-chaos")
NUDGE_EVERY = 5.0  # seconds a replica may lag in joining the direct-get group before a nudge
GONE_AFTER = 10.0  # every node answers without the stream this long: it is gone, stop waiting


@dataclass
class RunOptions:
    """How to run a scenario (everything that is not the scenario itself)."""

    results_dir: Path = Path("results")
    nats_server: str | None = None
    keep_data: bool = True
    echo: Any = print


@dataclass
class RunOutcome:
    """What ``run`` prints and exits with."""

    run_dir: Path
    result: dict[str, Any]
    interrupted: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


class _Phases:
    """Times each phase and tells the user which one is running."""

    def __init__(self, echo: Any) -> None:
        self.echo = echo
        self.progress = Progress(echo)
        self.t0 = time.monotonic()
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        log.info("phase: %s", name)
        try:
            with self.progress.phase(name, start - self.t0):
                yield
        finally:
            self.timings[name] = round(time.monotonic() - start, 3)


def new_run_dir(root: Path, scenario: str) -> Path:
    """``root/<scenario>/<YYYYmmddTHHMMSS>`` (suffixed if that second is taken)."""
    base = root / scenario
    stamp = time.strftime("%Y%m%dT%H%M%S")
    d = base / stamp
    i = 1
    while d.exists():
        d = base / f"{stamp}-{i}"
        i += 1
    d.mkdir(parents=True)
    return d


def _log_to(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "harness.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    return handler


async def wait_ready(cluster: RunCluster, timeout: float = 60.0) -> None:
    """Until every node reports a JetStream meta leader."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leaders = await asyncio.gather(
            *(asyncio.to_thread(monitor.meta_leader, cluster.monitor_url(n)) for n in cluster.nodes)
        )
        if all(leaders):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"no JetStream meta leader after {timeout:.0f}s (see nodes/*/ logs)")


async def wait_converged(
    cluster: RunCluster,
    nodes: list[str],
    stream: str,
    timeout: float,
    nudge: Callable[[str], Awaitable[Any]] | None = None,
) -> dict[str, Any]:
    """Until every replica node reports the same state for ``stream``, with a leader.

    Gives up after ``timeout``, or after ``GONE_AFTER`` seconds in which every
    node answered without the stream (a power loss can delete it everywhere).
    A replica can agree on the state yet never rejoin the direct-get group
    (seen after a power loss corrupted its ``meta.inf``); then ``nudge(node)``
    (a step-down in its favour: leaders always serve direct gets) is tried,
    at most every ``NUDGE_EVERY`` seconds.
    """
    start = time.monotonic()
    views: list[monitor.StreamView | None] = []
    absent_since: float | None = None
    nudges = 0
    last_nudge = start
    while True:
        views = await asyncio.gather(
            *(asyncio.to_thread(monitor.stream_view, cluster.monitor_url(n), stream) for n in nodes)
        )
        states = {v.state for v in views if v and v.present}
        agreed = all(v and v.present and v.leader for v in views) and len(states) == 1
        if agreed:  # and every replica answers direct gets itself (the final reads need it)
            direct = await asyncio.gather(
                *(
                    asyncio.to_thread(monitor.serves_direct_get, cluster.monitor_url(n), stream)
                    for n in nodes
                )
            )
            agreed = all(direct)
            now = time.monotonic()
            if not agreed and nudge is not None and now - last_nudge >= NUDGE_EVERY:
                await nudge(next(n for n, d in zip(nodes, direct, strict=True) if not d))
                nudges, last_nudge = nudges + 1, now
        elapsed = time.monotonic() - start
        if all(v is not None and not v.present for v in views):
            absent_since = absent_since if absent_since is not None else elapsed
        else:
            absent_since = None
        gone = absent_since is not None and elapsed - absent_since >= GONE_AFTER
        if agreed or gone or elapsed > timeout:
            break
        await asyncio.sleep(0.5)
    return {
        "converged": agreed,
        "seconds": round(time.monotonic() - start, 3),
        "nudges": nudges,
        "nodes": {
            n: (
                None
                if v is None
                else {
                    "present": v.present,
                    "messages": v.messages,
                    "first_seq": v.first_seq,
                    "last_seq": v.last_seq,
                    "leader": v.leader,
                }
            )
            for n, v in zip(nodes, views, strict=True)
        },
    }


async def isolate_for_reads(cluster: RunCluster, timeout: float = 30.0) -> bool:
    """Cut every route (each node against all others) and wait until no node has a route."""
    nodes = cluster.nodes
    grudge = {n: frozenset(m for m in nodes if m != n) for n in nodes}
    await asyncio.to_thread(cluster.isolate, grudge)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = await asyncio.gather(
            *(asyncio.to_thread(monitor.route_count, cluster.monitor_url(n)) for n in nodes)
        )
        if all(c == 0 for c in counts if c is not None):
            return True
        await asyncio.sleep(0.25)
    return False


class Run:
    """State shared by the phases of one run."""

    def __init__(self, scenario: Scenario, options: RunOptions, binary: Path | None) -> None:
        self.scenario = scenario
        self.binary = binary
        self.options = options
        self.phases = _Phases(options.echo)
        self.run_dir = new_run_dir(options.results_dir, scenario.name)
        self.state = RunState(new_tag())
        self.workdir = WORK_ROOT / self.state.tag
        self.cluster: RunCluster | None = None
        self.history: HistoryWriter | None = None
        self.extra: dict[str, Any] = {"tag": self.state.tag}

    async def main(self) -> None:
        sc = self.scenario
        binary = self.binary
        self.cluster = cluster = backends.make_cluster(sc, binary, self.workdir, self.state)
        info = await asyncio.to_thread(backends.server_info, cluster, binary)
        self.extra["nats_server"] = self.extra["server"] = info  # backend, binary or image
        self.history = history = HistoryWriter(self.run_dir / "history.jsonl")
        workload = QueueWorkload(sc, cluster, history)
        nemesis = Nemesis(cluster, history, sc.stream.name)
        windows = schedule.plan(sc)
        for line in schedule.describe(windows):
            log.info("plan: %s", line)
        try:
            with self.phases("cluster up"):
                await asyncio.to_thread(cluster.start)
                await wait_ready(cluster)
            with self.phases("workload setup"):
                await workload.setup()
                self.extra["replica_nodes"] = workload.replica_nodes
            with self.phases(f"main phase ({sc.time_limit:.0f}s, {len(windows)} faults planned)"):
                t0 = time.monotonic()
                ticker = asyncio.create_task(self._progress(workload, nemesis, t0))
                try:
                    await asyncio.gather(workload.run(t0 + sc.time_limit), nemesis.run(windows, t0))
                finally:
                    ticker.cancel()
            with self.phases("heal"):
                await nemesis.heal_all()
            with self.phases("recovery wait"):
                self.extra["recovery"] = await wait_converged(
                    cluster,
                    workload.replica_nodes,
                    sc.stream.name,
                    sc.recovery.timeout,
                    nudge=workload.lead_from,
                )
            with self.phases("final reads"):
                self.extra["isolated_for_reads"] = await isolate_for_reads(cluster)
                await workload.final_reads(sc.recovery.read_timeout)
                await asyncio.to_thread(cluster.heal_network)
        finally:
            if sc.uses_lazyfs:
                self.extra["lazyfs"] = await asyncio.to_thread(cluster.lazyfs_stats)
            await workload.close()
            if nemesis.active:
                with contextlib.suppress(Exception):
                    await nemesis.heal_all()
            self.extra["faults_started"] = nemesis.started

    async def _progress(self, workload: QueueWorkload, nemesis: Nemesis, t0: float) -> None:
        progress, limit, c = self.phases.progress, self.scenario.time_limit, workload.counters
        while True:
            await asyncio.sleep(progress.interval)
            elapsed = time.monotonic() - t0
            progress.update(Status(elapsed, limit, c.ok, c.fail, c.info, nemesis.active_kinds))

    def teardown(self) -> None:
        """Collect evidence and release every resource; never raises."""
        if self.history is not None:
            self.history.close()
        nodes_dir = self.run_dir / "nodes"
        if self.cluster is not None:
            try:
                for node in self.cluster.nodes:
                    if self.cluster.running(node):
                        self.cluster.terminate(node)
                self.cluster.collect(nodes_dir)
                if self.options.keep_data:
                    self._archive_data(nodes_dir)
            except Exception as e:
                log.warning("collecting evidence failed: %s", e)
            try:
                self.cluster.stop()
            except Exception as e:  # keep the state file: `nats-chaos clean` finishes the job
                log.error("releasing the cluster failed: %s", e)
                self.options.echo(f"warning: {e}")
                return
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.state.remove()

    def _archive_data(self, nodes_dir: Path) -> None:
        assert self.cluster is not None
        for node in self.cluster.nodes:
            src = self.workdir / node / "data"
            if src.is_dir():
                with tarfile.open(nodes_dir / node / "data.tar.gz", "w:gz") as tar:
                    tar.add(src, arcname="data")


def execute(scenario: Scenario, options: RunOptions) -> RunOutcome:
    """Run ``scenario`` end to end; the result folder is written even when interrupted."""
    backends.preflight(scenario)  # root, and for docker an engine that answers
    netem.preflight(scenario)  # a fault this kernel cannot provide: stop before anything exists
    schedule.plan(scenario)  # and so does a plan the node count makes impossible
    binary = backends.binary_for(scenario, options.nats_server)
    run = Run(scenario, options, binary)
    (run.run_dir / "scenario.yaml").write_text(scenario.to_yaml())
    handler = _log_to(run.run_dir)
    run.state.save()
    interrupted: str | None = None
    error: str | None = None
    refused: HarnessError | None = None  # bad input or a host limit met mid-run: exit 2/3
    try:
        interrupted = _run_with_signals(run)
    except HarnessError as e:
        refused, error = e, str(e)
        log.error("run stopped: %s", e)
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        log.exception("run failed")
        options.echo(f"run failed: {error}")
    finally:
        old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            with run.phases("collect and clean up"):
                run.teardown()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
    result = results.write(
        run.run_dir, scenario, run.extra, run.phases.timings, interrupted=interrupted, error=error
    )
    logging.getLogger().removeHandler(handler)
    handler.close()
    results.link_latest(run.run_dir)
    if refused is not None:  # the folder (history, logs) is written; now say why, in one line
        raise refused
    return RunOutcome(run.run_dir, result, interrupted, run.phases.timings)


def _run_with_signals(run: Run) -> str | None:
    """Run the async main; SIGINT/SIGTERM cancel it and are reported by name."""
    caught: list[str] = []

    async def guarded() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda s=sig: (caught.append(s.name), task.cancel()))
        try:
            await run.main()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    try:
        asyncio.run(guarded())
    except asyncio.CancelledError:
        if not caught:
            raise
    except KeyboardInterrupt:
        caught.append("SIGINT")
    return caught[0] if caught else None
