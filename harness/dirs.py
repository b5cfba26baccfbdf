"""The directories nats-chaos writes into: checked before anything starts, never shared.

In: a directory a command will write (``--results-dir``, ``check --report``,
a run folder ``report`` rewrites). Out: :func:`require_writable` returns
nothing or raises :class:`~harness.errors.CannotRun` (exit 3) with one line
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


def require_writable(path: Path, what: str) -> None:
    """Raise CannotRun unless ``path`` (created if missing) takes new files and has room."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CannotRun(f"{path}: {what} must be a directory, and this is a file") from None
    except OSError as e:
        raise CannotRun(f"{path}: cannot create {what} ({_why(e)})") from None
    if not path.is_dir():
        raise CannotRun(f"{path}: {what} must be a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".nats-chaos-probe-") as fh:
            fh.write(b"x" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
        st = os.statvfs(path)
    except OSError as e:
        raise CannotRun(f"{path}: cannot write {what} ({_why(e)})") from None
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
