"""The directories nats-chaos writes into: checked before anything starts, never shared.

In: a directory a command will write (``--results-dir``, ``check --report``,
a run folder ``report`` rewrites). Out: :func:`require_writable` creates
nothing and returns nothing, or raises :class:`~harness.errors.CannotRun` (exit 3) with one line
naming the path and why — read-only, not a directory, no permission, or too
little free space for a result folder (:data:`MIN_FREE_BYTES`).
:func:`stamped_dir` creates ``parent/<YYYYmmddTHHMMSS>`` (``-1``, ``-2`` …
when that second is taken) with one ``mkdir`` that fails if the name
exists, so two harnesses started in the same second each get their own.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from harness.errors import CannotRun

MIN_FREE_BYTES = 16 << 20  # a short run's folder (history, logs, report) fits many times


def _why(e: OSError) -> str:
    return e.strerror or type(e).__name__


def _probe(directory: Path) -> None:
    """Write 4 KiB to a new file in ``directory`` and fsync it; the file is always removed."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=".nats-chaos-probe-")
    try:
        os.write(fd, b"x" * 4096)
        os.fsync(fd)
    finally:
        os.close(fd)
        os.unlink(name)


def require_writable(path: Path, what: str) -> None:
    """Raise CannotRun unless ``path`` can take new files and has room; creates nothing.

    When ``path`` does not exist yet, its nearest existing parent is what is
    probed (a file is written there and removed at once).
    """
    probe = path
    while not probe.exists() and probe != probe.parent:
        if probe.is_symlink():  # a dangling link: mkdir would fail on it
            raise CannotRun(f"{path}: cannot create {what} ({probe} is a broken link)")
        probe = probe.parent
    if not probe.is_dir():
        raise CannotRun(f"{path}: {what} must be a directory, and {probe} is a file")
    try:
        _probe(probe)
        st = os.statvfs(probe)
    except OSError as e:
        where = "" if probe == path else f" (in {probe})"
        raise CannotRun(f"{path}: cannot write {what}{where}: {_why(e)}") from None
    free = st.f_bavail * st.f_frsize
    if free < MIN_FREE_BYTES:
        raise CannotRun(
            f"{path}: {what} has {free / 2**20:.1f} MiB free; nats-chaos needs at least "
            f"{MIN_FREE_BYTES >> 20} MiB for a result folder"
        )


def stamped_dir(parent: Path, stamp: str | None = None) -> Path:
    """Create and return ``parent/<stamp>`` (default: now), suffixed ``-N`` if it is taken."""
    stamp = stamp or time.strftime("%Y%m%dT%H%M%S")
    parent.mkdir(parents=True, exist_ok=True)
    for i in range(10_000):
        d = parent / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            d.mkdir()
        except FileExistsError:  # another harness took it first: try the next name
            continue
        return d
    raise CannotRun(f"{parent}: 10000 folders named {stamp}* already exist")
