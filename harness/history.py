"""The history: every operation of a run, appended to ``history.jsonl`` as it happens.

Contract (DESIGN §3.1): one JSON object per line with ``index``, ``time``
(integer nanoseconds since the run started, monotonic), ``type`` (``invoke``,
``ok``, ``fail``, ``info``), ``process`` (an integer client id or
``"nemesis"``), ``f``, ``value``, ``node`` and ``error``; workloads may add
fields such as ``seq``. Each line is flushed to the OS as soon as the op
happens, so a crashed harness leaves every completed op behind.

:class:`HistoryWriter` is the only writer. :func:`load_history` turns a file
(ours or hand-written) into a :class:`pandas.DataFrame` with one row per op
and one column per field, which is what checkers consume. A cut-off last line
(the writer died mid-line) is dropped with a warning; any other malformed
line is a :class:`HistoryError` naming its line number.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import pandas as pd

from harness.errors import HistoryError

OP_TYPES = ("invoke", "ok", "fail", "info")
NEMESIS = "nemesis"
CORE_FIELDS = ("index", "time", "type", "process", "f", "value", "node", "error")
REQUIRED_FIELDS = ("type", "process", "f")


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
    """Append-only JSONL writer; assigns ``index`` and ``time`` and flushes per op.

    ``clock`` returns monotonic nanoseconds; the first call fixes time zero.
    Safe to call from several threads (the nemesis may run faults in threads).
    """

    def __init__(self, path: Path, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.path = path
        self._clock = clock
        self._t0 = clock()
        self._next = 0
        self._lock = threading.Lock()
        self._fh: IO[bytes] | None = open(path, "ab")  # noqa: SIM115 - closed in close()

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
    ) -> Op:
        """Record one op now and return it."""
        if type not in OP_TYPES:
            raise ValueError(f"op type must be one of {OP_TYPES}, not {type!r}")
        with self._lock:
            op = Op(self._next, self.now(), type, process, f, value, node, error, extra)
            if self._fh is None:
                raise RuntimeError(f"history {self.path} is closed")
            self._fh.write(orjson.dumps(op.to_dict()) + b"\n")
            self._fh.flush()
            self._next += 1
        return op

    @property
    def count(self) -> int:
        """Number of ops written so far."""
        return self._next

    def close(self) -> None:
        """Close the file; later appends raise."""
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class LoadedHistory:
    """A parsed history: the ops table plus what the loader had to say about it."""

    ops: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def _parse_lines(path: Path, data: bytes) -> tuple[dict[str, list[Any]], list[str]]:
    """Parse JSONL bytes into column lists (one list per field, one entry per op)."""
    lines = data.split(b"\n")
    warnings: list[str] = []
    last = len(lines) - 1
    while last >= 0 and not lines[last].strip():
        last -= 1
    cols: dict[str, list[Any]] = {k: [] for k in (*CORE_FIELDS, "_line")}
    core = [(k, cols[k].append) for k in CORE_FIELDS]
    line_append = cols["_line"].append
    extras: dict[str, dict[int, Any]] = {}
    loads = orjson.loads
    n = 0
    for i in range(last + 1):
        raw = lines[i]
        if not raw or raw.isspace():
            continue
        try:
            rec = loads(raw)
        except orjson.JSONDecodeError as e:
            if i == last and not data.endswith(b"\n"):
                warnings.append(
                    f"{path}:{i + 1}: last line is cut off (writer stopped mid-line); ignored"
                )
                continue
            raise HistoryError(f"{path}:{i + 1}: not valid JSON ({e})") from None
        if not isinstance(rec, dict):
            raise HistoryError(f"{path}:{i + 1}: expected a JSON object, got {type(rec).__name__}")
        if len(rec) > 8 or not all(k in rec for k in REQUIRED_FIELDS):
            missing = [k for k in REQUIRED_FIELDS if k not in rec]
            if missing:
                raise HistoryError(f"{path}:{i + 1}: missing field(s) {', '.join(missing)}")
        pop = rec.pop
        for k, append in core:
            append(pop(k, None))
        if rec:
            for k, v in rec.items():
                extras.setdefault(k, {})[n] = v
        line_append(i + 1)
        n += 1
    for k, sparse in extras.items():
        if k in cols:
            continue
        cols[k] = [sparse.get(j) for j in range(n)] if len(sparse) < n else list(sparse.values())
    return cols, warnings


def _validate(path: Path, ops: pd.DataFrame) -> None:
    bad = ~ops["type"].isin(OP_TYPES)
    if bad.any():
        row = ops[bad].iloc[0]
        raise HistoryError(
            f"{path}:{row['_line']}: type {row['type']!r} is not one of {', '.join(OP_TYPES)}"
        )
    procs = ops["process"]
    if pd.api.types.is_integer_dtype(procs.dtype):
        return
    kinds = procs.map(type)
    bad = ~((kinds == int) | (procs == NEMESIS))  # noqa: E721 - bool is not a process id
    if bad.any():
        row = ops[bad].iloc[0]
        raise HistoryError(
            f"{path}:{row['_line']}: process {row['process']!r} is neither an integer "
            f'nor "{NEMESIS}"'
        )


def load_history(path: Path | str) -> LoadedHistory:
    """Parse ``history.jsonl`` into a DataFrame with one row per op.

    Columns: every core field (absent ones filled with None; ``index`` and
    ``time`` filled from file order when a hand-written history omits them),
    every extra field seen, and ``_line`` (1-based line number in the file).
    Raises :class:`HistoryError` for an unreadable or malformed file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise HistoryError(f"{path}: cannot read history ({e.strerror})") from None
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of small containers: the cyclic GC only slows parsing here
    try:
        cols, warnings = _parse_lines(path, data)
        ops = pd.DataFrame(cols)
    finally:
        if gc_was_enabled:
            gc.enable()
    if len(ops):
        if ops["index"].isna().any():
            ops["index"] = range(len(ops))
        if ops["time"].isna().any():
            ops["time"] = 0
        ops["index"] = ops["index"].astype("int64")
        ops["time"] = ops["time"].astype("int64")
        _validate(path, ops)
    return LoadedHistory(ops=ops, warnings=warnings)
