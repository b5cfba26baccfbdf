"""The well-formedness checker: does the history follow its own contract (docs/contracts.md §1)?

In: the ops DataFrame of any history (:mod:`checkers.schema`; ``_line`` is
used for line numbers when present) and a context; ``context["cut_off"]``
True says the history was cut short (an interrupted or crashed run), so
invokes still in flight at the end are expected. Out::

    {"valid": True | "unknown", "anomalies": [],
     "op_count": int,
     "counts": {rule: int, ...},          # every rule, 0 when it holds
     "lines": {rule: [line, ...]},        # the first LINES line numbers of each broken rule
     "warnings": {rule: {"count", "lines"}},  # missing completions of a cut-off history
     "summary": {"headline": str}}

The rules, each counted once per op that breaks it:

- ``completion-without-invoke``: an ok/fail/info of a process with no op in flight;
- ``invoke-in-flight``: an invoke while the same process has an op in flight;
- ``f-mismatch``: a completion whose ``f`` differs from its invoke's;
- ``missing-completion``: an invoke never completed (a warning when cut off);
- ``process-reused-after-info``: any op of a process after its ``info`` completion;
- ``time-decreasing``: an op whose ``time`` is before the previous op's;
- ``index-not-increasing``: an op whose ``index`` is not above the previous op's;
- ``nemesis-not-info``: a nemesis op whose ``type`` is not ``info``.

A broken rule is no anomaly of the system under test but a history the
other checkers cannot be trusted on: the verdict is ``"unknown"``, never
False. Everything is vectorised: one stable sort by process, then
comparisons of neighbours, so a million ops check in a fraction of a second.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from checkers.schema import by_process, client_mask, equals, line_numbers, same_as_previous

LINES = 5
RULES: dict[str, str] = {  # rule -> what one op that breaks it is
    "completion-without-invoke": "completion without an invoke in flight",
    "invoke-in-flight": "invoke while the process had an op in flight",
    "f-mismatch": "completion whose f differs from its invoke's",
    "missing-completion": "invoke without a completion",
    "process-reused-after-info": "op of a process after its info completion",
    "time-decreasing": "op whose time goes backwards",
    "index-not-increasing": "op whose index does not increase",
    "nemesis-not-info": "nemesis op whose type is not info",
}


def _ints(ops: pd.DataFrame, name: str) -> np.ndarray | None:
    """An int64 column, or None when it is absent or not integers (nothing to compare)."""
    if name not in ops:
        return None
    try:
        return ops[name].to_numpy(dtype=np.int64)
    except (TypeError, ValueError):
        return None


def _order_rules(ops: pd.DataFrame) -> dict[str, np.ndarray]:
    """Row masks of the rules about file order: time, index, nemesis op types."""
    n = len(ops)
    out: dict[str, np.ndarray] = {}
    for name, rule, strict in (
        ("time", "time-decreasing", False),
        ("index", "index-not-increasing", True),
    ):
        v = _ints(ops, name)
        bad = np.zeros(n, dtype=bool)
        if v is not None and n > 1:
            bad[1:] = (v[1:] <= v[:-1]) if strict else (v[1:] < v[:-1])
        out[rule] = bad
    out["nemesis-not-info"] = ~client_mask(ops) & ~equals(ops, "type", "info")
    return out


def _process_rules(ops: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(rows, masks over those rows) of the rules about each process's sequence of ops.

    ``rows`` are the client rows grouped by process (history order within
    each process); a mask marks the op that breaks the rule.
    """
    rows, procs = by_process(ops)  # a stable sort: each process's ops stay in order
    m = len(rows)
    is_inv = equals(ops, "type", "invoke")[rows]
    is_info = equals(ops, "type", "info")[rows]
    same = np.zeros(m, dtype=bool)  # the previous row belongs to the same process
    if m > 1:
        same[1:] = procs[1:] == procs[:-1]
    prev_inv = np.zeros(m, dtype=bool)
    f_differs = np.zeros(m, dtype=bool)
    if m > 1:
        prev_inv[1:] = is_inv[:-1] & same[1:]
        f_differs[1:] = ~same_as_previous(ops, "f", rows)
    # infos before each row within its process: a running count, minus the count at its start
    infos_before = np.cumsum(is_info) - is_info
    start = np.maximum.accumulate(np.where(same, 0, np.arange(m)))
    after_info = infos_before - infos_before[start] > 0 if m else same
    last = np.ones(m, dtype=bool)  # the last op of its process
    last[:-1] = ~same[1:]
    return rows, {
        "completion-without-invoke": ~is_inv & ~prev_inv,
        "invoke-in-flight": is_inv & prev_inv,
        "f-mismatch": ~is_inv & prev_inv & f_differs,
        "missing-completion": is_inv & last,
        "process-reused-after-info": after_info,
    }


def _first_lines(lines: np.ndarray) -> list[int]:
    return np.sort(lines)[:LINES].tolist()


def _headline(counts: dict[str, int], lines: dict[str, list[int]], n: int) -> str:
    broken = [r for r in RULES if counts[r]]
    if not broken:
        return f"the history is well-formed ({n:,} ops)"
    parts = []
    for r in broken:
        shown = ", ".join(map(str, lines[r])) + (", …" if counts[r] > len(lines[r]) else "")
        lines_word = "lines" if counts[r] > 1 else "line"
        parts.append(f"{RULES[r]} ×{counts[r]:,} ({lines_word} {shown})")
    return "the history is not well-formed: " + "; ".join(parts)


def check_wellformed(ops: pd.DataFrame, context: dict[str, Any]) -> dict[str, Any]:
    """Check ``ops`` against the history contract; see the module docstring."""
    line = line_numbers(ops)
    broken = {k: line[mask] for k, mask in _order_rules(ops).items()}  # rule -> line numbers
    rows, per_proc = _process_rules(ops)
    broken |= {k: line[rows[mask]] for k, mask in per_proc.items()}
    warnings: dict[str, dict[str, Any]] = {}
    if context.get("cut_off"):
        cut = broken["missing-completion"]
        broken["missing-completion"] = cut[:0]
        if len(cut):
            warnings["missing-completion"] = {"count": len(cut), "lines": _first_lines(cut)}
    counts = {r: len(broken[r]) for r in RULES}
    lines = {r: _first_lines(broken[r]) for r in RULES if counts[r]}
    return {
        "valid": "unknown" if lines else True,
        "anomalies": [],
        "op_count": len(ops),
        "counts": counts,
        "lines": lines,
        "warnings": warnings,
        "summary": {"headline": _headline(counts, lines, len(ops))},
    }
