"""SSH backend: each node a nats-server on a host of an inventory (Jepsen's model).

In: a scenario, the nats-server binary, a local work dir, the run state and
an :class:`~harness.inventory.Inventory`; node ``n<i>`` runs on the i-th host.
Over one SSH connection per host (:mod:`harness.ssh`) the cluster

- uploads the binary to ``<workdir>/bin/nats-server-<sha256 prefix>`` unless
  a file with that sha256 is already there, and writes each node's config
  (rendered here, kept in the local work dir for the result folder) to
  ``<workdir>/<tag>/<node>/``;
- starts nats-server detached (``setsid``, output to its log there) and
  controls it by pid, each signal only after ``/proc/<pid>/cmdline`` shows
  that pid still runs this binary with this config (a recycled pid is left
  alone);
- partitions with the harness's own iptables chain on each host
  (:mod:`harness.net.iptables`, never the host's own rules); a client cut
  blocks only the client and monitor ports, so the SSH connection survives;
- reads and corrupts store files, and collects logs and stores, over SFTP.

Every remote pid and directory goes into the run state the moment it exists
(``hosts``, ``remote_pids``), so ``nats-chaos clean`` can undo a killed run
on every host (:func:`clean_remote`). Abilities: ``process``, ``network``,
``files``; power loss (lazyfs on the hosts) and netem are not offered yet.
"""

from __future__ import annotations

import contextlib
import posixpath
import shlex
import shutil
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checkers import files
from harness import config, servers
from harness.backends.base import FILES, NETWORK, PROCESS, Remote
from harness.backends.host import HostCluster, Step, archive, collect_node
from harness.backends.lazystore import LazyStores
from harness.errors import CannotRun
from harness.inventory import Host, Inventory
from harness.net import iptables
from harness.runstate import RunState
from harness.ssh import SshLink, SshRemote

if TYPE_CHECKING:
    from collections.abc import Sequence

    from harness.scenario import Scenario

ABILITIES = frozenset({PROCESS, NETWORK, FILES})
CLIENT_PORTS = (config.CLIENT_PORT, config.MONITOR_PORT)
TOOLS = ("iptables", "ss", "setsid", "sha256sum", "tar")

# `sh` snippets run on a host; $1 is a pid, $2 the command line it must have (NULs as spaces).
_IS = (
    'c=$(tr "\\0" " " < /proc/$1/cmdline 2>/dev/null) && [ "$c" = "$2" ] && '
    "! grep -q '^State:.*Z' /proc/$1/status"
)
_GONE = "i=0; while [ $i -lt 200 ] && (" + _IS + "); do sleep 0.05; i=$((i+1)); done"
_KILL = f"({_IS}) || exit 0; kill -CONT $1; kill -KILL $1; {_GONE}; ! ({_IS})"


def _snippet(body: str, pid: int, cmdline: str) -> str:
    return f"set -- {pid} {shlex.quote(cmdline)}; {body}"


def link_for(inventory: Inventory, host: Host) -> SshLink:
    return SshLink(host, inventory.key_path(host), inventory.known_hosts_path(host))


def harness_address(link: SshLink) -> str:
    """The harness's address as ``link``'s host sees it (where client traffic comes from)."""
    out = link.shell("echo $SSH_CLIENT").stdout.split()
    if not out:
        raise CannotRun(f"{link.where}: sshd sets no SSH_CLIENT; cannot tell the harness's address")
    return out[0]


def preflight(inventory: Inventory, nodes: list[str]) -> None:
    """Each host reachable, with the tools a run needs, and the harness's address differing
    from every node's (per-node reads must reach that node alone); CannotRun naming the host."""
    hosts = inventory.for_nodes(nodes)
    addresses = {h.address for h in hosts.values()}
    for host in hosts.values():
        link = link_for(inventory, host)
        try:
            link.connect()
            probe = " ".join(f"command -v {t} >/dev/null || echo {t};" for t in TOOLS)
            missing = link.shell(probe).stdout.split()
            if missing:
                raise CannotRun(f"{link.where}: missing {', '.join(missing)} on the host")
            me = harness_address(link)
            if me in addresses:
                raise CannotRun(
                    f"{link.where}: the harness reaches it from {me}, a node's own address; "
                    "run nats-chaos from a machine that is not one of the nodes"
                )
        finally:
            link.close()


class SshCluster(HostCluster):
    """A cluster of nats-server processes on the hosts of an inventory."""

    def __init__(
        self,
        scenario: Scenario,
        binary: Path,
        workdir: Path,
        state: RunState,
        inventory: Inventory,
    ) -> None:
        super().__init__()
        self.scenario = scenario
        self.binary = binary
        self.workdir = workdir
        self.state = state
        self.nodes = scenario.node_names
        self.hosts = inventory.for_nodes(self.nodes)
        self.links = {n: link_for(inventory, h) for n, h in self.hosts.items()}
        self._remotes = {n: SshRemote(link) for n, link in self.links.items()}
        self.abilities = ABILITIES
        self.stores = LazyStores(state, None, None)  # never mounted: no power ability
        self.sha256 = servers.sha256(binary)
        self._pids: dict[str, int] = {}
        self._seen_from: dict[str, str] = {}

    # -- addressing, remotes ----------------------------------------------------
    def ip(self, node: str) -> str:
        return self.hosts[node].address

    @property
    def host_ip(self) -> str:
        return next(iter(self._seen_from.values()), "")

    def remote(self, node: str) -> Remote:
        return self._remotes[node]

    def has_netns(self, node: str) -> bool:
        return True  # a host is always there

    def run_dir(self, node: str) -> str:
        """``node``'s directory on its host: config, log, store."""
        return posixpath.join(self.hosts[node].workdir, self.state.tag, node)

    def store_dir(self, node: str) -> str:
        return posixpath.join(self.run_dir(node), "data")

    def remote_binary(self, node: str) -> str:
        return posixpath.join(self.hosts[node].workdir, "bin", f"nats-server-{self.sha256[:16]}")

    def _cmdline(self, node: str) -> str:
        conf = posixpath.join(self.run_dir(node), "nats-server.conf")
        return f"{self.remote_binary(node)} -c {conf} "

    def server_info(self) -> dict[str, Any]:
        return {
            "backend": "ssh",
            "binary": str(self.binary),
            "version": servers.binary_version(self.binary),
            "sha256": self.sha256,
            "hosts": {n: f"{h.user}@{h.address}:{h.port}" for n, h in self.hosts.items()},
        }

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        peers = [self.address(n) for n in self.nodes]
        for node in self.nodes:
            link, host = self.links[node], self.hosts[node]
            link.connect()
            self._seen_from[node] = harness_address(link)
            self.state.add_host(node, host, link.key, link.known_hosts, self.run_dir(node))
            bin_dir = posixpath.dirname(self.remote_binary(node))
            link.run(["mkdir", "-p", self.store_dir(node), bin_dir])
            self._upload_binary(node)
            store = Path(self.store_dir(node))
            conf = config.render(self.scenario, self.address(node), peers, store)
            local = config.write_config(conf, self.node_dir(node) / "nats-server.conf")
            link.put(local, posixpath.join(self.run_dir(node), "nats-server.conf"))
        for node in self.nodes:
            self.start_node(node)

    def _upload_binary(self, node: str) -> None:
        link, path = self.links[node], self.remote_binary(node)
        have = link.shell(f"sha256sum {shlex.quote(path)} 2>/dev/null", check=False).stdout
        if have.split()[:1] == [self.sha256]:
            return
        tmp = f"{path}.{self.state.tag}.part"
        link.put(self.binary, tmp)
        link.run(["chmod", "755", tmp])
        link.run(["mv", "-f", tmp, path])

    def node_dir(self, node: str) -> Path:
        d = self.workdir / node
        d.mkdir(parents=True, exist_ok=True)
        return d

    def start_node(self, node: str) -> None:
        if self.running(node):
            return
        d = shlex.quote(self.run_dir(node))
        exe = shlex.quote(self.remote_binary(node))
        conf = shlex.quote(f"{self.run_dir(node)}/nats-server.conf")
        out = ">> nats-server.log 2>&1 < /dev/null"
        line = f"cd {d} && {{ setsid {exe} -c {conf} {out} & echo $!; }}"
        pid = int(self.links[node].shell(line).stdout.strip())
        self._pids[node] = pid
        self.state.add_remote_pid(node, pid, self._cmdline(node))
        self._reapply_rules(node)

    def _is_ours(self, node: str) -> int | None:
        pid = self._pids.get(node)
        if pid is None:
            return None
        ok = self.links[node].shell(_snippet(_IS, pid, self._cmdline(node)), check=False)
        return pid if ok.returncode == 0 else None

    def running(self, node: str) -> bool:
        return self._is_ours(node) is not None

    def _send(self, node: str, *signals: str) -> None:
        """Send ``signals`` to ``node``'s server if its pid still runs it."""
        pid = self._pids.get(node)
        if pid is not None:
            kills = "; ".join(f"kill -{s} $1" for s in signals)
            body = f"({_IS}) || exit 0; {kills}"
            self.links[node].shell(_snippet(body, pid, self._cmdline(node)), check=False)

    def _forget(self, node: str) -> None:
        pid = self._pids.pop(node, None)
        if pid is not None:
            self.state.drop_remote_pid(node, pid)

    def _kill_and_wait(self, node: str) -> bool:
        """SIGKILL ``node``'s server (if still ours) and wait until it is gone; True if gone."""
        pid = self._pids.get(node)
        if pid is None:
            return True
        proc = self.links[node].shell(_snippet(_KILL, pid, self._cmdline(node)), check=False)
        if proc.returncode == 0:
            self._forget(node)
        return proc.returncode == 0

    def kill(self, node: str) -> None:
        if not self._kill_and_wait(node):
            where = self.links[node].where
            raise CannotRun(f"{where}: nats-server pid {self._pids[node]} did not die")

    def pause(self, node: str) -> None:
        self._send(node, "STOP")

    def resume(self, node: str) -> None:
        self._send(node, "CONT")

    def terminate(self, node: str, timeout: float = 10.0) -> None:
        self._send(node, "CONT", "TERM")
        deadline = time.monotonic() + timeout
        while node in self._pids and time.monotonic() < deadline:
            if not self.running(node):
                self._forget(node)
                return
            time.sleep(0.2)
        self.kill(node)

    # -- network: the client cut spares the SSH port ------------------------------
    def cut_clients(self, nodes: Sequence[str], both_ways: bool) -> None:
        for node in nodes:
            self._cut[node] = both_ways
            iptables.cut_ports(self.remote(node), self._seen_from[node], CLIENT_PORTS, both_ways)

    def _reapply_rules(self, node: str) -> None:
        if self._grudge.get(node):
            iptables.apply_grudge(self._grudge, self.remote, self.ip, nodes=[node])
        if node in self._cut:
            iptables.cut_ports(
                self.remote(node), self._seen_from[node], CLIENT_PORTS, self._cut[node]
            )

    # -- evidence and teardown ----------------------------------------------------
    def _copy_logs(self, node: str, out: Path) -> None:
        fetch_log(self.links[node], self.run_dir(node), out)

    def _archive(self, node: str, out: Path) -> None:
        _archive_to(self.remote(node), self.store_dir(node), out)

    def stop(self, keep_files: bool = False) -> None:
        """Kill every server, remove the chains and the run's directory on every host."""
        errors: list[str] = []
        for node in self.nodes:
            link = self.links[node]
            try:
                if not self._kill_and_wait(node):
                    errors.append(f"{link.where}: nats-server pid {self._pids[node]} did not die")
                if node in self.state.hosts:
                    iptables.flush(self.remote(node))
                    remove_run_dir(link, self.run_dir(node))
                    if node not in self._pids:
                        self.state.drop_host(node)
            except (CannotRun, OSError) as e:
                errors.append(str(e))
            finally:
                with contextlib.suppress(Exception):
                    link.close()
        if errors:
            raise RuntimeError("; ".join(errors) + " (run `nats-chaos clean`)")
        if not keep_files:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _archive_to(remote: Remote, store: str, out: Path) -> None:
    archive(remote, store, out / "data.tar.gz")


def remove_run_dir(link: SshLink, run_dir: str) -> None:
    """Remove a node's directory of the run on its host, and the run's folder once empty."""
    link.run(["rm", "-rf", run_dir])
    link.shell(f"rmdir {shlex.quote(posixpath.dirname(run_dir))} 2>/dev/null", check=False)


def fetch_log(link: SshLink, run_dir: str, out: Path) -> None:
    """Copy ``run_dir/nats-server.log`` from the host into ``out`` (if it exists there)."""
    data = link.read_file(posixpath.join(run_dir, "nats-server.log"))
    files.write_bytes(out / "nats-server.log", data)


def clean_remote(state: RunState, dry_run: bool, lines: list[str]) -> bool:
    """``clean`` for an ssh run: on each recorded host kill the run's servers (still ours by
    cmdline), copy their logs and stores into the result folder, remove the chain and the
    run's directory. Returns True if something could not be undone."""
    left = False
    dest = Path(state.run_dir) / "nodes" if state.run_dir else None
    for node, rec in list(state.hosts.items()):
        host = Host(address=rec["address"], port=rec["port"], user=rec["user"], key=rec["key"])
        host.name = node
        known = Path(rec["known_hosts"]) if rec.get("known_hosts") else None
        link = SshLink(host, Path(rec["key"]), known)
        remote = SshRemote(link)
        run_dir = rec["dir"]
        try:
            for key, cmdline in list(state.remote_pids.items()):
                owner, pid = key.split(":")
                if owner != node:
                    continue
                lines.append(f"{state.tag}: kill pid {pid} on {link.where}")
                if not dry_run:
                    if link.shell(_snippet(_KILL, int(pid), cmdline), check=False).returncode:
                        lines.append(f"{state.tag}: pid {pid} on {link.where} did not die")
                        left = True
                        continue
                    state.drop_remote_pid(node, int(pid))
            if dest is not None and (dest.parent / "scenario.yaml").is_file():
                lines.append(f"{state.tag}: copy {node}'s log and store from {link.where}")
                if not dry_run:
                    steps: list[Step] = [
                        ("server log", partial(fetch_log, link, run_dir)),
                        ("data", partial(_archive_to, remote, f"{run_dir}/data")),
                    ]
                    left |= bool(collect_node(node, dest / node, steps))
            lines.append(
                f"{state.tag}: remove {run_dir} and chain {iptables.CHAIN} on {link.where}"
            )
            if not dry_run:
                iptables.flush(remote)
                remove_run_dir(link, run_dir)
                if not any(k.startswith(f"{node}:") for k in state.remote_pids):
                    state.drop_host(node)
        except (CannotRun, OSError) as e:
            lines.append(f"{state.tag}: {e}")
            left = True
        finally:
            with contextlib.suppress(Exception):
                link.close()
    return left
