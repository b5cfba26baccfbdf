"""File corruption in JetStream's store: bit flips, truncated tails, stale chunks.

The targets (``one`` or ``minority``) are chosen when the window starts; on
each, ``files`` files whose type is in ``file_types`` are picked at random
from the node's store dir (``cluster.data_dir``): ``blk`` message blocks,
``idx`` Raft peer/term state, ``inf``/``sum`` stream and consumer metadata
and its checksum, ``dat`` consumer state, ``db`` stream index, ``snap`` Raft
snapshots (files in ``snapshots/`` or named ``snap.*``). Modes:

- ``bitflip``: ``count`` random bits, each at a random offset (length 1);
- ``truncate``: the file is cut at a random offset (length = bytes removed);
- ``stale-chunk``: up to ``count`` distinct 4 KiB-aligned chunks are copied
  when the window starts and written back when it ends — over the same
  offset (a lost write) or, with ``misdirect``, another aligned offset (a
  misdirected one); a write-back never grows the file (it is clipped at the
  file's current end, and the op's length says what was written).

``while_down``: the node is SIGKILLed before its files are touched (for a
stale chunk: before the write-back) and restarted when the window ends.
Every change is an op ``{node, file, mode, offset, length}`` in the history;
nodes without a matching file are listed under ``no_files``, and a node that
is not running two seconds after its restart under ``not_running``.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.faults.base import FaultContext
from harness.faults.targets import resolve
from harness.scenario import CorruptSpec

CHUNK = 4096
RESTART_GRACE = 2.0


@dataclass
class _Saved:
    node: str
    path: Path
    offset: int
    data: bytes


def file_type(path: Path) -> str | None:
    """The corruption file type of ``path`` (``blk``, ``snap``, …), or None."""
    if path.parent.name == "snapshots" or path.name.startswith("snap."):
        return "snap"
    return path.suffix.removeprefix(".") or None


def candidates(root: Path, types: tuple[str, ...]) -> list[Path]:
    """Non-empty files under ``root`` of one of ``types``, sorted (so a seed picks the same)."""
    if not root.is_dir():
        return []
    found = []
    for p in root.rglob("*"):
        try:
            if p.is_file() and file_type(p) in types and p.stat().st_size > 0:
                found.append(p)
        except OSError:
            continue  # a block deleted under our feet
    return sorted(found)


def _pwrite(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def bitflip(path: Path, rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Flip ``count`` random bits of ``path``; one op per bit."""
    ops = []
    size = path.stat().st_size
    with path.open("r+b") as fh:
        for _ in range(count):
            offset, bit = rng.randrange(size), rng.randrange(8)
            fh.seek(offset)
            byte = fh.read(1)[0]
            fh.seek(offset)
            fh.write(bytes([byte ^ (1 << bit)]))
            ops.append({"mode": "bitflip", "offset": offset, "length": 1, "bit": bit})
        fh.flush()
        os.fsync(fh.fileno())
    return ops


def truncate(path: Path, rng: random.Random) -> list[dict[str, Any]]:
    """Cut ``path`` at a random offset; the op's length is what was removed."""
    size = path.stat().st_size
    offset = rng.randrange(size)
    os.truncate(path, offset)
    return [{"mode": "truncate", "offset": offset, "length": size - offset}]


def _chunk_offsets(size: int, rng: random.Random, count: int) -> list[int]:
    """Up to ``count`` distinct 4 KiB-aligned offsets inside a file of ``size`` bytes."""
    chunks = max(1, (size + CHUNK - 1) // CHUNK)
    return [i * CHUNK for i in rng.sample(range(chunks), min(count, chunks))]


class CorruptFault:
    """Corrupt files on the targets; undo nothing, but restart what was stopped."""

    kind = "corrupt"

    def __init__(self, spec: CorruptSpec) -> None:
        self.spec = spec
        self.nodes: list[str] = []
        self.killed: list[str] = []
        self.saved: list[_Saved] = []
        self.rng = random.Random(0)

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        spec = self.spec
        self.rng = ctx.rng
        self.nodes = resolve(spec.targets, ctx.cluster.nodes, ctx.rng, ctx.stream_leader)
        stale = spec.mode == "stale-chunk"
        if spec.while_down and not stale:
            self._kill(ctx)
        ops: list[dict[str, Any]] = []
        no_files: list[str] = []
        for node in self.nodes:
            root = ctx.cluster.data_dir(node)  # type: ignore[attr-defined]
            files = candidates(root, spec.file_types)
            if not files:
                no_files.append(node)
                continue
            for path in ctx.rng.sample(files, min(spec.files, len(files))):
                for op in self._corrupt(node, path):
                    ops.append({"node": node, "file": str(path.relative_to(root)), **op})
        return {
            "targets": spec.targets,
            "mode": spec.mode,
            "while_down": spec.while_down,
            "nodes": self.nodes,
            "killed": list(self.killed),
            "ops": ops,
            "no_files": no_files,
        }

    def _corrupt(self, node: str, path: Path) -> list[dict[str, Any]]:
        try:
            if self.spec.mode == "bitflip":
                return bitflip(path, self.rng, self.spec.count)
            if self.spec.mode == "truncate":
                return truncate(path, self.rng)
            return self._save_chunks(node, path)
        except (OSError, ValueError) as e:  # the server removed or shrank it meanwhile
            return [{"mode": self.spec.mode, "error": f"{type(e).__name__}: {e}"[:160]}]

    def _save_chunks(self, node: str, path: Path) -> list[dict[str, Any]]:
        size = path.stat().st_size
        ops = []
        with path.open("rb") as fh:
            for offset in _chunk_offsets(size, self.rng, self.spec.count):
                fh.seek(offset)
                data = fh.read(CHUNK)
                self.saved.append(_Saved(node, path, offset, data))
                ops.append({"mode": "stale-chunk-copy", "offset": offset, "length": len(data)})
        return ops

    def _write_back(self, ctx: FaultContext) -> list[dict[str, Any]]:
        ops = []
        for s in self.saved:
            root = ctx.cluster.data_dir(s.node)  # type: ignore[attr-defined]
            op: dict[str, Any] = {"node": s.node, "file": str(s.path.relative_to(root))}
            try:
                size = s.path.stat().st_size
                offset = _chunk_offsets(size, self.rng, 1)[0] if self.spec.misdirect else s.offset
                data = s.data[: max(0, size - offset)]  # never grow the file
                _pwrite(s.path, offset, data)
                op.update(mode="stale-chunk", offset=offset, length=len(data), copied_from=s.offset)
            except OSError as e:
                op.update(mode="stale-chunk", error=f"{type(e).__name__}: {e}"[:160])
            ops.append(op)
        self.saved = []
        return ops

    def _kill(self, ctx: FaultContext) -> None:
        for node in self.nodes:
            if ctx.cluster.running(node):
                ctx.cluster.kill(node)
                self.killed.append(node)

    def stop(self, ctx: FaultContext) -> dict[str, Any]:
        value: dict[str, Any] = {"nodes": self.nodes}
        if self.saved:
            if self.spec.while_down:
                self._kill(ctx)
            value["ops"] = self._write_back(ctx)
        for node in self.killed:
            ctx.cluster.start_node(node)
        if self.killed:
            time.sleep(RESTART_GRACE)
            value["restarted"] = list(self.killed)
            value["not_running"] = [n for n in self.killed if not ctx.cluster.running(n)]
        self.killed = []
        return value
