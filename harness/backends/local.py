"""Local backend: each node a nats-server process in its own network namespace.

``LocalCluster`` renders a config per node (``harness.config``), builds the
namespaces (``harness.net.netns``), and starts ``ip netns exec <ns>
nats-server -c <conf>`` — ``ip netns exec`` execs, so the pid we hold is the
server's own and SIGKILL/SIGSTOP reach it directly. Every pid, namespace
and mount is written to the run's state file the moment it exists, so
``nats-chaos clean`` can finish the job if the harness itself is killed.

With ``storage.lazyfs`` (implied by power-loss faults) each node's store dir
is a lazyfs mount over ``<node>/backing``: written data stays in the lazyfs
process's memory until nats-server fsyncs it, so :meth:`power_fail` — kill,
drop every un-fsynced byte, remount — leaves the node with exactly what a
machine that lost power would find on disk.

Abilities: ``process``, ``network``, ``power``, ``files`` and, where the
kernel has the qdisc, ``netem``. The network, power, files and collect
halves are shared with the Docker backend (:mod:`harness.backends.host`);
a node's Remote runs commands behind ``nsenter --net=/run/netns/<ns> --``.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from checkers import files
from harness import config, servers
from harness.backends.host import HostCluster, HostRemote, host_abilities
from harness.backends.lazystore import LazyStores
from harness.net import netns
from harness.runstate import RunState, kill_pid, pid_alive

if TYPE_CHECKING:
    from harness.scenario import Scenario


@dataclass
class _Node:
    name: str
    conf: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    log_fh: IO[bytes] | None = None


class LocalCluster(HostCluster):
    """A cluster of local nats-server processes in per-node network namespaces."""

    def __init__(self, scenario: Scenario, binary: Path, workdir: Path, state: RunState) -> None:
        super().__init__()
        self._of_run(scenario, workdir, state)
        self.binary = binary
        self.topo = netns.Topology(state.tag, self.nodes, netns.pick_subnet(state.tag))
        self._nodes: dict[str, _Node] = {}
        self.stores = LazyStores(
            state,
            scenario.storage.writeback_after,
            scenario.storage.cache_bytes,
            scenario.server.sync_interval,
        )
        self.abilities = host_abilities()
        self._remotes = {n: HostRemote(partial(self.topo.exec_prefix, n)) for n in self.nodes}

    # -- addressing, remotes ------------------------------------------------
    def ip(self, node: str) -> str:
        return self.topo.ip(node)

    @property
    def host_ip(self) -> str:
        return self.topo.host_ip

    def remote(self, node: str) -> HostRemote:
        return self._remotes[node]

    def has_netns(self, node: str) -> bool:
        return self.topo.ns(node) in self.topo.created

    def server_info(self) -> dict[str, Any]:
        return {
            "backend": "local",
            "binary": str(self.binary),
            "version": servers.binary_version(self.binary),
            "sha256": servers.sha256(self.binary),
        }

    # -- lifecycle --------------------------------------------------------
    def start(self) -> None:
        netns.require_root()
        for ns in [self.topo.bridge_ns, *(self.topo.ns(n) for n in self.nodes)]:
            self.state.add_namespace(ns)
        self.topo.create()
        peers = [self.address(n) for n in self.nodes]
        for node in self.nodes:
            d = self.node_dir(node)
            store = Path(self.store_dir(node))
            store.mkdir(parents=True, exist_ok=True)
            conf = config.render(self.scenario, self.address(node), peers, store)
            path = config.write_config(conf, d / "nats-server.conf")
            self._nodes[node] = _Node(node, path, d / "nats-server.log")
            if self.scenario.uses_lazyfs:
                self.stores.add(node, d)
        for node in self.nodes:
            self.start_node(node)

    def start_node(self, node: str) -> None:
        n = self._nodes[node]
        if n.proc is not None and n.proc.poll() is None:
            return
        if n.log_fh is None:
            n.log_fh = open(n.log, "ab")  # noqa: SIM115 - closed in stop()
        cmd = [*self.topo.exec_prefix(node), str(self.binary), "-c", str(n.conf)]
        n.proc = subprocess.Popen(
            cmd,
            stdout=n.log_fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.state.add_pid(n.proc.pid, self.binary.name)

    def running(self, node: str) -> bool:
        n = self._nodes.get(node)
        return bool(n and n.proc and n.proc.poll() is None)

    def pid(self, node: str) -> int | None:
        n = self._nodes.get(node)
        return n.proc.pid if n and n.proc and n.proc.poll() is None else None

    def kill(self, node: str) -> None:
        self._signal_and_reap(node, signal.SIGKILL)

    def terminate(self, node: str, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM), escalating to SIGKILL after ``timeout``."""
        n = self._nodes[node]
        if not self.running(node) or n.proc is None:
            return
        n.proc.send_signal(signal.SIGCONT)
        n.proc.terminate()
        try:
            n.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(node)
            return
        self.state.drop_pid(n.proc.pid)

    def _signal_and_reap(self, node: str, sig: signal.Signals) -> None:
        n = self._nodes[node]
        if n.proc is None or n.proc.poll() is not None:
            return
        n.proc.send_signal(signal.SIGCONT)  # a paused process must die too
        n.proc.send_signal(sig)
        n.proc.wait(30)
        self.state.drop_pid(n.proc.pid)

    def pause(self, node: str) -> None:
        proc = self._nodes[node].proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGSTOP)

    def resume(self, node: str) -> None:
        proc = self._nodes[node].proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)

    # -- evidence and teardown --------------------------------------------
    def _copy_logs(self, node: str, out: Path) -> None:
        n = self._nodes.get(node)
        if n is not None and n.log.exists():
            files.copy(n.log, out / n.log.name)

    def stop(self, keep_files: bool = False) -> None:
        """Kill every server, unmount, delete the namespaces and the work dir. Safe to repeat."""
        errors: list[str] = []
        for n in self._nodes.values():
            if n.proc is not None and n.proc.poll() is None:
                kill_pid(n.proc.pid, self.binary.name)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    n.proc.wait(10)
            if n.proc is not None and not pid_alive(n.proc.pid):
                self.state.drop_pid(n.proc.pid)
            if n.log_fh is not None:
                n.log_fh.close()
                n.log_fh = None
        errors += self.stores.release()
        errors += netns.destroy_tagged(self.state.tag, self.topo.created)
        if errors:  # keep the work dir: `clean` finds what is left through the state file
            raise RuntimeError("; ".join(errors) + " (run `nats-chaos clean`)")
        if not keep_files:
            shutil.rmtree(self.workdir, ignore_errors=True)  # configs, data: collected by now
