"""File corruption in JetStream's store: bit flips, truncated tails, stale chunks.

The targets (``one``, ``minority``, a list of nodes or a set relative to a
program step; ``fixed`` keeps the first window's) are chosen when the window starts; on
each, ``files`` files whose type is in ``file_types`` are picked at random
from the node's store dir (``store_dir(node)``, listed, read and written
through the node's Remote — the ``files`` ability): ``blk`` message blocks,
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

import posixpath
import random
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from harness.backends.base import FILES, PROCESS, Remote
from harness.faults.base import FaultContext, FaultKind, NodeFaultSpec
from harness.faults.targets import NodeName, OtherThan, SameAs, describe

CHUNK = 4096
RESTART_GRACE = 2.0
NEEDS = frozenset({FILES, PROCESS})

CorruptFileType = Literal["blk", "idx", "inf", "sum", "dat", "db", "snap"]


class CorruptSpec(NodeFaultSpec):
    """Damage JetStream files on one node or a minority (``harness.faults.corrupt``).

    ``bitflip`` flips ``count`` random bits per file, ``truncate`` cuts a
    random tail, ``stale-chunk`` copies ``count`` 4 KiB chunks when the window
    starts and writes them back when it ends (at another offset if
    ``misdirect``). ``files`` files per node, of the ``file_types`` given.
    ``while_down``: the node is killed first and restarted when the window ends.
    """

    kind: Literal["corrupt"]
    targets: Literal["one", "minority"] | tuple[NodeName, ...] | SameAs | OtherThan = "one"
    mode: Literal["bitflip", "truncate", "stale-chunk"] = "bitflip"
    file_types: tuple[CorruptFileType, ...] = Field(default=("blk",), min_length=1)
    files: int = Field(default=1, ge=1, le=100)
    count: int = Field(default=8, ge=1, le=10_000)
    while_down: bool = False
    misdirect: bool = False


def label(spec: CorruptSpec) -> str:
    """``corrupt bitflip files=blk,snap targets=one while-down``."""
    down = (" while-down" if spec.while_down else "") + (" fixed" if spec.fixed else "")
    files = ",".join(spec.file_types)
    return f"corrupt {spec.mode} files={files} targets={describe(spec.targets)}{down}"


@dataclass
class _Saved:
    node: str
    path: str  # on the node's Remote
    offset: int
    data: bytes


def file_type(rel: str) -> str | None:
    """The corruption file type of the store path ``rel`` (``blk``, ``snap``, …), or None."""
    parent, name = posixpath.split(rel)
    if posixpath.basename(parent) == "snapshots" or name.startswith("snap."):
        return "snap"
    return posixpath.splitext(name)[1].removeprefix(".") or None


def candidates(remote: Remote, root: str, types: tuple[str, ...]) -> list[str]:
    """Non-empty files under ``root`` of one of ``types``, relative and sorted (a seed picks
    the same)."""
    return [rel for rel, size in remote.files(root) if size > 0 and file_type(rel) in types]


def bitflip(remote: Remote, path: str, rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Flip ``count`` random bits of ``path``; one op per bit."""
    size = remote.size(path)
    ops: list[dict[str, Any]] = []
    masks: dict[int, int] = {}
    for _ in range(count):
        offset, bit = rng.randrange(size), rng.randrange(8)
        masks[offset] = masks.get(offset, 0) ^ (1 << bit)
        ops.append({"mode": "bitflip", "offset": offset, "length": 1, "bit": bit})
    for offset, mask in masks.items():  # one read and write per byte, however often it flips
        (byte,) = remote.read(path, offset, 1)
        remote.write(path, offset, bytes([byte ^ mask]))
    return ops


def truncate(remote: Remote, path: str, rng: random.Random) -> list[dict[str, Any]]:
    """Cut ``path`` at a random offset; the op's length is what was removed."""
    size = remote.size(path)
    offset = rng.randrange(size)
    remote.truncate(path, offset)
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
        self.nodes = ctx.targets(spec)
        stale = spec.mode == "stale-chunk"
        if spec.while_down and not stale:
            self._kill(ctx)
        ops: list[dict[str, Any]] = []
        no_files: list[str] = []
        files_of = ctx.files()
        for node in self.nodes:
            remote, root = files_of.remote(node), files_of.store_dir(node)
            files = candidates(remote, root, spec.file_types)
            if not files:
                no_files.append(node)
                continue
            for rel in ctx.rng.sample(files, min(spec.files, len(files))):
                for op in self._corrupt(remote, node, posixpath.join(root, rel)):
                    ops.append({"node": node, "file": rel, **op})
        return {
            "targets": describe(spec.targets),
            "mode": spec.mode,
            "while_down": spec.while_down,
            "nodes": self.nodes,
            "killed": list(self.killed),
            "ops": ops,
            "no_files": no_files,
        }

    def _corrupt(self, remote: Remote, node: str, path: str) -> list[dict[str, Any]]:
        try:
            if self.spec.mode == "bitflip":
                return bitflip(remote, path, self.rng, self.spec.count)
            if self.spec.mode == "truncate":
                return truncate(remote, path, self.rng)
            return self._save_chunks(remote, node, path)
        except (OSError, ValueError) as e:  # the server removed or shrank it meanwhile
            return [{"mode": self.spec.mode, "error": f"{type(e).__name__}: {e}"[:160]}]

    def _save_chunks(self, remote: Remote, node: str, path: str) -> list[dict[str, Any]]:
        ops = []
        for offset in _chunk_offsets(remote.size(path), self.rng, self.spec.count):
            data = remote.read(path, offset, CHUNK)
            self.saved.append(_Saved(node, path, offset, data))
            ops.append({"mode": "stale-chunk-copy", "offset": offset, "length": len(data)})
        return ops

    def _write_back(self, ctx: FaultContext) -> list[dict[str, Any]]:
        ops = []
        files_of = ctx.files()
        for s in self.saved:
            remote, root = files_of.remote(s.node), files_of.store_dir(s.node)
            op: dict[str, Any] = {"node": s.node, "file": posixpath.relpath(s.path, root)}
            try:
                size = remote.size(s.path)
                offset = _chunk_offsets(size, self.rng, 1)[0] if self.spec.misdirect else s.offset
                data = s.data[: max(0, size - offset)]  # never grow the file
                remote.write(s.path, offset, data)
                op.update(mode="stale-chunk", offset=offset, length=len(data), copied_from=s.offset)
            except OSError as e:
                op.update(mode="stale-chunk", error=f"{type(e).__name__}: {e}"[:160])
            ops.append(op)
        self.saved = []
        return ops

    def _kill(self, ctx: FaultContext) -> None:
        proc = ctx.process()
        for node in self.nodes:
            if proc.running(node):
                proc.kill(node)
                self.killed.append(node)

    def stop(self, ctx: FaultContext) -> dict[str, Any]:
        value: dict[str, Any] = {"nodes": self.nodes}
        if self.saved:
            if self.spec.while_down:
                self._kill(ctx)
            value["ops"] = self._write_back(ctx)
        if self.killed:
            proc = ctx.process()
            for node in self.killed:
                proc.start_node(node)
            time.sleep(RESTART_GRACE)
            value["restarted"] = list(self.killed)
            value["not_running"] = [n for n in self.killed if not proc.running(n)]
        self.killed = []
        return value


KIND = FaultKind(CorruptSpec, CorruptFault, NEEDS, label)
