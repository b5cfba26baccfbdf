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
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness import config
from harness.backends.base import Grudge, NodeAddressing
from harness.backends.lazystore import LazyStores
from harness.net import iptables, netns
from harness.runstate import RunState, kill_pid, pid_alive
from harness.scenario import Scenario


@dataclass
class _Node:
    name: str
    conf: Path
    data: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    log_fh: IO[bytes] | None = None


class LocalCluster(NodeAddressing):
    """A cluster of local nats-server processes in per-node network namespaces."""

    def __init__(self, scenario: Scenario, binary: Path, workdir: Path, state: RunState) -> None:
        self.scenario = scenario
        self.binary = binary
        self.workdir = workdir
        self.state = state
        self.nodes = scenario.node_names
        self.topo = netns.Topology(state.tag, self.nodes, netns.pick_subnet(state.tag))
        self._nodes: dict[str, _Node] = {}
        self.stores = LazyStores(state, scenario.storage.writeback_after)

    # -- lifecycle --------------------------------------------------------
    def start(self) -> None:
        netns.require_root()
        for ns in [self.topo.bridge_ns, *(self.topo.ns(n) for n in self.nodes)]:
            self.state.add_namespace(ns)
        self.topo.create()
        peers = [self.address(n) for n in self.nodes]
        for node in self.nodes:
            d = self.workdir / node
            (d / "data").mkdir(parents=True, exist_ok=True)
            conf = config.render(self.scenario, self.address(node), peers, d / "data")
            path = config.write_config(conf, d / "nats-server.conf")
            self._nodes[node] = _Node(node, path, d / "data", d / "nats-server.log")
            if self.scenario.uses_lazyfs:
                self.stores.add(node, d)
        for node in self.nodes:
            self.start_node(node)

    def power_fail(self, nodes: list[str]) -> dict[str, int]:
        """Power loss on ``nodes`` at one instant: kill all, drop un-fsynced data, remount.

        Returns the bytes dropped per node. The servers stay down; ``start_node``
        brings them back.
        """
        for node in nodes:
            self.kill(node)
        return self.stores.power_fail(nodes)

    def lazyfs_stats(self) -> dict[str, dict[str, int]]:
        """Each mounted node's lazyfs counters (un-fsynced bytes, fsyncs, drops…)."""
        return self.stores.stats()

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
        if self.running(node):
            self._nodes[node].proc.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]

    def resume(self, node: str) -> None:
        if self.running(node):
            self._nodes[node].proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]

    # -- network ----------------------------------------------------------
    def isolate(self, grudge: Grudge) -> None:
        iptables.apply_grudge(grudge, self.topo.exec_prefix, self.topo.ip)

    def heal_network(self) -> None:
        for node in self.nodes:
            if self.topo.ns(node) in self.topo.created:
                iptables.flush(self.topo.exec_prefix(node))

    def rules(self, node: str) -> list[str]:
        return iptables.rules(self.topo.exec_prefix(node))

    # -- evidence and teardown --------------------------------------------
    def collect(self, dest: Path) -> None:
        for node, n in self._nodes.items():
            out = dest / node
            out.mkdir(parents=True, exist_ok=True)
            lazylog = n.log.parent / "lazyfs.log"
            for src in (n.conf, n.log, lazylog):
                if src.exists():
                    shutil.copy2(src, out / src.name)

    def stop(self) -> None:
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
        shutil.rmtree(self.workdir, ignore_errors=True)  # configs, data: collected by now
