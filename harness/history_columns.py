"""The typed-column fast path of the history loader (DuckDB's JSON reader).

In: a ``history.jsonl`` (docs/contracts.md §1), the length of the prefix to
read (whole lines, ending at one of the line-by-line loader's piece
boundaries: the final reads after it are left to that loader), the fields
the loader found on the file's first piece (each with whether it showed only
integers and nulls there), and the workload's ``pairs_fs``.
Out: a :class:`ColumnPiece` holding, column by column, exactly what the
line-by-line loader's pieces would hold for those lines, or None when the
prefix holds anything this path does not vouch for — a field not on the
first piece, a value of a type a core field may not have, a blank line, a
number that does not fit, a line DuckDB refuses — and the line-by-line
loader then loads the file and names the offending line.

How it stays fast: the prefix is fed to DuckDB through a pipe by a thread
that counts, in the same pass, what the proof below needs; DuckDB parses
every row in C straight into typed columns: ``index``, ``time``,
``process`` and the integer extras as BIGINT, ``value`` as text that is an
integer only where it is the integer's own decimal rendering, ``type`` as an
enum of the op types, and ``f``, ``node``, ``error`` and the other extras as
JSON texts (the coded ones travel as integer codes of their distinct texts,
each decoded once with orjson). A row DuckDB could not type (a nemesis op's
``"nemesis"`` and dict; a ``value`` that is null, a float, a bool or a read's
pairs; an extra that is neither a string nor a bool; a line with a ``\\u``
escape) is an *exact row*: its line is read back from the file and decoded
by orjson, as the line-by-line loader would.

How it stays exact: DuckDB's BIGINT is lenient — it reads ``1.5`` as 2,
``"12"`` as 12, ``true`` as 1, ``1e5`` as 100000 — it drops keys it was not
asked for, and it takes a trailing comma. The proof is a count of *marks*,
the bytes ``"`` ``.`` ``e`` ``E`` and ``,``: an integer written as an integer
has none, while a string adds two quotes, a float a ``.``, ``e`` or ``E``, a
bool an ``e``, a key no column holds (or a key given twice) two quotes, and a
trailing comma a comma. Every other mark is accounted for exactly: each key
the columns say a typed row holds (its quotes, its name's marks and a comma,
less one comma a row; a null value counts its key by the ``"name": null``
pairs the feeding thread found), each JSON text of the typed rows (a string
renders with the file's marks, its ``\\u`` escapes aside: their rows are
exact), and every byte of the exact rows' lines. So the prefix's marks equal
that sum exactly when no value was read leniently and no key went unread;
otherwise the file is handed back.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
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
from harness.history import IntsOrNull, _pairs_from_list, _pairs_from_text, _write_all

CODED = ("type", "f", "node", "error")  # low-cardinality: enum codes, each text decoded once
TYPED = ("index", "time", "process", "value")  # read as BIGINT (so are the integer extras)
THREADS = 2
MAX_LINE = 4 << 20  # DuckDB sizes its read buffers by this (a longer line still reads)
_STEP = 8 << 20  # bytes the feeding thread reads, counts and writes at a time
_BLOCK = 1 << 20  # newlines are counted per block of this size, to find an exact row's line
_PIPE_BYTES = 1 << 20  # Linux's default cap for an unprivileged pipe
_SPACE = frozenset(b" \t\r\n")
_MARKS = b'".eE,'
_NOT_MARKS = bytes(sorted(set(range(256)) - set(_MARKS)))
_NEITHER = bytes(sorted(set(range(256)) - set(_MARKS + b"\n")))  # neither a mark nor a newline
_INT64 = np.iinfo(np.int64)
# A JSON text DuckDB renders with other marks than the file's: a float (a digit before its
# ".", "e" or "E": 1E2 renders 100.0) or a number that may be beyond 64 bits
_RENDERED_OTHERWISE = "'[0-9][.eE]|[0-9]{19}'"
_EXACT_MAX = 1 / 16  # more exact rows than this share of the prefix: line by line does it


def marks(data: bytes) -> int:
    """How many of ``data``'s bytes are marks (see the module's docstring)."""
    return len(data.translate(None, _NOT_MARKS))


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
    path: Path, split: int, extras: dict[str, bool], pairs_fs: frozenset[str]
) -> ColumnPiece | None:
    """The columns of the first ``split`` bytes of ``path`` (whole lines), or None.

    ``extras``: the first piece's fields beyond the core ones, each with whether that piece
    showed only integers and nulls for it."""
    load = open_prefix(path, split, extras, pairs_fs)
    return None if load is None else load.result()


def open_prefix(
    path: Path, split: int, extras: dict[str, bool], pairs_fs: frozenset[str]
) -> _Load | None:
    """A read of :func:`load_prefix` not begun (its :meth:`_Load.result` runs it, in any
    thread, and :meth:`_Load.interrupt` stops it from another), or None: not this file."""
    if not split or not os.path.isdir("/dev/fd"):
        return None
    if any('"' in k or "\\" in k for k in extras):  # a name the mark count cannot vouch for
        return None
    return _Load(path, split, extras, pairs_fs)


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
    """Writes the prefix into a pipe for DuckDB, counting marks, null keys and newlines."""

    def __init__(self, path: Path, split: int, wfd: int) -> None:
        super().__init__(daemon=True)
        self.path, self.split, self.wfd = path, split, wfd
        self.marks = 0
        self.escapes: list[int] = []  # the offset of every \u escape
        self.newlines: list[int] = []  # per _BLOCK bytes
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
        pos, carry, last = 0, b"", b""
        while pos < self.split:
            data = os.pread(fd, min(_STEP, self.split - pos), pos)
            if not data:
                raise OSError("the history got shorter")
            pos += len(data)
            _write_all(self.wfd, data)
            if data.find(b"\\") >= 0 or last == b"\\":
                self._escapes(last + data, pos - len(data) - len(last))
            last = data[-1:]
            for i in range(0, len(data), _BLOCK):  # marks and newlines: one pass a block
                kept = data[i : i + _BLOCK].translate(None, _NEITHER)
                newlines = kept.count(b"\n")
                self.newlines.append(newlines)
                self.marks += len(kept) - newlines
            cut = data.rfind(b"\n") + 1  # null keys are looked for in whole lines
            if cut:
                null_keys(carry + data[:cut], self.nulls)
                carry = data[cut:]
            else:
                carry += data
        null_keys(carry, self.nulls)

    def _escapes(self, data: bytes, offset: int) -> None:
        at = data.find(b"\\u")
        while at >= 0:
            self.escapes.append(offset + at)
            at = data.find(b"\\u", at + 2)


class _Lines:
    """The prefix's lines by row number, found by the feed's newline counts."""

    def __init__(self, path: Path, split: int, newlines: list[int]) -> None:
        self.split = split
        self.ends = np.cumsum(newlines)  # newlines up to the end of each block
        self.cache: dict[int, np.ndarray] = {}
        with path.open("rb") as fh:
            self.map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)

    def close(self) -> None:
        self.map.close()

    def _block(self, block: int) -> np.ndarray:
        """The offsets of the newlines in ``block``."""
        if block not in self.cache:
            at = block * _BLOCK
            raw = self.map[at : min(at + _BLOCK, self.split)]
            self.cache[block] = np.flatnonzero(np.frombuffer(raw, np.uint8) == 10) + at
        return self.cache[block]

    def _before(self, block: int) -> int:
        return int(self.ends[block - 1]) if block else 0

    def _newline(self, i: int) -> int:
        """The offset of the prefix's ``i``-th newline (0-based): where row ``i`` ends."""
        block = int(np.searchsorted(self.ends, i, side="right"))
        return int(self._block(block)[i - self._before(block)])

    def row_at(self, offset: int) -> int:
        """The row whose line holds the byte at ``offset``."""
        block = offset // _BLOCK
        return self._before(block) + int(np.searchsorted(self._block(block), offset))

    def lines(self, rows: list[int]) -> list[bytes]:
        """The lines of ``rows`` (0-based, ascending)."""
        return [self.map[self._newline(r - 1) + 1 if r else 0 : self._newline(r)] for r in rows]


class _Load:
    """One typed-column read of a prefix: DuckDB's table ``h``, then the columns."""

    def __init__(
        self, path: Path, split: int, extras: dict[str, bool], pairs_fs: frozenset
    ) -> None:
        self.path, self.split, self.pairs_fs = path, split, pairs_fs
        self.fields = [*CORE_FIELDS, *extras]
        self.typed = [*TYPED, *(k for k, ints in extras.items() if ints)]
        self.texts = [k for k in self.fields if k not in self.typed and k not in CODED]
        self.con = duckdb.connect(config={"threads": THREADS})
        self.con.execute("SET enable_progress_bar = false")

    def one(self, sql: str) -> Any:
        row = self.con.execute(sql).fetchone()
        assert row is not None
        return row

    def result(self) -> ColumnPiece | None:
        """The piece, or None when the prefix is not vouched for (or the read interrupted)."""
        try:
            return self.run()
        except (_Unsure, duckdb.Error, orjson.JSONDecodeError, OverflowError, TypeError,
                ValueError):  # fmt: skip
            return None

    def interrupt(self) -> None:
        """Stop DuckDB's query (from another thread): :meth:`result` then returns None."""
        with contextlib.suppress(duckdb.Error):  # already closed: nothing runs
            self.con.interrupt()

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
            self.con.execute(self._create_sql(f"/dev/fd/{rfd}"))
            read = True
        finally:
            if not read:  # DuckDB refused a line (or was interrupted): the next write fails
                os.close(rfd)
            feed.join()
            if read:
                os.close(rfd)
        if feed.failed:
            raise _Unsure("the prefix could not be fed whole")
        return feed

    def _create_sql(self, source: str) -> str:
        """The table ``h``: every field typed (BIGINT or JSON; NULL where absent, null or,
        for BIGINT, not an integer), and ``plain``: DuckDB typed every value of the row.

        ``value``, the one field whose JSON type varies by workload and op, is read as JSON
        text: an integer (``value``) only where that text is the integer's own decimal
        rendering, else its text (``value_text``), decoded by orjson. A JSON text that DuckDB
        renders with other marks than the file's (:data:`_RENDERED_OTHERWISE`) makes its row
        exact."""
        columns = ", ".join(f"{_q(k)}: {_column_type(k, self.typed)}" for k in self.fields)
        read = (f"read_json('{source}', format='newline_delimited', ignore_errors=true,"
                f" maximum_object_size={MAX_LINE}, columns={{{columns}}})")  # fmt: skip
        texts = ["value_text", *(f"{_q(k)}::VARCHAR" for k in self.texts)]
        plain = ["process IS NOT NULL"] + [
            f"({t} IS NULL OR NOT regexp_matches({t}, {_RENDERED_OTHERWISE}))" for t in texts
        ]
        split = ("SELECT * EXCLUDE (value, v, vt), CASE WHEN v::VARCHAR = vt THEN v END AS value,"
                 " CASE WHEN NOT coalesce(v::VARCHAR = vt, false) THEN vt END AS value_text FROM"
                 f" (SELECT *, value::VARCHAR AS vt, TRY_CAST(value::VARCHAR AS BIGINT) AS v"
                 f" FROM {read})")  # fmt: skip
        return f"CREATE TEMP TABLE h AS SELECT *, {' AND '.join(plain)} AS plain FROM ({split})"

    def _piece(self, feed: _Feed) -> ColumnPiece:
        n, n_index, n_time = self.one("SELECT count(*), count(index), count(time) FROM h")
        if n != sum(feed.newlines):
            raise _Unsure("a blank line")
        if n_index != n or n_time != n:
            raise _Unsure("index or time absent, null or not an integer (or a line DuckDB refused)")
        labels = {k: self._enum(k) for k in CODED if k != "type"}
        labels = {"type": ([orjson.dumps(t).decode() for t in OP_TYPES], list(OP_TYPES))} | labels
        picks = [f"coalesce({_q(k)}, 0) AS {_q('i_' + k)}" for k in self.typed]
        picks += [f"{_q(k)} IS NULL AS {_q('n_' + k)}" for k in self.typed[len(TYPED) :]]
        picks += [_q(k) for k in self.texts] + ["plain", "value IS NOT NULL AS int_value"]
        for k, (_, found) in labels.items():
            code = "enum_code(type)" if k == "type" else ""
            code = code or (f"enum_code({_q(k)}::VARCHAR::e_{k})" if found else "NULL")
            picks.append(f"coalesce({code}, -1)::INTEGER AS {_q('c_' + k)}")
        fetched = self.con.execute(f"SELECT {', '.join(picks)} FROM h").fetchnumpy()
        # a JSON text's NULL arrives masked (the ints are coalesced: never masked)
        col = {k: _unmasked(v) for k, v in fetched.items()}
        values = self.con.execute(  # (row, JSON text) of each value that is not an integer
            "SELECT rowid, value_text FROM h WHERE value_text IS NOT NULL AND plain ORDER BY 1"
        ).fetchall()
        self.con.close()  # DuckDB's memory goes back before the objects are made
        labels["type"], col["c_type"] = _present_only(*labels["type"], col["c_type"])
        coded = {k: (col["c_" + k], uniq) for k, (_, uniq) in labels.items()}
        _check_coded(coded)
        texts = {k: _decoded(col[k]) for k in self.texts}
        index = _Lines(self.path, self.split, feed.newlines)
        try:
            plain = col["plain"].astype(bool, copy=True)
            # a line with a \u escape: DuckDB's texts would not show the file's marks
            plain[[index.row_at(at) for at in feed.escapes]] = False
            exact = np.flatnonzero(~plain).tolist()
            if len(exact) > max(64, n * _EXACT_MAX):
                raise _Unsure("too many rows to read back one by one")
            lines = index.lines(exact)
        finally:
            index.close()
        recs = [_record(line, self.fields) for line in lines]
        if feed.escapes:  # a row made exact here has its value among the texts
            values = [(r, t) for r, t in values if plain[r]]
        present = self._present(col, coded, texts, plain)
        present["value"] = int(np.count_nonzero(col["int_value"][plain])) + len(values)
        self._vouch(feed, present, labels, coded, plain, texts, lines, values)
        build = _Build(n, col, coded, exact, recs, self.pairs_fs)
        return build.piece(self.typed, texts, values)

    def _present(
        self,
        col: dict[str, np.ndarray],
        coded: dict[str, tuple[np.ndarray, list[Any]]],
        texts: dict[str, tuple[np.ndarray, list[str], list[Any]]],
        plain: np.ndarray,
    ) -> dict[str, int]:
        """How many typed rows hold each field with a value that is not null."""
        rows = int(np.count_nonzero(plain))
        out = dict.fromkeys(TYPED, rows)  # not null in every typed row
        for k in self.typed[len(TYPED) :]:
            out[k] = rows - int(np.count_nonzero(col["n_" + k][plain]))
        for k, codes in [*((k, c) for k, (c, _) in coded.items()),
                         *((k, c) for k, (c, _, _) in texts.items())]:  # fmt: skip
            out[k] = int(np.count_nonzero(codes[plain] >= 0))
        return out

    def _enum(self, k: str) -> tuple[list[str], list[Any]]:
        """Make the enum type ``e_<k>`` of the column's distinct JSON texts: (texts, values)."""
        q = _q(k)
        sql = f"SELECT DISTINCT {q}::VARCHAR FROM h WHERE {q} IS NOT NULL ORDER BY 1"
        found = [r[0] for r in self.con.execute(sql).fetchall()]
        if found:
            quoted = ", ".join("'" + t.replace("'", "''") + "'" for t in found)
            self.con.execute(f"CREATE TYPE e_{k} AS ENUM ({quoted})")
        return found, [orjson.loads(t) for t in found]

    def _vouch(
        self,
        feed: _Feed,
        present: dict[str, int],
        labels: dict[str, tuple[list[str], list[Any]]],
        coded: dict[str, tuple[np.ndarray, list[Any]]],
        plain: np.ndarray,
        texts: dict[str, tuple[np.ndarray, list[str], list[Any]]],
        lines: list[bytes],
        values: list[tuple[int, str]],
    ) -> None:
        """The prefix's marks are the ones its columns account for (the module's docstring)."""
        inner: Counter[bytes] = Counter()  # null keys inside the typed rows' JSON texts
        found = 0  # marks of the typed rows' JSON texts and of the exact rows' lines
        for k, (rendered, _) in labels.items():
            counts = np.bincount(coded[k][0][plain] + 1, minlength=len(rendered) + 1)[1:]
            found += _texts_marks(rendered, counts.tolist(), inner)
        for codes, rendered, _ in texts.values():
            counts = np.bincount(codes[plain] + 1, minlength=len(rendered) + 1)[1:]
            found += _texts_marks(rendered, counts.tolist(), inner)
        found += _texts_marks([t for _, t in values], [1] * len(values), inner)
        exact_nulls: Counter[bytes] = Counter()
        for line in lines:
            found += marks(line)
            null_keys(line, exact_nulls)
        names = {k.encode(): k for k in self.fields}
        keys = Counter({k.encode(): c for k, c in present.items()})
        for key, count in feed.nulls.items():
            top = count - inner.get(key, 0) - exact_nulls.get(key, 0)
            if top < 0 or (top and key not in names):
                raise _Unsure("a null field no column holds")
            keys[key] += top
        if any(key not in feed.nulls for key in (*inner, *exact_nulls)):
            raise _Unsure("a null key the file does not show")
        # a key: its quotes, its name's marks and a comma, but for one key a row
        found += sum(c * (3 + marks(key)) for key, c in keys.items()) - int(plain.sum())
        if feed.marks != found:
            raise _Unsure("a value DuckDB read leniently, or a field no column holds")


def _texts_marks(rendered: list[str], counts: list[int], inner: Counter[bytes]) -> int:
    """The marks of JSON texts each found ``counts`` times; their null keys into ``inner``."""
    total = 0
    for text, times in zip(rendered, counts, strict=True):
        if not times:
            continue
        raw = text.encode()
        total += marks(raw) * times
        if b"null" in raw:
            one: Counter[bytes] = Counter()
            null_keys(raw, one)
            inner.update({key: c * times for key, c in one.items()})
    return total


def _column_type(k: str, typed: list[str]) -> str:
    """How DuckDB reads field ``k`` (see :meth:`_Load._create_sql`): ``type`` as an enum of
    the op types (any other value, a non-string too, is NULL: the file is handed back)."""
    if k == "type":
        return "$$ENUM(" + ", ".join(f"'{t}'" for t in OP_TYPES) + ")$$"
    return "'JSON'" if k == "value" else "'BIGINT'" if k in typed else "'JSON'"


def _present_only(
    rendered: list[str], values: list[Any], codes: np.ndarray
) -> tuple[tuple[list[str], list[Any]], np.ndarray]:
    """An enum column's labels cut to the ones its codes use, the codes renumbered (-1 kept)."""
    used = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=len(values)))
    remap = np.full(len(values) + 1, -1, dtype=codes.dtype)
    remap[used] = np.arange(len(used))
    kept = used.tolist()
    return ([rendered[i] for i in kept], [values[i] for i in kept]), remap[codes]


def _unmasked(v: np.ndarray) -> np.ndarray:
    """A fetched column, None where DuckDB masked a NULL (np.ma.filled would put '?')."""
    if not np.ma.isMaskedArray(v):
        return np.asarray(v)
    out = np.ma.getdata(v).astype(object)
    out[np.ma.getmaskarray(v)] = None
    return out


def _decoded(col: np.ndarray) -> tuple[np.ndarray, list[str], list[Any]]:
    """A JSON-text column as (codes, -1 for NULL; distinct texts; their decoded values)."""
    index: dict[str, int] = {}
    codes = np.fromiter(
        (-1 if t is None else index.setdefault(t, len(index)) for t in col.tolist()),
        dtype=np.int64,
        count=len(col),
    )
    rendered = list(index)
    return codes, rendered, [orjson.loads(t) for t in rendered]


def _record(line: bytes, fields: list[str]) -> dict[str, Any]:
    """An exact row's line, as orjson decodes it (it must hold only the columns' fields)."""
    rec = orjson.loads(line)
    if type(rec) is not dict or not rec.keys() <= set(fields):
        raise _Unsure("an exact row that is not an object of the columns' fields")
    return rec


class _Build:
    """The :class:`ColumnPiece` of the typed columns, the exact rows' records put in."""

    def __init__(
        self,
        n: int,
        col: dict[str, np.ndarray],
        coded: dict[str, tuple[np.ndarray, list[Any]]],
        exact: list[int],
        recs: list[dict[str, Any]],
        pairs_fs: frozenset,
    ) -> None:
        self.n, self.col, self.coded, self.recs = n, col, coded, recs
        self.exact = exact
        for r, rec in zip(self.exact, recs, strict=True):
            for k in CODED:
                codes, uniq = coded[k]
                want = None if codes[r] < 0 else uniq[codes[r]]
                if rec.get(k) != want or type(rec.get(k)) is not type(want):
                    raise _Unsure(f"{k} of an exact row is not what DuckDB read")
        self.ok_pairs = _ok_pairs(coded, pairs_fs)

    def piece(
        self, typed: list[str], texts: dict[str, Any], values: list[tuple[int, str]]
    ) -> ColumnPiece:
        ints = {k: self._ints(k) for k in ("index", "time")}
        process, process_view = self._process()
        value, value_view = self._value(values)
        extras: dict[str, np.ndarray | IntsOrNull] = {}
        for k in typed[len(TYPED) :]:
            extras[k] = self._int_extra(k)
        for k, (codes, _, values) in texts.items():
            extras[k] = self._text_extra(k, codes, values)
        return ColumnPiece(
            n=self.n, ints=ints, coded=self.coded, process=process, value=value,
            extras=dict(sorted(extras.items())),
            int_views={"process": process_view, "value": value_view},
        )  # fmt: skip

    def _exact(self, k: str) -> list[tuple[int, Any]]:
        return [(r, rec.get(k)) for r, rec in zip(self.exact, self.recs, strict=True)]

    def _ints(self, k: str) -> np.ndarray:
        out = self.col["i_" + k].astype(np.int64, copy=True)
        for r, v in self._exact(k):
            if not _is_int64(v):
                raise _Unsure(f"{k} not a 64-bit integer")
            out[r] = v
        return out

    def _process(self) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        ints = self.col["i_process"].astype(np.int64, copy=True)
        flag = np.ones(self.n, dtype=bool)
        nemesis = []
        for r, v in self._exact("process"):
            if _is_int64(v):
                ints[r] = v
            elif v == NEMESIS:
                ints[r], flag[r] = 0, False
                nemesis.append(r)
            else:
                raise _Unsure("a process that is neither an integer nor nemesis")
        if not nemesis:
            return ints, (ints, flag)
        out = ints.astype(object)
        out[nemesis] = NEMESIS
        return out, (ints, flag)

    def _value(
        self, texts: list[tuple[int, str]]
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """The value column; the pairs of an ``ok`` op in ``pairs_fs`` as int64 arrays (n, 2).

        ``texts``: (row, JSON text) of the typed rows whose value is not an integer."""
        ints = self.col["i_value"].astype(np.int64, copy=True)
        flag = self.col["int_value"].astype(bool, copy=True)
        flag[self.exact] = False
        if (self.ok_pairs & flag).any():
            raise _Unsure("an integer where pairs belong")
        out = ints.astype(object)
        out[~flag] = None  # a null, or filled in below
        for r, text in texts:
            if self.ok_pairs[r] and text.startswith("[["):
                pairs = _pairs_from_text(text.encode())
                if pairs is not None:
                    out[r] = pairs
                    continue
            out[r] = self._pairs(r, orjson.loads(text))
        for r, v in self._exact("value"):
            if _is_int64(v):
                ints[r], flag[r] = v, True
            out[r] = self._pairs(r, v)
        ints[~flag] = 0
        return out, (ints, flag)

    def _pairs(self, r: int, v: Any) -> Any:
        """Row ``r``'s value ``v``; for an ``ok`` op in ``pairs_fs``, its int64 pairs."""
        if not self.ok_pairs[r]:
            return v
        pairs = _pairs_from_list(v)
        if pairs is None and v is not None and v != []:
            raise _Unsure("a pairs value that is not [int, int] pairs")
        return v if pairs is None else pairs

    def _int_extra(self, k: str) -> np.ndarray | IntsOrNull:
        """An integer extra field: its numbers when every value is an integer or null."""
        ints = self.col["i_" + k].astype(np.int64, copy=True)
        null = self.col["n_" + k].astype(bool, copy=True)
        others = []
        for r, v in self._exact(k):
            if v is None:
                ints[r], null[r] = 0, True
            elif _is_int64(v):
                ints[r], null[r] = v, False
            else:
                others.append((r, v))
        if not others:
            return IntsOrNull(ints, null)
        out = IntsOrNull(ints, null).objects()
        for r, v in others:
            out[r] = v
        return out

    def _text_extra(self, k: str, codes: np.ndarray, values: list[Any]) -> np.ndarray:
        """Another extra field: the objects orjson makes of its texts."""
        lookup = np.empty(len(values) + 1, dtype=object)
        lookup[: len(values)] = values
        lookup[-1] = None
        out = lookup[codes]  # -1: None
        for r, v in self._exact(k):
            out[r] = v
        return out


def _is_int64(v: Any) -> bool:
    return type(v) is int and _INT64.min <= v <= _INT64.max


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
