"""Start and stop a lazyfs process from the harness: :class:`LazyFSMount`.

In: a mountpoint, a backing directory, a control socket path, an optional
writeback delay and the cache mode (``kernel_cache``, see
:mod:`harness.lazyfs.fuse`). Out: a running ``python -m harness.lazyfs`` child
(``pid``, in a session of its own; ``on_spawn`` hears it first) whose mount
is live and whose control socket answers (``client``);
on ``stop()`` a mountpoint that is no longer in ``/proc/mounts``, also when the
lazyfs process was SIGKILLed (the kernel then leaves a dead mount behind that
only an unmount removes); ``remount()`` for the power-loss fault (drop, stop,
start: a fresh kernel view of what survived); ``flush()`` that persists the
kernel's dirty pages too (fsync of every file through the mount). Unmounting
never persists pending data. Only the child this object started is ever
signalled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.errors import CannotRun, PrivilegeError
from harness.lazyfs.control import ControlClient, LazyFSControlError


class LazyFSMountError(CannotRun):
    """A lazyfs mount could not be started or removed."""


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")


def is_mounted(mountpoint: str | os.PathLike[str]) -> bool:
    """True if ``mountpoint`` appears in /proc/mounts (dead FUSE mounts included)."""
    target = os.path.abspath(mountpoint)
    with open("/proc/mounts") as f:
        return any(_unescape(line.split()[1]) == target for line in f if line.strip())


def unmount(mountpoint: str | os.PathLike[str]) -> None:
    """Unmount, trying fusermount3, umount, then a lazy umount; raise if it stays mounted."""
    target = os.path.abspath(mountpoint)
    attempts = [["fusermount3", "-u", target], ["umount", target], ["umount", "-l", target]]
    attempts.insert(2, ["fusermount3", "-uz", target])
    for cmd in attempts:
        if not is_mounted(target):
            return
        if shutil.which(cmd[0]):
            subprocess.run(cmd, capture_output=True, check=False, timeout=30)
    if is_mounted(target):
        raise LazyFSMountError(f"could not unmount lazyfs at {target}; try `umount -l {target}`")


class LazyFSMount:
    """One lazyfs mount: ``start()``, ``client``, ``stop()``; also a context manager."""

    def __init__(
        self,
        mountpoint: str | os.PathLike[str],
        backing: str | os.PathLike[str],
        control: str | os.PathLike[str],
        writeback_after: float | None = None,
        *,
        log_path: str | os.PathLike[str] | None = None,
        start_timeout: float = 15.0,
        extra_args: tuple[str, ...] = (),
        kernel_cache: bool = True,
        on_spawn: Callable[[int], None] | None = None,
        cache_bytes: int | None = None,
    ) -> None:
        self.mountpoint = Path(mountpoint).absolute()
        self.backing = Path(backing).absolute()
        self.control = Path(control).absolute()
        self.writeback_after = writeback_after
        self.log_path = Path(log_path) if log_path else None
        self.start_timeout = start_timeout
        self.extra_args = extra_args
        self.kernel_cache = kernel_cache
        self.on_spawn = on_spawn
        self.cache_bytes = cache_bytes
        self.client = ControlClient(self.control)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Process id of the lazyfs process, or None before start()."""
        return self.process.pid if self.process else None

    def command(self) -> list[str]:
        """The command line start() runs."""
        cmd = [sys.executable, "-m", "harness.lazyfs", str(self.mountpoint), str(self.backing)]
        cmd += ["--control", str(self.control)]
        if self.writeback_after is not None:
            cmd += ["--writeback-after", str(self.writeback_after)]
        cmd.append("--kernel-cache" if self.kernel_cache else "--no-kernel-cache")
        if self.cache_bytes is not None:
            cmd += ["--cache-bytes", str(self.cache_bytes)]
        return cmd + list(self.extra_args)

    def start(self) -> LazyFSMount:
        """Spawn lazyfs and wait until the mount is live and the control socket answers.

        The child runs in a session of its own (like nats-server), so a Ctrl-C
        to the terminal's process group reaches only the harness, which still
        needs the mount to collect the node's data. ``on_spawn`` gets its pid
        before the mount is waited for, so a run state can record it first.
        """
        if os.geteuid() != 0:
            raise PrivilegeError("lazyfs mounts need root (allow_other, /dev/fuse)")
        if not os.path.exists("/dev/fuse"):
            raise LazyFSMountError("no /dev/fuse: load the fuse module or pass --device /dev/fuse")
        if is_mounted(self.mountpoint):
            raise LazyFSMountError(f"{self.mountpoint} is already a mount point")
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self.backing.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.control.unlink()
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        with open(self.log_path or os.devnull, "ab") as out:  # the child keeps its own copy
            self.process = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        if self.on_spawn is not None:
            self.on_spawn(self.process.pid)
        self._wait_live()
        return self

    def _wait_live(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self._cleanup_mount()
                where = f"; see {self.log_path}" if self.log_path else ""
                raise LazyFSMountError(f"lazyfs at {self.mountpoint} exited with {code}{where}")
            if is_mounted(self.mountpoint) and self.control.exists():
                try:
                    if self.client.ping() == self.process.pid:
                        os.stat(self.mountpoint)  # the FUSE loop answers, not just the socket
                        return
                except (LazyFSControlError, OSError):
                    pass
            time.sleep(0.02)
        self.stop()
        raise LazyFSMountError(
            f"lazyfs at {self.mountpoint} did not come up within {self.start_timeout:.0f}s"
        )

    def alive(self) -> bool:
        """True while the lazyfs process runs."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Unmount and end the lazyfs process; leaves no mount behind even after a SIGKILL."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            # Unmounting makes the FUSE loop return; SIGTERM does the same through libfuse.
            with contextlib.suppress(LazyFSMountError, subprocess.TimeoutExpired):
                unmount(self.mountpoint)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=timeout)
        self._cleanup_mount()

    def remount(self, drop: bool = True, **torn: Any) -> dict[str, int]:
        """Power loss of the mount: drop pending data, unmount, mount BACKING again.

        Call it after the processes using the mount are gone (their files closed:
        closing hands the kernel's dirty pages to lazyfs, where they are pending).
        Returns the drop's figures (``dropped_bytes``, ``files``, ``kept_bytes``,
        ``torn_bytes``; zeros with ``drop=False`` or a dead lazyfs); ``torn`` are the
        drop's torn power loss options (``keep``, ``torn_write``, ``seed``). Nothing
        pending survives: the lazyfs process persists nothing on unmount, and whatever
        the kernel still sends it while unmounting dies with it. The new process has a new ``pid``.
        """
        dropped = {"dropped_bytes": 0, "files": 0}
        if drop and self.alive():
            dropped = self.client.drop(**torn)
        self.stop()
        self.start()
        return dropped

    def flush(self) -> dict[str, int]:
        """Persist everything, like sync(1): fsync every file through the mount, then the rest.

        fsync through the mount makes the kernel write a file's dirty pages and wait for
        them before lazyfs persists it. syncfs(2) would not do: on recent kernels it does
        not wait for FUSE writeback, so pages could still be in flight. Returns what the
        final control ``flush`` persisted (files only lazyfs holds, e.g. unlinked ones).
        """
        for top, _dirs, names in os.walk(self.mountpoint):
            for name in names:
                path = os.path.join(top, name)
                with contextlib.suppress(FileNotFoundError):
                    if not stat.S_ISREG(os.lstat(path).st_mode):
                        continue
                    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
        return self.client.flush()

    def _cleanup_mount(self) -> None:
        unmount(self.mountpoint)
        with contextlib.suppress(FileNotFoundError):
            self.control.unlink()

    def __enter__(self) -> LazyFSMount:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
