"""Node data on lazyfs, shared by every backend: mount, power-fail, count, release.

A backend whose scenario uses lazyfs keeps one :class:`LazyStores`. For each
node it mounts lazyfs at ``<node dir>/data`` over ``<node dir>/backing`` and
records the mount and the lazyfs pid in the run state before anything else
can go wrong (the pid as soon as it is spawned, before the mount is up), so
``nats-chaos clean`` can undo it. ``power_fail`` is the
storage half of a power loss: the backend has already killed the servers
(their files are closed, so the kernel has handed every dirty page to
lazyfs); each mount then drops its un-fsynced data and is remounted, which
also discards whatever the kernel still cached.
"""

from __future__ import annotations

from pathlib import Path

from harness.lazyfs import LazyFSMount
from harness.runstate import RunState, pid_alive

LAZYFS_EXE = "harness.lazyfs"  # how the run state recognises a lazyfs process


class LazyStores:
    """The lazyfs mounts of one run's nodes."""

    def __init__(self, state: RunState, writeback_after: float | None) -> None:
        self.state = state
        self.writeback_after = writeback_after
        self.mounts: dict[str, LazyFSMount] = {}

    def add(self, node: str, node_dir: Path) -> Path:
        """Mount lazyfs for ``node``; return the directory the server must use."""
        mount = LazyFSMount(
            node_dir / "data",
            node_dir / "backing",
            node_dir / "lazyfs.sock",
            self.writeback_after,
            log_path=node_dir / "lazyfs.log",
            on_spawn=self._record_pid,
        )
        self.mounts[node] = mount
        self._start(mount)
        return mount.mountpoint

    def _start(self, mount: LazyFSMount) -> None:
        self.state.add_mount(str(mount.mountpoint))
        mount.start()  # its pid is recorded (_record_pid) before the mount is waited for

    def _record_pid(self, pid: int) -> None:
        self.state.add_pid(pid, LAZYFS_EXE)

    def _forget_pid(self, pid: int | None) -> None:
        if pid is not None and not pid_alive(pid):
            self.state.drop_pid(pid)

    def power_fail(self, nodes: list[str]) -> dict[str, int]:
        """Drop every un-fsynced byte of ``nodes`` (servers already dead) and remount.

        Returns the bytes dropped per node.
        """
        missing = [n for n in nodes if n not in self.mounts]
        if missing:
            raise RuntimeError(f"power loss needs lazyfs storage ({', '.join(missing)} has none)")
        dropped: dict[str, int] = {}
        for node in nodes:
            mount = self.mounts[node]
            old = mount.pid
            self.state.add_mount(str(mount.mountpoint))
            dropped[node] = int(mount.remount(drop=True).get("dropped_bytes", 0))
            self._forget_pid(old)  # the new lazyfs pid was recorded as it was spawned
        return dropped

    def stats(self) -> dict[str, dict[str, int]]:
        """Each live mount's counters (un-fsynced bytes, fsyncs, drops…)."""
        out: dict[str, dict[str, int]] = {}
        for node, mount in self.mounts.items():
            if mount.alive():
                try:
                    out[node] = mount.client.stats()
                except Exception as e:  # a stats failure must not fail the run
                    out[node] = {"error": str(e)}  # type: ignore[dict-item]
        return out

    def release(self) -> list[str]:
        """Unmount everything (servers must be dead); return what could not be released."""
        errors: list[str] = []
        for node, mount in self.mounts.items():
            pid = mount.pid
            try:
                mount.stop()
            except Exception as e:  # keep releasing the rest; clean can finish this one
                errors.append(f"{node}: {e}")
                continue
            self._forget_pid(pid)
            self.state.drop_mount(str(mount.mountpoint))
        return errors
