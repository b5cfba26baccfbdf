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
``files`` and ``power`` (lazyfs on each host, :mod:`harness.backends.ssh_lazyfs`);
netem is not offered yet.
"""

from __future__ import annotations

import contextlib
import posixpath
import shlex
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checkers import files
from harness import config, servers
from harness.backends.base import FILES, NETWORK, POWER, PROCESS, Remote
from harness.backends.host import HostCluster, Step, archive, collect_node
from harness.backends.ssh_lazyfs import RemoteLazyStores, zipapp
from harness.errors import CannotRun
from harness.inventory import Host, Inventory
from harness.net import iptables
from harness.runstate import RunState
from harness.ssh import IS, KILL, SshLink, SshRemote, snippet

if TYPE_CHECKING:
    from collections.abc import Sequence

    from harness.scenario import Scenario

ABILITIES = frozenset({PROCESS, NETWORK, FILES, POWER})
CLIENT_PORTS = (config.CLIENT_PORT, config.MONITOR_PORT)
TOOLS = ("python3", "iptables", "ss", "setsid", "sha256sum")
LAZYFS_TOOLS = ("fusermount3",)  # and /dev/fuse: for power loss (lazyfs under the store)


def link_for(inventory: Inventory, host: Host) -> SshLink:
    return SshLink(host, inventory.key_path(host), inventory.known_hosts_path(host))


def harness_address(link: SshLink) -> str:
    """The harness's address as ``link``'s host sees it (where client traffic comes from)."""
    out = link.shell("echo $SSH_CLIENT").stdout.split()
    if not out:
        raise CannotRun(f"{link.where}: sshd sets no SSH_CLIENT; cannot tell the harness's address")
    return out[0]


def check_hosts(
    inventory: Inventory, nodes: list[str], lazyfs: bool = False
) -> list[tuple[Host, str | None]]:
    """Per host of ``nodes``: None when it can run a node, else why not (one line naming it).

    Reachable over SSH, the tools a run needs there (with ``lazyfs``: FUSE too), and
    the harness's address as the host sees it differing from every node's (per-node
    reads must reach one node alone).
    """
    hosts = inventory.for_nodes(nodes)
    addresses = {h.address for h in hosts.values()}
    out: list[tuple[Host, str | None]] = []
    for host in hosts.values():
        link = link_for(inventory, host)
        why: str | None = None
        try:
            link.connect()
            tools = TOOLS + (LAZYFS_TOOLS if lazyfs else ())
            probe = " ".join(f"command -v {t} >/dev/null || echo {t};" for t in tools)
            probe += " [ -e /dev/fuse ] || echo /dev/fuse;" if lazyfs else ""
            missing = link.shell(probe).stdout.split()
            me = harness_address(link)
            if missing:
                why = f"{link.where}: missing {', '.join(missing)} on the host"
            elif me in addresses:
                why = (f"{link.where}: the harness reaches it from {me}, a node's own address; "
                       "run nats-chaos from a machine that is not one of the nodes")  # fmt: skip
        except CannotRun as e:
            why = str(e)
        finally:
            with contextlib.suppress(Exception):
                link.close()
        out.append((host, why))
    return out


def preflight(inventory: Inventory, nodes: list[str], lazyfs: bool = False) -> None:
    """Refuse (CannotRun, one line naming the first host) unless every host can run a node."""
    for _host, why in check_hosts(inventory, nodes, lazyfs):
        if why is not None:
            raise CannotRun(why)


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
        self._of_run(scenario, workdir, state)
        self.binary = binary
        self.hosts = inventory.for_nodes(self.nodes)
        self.links = {n: link_for(inventory, h) for n, h in self.hosts.items()}
        self._remotes = {n: SshRemote(link) for n, link in self.links.items()}
        self.abilities = ABILITIES
        storage = scenario.storage
        self.remote_stores = RemoteLazyStores(
            state,
            self.links,
            storage.writeback_after,
            storage.cache_bytes,
            scenario.server.sync_interval,
        )
        self.stores = self.remote_stores
        self.sha256 = servers.sha256(binary)
        self._pids: dict[str, int] = {}
        self._seen_from: dict[str, str] = {}
        self._pyz: Path | None = None
        self._sha256 = {binary: self.sha256}

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
        """Prepare every host and start every node, the hosts in parallel."""
        if self.scenario.uses_lazyfs:
            self._lazyfs_zipapp()  # built once, before the hosts' threads need it
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(self._prepare, self.nodes))
            list(pool.map(self.start_node, self.nodes))

    def _prepare(self, node: str) -> None:
        """Connect, record the host, upload what is missing, mount lazyfs, write the config."""
        link, host = self.links[node], self.hosts[node]
        link.connect()
        self._seen_from[node] = harness_address(link)
        link.python = link.shell("command -v python3").stdout.strip() or link.python
        self.state.add_host(node, host, link.key, link.known_hosts, self.run_dir(node))
        bin_dir = posixpath.dirname(self.remote_binary(node))
        link.run(["mkdir", "-p", self.store_dir(node), bin_dir])
        self._upload(node, self.binary, self.remote_binary(node))
        if self.scenario.uses_lazyfs:
            pyz = self._lazyfs_zipapp()
            remote_pyz = posixpath.join(bin_dir, pyz.name)
            self._upload(node, pyz, remote_pyz)
            self.remote_stores.add_remote(node, self.run_dir(node), remote_pyz)
        peers = [self.address(n) for n in self.nodes]
        conf = config.render(self.scenario, self.address(node), peers, Path(self.store_dir(node)))
        local = config.write_config(conf, self.node_dir(node) / "nats-server.conf")
        link.put(local, posixpath.join(self.run_dir(node), "nats-server.conf"))

    def _lazyfs_zipapp(self) -> Path:
        if self._pyz is None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._pyz = zipapp(self.workdir)
        return self._pyz

    def _upload(self, node: str, local: Path, path: str) -> None:
        """Put ``local`` at ``path`` on ``node``'s host, unless a file with its sha256 is there."""
        link = self.links[node]
        have = link.shell(f"sha256sum {shlex.quote(path)} 2>/dev/null", check=False).stdout
        if local not in self._sha256:
            self._sha256[local] = servers.sha256(local)
        if have.split()[:1] == [self._sha256[local]]:
            return
        tmp = f"{path}.{self.state.tag}.part"
        link.put(local, tmp)
        link.run(["chmod", "755", tmp])
        link.run(["mv", "-f", tmp, path])

    def node_dir(self, node: str) -> Path:
        d = self.workdir / node
        d.mkdir(parents=True, exist_ok=True)
        return d

    def start_node(self, node: str) -> None:
        if self.running(node):
            return
        self._forget(node)  # a server that died by itself: its pid is no longer the run's
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
        ok = self.links[node].shell(snippet(IS, pid, self._cmdline(node)), check=False)
        return pid if ok.returncode == 0 else None

    def running(self, node: str) -> bool:
        return self._is_ours(node) is not None

    def _send(self, node: str, *signals: str) -> None:
        """Send ``signals`` to ``node``'s server if its pid still runs it."""
        pid = self._pids.get(node)
        if pid is not None:
            kills = "; ".join(f"kill -{s} $1" for s in signals)
            body = f"({IS}) || exit 0; {kills}"
            self.links[node].shell(snippet(body, pid, self._cmdline(node)), check=False)

    def _forget(self, node: str) -> None:
        pid = self._pids.pop(node, None)
        if pid is not None:
            self.state.drop_remote_pid(node, pid)

    def _kill_and_wait(self, node: str) -> bool:
        """SIGKILL ``node``'s server (if still ours) and wait until it is gone; True if gone."""
        pid = self._pids.get(node)
        if pid is None:
            return True
        proc = self.links[node].shell(snippet(KILL, pid, self._cmdline(node)), check=False)
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
        iptables.apply_cuts([(self.remote(n), self._client_cut(n)) for n in nodes])

    def _client_cut(self, node: str) -> iptables.Cut:
        return iptables.port_cut(self._seen_from[node], CLIENT_PORTS, self._cut[node])

    def _reapply_rules(self, node: str) -> None:
        rules = iptables.grudge_cut(self._grudge, node, self.ip)
        if node in self._cut:
            rules += self._client_cut(node)
        iptables.apply_cuts([(self.remote(node), rules)])

    # -- evidence and teardown ----------------------------------------------------
    def _copy_logs(self, node: str, out: Path) -> None:
        fetch_log(self.links[node], self.run_dir(node), out)
        if self.scenario.uses_lazyfs:
            fetch_log(self.links[node], self.run_dir(node), out, "lazyfs.log")

    def _archive(self, node: str, out: Path) -> None:
        _archive_to(self.remote(node), self.store_dir(node), out)

    def stop(self, keep_files: bool = False) -> None:
        """Kill every server, unmount lazyfs, remove the chains and the run's directory on
        every host; a host whose server or mount could not be released, and with
        ``keep_files`` (the nodes' files could not be collected) every host, keeps the
        run's directory and its record in the state (``clean`` copies and removes it)."""
        errors: list[str] = []
        for node in self.nodes:
            try:
                if not self._kill_and_wait(node):
                    errors.append(f"{self.links[node].where}: pid {self._pids[node]} did not die")
            except CannotRun as e:
                errors.append(str(e))
        errors += self.stores.release()
        for node in self.nodes:
            link = self.links[node]
            mine = f"{node}:"
            held = any(
                k.startswith(mine) for k in [*self.state.remote_pids, *self.state.remote_mounts]
            )
            try:
                if node in self.state.hosts and not held:
                    iptables.flush(self.remote(node))
                    if not keep_files:  # else `clean` copies them from the host later
                        remove_run_dir(link, self.run_dir(node))
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
    """Remove a node's directory of the run on its host, the run's folder once empty, and
    any upload of the run cut short (``<workdir>/bin/*.<tag>.part``)."""
    tag_dir = posixpath.dirname(run_dir)
    bin_dir = posixpath.join(posixpath.dirname(tag_dir), "bin")
    part = f"*.{posixpath.basename(tag_dir)}.part"
    link.run(["rm", "-rf", run_dir])
    link.shell(f"rmdir {shlex.quote(tag_dir)} 2>/dev/null; "
               f"rm -f {shlex.quote(bin_dir)}/{part}", check=False)  # fmt: skip


def fetch_log(link: SshLink, run_dir: str, out: Path, name: str = "nats-server.log") -> None:
    """Copy ``run_dir/<name>`` from the host into ``out`` (nothing if the host has none)."""
    path = posixpath.join(run_dir, name)
    if link.run(["test", "-f", path], check=False).returncode == 0:
        files.write_bytes(out / name, link.read_file(path))


def clean_remote(state: RunState, dry_run: bool, lines: list[str], force: bool = False) -> bool:
    """``clean`` for an ssh run, host by host (:func:`_clean_host`); True if something of
    the run could not be undone (its state file must stay)."""
    left = False
    for node, rec in list(state.hosts.items()):
        host = Host(address=rec["address"], port=rec["port"], user=rec["user"], key=rec["key"])
        host.name = node
        known = Path(rec["known_hosts"]) if rec.get("known_hosts") else None
        link = SshLink(host, Path(rec["key"]), known)
        try:
            left |= _clean_host(state, node, link, rec["dir"], dry_run, lines, force)
        except (CannotRun, OSError) as e:
            lines.append(f"{state.tag}: {e}")
            if force and not dry_run:  # e.g. the host is gone for good: stop reporting it
                lines.append(f"{state.tag}: forgot {node}'s host ({link.where}); whatever the "
                             "run left there stays there")  # fmt: skip
                state.forget_host(node)
            else:
                left = True
        finally:
            with contextlib.suppress(Exception):
                link.close()
    return left


def _clean_host(
    state: RunState, node: str, link: SshLink, run_dir: str, dry_run: bool, lines: list[str],
    force: bool,
) -> bool:  # fmt: skip
    """On ``node``'s host: kill its server (still ours by cmdline), copy its logs and store
    into the result folder, kill its lazyfs, unmount, remove the chain and the run dir."""
    left = False
    pids = {k: c for k, c in state.remote_pids.items() if k.startswith(f"{node}:")}
    servers = {k: c for k, c in pids.items() if ".pyz " not in c}

    def kill(which: dict[str, str]) -> bool:
        survived = False
        for key, cmdline in which.items():
            pid = int(key.partition(":")[2])
            lines.append(f"{state.tag}: kill pid {pid} on {link.where}")
            if dry_run:
                continue
            if link.shell(snippet(KILL, pid, cmdline), check=False).returncode:
                lines.append(f"{state.tag}: pid {pid} on {link.where} did not die")
                survived = True
            else:
                state.drop_remote_pid(node, pid)
        return survived

    left |= kill(servers)  # no server writes while its files are copied
    copied = False
    run = Path(state.run_dir) if state.run_dir else None
    if run is None:  # a state file of an older nats-chaos: nowhere to copy to
        lines.append(f"{state.tag}: no result folder recorded; {node}'s files not copied")
        copied = True
    elif not (run / "scenario.yaml").is_file() or run.is_symlink() or (run / "nodes").is_symlink():
        lines.append(f"{state.tag}: {run} is not the run's result folder")
    else:
        lines.append(f"{state.tag}: copy {node}'s logs and store from {link.where}")
        copied = dry_run or not collect_node(node, run / "nodes" / node, _host_steps(link, run_dir))
    left |= kill({k: c for k, c in pids.items() if k not in servers})
    for entry in [m for m in state.remote_mounts if m.startswith(f"{node}:")]:
        mount = entry.partition(":")[2]
        lines.append(f"{state.tag}: unmount {mount} on {link.where}")
        if not dry_run:
            q = shlex.quote(mount)
            gone = f"! awk '{{print $2}}' /proc/mounts | grep -qxF {q}"
            tries = f"fusermount3 -u {q} || umount {q} || umount -l {q}"
            if link.shell(f"{gone} || {{ {tries}; }}; {gone}", check=False).returncode:
                lines.append(f"{state.tag}: {mount} on {link.where} is still mounted")
                left = True
            else:
                state.drop_remote_mount(node, mount)
    if not copied and not force:
        lines.append(f"{state.tag}: {node}'s files kept in {run_dir} on {link.where} "
                     "(`clean --force` removes them)")  # fmt: skip
        return True
    lines.append(f"{state.tag}: remove {run_dir} and chain {iptables.CHAIN} on {link.where}")
    if not dry_run and not left:
        iptables.flush(SshRemote(link))
        remove_run_dir(link, run_dir)
        state.drop_host(node)
    return left


def _host_steps(link: SshLink, run_dir: str) -> list[Step]:
    """What clean copies of a node on a host: its logs, and its store (the lazyfs mount's
    view while its lazyfs runs, else the backing dir, else the plain store)."""
    remote = SshRemote(link)

    def logs(out: Path) -> None:
        fetch_log(link, run_dir, out)
        fetch_log(link, run_dir, out, "lazyfs.log")

    def store(out: Path) -> None:
        for name in ("data", "backing"):
            d = posixpath.join(run_dir, name)
            with contextlib.suppress(OSError):
                if remote.files(d):
                    _archive_to(remote, d, out)
                    return

    return [("logs", logs), ("data", store)]
