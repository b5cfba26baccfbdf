"""How the replicas of one stream differ, named for what happened.

In: the final reads of every node (``{node: NodeRead}``, :func:`checkers.queue.node_reads`:
each node's ``(stream_seq, value)`` pairs, sorted by seq), the acknowledged
values with their acknowledgement times, the history's recovery record
(:func:`checkers.windows.recovery_record`: the ``{"settle": "recovery", …}``
nemesis op the runner writes after the recovery wait) and, optionally, the run's
``nodes/`` folder (for the log lines that explain a stalled or lost
replica). Out (:func:`analyse`): a dict of plain values for results.json,
with one entry per anomaly:

- ``stream-lost``: the read of a node that held the stream says the stream
  does not exist there (``absent: true``); not the same as an unread node.
- ``stalled``: the recovery wait reached its bound (``converged: false``)
  with this replica behind the others (its ``last_seq`` lower, or it did
  not answer): which node, how far behind at the bound, what its read then
  held, and the lines of its log that say why (``Expected first catchup
  entry to be a snapshot and peerstate, will retry``). The stream
  sequences past a stalled replica's last are its backlog, not divergence.
- ``replica-groups``: some stream sequence holds different values on two
  nodes. The read nodes are grouped by identical contents; each group has
  its nodes, its stream-sequence ranges, and the acknowledgement-time
  windows of the acknowledged writes it lacks that another group holds
  (Jepsen's "different nodes lose different windows"; writes no node holds
  are the run's ``lost``).
- ``holes``: a replica lacks stream sequences below its own last one that
  another replica holds (a middle range missing while it serves reads).
- ``divergence``: a replica that is not stalled lacks sequences past its
  last that another holds (the replicas ended with different lengths).

``divergence_count`` counts each stream sequence once: the sequences that
hold different values on two nodes, plus those a non-stalled replica lacks
past its end.

Every set operation is over sorted numpy arrays; the Python loops run over
nodes, groups and ranges, never over values.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from checkers.logs import LOG_NAME, explain
from checkers.sets import contains, stable_order, uniq
from checkers.windows import recovery_record

__all__ = [
    "analyse",
    "behind_at_bound",
    "lost_and_stalled",
    "lost_windows",
    "ranges",
    "recovery_record",
]

RANGES = 20  # ranges kept per list
WINDOWS = 10  # lost windows kept per group (the largest, in time order)
STALL_LINES = re.compile(  # what a replica that cannot catch up (or start) says about it
    r"catch ?up|peerstate|will retry|falling behind|out of sync|stream.*behind|\[FTL\]", re.I
)
ORPHAN_LINES = re.compile(r"orphan", re.I)


def ranges(seqs: np.ndarray) -> list[list[int]]:
    """Sorted distinct ``seqs`` as runs of consecutive numbers: ``[[lo, hi], …]``."""
    if len(seqs) == 0:
        return []
    cut = np.flatnonzero(np.diff(seqs) != 1)
    starts = np.concatenate([[0], cut + 1])
    ends = np.concatenate([cut, [len(seqs) - 1]])
    return [[int(seqs[a]), int(seqs[b])] for a, b in zip(starts, ends, strict=True)]


def _ranges(seqs: np.ndarray) -> dict[str, Any]:
    runs = ranges(seqs)
    return {"count": len(seqs), "range_count": len(runs), "ranges": runs[:RANGES]}


def lost_windows(ack_times: np.ndarray, lacking: np.ndarray) -> dict[str, Any]:
    """Runs of acknowledged writes a replica lacks, in acknowledgement order.

    ``ack_times`` are the acknowledgement times (ns) of the acknowledged
    values, sorted; ``lacking`` marks the ones the replica lacks. A window
    ends where the replica holds a write acknowledged in between, so "it
    lost every write acknowledged from 3.1 s to 9.8 s" is exact. Out:
    ``{"count", "window_count", "windows": [{"from_s", "to_s", "count"}]}``
    with the :data:`WINDOWS` largest windows, in time order.
    """
    if not lacking.any():
        return {"count": 0, "window_count": 0, "windows": []}
    edges = np.diff(np.concatenate([[0], lacking.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    sizes = ends - starts + 1
    keep = np.sort(np.argsort(-sizes, kind="stable")[:WINDOWS])
    windows = [
        {
            "from_s": round(float(ack_times[starts[i]]) / 1e9, 3),
            "to_s": round(float(ack_times[ends[i]]) / 1e9, 3),
            "count": int(sizes[i]),
        }
        for i in keep
    ]
    return {"count": int(lacking.sum()), "window_count": len(starts), "windows": windows}


def behind_at_bound(recovery: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The replicas the recovery wait left behind: ``{node: {"last_seq", "behind", …}}``.

    Empty when the wait converged or left no record. A node that did not
    answer at the bound is behind by an unknown amount (``behind: None``);
    a node without the stream there is not stalled (its read says
    ``stream-lost``).
    """
    if not recovery or recovery.get("converged") is not False:
        return {}
    views = recovery.get("nodes") or {}
    present = {n: v for n, v in views.items() if isinstance(v, dict) and v.get("present")}
    if not present:
        return {}
    top = max(int(v.get("last_seq") or 0) for v in present.values())
    out: dict[str, dict[str, Any]] = {}
    for node, v in views.items():
        if v is None:
            out[node] = {"answered": False, "last_seq": None, "behind": None, "top_seq": top}
        elif node in present and int(v.get("last_seq") or 0) < top:
            last = int(v.get("last_seq") or 0)
            out[node] = {"answered": True, "last_seq": last, "behind": top - last, "top_seq": top}
    return out


def _node_log(nodes_dir: Any, node: str) -> Path | None:
    if nodes_dir is None:
        return None
    path = Path(nodes_dir) / node / LOG_NAME
    return path if path.is_file() else None


def _log_lines(nodes_dir: Any, node: str, pattern: re.Pattern[str]) -> list[dict[str, Any]]:
    path = _node_log(nodes_dir, node)
    return explain(path, pattern) if path is not None else []


def _groups(
    read: dict[str, np.ndarray], ack_values: np.ndarray, ack_times: np.ndarray
) -> list[dict[str, Any]]:
    """Read nodes grouped by identical contents, largest group first."""
    by_content: dict[bytes, list[str]] = {}
    for node, pairs in read.items():
        by_content.setdefault(np.ascontiguousarray(pairs).tobytes(), []).append(node)
    members = sorted(by_content.values(), key=lambda ns: (-len(ns), ns))
    holders = [np.sort(read[ns[0]][:, 1]) for ns in members]
    out = []
    for i, nodes in enumerate(members):
        pairs = read[nodes[0]]
        lacking = ~contains(holders[i], ack_values)
        others = [h for j, h in enumerate(holders) if j != i]
        elsewhere = (
            np.any([contains(h, ack_values) for h in others], axis=0)
            if others
            else np.zeros(len(ack_values), dtype=bool)
        )
        out.append(
            {
                "nodes": nodes,
                "messages": len(pairs),
                "seqs": _ranges(pairs[:, 0]),
                "lost": lost_windows(ack_times, lacking & elsewhere),
                "only_here": int((~lacking & ~elsewhere).sum()),
            }
        )
    return out


def analyse(
    reads: dict[str, Any],
    acks: pd.DataFrame,
    conflict_seqs: np.ndarray,
    recovery: dict[str, Any] | None,
    nodes_dir: Any = None,
) -> dict[str, Any]:
    """The replica anomalies of the final reads (see the module docstring).

    ``acks`` has one row per acknowledged value (``value``, ``time``);
    ``conflict_seqs`` are the sorted stream sequences that hold different
    values on two read nodes (:func:`checkers.queue.same_seq_conflicts`).
    """
    order = stable_order(acks["time"].to_numpy())
    ack_values = acks["value"].to_numpy()[order]
    ack_times = acks["time"].to_numpy()[order]
    lost_nodes = sorted(n for n, nr in reads.items() if nr.absent)
    read = {n: nr.pairs for n, nr in reads.items() if nr.status != "unread" and not nr.absent}
    seqs = [p[:, 0] for p in read.values()]
    # the usual case, every replica holding the same sequences, needs no per-node pass
    same = bool(seqs) and all(np.array_equal(seqs[0], q) for q in seqs[1:])
    every = uniq(np.concatenate(seqs)) if seqs and not same else np.empty(0, dtype=np.int64)
    holes: dict[str, Any] = {}
    tails: dict[str, np.ndarray] = {}
    for node, pairs in read.items() if not same else ():
        last = int(pairs[-1, 0]) if len(pairs) else 0
        absent_here = every[~contains(pairs[:, 0], every)]
        gap = absent_here[absent_here < last]
        if len(gap):
            lacking = contains(_values_at(read, gap), ack_values)
            holes[node] = {**_ranges(gap), "lost": lost_windows(ack_times, lacking)}
        tails[node] = absent_here[absent_here > last]
    found = lost_and_stalled({n: reads[n].note for n in lost_nodes}, set(read), recovery, nodes_dir)
    stalled: dict[str, Any] = found["stalled"]
    for node, entry in stalled.items():
        if node in read:
            pairs = read[node]
            entry["read_last_seq"] = int(pairs[-1, 0]) if len(pairs) else 0
            entry["read_behind"] = len(tails.get(node, []))
            clashes = contains(pairs[:, 0], conflict_seqs).any()  # pairs are sorted by seq
            entry["prefix_consistent"] = node not in holes and not clashes
    short = [t for n, t in tails.items() if n not in stalled and len(t)]
    short_seqs = uniq(np.concatenate(short)) if short else np.empty(0, dtype=np.int64)
    diverged = np.union1d(conflict_seqs, short_seqs)
    result: dict[str, Any] = {
        "divergence_count": len(diverged),
        "conflict_seqs": _ranges(conflict_seqs),
        "short_nodes": {n: _ranges(t) for n, t in tails.items() if n not in stalled and len(t)},
        "stream_lost": found["stream_lost"],
        "stalled": stalled,
        "holes": holes,
        "groups": _groups(read, ack_values, ack_times) if len(diverged) or holes else [],
    }
    result["counts"] = {
        "stream-lost": len(lost_nodes),
        "stalled": len(stalled),
        "replica-groups": len(conflict_seqs),
        "holes": int(sum(h["count"] for h in holes.values())),
        "divergence": len(short_seqs),
    }
    return result


def lost_and_stalled(
    absent: dict[str, Any], read: set[str], recovery: dict[str, Any] | None, nodes_dir: Any = None
) -> dict[str, Any]:
    """The two replica anomalies any per-node final read shows, whatever its rows are:
    ``stream_lost`` (``absent``: the nodes whose read says the stream is not there, with the
    read's note) and ``stalled`` (the replicas :func:`behind_at_bound` names, each
    ``{"at_bound", "bound_s", "read": node in read, "log"}``), and their ``counts``.

    Checkers whose final reads are per key (counter, kv, cas) report these two; those
    that read whole streams add the sequence-level findings (:func:`analyse`).
    """
    stalled = {
        node: {
            "at_bound": at_bound,
            "read": node in read,
            "bound_s": (recovery or {}).get("bound"),
            "log": _log_lines(nodes_dir, node, STALL_LINES),
        }
        for node, at_bound in behind_at_bound(recovery).items()
    }
    lost = {
        n: {"note": note, "log": _log_lines(nodes_dir, n, ORPHAN_LINES)}
        for n, note in absent.items()
    }
    return {
        "stream_lost": lost,
        "stalled": stalled,
        "counts": {"stream-lost": len(lost), "stalled": len(stalled)},
    }


def _values_at(read: dict[str, np.ndarray], seqs: np.ndarray) -> np.ndarray:
    """Sorted distinct values any read node holds at ``seqs``."""
    held = [p[contains(seqs, p[:, 0]), 1] for p in read.values()]
    return uniq(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)
