"""lazyfs: a FUSE filesystem that keeps un-fsynced file data in memory and can drop it.

A node's data directory (BACKING) is mounted at MOUNTPOINT; the node's
nats-server runs on MOUNTPOINT. Power loss is ``drop``: every byte not yet
fsynced disappears, as on a machine whose page cache was lost.

The model (what ``tests/integration/test_lazyfs.py`` checks byte for byte):

- **Namespace** operations (create, mkdir, rmdir, unlink, rename, link,
  symlink, mknod, chmod, chown, utimens) are applied to BACKING at once,
  like a metadata-journaling filesystem: they survive a drop.
- **Data and size** changes (write/pwrite, truncate/ftruncate, O_TRUNC,
  fallocate mode 0) are held in memory per inode (a rename carries the
  pending state with the file; removing a file's last name discards it) and
  are visible through the mount at once: reads merge pending extents over
  the backing bytes and honour the pending size (bytes beyond a pending
  truncation read as zeros if the file grows again).
- ``fsync``/``fdatasync`` on a file persists that file's pending data and
  size into its backing file and fsyncs it. ``close``/``flush``/``release``
  persist nothing: the kernel closes a killed process's files too. Writes on
  an O_SYNC/O_DSYNC descriptor are persisted as they happen.
- ``drop`` forgets all pending state of every file; afterwards the mount
  shows exactly what was fsynced (plus every namespace change).
- ``flush`` (control op) persists everything, like ``sync(1)``.
- Optional kernel-writeback model: with ``writeback_after=S`` a file whose
  oldest pending change is older than S seconds is persisted in the
  background, all of it, as Linux writes back an inode whose
  ``dirtied_when`` expired (``dirty_expire_centisecs``, 30 s by default).
  Off by default: the worst case, as in Jepsen's LazyFS.

Two cache modes (:mod:`.fuse`), same outcome after a power loss:

- **kernel cache** (default, ``kernel_cache=True``): the FUSE writeback cache.
  Small writes stay in the kernel page cache and reach lazyfs in pages on
  fsync (then they are persisted), on close (also when the kernel closes a
  killed process's files) and on the kernel's own writeback: they become
  pending there, exactly as above. The kernel trusts its cached pages and
  sizes, so a drop must be followed by a remount
  (:meth:`LazyFSMount.remount`: drop, unmount, mount). About 100x fewer FUSE
  round trips under JetStream's default sync (``benchmarks/README.md``).
- **exact** (``kernel_cache=False``): ``direct_io`` and a zero attribute
  timeout, so every operation reaches lazyfs, reads and sizes always reflect
  pending state and a drop needs no remount.

A run's stores (``harness.backends.lazystore``) use the kernel cache except
under ``sync_interval: always`` (every message is fsynced, so the cache saves
no WRITE and adds an mtime SETATTR per fsync: the exact mode is the faster
one there) and with the writeback model (which must see writes when they
happen). An fsync persists a file's pending state in place and keeps it,
clean, for the next write (no new descriptor, fstat or state per fsync).

Unmounting persists nothing in either mode: pending state lives in the lazyfs
process and dies with it.

Parts: :mod:`.pending` (one file's pending extents), :mod:`.fs` (the FUSE
operations), :mod:`.fuse` (mfusepy glue and the kernel settings of each mode),
:mod:`.control` (control socket protocol, server, client), :mod:`.mount`
(:class:`LazyFSMount`, which runs ``python -m harness.lazyfs`` as its own
process). Control protocol: see :mod:`.control`.
"""

from __future__ import annotations

from harness.lazyfs.control import ControlClient, LazyFSControlError
from harness.lazyfs.mount import LazyFSMount, LazyFSMountError, is_mounted, unmount

__all__ = [
    "ControlClient",
    "LazyFSControlError",
    "LazyFSMount",
    "LazyFSMountError",
    "is_mounted",
    "unmount",
]
