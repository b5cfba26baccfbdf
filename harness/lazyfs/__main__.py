"""Run one lazyfs mount in the foreground: ``python -m harness.lazyfs MOUNTPOINT BACKING ...``.

In: a mountpoint, a backing directory, a control socket path and optionally
``--writeback-after SECONDS``, ``--cache-bytes N`` and ``--no-kernel-cache`` (the exact mode, see
:mod:`harness.lazyfs.fuse`; the default is the kernel-cache mode). Out: a FUSE
mount at MOUNTPOINT that lives as long as this process (SIGTERM or SIGINT
unmounts cleanly, persisting nothing; after SIGKILL the caller must unmount, see
:class:`~harness.lazyfs.mount.LazyFSMount`), and a control socket. Exit status 0
after a clean unmount, 2 on bad arguments, 3 if the mount failed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
import warnings

from harness.lazyfs.control import ControlServer
from harness.lazyfs.fs import LazyFS
from harness.lazyfs.fuse import LazyFUSE

log = logging.getLogger("harness.lazyfs")


def _writeback_loop(fs: LazyFS, after: float, stop: threading.Event) -> None:
    """Persist data older than ``after`` seconds, checking a few times per period."""
    period = min(1.0, max(0.05, after / 4))
    while not stop.wait(period):
        try:
            fs.writeback_expired(after)
        except Exception:
            log.exception("lazyfs writeback failed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.lazyfs", description=__doc__)
    p.add_argument("mountpoint")
    p.add_argument("backing")
    p.add_argument("--control", required=True, help="unix socket path for the control protocol")
    p.add_argument(
        "--writeback-after",
        type=float,
        default=None,
        metavar="S",
        help="persist pending data older than S seconds in the background (default: never)",
    )
    p.add_argument(
        "--kernel-cache",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="FUSE writeback cache + page cache (fast; a drop must be followed by a remount); "
        "--no-kernel-cache: direct_io, every operation reaches lazyfs, drop is exact at once",
    )
    p.add_argument(
        "--cache-bytes",
        type=int,
        default=None,
        metavar="N",
        help="hold at most N un-fsynced bytes; past that, write the oldest files through",
    )
    p.add_argument("--single-thread", action="store_true", help="run the FUSE loop in one thread")
    p.add_argument("--debug", action="store_true", help="libfuse debug output on stderr")
    args = p.parse_args(argv)
    if args.writeback_after is not None and args.writeback_after <= 0:
        p.error("--writeback-after must be > 0")
    if args.cache_bytes is not None and args.cache_bytes <= 0:
        p.error("--cache-bytes must be > 0")
    for name in ("mountpoint", "backing"):
        if not os.path.isdir(getattr(args, name)):
            p.error(f"{name} {getattr(args, name)!r} is not a directory")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="lazyfs: %(levelname)s %(message)s")
    fs = LazyFS(args.backing, kernel_cache=args.kernel_cache, cache_bytes=args.cache_bytes)
    control = ControlServer(args.control, fs)
    control.start()
    stop = threading.Event()
    if args.writeback_after is not None:
        threading.Thread(
            target=_writeback_loop,
            args=(fs, args.writeback_after, stop),
            name="lazyfs-writeback",
            daemon=True,
        ).start()
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        LazyFUSE(
            fs,
            args.mountpoint,
            foreground=True,
            nothreads=args.single_thread,
            debug=args.debug,
            allow_other=True,
            default_permissions=True,
            fsname=f"lazyfs:{os.path.abspath(args.backing)}",
            subtype="lazyfs",
        )
    except RuntimeError as e:
        print(f"lazyfs: mounting {args.mountpoint} failed ({e})", file=sys.stderr)
        return 3
    finally:
        stop.set()
        control.shutdown()
        control.server_close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(args.control)
    return 0


if __name__ == "__main__":
    sys.exit(main())
