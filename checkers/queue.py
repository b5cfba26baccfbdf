"""The queue checker: were acknowledged publishes kept, and do the replicas agree?

In: the ops DataFrame of a queue-workload history (docs/contracts.md §1, see
:mod:`checkers.schema`) and a context with ``nodes`` (every cluster node)
and optionally ``nodes_dir`` (the run's ``nodes/``, for the log lines that
explain a stalled or lost replica).
Publishes are invoke/completion pairs whose ``value`` is a unique integer;
final ``read`` completions carry, per node, the stream as
``[stream_seq, value]`` pairs (a list, or an int64 array of shape (n, 2)).

Out: a result dict (docs/contracts.md §2). With A = attempted, K = acknowledged and
R = read on any node: lost = K − R, unexpected = R − A, recovered =
R ∩ (A − K), failed = definitely failed publishes not read, unknown =
A − K − R − failed. A publish that definitely failed yet was read is
"failed-but-read" (an anomaly: either the server or the harness's error
mapping is wrong). A value at two stream sequences on one node is
duplicated. How the replicas differ is named for what happened
(:mod:`checkers.replicas`): ``stream-lost`` (a read says the stream is
absent), ``stalled`` (behind when the recovery wait reached its bound; its
backlog is not divergence), ``replica-groups`` (a stream sequence holds
different values on two nodes; the nodes grouped by contents), ``holes``
(a middle range missing on a replica) and ``divergence`` (a replica, not
stalled, ends short of another); ``divergence.count`` counts each stream
sequence once, and ``missing_on_node`` keeps each node's acknowledged
values another node has.
``valid`` is False for any of these, "unknown" when no node could be read,
else True. Everything is set algebra over sorted numpy arrays; the only
Python loops are over nodes and read ops, never over publishes or values.

Besides the counts and samples (docs/contracts.md §2), the result carries what the
report shows, so no view re-derives anything from the history:
``sample_reads`` (``{value: {node: [stream seqs]}}`` for the sampled
unexpected, duplicated, failed-but-read and missing values) and
``summary``, the headline block every view reads through
:func:`checkers.verdict.headline` (shape in :mod:`checkers.compose`)::

    {"headline": "LOST 12 of 5,432 acknowledged writes (0.22%); 3 unexpected",
     "counts": [{"name": "acknowledged", "value": 5432, "bad": False, "meaning": ...}, ...],
     "row": {"acknowledged": 5432, "lost": 12, "lost_pct": 0.22},
     "rate": {"name": "lost_pct", "label": "lost acknowledged writes (%)"},
     "unread_nodes": ["n3"],
     "nodes": [{"node": "n1", "status": "read", "note": "", "counts": [...]}, ...],
     "notes": ["Lost writes were acknowledged between 3.1s and 9.8s after the run started."],
     "over_time": {"label": "lost", "ylabel": "lost writes", "caption": ...,
                   "overall": HIST, "per_node": {"n1": HIST, ...}}}

where HIST (:func:`ack_histogram`) counts acknowledgement times of the lost
values (``overall``) or of the acknowledged values one node lacks, in at
most :data:`HIST_BUCKETS` buckets of a round width aligned to time zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from checkers.queue_summary import _count as _count  # re-exported: other checkers use it
from checkers.queue_summary import summarize
from checkers.replicas import analyse, recovery_record
from checkers.schema import client_mask, column_at, equals, int64_at
from checkers.sets import contains, repeated, stable_order, union, uniq

SAMPLE = 20
EXAMPLES = 5
HIST_BUCKETS = 2000  # at most this many buckets in a histogram over the acknowledged span
HIST_WIDTHS_MS = (1, 10, 100, 1_000, 10_000, 60_000, 600_000, 3_600_000)


@dataclass
class NodeRead:
    """What the final reads found on one node."""

    status: str = "unread"  # "read" | "empty" | "unread"
    note: str | None = "no read recorded"
    absent: bool = False  # an ok read said the node has no such stream (``absent: true``)
    pairs: np.ndarray = field(default_factory=lambda: np.empty((0, 2), dtype=np.int64))
    values: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


def _sample(values: np.ndarray) -> list[int]:
    return np.sort(values)[:SAMPLE].tolist()


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
    reading = equals(ops, "f", "read") & ~equals(ops, "type", "invoke")
    rows = np.flatnonzero(reading & client_mask(ops))
    found: dict[str, NodeRead] = {n: NodeRead() for n in nodes}
    cols = [column_at(ops, k, rows) for k in ("node", "type", "value", "error", "note", "absent")]
    for node, typ, value, error, note, absent in zip(*cols, strict=True):
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
        nr.absent = nr.absent or absent is True
        if len(nr.pairs):
            nr.status = "read"
    for nr in found.values():
        nr.pairs = _unique_pairs(nr.pairs)
        nr.values = uniq(nr.pairs[:, 1])
    return found


def _by_value(rows: np.ndarray, ops: pd.DataFrame, extra: str) -> pd.DataFrame:
    """Publish rows as a frame of int ``value`` and ``extra``, sorted by value, one row each."""
    values = int64_at(ops, rows, "value")
    other = int64_at(ops, rows, extra)
    order = stable_order(values)
    frame = pd.DataFrame({"value": values[order], extra: other[order]})
    first = np.ones(len(frame), dtype=bool)
    first[1:] = frame["value"].to_numpy()[1:] != frame["value"].to_numpy()[:-1]
    return frame if first.all() else frame[first].reset_index(drop=True)


def _publishes(ops: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """(invokes, acks, failed): publish invokes (value, process), ok completions
    (value, time) and the sorted values whose publish definitely failed."""
    pub = equals(ops, "f", "publish")
    invokes = _by_value(np.flatnonzero(pub & equals(ops, "type", "invoke")), ops, "process")
    acks = _by_value(np.flatnonzero(pub & equals(ops, "type", "ok")), ops, "time")
    fails = _by_value(np.flatnonzero(pub & equals(ops, "type", "fail")), ops, "time")
    return invokes, acks, fails["value"].to_numpy()


def lost_breakdown(
    invokes: pd.DataFrame, read: np.ndarray, lost: np.ndarray, was_read: np.ndarray | None = None
) -> dict[str, int]:
    """Jepsen's split of lost values relative to each writing process's read values.

    Before the process's lowest read value: prefix; between its lowest and
    highest: middle; after its highest, or any when none was read: postfix.
    ``was_read``: for each invoke, is its value in ``read`` (when already known).
    """
    if was_read is None:
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


def hist_width_ms(times_ns: np.ndarray) -> int:
    """The bucket width (ms) for histograms over ``times_ns``: at most HIST_BUCKETS buckets."""
    span = int(times_ns.max() - times_ns.min()) if len(times_ns) else 0
    return next((w for w in HIST_WIDTHS_MS if span / (w * 1e6) <= HIST_BUCKETS), HIST_WIDTHS_MS[-1])


def ack_histogram(times_ns: np.ndarray, width_ms: int) -> dict[str, Any]:
    """Counts of ``times_ns`` per bucket of ``width_ms``, buckets aligned to time zero.

    ``{"bucket_s", "start_s", "counts"}``: ``counts[i]`` is the number of
    times in ``[start_s + i * bucket_s, start_s + (i + 1) * bucket_s)``;
    ``start_s`` is None when there are none.
    """
    if len(times_ns) == 0:
        return {"bucket_s": width_ms / 1000, "start_s": None, "counts": []}
    bucket = times_ns // (width_ms * 1_000_000)
    start = int(bucket.min())
    counts = np.bincount(bucket - start)
    return {
        "bucket_s": width_ms / 1000,
        "start_s": start * width_ms / 1000,
        "counts": counts.tolist(),
    }


def lost_ack_span(acks: pd.DataFrame, lost: np.ndarray) -> dict[str, float | None]:
    """First and last acknowledgement time (s) of the lost values."""
    t = acks["time"].to_numpy()[contains(lost, acks["value"].to_numpy())] / 1e9
    if len(t) == 0:
        return {"first": None, "last": None}
    return {"first": float(t.min()), "last": float(t.max())}


def lost_over_time(
    acks: pd.DataFrame, lost: np.ndarray, has: dict[str, np.ndarray]
) -> dict[str, Any]:
    """The lost-writes plot's data: acknowledgement-time histograms of the values lost
    everywhere (``overall``) and of those each readable node lacks (``per_node``)."""
    times = acks["time"].to_numpy()
    width = hist_width_ms(times)
    # acks and ``has`` are both ordered by acknowledged value: masks line up
    return {
        "label": "lost",
        "ylabel": "lost writes",
        "caption": (
            "Lost writes by when they were acknowledged: read back from no node (bars); a line "
            "for each node that lacks more than those (divergence)."
        ),
        "overall": ack_histogram(times[contains(lost, acks["value"].to_numpy())], width),
        "per_node": {n: ack_histogram(times[~mine], width) for n, mine in has.items()},
    }


def sample_reads(reads: dict[str, NodeRead], values: np.ndarray) -> dict[str, dict[str, list]]:
    """For each of ``values`` (samples): ``{node: [stream seqs]}`` where a final read held it.

    Keys are the values as strings (JSON object keys); a value no node held is absent.
    """
    out: dict[str, dict[str, list]] = {}
    wanted = uniq(np.asarray(values, dtype=np.int64))
    if not len(wanted):
        return out
    for node, nr in reads.items():
        if not len(nr.pairs):
            continue
        hit = nr.pairs[contains(wanted, nr.pairs[:, 1])]
        for seq, v in hit.tolist():
            out.setdefault(str(v), {}).setdefault(node, []).append(int(seq))
    return out


def duplicated_values(reads: dict[str, NodeRead]) -> np.ndarray:
    """Values found at two different stream sequences on one node (each value once)."""
    # a node with as many distinct values (``values``) as pairs holds none twice
    dups = [
        nr.pairs[:0, 1] if len(nr.values) == len(nr.pairs) else repeated(nr.pairs[:, 1])
        for nr in reads.values()
    ]
    return uniq(np.concatenate(dups)) if dups else np.empty(0, dtype=np.int64)


def conflict_seqs(reads: dict[str, NodeRead]) -> np.ndarray:
    """Sorted stream sequences that hold different values on different nodes (each once)."""
    read = [nr.pairs for nr in reads.values() if len(nr.pairs)]
    if not read:
        return np.empty(0, dtype=np.int64)
    seq = read[0][:, 0]
    if all(np.array_equal(p, read[0]) for p in read[1:]) and (seq[1:] > seq[:-1]).all():
        return np.empty(0, dtype=np.int64)  # the replicas agree, one value per sequence
    everything = np.concatenate(read)
    # each node's pairs are sorted by seq: a stable sort merges the runs in linear time
    s = everything[np.argsort(everything[:, 0], kind="stable")]
    clash = (s[1:, 0] == s[:-1, 0]) & (s[1:, 1] != s[:-1, 1])
    return uniq(s[1:, 0][clash])


def same_seq_conflicts(
    reads: dict[str, NodeRead], conflicts: np.ndarray | None = None
) -> dict[str, Any]:
    """Stream sequences that hold different values on different nodes: count and examples
    (``conflicts``: the :func:`conflict_seqs` of ``reads``, when already known)."""
    read = {n: nr for n, nr in reads.items() if len(nr.pairs)}
    conflicts = conflict_seqs(read) if conflicts is None else conflicts
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
    out: dict[str, np.ndarray] = {}
    for n, nr in reads.items():
        if nr.status == "unread":
            continue
        # replicas that agree hold the same values: one search answers for all of them
        same = next((m for k, m in out.items() if np.array_equal(reads[k].values, nr.values)), None)
        out[n] = contains(nr.values, acked) if same is None else same.copy()
    return out


def missing_on_nodes(has: dict[str, np.ndarray], acked: np.ndarray) -> dict[str, dict]:
    """Per readable node: acknowledged values another node has but this one lacks."""
    holders = np.sum(list(has.values()), axis=0) if has else np.zeros(len(acked), dtype=int)
    out = {}
    for n, mine in has.items():
        missing = acked[~mine & (holders - mine > 0)]
        out[n] = {"count": len(missing), "sample": _sample(missing)}
    return out


@dataclass
class Replicas:
    """How the replicas differ (:func:`replica_findings`): ``counts`` per anomaly name,
    ``fields`` for the result (``stream_lost``, ``stalled``, ``holes``, ``divergence``),
    ``has`` (per read node, which acknowledged values it holds) and ``stalled`` nodes."""

    counts: dict[str, int]
    fields: dict[str, Any]
    has: dict[str, np.ndarray]
    stalled: frozenset[str]


def replica_findings(
    reads: dict[str, NodeRead], acks: pd.DataFrame, ops: pd.DataFrame, nodes_dir: Any
) -> Replicas:
    """The replica anomalies (:mod:`checkers.replicas`) of final reads of ``(stream_seq,
    value)`` pairs, as every checker of a workload that reads each replica reports them.

    ``acks``: one row per acknowledged value (``value``, ``time``, sorted by value).
    """
    acked = acks["value"].to_numpy()
    clashing = conflict_seqs(reads)
    has = holdings(reads, acked)
    missing = missing_on_nodes(has, acked)
    found = analyse(reads, acks, clashing, recovery_record(ops), nodes_dir)
    fields = {
        "stream_lost": found["stream_lost"],
        "stalled": found["stalled"],
        "holes": found["holes"],
        "divergence": {
            "count": found["divergence_count"],
            "same_seq_different_value": same_seq_conflicts(reads, clashing),
            "conflict_seqs": found["conflict_seqs"],
            "short_nodes": found["short_nodes"],
            "groups": found["groups"],
            "missing_on_node": missing,
        },
    }
    return Replicas(found["counts"], fields, has, frozenset(found["stalled"]))


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
    read = union(read_vals) if read_vals else attempted[:0]
    replicas = replica_findings(reads, acks, ops, context.get("nodes_dir"))
    has, missing = replicas.has, replicas.fields["divergence"]["missing_on_node"]
    # a node that read every value read has already said which acknowledged ones it holds
    held = next((has[n] for n in has if np.array_equal(reads[n].values, read)), None)
    lost = acked[~(contains(read, acked) if held is None else held)]
    attempted_read = contains(read, attempted)
    unexpected = read[~contains(attempted, read)]
    not_acked = attempted[~contains(acked, attempted)]
    recovered = not_acked[contains(read, not_acked)]
    failed_read = failed[contains(read, failed)]  # "certainly not written", yet read
    duplicated = duplicated_values(reads)
    any_read = any(nr.status != "unread" for nr in reads.values())
    counts = {
        "lost": len(lost),
        "unexpected": len(unexpected),
        "duplicated": len(duplicated),
        **replicas.counts,
        "failed-but-read": len(failed_read),
    }
    valid, anomalies = _verdict(counts, any_read)
    result: dict[str, Any] = {
        "valid": valid,
        "anomalies": anomalies,
        "attempt_count": len(attempted),
        "acknowledged_count": len(acked),
        "read_count": len(read),
        "ok_count": int(attempted_read.sum()),
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
        "lost_breakdown": lost_breakdown(invokes, read, lost, attempted_read),
        "lost_ack_time": lost_ack_span(acks, lost),
        "per_node": _per_node(reads, has, acked),
        "unread_nodes": sorted(n for n, nr in reads.items() if nr.status == "unread"),
        **replicas.fields,
    }
    sampled = [v for k in ("unexpected", "duplicated", "failed_but_read") for v in result[k]]
    sampled += [v for m in missing.values() for v in m["sample"]]
    result["sample_reads"] = sample_reads(reads, np.asarray(sampled, dtype=np.int64))
    result["summary"] = summarize(result)
    result["summary"]["over_time"] = lost_over_time(acks, lost, has)
    return result
