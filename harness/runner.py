"""One run, phase by phase (docs/contracts.md §4). No fault, workload or checker logic here.

In: a validated :class:`~harness.scenario.Scenario` and :class:`RunOptions`
(where results go, and the :class:`Backend` that makes the cluster and its
clients: the real backends, or ``harness.backends.fake``). Out: a result
folder and a :class:`RunOutcome`.

``execute`` runs the preflight (nothing of the run exists yet: exit 3 on a
refusal — the host, a results dir that cannot be written, a server too old;
exit 2 for a config ``nats-server -t`` rejects), creates the result folder
and then the phases, each within its deadline (``RecoverySpec.deadline``):
cluster up → workload setup → main
phase (the client interpreter runs the workload's operations — in the
harness, or in client processes (``harness.clientprocs``) whose history
segments are merged into the history when it ends — while the nemesis
plays the fault plan) → heal → the workload's recovery wait → its
read preparation → its final reads (through the interpreter) → heal after
reads → collect → teardown. The runner calls only the workload's hooks
(``harness.workloads.base``), the nemesis and the cluster's core.

Whatever happens — a phase past its deadline, an error, Ctrl-C, SIGTERM —
collect and teardown still run (each in a thread with its own deadline, so
a stuck release cannot hang the harness), the history written so far stays
on disk and the checkers judge what it holds. A SIGINT/SIGTERM while the
cluster runs cuts the run short (``interrupted``: the verdict is at best
unknown); one after that — in teardown, the checkers or the report — cuts
nothing: the run finishes its folder and exits 130/143 all the same. A
second signal then stops at once (:class:`~harness.errors.Stopped`; in
teardown, once the cluster is released), leaving the history and the files
already written whole (``harness.latesignals``). A run that broke after it
started comes back with ``broken`` set (exit 4); bad input met mid-run is
raised once the folder is written (exit 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from checkers import files
from harness import backends, clients, config, results, segments, servers, workloads
from harness.backends.base import Cluster, PowerControl, ProcessControl, ServerBinary
from harness.clientprocs import ClientProcesses, Plan, plans_for
from harness.clients import ClientPool, Connect
from harness.dirs import require_writable, stamped_dir
from harness.errors import (
    BadInput,
    ClusterNotFormed,
    HarnessError,
    PhaseDeadline,
    ResultsNotWritten,
    RunBroken,
    TeardownFailed,
)
from harness.faults import schedule
from harness.faults.nemesis import Nemesis
from harness.faults.schedule import Window
from harness.history import NEMESIS, HistoryWriter
from harness.interpreter import Interpreter
from harness.latesignals import LateSignals, StopNow
from harness.offline.reads import read_offline
from harness.progress import Progress, Status
from harness.runstate import WORK_ROOT, RunState, new_tag
from harness.scenario import Scenario
from harness.workloads import REGISTRY as WORKLOADS
from harness.workloads import Workload, WorkloadContext
from harness.workloads.base import ReadWatch, pipeline, pipelining

log = logging.getLogger("nats-chaos")
T = TypeVar("T")
CLIENT_START = 30.0  # seconds client processes have to start and connect (added to the main's)


@dataclass(frozen=True)
class Backend:
    """How the runner gets a cluster and its clients (the real backends, or a fake)."""

    preflight: Callable[[Scenario], None]
    binary: Callable[[Scenario, str | None], Path | None]
    make_cluster: Callable[[Scenario, Path | None, Path, RunState], Cluster]
    connect: Callable[[Cluster], Connect]
    client_processes: bool = True  # clients may run in OS processes of their own (real URLs)


REAL_BACKEND = Backend(
    preflight=backends.preflight,
    binary=backends.binary_for,
    make_cluster=backends.make_cluster,
    connect=lambda cluster: clients.connect_real(cluster.client_url),
)


@dataclass
class RunOptions:
    """How to run a scenario (everything that is not the scenario itself)."""

    results_dir: Path = Path("results")
    nats_server: str | None = None
    keep_data: bool = True
    echo: Any = print
    backend: Backend = REAL_BACKEND
    work_root: Path = WORK_ROOT


@dataclass
class RunOutcome:
    """What ``run`` prints and exits with."""

    run_dir: Path
    result: dict[str, Any]
    interrupted: str | None = None  # the first SIGINT/SIGTERM, also one after the main phase
    timings: dict[str, float] = field(default_factory=dict)
    broken: str | None = None  # why the run broke (exit 4), if it did


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
    """``root/<scenario>/<YYYYmmddTHHMMSS>``, suffixed if that second is taken (``dirs``)."""
    return stamped_dir(root / scenario)


class _RunLog(logging.FileHandler):
    """``harness.log``; a line that cannot be written (a full disk) is dropped, not a traceback."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the last lines could not be flushed
            super().close()


def _log_to(run_dir: Path) -> logging.Handler:
    handler = _RunLog(run_dir / "harness.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    return handler


async def wait_ready(cluster: Cluster, timeout: float = 60.0, poll: float = 0.2) -> None:
    """Until every node reports a JetStream meta leader; else :class:`ClusterNotFormed`."""
    deadline = time.monotonic() + timeout
    while True:
        leaders = await asyncio.gather(
            *(asyncio.to_thread(cluster.monitor(n).meta_leader) for n in cluster.nodes)
        )
        if all(leaders):
            return
        if time.monotonic() > deadline:
            silent = [n for n, who in zip(cluster.nodes, leaders, strict=True) if not who]
            raise ClusterNotFormed(
                f"no JetStream meta leader after {timeout:.0f}s on {', '.join(silent)} "
                "(see nodes/*/nats-server.log)"
            )
        await asyncio.sleep(poll)


async def _keep_alive(cm: asyncio.Timeout, watch: ReadWatch, seconds: float) -> None:
    """Keep ``cm``'s deadline at least ``seconds`` after ``watch``'s last tick."""
    while True:
        await asyncio.sleep(min(1.0, seconds / 4))
        when = cm.when()
        if when is not None and watch.last + seconds > when:
            cm.reschedule(watch.last + seconds)


class Run:
    """State shared by the phases of one run."""

    def __init__(
        self, scenario: Scenario, options: RunOptions, backend: Backend, binary: Path | None
    ) -> None:
        self.scenario = scenario
        self.binary = binary
        self.options = options
        self.backend = backend
        self.phases = _Phases(options.echo)
        self.run_dir = new_run_dir(options.results_dir, scenario.name)
        self.state = RunState(new_tag(), run_dir=str(self.run_dir.resolve()))
        self.workdir = options.work_root / self.state.tag
        self.cluster: Cluster | None = None
        self.history: HistoryWriter | None = None
        self.extra: dict[str, Any] = {"tag": self.state.tag}
        self.overdue: list[dict[str, Any]] = []  # phases that passed their deadline
        window, processes = pipelining(scenario.workload, scenario.concurrency)
        self.pipelining = (window, processes if backend.client_processes else 0)
        self.clients: ClientProcesses | None = None
        self.collect_failed: str | None = None  # why the nodes' files are not all in nodes/

    async def phase(
        self,
        name: str,
        key: str,
        work: Awaitable[T],
        limit: float | None = None,
        watch: ReadWatch | None = None,
    ) -> T:
        """Run one phase within its deadline; past it, record it and raise PhaseDeadline.

        With ``watch`` the deadline counts from the phase's start or from the
        watch's last tick, whichever is later (the final reads: a read still
        receiving messages is never cut short).
        """
        seconds = limit if limit is not None else self.scenario.recovery.deadline(key)
        with self.phases(name):
            try:
                async with asyncio.timeout(seconds) as cm:
                    if watch is None:
                        return await work
                    keeper = asyncio.create_task(_keep_alive(cm, watch, seconds))
                    try:
                        return await work
                    finally:
                        keeper.cancel()
            except TimeoutError:
                if not cm.expired():
                    raise
                self.overdue.append({"phase": key, "deadline": seconds})
                log.error("phase %s passed its deadline of %gs", key, seconds)
                raise PhaseDeadline(key, seconds) from None

    async def soft_phase(
        self,
        name: str,
        key: str,
        work: Awaitable[T],
        limit: float | None = None,
        watch: ReadWatch | None = None,
    ) -> T | None:
        """A phase the run goes on after: past its deadline it is recorded and yields None."""
        try:
            return await self.phase(name, key, work, limit, watch)
        except PhaseDeadline:
            return None

    async def main(self) -> None:
        sc = self.scenario
        self.cluster = cluster = self.backend.make_cluster(
            sc, self.binary, self.workdir, self.state
        )
        info = await asyncio.to_thread(cluster.server_info)
        self.extra["nats_server"] = self.extra["server"] = info  # backend, binary or image
        self.history = history = HistoryWriter(self.run_dir / "history.jsonl")
        pool = ClientPool(self.backend.connect(cluster))
        interp = Interpreter(history, pool.get)

        def note(f: str, value: dict[str, Any]) -> None:
            history.append("info", NEMESIS, f, value)

        ctx = WorkloadContext(sc, cluster, pool.get, note)
        workload = WORKLOADS[sc.workload.name](ctx)
        nemesis = Nemesis(cluster, history, sc.stream.name)
        if self.pipelining[1]:  # they import what they run while the cluster comes up
            where = self.run_dir.resolve() / segments.SEGMENTS
            self.clients = ClientProcesses(self.pipelining[1], interp.counters, self.state, where)
            await self.clients.spawn()
        windows = schedule.plan(sc)
        for line in schedule.describe(windows):
            log.info("plan: %s", line)
        try:
            await self.phase("cluster up", "cluster_up", self._cluster_up(cluster))
            self.extra.update(await self.phase("workload setup", "setup", workload.setup()))
            main = f"main phase ({sc.time_limit:.0f}s, {len(windows)} faults planned)"
            limit = sc.time_limit + sc.workload.timeout + sc.recovery.grace
            if self.pipelining[1]:
                limit += CLIENT_START
            work = self._main_phase(interp, workload, nemesis, windows)
            await self.soft_phase(main, "main", work, limit)
            self._absorb(interp)
            await self.soft_phase("heal", "heal", nemesis.heal_all())
            began = history.now()
            self.extra["recovery"] = recovery = await self.soft_phase(
                "recovery wait", "recovery", workload.recover(sc.recovery.timeout)
            )
            settled = recovery if recovery is not None else {"converged": False, "overdue": True}
            bound = {"bound": sc.recovery.timeout, "began": began}
            note("recovery", {"settle": "recovery", **settled, **bound})  # the checkers read it
            isolated = await self.soft_phase(
                "isolate for reads", "isolation", workload.prepare_reads(sc.recovery.isolation)
            )
            self.extra.update(isolated or {})
            final = workload.final_ops()
            reading = interp.execute(final, workload.invoke)
            types = await self.soft_phase("final reads", "reads", reading, watch=ctx.reads)
            await self.soft_phase("heal after reads", "heal", workload.after_reads())
            offline_fs = set(getattr(workload, "offline_fs", ()))
            again = [
                op
                for op, t in zip(final, types or [], strict=False)
                if t != "ok" and op.f in offline_fs and op.node is not None
            ]
            binary = await asyncio.to_thread(self.offline_binary, cluster) if again else None
            if binary is not None:
                where = self.workdir / "offline"
                reread = read_offline(cluster, workload, interp, again, binary, where, self.state)
                self.extra["offline_reads"] = await self.soft_phase(
                    "offline reads", "reads", reread, watch=ctx.reads
                )
        finally:
            if sc.uses_lazyfs and isinstance(cluster, PowerControl):
                self.extra["lazyfs"] = await asyncio.to_thread(cluster.lazyfs_stats)
            await workload.close()
            await pool.close()
            if nemesis.active:
                with contextlib.suppress(Exception):
                    await nemesis.heal_all()
            self.extra["faults_started"] = nemesis.started

    def offline_binary(self, cluster: Cluster) -> Path | None:
        """The nats-server an offline read runs, the build the nodes ran: the run's binary
        (a Docker run's image is built from it), else a copy out of the run's image (a
        scenario-named one); None when there is none (the fake). Recorded as
        ``offline_binary`` (``path``, ``sha256``, ``source``)."""
        binary, source = self.binary, "the run's binary"
        if binary is None and isinstance(cluster, ServerBinary):
            try:
                binary = cluster.server_binary(self.workdir / "offline" / "nats-server")
            except Exception as e:
                log.warning("no nats-server for the offline reads: %s", e)
                self.extra["offline_binary"] = {"error": str(e)[:300]}
                return None
            source = f"copied out of {cluster.server_info().get('image')}"
        if binary is not None:
            self.extra["offline_binary"] = {
                "path": str(binary), "sha256": servers.sha256(binary), "source": source,
            }  # fmt: skip
        return binary

    async def _cluster_up(self, cluster: Cluster) -> None:
        await asyncio.to_thread(cluster.start)
        await wait_ready(cluster, self.scenario.recovery.cluster_up)

    async def _main_phase(
        self, interp: Interpreter, workload: Workload, nemesis: Nemesis, windows: list[Window]
    ) -> None:
        sc = self.scenario
        window, processes = self.pipelining
        self.extra["clients"] = {"window": window, "processes": processes}
        try:
            if self.clients is not None:
                await self.clients.start(self._plans(window, processes), CLIENT_START)
            t0 = time.monotonic()
            if self.history is not None:  # the clock of the fault schedule (and of --plan)
                self.extra["main_began_s"] = round(self.history.now() / 1e9, 3)
            deadline = t0 + sc.time_limit
            ticker = asyncio.create_task(self._progress(interp, nemesis, t0))
            try:
                await asyncio.gather(
                    self._clients(interp, workload, window, deadline),
                    nemesis.run(windows, t0),
                )
            finally:
                ticker.cancel()
        finally:
            if self.clients is not None:
                await self.clients.stop()  # and their stderr into harness.log

    def _clients(
        self, interp: Interpreter, workload: Workload, window: int, deadline: float
    ) -> Awaitable[None]:
        """The main phase's client side: the client processes, or the harness's interpreter."""
        if self.clients is not None:
            assert self.history is not None
            return self.clients.run(self.history.t0, deadline)
        sc = self.scenario
        client: Any = workload
        if window > 1:
            client = pipeline(WORKLOADS[sc.workload.name], sc, 0, 1)
        nodes = self.cluster_nodes
        spec = sc.workload
        return interp.run(client, nodes, sc.concurrency, spec.rate, deadline, window, spec.timeout)

    def _plans(self, window: int, processes: int) -> list[Plan]:
        assert self.cluster is not None
        cluster, sc = self.cluster, self.scenario
        urls = {n: cluster.client_url(n) for n in cluster.nodes}
        return plans_for(
            sc.to_yaml(), urls, self.cluster_nodes, sc.concurrency, window, processes,
            self.run_dir.resolve(), f"nats-chaos-{self.state.tag}",
        )  # fmt: skip

    def _absorb(self, interp: Interpreter | None) -> None:
        """Merge the client processes' history segments into the history (once they exist)."""
        if self.history is None or not segments.pending(self.history.path):
            return
        top = self.history.absorb(self.run_dir / segments.SEGMENTS)
        if top is not None and interp is not None:
            interp.continue_after(top)

    @property
    def cluster_nodes(self) -> list[str]:
        assert self.cluster is not None
        return list(self.cluster.nodes)

    async def _progress(self, interp: Interpreter, nemesis: Nemesis, t0: float) -> None:
        progress, limit, c = self.phases.progress, self.scenario.time_limit, interp.counters
        while True:
            await asyncio.sleep(progress.interval)
            elapsed = time.monotonic() - t0
            progress.update(Status(elapsed, limit, c.ok, c.fail, c.info, nemesis.active_kinds))

    def teardown(self) -> str | None:
        """Collect evidence and release every resource, each within its deadline.

        Returns why the release failed (the state file is then kept, so
        ``nats-chaos clean`` can finish), or None. When the nodes' files could
        not all be copied into ``nodes/`` (a full disk), the work dir and the
        state file are kept too: ``clean`` copies them once it can.
        """
        if self.clients is not None:
            self.clients.kill()
        if self.history is not None:
            with contextlib.suppress(Exception):  # an interrupted main phase left segments
                self._absorb(None)
            self.history.close()
            history = self.run_dir / "history.jsonl"
            with contextlib.suppress(OSError):  # no op recorded: no 0-byte file either
                if history.stat().st_size == 0:
                    history.unlink()
        if self.cluster is None:
            self._forget()
            return None
        bounds = self.scenario.recovery
        late = self._within("collect", bounds.collect, self._collect)
        if late is not None and self.collect_failed is None:  # still copying: keep the sources
            self.collect_failed = late
        problem = self._within("teardown", bounds.teardown, self._release)
        if problem is None and self.collect_failed is None:
            self._forget()
        return problem

    def _collect(self) -> None:
        cluster = self.cluster
        assert cluster is not None
        nodes_dir = self.run_dir / "nodes"
        try:
            if isinstance(cluster, ProcessControl):
                for node in cluster.nodes:
                    if cluster.running(node):
                        cluster.terminate(node)
            cluster.collect(nodes_dir, data=self.options.keep_data)
        except Exception as e:
            log.warning("collecting evidence failed: %s", e)
            self.collect_failed = str(e)
            self.options.echo(
                f"warning: the nodes' files could not all be copied into {nodes_dir}; "
                f"they are kept in {self.workdir}"
            )

    def _release(self) -> None:
        assert self.cluster is not None
        try:
            self.cluster.stop(keep_files=self.collect_failed is not None)
        except Exception as e:  # keep the state file: `nats-chaos clean` finishes the job
            log.error("releasing the cluster failed: %s", e)
            self.options.echo(f"warning: {e}")
            raise TeardownFailed(f"releasing the cluster failed: {e}") from None

    def _within(self, key: str, seconds: float, work: Callable[[], None]) -> str | None:
        """Run ``work`` in a thread for at most ``seconds``; what went wrong, or None."""
        failed: list[BaseException] = []

        def target() -> None:
            try:
                work()
            except BaseException as e:
                failed.append(e)

        thread = threading.Thread(target=target, name=f"nats-chaos-{key}", daemon=True)
        started = time.monotonic()
        with self.phases(key):
            thread.start()
            thread.join(seconds)
        if thread.is_alive():  # a daemon thread: it cannot keep the harness from exiting
            self.overdue.append({"phase": key, "deadline": seconds})
            log.error("phase %s passed its deadline of %gs", key, seconds)
            return str(PhaseDeadline(key, seconds))
        if failed:
            return str(failed[0])
        log.info("%s took %.1fs", key, time.monotonic() - started)
        return None

    def _forget(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.state.remove()


def execute(scenario: Scenario, options: RunOptions) -> RunOutcome:
    """Run ``scenario`` end to end; the result folder is written even when interrupted.

    Preflight problems raise before anything of the run exists (exit 3); bad
    input met mid-run raises after the folder is written (exit 2). A run that
    broke after it started (a phase past its deadline, a cluster that never
    formed, a failed teardown, a host command failing mid-run) returns an
    outcome with ``broken`` set (exit 4).
    """
    backend = options.backend
    backend.preflight(scenario)  # root, tools, an engine, and every planned fault's abilities
    schedule.plan(scenario)  # a fault the scenario makes impossible (a ring of 3 nodes): exit 2
    require_writable(options.results_dir, "the results dir")  # read-only, full: exit 3
    server = scenario.server
    if options.nats_server is None and server.binary is None and server.image is None:
        workloads.check_server(scenario, server.version)  # refuse an old one before installing it
    binary = backend.binary(scenario, options.nats_server)
    if binary is not None:  # a server too old for the workload: say so before anything runs
        workloads.check_server(scenario, servers.binary_version(binary))
        config.server_check(scenario, binary)  # the server's own error for a config it rejects
    run = Run(scenario, options, backend, binary)
    files.write_text(run.run_dir / "scenario.yaml", scenario.to_yaml())
    handler = _log_to(run.run_dir)
    run.state.save()
    caught: list[str] = []  # every SIGINT/SIGTERM of the run, in order
    interrupted: str | None = None  # the one that cut the cluster's part short
    refused: BadInput | None = None  # bad input met mid-run: exit 2 once the folder is written
    broken: str | None = None
    late = LateSignals(caught, options.echo, run.run_dir)
    try:
        interrupted = _run_with_signals(run, caught, then=late.install)
    except BadInput as e:
        refused = e
        log.error("run stopped: %s", e)
    except RunBroken as e:
        broken = str(e)
        log.error("run broke: %s", e)
    except HarnessError as e:  # CannotRun after preflight: the host failed the run mid-way
        broken = str(e)
        log.error("run broke: %s", e)
    except Exception as e:
        broken = f"{type(e).__name__}: {e}"
        log.exception("run failed")
    finally:
        late.install()  # from here a signal is recorded; in teardown a second one waits
        problem = run.teardown()
    try:
        late.stop_if_asked_twice()
        late.at_once = True
        outcome = _finish(run, interrupted, refused, broken, problem, caught)
    except StopNow:
        late.has_landed = True  # first, and no call: the stop is not raised again
        with contextlib.suppress(OSError):
            results.link_latest(run.run_dir)
        raise late.stopped() from None
    finally:
        late.restore()
        _close_log(handler)
    if refused is not None:  # the folder (history, logs) is written; now say why, in one line
        raise refused
    return outcome


def _close_log(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()


def _finish(
    run: Run,
    interrupted: str | None,
    refused: BadInput | None,
    broken: str | None,
    problem: str | None,
    caught: list[str],
) -> RunOutcome:
    """Check the history, write the result folder and link it as ``latest`` (not when the
    run was refused: bad input met mid-run is no run to show)."""
    options, scenario = run.options, run.scenario
    if broken is None and problem is not None:
        broken = problem
    if broken is None and run.overdue:
        first = run.overdue[0]
        broken = str(PhaseDeadline(first["phase"], first["deadline"]))
    if broken:
        options.echo(f"run broke: {broken}")
    run.extra["deadlines_passed"] = run.overdue
    error = str(refused) if refused is not None else broken
    try:
        result = results.write(
            run.run_dir, scenario, run.extra, run.phases.timings, interrupted, error
        )
        if refused is None:  # a refused run (exit 2) keeps its folder but is never `latest`
            results.link_latest(run.run_dir)
    except OSError as e:  # a full or failing disk: say what is where, in one line
        log.error("the result folder could not be written: %s", e)
        if refused is None:
            with contextlib.suppress(OSError):  # a link needs no data block: it may still fit
                results.link_latest(run.run_dir)
        raise _not_written(run, e.strerror or str(e)) from None
    if run.collect_failed is not None:  # the verdict is written; the evidence is not all there
        raise _not_written(run, run.collect_failed, verdict=results.verdict_line(result))
    signal_name = caught[0] if caught else None
    return RunOutcome(run.run_dir, result, signal_name, run.phases.timings, broken)


def _not_written(run: Run, why: str, verdict: str | None = None) -> ResultsNotWritten:
    """What a run whose result folder could not all be written says, and where its data is."""
    history = run.run_dir / "history.jsonl"
    n = run.history.count if run.history is not None else 0
    if verdict is None:
        line = f"{run.run_dir}: the result folder could not be written ({why}); "
    else:
        line = f"{run.run_dir}: {verdict}, but the nodes' files could not all be copied ({why}); "
    line += f"the history has {n:,} ops in {history}"
    if run.collect_failed is not None and run.workdir.exists():
        line += (
            f"; the nodes' logs and data are kept in {run.workdir} "
            "(`nats-chaos clean` copies them into the result folder once there is room)"
        )
    return ResultsNotWritten(line)


def _run_with_signals(run: Run, caught: list[str], then: Callable[[], None]) -> str | None:
    """Run the async main; SIGINT/SIGTERM cancel it and are recorded (by name) in ``caught``.

    ``then`` takes the signals over the moment the main is done, so none
    meets the default handlers while the loop shuts down.
    """
    before = len(caught)

    async def guarded() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop(sig: signal.Signals) -> None:
            caught.append(sig.name)
            task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop, sig)
        try:
            await run.main()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            then()

    try:
        _run_loop(guarded())
    except asyncio.CancelledError:
        if len(caught) == before:
            raise
    except KeyboardInterrupt:
        caught.append("SIGINT")
    return caught[before] if len(caught) > before else None


async def _cancel_the_rest() -> None:
    """Cancel every task still pending on the running loop and let each finish."""
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run``, except that it never waits for worker threads still running.

    A phase past its deadline leaves its blocking call (a host command, a
    monitor request) running in a thread; ``asyncio.run`` would wait for it
    when it shuts down the loop, and the deadline would mean nothing. Here the
    executor is shut down without waiting: teardown goes ahead, and a late
    thread finishes (or is ended with the process) on its own.
    """
    loop = asyncio.new_event_loop()
    executor = ThreadPoolExecutor(thread_name_prefix="nats-chaos")
    loop.set_default_executor(executor)
    try:
        loop.run_until_complete(main)
    finally:
        try:
            loop.run_until_complete(_cancel_the_rest())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            loop.close()
