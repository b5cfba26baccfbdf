"""The availability checker: how long writes were refused, around each fault and overall.

In (composed by name as ``availability``): the ops DataFrame of a history
(docs/contracts.md §1) and a context whose ``writes`` names the client ops
that are writes (the workload's ``writes``: ``publish``, ``incr``,
``batch``, ``cas``, the KV ``put``/``create``/``update``/``delete``;
default ``publish``) — an ``ok`` completion of one is an acknowledged
write; fault windows come from the nemesis ops
(:func:`checkers.windows.fault_windows`), the recovery wait and its
step-downs from the ``{"settle": …}`` ops the runner and the workload write.

Out: ``valid`` (always True: availability is measured, not judged) and

- ``longest_gap``: the longest time with no acknowledged write, between the
  first write's invoke and the last write's completion: ``{"seconds",
  "from_s", "to_s"}`` (from the last ack before it, or the first invoke);
- ``faults``: per injected fault, in start order: ``kind``, ``nodes``,
  ``start_s``, ``stop_s``, ``leaders`` (the stream and meta leader just
  before it started, as the nemesis recorded them; None in older
  histories), ``acked`` (writes acknowledged during it),
  ``first_ack_after_s`` (seconds from its end to the first acknowledged
  write; None if none came), ``unavailable_s`` (the longest gap between
  acknowledged writes that overlaps the window) and ``failures``: every
  ``fail``/``info`` write that completed from its start until the first
  ack after its end, counted by error (``{"no-responders": 6384, …}``);
- ``failures_outside``: the same count over every other failed write;
- ``recovery``: the recovery wait as the runner recorded it
  (``converged``, ``seconds``, ``bound``, ``nudges``; None if not recorded)
  and ``step_downs``: every step-down the harness made to settle the
  cluster (``time_s``, ``preferred``, ``success``, ``error``).

All of it is vectorised over the write completions; the loops run over
fault windows and distinct error strings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from checkers.schema import client_mask, column, equals, one_of
from checkers.windows import FaultWindow, fault_windows, faults_only, recovery_record

NS = 1_000_000_000
WRITES = ("publish",)  # without a ``writes`` in the context (a queue history)
REASON_CHARS = 80


def _s(ns: float | int) -> float:
    return round(float(ns) / NS, 3)


def longest_gap(acks: np.ndarray, lo: int, hi: int) -> dict[str, Any]:
    """The longest stretch of ``[lo, hi]`` (ns) without a time in the sorted ``acks``."""
    points = np.concatenate([[lo], acks[(acks > lo) & (acks < hi)], [hi]])
    gaps = np.diff(points)
    i = int(np.argmax(gaps)) if len(gaps) else 0
    if not len(gaps):
        return {"seconds": 0.0, "from_s": _s(lo), "to_s": _s(hi)}
    return {"seconds": _s(gaps[i]), "from_s": _s(points[i]), "to_s": _s(points[i + 1])}


def _reasons(errors: np.ndarray) -> dict[str, int]:
    """Errors counted by text (a missing error is ``"no error given"``), most frequent first."""
    text = pd.Series(errors, dtype=object).fillna("no error given").astype(str)
    counts = text.str.slice(0, REASON_CHARS).value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def _fault(
    w: FaultWindow, acks: np.ndarray, fail_t: np.ndarray, fail_e: np.ndarray, end: int
) -> tuple[dict[str, Any], np.ndarray]:
    """One fault window's figures, and the mask of failed writes it accounts for."""
    start, stop = int(w.start * NS), int(w.stop * NS)
    after = acks[acks >= stop]
    back = int(after[0]) if len(after) else end
    before = acks[acks < start]
    gap_from = int(before[-1]) if len(before) else start
    mine = (fail_t >= start) & (fail_t <= back)
    entry = {
        "kind": w.kind,
        "nodes": list(w.nodes),
        "start_s": round(w.start, 3),
        "stop_s": round(w.stop, 3),
        "stopped": w.stopped,
        "leaders": w.detail.get("leaders"),
        "acked": int(((acks >= start) & (acks <= stop)).sum()),
        "first_ack_after_s": _s(after[0] - stop) if len(after) else None,
        "unavailable_s": longest_gap(acks, gap_from, back)["seconds"],
        "failures": _reasons(fail_e[mine]),
    }
    return entry, mine


def step_downs(ops: pd.DataFrame) -> list[dict[str, Any]]:
    """Every ``{"settle": "step-down", …}`` nemesis op: when, for whom, and what came of it."""
    nem = np.flatnonzero(~client_mask(ops))
    out = []
    for t, v in zip(column(ops, "time")[nem], column(ops, "value")[nem], strict=True):
        if isinstance(v, dict) and v.get("settle") == "step-down":
            got = v.get("reply")
            reply: dict[str, Any] = got if isinstance(got, dict) else {}
            err = reply.get("error")
            out.append(
                {
                    "time_s": _s(t),
                    "preferred": v.get("preferred"),
                    "success": reply.get("success") is True,
                    "error": err.get("description") if isinstance(err, dict) else err,
                }
            )
    return out


def check_availability(ops: pd.DataFrame, context: dict[str, Any]) -> dict[str, Any]:
    """Availability figures of a history; see the module docstring."""
    writes = tuple(context.get("writes") or WRITES)
    rows = np.flatnonzero(client_mask(ops) & one_of(ops, "f", writes))
    times = ops["time"].to_numpy()[rows].astype(np.int64)
    acks = np.sort(times[equals(ops, "type", "ok")[rows]])
    failed = equals(ops, "type", "fail")[rows] | equals(ops, "type", "info")[rows]
    fail_t, fail_e = times[failed], column(ops, "error")[rows[failed]]
    invoked = equals(ops, "type", "invoke")[rows]
    inv, done = times[invoked], times[~invoked]
    recovery = recovery_record(ops)
    result: dict[str, Any] = {
        "valid": True,
        "writes": list(writes),
        "acknowledged": len(acks),
        "failed": int(failed.sum()),
        "recovery": (
            {k: recovery.get(k) for k in ("converged", "seconds", "bound", "nudges")}
            if recovery
            else None
        ),
        "step_downs": step_downs(ops),
    }
    if not len(inv):
        return result | {"longest_gap": None, "faults": [], "failures_outside": {}}
    lo, hi = int(inv.min()), int(max(done.max() if len(done) else inv.max(), inv.max()))
    accounted = np.zeros(len(fail_t), dtype=bool)
    faults = []
    for w in faults_only(fault_windows(ops)):
        entry, mine = _fault(w, acks, fail_t, fail_e, hi)
        faults.append(entry)
        accounted |= mine
    return result | {
        "longest_gap": longest_gap(acks, lo, hi),
        "faults": faults,
        "failures_outside": _reasons(fail_e[~accounted]),
    }
