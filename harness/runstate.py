"""What a run has created, written down as it happens so ``nats-chaos clean`` can undo it.

Every run gets a tag (``nc`` + 8 hex digits) and a state file
``/run/nats-chaos/<tag>.json`` (or ``$NATS_CHAOS_STATE/<tag>.json``) that lists
its harness pid, the pids it started (with the executable each must be),
its namespaces, its mounts and (Docker backend) its containers and
networks. The file is rewritten after every change, so a harness killed
with SIGKILL still leaves an exact list. ``clean`` only acts on what such a
file names — never on a broad name pattern — and only kills a pid whose
executable still matches, so a recycled pid is left alone.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


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

    @property
    def path(self) -> Path:
        return state_dir() / f"{self.tag}.json"

    def save(self) -> None:
        """Atomically rewrite the state file."""
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

    def remove(self) -> None:
        """Forget the run: everything it created is gone."""
        self.path.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> RunState:
        data = json.loads(path.read_text())
        return cls(**data)


def _add(names: list[str], name: str) -> None:
    if name not in names:
        names.append(name)


def all_states() -> list[RunState]:
    """Every recorded run, oldest first; unreadable files are skipped."""
    d = state_dir()
    out = []
    for p in sorted(d.glob("nc*.json")) if d.is_dir() else []:
        try:
            out.append(RunState.load(p))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(out, key=lambda s: s.started)


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
