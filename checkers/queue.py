"""The queue checker: were acknowledged publishes kept, and do the replicas agree?

In: the ops DataFrame of a queue-workload history (DESIGN §3.1, as returned by
:func:`harness.history.load_history`) and a context with ``nodes`` (every
cluster node). Publishes are invoke/completion pairs whose ``value`` is a
unique integer; final ``read`` completions carry, per node, the stream as
``[stream_seq, value]`` pairs (a list, or an int64 array of shape (n, 2)).

Out: a result dict (DESIGN §3.2). With A = attempted, K = acknowledged and
R = read on any node: lost = K − R, unexpected = R − A, recovered =
R ∩ (A − K), failed = definitely failed publishes not read, unknown =
A − K − R − failed. A publish that definitely failed yet was read is
"failed-but-read" (an anomaly: either the server or the harness's error
mapping is wrong). A value at two stream sequences on one node is
duplicated. Divergence is a stream sequence holding different values on
two nodes, or a node missing acknowledged values that another node has.
``valid`` is False for any of these, "unknown" when no node could be read,
else True. Everything is set algebra over sorted numpy arrays; the only
Python loops are over nodes and read ops, never over publishes or values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

SAMPLE = 20
EXAMPLES = 5
NEMESIS = "nemesis"


@dataclass
class NodeRead:
    """What the final reads found on one node."""

    status: str = "unread"  # "read" | "empty" | "unread"
    note: str | None = "no read recorded"
    pairs: np.ndarray = field(default_factory=lambda: np.empty((0, 2), dtype=np.int64))
    values: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


def _sample(values: np.ndarray) -> list[int]:
    return np.sort(values)[:SAMPLE].tolist()


def uniq(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique, minus its hashing detour that is slow here)."""
    a = np.sort(a)
    if len(a) < 2:
        return a
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def contains(sorted_b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """For each element of ``a``: is it in the sorted array ``sorted_b``?"""
    if len(sorted_b) == 0:
        return np.zeros(len(a), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_b, a), len(sorted_b) - 1)
    return sorted_b[at] == a


def repeated(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values that occur more than once in ``a``."""
    s = np.sort(a)
    return uniq(s[1:][s[1:] == s[:-1]])


def _as_pairs(value: Any) -> np.ndarray:
    """A read's ``value`` (list of pairs, or array) as an int64 array of shape (n, 2)."""
    if value is None:
        return np.empty((0, 2), dtype=np.int64)
    arr = np.asarray(value, dtype=np.int64)
    return arr.reshape(-1, 2)


def _unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """Distinct (seq, value) rows, sorted by seq (then value where a seq repeats)."""
    if len(pairs) == 0:
        return pairs
    seq = pairs[:, 0]
    if np.all(seq[1:] > seq[:-1]):  # a single read in stream order: nothing to do
        return pairs
    order = np.lexsort((pairs[:, 1], seq))
    s = pairs[order]
    keep = np.ones(len(s), dtype=bool)
    keep[1:] = (s[1:] != s[:-1]).any(axis=1)
    return s[keep]


def _text(v: Any) -> str | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def node_reads(ops: pd.DataFrame, nodes: list[str]) -> dict[str, NodeRead]:
    """Per node: status, note and the (seq, value) pairs of all its ``ok`` reads."""
    f, types = _col(ops, "f"), _col(ops, "type")
    rows = np.flatnonzero((f == "read") & (types != "invoke") & client_mask(ops))
    found: dict[str, NodeRead] = {n: NodeRead() for n in nodes}
    cols = [_col(ops, k)[rows] for k in ("node", "type", "value", "error", "note")]
    for node, typ, value, error, note in zip(*cols, strict=True):
        nr = found.setdefault(str(node), NodeRead())
        if typ != "ok":
            if nr.status == "unread":
                nr.note = f"read {typ}: {_text(error) or 'no error given'}"
            continue
        pairs = _as_pairs(value)
        if nr.status == "unread":
            nr.status, nr.note, nr.pairs = "empty", None, pairs[:0]
        nr.pairs = np.concatenate([nr.pairs, pairs])
        nr.note = nr.note or _text(note)
        if len(nr.pairs):
            nr.status = "read"
    for nr in found.values():
        nr.pairs = _unique_pairs(nr.pairs)
        nr.values = uniq(nr.pairs[:, 1])
    return found


def _col(ops: pd.DataFrame, name: str) -> np.ndarray:
    """A column as a numpy array (objects for strings; all None when absent)."""
    if name not in ops:
        return np.full(len(ops), None, dtype=object)
    col = ops[name]
    return col.to_numpy(dtype=object) if col.dtype != np.int64 else col.to_numpy()


def client_mask(ops: pd.DataFrame) -> np.ndarray:
    """True for client ops (every op whose process is not "nemesis")."""
    procs = ops["process"]
    if pd.api.types.is_integer_dtype(procs.dtype):
        return np.ones(len(ops), dtype=bool)
    return procs.to_numpy(dtype=object) != NEMESIS


def _by_value(rows: np.ndarray, ops: pd.DataFrame, extra: str) -> pd.DataFrame:
    """Publish rows as a frame of int ``value`` and ``extra``, sorted by value, one row each."""
    values = _col(ops, "value")[rows].astype(np.int64)
    other = _col(ops, extra)[rows].astype(np.int64)
    order = np.argsort(values, kind="stable")
    frame = pd.DataFrame({"value": values[order], extra: other[order]})
    first = np.ones(len(frame), dtype=bool)
    first[1:] = frame["value"].to_numpy()[1:] != frame["value"].to_numpy()[:-1]
    return frame[first].reset_index(drop=True)


def _publishes(ops: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """(invokes, acks, failed): publish invokes (value, process), ok completions
    (value, time) and the sorted values whose publish definitely failed."""
    pub = _col(ops, "f") == "publish"
    types = _col(ops, "type")
    invokes = _by_value(np.flatnonzero(pub & (types == "invoke")), ops, "process")
    acks = _by_value(np.flatnonzero(pub & (types == "ok")), ops, "time")
    failed = _by_value(np.flatnonzero(pub & (types == "fail")), ops, "time")["value"].to_numpy()
    return invokes, acks, failed


def lost_breakdown(invokes: pd.DataFrame, read: np.ndarray, lost: np.ndarray) -> dict[str, int]:
    """Jepsen's split of lost values relative to each writing process's read values.

    Before the process's lowest read value: prefix; between its lowest and
    highest: middle; after its highest, or any when none was read: postfix.
    """
    was_read = contains(read, invokes["value"].to_numpy())
    bounds = invokes[was_read].groupby("process")["value"].agg(["min", "max"])
    vals = invokes["value"].to_numpy()
    at = np.minimum(np.searchsorted(vals, lost), max(len(vals) - 1, 0))
    known = (vals[at] == lost) if len(vals) else np.zeros(len(lost), dtype=bool)
    procs = invokes["process"].to_numpy()[at] if len(vals) else lost
    lo = np.where(known, bounds["min"].reindex(procs).to_numpy(dtype=float), np.nan)
    hi = np.where(known, bounds["max"].reindex(procs).to_numpy(dtype=float), np.nan)
    prefix = lost < lo
    postfix = np.isnan(hi) | (lost > hi)
    return {
        "prefix": int(prefix.sum()),
        "middle": int((~prefix & ~postfix).sum()),
        "postfix": int(postfix.sum()),
    }


def lost_ack_times(acks: pd.DataFrame, lost: np.ndarray) -> tuple[dict, dict]:
    """First/last acknowledgement time (s) of lost values, and lost acks per 1-second bucket."""
    t = acks["time"].to_numpy()[contains(lost, acks["value"].to_numpy())] / 1e9
    if len(t) == 0:
        return {"first": None, "last": None}, {"bucket_s": 1, "start_s": None, "counts": []}
    start = int(np.floor(t.min()))
    counts = np.bincount((np.floor(t) - start).astype(np.int64))
    span = {"first": float(t.min()), "last": float(t.max())}
    return span, {"bucket_s": 1, "start_s": start, "counts": counts.tolist()}


def duplicated_values(reads: dict[str, NodeRead]) -> np.ndarray:
    """Values found at two different stream sequences on one node (each value once)."""
    dups = [repeated(nr.pairs[:, 1]) for nr in reads.values()]
    return uniq(np.concatenate(dups)) if dups else np.empty(0, dtype=np.int64)


def same_seq_conflicts(reads: dict[str, NodeRead]) -> dict[str, Any]:
    """Stream sequences that hold different values on different nodes."""
    read = {n: nr for n, nr in reads.items() if len(nr.pairs)}
    if not read:
        return {"count": 0, "examples": []}
    everything = np.concatenate([nr.pairs for nr in read.values()])
    # each node's pairs are sorted by seq: a stable sort merges the runs in linear time
    s = everything[np.argsort(everything[:, 0], kind="stable")]
    clash = (s[1:, 0] == s[:-1, 0]) & (s[1:, 1] != s[:-1, 1])
    conflicts = uniq(s[1:, 0][clash])
    examples = []
    for seq in conflicts[:EXAMPLES].tolist():
        per_node = {}
        for n, nr in read.items():
            i = np.searchsorted(nr.pairs[:, 0], seq)
            if i < len(nr.pairs) and nr.pairs[i, 0] == seq:
                per_node[n] = int(nr.pairs[i, 1])
        examples.append({"seq": seq, "values": per_node})
    return {"count": len(conflicts), "examples": examples}


def holdings(reads: dict[str, NodeRead], acked: np.ndarray) -> dict[str, np.ndarray]:
    """Per readable node: for each acknowledged value, does the node hold it?"""
    return {n: contains(nr.values, acked) for n, nr in reads.items() if nr.status != "unread"}


def missing_on_nodes(has: dict[str, np.ndarray], acked: np.ndarray) -> dict[str, dict]:
    """Per readable node: acknowledged values another node has but this one lacks."""
    holders = np.sum(list(has.values()), axis=0) if has else np.zeros(len(acked), dtype=int)
    out = {}
    for n, mine in has.items():
        missing = acked[~mine & (holders - mine > 0)]
        out[n] = {"count": len(missing), "sample": _sample(missing)}
    return out


def _per_node(
    reads: dict[str, NodeRead], has: dict[str, np.ndarray], acked: np.ndarray
) -> dict[str, dict]:
    out = {}
    for n, nr in reads.items():
        entry: dict[str, Any] = {"status": nr.status, "note": nr.note, "read_count": 0}
        entry.update({"lost_count": None, "lost": []})
        if n in has:
            lost = acked[~has[n]]
            entry.update(read_count=len(nr.values), lost_count=len(lost), lost=_sample(lost))
        out[n] = entry
    return out


def _verdict(counts: dict[str, int], any_read: bool) -> tuple[bool | str, list[str]]:
    anomalies = [name for name, c in counts.items() if c > 0]
    if not any_read:
        return "unknown", anomalies
    return not anomalies, anomalies


def check_queue(ops: pd.DataFrame, context: dict[str, Any]) -> dict[str, Any]:
    """Check a queue-workload history; see the module docstring for the result's meaning."""
    reads = node_reads(ops, list(context.get("nodes") or []))
    invokes, acks, failed = _publishes(ops)
    attempted = invokes["value"].to_numpy()
    acked = acks["value"].to_numpy()
    read_vals = [nr.values for nr in reads.values()]
    read = uniq(np.concatenate(read_vals)) if read_vals else attempted[:0]
    lost = acked[~contains(read, acked)]
    unexpected = read[~contains(attempted, read)]
    not_acked = attempted[~contains(acked, attempted)]
    recovered = not_acked[contains(read, not_acked)]
    failed_read = failed[contains(read, failed)]  # "certainly not written", yet read
    duplicated = duplicated_values(reads)
    conflicts = same_seq_conflicts(reads)
    has = holdings(reads, acked)
    missing = missing_on_nodes(has, acked)
    divergence = conflicts["count"] + sum(m["count"] for m in missing.values())
    ack_span, ack_hist = lost_ack_times(acks, lost)
    any_read = any(nr.status != "unread" for nr in reads.values())
    counts = {
        "lost": len(lost),
        "unexpected": len(unexpected),
        "duplicated": len(duplicated),
        "divergence": divergence,
        "failed-but-read": len(failed_read),
    }
    valid, anomalies = _verdict(counts, any_read)
    return {
        "valid": valid,
        "anomalies": anomalies,
        "attempt_count": len(attempted),
        "acknowledged_count": len(acked),
        "read_count": len(read),
        "ok_count": int(contains(read, attempted).sum()),
        "lost_count": len(lost),
        "lost": _sample(lost),
        "unexpected_count": len(unexpected),
        "unexpected": _sample(unexpected),
        "recovered_count": len(recovered),
        "recovered": _sample(recovered),
        "duplicated_count": len(duplicated),
        "duplicated": _sample(duplicated),
        "failed_count": len(failed) - len(failed_read),
        "failed_but_read_count": len(failed_read),
        "failed_but_read": _sample(failed_read),
        "unknown_count": len(not_acked) - len(recovered) - (len(failed) - len(failed_read)),
        "lost_breakdown": lost_breakdown(invokes, read, lost),
        "lost_ack_time": ack_span,
        "lost_ack_histogram": ack_hist,
        "per_node": _per_node(reads, has, acked),
        "unread_nodes": sorted(n for n, nr in reads.items() if nr.status == "unread"),
        "divergence": {
            "count": divergence,
            "same_seq_different_value": conflicts,
            "missing_on_node": missing,
        },
    }
