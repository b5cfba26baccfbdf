"""Files of a result folder written whole or not at all: a temporary name, then a rename.

Every file nats-chaos puts in a result, suite or comparison folder
(``results.json``, ``summary.md``, ``report.html``, ``plots/*.png``,
``junit.xml``, ``compare.csv``, the ``latest`` link, …) goes through this
module. In: the final path and the content (text, bytes, a JSON-able
object, or a writer that fills an open file). Out: the path, which then
holds the complete new content. The content is written to
``.<name>.<pid>.tmp`` beside it, flushed to disk and renamed over the
final name. Whatever stops the write — a full disk (``OSError``), a
signal, a bug — removes the temporary file and leaves the old file (or
none) in place, so a reader never sees a 0-byte or half-written file.
Standard library only: the harness and the report both use it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_file", "copy", "link", "write_bytes", "write_json", "write_text", "write_with"]


def _temp_for(path: Path) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}.tmp"


def _sync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse fsync on a directory
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, binary: bool = False) -> Iterator[IO[Any]]:
    """An open file whose content becomes ``path`` only if the ``with`` block completes."""
    path = Path(path)
    tmp = _temp_for(path)
    try:
        tmp.unlink(missing_ok=True)  # left by a process of the same pid that was killed
        fh: IO[Any] = open(tmp, "xb") if binary else open(tmp, "x", encoding="utf-8", newline="")  # noqa: SIM115
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    _sync_dir(path.parent)


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return ``path``."""
    with atomic_file(path, binary=True) as fh:
        fh.write(data)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (``default=str``) to ``path`` atomically."""
    return write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def write_with(path: Path, fill: Callable[[IO[Any]], None], binary: bool = False) -> Path:
    """Let ``fill`` write into an open file that atomically becomes ``path``."""
    with atomic_file(path, binary=binary) as fh:
        fill(fh)
    return Path(path)


def copy(src: Path, dest: Path) -> Path:
    """Copy file ``src`` to ``dest`` atomically (with its mode and times); return ``dest``."""
    import shutil

    with open(src, "rb") as inp, atomic_file(dest, binary=True) as out:
        shutil.copyfileobj(inp, out, 1 << 20)
    with contextlib.suppress(OSError):
        shutil.copystat(src, dest)
    return Path(dest)


def link(path: Path, target: str) -> Path:
    """Make ``path`` a symlink to ``target``, replacing whatever ``path`` was, atomically."""
    path = Path(path)
    tmp = _temp_for(path)
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    return path
