"""Stand-in hosts: N sshd "machines" on this one, for the ssh backend without a fleet.

``up(n, inventory)`` builds, under a fresh tag ``T``:

- the local backend's network layout (:class:`harness.net.netns.Topology`):
  a namespace ``T-h<i>`` per host with its own address on a private bridge,
  and the harness's side of it in this namespace;
- in each, ``unshare --mount --pid --fork --kill-child --mount-proc``: a
  mount namespace with tmpfs over ``/srv`` (the host's work dir,
  ``/srv/nats-chaos``, exists only there) and over ``/run``, and a pid
  namespace whose init is that host's ``sshd`` (so a host's processes see
  only each other, and die with it);
- keys: one client key, a host key per host, ``known_hosts`` for them;

and writes the inventory (:mod:`harness.inventory`) with a ``standin:``
section naming the tag, the namespaces, the key folder and each host's
``unshare`` pid. The inventory is written before any host starts and
rewritten as each does, so ``down(inventory)`` removes every trace even of
a half-built set: it kills each recorded pid that is still ``unshare``
(its sshd and everything under it die with it), deletes the namespaces,
the key folder and the inventory. Nothing is started on this host outside
those namespaces: no system sshd.
"""

from __future__ import annotations

import re
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from checkers import files
from harness import yamlfile
from harness.errors import CannotRun, ScenarioError
from harness.net import netns
from harness.runstate import TAG, kill_pid, new_tag, pid_is

SSHD = "/usr/sbin/sshd"
WORKDIR = "/srv/nats-chaos"
MAX_HOSTS = 16
READY_TIMEOUT = 15.0
SSHD_CONFIG = """\
Port 22
ListenAddress {address}
HostKey {hostkey}
AuthorizedKeysFile {authorized}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
MaxStartups 100
Subsystem sftp internal-sftp
MaxSessions 100
"""


def _keygen(path: Path) -> str:
    netns.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nats-chaos", "-f", str(path)])
    return path.with_suffix(".pub").read_text().strip()


def _write(inventory: Path, doc: dict[str, Any]) -> None:
    files.write_text(inventory, yaml.safe_dump(doc, sort_keys=False))


def up(n: int, inventory: Path) -> dict[str, Any]:
    """Start ``n`` stand-in hosts and write their inventory to ``inventory``; return it."""
    inventory = inventory.absolute()
    if not re.fullmatch(r"[A-Za-z0-9_./-]+", str(inventory)):
        raise ScenarioError(f"{inventory}: use letters, digits and _ . - / in the inventory's "
                            "path (it goes into each sshd's config)")  # fmt: skip
    if not 1 <= n <= MAX_HOSTS:
        raise ScenarioError(f"hosts up: N must be 1..{MAX_HOSTS}, not {n}")
    if inventory.exists():
        raise ScenarioError(f"{inventory}: exists; `nats-chaos hosts down --inventory {inventory}` "
                            "first, or name another file")  # fmt: skip
    netns.require_root()
    if not Path(SSHD).is_file() or shutil.which("ssh-keygen") is None:
        raise CannotRun(
            "stand-in hosts need sshd: apt-get install openssh-server (the Makefile installs "
            "it without starting a system sshd)"
        )
    tag = new_tag()
    names = [f"h{i}" for i in range(1, n + 1)]
    topo = netns.Topology(tag, names, netns.pick_subnet(tag))
    keys = inventory.parent / f"{inventory.name}.keys"
    keys.mkdir(parents=True)
    standin: dict[str, Any] = {"tag": tag, "keys": keys.name, "namespaces": [], "pids": {}}
    doc: dict[str, Any] = {"hosts": [], "standin": standin}
    _write(inventory, doc)
    try:
        client = _keygen(keys / "client")
        (keys / "authorized_keys").write_text(client + "\n")
        standin["namespaces"] = [topo.bridge_ns, *(topo.ns(h) for h in names)]
        _write(inventory, doc)
        topo.create()
        known = []
        for host in names:
            known.append(f"{topo.ip(host)} {_keygen(keys / f'{host}-hostkey')}")
            cfg = keys / f"{host}-sshd_config"
            cfg.write_text(SSHD_CONFIG.format(
                address=topo.ip(host), hostkey=keys / f"{host}-hostkey",
                authorized=keys / "authorized_keys"))  # fmt: skip
            standin["pids"][host] = _start_sshd(topo, host, cfg, keys / f"{host}-sshd.log")
            doc["hosts"].append({
                "name": host, "address": topo.ip(host), "port": 22, "user": "root",
                "key": f"{keys.name}/client", "workdir": WORKDIR,
                "known_hosts": f"{keys.name}/known_hosts",
            })  # fmt: skip
            _write(inventory, doc)
        (keys / "known_hosts").write_text("\n".join(known) + "\n")
        for host in names:
            _wait_listening(topo.ip(host), keys / f"{host}-sshd.log")
    except BaseException:
        down(inventory)
        raise
    return doc


def _start_sshd(topo: netns.Topology, host: str, cfg: Path, log: Path) -> int:
    inner = (
        "mount -t tmpfs -o mode=0755 tmpfs /srv && mount -t tmpfs -o mode=0755 tmpfs /run && "
        f"mkdir -p /run/sshd {WORKDIR} && exec {SSHD} -D -e -f {shlex.quote(str(cfg))}"
    )
    unshare = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
               "--propagation", "private", "sh", "-c", inner]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*topo.exec_prefix(host), *unshare],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return proc.pid


def _wait_listening(address: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((address, 22)) == 0:
                return
        time.sleep(0.1)
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
    raise CannotRun(f"the stand-in sshd at {address} did not listen within "
                    f"{READY_TIMEOUT:g}s{': ' + tail[0] if tail else ''}")  # fmt: skip


def down(inventory: Path) -> list[str]:
    """Remove every stand-in host of ``inventory`` and its files; one line per action."""
    raw = yamlfile.load(inventory, "inventory")
    standin = raw.get("standin") if isinstance(raw, dict) else None
    if not isinstance(standin, dict) or not isinstance(standin.get("tag"), str):
        raise ScenarioError(f"{inventory}: not an inventory of stand-in hosts (no `standin:`)")
    tag = standin["tag"]
    if not TAG.fullmatch(tag) or standin.get("keys") != f"{inventory.name}.keys":
        raise ScenarioError(f"{inventory}: its `standin:` section is not one `hosts up` wrote "
                            "(tag or key folder changed); nothing was touched")  # fmt: skip
    lines = []
    for host, pid in (standin.get("pids") or {}).items():
        if isinstance(pid, int) and pid_is(pid, "unshare"):
            lines.append(f"stop stand-in host {host} (pid {pid})")
            if not kill_pid(pid, "unshare"):
                raise CannotRun(f"stand-in host {host}: pid {pid} did not die")
    known = [ns for ns in standin.get("namespaces") or [] if str(ns).startswith(f"{tag}-")]
    errors = netns.destroy_tagged(tag, known)
    if errors:
        raise CannotRun("; ".join(errors))
    lines.append(f"deleted the namespaces of {tag}")
    keys = inventory.parent / standin["keys"]  # checked above: beside the inventory
    if keys.is_dir() and not keys.is_symlink():
        shutil.rmtree(keys)
        lines.append(f"removed {keys}")
    inventory.unlink()
    lines.append(f"removed {inventory}")
    return lines
