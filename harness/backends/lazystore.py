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

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.lazyfs import LazyFSMount
from harness.runstate import RunState, pid_alive

LAZYFS_EXE = "harness.lazyfs"  # how the run state recognises a lazyfs process


COUNTERS = ("fsyncs", "drops", "writes", "flushed_by_writeback", "flushed_by_writeback_bytes",
            "flushed_by_cache_limit", "flushed_by_cache_limit_bytes")  # fmt: skip


class LazyStores:
    """The lazyfs mounts of one run's nodes, and their counters summed over remounts."""

    def __init__(
        self,
        state: RunState,
        writeback_after: float | None,
        cache_bytes: int | None = None,
        sync_interval: str = "default",
    ) -> None:
        self.state = state
        self.writeback_after = writeback_after
        # The exact mode under sync_interval: always: every message is fsynced, so the
        # kernel cache saves no WRITE and adds an mtime SETATTR per fsync (0.35 of a
        # plain directory against the exact mode's 0.45, benchmarks/README.md "lazyfs").
        # The writeback model counts from when lazyfs sees a write: with the kernel's page
        # cache in front, writes would reach it only after the kernel's own ~30 s.
        self.kernel_cache = writeback_after is None and sync_interval != "always"
        # Under always lazyfs handles a WRITE and an FSYNC per message: one FUSE thread
        # spends ~110 µs of CPU on the pair where libfuse's thread pool spends ~250
        # (GIL hand-offs); the backing fsyncs were one at a time already (one stream).
        self.extra_args: tuple[str, ...] = ("--single-thread",) if sync_interval == "always" else ()
        self.cache_bytes = cache_bytes
        self.mounts: dict[str, LazyFSMount] = {}
        self.before: dict[str, dict[str, int]] = {}  # counters of each node's earlier mounts

    def add(self, node: str, node_dir: Path) -> Path:
        """Mount lazyfs for ``node``; return the directory the server must use."""
        mount = LazyFSMount(
            node_dir / "data",
            node_dir / "backing",
            node_dir / "lazyfs.sock",
            self.writeback_after,
            log_path=node_dir / "lazyfs.log",
            on_spawn=self._record_pid,
            kernel_cache=self.kernel_cache,
            extra_args=self.extra_args,
            cache_bytes=self.cache_bytes,
        )
        self.mounts[node] = mount
        self._start(mount)
        return mount.mountpoint

    def _start(self, mount: LazyFSMount) -> None:
        self._record_mount(mount)
        mount.start()  # its pid is recorded (_record_pid) before the mount is waited for

    # What the run state records (a backend whose mounts are on other hosts overrides these).
    def _record_mount(self, mount: LazyFSMount) -> None:
        self.state.add_mount(str(mount.mountpoint))

    def _forget_mount(self, mount: LazyFSMount) -> None:
        self.state.drop_mount(str(mount.mountpoint))

    def _record_pid(self, pid: int) -> None:
        self.state.add_pid(pid, LAZYFS_EXE)

    def _forget_pid(self, pid: int | None) -> None:
        if pid is not None and not pid_alive(pid):
            self.state.drop_pid(pid)

    def power_fail(
        self, nodes: list[str], keep: float = 0.0, torn_write: bool = False, seed: int = 0
    ) -> dict[str, dict[str, int]]:
        """Drop every un-fsynced byte of ``nodes`` (servers already dead) and remount.

        ``keep``/``torn_write``: a torn power loss (:meth:`harness.lazyfs.fs.LazyFS.drop`).
        Returns per node the drop's figures (``dropped_bytes``, and ``kept_bytes`` and
        ``torn_bytes`` when torn) and ``fsyncs`` (the node's fsyncs so far, all mounts).
        """
        missing = [n for n in nodes if n not in self.mounts]
        if missing:
            raise RuntimeError(f"power loss needs lazyfs storage ({', '.join(missing)} has none)")
        seeds = {node: seed + i for i, node in enumerate(nodes)}

        def drop(node: str) -> dict[str, int]:
            mount = self.mounts[node]
            self._bank(node)  # the new process starts its counters from zero
            if not mount.alive():
                return {"dropped_bytes": 0}
            if keep or torn_write:
                return mount.client.drop(keep=keep, torn_write=torn_write, seed=seeds[node])
            return mount.client.drop()

        def remount(node: str) -> None:
            mount = self.mounts[node]
            old = mount.pid
            self._record_mount(mount)
            mount.remount(drop=False)  # dropped above: now a fresh kernel view of what is left
            self._forget_pid(old)  # the new lazyfs pid was recorded as it was spawned

        # Every node's drop first, at once, then the remounts (slow: unmount, start, wait),
        # at once too: no store keeps pending data (and its writeback model running) while
        # another node remounts.
        with ThreadPoolExecutor(max_workers=len(nodes) or 1) as pool:
            figures = dict(zip(nodes, pool.map(drop, nodes), strict=True))
            list(pool.map(remount, nodes))
        out: dict[str, dict[str, int]] = {}
        for node in nodes:
            self.before[node]["drops"] += 1  # the drop happened in the process just ended
            out[node] = {k: int(v) for k, v in figures[node].items() if k != "files"}
            out[node]["fsyncs"] = self.before.get(node, {}).get("fsyncs", 0)
        return out

    def _bank(self, node: str) -> None:
        """Add the current mount's counters to the node's earlier ones."""
        mount = self.mounts[node]
        banked = self.before.setdefault(node, dict.fromkeys(COUNTERS, 0))
        if not mount.alive():
            return
        now = mount.client.stats()
        for k in COUNTERS:
            banked[k] += int(now.get(k, 0))

    def stats(self) -> dict[str, dict[str, int]]:
        """Each live mount's counters (un-fsynced bytes, fsyncs, drops…), summed over the
        node's remounts (``mounts``: how many lazyfs processes the node had)."""
        out: dict[str, dict[str, int]] = {}
        for node, mount in self.mounts.items():
            if mount.alive():
                try:
                    now = mount.client.stats()
                except Exception as e:  # a stats failure must not fail the run
                    out[node] = {"error": str(e)}  # type: ignore[dict-item]
                    continue
                banked = self.before.get(node, {})
                out[node] = now | {k: int(now.get(k, 0)) + banked.get(k, 0) for k in COUNTERS}
                out[node]["mounts"] = 1 + int(banked.get("drops", 0))
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
            self._forget_mount(mount)
        return errors
