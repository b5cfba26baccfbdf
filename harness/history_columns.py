"""The typed-column fast path of the history loader (DuckDB's JSON reader).

In: a ``history.jsonl`` (docs/contracts.md §1), the workload's ``pairs_fs``
and the fields the loader already found on the file's first and last lines.
Out: the same ops table :func:`harness.history.load_history` builds line by
line (every column equal, value for value and dtype for dtype), or None when
the file holds anything this path does not vouch for — a field not seen on
the sampled lines, a value of a type a core field may not have, a blank or
cut-off line, a number that does not fit — and the line-by-line loader then
loads it again and names the offending line.

How it stays exact: DuckDB reads every field as JSON text (``read_json``
with explicit columns, so the rows are parsed in C, on every core); integers
are taken only where the text round-trips (``1.0`` and ``1e2`` do not),
the low-cardinality columns (``type``, ``f``, ``node``, ``error``) travel as
integer codes of their distinct JSON texts, each decoded once with orjson,
and every other value (a nemesis op's dict, a read's pairs) is decoded from
its own text, the pairs of a final read straight into an int64 array. That
no field went unread is proven by counting: every ``":`` of the file belongs
to a key the columns account for (top-level or nested), else None.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pandas as pd

from checkers.schema import CORE_FIELDS, NEMESIS, OP_TYPES
from harness.history import _pairs_from_list, _pairs_from_text, inferred

# The low-cardinality string columns: shipped as enum codes, decoded once per distinct text.
_CODED = ("type", "f", "node", "error")


class _Unsure(Exception):
    """The file holds something the fast path does not vouch for: load it line by line."""


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _decode(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def load_columns(
    path: Path,
    buf: Any,
    limit: int,
    extras: list[str],
    pairs_fs: frozenset[str],
    max_line: int | None = None,
) -> pd.DataFrame | None:
    """The ops table of ``path`` (its first ``limit`` bytes mapped in ``buf``; ``extras``: the
    fields beyond the core ones; no line longer than ``max_line`` bytes), or None when the
    line-by-line loader must do it."""
    if limit != len(buf) or not limit or buf[limit - 1 : limit] != b"\n":
        return None  # empty, or a cut-off last line: the line-by-line loader says which
    try:
        return _load(path, buf, limit, extras, pairs_fs, min(limit, max_line or limit) + 1)
    except (_Unsure, duckdb.Error, orjson.JSONDecodeError, OverflowError, TypeError, ValueError):
        return None


def _raw_counts(path: Path, limit: int, patterns: tuple[bytes, ...]) -> list[int]:
    """How often each pattern occurs in the first ``limit`` bytes of ``path``, read a few
    MiB at a time (not through the loader's map, so the file's pages stay out of its RSS)."""
    counts = [0] * len(patterns)
    step, tail = 16 << 20, max(map(len, patterns)) - 1
    with path.open("rb", buffering=0) as fh:
        carry, pos = b"", 0
        while pos < limit:
            chunk = carry + fh.read(min(step, limit - pos))
            if len(chunk) == len(carry):
                break
            pos += len(chunk) - len(carry)
            last = pos >= limit
            for i, p in enumerate(patterns):  # an occurrence counts in the chunk it ends in
                counts[i] += chunk.count(p) - (carry.count(p) if carry else 0)
            carry = b"" if last else chunk[-tail:] if tail else b""
    return counts


def _load(
    path: Path, buf: Any, limit: int, extras: list[str], pairs_fs: frozenset[str], longest: int
) -> pd.DataFrame:
    fields = [*CORE_FIELDS, *extras]
    # one thread: on two cores a second one saves little and its read buffers cost ~120 MiB
    con = duckdb.connect(config={"threads": 1})
    try:
        counts: list[int] = []  # counted while DuckDB parses (it lets go of the GIL)
        counter = threading.Thread(
            target=lambda: counts.extend(_raw_counts(path, limit, (b":", b"null", b"\n")))
        )
        counter.start()
        try:
            con.execute(_create_sql(fields, longest), [str(path)])
        finally:
            counter.join()
        colons, nulls, lines = counts
        table = _Table(con, fields, pairs_fs)
        if colons - nulls != table.one("SELECT sum(keys) FROM h"):
            raise _Unsure("a field the sampled lines did not show")
        return table.frame(lines)
    finally:
        con.close()


def _occurrences(text: str, pattern: str) -> str:
    gone = f"(strlen({text}) - strlen(replace({text}, '{pattern}', ''))) // {len(pattern)}"
    return f"CASE WHEN contains({text}, '{pattern}') THEN {gone} ELSE 0 END"


def _create_sql(fields: list[str], longest: int) -> str:
    """The table ``h``: per integer-like field ``i_`` (the integer, 0 if none), ``s_`` (0 an
    integer whose text round-trips, 1 null or absent, 2 anything else) and ``t_`` (the JSON
    text when 2); per coded field ``t_``; and ``keys``: the row's share of the file's
    ``:`` count less its ``null`` count (keys present, plus what the values hold)."""
    columns = ", ".join(f"{_q(k)}: 'JSON'" for k in fields)
    casts, picks, keys = [], [], []
    for k in fields:
        q, text = _q(k), f"{_q(k)}::VARCHAR"
        if k in _CODED:
            picks.append(f"{text} AS {_q('t_' + k)}")
            keys.append(f"({_q('t_' + k)} IS NOT NULL)::INTEGER")
            text = _q("t_" + k)
        else:
            keys.append(f"({_q('s_' + k)} <> 1)::INTEGER")
            c = _q("c_" + k)
            casts.append(f"TRY_CAST({text} AS BIGINT) AS {c}")
            exact = f"coalesce({c}::VARCHAR = {text}, false)"
            picks += [f"coalesce({c}, 0) AS {_q('i_' + k)}",
                      f"(CASE WHEN {q} IS NULL THEN 1 WHEN {exact} THEN 0 ELSE 2 END)::UTINYINT"
                      f" AS {_q('s_' + k)}",
                      f"CASE WHEN {q} IS NOT NULL AND NOT {exact} THEN {text} END"
                      f" AS {_q('t_' + k)}"]  # fmt: skip
            text = _q("t_" + k)
        keys.append(f"{_occurrences(text, ':')} - {_occurrences(text, 'null')}")
    read = (f"read_json(?, format='newline_delimited', maximum_object_size={longest}, "
            f"columns={{{columns}}})")  # fmt: skip
    inner = f"SELECT *, {', '.join(casts)} FROM {read}"
    raw = ", ".join(_q(k) for k in fields)
    rows = f"SELECT {', '.join(picks)}, * EXCLUDE ({raw}) FROM ({inner})"
    cast_names = ", ".join(_q("c_" + k) for k in fields if k not in _CODED)
    return (f"CREATE TEMP TABLE h AS SELECT * EXCLUDE ({cast_names}), "
            f"{' + '.join(keys)} AS keys FROM ({rows})")  # fmt: skip


class _Table:
    """The parsed rows in DuckDB (table ``h`` of :func:`_create_sql`), turned into the
    loader's columns: one fetch for every integer and code column, then small queries."""

    def __init__(self, con: duckdb.DuckDBPyConnection, fields: list[str], pairs: frozenset) -> None:
        self.con = con
        self.fields = fields
        self.pairs_fs = pairs

    def one(self, sql: str) -> Any:
        row = self.con.execute(sql).fetchone()
        assert row is not None
        return row[0]

    def frame(self, n_lines: int) -> pd.DataFrame:
        """The ops table; :class:`_Unsure` where the contract's types are not plainly met."""
        labels = {k: self._enum(k) for k in _CODED}
        picks = []
        for k in self.fields:
            if k in _CODED:
                code = f"enum_code({_q('t_' + k)}::e_{k})" if labels[k] else "NULL"
                picks.append(f"coalesce({code}, -1)::INTEGER AS {_q('c_' + k)}")
            else:
                picks += [_q("i_" + k), _q("s_" + k)]
        fetched = self.con.execute(f"SELECT {', '.join(picks)} FROM h").fetchnumpy()
        col = {k: np.asarray(v) for k, v in fetched.items()}
        n = len(col["c_type"])
        if n != n_lines:
            raise _Unsure("a blank line")
        coded = {k: (col["c_" + k], labels[k]) for k in _CODED}
        self._check_coded(coded)
        self.texts = {k: self._texts(k) for k in self.fields if "s_" + k in col}
        self.con.execute("DROP TABLE h")  # its memory goes back before the objects are made
        cols: dict[str, Any] = {}
        for k in ("index", "time"):
            if col["s_" + k].any():
                raise _Unsure(f"{k} absent or not an integer")
            cols[k] = col["i_" + k].astype(np.int64, copy=False)
        cols["type"], cols["process"] = self._strings(coded["type"]), self._process(col)
        cols["f"] = self._strings(coded["f"])
        cols["value"] = self._values(col, coded)
        cols["node"], cols["error"] = self._strings(coded["node"]), self._strings(coded["error"])
        cols["_line"] = np.arange(1, n + 1, dtype=np.int64)
        for k in self.fields[len(CORE_FIELDS) :]:
            cols[k] = self._extra(k, col)
        return pd.DataFrame(cols, copy=False)

    def _enum(self, k: str) -> list[Any]:
        """Make the enum type ``e_<k>`` of the column's distinct JSON texts; their values."""
        t = _q("t_" + k)
        texts = [r[0] for r in self.con.execute(
            f"SELECT DISTINCT {t} FROM h WHERE {t} IS NOT NULL ORDER BY 1"
        ).fetchall()]  # fmt: skip
        if texts:
            quoted = ", ".join("'" + t.replace("'", "''") + "'" for t in texts)
            self.con.execute(f"CREATE TYPE e_{k} AS ENUM ({quoted})")
        return [orjson.loads(t) for t in texts]

    @staticmethod
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

    @staticmethod
    def _strings(coded: tuple[np.ndarray, list[Any]]) -> pd.Series:
        """The column as the line-by-line loader builds it (shared objects, then inferred)."""
        codes, uniq = coded
        table = np.empty(len(uniq) + 1, dtype=object)
        table[: len(uniq)] = uniq
        table[-1] = None
        return inferred(table[codes])

    def _process(self, col: dict[str, np.ndarray]) -> np.ndarray:
        ints, status = col["i_process"].astype(np.int64, copy=False), col["s_process"]
        if (status == 1).any():
            raise _Unsure("an op without a process")
        is_int = status == 0
        if is_int.all():
            return ints
        if {orjson.loads(t) for _, t in self.texts["process"]} != {NEMESIS}:
            raise _Unsure("a process that is neither an integer nor nemesis")
        out = ints.astype(object)
        out[~is_int] = NEMESIS
        return out

    def _texts(self, k: str) -> list[tuple[int, str]]:
        """(row, JSON text) of every row whose ``k`` is neither null nor a plain integer."""
        if not self.one(f"SELECT count(*) FILTER (WHERE {_q('s_' + k)} = 2) FROM h"):
            return []
        return self.con.execute(
            f"SELECT rowid, {_q('t_' + k)} FROM h WHERE {_q('s_' + k)} = 2 ORDER BY 1"
        ).fetchall()

    def _values(
        self, col: dict[str, np.ndarray], coded: dict[str, tuple[np.ndarray, list[Any]]]
    ) -> np.ndarray:
        """Integers where the text is one; every other value decoded from its own text, the
        pairs of an ``ok`` op in ``pairs_fs`` straight into an int64 array."""
        out = col["i_value"].astype(np.int64, copy=False).astype(object)
        out[col["s_value"] != 0] = None
        tcodes, tuniq = coded["type"]
        fcodes, funiq = coded["f"]
        ok = tuniq.index("ok") if "ok" in tuniq else -2
        pairs_codes = {i for i, f in enumerate(funiq) if f in self.pairs_fs}
        for rid, text in self.texts["value"]:
            if tcodes[rid] != ok or fcodes[rid] not in pairs_codes:
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

    def _extra(self, k: str, col: dict[str, np.ndarray]) -> pd.Series:
        """A workload's own field, as the line-by-line loader infers it."""
        ints, status = col["i_" + k].astype(np.int64, copy=False), col["s_" + k]
        is_int, null = status == 0, status == 1
        if is_int.any() and not (status == 2).any():
            if not null.any():
                return pd.Series(ints, copy=False)
            return pd.Series(np.where(is_int, ints, np.nan), copy=False)
        out = ints.astype(object)
        out[~is_int] = None
        for rid, text in self.texts[k]:
            out[rid] = orjson.loads(text)
        return inferred(out)
