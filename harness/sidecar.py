"""The columnar sidecar: a loaded history kept beside ``history.jsonl``, used only if it matches.

In: a :class:`~harness.history.LoadedHistory` and the ``history.jsonl`` it
was loaded from (:func:`write`); later the same ``history.jsonl`` and the
workload's ``pairs_fs`` (:func:`read`). Out: ``history.columns`` next to
the history, and from it the very same ops table the loader builds, in a
fraction of the time (a million-publish history: ~0.5 s instead of ~8 s).

The JSONL stays the contract (docs/contracts.md §1); the sidecar is a cache.
:func:`read` trusts it only when its record of the history — byte size and
SHA-256 of the whole file, the ``pairs_fs`` it was loaded with, and this
module's :data:`FORMAT` — matches the file as it is now; anything else (an
edited, truncated or regrown history, a sidecar from another format, a
broken or unreadable sidecar) returns None and the caller parses the JSONL.
The file is a JSON header (what every column is, and where each of its
arrays lies) followed by the arrays' raw bytes: numbers of a few plain
dtypes and UTF-8 JSON only, so a result folder from elsewhere can never run
code, and reading it is a few large ``read(2)`` calls (no per-member CRC, no
decompression).

How columns are kept (one array per part, ``<column index>.<part>``):
numeric columns as they are; string columns as codes into a JSON list of
the distinct strings; object columns (``process``, ``value``, extra fields)
as a tag per row — null, 64-bit integer, string, a pairs array (the final
reads' int64 ``(n, 2)`` values) or any other JSON value — with the integers
in one int64 array, the strings as codes, the pairs concatenated with their
offsets, and the rest as one JSON list.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from checkers.schema import SEEDABLE, seed_views
from harness.history import Beside, LoadedHistory

__all__ = ["FORMAT", "MIN_BYTES", "SUFFIX", "partial_for", "path_for", "read", "write"]

log = logging.getLogger(__name__)

SUFFIX = ".columns"  # history.jsonl -> history.columns
FORMAT = 1  # bump when the table the loader builds, or this encoding, changes
MIN_BYTES = 4 << 20  # smaller histories load in a blink: no sidecar for them

# object-column tags
_NULL, _INT, _STR, _PAIRS, _JSON = range(5)
_TAGS = {type(None): _NULL, int: _INT, str: _STR, np.ndarray: _PAIRS}
_MAGIC = b"NCHAOS-COLUMNS\n"
_ALIGN = 64
_DTYPES = frozenset({"bool", "int8", "int32", "int64", "uint8", "float64"})


def path_for(history: Path) -> Path:
    """Where the sidecar of ``history`` lives: beside it (``X.jsonl``: ``X.columns``)."""
    return history.with_name(history.stem + SUFFIX)


def _digest(path: Path) -> tuple[int, str]:
    """(size, SHA-256 hex) of a file's bytes, hashed through a map (the GIL is released)."""
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if not size:
            return 0, hashlib.sha256(b"").hexdigest()
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return size, hashlib.sha256(buf).hexdigest()


# ---------------------------------------------------------------- encoding


def _strings(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Codes (int32, -1 for missing) and the distinct strings of a string-or-missing array."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.int32), [str(u) for u in uniques]


def _encode_object(col: np.ndarray, parts: dict[str, np.ndarray]) -> dict[str, Any]:
    """Tag every value of an object column; fill ``parts``; return the column's meta."""
    kind_codes, kinds = pd.factorize(np.fromiter(map(type, col), dtype=object, count=len(col)))
    tag_of = np.array([_TAGS.get(k, _JSON) for k in kinds] + [_JSON], dtype=np.int8)
    tags = tag_of[kind_codes]
    is_int, is_str, is_arr = tags == _INT, tags == _STR, tags == _PAIRS
    tags[is_int | is_str | is_arr] = _JSON  # until each kind is kept below
    ints = np.zeros(len(col), dtype=np.int64)
    if is_int.any():
        try:
            ints[is_int] = col[is_int].astype(np.int64)
            tags[is_int] = _INT
        except OverflowError:  # beyond 64 bits: kept as JSON (and orjson refuses those)
            pass
    meta: dict[str, Any] = {"kind": "object"}
    if is_str.any():
        codes, meta["strings"] = _strings(col[is_str])
        ints[is_str] = codes
        tags[is_str] = _STR
    arrays = [a for a in col[is_arr] if a.dtype == np.int64 and a.ndim == 2 and a.shape[1] == 2]
    if arrays and len(arrays) == int(is_arr.sum()):
        ints[is_arr] = np.arange(len(arrays))
        tags[is_arr] = _PAIRS
        parts["pairs"] = np.concatenate(arrays)
        parts["offsets"] = np.cumsum([0, *(len(a) for a in arrays)], dtype=np.int64)
    rest = np.flatnonzero(tags == _JSON)
    if len(rest):
        ints[rest] = np.arange(len(rest))
        parts["json"] = np.frombuffer(orjson.dumps(col[rest].tolist()), dtype=np.uint8)
    parts["tags"], parts["ints"] = tags, ints
    return meta


def _encode(series: pd.Series, parts: dict[str, np.ndarray]) -> dict[str, Any]:
    """One column into ``parts``; its meta (name, dtype and how it was kept)."""
    dtype = series.dtype
    meta: dict[str, Any] = {"name": series.name, "dtype": str(dtype)}
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        parts["data"] = series.to_numpy()
        return meta | {"kind": "numeric"}
    if isinstance(dtype, pd.StringDtype):
        codes, strings = _strings(series.to_numpy(dtype=object))
        parts["codes"] = codes
        na = "nan" if dtype.na_value is np.nan else "NA"
        return meta | {"kind": "string", "strings": strings, "storage": dtype.storage, "na": na}
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        return meta | _encode_object(series.to_numpy(), parts)
    raise TypeError(f"column {series.name!r}: dtype {dtype} has no sidecar encoding")


def partial_for(history: Path) -> Path:
    """Where :func:`write` writes the sidecar before it renames it into place."""
    target = path_for(history)
    return target.with_name(f".{target.name}.tmp")


def write(loaded: LoadedHistory, history: Path, pairs_fs: frozenset[str]) -> Path | None:
    """Write the sidecar of ``history`` (as ``loaded`` from it); its path, or None if skipped.

    Skipped for histories under :data:`MIN_BYTES`. Never raises for what it
    cannot do (a full disk, a value with no encoding): the JSONL is the
    record, so a missing sidecar only costs the next load its time.
    """
    target, tmp = path_for(history), partial_for(history)
    try:
        size, sha = _digest(history)
        if size < MIN_BYTES:
            return None
        members: dict[str, np.ndarray] = {}
        columns = []
        for i, name in enumerate(loaded.ops.columns):
            parts: dict[str, np.ndarray] = {}
            columns.append(_encode(loaded.ops[name], parts))
            members.update({f"{i}.{k}": v for k, v in parts.items()})
        meta = {
            "format": FORMAT,
            "size": size,
            "sha256": sha,
            "pairs_fs": sorted(pairs_fs),
            "rows": len(loaded.ops),
            "columns": columns,
            "warnings": loaded.warnings,
            "cut_off": loaded.cut_off,
        }
        _dump(tmp, meta, members)
        os.replace(tmp, target)
        return target
    except (OSError, TypeError, ValueError, orjson.JSONEncodeError) as e:
        log.info("no columnar sidecar for %s: %s", history, e)
        tmp.unlink(missing_ok=True)
        return None


def _dump(path: Path, meta: dict[str, Any], members: dict[str, np.ndarray]) -> None:
    """The header (``meta`` plus each array's dtype, shape and offset), then the arrays."""
    layout: dict[str, list[Any]] = {}
    offset = 0
    for name, arr in members.items():
        if str(arr.dtype) not in _DTYPES:
            raise TypeError(f"{name}: dtype {arr.dtype} has no sidecar encoding")
        layout[name] = [str(arr.dtype), list(arr.shape), offset]
        offset += -(-arr.nbytes // _ALIGN) * _ALIGN
    header = orjson.dumps(meta | {"layout": layout})
    with path.open("wb") as fh:
        fh.write(_MAGIC + len(header).to_bytes(8, "little") + header)
        start = -(-fh.tell() // _ALIGN) * _ALIGN
        for name, arr in members.items():
            fh.seek(start + layout[name][2])
            fh.write(np.ascontiguousarray(arr).data)
        fh.truncate(start + offset)  # the whole layout, even where the last arrays are empty


def _load(fh: Any, size: int) -> tuple[dict[str, Any], Any]:
    """The header of an open sidecar, and a function reading one of its arrays by name."""
    if fh.read(len(_MAGIC)) != _MAGIC:
        raise ValueError("not a nats-chaos columns file")
    length = int.from_bytes(fh.read(8), "little")
    meta = orjson.loads(fh.read(length))
    if type(meta) is not dict:
        raise ValueError("its header is not a JSON object")
    start = -(-fh.tell() // _ALIGN) * _ALIGN

    def part(name: str) -> np.ndarray:
        dtype, shape, offset = meta["layout"][name]
        if dtype not in _DTYPES:
            raise ValueError(f"{name}: dtype {dtype!r}")
        count = int(np.prod(shape, dtype=np.int64))
        if offset < 0 or start + offset + count * np.dtype(dtype).itemsize > size:
            raise ValueError(f"{name}: beyond the end of the file")
        fh.seek(start + offset)
        arr = np.fromfile(fh, dtype=dtype, count=count)
        if len(arr) != count:
            raise ValueError(f"{name}: cut short")
        return arr.reshape(shape)

    return meta, part


# ---------------------------------------------------------------- decoding


def _decode_object(meta: dict[str, Any], part: Any, n: int) -> np.ndarray:
    tags, ints = part("tags"), part("ints")
    out = np.full(n, None, dtype=object)
    at = tags == _INT
    out[at] = ints[at]
    at = tags == _STR
    if at.any():
        out[at] = np.array(meta["strings"], dtype=object)[ints[at]]
    at = np.flatnonzero(tags == _PAIRS)
    if len(at):
        pairs, offsets = part("pairs"), part("offsets")
        for row, k in zip(at.tolist(), ints[at].tolist(), strict=True):
            out[row] = pairs[offsets[k] : offsets[k + 1]]
    at = np.flatnonzero(tags == _JSON)
    if len(at):
        values = orjson.loads(part("json").tobytes())
        out[at] = np.fromiter((values[k] for k in ints[at].tolist()), dtype=object, count=len(at))
    return out


def _decode(meta: dict[str, Any], part: Any, n: int) -> Any:
    kind = meta["kind"]
    if kind == "numeric":
        data = part("data")
        if str(data.dtype) != meta["dtype"] or len(data) != n:
            raise ValueError(f"column {meta['name']}: {data.dtype}[{len(data)}]")
        return data
    if kind == "string":
        na = {"nan": np.nan, "NA": pd.NA}[meta["na"]]
        dtype = pd.StringDtype(meta["storage"], na_value=na)
        table = pd.array([*meta["strings"], na], dtype=dtype)  # code -1 takes the last: missing
        return pd.Series(table.take(part("codes")), copy=False)
    if kind == "object":
        return _decode_object(meta, part, n)
    raise ValueError(f"column {meta.get('name')}: unknown kind {kind!r}")


def read(history: Path, pairs_fs: frozenset[str]) -> LoadedHistory | None:
    """The history's table from its sidecar, or None when there is none that matches it."""
    target = path_for(history)
    try:
        st = history.stat()
        if not target.is_file() or st.st_size < MIN_BYTES:
            return None
        with target.open("rb") as fh:
            meta, read_part = _load(fh, os.fstat(fh.fileno()).st_size)
            parts: dict[str, np.ndarray] = {}

            def part(name: str) -> np.ndarray:  # each array read once: the views share them
                if name not in parts:
                    parts[name] = read_part(name)
                return parts[name]

            if (
                meta.get("format") != FORMAT
                or meta.get("size") != st.st_size
                or meta.get("pairs_fs") != sorted(pairs_fs)
            ):
                return None
            digest = Beside(lambda: _digest(history))  # 261 MiB: ~0.3 s, beside the reads
            n = meta["rows"]
            cols, codes, ints = {}, {}, {}
            for i, col in enumerate(meta["columns"]):
                name = col["name"]
                cols[name] = _decode(col, lambda k, i=i: part(f"{i}.{k}"), n)
                if col["kind"] == "string" and name in SEEDABLE:
                    codes[name] = (part(f"{i}.codes"), col["strings"])
                elif col["kind"] == "object":
                    tags = part(f"{i}.tags")
                    ints[name] = (part(f"{i}.ints"), tags == _INT)
        if digest.result() != (st.st_size, meta["sha256"]):  # an OSError: not used, below
            return None
        ops = pd.DataFrame(cols, copy=False)
        cut_off = bool(meta["cut_off"])
        notes = list(meta["warnings"])
        views = seed_views(ops, codes, ints)
        return LoadedHistory(
            ops=ops, warnings=notes, cut_off=cut_off, path=history, source="sidecar", views=views
        )
    except (OSError, KeyError, TypeError, ValueError, IndexError) as e:
        log.info("columnar sidecar %s not used: %s", target, e)
        return None
