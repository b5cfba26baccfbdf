"""What the report takes from the ops of a history: nothing that is a verdict.

In: the ops DataFrame of a history (docs/contracts.md §1). Out: fault windows
(nemesis start/stop ops paired up), the publish invoke/completion pairs
(latency, throughput), the plots' time span, and the publish ops behind
sample values the checker reported. Which values are lost, and where the
reads held them, comes from the checker's result, never from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from checkers.schema import client_mask
from checkers.stats import paired_ops

NS = 1e9
OP_FIELDS = ("index", "time", "type", "process", "node", "value", "seq", "error")


@dataclass(frozen=True)
class FaultWindow:
    """One fault from its start op to its stop op (seconds since the run started)."""

    kind: str
    start: float
    stop: float
    stopped: bool  # False: no stop op; ``stop`` is then the end of the history
    nodes: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)


def _nodes(value: dict[str, Any]) -> tuple[str, ...]:
    nodes = value.get("nodes") or ()
    return tuple(str(n) for n in nodes) if isinstance(nodes, list | tuple) else (str(nodes),)


def fault_windows(ops: pd.DataFrame) -> list[FaultWindow]:
    """Nemesis start ops paired with their stop ops: the same ``window`` if they name one,
    else the same kind (and the same nodes if the stop names any).

    A nemesis op that is neither a start nor a stop becomes a zero-length
    window; a start without a stop lasts until the last op of the history.
    """
    nem = ops[~client_mask(ops)]
    end = float(ops["time"].max()) / NS if len(ops) else 0.0
    open_: list[tuple[float, str, tuple[str, ...], dict[str, Any]]] = []
    done: list[FaultWindow] = []
    for t, f, value in zip(nem["time"].to_numpy() / NS, nem["f"], nem["value"], strict=True):
        v = value if isinstance(value, dict) else {"value": value}
        if "start" in v:
            rest = {k: x for k, x in v.items() if k not in ("start", "nodes", "began")}
            began = v.get("began")  # when the fault began to act (the op comes once in effect)
            t0 = float(began) / NS if isinstance(began, int | float) else float(t)
            open_.append((t0, str(v["start"]), _nodes(v), rest))
        elif "stop" in v:
            kind, nodes = str(v["stop"]), _nodes(v)
            window = v.get("window")  # the window both ops name, when the nemesis wrote it
            match = [i for i, o in enumerate(open_) if window and o[3].get("window") == window]
            match = match or [
                i for i, o in enumerate(open_) if o[1] == kind and (not nodes or o[2] == nodes)
            ]
            match = match or [i for i, o in enumerate(open_) if o[1] == kind]
            if match:
                t0, _, started_on, rest = open_.pop(match[0])
                done.append(FaultWindow(kind, t0, float(t), True, started_on or nodes, rest))
        else:
            done.append(FaultWindow(str(f), float(t), float(t), True, _nodes(v), v))
    done += [FaultWindow(k, t0, max(end, t0), False, n, r) for t0, k, n, r in open_]
    return sorted(done, key=lambda w: (w.start, w.kind))


def publish_pairs(ops: pd.DataFrame) -> pd.DataFrame:
    """Publish invokes with their completions: ``invoke_s``, ``latency_ms``, ``type``, ``node``."""
    pairs = paired_ops(ops)
    pairs = pairs[pairs["f"].to_numpy() == "publish"]
    return pd.DataFrame(
        {
            "invoke_s": pairs["invoke_time"].to_numpy() / NS,
            "complete_s": pairs["complete_time"].to_numpy() / NS,
            "latency_ms": (pairs["complete_time"] - pairs["invoke_time"]).to_numpy() / 1e6,
            "type": pairs["type"].to_numpy(),
            "node": pairs["node"].to_numpy(),
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
    f = ops["f"].to_numpy(dtype=object)
    rows = np.flatnonzero(f == "publish")
    vals = ops["value"].to_numpy(dtype=object)[rows].astype(np.int64)
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
