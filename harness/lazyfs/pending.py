"""Un-fsynced data and size of one file, held in memory until persisted or dropped.

A :class:`PendingFile` describes how a file's contents differ from its backing
file: a map of written extents, the file's logical ``size`` and a ``low``
watermark, the smallest size the file was truncated to since the last persist
(backing bytes at or beyond ``low`` are gone: they read as zeros unless a
pending extent covers them). In: an owned file descriptor of the backing file
(kept open so the state can be persisted after the file was closed, renamed or
its directory moved) and ``write``/``truncate`` calls. Out: merged reads, the
number of pending bytes, and a backing file that equals the merged view after
``persist``. Nothing here locks; the filesystem serialises calls with its own
lock.
"""

from __future__ import annotations

import os
import random
import time
from bisect import bisect_right


class PendingFile:
    """Pending extents, size and truncation watermark of one inode."""

    __slots__ = (
        "backing_size",
        "bufs",
        "dirty_since",
        "fd",
        "low",
        "mtime_ns",
        "nbytes",
        "size",
        "starts",
    )

    def __init__(self, fd: int) -> None:
        self.fd = fd  # owned: closed by close()
        backing_size = os.fstat(fd).st_size
        self.backing_size = backing_size  # what the backing file really holds
        self.size = backing_size  # logical size seen through the mount
        self.low = backing_size  # backing bytes in [low, ...) are invalid
        self.starts: list[int] = []  # sorted, non-overlapping, non-adjacent extents
        self.bufs: list[bytearray] = []
        self.nbytes = 0  # sum of extent lengths: the un-fsynced bytes
        self.dirty_since = time.monotonic()
        self.mtime_ns = time.time_ns()

    def write(self, offset: int, data: bytes) -> None:
        """Record ``data`` at ``offset``; the file grows if the write ends past ``size``."""
        n = len(data)
        if n == 0:
            return
        if not self.nbytes and self.clean:  # the first change since the last persist
            self.dirty_since = time.monotonic()
        end = offset + n
        starts, bufs = self.starts, self.bufs
        lo = bisect_right(starts, offset) - 1
        if lo < 0 or starts[lo] + len(bufs[lo]) < offset:
            lo += 1  # no extent touches offset from the left
        hi = bisect_right(starts, end) - 1  # last extent starting at or before end
        if lo > hi:  # touches nothing: a new extent
            starts.insert(lo, offset)
            bufs.insert(lo, bytearray(data))
            self.nbytes += n
        elif lo == hi and starts[lo] <= offset:  # inside or extending one extent, in place
            buf = bufs[lo]
            before = len(buf)
            rel = offset - starts[lo]
            if rel + n >= before:
                buf[rel:] = data
            else:
                buf[rel : rel + n] = data
            self.nbytes += len(buf) - before
        else:  # spans several extents: merge them into one
            first_start = starts[lo]
            last_start, last = starts[hi], bufs[hi]
            merged = bytearray(bufs[lo][: max(0, offset - first_start)])
            merged += data
            if last_start + len(last) > end:
                merged += last[end - last_start :]
            self.nbytes += len(merged) - sum(len(b) for b in bufs[lo : hi + 1])
            starts[lo : hi + 1] = [min(offset, first_start)]
            bufs[lo : hi + 1] = [merged]
        if end > self.size:
            self.size = end
        self.mtime_ns = time.time_ns()

    def truncate(self, length: int) -> None:
        """Set the logical size; shrinking discards pending bytes and backing bytes beyond it."""
        if length != self.size and self.clean:
            self.dirty_since = time.monotonic()
        if length < self.size:
            starts, bufs = self.starts, self.bufs
            i = bisect_right(starts, length - 1) if length > 0 else 0
            if i > 0 and starts[i - 1] + len(bufs[i - 1]) > length:
                buf = bufs[i - 1]
                cut = len(buf) - (length - starts[i - 1])
                del buf[length - starts[i - 1] :]
                self.nbytes -= cut
            self.nbytes -= sum(len(b) for b in bufs[i:])
            del starts[i:], bufs[i:]
            self.low = min(self.low, length)
        self.size = length
        self.mtime_ns = time.time_ns()

    def read(self, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes at ``offset``: backing bytes below ``low``, zeros, then extents."""
        end = min(offset + size, self.size)
        if offset >= end:
            return b""
        starts, bufs = self.starts, self.bufs
        i = max(0, bisect_right(starts, offset) - 1)
        if i < len(starts) and starts[i] <= offset and end <= starts[i] + len(bufs[i]):
            rel = offset - starts[i]
            return bytes(bufs[i][rel : rel + end - offset])
        out = bytearray(end - offset)
        bend = min(end, self.low)
        if offset < bend:
            got = os.pread(self.fd, bend - offset, offset)
            out[: len(got)] = got
        while i < len(starts) and starts[i] < end:
            s, buf = starts[i], bufs[i]
            a, b = max(s, offset), min(s + len(buf), end)
            if a < b:
                out[a - offset : b - offset] = buf[a - s : b - s]
            i += 1
        return bytes(out)

    @property
    def clean(self) -> bool:
        """True when the merged view equals the backing file (nothing to persist)."""
        return self.nbytes == 0 and self.size == self.backing_size == self.low

    def persist(self) -> int:
        """Make the backing file equal the merged view (no fsync); return bytes written."""
        fd = self.fd
        current = self.backing_size
        if self.low < current:
            os.ftruncate(fd, self.low)
            current = self.low
        written = 0
        for start, buf in zip(self.starts, self.bufs, strict=True):
            written += _pwrite_all(fd, buf, start)
            current = max(current, start + len(buf))
        if current != self.size:
            os.ftruncate(fd, self.size)
        self.reset(self.size)
        return written

    def persist_some(self, rng: random.Random, keep: float) -> tuple[int, list[int]]:
        """A torn power loss: write a random subset of the pending extents to the backing file.

        Each extent is written with probability ``keep``. Pending truncations are not
        applied (the backing file only grows). Returns the bytes written and the
        indexes of the extents left out (one of them may be torn: :meth:`tear`); the
        caller discards the state afterwards.
        """
        kept, left = 0, []
        for i, (start, buf) in enumerate(zip(self.starts, self.bufs, strict=True)):
            if rng.random() < keep:
                kept += _pwrite_all(self.fd, buf, start)
            else:
                left.append(i)
        return kept, left

    def tear(self, i: int, rng: random.Random) -> int:
        """Write a random prefix of extent ``i``, shorter than the extent (a torn write)."""
        buf = self.bufs[i]
        if len(buf) < 2:
            return 0
        return _pwrite_all(self.fd, buf[: rng.randrange(1, len(buf))], self.starts[i])

    def reset(self, backing_size: int) -> None:
        """Forget every pending change: the merged view becomes the backing file again."""
        self.backing_size = self.size = self.low = backing_size
        self.starts.clear()
        self.bufs.clear()
        self.nbytes = 0
        self.dirty_since = time.monotonic()

    def close(self) -> None:
        """Release the backing descriptor; the state must not be used afterwards."""
        os.close(self.fd)
        self.fd = -1


def _pwrite_all(fd: int, data: bytes | bytearray, offset: int) -> int:
    """Write all of ``data`` at ``offset``; return its length."""
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        pos += os.pwrite(fd, view[pos:], offset + pos)
    return len(view)
