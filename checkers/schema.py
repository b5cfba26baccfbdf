"""The history schema (docs/contracts.md §1) that checkers and the harness share.

A history is one op per line; loaded, it is a :class:`pandas.DataFrame` with
one row per op and the columns :data:`CORE_FIELDS` (plus ``_line``, the
1-based line number in the file, and any extra fields a workload writes).
``type`` is one of :data:`OP_TYPES`; ``process`` is an integer client id or
:data:`NEMESIS`. This module is the bottom layer: ``harness.history`` (the
writer and loader) imports it, every checker may, and it imports nothing of
the project.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def client_mask(ops: pd.DataFrame) -> np.ndarray:
    """True for client ops (every op whose process is not "nemesis")."""
    procs = ops["process"]
    if pd.api.types.is_integer_dtype(procs.dtype):
        return np.ones(len(ops), dtype=bool)
    return procs.to_numpy(dtype=object) != NEMESIS


def column(ops: pd.DataFrame, name: str) -> np.ndarray:
    """A column as a numpy array (int64 stays int64, anything else objects; all None if absent)."""
    if name not in ops:
        return np.full(len(ops), None, dtype=object)
    col = ops[name]
    return col.to_numpy() if col.dtype == np.int64 else col.to_numpy(dtype=object)


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
