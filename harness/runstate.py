"""What a run has created, written down as it happens so ``nats-chaos clean`` can undo it.

Every run gets a tag (``nc`` + 8 hex digits) and a state file
``/run/nats-chaos/<tag>.json`` (or ``$NATS_CHAOS_STATE/<tag>.json``) that lists
its harness pid, the pids it started (with the executable each must be),
its namespaces, its mounts, (Docker backend) its containers and networks,
and its result folder. The file is rewritten after every change, so a
harness killed with SIGKILL still leaves an exact list. ``clean`` only acts
on what such a file names — never on a broad name pattern — and only kills
a pid whose executable still matches, so a recycled pid is left alone.

A state file is data from disk, so it is trusted only after :func:`load`
has validated it against :class:`StateFile`: its tag is a tag and is its
file's name, every namespace, container and network carries the tag, every
mount lies inside the run's own work dir ``WORK_ROOT/<tag>``, and the
result folder is an absolute path outside the work root. Anything else is
:class:`BadStateFile`, which ``clean`` reports and never acts on.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

WORK_ROOT = Path("/var/tmp/nats-chaos")  # every run's work dir is WORK_ROOT/<tag>
TAG = re.compile(r"nc[0-9a-f]{8}")
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"  # an executable, namespace, container or network


_SAVING = threading.RLock()  # a change and its save, one thread at a time


def state_dir() -> Path:
    """Where run state files live."""
    return Path(os.environ.get("NATS_CHAOS_STATE", "/run/nats-chaos"))


def new_tag() -> str:
    """A fresh run tag, short enough for interface names."""
    return "nc" + secrets.token_hex(4)


@dataclass
class RunState:
    """The resources of one run; ``save()`` after each change."""

    tag: str
    harness_pid: int = field(default_factory=os.getpid)
    harness_start: int | None = field(default_factory=lambda: proc_start_time(os.getpid()))
    pids: dict[str, str] = field(default_factory=dict)  # pid -> executable basename
    namespaces: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    run_dir: str | None = None  # the result folder, where `clean` copies node files
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)  # ssh: node -> its host
    remote_pids: dict[str, str] = field(default_factory=dict)  # ssh: "node:pid" -> cmdline
    remote_mounts: list[str] = field(default_factory=list)  # ssh: "node:mountpoint"

    @property
    def path(self) -> Path:
        return state_dir() / f"{self.tag}.json"

    @property
    def work_dir(self) -> Path:
        """The run's work dir (configs, logs, stores of its nodes)."""
        return WORK_ROOT / self.tag

    def save(self) -> None:
        """Atomically rewrite the state file (threads of one run may add things at once)."""
        with _SAVING:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(asdict(self)))
            os.replace(tmp, self.path)

    def add_pid(self, pid: int, exe: str) -> None:
        self.pids[str(pid)] = Path(exe).name
        self.save()

    def drop_pid(self, pid: int) -> None:
        self.pids.pop(str(pid), None)
        self.save()

    def add_namespace(self, ns: str) -> None:
        if ns not in self.namespaces:
            self.namespaces.append(ns)
            self.save()

    def add_mount(self, path: str) -> None:
        if path not in self.mounts:
            self.mounts.append(path)
            self.save()

    def drop_mount(self, path: str) -> None:
        if path in self.mounts:
            self.mounts.remove(path)
            self.save()

    def add_container(self, name: str) -> None:
        _add(self.containers, name)
        self.save()

    def drop_container(self, name: str) -> None:
        if name in self.containers:
            self.containers.remove(name)
            self.save()

    def add_network(self, name: str) -> None:
        _add(self.networks, name)
        self.save()

    def drop_network(self, name: str) -> None:
        if name in self.networks:
            self.networks.remove(name)
            self.save()

    def add_host(
        self, node: str, host: Any, key: Path, known_hosts: Path | None, run_dir: str
    ) -> None:
        """Record ``node``'s host (an :class:`harness.inventory.Host`: address, port, user),
        the key and known-hosts files that reach it, and the node's run dir there."""
        with _SAVING:
            self.hosts[node] = {
                "address": host.address,
                "port": host.port,
                "user": host.user,
                "key": str(key.resolve()),
                "known_hosts": str(known_hosts.resolve()) if known_hosts else None,
                "dir": run_dir,
            }
            self.save()

    def drop_host(self, node: str) -> None:
        with _SAVING:
            if self.hosts.pop(node, None) is not None:
                self.save()

    def forget_host(self, node: str) -> None:
        """Drop ``node``'s host with every pid and mount recorded on it (``clean --force``
        of a host that cannot be reached)."""
        with _SAVING:
            self.hosts.pop(node, None)
            mine = f"{node}:"
            self.remote_pids = {k: v for k, v in self.remote_pids.items() if not k.startswith(mine)}
            self.remote_mounts = [m for m in self.remote_mounts if not m.startswith(mine)]
            self.save()

    def add_remote_pid(self, node: str, pid: int, cmdline: str) -> None:
        with _SAVING:
            self.remote_pids[f"{node}:{pid}"] = cmdline
            self.save()

    def drop_remote_pid(self, node: str, pid: int) -> None:
        with _SAVING:
            if self.remote_pids.pop(f"{node}:{pid}", None) is not None:
                self.save()

    def add_remote_mount(self, node: str, path: str) -> None:
        with _SAVING:
            _add(self.remote_mounts, f"{node}:{path}")
            self.save()

    def drop_remote_mount(self, node: str, path: str) -> None:
        with _SAVING:
            if f"{node}:{path}" in self.remote_mounts:
                self.remote_mounts.remove(f"{node}:{path}")
                self.save()

    def remove(self) -> None:
        """Forget the run: everything it created is gone."""
        self.path.unlink(missing_ok=True)


class BadStateFile(ValueError):
    """A state file that does not parse or validate; ``str()`` says which and why."""


class HostRecord(BaseModel):
    """An ssh run's host for one node: how to reach it, and the node's run dir there."""

    model_config = ConfigDict(extra="forbid", strict=True)

    address: str = Field(pattern=r"^[0-9A-Fa-f.:]+$")
    port: int = Field(ge=1, le=65535)
    user: str = Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    key: str
    known_hosts: str | None = None
    dir: str


class StateFile(BaseModel):
    """The schema a state file must follow before ``clean`` acts on anything it names."""

    model_config = ConfigDict(extra="forbid", strict=True)

    tag: str = Field(pattern=f"^{TAG.pattern}$")
    harness_pid: int = Field(gt=0)
    harness_start: int | None = None
    pids: dict[str, str] = Field(default_factory=dict)
    namespaces: list[str] = Field(default_factory=list)
    mounts: list[str] = Field(default_factory=list)
    containers: list[str] = Field(default_factory=list)
    networks: list[str] = Field(default_factory=list)
    started: float | int
    run_dir: str | None = None
    hosts: dict[str, HostRecord] = Field(default_factory=dict)
    remote_pids: dict[str, str] = Field(default_factory=dict)
    remote_mounts: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _owned_by_the_run(self) -> Self:
        tag = self.tag
        for pid, exe in self.pids.items():
            if not pid.isdigit() or int(pid) <= 1 or not re.match(_NAME, exe):
                raise ValueError(f"pid {pid!r} ({exe!r}) is not a pid and an executable name")
        for kind, names in (
            ("namespace", self.namespaces),
            ("container", self.containers),
            ("network", self.networks),
        ):
            for name in names:
                if not name.startswith(f"{tag}-") or not re.match(_NAME, name):
                    raise ValueError(f"{kind} {name!r} does not carry the run's tag {tag}")
        work = PurePosixPath(WORK_ROOT / tag)
        for mount in self.mounts:
            p = PurePosixPath(mount)
            if not p.is_absolute() or ".." in p.parts or work not in p.parents:
                raise ValueError(f"mount {mount!r} is not inside the run's work dir {work}")
        for node, host in self.hosts.items():
            d = PurePosixPath(host.dir)
            if not d.is_absolute() or ".." in d.parts or d.name != node or d.parent.name != tag:
                raise ValueError(f"host dir {host.dir!r} of {node} is not <workdir>/{tag}/{node}")
            for path in (host.key, host.known_hosts or "/"):
                if not PurePosixPath(path).is_absolute():
                    raise ValueError(f"{path!r} of {node} is not an absolute path")
        for key, cmdline in self.remote_pids.items():
            node, _, pid = key.partition(":")
            if node not in self.hosts or not pid.isdigit() or int(pid) <= 1:
                raise ValueError(f"remote pid {key!r} is not <node of a host>:<pid>")
            if f" {self.hosts[node].dir}/" not in cmdline or not cmdline.startswith("/"):
                raise ValueError(f"remote pid {key!r}: {cmdline!r} is not a process of the run")
        for entry in self.remote_mounts:
            node, _, path = entry.partition(":")
            m = PurePosixPath(path)
            if (
                node not in self.hosts
                or ".." in m.parts
                or PurePosixPath(self.hosts[node].dir) not in m.parents
            ):
                raise ValueError(f"remote mount {entry!r} is not inside its node's run dir")
        if self.run_dir is not None:
            p = PurePosixPath(self.run_dir)
            inside = p == PurePosixPath(WORK_ROOT) or PurePosixPath(WORK_ROOT) in p.parents
            if not p.is_absolute() or ".." in p.parts or inside:
                raise ValueError(f"result folder {self.run_dir!r} is not an absolute path outside "
                                 f"{WORK_ROOT}")  # fmt: skip
        return self


def load(path: Path) -> RunState:
    """The run state in ``path``, validated (:class:`StateFile`); else :class:`BadStateFile`."""
    try:
        if path.is_symlink() or not path.is_file():
            raise ValueError("not a regular file")
        if path.stat().st_size > 1 << 20:
            raise ValueError("larger than 1 MiB")
        model = StateFile.model_validate_json(path.read_bytes())
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "file"
        raise BadStateFile(f"{path}: not a run state ({where}: {first['msg']})") from None
    except (OSError, ValueError) as e:
        raise BadStateFile(f"{path}: not a run state ({e})") from None
    if path.name != f"{model.tag}.json":
        raise BadStateFile(f"{path}: not a run state (its tag {model.tag} is not its name)")
    return RunState(**model.model_dump())


def _add(names: list[str], name: str) -> None:
    if name not in names:
        names.append(name)


def all_states() -> tuple[list[RunState], list[tuple[Path, str]]]:
    """Every recorded run, oldest first, and the state files that failed validation (why)."""
    d = state_dir()
    out, bad = [], []
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            out.append(load(p))
        except BadStateFile as e:
            bad.append((p, str(e)))
    return sorted(out, key=lambda s: s.started), bad


def proc_start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot): with the pid, it names one process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def harness_alive(state: RunState) -> bool:
    """Is the harness that wrote ``state`` still running (the same process, not a reused pid)?"""
    start = proc_start_time(state.harness_pid)
    return start is not None and start == state.harness_start


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_is(pid: int, exe: str) -> bool:
    """True if ``pid`` runs and its command line starts with something named ``exe``."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(Path(a.decode(errors="replace")).name == exe for a in argv[:3] if a)


def kill_pid(pid: int, exe: str, timeout: float = 5.0) -> bool:
    """SIGKILL ``pid`` if it is still ``exe`` (resuming it first); True if it is gone."""
    if not pid_is(pid, exe):
        return True
    for sig in (signal.SIGCONT, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_is(pid, exe):
            return True
        time.sleep(0.05)
    return False


def unmount(path: str) -> bool:
    """Unmount ``path`` if mounted (FUSE first, then a lazy unmount); True if not mounted."""
    if not is_mounted(path):
        return True
    for cmd in (["fusermount3", "-u", path], ["umount", path], ["umount", "-l", path]):
        try:
            subprocess.run(cmd, capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            continue
        if not is_mounted(path):
            return True
    return not is_mounted(path)


def is_mounted(path: str) -> bool:
    target = os.path.realpath(path)
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return False
    return any(line.split()[1] == target for line in lines if len(line.split()) > 1)
