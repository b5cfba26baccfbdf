"""The FUSE operations of lazyfs: a passthrough that keeps file data in memory until fsync.

:class:`LazyFS` is an ``mfusepy.Operations`` over a BACKING directory. In:
kernel FUSE requests (paths relative to the mount, file handles). Out: namespace
changes applied to BACKING at once, data and size changes held per inode in a
:class:`~harness.lazyfs.pending.PendingFile` until ``fsync``/``fdatasync``, and
the control operations :meth:`LazyFS.stats`, :meth:`LazyFS.drop`,
:meth:`LazyFS.flush_all` and :meth:`LazyFS.writeback_expired` that the control
socket and the writeback thread call. The file handle given to the kernel is
the backing file descriptor; pending state is keyed by backing inode number so
it follows renames and hard links. One lock serialises every change to
pending state (Python runs one thread at a time anyway); the slow part of an
fsync, the backing ``fsync(2)``, runs outside it. ``kernel_cache`` picks the
kernel settings made at mount time (:func:`~harness.lazyfs.fuse.configure`);
the operations are the same in both modes.
"""

from __future__ import annotations

import errno
import os
import random
import threading
import time
from typing import Any

import mfusepy

from harness.lazyfs.fuse import configure
from harness.lazyfs.pending import PendingFile

_STAT_KEYS = (
    "st_mode",
    "st_ino",
    "st_dev",
    "st_nlink",
    "st_uid",
    "st_gid",
    "st_size",
    "st_blksize",
    "st_blocks",
    "st_atime_ns",
    "st_mtime_ns",
    "st_ctime_ns",
)
# Flags the backing open must not see: we create/truncate ourselves, pwrite
# ignores offsets on O_APPEND descriptors, and O_DIRECT needs aligned buffers.
_STRIP_FLAGS = os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_APPEND | os.O_NOCTTY | os.O_DIRECT
_SYNC_FLAGS = os.O_SYNC | os.O_DSYNC


def _attrs(st: os.stat_result, pending: PendingFile | None) -> dict[str, Any]:
    d = {
        "st_mode": st.st_mode,
        "st_ino": st.st_ino,
        "st_nlink": st.st_nlink,
        "st_uid": st.st_uid,
        "st_gid": st.st_gid,
        "st_size": st.st_size,
        "st_blksize": st.st_blksize,
        "st_blocks": st.st_blocks,
        "st_atime": st.st_atime_ns,
        "st_mtime": st.st_mtime_ns,
        "st_ctime": st.st_ctime_ns,
    }
    if pending is not None:
        d["st_size"] = pending.size
        d["st_blocks"] = max(st.st_blocks, (pending.size + 511) // 512)
        d["st_mtime"] = d["st_ctime"] = max(pending.mtime_ns, st.st_mtime_ns)
    return d


class LazyFS(mfusepy.Operations):
    """FUSE operations over ``backing`` with in-memory un-fsynced data (see package docs)."""

    use_ns = True
    flag_nopath = True
    flag_nullpath_ok = True

    def __init__(
        self, backing: str, kernel_cache: bool = False, cache_bytes: int | None = None
    ) -> None:
        self.root = os.path.realpath(backing)
        self.kernel_cache = kernel_cache
        self.cache_bytes = cache_bytes  # at most this many pending bytes: then write through
        self.closing = False  # set on unmount: the writeback model stops persisting
        self._mu = threading.Lock()
        self.pending: dict[int, PendingFile] = {}  # backing inode -> pending state
        self.handles: dict[int, tuple[int, bool]] = {}  # fd -> (inode, O_SYNC)
        self.open_count: dict[int, int] = {}  # inode -> open handles
        self.counters = {"fsyncs": 0, "drops": 0, "writes": 0, "flushed_by_writeback": 0}
        self.counters["flushed_by_writeback_bytes"] = 0
        self.counters["flushed_by_cache_limit"] = 0
        self.counters["flushed_by_cache_limit_bytes"] = 0

    def _full(self, path: str) -> str:
        return self.root + path

    # -- lifecycle -----------------------------------------------------------------------

    def init_with_config(self, conn_info: Any, config_3: Any) -> None:
        configure(conn_info, config_3, self.kernel_cache)

    def destroy(self, path: str) -> None:
        """Unmount persists nothing: pending data dies with the process, as in a power loss."""
        self.closing = True

    # -- pending-state helpers (call with self._mu held) --------------------------------

    def _state(self, ino: int, fd: int) -> PendingFile:
        state = self.pending.get(ino)
        if state is None:
            state = self.pending[ino] = PendingFile(os.dup(fd))
        return state

    def _discard(self, ino: int) -> int:
        state = self.pending.pop(ino, None)
        if state is None:
            return 0
        state.close()
        return state.nbytes

    def _forget_if_gone(self, ino: int, nlink: int) -> None:
        """Discard the pending state of an inode whose last name went away and nobody has open."""
        if nlink <= 1 and not self.open_count.get(ino):
            self._discard(ino)

    def _persist_locked(self, inodes: list[int]) -> tuple[list[PendingFile], int]:
        """Write pending data of ``inodes`` to their backing files; fsync and close them after."""
        done, nbytes = [], 0
        for ino in inodes:
            state = self.pending.pop(ino, None)
            if state is not None:
                nbytes += state.persist()
                done.append(state)
        return done, nbytes

    @staticmethod
    def _sync_and_close(states: list[PendingFile], datasync: bool = False) -> None:
        for state in states:
            try:
                (os.fdatasync if datasync else os.fsync)(state.fd)
            finally:
                state.close()

    # -- files ---------------------------------------------------------------------------

    def _dirty(self, ino: int) -> PendingFile | None:
        """The inode's pending state if it holds anything un-fsynced (a clean one is kept
        after an fsync so the next write needs no new descriptor)."""
        state = self.pending.get(ino)
        return None if state is None or state.clean else state

    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        st = os.fstat(fh) if fh is not None else os.lstat(self._full(path or "/"))
        return _attrs(st, self._dirty(st.st_ino))

    def _register(self, fd: int, flags: int) -> int:
        st = os.fstat(fd)
        ino = st.st_ino
        with self._mu:
            self.handles[fd] = (ino, bool(flags & _SYNC_FLAGS))
            self.open_count[ino] = self.open_count.get(ino, 0) + 1
            # libfuse negotiates atomic O_TRUNC: the kernel sends no separate truncate.
            if flags & os.O_TRUNC and (ino in self.pending or st.st_size):
                self._state(ino, fd).truncate(0)
        return fd

    def _open_backing(self, full: str, flags: int, mode: int = 0o644) -> int:
        flags = (flags & ~_STRIP_FLAGS & ~os.O_ACCMODE) | os.O_CLOEXEC
        try:  # read-write, so any handle can persist the inode's pending data
            return os.open(full, flags | os.O_RDWR, mode)
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EROFS, errno.EPERM, errno.ETXTBSY):
                raise
            return os.open(full, flags | os.O_RDONLY, mode)

    def open(self, path: str, flags: int) -> int:
        return self._register(self._open_backing(self._full(path), flags), flags)

    def create(self, path: str, mode: int, flags: int = os.O_WRONLY) -> int:
        full = self._full(path)
        fd = os.open(full, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC | (flags & os.O_EXCL), mode)
        uid, gid, _ = mfusepy.fuse_get_context()
        if uid != os.geteuid():
            os.fchown(fd, uid, gid)
        return self._register(fd, flags)

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        ino = self.handles[fh][0]
        with self._mu:
            state = self._dirty(ino)
            if state is not None:
                return state.read(size, offset)
        return os.pread(fh, size, offset)

    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        ino, sync = self.handles[fh]
        with self._mu:
            state = self.pending.get(ino)
            if state is None:
                state = self.pending[ino] = PendingFile(os.dup(fh))
            state.write(offset, data)
            self.counters["writes"] += 1
            full = self._over_cache_limit_locked()
        if full:
            self._sync_and_close(full)
        if sync:
            self.fsync(path, 1, fh)
        return len(data)

    def _over_cache_limit_locked(self) -> list[PendingFile]:
        """Past ``cache_bytes`` pending: persist the files dirty longest until under it again."""
        if self.cache_bytes is None:
            return []
        total = sum(s.nbytes for s in self.pending.values())
        if total <= self.cache_bytes:
            return []
        due: list[int] = []
        dirty = [(ino, s) for ino, s in self.pending.items() if not s.clean]
        for ino, state in sorted(dirty, key=lambda kv: kv[1].dirty_since):
            if total <= self.cache_bytes:
                break
            due.append(ino)
            total -= state.nbytes
        states, nbytes = self._persist_locked(due)
        self.counters["flushed_by_cache_limit"] += len(states)
        self.counters["flushed_by_cache_limit_bytes"] += nbytes
        return states

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        if fh is not None:
            ino, fd, own = self.handles[fh][0], fh, False
        else:
            fd = self._open_backing(self._full(path or "/"), os.O_RDWR)
            ino, own = os.fstat(fd).st_ino, True
        try:
            with self._mu:
                self._state(ino, fd).truncate(length)
        finally:
            if own:
                os.close(fd)
        return 0

    def fallocate(self, path: str | None, mode: int, offset: int, size: int, fh: int) -> int:
        if mode != 0:  # keep-size, punch-hole, ...: not modelled
            raise mfusepy.FuseOSError(errno.EOPNOTSUPP)
        ino = self.handles[fh][0]
        with self._mu:
            state = self._state(ino, fh)
            if offset + size > state.size:
                state.truncate(offset + size)
        return 0

    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        """Persist the inode's pending data in place (its state stays, clean, for the next
        write) and sync the backing file through this handle, outside the lock."""
        ino = self.handles[fh][0]
        with self._mu:
            state = self.pending.get(ino)
            if state is not None and not state.clean:
                state.persist()
            self.counters["fsyncs"] += 1
        (os.fdatasync if datasync else os.fsync)(fh)
        return 0

    def flush(self, path: str | None, fh: int) -> int:
        return 0  # close(2) is not a durability point

    def release(self, path: str | None, fh: int) -> int:
        with self._mu:
            ino, _ = self.handles.pop(fh)
            left = self.open_count[ino] - 1
            if left:
                self.open_count[ino] = left
            else:
                del self.open_count[ino]
                state = self.pending.get(ino)
                if os.fstat(fh).st_nlink == 0 or (state is not None and state.clean):
                    self._discard(ino)  # unlinked while open: its data is gone; or nothing held
            os.close(fh)
        return 0

    # -- namespace: applied to the backing directory at once -----------------------------

    def _removed_inode(self, full: str) -> tuple[int, int] | None:
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_nlink

    def unlink(self, path: str) -> int:
        full = self._full(path)
        with self._mu:
            gone = self._removed_inode(full)
            os.unlink(full)
            if gone:
                self._forget_if_gone(*gone)
        return 0

    def rename(self, old: str, new: str) -> int:
        full_new = self._full(new)
        with self._mu:
            gone = self._removed_inode(full_new)
            os.rename(self._full(old), full_new)
            if gone:
                self._forget_if_gone(*gone)
        return 0

    def link(self, target: str, source: str) -> int:
        os.link(self._full(source), self._full(target))
        return 0

    def symlink(self, target: str, source: str) -> int:
        os.symlink(source, self._full(target))
        return 0

    def readlink(self, path: str) -> str:
        return os.readlink(self._full(path))

    def mknod(self, path: str, mode: int, dev: int) -> int:
        os.mknod(self._full(path), mode, dev)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self._full(path), mode)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._full(path))
        return 0

    def chmod(self, path: str | None, mode: int, fh: int | None = None) -> int:
        os.chmod(fh if fh is not None else self._full(path or "/"), mode)
        return 0

    def chown(self, path: str | None, uid: int, gid: int, fh: int | None = None) -> int:
        if fh is not None:
            os.fchown(fh, uid, gid)
        else:
            os.lchown(self._full(path or "/"), uid, gid)
        return 0

    def utimens(
        self, path: str | None, times: tuple[int, int] | None = None, fh: int | None = None
    ) -> int:
        target: int | str = fh if fh is not None else self._full(path or "/")
        follow = fh is not None  # a path is never followed; a descriptor has nothing to follow
        if times is None:  # "now", as utimensat(2) with a NULL times argument
            os.utime(target, follow_symlinks=follow)
        else:
            os.utime(target, ns=times, follow_symlinks=follow)
        return 0

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._full(path), amode):
            raise mfusepy.FuseOSError(errno.EACCES)
        return 0

    def opendir(self, path: str) -> int:
        return os.open(self._full(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def readdir(self, path: str | None, fh: int) -> list[tuple[str, dict[str, int], int]]:
        # With use_ino the dirent's inode comes from here, and a zero inode hides the entry.
        with os.scandir(fh) as it:
            entries = [(e.name, e.inode(), e.stat(follow_symlinks=False).st_mode) for e in it]
        st = os.fstat(fh)
        dots = [(".", st.st_ino, st.st_mode), ("..", st.st_ino, st.st_mode)]
        return [(n, {"st_ino": i, "st_mode": m}, 0) for n, i, m in dots + entries]

    def releasedir(self, path: str | None, fh: int) -> int:
        os.close(fh)
        return 0

    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
        os.fsync(fh)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        sv = os.statvfs(self._full(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files")
        return {k: getattr(sv, k) for k in (*keys, "f_flag", "f_frsize", "f_namemax")}

    # -- control operations (control socket and writeback thread) ------------------------

    def stats(self) -> dict[str, int]:
        with self._mu:
            un_fsynced = sum(s.nbytes for s in self.pending.values())
            files = sum(not s.clean for s in self.pending.values())
            now = {"un_fsynced_bytes": un_fsynced, "pending_files": files}
            return now | dict(self.counters) | {"kernel_cache": int(self.kernel_cache)}

    def drop(self, keep: float = 0.0, torn_write: bool = False, seed: int = 0) -> dict[str, int]:
        """Power loss: forget every pending change of every file.

        A torn power loss (``keep`` > 0 or ``torn_write``) first writes a random
        subset of each file's pending extents to the backing files, and with
        ``torn_write`` part of one more extent of one file (:meth:`PendingFile.persist_some`,
        :meth:`PendingFile.tear`, seeded with ``seed``): the disk had
        written some of what nobody fsynced. ``dropped_bytes`` is what was lost; a
        torn one also says ``kept_bytes`` (whole extents written) and ``torn_bytes``.
        """
        rng = random.Random(seed)
        tearing = keep > 0 or torn_write
        with self._mu:
            files = sum(not s.clean for s in self.pending.values())
            kept = torn = 0
            left: list[tuple[int, int]] = []  # (inode, extent) of what was not kept
            if tearing:
                for ino in sorted(self.pending):
                    k, rest = self.pending[ino].persist_some(rng, keep)
                    kept += k
                    left += [(ino, i) for i in rest]
            if torn_write and left:
                ino, i = left[rng.randrange(len(left))]
                torn = self.pending[ino].tear(i, rng)
            total = sum(self._discard(ino) for ino in list(self.pending))
            self.counters["drops"] += 1
        out = {"dropped_bytes": total - kept - torn, "files": files}
        return out | ({"kept_bytes": kept, "torn_bytes": torn} if tearing else {})

    def flush_all(self) -> dict[str, int]:
        """Like sync(1): persist every pending change and fsync the backing files."""
        with self._mu:
            dirty = [i for i, s in self.pending.items() if not s.clean]
            states, nbytes = self._persist_locked(dirty)
        self._sync_and_close(states)
        return {"files": len(states), "bytes": nbytes}

    def writeback_expired(self, older_than: float) -> tuple[int, int]:
        """Persist files whose oldest pending change is older than ``older_than`` seconds."""
        cutoff = time.monotonic() - older_than
        with self._mu:
            if self.closing:
                return 0, 0
            due = [i for i, s in self.pending.items() if not s.clean and s.dirty_since <= cutoff]
            states, nbytes = self._persist_locked(due)
            self.counters["flushed_by_writeback"] += len(states)
            self.counters["flushed_by_writeback_bytes"] += nbytes
        self._sync_and_close(states)
        return len(states), nbytes
