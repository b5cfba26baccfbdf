"""The history schema (docs/contracts.md §1) that checkers and the harness share.

A history is one op per line; loaded, it is a :class:`pandas.DataFrame` with
one row per op and the columns :data:`CORE_FIELDS` (plus ``_line``, the
1-based line number in the file, and any extra fields a workload writes).
``type`` is one of :data:`OP_TYPES`; ``process`` is an integer client id or
:data:`NEMESIS`. This module is the bottom layer: ``harness.history`` (the
writer and loader) imports it, every checker may, and it imports nothing of
the project but :mod:`checkers.sets` (numpy alone).

Shared columns: :func:`shared_columns` (``with shared_columns(ops): ...``;
:func:`checkers.compose.check_history` wraps its checkers in it) makes the
helpers below derive each typed view of ``ops`` once for the duration of the
block — :func:`client_mask`, :func:`column`, :func:`equals`,
:func:`factorized`, :func:`by_process`, and whatever a checker keeps with
:func:`shared` — instead of once per checker. The memo holds only that one
DataFrame object and ends with the block, so a frame changed between two
checks is never answered from a stale copy; outside a block every helper
computes afresh. The arrays it hands out are read-only
(``flags.writeable`` False): a checker that writes into one fails loudly.

Seeds: a loader that already holds some of these views as by-products of
parsing (``harness.history``'s typed-column path, ``harness.sidecar``)
hands them in as ``shared_columns(ops, seed)``; :func:`seed_views` says
which keys it may fill and with what, and each seeded view must equal what
the helper computes (``tests/unit/test_view_seeds.py`` holds every loader to
that). A seed is used only while the column it was made from is still the
frame's own (:func:`column_token`): a frame whose column was replaced after
loading is answered by computing.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from checkers.sets import stable_order

OP_TYPES = ("invoke", "ok", "fail", "info")
NEMESIS = "nemesis"
CORE_FIELDS = ("index", "time", "type", "process", "f", "value", "node", "error")
REQUIRED_FIELDS = ("type", "process", "f")
LINE = "_line"
INT64 = np.iinfo(np.int64)


class MalformedHistory(ValueError):
    """A value of the history breaks the contract; ``line`` is the op's 1-based line."""

    def __init__(self, line: int, why: str) -> None:
        super().__init__(f"line {line}: {why}")
        self.line = line
        self.why = why


T = TypeVar("T")
_SHARED: ContextVar[tuple[pd.DataFrame, dict[Hashable, Any]] | None] = ContextVar(
    "shared_columns", default=None
)


@contextmanager
def shared_columns(ops: pd.DataFrame, seed: Mapping[Hashable, Any] | None = None) -> Iterator[None]:
    """Within the block, the helpers of this module derive each view of ``ops`` once;
    ``seed`` (from :func:`seed_views`) holds views the loader already has."""
    memo = {k: _read_only(v) for k, v in usable_seeds(ops, seed or {}).items()}
    token = _SHARED.set((ops, memo))
    try:
        yield
    finally:
        _SHARED.reset(token)


def column_token(ops: pd.DataFrame, name: str) -> tuple[int, int] | None:
    """Which array holds column ``name`` (its data address and length), or None."""
    if name not in ops:
        return None
    arr = ops[name].array
    data = getattr(arr, "_ndarray", None)  # pandas' numpy-backed extension arrays
    data = arr.to_numpy() if data is None else data
    if not isinstance(data, np.ndarray):
        return None
    return data.__array_interface__["data"][0], len(data)


SEEDABLE = ("type", "f")  # factorized seeds: string columns without missing values


def seed_views(
    ops: pd.DataFrame,
    codes: Mapping[str, tuple[np.ndarray, list[Any]]],
    ints: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> dict[Hashable, Any]:
    """The seeds a loader can give :func:`shared_columns` for the frame ``ops`` it made.

    ``codes``: per column of :data:`SEEDABLE`, its values as codes into a list
    of distinct values (any order, -1 never). ``ints``: per column, (int64
    values, True where the row's value is an integer that fits them); rows
    not True are computed as before; ``ints["process"]`` is also taken as the
    client mask, so a loader passes it only after refusing any process but an
    integer or "nemesis" (both of ``harness.history``'s loaders do). Each seed
    records the column it was made from (:func:`column_token`).
    """
    out: dict[Hashable, Any] = {}
    for name, (c, uniq) in codes.items():
        if name not in SEEDABLE or len(c) != len(ops) or (len(c) and c.min() < 0):
            continue
        out[("factorized", name)] = _first_seen(c, uniq)
    for name, (values, ok) in ints.items():
        if len(values) == len(ops) == len(ok):
            out[("int64", name)] = (values, ok)
            if name == "process":
                out["client"] = ok  # the loader refused any process but an int or "nemesis"
    tokens = {k: column_token(ops, _seed_column(k)) for k in out}
    return {"_tokens": tokens} | out


def _seed_column(key: Hashable) -> str:
    return "process" if key == "client" else key[1]  # type: ignore[index]


def usable_seeds(ops: pd.DataFrame, seed: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
    """The seeds whose column is still the one they were made from."""
    tokens = seed.get("_tokens", {})
    return {
        k: v
        for k, v in seed.items()
        if k != "_tokens"
        and tokens.get(k) is not None
        and tokens[k] == column_token(ops, _seed_column(k))
    }


def _first_seen(codes: np.ndarray, uniq: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Codes renumbered in order of first appearance (as :func:`pd.factorize` numbers them)."""
    present = np.flatnonzero(np.bincount(codes, minlength=len(uniq)))
    first = np.array([int(np.argmax(codes == k)) for k in present.tolist()], dtype=np.int64)
    order = present[np.argsort(first, kind="stable")]
    remap = np.full(len(uniq), -1, dtype=np.intp)
    remap[order] = np.arange(len(order))
    values = np.empty(len(order), dtype=object)
    values[:] = [uniq[k] for k in order.tolist()]
    return remap[codes], values


def seeded(ops: pd.DataFrame, key: Hashable) -> Any:
    """The view under ``key`` if a seed or an earlier helper put it there, else None."""
    active = _SHARED.get()
    if active is None or active[0] is not ops:
        return None
    return active[1].get(key)


def _read_only(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        x.flags.writeable = False
    elif isinstance(x, tuple):
        for item in x:
            _read_only(item)
    return x


def _sharing(ops: pd.DataFrame) -> bool:
    active = _SHARED.get()
    return active is not None and active[0] is ops


def shared(ops: pd.DataFrame, key: Hashable, make: Callable[[], T]) -> T:
    """``make()``, computed once per ``key`` while :func:`shared_columns` of ``ops`` is active.

    Arrays in the result (or in a tuple of results) are made read-only.
    Outside such a block (or for another frame) it is ``make()`` every time.
    """
    active = _SHARED.get()
    if active is None or active[0] is not ops:
        return make()
    memo = active[1]
    if key not in memo:
        memo[key] = _read_only(make())
    return memo[key]


def client_mask(ops: pd.DataFrame) -> np.ndarray:
    """True for client ops (every op whose process is not "nemesis")."""
    return shared(ops, "client", lambda: _client_mask(ops))


def _client_mask(ops: pd.DataFrame) -> np.ndarray:
    procs = ops["process"]
    if pd.api.types.is_integer_dtype(procs.dtype):
        return np.ones(len(ops), dtype=bool)
    return procs.to_numpy(dtype=object) != NEMESIS


def column(ops: pd.DataFrame, name: str) -> np.ndarray:
    """A column as a numpy array (int64 stays int64, anything else objects; all None if absent)."""
    return shared(ops, ("column", name), lambda: _column(ops, name))


def _column(ops: pd.DataFrame, name: str) -> np.ndarray:
    if name not in ops:
        return np.full(len(ops), None, dtype=object)
    col = ops[name]
    return col.to_numpy() if col.dtype == np.int64 else col.to_numpy(dtype=object)


def column_at(ops: pd.DataFrame, name: str, rows: np.ndarray) -> np.ndarray:
    """``column(ops, name)[rows]``, without a column of None for all ops when it is absent."""
    return column(ops, name)[rows] if name in ops else np.full(len(rows), None, dtype=object)


def factorized(ops: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(column(ops, name), use_na_sentinel=False)``: codes in order of first
    appearance and the distinct values (objects).

    A string column without missing values is factorized as it is stored
    (several times faster than its objects, and the same codes).
    """
    return shared(ops, ("factorized", name), lambda: _factorized(ops, name))


def _factorized(ops: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    if name in ops and isinstance(ops[name].dtype, pd.StringDtype):
        codes, uniques = pd.factorize(ops[name], use_na_sentinel=False)
        if not uniques.isna().any():
            return codes, uniques.to_numpy(dtype=object)
    codes, uniques = pd.factorize(column(ops, name), use_na_sentinel=False)
    return codes, np.asarray(uniques, dtype=object)


def _codes(ops: pd.DataFrame, name: str) -> np.ndarray | None:
    """The codes of :func:`factorized` when comparing them is comparing the values: a
    column of hashable values without missing ones (NaN != NaN); else None. Only while
    the codes are shared: for one comparison, comparing the objects is cheaper."""
    if not _sharing(ops) or name not in ops or ops[name].dtype == np.int64:
        return None
    try:
        codes, uniques = factorized(ops, name)
    except TypeError:  # unhashable values (a malformed history): compare the objects
        return None
    return None if pd.isna(uniques).any() else codes


def equals(ops: pd.DataFrame, name: str, value: str) -> np.ndarray:
    """``column(ops, name) == value`` for a string ``value``, as a bool array."""
    return shared(ops, ("equals", name, value), lambda: _equals(ops, name, value))


def _equals(ops: pd.DataFrame, name: str, value: str) -> np.ndarray:
    codes = _codes(ops, name)
    if codes is None:
        return np.asarray(column(ops, name) == value, dtype=bool)
    hit = np.flatnonzero(factorized(ops, name)[1] == value)
    return codes == hit[0] if len(hit) == 1 else np.isin(codes, hit)


def one_of(ops: pd.DataFrame, name: str, values: tuple[str, ...]) -> np.ndarray:
    """``np.isin(column(ops, name), values)`` for string ``values``, as a bool array."""
    codes = _codes(ops, name)
    if codes is None:
        return np.isin(column(ops, name), values)
    return np.isin(factorized(ops, name)[1], values)[codes]


def same_as_previous(ops: pd.DataFrame, name: str, rows: np.ndarray) -> np.ndarray:
    """For ``rows[1:]``: is column ``name`` equal (``==``) at each row and the one before it?"""
    codes = _codes(ops, name)
    at = column(ops, name)[rows] if codes is None else codes[rows]
    return np.asarray(at[1:] == at[:-1], dtype=bool)


def by_process(ops: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(rows, processes): the client rows grouped by process (a stable sort, so each
    process's ops stay in history order) and their process as int64."""
    return shared(ops, "by_process", lambda: _by_process(ops))


def _by_process(ops: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    rows = np.flatnonzero(client_mask(ops))
    view = seeded(ops, ("int64", "process"))
    if view is not None and view[1][rows].all():
        procs = view[0][rows]
    else:
        procs = column(ops, "process")[rows].astype(np.int64)
    order = stable_order(procs)
    return rows[order], procs[order]


def line_numbers(ops: pd.DataFrame) -> np.ndarray:
    """The ``_line`` of each op; a table built without the loader counts from ``index`` + 1."""
    if LINE in ops:
        return ops[LINE].to_numpy()
    if "index" in ops and ops["index"].dtype == np.int64:
        return ops["index"].to_numpy() + 1
    return np.arange(1, len(ops) + 1, dtype=np.int64)


def int64_at(ops: pd.DataFrame, rows: np.ndarray, name: str) -> np.ndarray:
    """Column ``name`` at ``rows`` as int64; :class:`MalformedHistory` at the first other value.

    Only integers that fit in 64 bits pass: a float, a bool, a string, a list
    or a dict is refused (``astype`` would truncate some and crash on others).
    """
    view = seeded(ops, ("int64", name))
    if view is not None and view[1][rows].all():
        return view[0][rows]
    col = column(ops, name)[rows]
    if col.dtype == np.int64:
        return col
    if set(map(type, col)) <= {int}:
        try:
            return col.astype(np.int64)
        except OverflowError:
            pass
    for i, v in enumerate(col.tolist()):
        if type(v) is not int or not INT64.min <= v <= INT64.max:
            f = column(ops, "f")[rows[i]]
            line = int(line_numbers(ops)[rows[i]])
            raise MalformedHistory(line, f"{f} {name} {_short(v)} is not a 64-bit integer")
    raise AssertionError("unreachable: every value was a 64-bit integer")


def _short(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."
