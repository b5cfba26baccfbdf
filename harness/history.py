"""The history: every operation of a run, appended to ``history.jsonl`` as it happens.

Contract (docs/contracts.md §1): one JSON object per line with ``index``, ``time``
(integer nanoseconds since the run started, monotonic), ``type`` (``invoke``,
``ok``, ``fail``, ``info``), ``process`` (an integer client id or
``"nemesis"``), ``f``, ``value``, ``node`` and ``error``; workloads may add
fields such as ``seq``. Each line is flushed to the OS as soon as the op
happens, so a crashed harness leaves every completed op behind.

:class:`HistoryWriter` is the only writer. :func:`load_history` turns a file
(ours or hand-written) into a :class:`pandas.DataFrame` with one row per op
and one column per field, which is what checkers consume. A cut-off last line
(the writer died mid-line) is dropped with a warning; any other malformed
line is a :class:`HistoryError` naming its line number. The loader does not
guess what values mean: only the ops the caller names in ``pairs_fs`` (the
workload's ``pairs_fs``, e.g. the queue workload's final ``read``) have their
``ok`` value, a list of ``[int, int]`` pairs, turned into an int64 numpy
array (n, 2), so a million-op history loads in seconds and a few hundred MiB.
The field names and op types come from :mod:`checkers.schema`.

Where duckdb is installed, a history of :data:`COLUMNAR_FROM` bytes or more is
read by the typed-column path first (:mod:`harness.history_columns`, DuckDB's JSON
reader, in a thread of its own): all of it but the last lines (the final reads), which
the line-by-line parse adds, their huge lines parsed while DuckDB reads; that path
builds the very same columns, or hands the file back (a field not on the first piece,
a value of a type the contract refuses, a blank line) and the line-by-line parse does
it all, naming any bad line
(``NATS_CHAOS_COLUMNAR=0``: always line by line). String columns are kept as Python
strings even where pyarrow is installed (:func:`inferred`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import itertools
import mmap
import os
import stat
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import orjson
import pandas as pd

from checkers.schema import CORE_FIELDS, NEMESIS, OP_TYPES, REQUIRED_FIELDS, seed_views
from harness.errors import HistoryError

if TYPE_CHECKING:
    from harness.history_columns import ColumnPiece

__all__ = ["CORE_FIELDS", "NEMESIS", "OP_TYPES", "HistoryWriter", "LoadedHistory", "Op"]


@dataclass(frozen=True, slots=True)
class Op:
    """One immutable history record; ``extra`` holds workload-specific fields."""

    index: int
    time: int
    type: str
    process: int | str
    f: str
    value: Any = None
    node: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The op as the JSON object written to ``history.jsonl``."""
        d: dict[str, Any] = {
            "index": self.index,
            "time": self.time,
            "type": self.type,
            "process": self.process,
            "f": self.f,
            "value": self.value,
            "node": self.node,
        }
        if self.error is not None:
            d["error"] = self.error
        d.update(self.extra)
        return d


class HistoryWriter:
    """Append-only JSONL writer; assigns ``index`` and ``time`` and writes each op at once.

    Every op is one ``write(2)`` of one whole line on an ``O_APPEND`` descriptor
    (no user-space buffer), so a harness killed at any point leaves every
    completed op on disk. ``clock`` returns monotonic nanoseconds; the first
    call fixes time zero, unless ``t0`` gives it (a client process writing a
    segment of the run's history, on the run's clock). ``batched``: the ops
    appended during one turn of the running asyncio loop are written with one
    ``write(2)`` at the end of that turn (a pipelined client process records
    thousands of ops a second; one killed mid-turn loses that turn's lines,
    none of an earlier one). Safe to call from several threads (the nemesis
    runs faults in threads).
    """

    def __init__(
        self,
        path: Path,
        clock: Callable[[], int] = time.monotonic_ns,
        t0: int | None = None,
        batched: bool = False,
    ) -> None:
        self.path = path
        self._clock = clock
        self._t0 = clock() if t0 is None else t0
        self._next = 0
        self._lock = threading.Lock()
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._batched = batched
        self._pending: list[bytes] = []

    @property
    def t0(self) -> int:
        """Time zero on the writer's clock (``time.monotonic_ns`` by default)."""
        return self._t0

    def now(self) -> int:
        """Nanoseconds since the history started."""
        return self._clock() - self._t0

    def append(
        self,
        type: str,
        process: int | str,
        f: str,
        value: Any = None,
        node: str | None = None,
        error: str | None = None,
        **extra: Any,
    ) -> None:
        """Record one op now (as an :class:`Op`'s fields; building the object would cost
        half the time of writing its line, and no caller needs it)."""
        if type not in OP_TYPES:
            raise ValueError(f"op type must be one of {OP_TYPES}, not {type!r}")
        with self._lock:
            if self._fd is None:
                raise RuntimeError(f"history {self.path} is closed")
            index, t = self._next, self._clock() - self._t0
            rec = {"index": index, "time": t, "type": type, "process": process, "f": f,
                   "value": value, "node": node}  # fmt: skip
            if error is not None:
                rec["error"] = error
            if extra:
                rec.update(extra)
            line = orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE)
            if self._batched:
                if not self._pending:
                    asyncio.get_running_loop().call_soon(self.flush)
                self._pending.append(line)
            else:
                os.write(self._fd, line)
            self._next = index + 1

    def flush(self) -> None:
        """Write the lines a batched writer holds (a no-op for an unbatched one)."""
        with self._lock:
            if self._pending and self._fd is not None:
                _write_all(self._fd, b"".join(self._pending))
            self._pending.clear()

    def absorb(self, segments: Path) -> int | None:
        """Merge the client processes' history segments in ``segments`` into this history.

        The file is rewritten in time order with fresh indexes (``segments.merge``)
        and appending goes on after the merged lines. Returns the highest client
        process id in the segments (None: none); the directory is removed.
        """
        from harness import segments as merge

        with self._lock:
            if self._fd is None:
                raise RuntimeError(f"history {self.path} is closed")
            os.close(self._fd)
            self._fd = None
            try:
                count, top = merge.merge(self.path, segments)
            finally:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._next = count
        return top

    @property
    def count(self) -> int:
        """Number of ops written so far."""
        return self._next

    def close(self) -> None:
        """Write what a batched writer holds and close the file; later appends raise."""
        self.flush()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    """``write(2)`` until all of ``data`` is written (a regular file may take it in parts)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@dataclass
class LoadedHistory:
    """A parsed history: the ops table plus what the loader had to say about it."""

    ops: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    cut_off: bool = False  # the last line was cut off: the writer died mid-line
    path: Path | None = None  # the file it was loaded from
    source: str = "jsonl"  # "jsonl" (parsed), or "sidecar" (harness.sidecar, matching it)
    # typed views of ops the loader made anyway, for check_history's shared columns
    # (checkers.schema.seed_views); empty if none
    views: dict[Any, Any] = field(default_factory=dict)


# How the loader stays fast on million-op histories: short lines are parsed a
# few MiB at a time with ONE orjson call (the lines joined into a JSON array),
# each chunk's dicts are turned into compact column pieces at C speed
# (itemgetter, factorize, numpy) and dropped; a final read's huge list of
# [seq, value] pairs is parsed straight into an int64 array. Any chunk that
# does not parse cleanly is re-parsed line by line, which yields the exact
# line-numbered error.
_CHUNK_BYTES = 4 << 20
_LONG_LINE = 1 << 20  # a line this long is parsed on its own (final reads)
_PAIRS_SENTINEL = "\x00nats-chaos-pairs\x00"
_STR_COLUMNS = ("type", "f", "node", "error")
_BRACKETS_TO_SPACES = bytes.maketrans(b"[]", b"  ")
_INT64 = np.iinfo(np.int64)


def _short(v: Any) -> str:
    """``repr(v)``, cut to 40 characters for an error line."""
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _pairs_from_text(seg: bytes) -> np.ndarray | None:
    """``b"[[1,5],[2,7]]"`` (non-negative ints, no spaces) -> int64 array (n, 2); else None."""
    skeleton = seg.translate(None, b"0123456789")
    n = skeleton.count(b"[") - 1
    if n < 1 or skeleton != b"[" + b"[,]," * (n - 1) + b"[,]]":
        return None
    if _digit_run(np.frombuffer(seg, dtype=np.uint8), 19):  # might not fit in int64: orjson says
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy only warns when text stops parsing early
        try:
            flat = np.fromstring(seg.translate(_BRACKETS_TO_SPACES), dtype=np.int64, sep=",")
        except (DeprecationWarning, ValueError):
            return None
    return flat.reshape(n, 2) if len(flat) == 2 * n else None


def _digit_run(chars: np.ndarray, length: int) -> bool:
    """Whether ``chars`` holds ``length`` decimal digits in a row (bool masks, halved in
    number of steps by doubling the run each covers, instead of every digit's position)."""
    run, covered = (chars - ord("0")) < 10, 1  # uint8: what is below "0" wraps above 9
    while covered < length and run.any():
        step = min(covered, length - covered)
        run = run[:-step] & run[step:]
        covered += step
    return bool(run.any())


def _pairs_from_list(value: Any) -> np.ndarray | None:
    """A non-empty list of ``[int, int]`` pairs -> int64 array (n, 2); else None."""
    if type(value) is not list or not value:
        return None
    if set(map(type, value)) != {list} or set(map(len, value)) != {2}:
        return None
    flat = list(itertools.chain.from_iterable(value))
    if set(map(type, flat)) != {int}:
        return None
    try:
        return np.array(flat, dtype=np.int64).reshape(-1, 2)
    except OverflowError:
        return None


def _parse_long_line(line: bytes, pairs_fs: frozenset[str]) -> dict[str, Any] | None:
    """Parse one huge ``ok`` line of an op in ``pairs_fs``, its pairs straight to numpy.

    None when the line is not that shape (it is then parsed as plain JSON).
    """
    key = b'"value":'
    at = line.find(key + b"[[")
    if at < 0 or line.count(key) != 1:
        return None
    end = line.find(b"]]", at)
    pairs = _pairs_from_text(line[at + len(key) : end + 2]) if end > 0 else None
    if pairs is None:
        return None
    sentinel = orjson.dumps(_PAIRS_SENTINEL)
    try:
        rec = orjson.loads(line[: at + len(key)] + sentinel + line[end + 2 :])
    except orjson.JSONDecodeError:
        return None
    if type(rec) is not dict or rec.get("value") != _PAIRS_SENTINEL:
        return None
    if rec.get("type") != "ok" or rec.get("f") not in pairs_fs:
        return None
    rec["value"] = pairs
    return rec


def _parse_slow(path: Path, piece: bytes, first_line: int) -> tuple[list[Any], list[int]]:
    """Line-by-line parse of a piece that failed the fast path: records and their line numbers."""
    recs: list[Any] = []
    lines: list[int] = []
    for i, raw in enumerate(piece.split(b"\n")):
        if not raw or raw.isspace():
            continue
        try:
            rec = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise HistoryError(f"{path}:{first_line + i}: not valid JSON ({e})") from None
        if not isinstance(rec, dict):
            kind = type(rec).__name__
            raise HistoryError(f"{path}:{first_line + i}: expected a JSON object, got {kind}")
        recs.append(rec)
        lines.append(first_line + i)
    return recs, lines


def _is_long(piece: bytes, n_lines: int, pairs_fs: frozenset[str]) -> bool:
    """A piece that is one huge line an op in ``pairs_fs`` may hold (a final read)."""
    return n_lines == 1 and len(piece) >= _LONG_LINE and bool(pairs_fs)


def _parse_piece(
    path: Path, piece: bytes, first_line: int, n_lines: int, pairs_fs: frozenset[str]
) -> tuple[list[Any], np.ndarray]:
    """Records of a piece of ``n_lines`` complete lines, and the 1-based line number of each."""
    if _is_long(piece, n_lines, pairs_fs):
        rec = _parse_long_line(piece, pairs_fs)
        if rec is not None:
            return [rec], np.array([first_line], dtype=np.int64)
    try:
        recs = orjson.loads(b"[" + piece.replace(b"\n", b",") + b"]")
        if len(recs) == n_lines and set(map(type, recs)) == {dict}:
            return recs, np.arange(first_line, first_line + n_lines, dtype=np.int64)
    except orjson.JSONDecodeError:
        pass
    recs, lines = _parse_slow(path, piece, first_line)
    return recs, np.array(lines, dtype=np.int64)


def _pieces(
    buf: Any, limit: int, pos: int = 0, line_no: int = 1
) -> Iterator[tuple[bytes, int, int]]:
    """Split ``buf[pos:limit]`` into pieces of whole lines: (bytes, first line number, line count).

    Short lines are grouped into pieces of about ``_CHUNK_BYTES``; a line of
    ``_LONG_LINE`` bytes or more is a piece of its own. ``pos`` is 0 or a block
    start of :func:`_block_starts` (``line_no``: the line there).
    """
    limit = _content_end(buf, limit)
    while pos < limit:
        end = _block_end(buf, pos, limit)
        block = buf[pos:end]
        if len(block) <= _CHUNK_BYTES + _LONG_LINE:
            n_lines = block.count(b"\n") + 1
            yield block, line_no, n_lines
            line_no += n_lines
        else:
            for piece in _split_long(block, line_no):
                yield piece
                line_no += piece[2]
        pos = end + 1


def _content_end(buf: Any, limit: int) -> int:
    """``limit`` less the final newline (it ends the last line; it does not start another)."""
    return limit - 1 if limit and buf[limit - 1 : limit] == b"\n" else limit


def _block_end(buf: Any, pos: int, limit: int) -> int:
    """Where the block of :func:`_pieces` starting at ``pos`` ends (its closing newline)."""
    end = buf.find(b"\n", min(pos + _CHUNK_BYTES, limit), limit)
    return limit if end < 0 else end


def _block_starts(buf: Any, limit: int) -> Iterator[int]:
    """The offsets at which :func:`_pieces` starts a block, in order (the map is not read)."""
    limit, pos = _content_end(buf, limit), 0
    while pos < limit:
        yield pos
        pos = _block_end(buf, pos, limit) + 1


def _split_long(block: bytes, line_no: int) -> Iterator[tuple[bytes, int, int]]:
    """Within a block holding huge lines: runs of short lines, and each huge line alone."""
    run: list[bytes] = []
    for line in block.split(b"\n"):
        if len(line) < _LONG_LINE:
            run.append(line)
            continue
        if run:
            yield b"\n".join(run), line_no, len(run)
            line_no += len(run)
            run = []
        yield line, line_no, 1
        line_no += 1
    if run:
        yield b"\n".join(run), line_no, len(run)


def _cut_off_tail(path: Path, buf: Any, size: int) -> tuple[int, str | None]:
    """Where parsing stops: before a cut-off last line (writer died mid-line), and why."""
    if size == 0 or buf[size - 1 : size] == b"\n":
        return size, None
    end = size
    while end > 0 and buf[end - 1 : end].isspace():
        end -= 1
    start = buf.rfind(b"\n", 0, end) + 1
    try:
        orjson.loads(buf[start:end])
    except orjson.JSONDecodeError:
        return start, "cut"
    return size, None


def _object_array(items: list[Any]) -> np.ndarray:
    """A 1-d object array of ``items`` (never a 2-d array of nested lists)."""
    return np.fromiter(items, dtype=object, count=len(items))


def _column(recs: list[dict[str, Any]], key: str) -> list[Any]:
    try:
        return list(map(itemgetter(key), recs))
    except KeyError:
        return [r.get(key) for r in recs]


class _Factor:
    """A low-cardinality column (type, f, node, error) kept as integer codes.

    Every row then shares one string object per distinct value, instead of
    millions of equal strings. Unhashable values switch the piece to objects.
    """

    def __init__(self) -> None:
        self.uniques: dict[Any, int] = {}
        self.parts: list[tuple[bool, np.ndarray]] = []  # (is_codes, array)

    def add(self, items: list[Any]) -> tuple[np.ndarray, list[Any]] | None:
        """Append a piece; return (codes, the piece's distinct values) or None if unhashable."""
        try:
            codes, uniq = pd.factorize(_object_array(items), use_na_sentinel=True)
        except TypeError:
            self.parts.append((False, _object_array(items)))
            return None
        self.add_codes(codes, list(uniq))
        return codes, list(uniq)

    def add_codes(self, codes: np.ndarray, uniq: list[Any]) -> None:
        """Append a piece given as codes into its distinct values ``uniq`` (-1: None)."""
        remap = np.array([self.uniques.setdefault(u, len(self.uniques)) for u in uniq] + [-1])
        self.parts.append((True, remap[codes].astype(np.int32)))

    def codes(self) -> tuple[np.ndarray, list[Any]] | None:
        """All rows as (codes, distinct values) when every piece was coded (-1: None)."""
        if not self.parts or not all(c for c, _ in self.parts):
            return None
        return np.concatenate([a for _, a in self.parts]), list(self.uniques)

    def build(self) -> np.ndarray:
        table = _object_array([*self.uniques, None])  # code -1 picks the trailing None
        return np.concatenate(
            [table[a] if is_codes else a for is_codes, a in self.parts] or [table[:0]]
        )

    def column(self) -> pd.Series:
        """The column as :func:`inferred` makes it of :meth:`build`. When every value is a
        string (or None), pandas' string array is made once over the distinct values and
        indexed by the codes, instead of inferring and checking millions of objects."""
        if not self.uniques or not self.parts or not all(c for c, _ in self.parts):
            return inferred(self.build())
        if not all(type(u) is str for u in self.uniques):
            return inferred(self.build())
        table = inferred(_object_array([*self.uniques, None])).array  # -1: the missing value
        codes = np.concatenate([a for _, a in self.parts])
        return pd.Series(table.take(codes), copy=False)


class _Columns:
    """Accumulates parsed pieces as compact column parts; :meth:`frame` builds the table."""

    def __init__(self, path: Path, pairs_fs: frozenset[str]) -> None:
        self.path = path
        self.pairs_fs = pairs_fs
        self.n = 0
        self.factors = {k: _Factor() for k in _STR_COLUMNS}
        self.ints: dict[str, list[np.ndarray]] = {"index": [], "time": [], "_line": []}
        self.process: list[np.ndarray] = []
        self.value: list[np.ndarray] = []
        self.extras: dict[str, list[Any]] = {}  # object pieces (the first may be IntsOrNull)
        # per object column, (int64 values, is a 64-bit int) pieces: kept by the typed-column
        # path, which has them for free (None: not kept)
        self.int_views: dict[str, list[tuple[np.ndarray, np.ndarray]]] | None = None

    def add(self, recs: list[dict[str, Any]], lines: np.ndarray) -> None:
        """Append one piece's records (and their line numbers), validating them."""
        n = len(recs)
        if not n:
            return
        keys = set().union(*recs)
        cols = {k: self._core(recs, lines, k, keys) for k in CORE_FIELDS}
        for k in ("index", "time"):
            self.ints[k].append(self._ints(cols[k], lines, k))
        self.ints["_line"].append(lines)
        seen = {k: self.factors[k].add(cols[k]) for k in _STR_COLUMNS}
        self._check_types(recs, lines, seen["type"])
        for k in ("f", "node", "error"):
            self._check_strings(cols[k], lines, k, seen[k])
        self.process.append(self._process(cols["process"], lines))
        self.value.append(self._values(cols["value"], lines, seen))
        for k in sorted(keys - set(CORE_FIELDS) - {"_line"}):
            part = self.extras.setdefault(k, [_object_array([None] * self.n)] if self.n else [])
            part.append(_object_array(_column(recs, k)))
        for k, part in self.extras.items():
            if k not in keys:
                part.append(_object_array([None] * n))
        if self.int_views is not None:
            for k in ("process", "value"):
                self.int_views[k].append(
                    _int_view(self.process[-1] if k == "process" else self.value[-1])
                )
        self.n += n

    def add_piece(self, piece: ColumnPiece) -> None:
        """Append the typed-column path's first lines (validated there); nothing before."""
        assert not self.n
        for k in ("index", "time"):
            self.ints[k].append(piece.ints[k])
        self.ints["_line"].append(np.arange(1, piece.n + 1, dtype=np.int64))
        for k, (codes, uniq) in piece.coded.items():
            self.factors[k].add_codes(codes, uniq)
        self.process.append(piece.process)
        self.value.append(piece.value)
        for k in sorted(piece.extras):
            self.extras[k] = [piece.extras[k]]
        self.int_views = {k: [v] for k, v in piece.int_views.items()}
        self.n = piece.n

    def _core(self, recs: list[dict[str, Any]], lines: np.ndarray, k: str, keys: set) -> list:
        """One core field of every record; a missing required field is a HistoryError."""
        if k in keys:
            try:
                return list(map(itemgetter(k), recs))
            except KeyError:
                pass
        if k not in REQUIRED_FIELDS:
            return [r.get(k) for r in recs] if k in keys else [None] * len(recs)
        for rec, line in zip(recs, lines.tolist(), strict=True):
            missing = [f for f in REQUIRED_FIELDS if f not in rec]
            if missing:
                raise HistoryError(f"{self.path}:{line}: missing field(s) {', '.join(missing)}")
        raise AssertionError("unreachable: a required field was missing")

    def _check_types(self, recs: list[Any], lines: np.ndarray, seen: Any) -> None:
        known = seen is not None and seen[0].min() >= 0
        if known and all(type(u) is str and u in OP_TYPES for u in seen[1]):
            return
        for rec, line in zip(recs, lines.tolist(), strict=True):
            t = rec["type"]
            if not (type(t) is str and t in OP_TYPES):
                raise HistoryError(
                    f"{self.path}:{line}: type {t!r} is not one of {', '.join(OP_TYPES)}"
                )

    def _check_strings(self, items: list[Any], lines: np.ndarray, key: str, seen: Any) -> None:
        """``f`` is a string; ``node`` and ``error`` a string or null: else a HistoryError."""
        strings = seen is not None and all(type(u) is str for u in seen[1])
        if strings and (key != "f" or seen[0].min(initial=0) >= 0):  # f may not be null
            return
        for v, line in zip(items, lines.tolist(), strict=True):
            if type(v) is not str and (key == "f" or v is not None):
                kind = "a string" if key == "f" else "a string or null"
                raise HistoryError(f"{self.path}:{line}: {key} {_short(v)} is not {kind}")

    def _ints(self, items: list[Any], lines: np.ndarray, key: str) -> np.ndarray:
        """``index``/``time`` as int64 (None where a hand-written history omits them).

        Anything else — a string, a float, a bool, an integer beyond 64 bits —
        is a HistoryError naming the line.
        """
        kinds = set(map(type, items))
        if kinds <= {int}:
            try:
                return np.array(items, dtype=np.int64)
            except OverflowError:
                pass
        for v, line in zip(items, lines.tolist(), strict=True):
            if v is not None and (type(v) is not int or not _INT64.min <= v <= _INT64.max):
                raise HistoryError(f"{self.path}:{line}: {key} {_short(v)} is not a 64-bit integer")
        return _object_array(items)

    def _process(self, procs: list[Any], lines: np.ndarray) -> np.ndarray:
        kinds = set(map(type, procs))
        if kinds == {int}:
            try:
                return np.array(procs, dtype=np.int64)
            except OverflowError:
                pass
        for p, line in zip(procs, lines.tolist(), strict=True):
            if type(p) is not int and p != NEMESIS:
                raise HistoryError(
                    f'{self.path}:{line}: process {_short(p)} is neither an integer nor "{NEMESIS}"'
                )
            if type(p) is int and not _INT64.min <= p <= _INT64.max:
                raise HistoryError(f"{self.path}:{line}: process {p} is not a 64-bit integer")
        return _object_array(procs)

    def _values(self, values: list[Any], lines: np.ndarray, seen: dict[str, Any]) -> np.ndarray:
        """The value column piece; an ``ok`` op in ``pairs_fs`` with a list of pairs -> numpy.

        Such a value must be null, ``[]`` or ``[int, int]`` pairs within 64 bits
        (the pairs contract): anything else is a HistoryError naming the line.
        """
        arr = _object_array(values)
        types, fs = seen["type"], seen["f"]
        if types is None or fs is None or "ok" not in types[1]:
            return arr
        codes = [i for i, f in enumerate(fs[1]) if f in self.pairs_fs]
        if not codes:
            return arr
        wanted = (types[0] == types[1].index("ok")) & np.isin(fs[0], codes)
        for i in np.flatnonzero(wanted).tolist():
            value = arr[i]
            if isinstance(value, np.ndarray):  # a huge line's pairs, parsed straight to numpy
                continue
            pairs = _pairs_from_list(value)
            if pairs is not None:
                arr[i] = pairs
            elif value is not None and value != []:
                f = fs[1][fs[0][i]]
                raise HistoryError(
                    f"{self.path}:{int(lines[i])}: the value of an ok {f} must be a list of "
                    f"[int, int] pairs, not {_short(value)}"
                )
        return arr

    def frame(self) -> pd.DataFrame:
        """The ops table: core columns, then ``_line``, then extra fields in first-seen order."""
        cols: dict[str, Any] = {}
        for k in ("index", "time"):
            cols[k] = self._int_column(k)
        for k in CORE_FIELDS[2:]:
            if k == "process":
                cols[k] = _concat_mixed(self.process)
            elif k == "value":
                cols[k] = np.concatenate(self.value) if self.value else _object_array([])
            else:
                cols[k] = self.factors[k].column()
        cols["_line"] = np.concatenate(self.ints["_line"])
        for k, parts in self.extras.items():
            cols[k] = _extra_column(parts)
        return pd.DataFrame(cols, copy=False)

    def views(self, ops: pd.DataFrame) -> dict[Any, Any]:
        """Seeds for the checkers' shared columns (checkers.schema.seed_views) of ``ops``,
        the frame :meth:`frame` made."""
        codes = {k: c for k in ("type", "f") if (c := self.factors[k].codes()) is not None}
        ints = {}
        if self.int_views is not None and len(ops):
            for k, parts in self.int_views.items():
                ints[k] = (
                    np.concatenate([v for v, _ in parts]),
                    np.concatenate([o for _, o in parts]),
                )
        return seed_views(ops, codes, ints)

    def _int_column(self, k: str) -> np.ndarray:
        """``index``/``time``; when a hand-written history omits them: file order / zero."""
        col = _concat_mixed(self.ints[k])
        if col.dtype == np.int64:
            return col
        if pd.isna(col).any():
            return np.arange(self.n, dtype=np.int64) if k == "index" else np.zeros(self.n, np.int64)
        return col.astype(np.int64)


# Strings stay Python objects even where pyarrow is installed: pandas would otherwise
# store them in pyarrow, and the checkers' element-wise work on them then takes 2.5-3x
# as long (5.3-5.8 s instead of 2 s for a million-op check, measured).
_PY_STRINGS = pd.StringDtype("python", na_value=np.nan)


def inferred(values: np.ndarray) -> pd.Series:
    """An object array as a column of the dtype pandas infers, strings kept in Python."""
    col = pd.Series(values, copy=False).infer_objects()
    if isinstance(col.dtype, pd.StringDtype) and col.dtype.storage != "python":
        col = col.astype(_PY_STRINGS)
    return col


def _int_view(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int64 values, True where the value is a 64-bit int) of an int64 or object piece."""
    if col.dtype == np.int64:
        return col, np.ones(len(col), dtype=bool)
    ok = np.fromiter((type(v) is int for v in col), dtype=bool, count=len(col))
    ints = np.zeros(len(col), dtype=np.int64)
    for i in np.flatnonzero(ok).tolist():
        if _INT64.min <= col[i] <= _INT64.max:
            ints[i] = col[i]
        else:
            ok[i] = False
    return ints, ok


class IntsOrNull(NamedTuple):
    """An extra field's piece whose every value is a 64-bit int or null (the typed-column
    path's, kept as numbers): ``ints`` (0 where null) and ``null``."""

    ints: np.ndarray
    null: np.ndarray

    def objects(self) -> np.ndarray:
        out = self.ints.astype(object)
        out[self.null] = None
        return out


def _extra_column(parts: list[Any]) -> Any:
    """An extra field's column from its pieces: what :func:`inferred` makes of their values.

    When the first piece is an :class:`IntsOrNull` and every other value is an int within 64
    bits or None, the column is built from the numbers: int64 without a null, float64 (NaN
    for null) with one — as pandas infers ints and None — instead of inferring millions of
    objects; otherwise from the objects."""
    head, rest = parts[0], parts[1:]
    if not isinstance(head, IntsOrNull):
        return inferred(np.concatenate(parts))
    tail = np.concatenate(rest) if rest else _object_array([])
    if set(map(type, tail)) <= {int, type(None)}:
        null = np.fromiter((v is None for v in tail), dtype=bool, count=len(tail))
        try:
            ints = np.array([0 if v is None else v for v in tail], dtype=np.int64)
        except OverflowError:
            ints = None
        if ints is not None:
            null, ints = np.concatenate([head.null, null]), np.concatenate([head.ints, ints])
            if not null.any():
                return ints
            if not null.all():
                values = ints.astype(np.float64)
                values[null] = np.nan
                return values
    return inferred(np.concatenate([head.objects(), tail]))


def _concat_mixed(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate int64 and object pieces: int64 if every piece is, else objects."""
    if all(p.dtype == np.int64 for p in parts):
        return np.concatenate(parts)
    return np.concatenate([p.astype(object) for p in parts])


# Where duckdb is installed (`pip install nats-chaos[columnar]`), a history of this size or
# more is read by the typed-column path first (harness.history_columns, DuckDB's JSON reader):
# all but its last lines (the final reads), which the line-by-line parse below adds, as it
# parses every file that path does not vouch for. From about this size on it takes less memory
# as well as less CPU than line by line (DuckDB itself costs ~45 MiB; benchmarks/README.md,
# "Cold load"); below it, line by line. NATS_CHAOS_COLUMNAR=0: always line by line.
COLUMNAR_FROM = 1 << 62 if os.environ.get("NATS_CHAOS_COLUMNAR") == "0" else 128 << 20
_TAIL_LINES = 64  # the final reads and the recovery record, with fields of their own


def _tail_start(buf: Any, limit: int) -> int:
    """Where the typed-column path stops: the start of the line-by-line block that holds
    the first of the last :data:`_TAIL_LINES` lines (so the pieces after it are the ones the
    line-by-line parse of the whole file would make)."""
    start = limit - 1
    for _ in range(_TAIL_LINES):
        start = buf.rfind(b"\n", 0, start)
        if start < 0:
            return 0
    split = 0
    for pos in _block_starts(buf, limit):
        if pos > start + 1:
            break
        split = pos
    return split


def _head_extras(
    path: Path, buf: Any, limit: int, pairs_fs: frozenset[str]
) -> dict[str, bool] | None:
    """The fields beyond the core ones on the file's first piece, sorted, each with whether
    every value the piece shows of it is an integer (not a bool) or null (None: it is bad)."""
    try:
        head, first, n_lines = next(_pieces(buf, limit))
        recs = _parse_piece(path, head, first, n_lines, pairs_fs)[0]
    except HistoryError:
        return None
    names = sorted(set().union(*recs) - set(CORE_FIELDS) - {"_line"})
    return {k: {type(r.get(k)) for r in recs} <= {int, type(None)} for k in names}


def _load_columnar(path: Path, buf: Any, limit: int, pairs_fs: frozenset[str]) -> Any:
    """The ops columns by the typed-column path and the line-by-line parse of the file's
    tail (:class:`_Columns`), or None (then: line by line)."""
    if limit < COLUMNAR_FROM or importlib.util.find_spec("duckdb") is None:
        return None
    split = _tail_start(buf, limit)
    extras = _head_extras(path, buf, limit, pairs_fs) if split else None
    if extras is None:
        return None
    from harness.history_columns import open_prefix  # DuckDB: only for histories this big

    load = open_prefix(path, split, extras, pairs_fs)
    if load is None:
        return None
    prefix = Beside(load.result)
    try:
        try:  # the final reads' huge lines are parsed while DuckDB reads the prefix, numbered
            # from 1 (the prefix's line count is not known yet); the tail's other lines,
            # whose records would be held through DuckDB's peak, after it
            tail = [(b"", first, n, _parse_piece(path, chunk, first, n, pairs_fs))
                    if _is_long(chunk, n, pairs_fs) else (chunk, first, n, None)
                    for chunk, first, n in _pieces(buf, limit, split, 1)]  # fmt: skip
        except HistoryError:
            tail = None  # parsed again below, to name the right line
        _forget(buf, split, limit)  # the tail's pages: read, and DuckDB's peak is to come
        piece = prefix.result()
    except BaseException:  # Ctrl-C, a second signal: no thread may be left inside DuckDB
        prefix.stop(load.interrupt)  # (a process that exits with one aborts)
        raise
    if piece is None:
        return None
    columns = _Columns(path, pairs_fs)
    columns.add_piece(piece)
    del piece
    before = columns.n
    if tail is None:
        tail = [(chunk, first, n, None) for chunk, first, n in _pieces(buf, limit, split, 1)]
    for chunk, first, n, parsed in tail:  # validated here, by the lines they are in the file
        if parsed is None:
            columns.add(*_parse_piece(path, chunk, first + before, n, pairs_fs))
        else:
            columns.add(parsed[0], parsed[1] + before)
    return columns


def _forget(buf: Any, start: int, end: int) -> None:
    """Let the kernel take back the pages of ``buf[start:end]`` this process has read (a
    file's map: they stay cached, and are read again if touched); they no longer count in
    its RSS."""
    start -= start % mmap.PAGESIZE
    if isinstance(buf, mmap.mmap) and end > start and hasattr(mmap, "MADV_DONTNEED"):
        with contextlib.suppress(OSError, ValueError):
            buf.madvise(mmap.MADV_DONTNEED, start, end - start)


class Beside:
    """Runs ``fn`` in a thread of its own (DuckDB's read, a sidecar's hash: work that
    releases the GIL) while the caller goes on; :meth:`result` waits for it and returns, or
    raises, what it did."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.out: Any = None
        self.error: BaseException | None = None
        self.fn = fn
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.out = self.fn()
        except BaseException as e:  # handed to the caller by result()
            self.error = e

    def result(self) -> Any:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.out

    def stop(self, interrupt: Callable[[], None]) -> None:
        """Interrupt the thread's work and wait until it has ended, whatever else arrives."""
        while self.thread.is_alive():
            interrupt()
            with contextlib.suppress(BaseException):  # the caller re-raises the first one
                self.thread.join(0.05)


def load_history(path: Path | str, pairs_fs: frozenset[str] = frozenset()) -> LoadedHistory:
    """Parse ``history.jsonl`` into a DataFrame with one row per op.

    Columns: every core field (absent ones filled with None; ``index`` and
    ``time`` filled from file order when a hand-written history omits them),
    every extra field seen, and ``_line`` (1-based line number in the file).
    ``index``, ``time`` and ``_line`` are int64; ``process`` is int64, or
    object when nemesis ops are present. The ``value`` of an ``ok`` op whose
    ``f`` is in ``pairs_fs`` and that is a non-empty list of ``[int, int]``
    pairs (the queue workload's final ``read``: ``[stream_seq, value]``)
    arrives as an int64 numpy array of shape ``(n, 2)``; every other value is
    the parsed JSON, whatever it looks like. ``cut_off`` of the result says
    whether the last line was cut off mid-line.
    Raises :class:`HistoryError` for an unreadable or malformed file.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):  # /dev/zero has size 0: it would read as empty
                raise HistoryError(f"{path}: not a regular file (a device?), not a history")
            size = st.st_size
            buf: Any = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    except OSError as e:
        raise HistoryError(f"{path}: cannot read history ({e.strerror})") from None
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of small containers: the cyclic GC only slows parsing here
    try:
        limit, cut = _cut_off_tail(path, buf, size)
        fast = _load_columnar(path, buf, limit, frozenset(pairs_fs)) if not cut else None
        if fast is not None:
            ops = fast.frame()
            return LoadedHistory(ops=ops, path=path, views=fast.views(ops))
        columns = _Columns(path, frozenset(pairs_fs))
        line_no = 1
        for piece, first_line, n_lines in _pieces(buf, limit):
            columns.add(*_parse_piece(path, piece, first_line, n_lines, pairs_fs))
            line_no = first_line + n_lines
        ops = (
            columns.frame() if columns.n else pd.DataFrame({k: [] for k in (*CORE_FIELDS, "_line")})
        )
        views = columns.views(ops) if columns.n else {}
    finally:
        if isinstance(buf, mmap.mmap):
            buf.close()
        if gc_was_enabled:
            gc.enable()
    notes: list[str] = []
    if cut:
        notes.append(f"{path}:{line_no}: last line is cut off (writer stopped mid-line); ignored")
    return LoadedHistory(ops=ops, warnings=notes, cut_off=bool(cut), path=path, views=views)
