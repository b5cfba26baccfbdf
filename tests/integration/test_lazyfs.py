"""lazyfs through a real FUSE mount: a randomized differential test against a model, and the
promises the power-loss fault relies on (close does not persist, fsync does, a SIGKILLed
writer's un-fsynced data is lost, unmount persists nothing, counters, timed writeback, no
mount left after SIGKILL), in both cache modes (exact; kernel cache, which needs a remount
after a drop). Needs root and /dev/fuse.

Reproduce a differential failure with ``LAZYFS_SEED=<seed> pytest -k differential``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.lazyfs import LazyFSMount, is_mounted
from harness.lazyfs.control import LazyFSControlError

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0 or not os.path.exists("/dev/fuse"), reason="needs root and /dev/fuse"
    ),
]


MODES = [pytest.param(False, id="exact"), pytest.param(True, id="kernel-cache")]


@pytest.fixture(params=MODES)
def lazy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LazyFSMount]:
    m = LazyFSMount(
        tmp_path / "mnt",
        tmp_path / "backing",
        tmp_path / "ctl.sock",
        log_path=tmp_path / "log",
        kernel_cache=request.param,
    )
    m.start()
    try:
        yield m
    finally:
        m.stop()
        assert not is_mounted(m.mountpoint)


# -- the model ----------------------------------------------------------------------------


@dataclass(eq=False)
class Inode:
    current: bytearray = field(default_factory=bytearray)  # what reads must return now
    durable: bytearray = field(default_factory=bytearray)  # what survives a drop


def _write_model(buf: bytearray, offset: int, data: bytes) -> None:
    if offset > len(buf):
        buf.extend(bytes(offset - len(buf)))
    buf[offset : offset + len(data)] = data


def _truncate_model(buf: bytearray, length: int) -> None:
    if length < len(buf):
        del buf[length:]
    else:
        buf.extend(bytes(length - len(buf)))


class Differential:
    """Random ops on the mount and on the model, checked against each other."""

    NAMES = ("a", "b", "c", "d", "e", "sub/f", "sub/g", "sub/h")

    def __init__(self, mount: LazyFSMount, seed: int) -> None:
        self.m = mount
        self.rng = random.Random(seed)
        self.seed = seed
        self.files: dict[str, Inode] = {}
        self.fds: dict[Inode, int] = {}
        self.log: list[str] = []
        (mount.mountpoint / "sub").mkdir()

    def path(self, name: str) -> str:
        return str(self.m.mountpoint / name)

    def fd(self, name: str) -> int:
        ino = self.files[name]
        if ino not in self.fds:
            self.fds[ino] = os.open(self.path(name), os.O_RDWR)
        return self.fds[ino]

    def close(self, ino: Inode) -> None:
        fd = self.fds.pop(ino, None)
        if fd is not None:
            os.close(fd)

    def fail(self, what: str) -> str:
        tail = "\n  ".join(self.log[-15:])
        return f"seed={self.seed}: {what}\n last ops:\n  {tail}"

    def check_file(self, name: str, expected: bytes) -> None:
        with open(self.path(name), "rb") as f:
            got = f.read()
        assert got == bytes(expected), self.fail(
            f"{name}: read {len(got)} bytes, model has {len(expected)}; "
            f"first difference at {next((i for i, (x, y) in enumerate(zip(got, expected, strict=False)) if x != y), min(len(got), len(expected)))}"  # noqa: E501
        )
        size = os.stat(self.path(name)).st_size
        assert size == len(expected), self.fail(f"{name}: st_size {size} != {len(expected)}")

    def check_names(self, root: Path) -> None:
        found = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        assert found == set(self.files), self.fail(f"files {sorted(found)} != {sorted(self.files)}")

    def step(self) -> None:
        rng, files = self.rng, self.files
        names = sorted(files)
        op = rng.choices(
            ["create", "write", "truncate", "fsync", "read", "rename", "unlink", "close",
             "otrunc", "append", "flush"],
            weights=[6, 40, 8, 8, 12, 5, 3, 6, 2, 4, 1],
        )[0]  # fmt: skip
        if not names or op == "create":
            name = rng.choice([n for n in self.NAMES if n not in files] or [None])
            if name is None:
                return
            fd = os.open(self.path(name), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            files[name] = ino = Inode()
            self.fds[ino] = fd
            self.log.append(f"create {name}")
            return
        name = rng.choice(names)
        ino = files[name]
        if op == "write":
            big = rng.random() < 0.05
            n = rng.randint(1, 300_000 if big else 6000)
            off = rng.randint(0, len(ino.current) + 4000)
            data = rng.randbytes(n)
            assert os.pwrite(self.fd(name), data, off) == n
            _write_model(ino.current, off, data)
            self.log.append(f"pwrite {name} off={off} n={n}")
        elif op == "append":
            data = rng.randbytes(rng.randint(1, 3000))
            fd = os.open(self.path(name), os.O_WRONLY | os.O_APPEND)
            try:
                assert os.write(fd, data) == len(data)
            finally:
                os.close(fd)
            ino.current += data
            self.log.append(f"append {name} n={len(data)}")
        elif op == "truncate":
            length = rng.randint(0, len(ino.current) * 3 // 2 + 3000)
            if rng.random() < 0.5:
                os.ftruncate(self.fd(name), length)
            else:
                os.truncate(self.path(name), length)
            _truncate_model(ino.current, length)
            self.log.append(f"truncate {name} {length}")
        elif op == "otrunc":
            os.close(os.open(self.path(name), os.O_WRONLY | os.O_TRUNC))
            ino.current.clear()
            self.log.append(f"open O_TRUNC {name}")
        elif op == "fsync":
            (os.fdatasync if rng.random() < 0.3 else os.fsync)(self.fd(name))
            ino.durable = bytearray(ino.current)
            self.log.append(f"fsync {name}")
        elif op == "read":
            if rng.random() < 0.5:
                self.check_file(name, ino.current)
            else:
                off = rng.randint(0, len(ino.current) + 100)
                n = rng.randint(1, 20000)
                got = os.pread(self.fd(name), n, off)
                assert got == bytes(ino.current[off : off + n]), self.fail(
                    f"pread {name} {off} {n}"
                )
            self.log.append(f"read {name}")
        elif op == "rename":
            new = rng.choice([n for n in self.NAMES if n != name])
            os.rename(self.path(name), self.path(new))
            replaced = files.pop(new, None)
            if replaced is not None:
                self.close(replaced)
            files[new] = files.pop(name)
            self.log.append(f"rename {name} -> {new}")
        elif op == "unlink":
            orphan = self.fds.pop(ino, None) if rng.random() < 0.3 else None
            self.close(ino)
            os.unlink(self.path(name))
            del files[name]
            if orphan is not None:  # an unlinked open file still works, then vanishes
                os.pwrite(orphan, b"orphan", 1)
                _write_model(ino.current, 1, b"orphan")
                got = os.pread(orphan, len(ino.current) + 10, 0)
                assert got == ino.current, self.fail("orphan read")
                os.close(orphan)
            self.log.append(f"unlink {name} (orphan write: {orphan is not None})")
        elif op == "close":
            self.close(ino)
            self.log.append(f"close {name}")
        elif op == "flush":
            self.m.flush()
            for i in files.values():
                i.durable = bytearray(i.current)
            self.log.append("control flush")

    def drop_and_check(self) -> None:
        for ino in list(self.fds):
            self.close(ino)
        self.m.client.drop()
        self.log.append("drop")
        for ino in self.files.values():
            ino.current = bytearray(ino.durable)
        stats = self.m.client.stats()
        assert stats["un_fsynced_bytes"] == 0 and stats["pending_files"] == 0, self.fail(str(stats))
        if self.m.kernel_cache:  # the kernel still trusts its cached pages and sizes
            self.m.remount(drop=False)
            self.log.append("remount")
        self.check_names(self.m.mountpoint)
        self.check_names(self.m.backing)
        for name, ino in sorted(self.files.items()):
            self.check_file(name, ino.durable)
            backing = (self.m.backing / name).read_bytes()
            assert backing == bytes(ino.durable), self.fail(f"backing {name} differs")


def test_differential_random_ops_then_drop(lazy: LazyFSMount) -> None:
    """Exact mode: compared right after each drop; kernel-cache mode: after drop + remount."""
    seed = int(os.environ.get("LAZYFS_SEED", random.randrange(1 << 32)))
    print(f"lazyfs differential seed={seed}")
    diff = Differential(lazy, seed)
    for i in range(1, 6001):
        diff.step()
        if i % 1000 == 0 or diff.rng.random() < 0.002:
            diff.drop_and_check()
    diff.drop_and_check()


# -- the promises the power-loss fault relies on ------------------------------------------


def power_loss(m: LazyFSMount) -> dict[str, int]:
    """Drop; in kernel-cache mode also remount, as the power-loss fault does."""
    dropped = m.client.drop()
    if m.kernel_cache:
        m.remount(drop=False)
    return dropped


def test_close_without_fsync_then_drop_loses_data(lazy: LazyFSMount) -> None:
    p = lazy.mountpoint / "f.blk"
    p.write_bytes(b"x" * 10_000)  # open, write, close: no fsync
    assert p.read_bytes() == b"x" * 10_000
    assert (lazy.backing / "f.blk").stat().st_size == 0
    assert power_loss(lazy) == {"dropped_bytes": 10_000, "files": 1}
    assert p.exists() and p.read_bytes() == b""


def test_fsync_then_drop_keeps_data(lazy: LazyFSMount) -> None:
    p = lazy.mountpoint / "meta.inf"
    with open(p, "wb") as f:
        f.write(b"durable")
        f.flush()
        os.fsync(f.fileno())
        f.write(b"-lost")
    assert (lazy.backing / "meta.inf").read_bytes() == b"durable"
    power_loss(lazy)
    assert p.read_bytes() == b"durable"


WRITER = """
import os, sys, time
mnt = sys.argv[1]
a = os.open(os.path.join(mnt, "a.blk"), os.O_CREAT | os.O_RDWR, 0o644)
b = os.open(os.path.join(mnt, "b.blk"), os.O_CREAT | os.O_RDWR, 0o644)
for i in range(2000):
    os.write(a, b"%07d-durable-record\\n" % i)
os.fsync(a)
for i in range(2000):
    os.write(a, b"%07d-lost-record\\n" % i)
    os.write(b, b"%07d-lost-record\\n" % i)
print("written", flush=True)
time.sleep(60)
"""


def test_sigkilled_writer_loses_unfsynced_data(lazy: LazyFSMount) -> None:
    """A writer killed mid-stream: its fsynced prefix survives kill + drop (+ remount), the rest
    is gone, also what the kernel still held when it died (it reaches lazyfs on close)."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(lazy.mountpoint)], stdout=subprocess.PIPE
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == b"written\n"
    finally:
        writer.kill()
        writer.wait(timeout=10)
    durable = b"".join(b"%07d-durable-record\n" % i for i in range(2000))
    lost = 2000 * len(b"0000000-lost-record\n")
    stats = lazy.client.stats()
    # Closing the killed writer's files handed everything un-fsynced to lazyfs.
    assert stats["pending_files"] == 2
    assert stats["un_fsynced_bytes"] >= 2 * lost
    assert (lazy.mountpoint / "a.blk").stat().st_size == len(durable) + lost
    assert (lazy.backing / "a.blk").read_bytes() == durable
    power_loss(lazy)
    assert (lazy.mountpoint / "a.blk").read_bytes() == durable
    assert (lazy.mountpoint / "b.blk").read_bytes() == b""
    assert lazy.client.stats()["un_fsynced_bytes"] == 0


def test_unmount_persists_nothing(lazy: LazyFSMount) -> None:
    (lazy.mountpoint / "kept").write_bytes(b"k")
    with open(lazy.mountpoint / "kept", "rb+") as f:
        os.fsync(f.fileno())
    (lazy.mountpoint / "gone").write_bytes(b"g" * 5000)
    assert lazy.client.stats()["un_fsynced_bytes"] == 5000
    lazy.remount(drop=False)  # a clean unmount, no drop
    assert (lazy.backing / "gone").read_bytes() == b""
    assert (lazy.mountpoint / "gone").read_bytes() == b""
    assert (lazy.mountpoint / "kept").read_bytes() == b"k"


def test_remount_drops_first(lazy: LazyFSMount) -> None:
    old_pid = lazy.pid
    (lazy.mountpoint / "f").write_bytes(b"f" * 3000)
    assert lazy.remount() == {"dropped_bytes": 3000, "files": 1}
    assert lazy.pid != old_pid and lazy.alive()
    assert lazy.client.stats()["drops"] == 0  # a fresh process
    assert (lazy.mountpoint / "f").read_bytes() == b""


def test_stats_count_what_was_done(tmp_path: Path) -> None:
    """Exact mode: every write(2) reaches lazyfs, so its counters match the calls."""
    with LazyFSMount(tmp_path / "m", tmp_path / "b", tmp_path / "c", kernel_cache=False) as lazy:
        fd = os.open(lazy.mountpoint / "s", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            for i in range(10):
                os.pwrite(fd, b"a" * 1000, i * 1000)
            os.fsync(fd)
            for i in range(5):
                os.pwrite(fd, b"b" * 100, i * 100)
            other = lazy.mountpoint / "t"
            other.write_bytes(b"c" * 42)
            stats = lazy.client.stats()
        finally:
            os.close(fd)
        assert stats["writes"] == 16
        assert stats["fsyncs"] == 1
        assert stats["un_fsynced_bytes"] == 500 + 42
        assert stats["pending_files"] == 2
        assert stats["drops"] == 0 and stats["kernel_cache"] == 0
        assert lazy.client.drop() == {"dropped_bytes": 542, "files": 2}
        after = lazy.client.stats()
        assert after["drops"] == 1 and after["un_fsynced_bytes"] == 0
        assert after["pending_files"] == 0
        assert (lazy.mountpoint / "s").read_bytes() == b"a" * 10_000


def test_kernel_cache_batches_writes_and_needs_remount(tmp_path: Path) -> None:
    """Kernel-cache mode: small writes reach lazyfs in pages on fsync and close, and after a
    drop the kernel keeps its cached size until the remount."""
    with LazyFSMount(tmp_path / "m", tmp_path / "b", tmp_path / "c", kernel_cache=True) as lazy:
        fd = os.open(lazy.mountpoint / "s", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            for i in range(1000):
                os.write(fd, b"%099d\n" % i)
            os.fsync(fd)
            synced = lazy.client.stats()
            for i in range(5):
                os.pwrite(fd, b"b" * 100, i * 100)
        finally:
            os.close(fd)
        assert synced["writes"] <= 4 and synced["un_fsynced_bytes"] == 0
        assert synced["kernel_cache"] == 1
        closed = lazy.client.stats()
        assert closed["un_fsynced_bytes"] == 4096  # the dirty page, whole
        assert lazy.client.drop() == {"dropped_bytes": 4096, "files": 1}
        durable = b"".join(b"%099d\n" % i for i in range(1000))
        assert (lazy.backing / "s").read_bytes() == durable
        with open(lazy.mountpoint / "s", "r+b") as f:
            f.truncate(50)
        (lazy.mountpoint / "s").write_bytes(b"new")  # O_TRUNC too
        assert lazy.client.drop()["files"] == 1
        assert os.stat(lazy.mountpoint / "s").st_size == 3  # stale: the kernel's size
        lazy.remount(drop=False)
        assert (lazy.mountpoint / "s").read_bytes() == durable


def test_writeback_after_persists_old_data(tmp_path: Path) -> None:
    with LazyFSMount(tmp_path / "m", tmp_path / "b", tmp_path / "c", writeback_after=1.0) as m:
        (m.mountpoint / "wb").write_bytes(b"w" * 5000)
        assert (m.backing / "wb").stat().st_size == 0  # not yet: younger than 1 s
        deadline = time.monotonic() + 10
        while (m.backing / "wb").stat().st_size == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        stats = m.client.stats()
        assert stats["flushed_by_writeback"] >= 1
        assert stats["un_fsynced_bytes"] == 0
        m.client.drop()
        assert (m.mountpoint / "wb").read_bytes() == b"w" * 5000


def test_sigkilled_lazyfs_leaves_no_mount_after_stop(tmp_path: Path) -> None:
    m = LazyFSMount(tmp_path / "m", tmp_path / "b", tmp_path / "c").start()
    (m.mountpoint / "x").write_bytes(b"1")
    assert m.pid is not None
    os.kill(m.pid, signal.SIGKILL)
    assert m.process is not None
    m.process.wait(timeout=10)
    assert is_mounted(m.mountpoint)  # the kernel keeps a dead mount
    with pytest.raises(OSError):
        os.listdir(m.mountpoint)
    m.stop()
    assert not is_mounted(m.mountpoint)
    with open("/proc/mounts") as f:
        assert str(m.mountpoint) not in f.read()
    assert os.listdir(m.backing) == ["x"]


def test_lazyfs_runs_in_its_own_session_and_its_pid_is_heard_before_the_mount_is_up(
    tmp_path: Path,
) -> None:
    heard: list[tuple[int, bool]] = []
    mnt = tmp_path / "mnt"
    m = LazyFSMount(mnt, tmp_path / "backing", tmp_path / "ctl.sock",
                    on_spawn=lambda pid: heard.append((pid, is_mounted(mnt))))  # fmt: skip
    m.start()
    try:
        assert m.pid is not None
        assert heard == [(m.pid, False)]  # a run state records it before anything can fail
        assert os.getsid(m.pid) == m.pid != os.getsid(0)  # a terminal's Ctrl-C misses it
        assert m.process is not None
        m.process.kill()  # a dead lazyfs: remount starts a new one, heard as well
        m.process.wait(10)
        m.remount(drop=False)
        assert len(heard) == 2 and heard[1][0] == m.pid
    finally:
        m.stop()
    assert not is_mounted(mnt)


def test_a_torn_power_loss_keeps_some_writes_whole_and_one_in_part(tmp_path: Path) -> None:
    """Exact mode: each file is one pending extent, so what survives is countable per file."""
    with LazyFSMount(tmp_path / "m", tmp_path / "b", tmp_path / "c", kernel_cache=False) as lazy:
        for i in range(20):
            (lazy.mountpoint / f"f{i}").write_bytes(bytes([65 + i]) * 1000)
        got = lazy.client.drop(keep=0.5, torn_write=True, seed=3)
        sizes = [(lazy.backing / f"f{i}").stat().st_size for i in range(20)]
        whole = [i for i, n in enumerate(sizes) if n == 1000]
        torn = [i for i, n in enumerate(sizes) if 0 < n < 1000]
        assert 0 < len(whole) < 20 and len(torn) == 1
        assert got["kept_bytes"] == 1000 * len(whole)
        assert got["torn_bytes"] == sizes[torn[0]]
        assert got["dropped_bytes"] == 20_000 - got["kept_bytes"] - got["torn_bytes"]
        assert got["files"] == 20
        [t] = torn  # a prefix of what was written, as a torn write leaves it
        assert (lazy.mountpoint / f"f{t}").read_bytes() == bytes([65 + t]) * sizes[t]
        assert lazy.client.drop(keep=0.5, seed=3) == {  # nothing pending: nothing to tear
            "dropped_bytes": 0, "files": 0, "kept_bytes": 0, "torn_bytes": 0,
        }  # fmt: skip
        with pytest.raises(LazyFSControlError, match=r"keep must be within 0\.\.1, not 2\.0"):
            lazy.client.request("drop", keep=2)


def test_a_cache_limit_writes_the_oldest_files_through(tmp_path: Path) -> None:
    with LazyFSMount(
        tmp_path / "m", tmp_path / "b", tmp_path / "c", kernel_cache=False, cache_bytes=5000
    ) as lazy:
        for i in range(8):
            (lazy.mountpoint / f"f{i}").write_bytes(b"z" * 1000)
            time.sleep(0.01)  # distinct dirty times: the oldest go first
        stats = lazy.client.stats()
        assert stats["un_fsynced_bytes"] == 5000
        assert (stats["flushed_by_cache_limit"], stats["flushed_by_cache_limit_bytes"]) == (3, 3000)
        assert lazy.client.drop() == {"dropped_bytes": 5000, "files": 5}
        sizes = [(lazy.backing / f"f{i}").stat().st_size for i in range(8)]
        assert sizes == [1000, 1000, 1000, 0, 0, 0, 0, 0]
