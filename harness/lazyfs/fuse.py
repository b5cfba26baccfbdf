"""mfusepy glue for lazyfs: the FUSE class it runs under and the kernel cache settings of each mode.

:class:`LazyFUSE` is mfusepy's ``FUSE`` with two fixes lazyfs relies on
(setattr-style calls on an open file receive its handle; ``UTIME_OMIT`` and
``UTIME_NOW`` are honoured). :func:`configure` fills libfuse's
``fuse_conn_info`` and ``fuse_config`` at mount time for one of two modes:

- **exact** (``kernel_cache=False``): ``direct_io``, no page cache, zero
  attribute timeout. Every read, write and stat reaches the daemon, so a
  ``drop`` is visible through the mount at once, without a remount.
- **kernel cache** (``kernel_cache=True``): the FUSE writeback cache
  (``FUSE_CAP_WRITEBACK_CACHE``), page cache kept across opens, long attribute
  and entry timeouts. Small writes land in the kernel page cache and reach the
  daemon in page-sized batches on fsync, on close and on the kernel's own
  writeback. The kernel then trusts its cached contents and file sizes, so a
  ``drop`` must be followed by a remount before the mount is used again.
"""

from __future__ import annotations

import time
from typing import Any

import mfusepy

MAX_WRITE = 1 << 20
FUSE_CAP_WRITEBACK_CACHE = 1 << 16  # fuse_common.h
UTIME_NOW = (1 << 30) - 1  # linux/stat.h
UTIME_OMIT = (1 << 30) - 2
# Nothing changes a file or a name behind the kernel's back while the mount is
# up except a drop, and a drop is followed by a remount in kernel-cache mode.
KERNEL_CACHE_TIMEOUT = 3600.0


def configure(conn_info: Any, config_3: Any, kernel_cache: bool) -> None:
    """Set libfuse's connection and config structs for the exact or the kernel-cache mode."""
    if conn_info is not None:
        conn_info.max_write = MAX_WRITE
        if kernel_cache:
            if not conn_info.capable & FUSE_CAP_WRITEBACK_CACHE:
                raise OSError("the kernel offers no FUSE writeback cache")
            conn_info.want |= FUSE_CAP_WRITEBACK_CACHE
            conn_info.max_background = 64  # writeback sends WRITEs asynchronously
            conn_info.congestion_threshold = 48
    if config_3 is None:
        return
    config_3.use_ino = 1
    config_3.hard_remove = 1  # no .fuse_hidden files in the node's data dir
    config_3.nullpath_ok = 1
    if kernel_cache:
        config_3.direct_io = 0
        config_3.kernel_cache = 1  # keep cached pages across opens
        config_3.auto_cache = 0
        config_3.attr_timeout = KERNEL_CACHE_TIMEOUT
        config_3.entry_timeout = KERNEL_CACHE_TIMEOUT
        config_3.negative_timeout = KERNEL_CACHE_TIMEOUT
    else:
        config_3.direct_io = 1  # no page cache: reads always see pending data, drop is exact
        config_3.kernel_cache = 0
        config_3.auto_cache = 0
        config_3.attr_timeout = 0.0  # sizes change on drop behind the kernel's back
        config_3.entry_timeout = 1.0
        config_3.negative_timeout = 0.0


def _decode(path: bytes | None) -> str | None:
    return None if path is None else path.decode("utf-8", "surrogateescape")


def _fh(fip: Any) -> int | None:
    return fip.contents.fh if fip else None


def _time_ns(ts: Any, current_ns: int) -> int:
    if ts.tv_nsec == UTIME_OMIT:
        return current_ns
    if ts.tv_nsec == UTIME_NOW:
        return time.time_ns()
    return int(ts.tv_sec) * 10**9 + int(ts.tv_nsec)


class LazyFUSE(mfusepy.FUSE):
    """mfusepy's FUSE, but setattr-style calls on an open file get its handle.

    With ``nullpath_ok`` libfuse passes no path to truncate/chmod/chown/utimens
    when the kernel names an open file (ftruncate, fchmod, ...); mfusepy 3.1
    drops the handle, so these overrides pass it on as ``fh``. ``utimens``
    also resolves ``UTIME_OMIT`` (the kernel's writeback cache sets mtime alone)
    and ``UTIME_NOW`` instead of passing them on as nanosecond counts.
    """

    def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
        return self.operations.truncate(_decode(path), length, _fh(fip))

    def chmod_fuse_3(self, path: bytes | None, mode: int, fip: Any) -> int:
        return self.operations.chmod(_decode(path), mode, _fh(fip))

    def chown_fuse_3(self, path: bytes | None, uid: int, gid: int, fip: Any) -> int:
        uid = -1 if uid == 0xFFFFFFFF else uid
        gid = -1 if gid == 0xFFFFFFFF else gid
        return self.operations.chown(_decode(path), uid, gid, _fh(fip))

    def utimens_fuse_3(self, path: bytes | None, buf: Any, fip: Any) -> int:
        fh, name = _fh(fip), _decode(path)
        times = None
        if buf:
            a, m = buf.contents.actime, buf.contents.modtime
            if UTIME_OMIT in (a.tv_nsec, m.tv_nsec):
                st = self.operations.getattr(name, fh)
                atime, mtime = st["st_atime"], st["st_mtime"]
            else:
                atime = mtime = 0
            times = (_time_ns(a, atime), _time_ns(m, mtime))
        return self.operations.utimens(name, times, fh)
