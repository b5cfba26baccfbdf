"""The typed-column fast path of the history loader (DuckDB's JSON reader).

In: a ``history.jsonl`` (docs/contracts.md §1), the length of the prefix to
read (whole lines, ending at one of the line-by-line loader's piece
boundaries: the final reads after it are left to that loader), the fields
the loader found on the file's first piece, and the workload's ``pairs_fs``.
Out: a :class:`ColumnPiece` holding, column by column, exactly what the
line-by-line loader's pieces would hold for those lines, or None when the
prefix holds anything this path does not vouch for — a field not on the
first piece, a value of a type a core field may not have, a blank line, a
number that does not fit, a line DuckDB refuses — and the line-by-line
loader then loads the file and names the offending line.

How it stays fast: the prefix is fed to DuckDB through a pipe by a thread
that counts, in the same pass, the bytes the proof below needs; DuckDB parses
every row in C, one column per field, each value as its JSON text. How it
stays exact: integers are taken only where that text is exactly the
decimal rendering of a 64-bit integer (DuckDB's own cast would round
``1.5`` and read ``1e5``, `` 1`` or ``0x10``); ``type``, ``f``, ``node`` and
``error`` travel as integer codes of their distinct texts, each decoded once
with orjson; every other value (a nemesis op's dict, a read's pairs) is
decoded from its own text. That no field went unread is proven by counting:
a line of k keys holds k - 1 commas outside its values, so the prefix's
commas must equal the keys the columns hold (non-null values, plus the
``"key": null`` pairs the counting thread found, each named) less one per
row, plus the commas inside the values' texts. A key outside the columns
adds a comma (or a ``null`` of a name no column has) and hands the file back.
The texts are DuckDB's renderings, so a string written with an escaped comma
(``\\u002c``, which orjson never writes) would count one comma more than the
file: a prefix holding ``\\u002`` is handed back.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson

from checkers.schema import CORE_FIELDS, NEMESIS, OP_TYPES
from harness.history import IntsOrNull, _pairs_from_list, _pairs_from_text

CODED = ("type", "f", "node", "error")  # low-cardinality: enum codes, each text decoded once
THREADS = 2
MAX_LINE = 4 << 20  # DuckDB sizes its read buffers by this (a longer line still reads)
_STEP = 8 << 20  # bytes the feeding thread reads, counts and writes at a time
_PIPE_BYTES = 1 << 20  # Linux's default cap for an unprivileged pipe
_SPACE = frozenset(b" \t\r\n")


class _Unsure(Exception):
    """The prefix holds something the fast path does not vouch for: load it line by line."""


@dataclass
class ColumnPiece:
    """The first ``n`` lines as the line-by-line loader's column pieces would hold them."""

    n: int
    ints: dict[str, np.ndarray]  # index, time: int64
    coded: dict[str, tuple[np.ndarray, list[Any]]]  # type, f, node, error: (codes, values)
    process: np.ndarray  # int64, or objects with "nemesis"
    value: np.ndarray  # objects: ints, None, parsed JSON, int64 (n, 2) pairs
    extras: dict[str, np.ndarray | IntsOrNull]  # the first piece's other fields
    # process, value: (int64 values, True where the value is a plain 64-bit integer)
    int_views: dict[str, tuple[np.ndarray, np.ndarray]]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def load_prefix(
    path: Path, split: int, extras: list[str], pairs_fs: frozenset[str]
) -> ColumnPiece | None:
    """The columns of the first ``split`` bytes of ``path`` (whole lines), or None."""
    if not split or not os.path.isdir("/dev/fd"):
        return None
    try:
        return _Load(path, split, [*CORE_FIELDS, *extras], pairs_fs).run()
    except (_Unsure, duckdb.Error, orjson.JSONDecodeError, OverflowError, TypeError, ValueError):
        return None


def null_keys(data: bytes, out: Counter[bytes]) -> None:
    """Count, by name, every ``"name": null`` pair in ``data`` (a key whose value is null)."""
    at = data.find(b"null")
    while at >= 0:
        j = at - 1
        while j >= 0 and data[j] in _SPACE:
            j -= 1
        if j >= 0 and data[j] == 58:  # ':'
            j -= 1
            while j >= 0 and data[j] in _SPACE:
                j -= 1
            if j >= 0 and data[j] == 34:  # '"'
                out[data[data.rfind(b'"', 0, j) + 1 : j]] += 1
        at = data.find(b"null", at + 4)


class _Feed(threading.Thread):
    """Writes the prefix into a pipe for DuckDB, counting lines, commas and null keys."""

    def __init__(self, path: Path, split: int, wfd: int) -> None:
        super().__init__(daemon=True)
        self.path, self.split, self.wfd = path, split, wfd
        self.lines = self.commas = self.escaped = 0
        self.nulls: Counter[bytes] = Counter()
        self.failed = False

    def run(self) -> None:
        try:
            with self.path.open("rb", buffering=0) as fh:
                self._pump(fh.fileno())
        except OSError:  # DuckDB stopped reading (it refused a line), or the file went
            self.failed = True
        finally:
            os.close(self.wfd)

    def _pump(self, fd: int) -> None:
        pos, carry = 0, b""
        while pos < self.split:
            data = os.pread(fd, min(_STEP, self.split - pos), pos)
            if not data:
                raise OSError("the history got shorter")
            pos += len(data)
            view = memoryview(data)
            while view:
                view = view[os.write(self.wfd, view) :]
            self.lines += data.count(b"\n")
            self.commas += data.count(b",")
            self.escaped += data.count(b"\\u002")  # an escaped comma (and its neighbours)
            cut = data.rfind(b"\n") + 1  # null keys are looked for in whole lines
            if cut:
                null_keys(carry + data[:cut], self.nulls)
                carry = data[cut:]
            else:
                carry += data
        null_keys(carry, self.nulls)


class _Load:
    """One typed-column read of a prefix: DuckDB's table ``h``, then the columns."""

    def __init__(self, path: Path, split: int, fields: list[str], pairs_fs: frozenset) -> None:
        self.path, self.split, self.fields, self.pairs_fs = path, split, fields, pairs_fs
        self.con = duckdb.connect(config={"threads": THREADS})
        self.con.execute("SET enable_progress_bar = false")
        self.coded_texts: dict[str, list[str]] = {}  # per coded field: its distinct texts

    def one(self, sql: str) -> Any:
        row = self.con.execute(sql).fetchone()
        assert row is not None
        return row

    def run(self) -> ColumnPiece:
        try:
            feed = self._read()
            return self._piece(feed)
        finally:
            self.con.close()

    def _read(self) -> _Feed:
        rfd, wfd = os.pipe()
        with contextlib.suppress(OSError, AttributeError):  # fewer, larger hand-overs
            fcntl.fcntl(wfd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        feed = _Feed(self.path, self.split, wfd)
        feed.start()
        read = False
        try:
            self.con.execute(_create_sql(self.fields, f"/dev/fd/{rfd}"))
            read = True
        finally:
            if not read:  # DuckDB refused a line (or was interrupted): the next write fails
                os.close(rfd)
            feed.join()
            if read:
                os.close(rfd)
        if feed.failed:
            raise _Unsure("the prefix could not be fed whole")
        if feed.escaped:
            raise _Unsure("an escaped comma: DuckDB's texts would not count as the file")
        return feed

    def _piece(self, feed: _Feed) -> ColumnPiece:
        ints = [k for k in self.fields if k not in CODED]
        sums = {"rows": "count(*)"} | {k: f"count({_q('t_' + k)})" for k in CODED}
        for k in ints:
            sums |= {f"{k}={s}": f"count(*) FILTER (WHERE {_q('s_' + k)} = {s})" for s in (1, 2)}
        stats = dict(zip(sums, self.one(f"SELECT {', '.join(sums.values())} FROM h"), strict=True))
        n = stats["rows"]
        if n != feed.lines:
            raise _Unsure("a blank line")
        status = {k: (stats[f"{k}=1"], stats[f"{k}=2"]) for k in ints}
        for k in ("index", "time", "process"):
            if status[k][0] or (k != "process" and status[k][1]):
                raise _Unsure(f"{k} absent, null or not an integer")
        nonnull = sum(stats[k] for k in CODED) + sum(n - status[k][0] for k in ints)
        labels = {k: self._enum(k) for k in CODED}
        picks = [f"{_q('i_' + k)}" for k in ints] + [
            f"{_q('s_' + k)}" for k in ints if status[k] != (0, 0)
        ]
        for k in CODED:
            code = f"enum_code({_q('t_' + k)}::e_{k})" if labels[k] else "NULL"
            picks.append(f"coalesce({code}, -1)::INTEGER AS {_q('c_' + k)}")
        col = {k: np.asarray(v) for k, v in self.con.execute(
            f"SELECT {', '.join(picks)} FROM h").fetchnumpy().items()}  # fmt: skip
        coded = {k: (col["c_" + k], labels[k]) for k in CODED}
        _check_coded(coded)
        texts = {k: self._texts(k) for k in ints if status[k][1]}
        self.con.execute("DROP TABLE h")  # its memory goes back before the objects are made
        self._vouch(feed, n, nonnull, coded, texts)
        ok_pairs = _ok_pairs(coded, self.pairs_fs)
        return ColumnPiece(
            n=n,
            ints={k: col["i_" + k].astype(np.int64, copy=False) for k in ("index", "time")},
            coded=coded,
            process=_process(col, texts.get("process", [])),
            value=_values(col, texts.get("value", []), ok_pairs),
            extras={k: _extra(col, k, texts.get(k, [])) for k in self.fields[len(CORE_FIELDS) :]},
            int_views={k: _int_view(col, k) for k in ("process", "value")},
        )

    def _enum(self, k: str) -> list[Any]:
        """Make the enum type ``e_<k>`` of the column's distinct JSON texts; their values."""
        t = _q("t_" + k)
        found = [r[0] for r in self.con.execute(
            f"SELECT DISTINCT {t} FROM h WHERE {t} IS NOT NULL ORDER BY 1").fetchall()]  # fmt: skip
        if found:
            quoted = ", ".join("'" + t.replace("'", "''") + "'" for t in found)
            self.con.execute(f"CREATE TYPE e_{k} AS ENUM ({quoted})")
        self.coded_texts[k] = found
        return [orjson.loads(t) for t in found]

    def _texts(self, k: str) -> list[tuple[int, str]]:
        """(row, JSON text) of every row whose ``k`` is neither null nor a plain integer."""
        return self.con.execute(
            f"SELECT rowid, {_q('t_' + k)} FROM h WHERE {_q('s_' + k)} = 2 ORDER BY 1"
        ).fetchall()

    def _vouch(
        self,
        feed: _Feed,
        n: int,
        nonnull: int,
        coded: dict[str, tuple[np.ndarray, list[Any]]],
        texts: dict[str, list[tuple[int, str]]],
    ) -> None:
        """Every key of the prefix is one of the columns' (see the module's docstring)."""
        inner: Counter[bytes] = Counter()  # null keys inside the values
        commas = 0
        for k, found in self.coded_texts.items():
            counts = np.bincount(coded[k][0] + 1, minlength=len(found) + 1)[1:]
            for text, times in zip(found, counts.tolist(), strict=True):
                raw = text.encode()
                commas += raw.count(b",") * times
                if b"null" in raw:
                    one: Counter[bytes] = Counter()
                    null_keys(raw, one)
                    inner.update({key: c * times for key, c in one.items()})
        for rows in texts.values():
            for _, text in rows:
                raw = text.encode()
                commas += raw.count(b",")
                null_keys(raw, inner)
        names = {k.encode() for k in self.fields}
        top = 0
        for key, count in feed.nulls.items():
            extra = count - inner.get(key, 0)
            if extra < 0 or (extra and key not in names):
                raise _Unsure("a null field no column holds")
            top += extra
        if any(key not in feed.nulls for key in inner):
            raise _Unsure("a null key inside a value the file does not show")
        if feed.commas != commas + nonnull + top - n:
            raise _Unsure("a field the first piece did not show")


def _create_sql(fields: list[str], source: str) -> str:
    """The table ``h``: per coded field ``t_`` (its JSON text); per other field ``i_`` (the
    integer, 0 if none), ``s_`` (0 a plain integer, 1 null or absent, 2 anything else) and
    ``t_`` (the JSON text when 2)."""
    columns = ", ".join(f"{_q(k)}: 'JSON'" for k in fields)
    inner, outer = [], []
    for k in fields:
        text = f"{_q(k)}::VARCHAR"
        if k in CODED:
            inner.append(f"{text} AS {_q('t_' + k)}")
            outer.append(_q("t_" + k))
            continue
        x, c = _q("x_" + k), _q("c_" + k)
        inner += [f"{text} AS {x}", f"TRY_CAST({text} AS BIGINT) AS {c}"]
        # DuckDB's cast is lenient ('1.5', '1e5', ' 1' and '0x10' all cast): an integer is
        # taken only where the text is the integer's own decimal rendering
        plain = f"{c} IS NOT NULL AND {c}::VARCHAR = {x}"
        outer += [f"coalesce({c}, 0) AS {_q('i_' + k)}",
                  f"(CASE WHEN {x} IS NULL THEN 1 WHEN {plain} THEN 0 ELSE 2 END)::UTINYINT"
                  f" AS {_q('s_' + k)}",
                  f"CASE WHEN {x} IS NOT NULL AND NOT ({plain}) THEN {x} END"
                  f" AS {_q('t_' + k)}"]  # fmt: skip
    read = (f"read_json('{source}', format='newline_delimited', maximum_object_size={MAX_LINE},"
            f" columns={{{columns}}})")  # fmt: skip
    return (f"CREATE TEMP TABLE h AS SELECT {', '.join(outer)} FROM "
            f"(SELECT {', '.join(inner)} FROM {read})")  # fmt: skip


def _check_coded(coded: dict[str, tuple[np.ndarray, list[Any]]]) -> None:
    """The contract's types: ``type`` an op type, ``f`` a string, node/error string or null."""
    codes, uniq = coded["type"]
    if (codes < 0).any() or not all(type(u) is str and u in OP_TYPES for u in uniq):
        raise _Unsure("an op type outside the contract")
    codes, uniq = coded["f"]
    if (codes < 0).any() or not all(type(u) is str for u in uniq):
        raise _Unsure("an f that is not a string")
    for k in ("node", "error"):
        if not all(type(u) is str for u in coded[k][1]):
            raise _Unsure(f"a {k} that is not a string or null")


def _ok_pairs(coded: dict[str, tuple[np.ndarray, list[Any]]], pairs_fs: frozenset) -> np.ndarray:
    """True for the rows of an ``ok`` op in ``pairs_fs``."""
    (tcodes, tuniq), (fcodes, funiq) = coded["type"], coded["f"]
    wanted = [i for i, f in enumerate(funiq) if f in pairs_fs]
    if "ok" not in tuniq or not wanted:
        return np.zeros(len(tcodes), dtype=bool)
    return (tcodes == tuniq.index("ok")) & np.isin(fcodes, wanted)


def _process(col: dict[str, np.ndarray], texts: list[tuple[int, str]]) -> np.ndarray:
    ints = col["i_process"].astype(np.int64, copy=False)
    if not texts:
        return ints
    if {orjson.loads(t) for _, t in texts} != {NEMESIS}:
        raise _Unsure("a process that is neither an integer nor nemesis")
    out = ints.astype(object)
    out[[r for r, _ in texts]] = NEMESIS
    return out


def _status(col: dict[str, np.ndarray], k: str) -> tuple[np.ndarray, np.ndarray]:
    """A field's int64 values (0 where none) and status (0 integer, 1 null, 2 other text)."""
    ints = col["i_" + k].astype(np.int64, copy=False)
    status = col.get("s_" + k)
    return ints, np.zeros(len(ints), np.uint8) if status is None else status


def _int_view(col: dict[str, np.ndarray], k: str) -> tuple[np.ndarray, np.ndarray]:
    ints, status = _status(col, k)
    return ints, status == 0


def _extra(
    col: dict[str, np.ndarray], k: str, texts: list[tuple[int, str]]
) -> np.ndarray | IntsOrNull:
    """An extra field: its numbers when every value is a plain integer or null, else objects."""
    return _objects(col, k, texts) if texts else IntsOrNull(*_null_ints(col, k))


def _null_ints(col: dict[str, np.ndarray], k: str) -> tuple[np.ndarray, np.ndarray]:
    ints, status = _status(col, k)
    return ints, status == 1


def _objects(col: dict[str, np.ndarray], k: str, texts: list[tuple[int, str]]) -> np.ndarray:
    """A field as the objects orjson would have made: ints, None, parsed texts."""
    out = IntsOrNull(*_null_ints(col, k)).objects()
    for rid, text in texts:
        out[rid] = orjson.loads(text)
    return out


def _values(
    col: dict[str, np.ndarray], texts: list[tuple[int, str]], ok_pairs: np.ndarray
) -> np.ndarray:
    """The value column; the pairs of an ``ok`` op in ``pairs_fs`` as int64 arrays (n, 2)."""
    status = col.get("s_value")
    if ok_pairs.any() and (status is None or (status[ok_pairs] == 0).any()):
        raise _Unsure("an integer where pairs belong")
    out = _objects(col, "value", [])
    for rid, text in texts:
        if not ok_pairs[rid]:
            out[rid] = orjson.loads(text)
            continue
        pairs = _pairs_from_text(text.encode()) if text.startswith("[[") else None
        if pairs is None:
            value = orjson.loads(text)
            pairs = _pairs_from_list(value)
            if pairs is None and value != []:
                raise _Unsure("a pairs value that is not [int, int] pairs")
        out[rid] = value if pairs is None else pairs
    return out
