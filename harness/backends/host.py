"""What the local and Docker backends share: nodes on THIS host, each in its own namespace.

Both backends run every node on the harness's own machine, in a network
namespace of its own, with its store in a host directory
(``<workdir>/<node>/data``; the Docker backend bind-mounts it into the
container). So one :class:`Remote` implementation serves both:

- :class:`HostRemote` runs an argv behind a namespace prefix — ``nsenter
  --net=/run/netns/<ns> --`` for a local node, ``nsenter -t <pid> -n`` for a
  container (looked up at each call: a restarted container has a new pid)
  — and reads and writes files as host paths;

and one partial cluster, :class:`HostCluster`, implements on top of a
backend's ``ip``, ``host_ip``, ``remote``, ``has_netns``, ``kill`` and
``_copy_logs``: addressing and monitors, the ``network`` ability (grudges
and client cuts as :mod:`harness.net.iptables` rules through the Remote,
remembered so a node whose namespace is new gets them again), the
``power`` ability (:class:`~harness.backends.lazystore.LazyStores`), the
``files`` ability (``store_dir``) and ``collect``.

:func:`host_lacks` says which abilities this host cannot give either
backend (netem without the kernel qdisc).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from checkers import files
from harness import config
from harness.backends.base import ABILITIES, NETEM, Grudge, Remote
from harness.backends.lazystore import LazyStores
from harness.monitor import HttpMonitor, NodeMonitor
from harness.net import iptables, netem, netns
from harness.runstate import RunState

if TYPE_CHECKING:
    from harness.scenario import Scenario

log = logging.getLogger(__name__)
Step = tuple[str, Callable[[Path], None]]  # what a collect step copies, and the copy into out/


def host_lacks(ability: str) -> str | None:
    """Why this host cannot give a local or Docker node ``ability`` (None: it can)."""
    if ability == NETEM:
        why = netem.probe()
        return None if why is None else f"which this kernel lacks ({why})"
    return None if ability in ABILITIES else "which no backend knows"


def host_abilities() -> frozenset[str]:
    """The abilities a cluster of nodes on this host has."""
    return frozenset(a for a in ABILITIES if host_lacks(a) is None)


class HostRemote:
    """A node on this host: commands behind a namespace prefix, files as host paths.

    With ``root``, a relative path names a file under it (the fake cluster's
    nodes keep their stores that way).
    """

    def __init__(self, prefix: Callable[[], list[str]], root: Path | None = None) -> None:
        self.prefix = prefix
        self.root = root

    def _path(self, path: str) -> Path:
        return self.root / path if self.root is not None else Path(path)

    def run(
        self,
        argv: Sequence[str],
        check: bool = True,
        timeout: float = 30.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return netns.run([*self.prefix(), *argv], check=check, timeout=timeout, input=input)

    def read(self, path: str, offset: int = 0, length: int = -1) -> bytes:
        with open(self._path(path), "rb") as fh:
            fh.seek(offset)
            return fh.read(length)

    def write(self, path: str, offset: int, data: bytes) -> None:
        fd = os.open(self._path(path), os.O_WRONLY)
        try:
            os.pwrite(fd, data, offset)
            os.fsync(fd)
        finally:
            os.close(fd)

    def size(self, path: str) -> int:
        return os.stat(self._path(path)).st_size

    def truncate(self, path: str, size: int) -> None:
        os.truncate(self._path(path), size)

    def files(self, root: str) -> list[tuple[str, int]]:
        base = self._path(root)
        if not base.is_dir():
            return []
        found = []
        for p in base.rglob("*"):
            try:
                if p.is_file() and not p.is_symlink():
                    found.append((str(p.relative_to(base)), p.stat().st_size))
            except OSError:
                continue  # removed under our feet
        return sorted(found)

    def fetch(self, root: str, dest: Path) -> None:
        try:
            shutil.copytree(self._path(root), dest, symlinks=True, dirs_exist_ok=True)
        except shutil.Error as e:  # files that vanished mid-copy: keep the rest
            log.warning("fetch %s: %d files skipped", root, len(e.args[0]))


def archive(remote: Remote, root: str, tar_path: Path) -> None:
    """Fetch ``root`` through ``remote`` and write it to ``tar_path`` as ``data/``."""
    with tempfile.TemporaryDirectory(dir=tar_path.parent, prefix=".fetch-") as tmp:
        local = Path(tmp) / "data"
        remote.fetch(root, local)
        with (
            files.atomic_file(tar_path, binary=True) as fh,
            tarfile.open(fileobj=fh, mode="w:gz") as tar,
        ):
            tar.add(local, arcname="data")


class HostCluster(ABC):
    """The shared half of a cluster whose nodes live on this host (see the module doc)."""

    nodes: list[str]
    workdir: Path
    stores: LazyStores
    abilities: frozenset[str]

    def __init__(self) -> None:
        self._grudge: dict[str, frozenset[str]] = {}
        self._cut: dict[str, bool] = {}  # node -> both_ways, for nodes cut from the clients

    def _of_run(self, scenario: Scenario, workdir: Path, state: RunState) -> None:
        """What every backend keeps of its run: the scenario, work dir, state and nodes."""
        self.scenario = scenario
        self.workdir = workdir
        self.state = state
        self.nodes = scenario.node_names

    # -- what a backend provides -------------------------------------------
    @abstractmethod
    def ip(self, node: str) -> str:
        """``node``'s address (``start()`` must have chosen it)."""

    @property
    @abstractmethod
    def host_ip(self) -> str:
        """The harness's address on the nodes' network (where clients come from)."""

    @abstractmethod
    def remote(self, node: str) -> Remote:
        """The Remote for ``node``."""

    @abstractmethod
    def has_netns(self, node: str) -> bool:
        """Does ``node`` have a network namespace right now (rules can go in)?"""

    @abstractmethod
    def kill(self, node: str) -> None:
        """SIGKILL ``node``'s server."""

    @abstractmethod
    def _copy_logs(self, node: str, out: Path) -> None:
        """Write ``node``'s ``nats-server.log`` into ``out``."""

    # -- addressing ----------------------------------------------------------
    def address(self, node: str) -> config.NodeAddress:
        """Where ``node`` listens: its own address, the standard ports."""
        return config.NodeAddress(node, self.ip(node))

    def client_url(self, node: str) -> str:
        return self.address(node).client_url

    def monitor_url(self, node: str) -> str:
        return self.address(node).monitor_url

    def monitor(self, node: str) -> NodeMonitor:
        return HttpMonitor(self.monitor_url(node))

    # -- files -----------------------------------------------------------------
    def node_dir(self, node: str) -> Path:
        """The host directory with ``node``'s config, log, store and lazyfs files."""
        return self.workdir / node

    def store_dir(self, node: str) -> str:
        return str(self.node_dir(node) / "data")

    # -- network ---------------------------------------------------------------
    def isolate(self, grudge: Grudge) -> None:
        for node, enemies in grudge.items():
            self._grudge[node] = self._grudge.get(node, frozenset()) | enemies
        self._in_each_netns(
            list(grudge), lambda n: iptables.apply_grudge(grudge, self.remote, self.ip, nodes=[n])
        )

    def cut_clients(self, nodes: Sequence[str], both_ways: bool) -> None:
        for node in nodes:
            self._cut[node] = both_ways
        client = iptables.peer_cut(self.host_ip, both_ways=both_ways)
        self._in_each_netns(list(nodes), lambda n: iptables.apply_cuts([(self.remote(n), client)]))

    def heal_network(self) -> None:
        self._grudge.clear()
        self._cut.clear()
        self._in_each_netns(self.nodes, lambda n: iptables.flush(self.remote(n)))

    def _in_each_netns(self, nodes: list[str], act: Callable[[str], None]) -> None:
        """``act(node)`` (rules in its namespace) for every node at once, so a cut lands at
        one instant. A node without a namespace, or whose namespace went away meanwhile (a
        container that exited by itself), needs no rules: it gets those in force when it
        starts again (:meth:`_reapply_rules`)."""

        def one(node: str) -> None:
            if not self.has_netns(node):
                return
            try:
                act(node)
            except Exception:
                if self.has_netns(node):
                    raise
                log.info("%s: its network namespace went away; rules follow at its next start",
                         node)  # fmt: skip

        iptables.each(one, nodes)

    def _reapply_rules(self, node: str) -> None:
        """Put the rules in force back into ``node``'s new namespace (one transaction)."""
        rules = iptables.grudge_cut(self._grudge, node, self.ip)
        if node in self._cut:
            rules += iptables.peer_cut(self.host_ip, both_ways=self._cut[node])
        iptables.apply_cuts([(self.remote(node), rules)])

    def rules(self, node: str) -> list[str]:
        """The rules in ``node``'s namespace now (``iptables -S``), for tests and reports."""
        return iptables.rules(self.remote(node))

    # -- power -----------------------------------------------------------------
    def power_fail(
        self, nodes: list[str], keep: float = 0.0, torn_write: bool = False, seed: int = 0
    ) -> dict[str, dict[str, int]]:
        """Power loss on ``nodes`` at one instant: kill all, drop un-fsynced data, remount.

        Returns the figures per node (:meth:`LazyStores.power_fail`); the servers stay
        down until ``start_node``.
        """
        for node in nodes:
            self.kill(node)
        return self.stores.power_fail(nodes, keep, torn_write, seed)

    def lazyfs_stats(self) -> dict[str, dict[str, int]]:
        """Each mounted node's lazyfs counters (un-fsynced bytes, fsyncs, drops…)."""
        return self.stores.stats()

    # -- evidence --------------------------------------------------------------
    def collect(self, dest: Path, data: bool = True) -> None:
        failed: list[str] = []
        for node in self.nodes:
            steps: list[Step] = [
                ("config and lazyfs log", partial(copy_node_files, self.node_dir(node))),
                ("server log", partial(self._copy_logs, node)),
            ]
            if data:
                steps.append(("data", partial(self._archive, node)))
            failed += collect_node(node, dest / node, steps)
        if failed:
            raise CollectFailed("; ".join(failed))

    def _archive(self, node: str, out: Path) -> None:
        remote, root = self.remote(node), self.store_dir(node)
        if Path(root).is_dir():
            archive(remote, root, out / "data.tar.gz")


class CollectFailed(OSError):
    """Some of the nodes' files could not be copied (the rest were); says which and why."""


NODE_FILES = ("nats-server.conf", "lazyfs.log")


def copy_node_files(node_dir: Path, out: Path) -> None:
    """Copy a node's config and lazyfs log from its host directory into ``out``."""
    for name in NODE_FILES:
        src = node_dir / name
        if src.exists():
            files.copy(src, out / name)


def collect_node(
    node: str, out: Path, steps: list[tuple[str, Callable[[Path], None]]]
) -> list[str]:
    """Run each collect step into ``out``; one failing must not lose the others.

    Returns one line per step that failed.
    """
    failed = []
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return [f"{node}: {e}"]
    for what, step in steps:
        try:
            step(out)
        except Exception as e:
            log.warning("collecting %s of %s failed: %s", what, node, e)
            failed.append(f"{node} {what}: {e}")
    return failed


def collect_work_dir(work_dir: Path, dest: Path) -> list[str]:
    """A run's ``collect`` from its work dir alone, when no cluster object is left.

    ``nats-chaos clean`` after a SIGKILL: for each ``<work_dir>/<node>/``,
    its config, lazyfs log, server log (a local node's is a file there) and
    store — the lazyfs mount's view while its lazyfs runs, else what its
    backing dir holds — go to ``dest/<node>/`` as a run's collect writes
    them. Returns one line per piece that could not be copied.
    """
    failed: list[str] = []
    nodes = [p for p in sorted(work_dir.iterdir()) if p.is_dir() and not p.is_symlink()]
    for node_dir in nodes:

        def server_log(out: Path, node_dir: Path = node_dir) -> None:
            if (node_dir / "nats-server.log").is_file():
                files.copy(node_dir / "nats-server.log", out / "nats-server.log")

        def store(out: Path, node_dir: Path = node_dir) -> None:
            root = _readable_store(node_dir)
            if root is not None:
                archive(HostRemote(list), str(root), out / "data.tar.gz")

        steps: list[Step] = [
            ("config and lazyfs log", partial(copy_node_files, node_dir)),
            ("server log", server_log),
            ("data", store),
        ]
        failed += collect_node(node_dir.name, dest / node_dir.name, steps)
    return failed


def _readable_store(node_dir: Path) -> Path | None:
    """``data/`` if it can be listed and holds files, else a lazyfs node's ``backing/``."""
    for name in ("data", "backing"):
        d = node_dir / name
        try:
            if d.is_dir() and not d.is_symlink() and any(d.iterdir()):
                return d
        except OSError:  # a lazyfs mount whose process is gone
            continue
    return None
