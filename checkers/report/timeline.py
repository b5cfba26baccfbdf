"""What the report takes from the ops of a history: nothing that is a verdict.

In: the ops DataFrame of a history (docs/contracts.md §1). Out: fault windows
(nemesis start/stop ops paired up), the publish invoke/completion pairs
(latency, throughput), the plots' time span, and the publish ops behind
sample values the checker reported. Which values are lost, and where the
reads held them, comes from the checker's result, never from here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from checkers.schema import column, column_at, equals
from checkers.stats import pair_rows
from checkers.windows import FaultWindow, fault_windows

__all__ = ["FaultWindow", "fault_windows", "plot_span", "publish_ops", "publish_pairs"]

NS = 1e9
OP_FIELDS = ("index", "time", "type", "process", "node", "value", "seq", "error")


def publish_pairs(ops: pd.DataFrame) -> pd.DataFrame:
    """Publish invokes with their completions: ``invoke_s``, ``latency_ms``, ``type``, ``node``.

    The pairs of :func:`checkers.stats.paired_ops`, in its order, from its rows
    (:func:`~checkers.stats.pair_rows`): only the columns the plots draw are built.
    """
    invoke, complete, _ = pair_rows(ops)
    publish = equals(ops, "f", "publish")[invoke]
    invoke, complete = invoke[publish], complete[publish]
    times = column(ops, "time")
    return pd.DataFrame(
        {
            "invoke_s": times[invoke] / NS,
            "complete_s": times[complete] / NS,
            "latency_ms": (times[complete] - times[invoke]) / 1e6,
            "type": column_at(ops, "type", complete),
            "node": column_at(ops, "node", invoke),
        }
    )


def _plain(v: Any) -> Any:
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, np.integer | np.floating):
        return v.item()
    return v


def publish_ops(ops: pd.DataFrame, values: list[int]) -> dict[int, list[dict[str, Any]]]:
    """For each of ``values``: its publish ops (invoke and completion) as plain dicts."""
    if not values:
        return {}
    rows = np.flatnonzero(equals(ops, "f", "publish"))
    vals = column_at(ops, "value", rows).astype(np.int64)
    hit = rows[np.isin(vals, np.asarray(values, dtype=np.int64))]
    out: dict[int, list[dict[str, Any]]] = {int(v): [] for v in values}
    cols = [c for c in OP_FIELDS if c in ops]
    for rec in ops.iloc[hit][cols].to_dict("records"):
        op = {k: _plain(v) for k, v in rec.items()}
        op["time_s"] = op.pop("time") / NS
        out.setdefault(int(op["value"]), []).append(op)
    return out


def plot_span(pairs: pd.DataFrame, windows: list[FaultWindow]) -> tuple[float, float]:
    """The time range (s) the plots show: the publishing, and faults that overlap it."""
    if len(pairs):
        lo, hi = float(pairs["invoke_s"].min()), float(pairs["complete_s"].max())
    elif windows:
        lo, hi = windows[0].start, max(w.stop for w in windows)
    else:
        return 0.0, 1.0
    lo = min([lo, *(w.start for w in windows if w.start < hi)])
    if hi - lo < 1e-6:  # one instant: give the axis some width
        return max(0.0, lo - 0.5), lo + 0.5
    return max(0.0, lo - 0.02 * (hi - lo)), hi + 0.02 * (hi - lo)
