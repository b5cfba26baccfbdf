"""The batch checker: is every atomic batch all or nothing, and in one piece, on every replica?

In: the ops DataFrame of a batch-workload history (``harness/workloads/batch.py``;
:mod:`checkers.schema`) and a context with ``nodes``. A batch is a
``batch`` invoke whose ``value`` is ``[batch_id, [v1, …, vk]]`` (unique
values, in batch order), paired with the next op of its process; an ``ok``
completion carries the commit ack's ``seq`` (the last message's stream
sequence) and ``count`` (the size the server reports); an invoke without a
completion counts as ``info``. Final ``read`` completions carry, per node,
``[stream_seq, batch_id, batch_seq, value]`` rows.

Each read node's messages are mapped to (batch, position) by value; per
node a batch is *whole* (all k values), *absent* (none) or *partial*; a
whole batch is *contiguous* when its values sit at consecutive stream
sequences in batch order. Anomalies, each counted in batches:

- ``partial-batch``: partial on some read node, whatever its outcome (no
  partial batch may ever be visible);
- ``split-batch``: whole on some node, but not contiguous there;
- ``failed-batch-visible``: a batch that definitely failed, yet a node
  holds some of it;
- ``lost-batch``: committed (``ok``), yet absent on every read node;
- ``duplicated``: a value at two stream sequences on one node (counted in
  values);
- ``unexpected``: a stored message whose value was never sent, or whose
  batch headers are not the batch and position it was sent with (counted
  in values; -1: a header missing);
- ``bad-ack``: a commit ack whose ``count`` is not the batch's size;
- the replica anomalies, as the queue checker's (:func:`checkers.queue.replica_findings`,
  :mod:`checkers.replicas`) over each node's (seq, value) pairs, with each value's commit
  acknowledgement time: ``stream-lost``, ``stalled``, ``replica-groups``, ``holes`` and
  ``divergence`` (a replica, not stalled, ending short of another), counted in stream
  sequences, with the same result keys; ``divergence.batches`` counts the batches whole on
  one read node and absent on another that is neither stalled nor without the stream.

Allowed, and counted: ``recovered`` (``info`` batches whole on every read node),
``unknown`` (``info`` batches absent), ``failed`` (failed and absent),
``moved`` (a committed batch stored whole but not ending at the acked
sequence). A node whose read is ``info`` or missing is unread and judged
on nothing; a node without the stream is read, and holds nothing.
``valid`` is False for any anomaly, "unknown" when no node could be read.

Out: a result dict (docs/contracts.md §2) with the counts, samples of batch
ids, ``per_node`` and the ``summary`` block (:mod:`checkers.compose`) with
``examples``: the first batches of each anomaly with their op (process,
outcome, ack) and where each node holds them. Per-batch and per-message
work is numpy over arrays indexed by batch; Python loops run over nodes and
examples only.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from checkers.anomalies import BATCH as ANOMALIES
from checkers.queue import (
    NodeRead,
    _count,
    duplicated_values,
    node_reads,
    replica_findings,
    uniq,
)
from checkers.queue_summary import (
    replica_counts,
    replica_examples,
    replica_notes,
    replica_problems,
    replica_status,
)
from checkers.schema import client_mask, column
from checkers.stats import paired_ops

SAMPLE = 20
EXAMPLES = 10
I64 = np.int64


class ValueIndex:
    """Finds each value's message index: a dense table when the values are compact
    (the workload's are 0, 1, 2, …), else a binary search over the sorted values."""

    def __init__(self, values: np.ndarray) -> None:
        self.lo = int(values.min()) if len(values) else 0
        span = int(values.max()) - self.lo + 1 if len(values) else 0
        self.table: np.ndarray | None = None
        if span <= 4 * len(values) + 1024:
            self.table = np.full(span + 1, -1, dtype=I64)  # the last slot: out of range
            self.table[values - self.lo] = np.arange(len(values), dtype=I64)
        else:
            self.order = np.argsort(values, kind="stable")
            self.sorted = values[self.order]

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """For each of ``values``: its message index, or -1 if it was never sent."""
        if self.table is not None:
            at = values - self.lo
            at = np.where((at < 0) | (at >= len(self.table)), len(self.table) - 1, at)
            return self.table[at]
        if not len(self.sorted):
            return np.full(len(values), -1, dtype=I64)
        at = np.minimum(np.searchsorted(self.sorted, values), len(self.sorted) - 1)
        return np.where(self.sorted[at] == values, self.order[at], -1)


@dataclass
class Batches:
    """Every batch of the history, indexed by invoke order (arrays of one row per batch),
    and its messages (arrays of one row per value)."""

    ids: np.ndarray  # batch id
    sizes: np.ndarray
    type: np.ndarray  # "ok" | "fail" | "info" (objects)
    process: np.ndarray  # objects
    time: np.ndarray  # invoke, ns
    acked_at: np.ndarray  # the ok completion's time, ns, else -1
    seq: np.ndarray  # the ok ack's seq, else -1
    count: np.ndarray  # the ok ack's count, else -1
    error: np.ndarray  # objects
    values: np.ndarray  # every message's value, batch after batch
    batch_of: np.ndarray  # per message: its batch's index
    pos: np.ndarray  # per message: its 1-based position in its batch
    lookup: ValueIndex  # value -> message index


def batches(ops: pd.DataFrame) -> Batches:
    """The batch ops of ``ops`` (see the module docstring), paired with their completions."""
    fs, types = column(ops, "f"), column(ops, "type")
    rows = np.flatnonzero((fs == "batch") & (types == "invoke") & client_mask(ops))
    vals = column(ops, "value")[rows].tolist()
    n = len(vals)
    ids = np.fromiter(map(itemgetter(0), vals), I64, n)
    members = list(map(itemgetter(1), vals))
    sizes = np.fromiter(map(len, members), I64, n)
    values = np.fromiter(itertools.chain.from_iterable(members), I64, int(sizes.sum()))
    batch_of = np.repeat(np.arange(n, dtype=I64), sizes)
    starts = np.cumsum(sizes) - sizes
    pos = np.arange(len(values), dtype=I64) - np.repeat(starts, sizes) + 1

    pairs = paired_ops(ops)
    pairs = pairs[pairs["f"].to_numpy(dtype=object) == "batch"]
    at = np.searchsorted(rows, pairs["invoke_row"].to_numpy())
    done = pairs["complete_row"].to_numpy()
    btype = np.full(n, "info", dtype=object)
    btype[at] = pairs["type"].to_numpy(dtype=object)
    error = np.full(n, None, dtype=object)
    error[at] = column(ops, "error")[done]
    ok = btype == "ok"
    acked_at = np.full(n, -1, dtype=I64)
    acked_at[at] = column(ops, "time")[done].astype(I64)

    def from_ok(name: str) -> np.ndarray:
        out = np.full(n, -1, dtype=I64)
        if name in ops:
            col = ops[name]
            col = col if pd.api.types.is_numeric_dtype(col) else pd.to_numeric(col, errors="coerce")
            out[at] = np.nan_to_num(col.to_numpy(dtype=float)[done], nan=-1).astype(I64)
        return np.where(ok, out, -1)

    return Batches(
        ids=ids,
        sizes=sizes,
        type=btype,
        process=column(ops, "process")[rows],
        time=column(ops, "time")[rows].astype(I64),
        acked_at=np.where(ok, acked_at, -1),
        seq=from_ok("seq"),
        count=from_ok("count"),
        error=error,
        values=values,
        batch_of=batch_of,
        pos=pos,
        lookup=ValueIndex(values),
    )


def _rows(value: Any) -> np.ndarray:
    """A read's value (a list of 4-int rows, or an array) as an int64 array (n, 4)."""
    if value is None:
        return np.empty((0, 4), dtype=I64)
    if isinstance(value, np.ndarray):
        return value.astype(I64).reshape(-1, 4)
    flat = np.fromiter(itertools.chain.from_iterable(value), I64, 4 * len(value))
    return flat.reshape(-1, 4)


def read_rows(ops: pd.DataFrame, nodes: list[str]) -> tuple[dict[str, NodeRead], dict[str, Any]]:
    """(per node: its distinct (seq, value) pairs as a :class:`NodeRead`; per node: every
    row it returned, ``[seq, batch_id, batch_seq, value]``, as an (n, 4) array)."""
    mask = (column(ops, "f") == "read") & client_mask(ops)
    sub = ops[mask].copy()
    ok = column(sub, "type") == "ok"
    rows = [_rows(v) if k else None for v, k in zip(column(sub, "value"), ok, strict=True)]
    sub["value"] = [None if r is None else r[:, [0, 3]] for r in rows]
    reads = node_reads(sub, nodes)
    per: dict[str, list[np.ndarray]] = {}
    for node, r in zip(column(sub, "node"), rows, strict=True):
        if r is not None:
            per.setdefault(str(node), []).append(r)
    return reads, {n: np.concatenate(parts) for n, parts in per.items()}


@dataclass
class NodeView:
    """What one read node holds of each batch (arrays of one row per batch)."""

    present: np.ndarray  # distinct values of the batch held
    first: np.ndarray  # lowest stream seq of the batch (-1: none)
    last: np.ndarray  # highest
    contiguous: np.ndarray  # whole, at consecutive seqs in batch order
    unexpected: np.ndarray  # values stored that were never sent, or with foreign headers


def view(b: Batches, nr: NodeRead, raw: np.ndarray) -> NodeView:
    """One node's holdings of every batch, from its distinct (seq, value) pairs."""
    n = len(b.ids)
    pairs = nr.pairs
    # one row per value (a value at two seqs is ``duplicated``; its first seq counts here)
    first_of = np.unique(pairs[:, 1], return_index=True)[1] if len(pairs) else np.empty(0, I64)
    seqs, vals = pairs[first_of, 0], pairs[first_of, 1]
    m = b.lookup(vals)
    known = m >= 0
    seqs, m = seqs[known], m[known]
    bat, pos = b.batch_of[m], b.pos[m]
    present = np.bincount(bat, minlength=n).astype(I64)
    first = np.full(n, np.iinfo(I64).max, dtype=I64)
    last = np.full(n, -1, dtype=I64)
    np.minimum.at(first, bat, seqs)
    np.maximum.at(last, bat, seqs)
    # in batch order at consecutive seqs: seq - pos is the same for every message
    off = seqs - pos
    lo = np.full(n, np.iinfo(I64).max, dtype=I64)
    hi = np.full(n, np.iinfo(I64).min, dtype=I64)
    np.minimum.at(lo, bat, off)
    np.maximum.at(hi, bat, off)
    whole = present == b.sizes
    contiguous = whole & (lo == hi)
    first[present == 0] = -1
    # unexpected: never sent, or its headers name another batch or position
    rm = b.lookup(raw[:, 3]) if len(raw) else np.empty(0, I64)
    sent = rm >= 0
    fits = sent.copy()
    fits[sent] = (raw[sent, 1] == b.ids[b.batch_of[rm[sent]]]) & (raw[sent, 2] == b.pos[rm[sent]])
    unexpected = uniq(raw[~fits, 3]) if len(raw) else np.empty(0, I64)
    return NodeView(present, first, last, contiguous, unexpected)


def check_batch(ops: pd.DataFrame, context: dict[str, Any]) -> dict[str, Any]:
    """Check a batch-workload history; see the module docstring for the result's meaning."""
    b = batches(ops)
    reads, raw = read_rows(ops, list(context.get("nodes") or []))
    read_nodes = [n for n, nr in reads.items() if nr.status != "unread"]
    views = {n: view(b, reads[n], raw.get(n, np.empty((0, 4), I64))) for n in read_nodes}
    n = len(b.ids)
    none = np.zeros(n, dtype=bool)
    whole = {k: v.present == b.sizes for k, v in views.items()}
    absent = {k: v.present == 0 for k, v in views.items()}
    any_whole = _any(whole.values(), n)
    partial = _any((~whole[k] & ~absent[k] for k in views), n)
    split = _any((whole[k] & ~v.contiguous for k, v in views.items()), n)
    all_absent = ~_any((~a for a in absent.values()), n) if views else none  # no read: unknown
    all_whole = ~_any((~w for w in whole.values()), n) if views else none
    ok, failed, info = (b.type == t for t in ("ok", "fail", "info"))
    failed_visible = failed & ~all_absent if views else none
    lost = ok & all_absent
    bad_ack = ok & (b.count >= 0) & (b.count != b.sizes)
    replicas = replica_findings(reads, _acks(b, ok), ops, context.get("nodes_dir"))
    gone = replicas.stalled | set(replicas.fields["stream_lost"])  # absent for a known reason
    any_absent_here = _any((a for k, a in absent.items() if k not in gone), n)
    divergent = any_whole & any_absent_here & ~partial
    duplicated = duplicated_values(reads)
    parts = [v.unexpected for v in views.values()]
    unexpected = uniq(np.concatenate(parts)) if parts else np.empty(0, I64)
    # allowed: where a whole, contiguous committed batch sits vs the ack
    ends = {k: np.where(v.contiguous, v.last, -1) for k, v in views.items()}
    moved = ok & (b.seq >= 0) & _any(((e >= 0) & (e != b.seq) for e in ends.values()), n)
    counts = {
        "partial-batch": int(partial.sum()),
        "split-batch": int(split.sum()),
        "failed-batch-visible": int(failed_visible.sum()),
        "lost-batch": int(lost.sum()),
        "duplicated": len(duplicated),
        "unexpected": len(unexpected),
        "bad-ack": int(bad_ack.sum()),
        **replicas.counts,
    }
    anomalies = [a for a in ANOMALIES if counts[a]]
    valid: bool | str = (not anomalies) if views else "unknown"
    sample = lambda mask: np.sort(b.ids[mask])[:SAMPLE].tolist()  # noqa: E731
    result: dict[str, Any] = {
        "valid": valid,
        "anomalies": anomalies,
        "batch_count": n,
        "message_count": int(b.sizes.sum()),
        "committed_count": int(ok.sum()),
        "committed_message_count": int(b.sizes[ok].sum()),
        "partial_count": counts["partial-batch"],
        "partial_batches": sample(partial),
        "split_count": counts["split-batch"],
        "split_batches": sample(split),
        "failed_visible_count": counts["failed-batch-visible"],
        "failed_visible_batches": sample(failed_visible),
        "lost_count": counts["lost-batch"],
        "lost_batches": sample(lost),
        "duplicated_count": len(duplicated),
        "duplicated": duplicated[:SAMPLE].tolist(),
        "unexpected_count": len(unexpected),
        "unexpected": unexpected[:SAMPLE].tolist(),
        "bad_ack_count": counts["bad-ack"],
        "bad_ack_batches": sample(bad_ack),
        "failed_count": int((failed & all_absent).sum()),
        "recovered_count": int((info & all_whole).sum()),
        "unknown_count": int((info & all_absent).sum()),
        "moved_count": int(moved.sum()),
        "broken_count": int((partial | split | failed_visible | lost).sum()),
        "per_node": _per_node(reads, views, b, ok),
        "unread_nodes": sorted(n for n, nr in reads.items() if nr.status == "unread"),
        **replicas.fields,
    }
    result["divergence"] |= {
        "batches": int(divergent.sum()),
        "divergent_batches": sample(divergent),
    }
    result["summary"] = summarize(result)
    result["summary"]["examples"] = _examples(result, b, views) + replica_examples(result)
    return result


def _acks(b: Batches, ok: np.ndarray) -> pd.DataFrame:
    """The values of committed batches with their commit's acknowledgement time, by value."""
    mine = ok[b.batch_of]
    values, times = b.values[mine], b.acked_at[b.batch_of[mine]]
    order = np.argsort(values, kind="stable")
    frame = pd.DataFrame({"value": values[order], "time": times[order]})
    return frame.drop_duplicates("value").reset_index(drop=True)


def _any(masks: Iterable[np.ndarray], n: int) -> np.ndarray:
    """Elementwise or of boolean arrays of length ``n`` (all False for none)."""
    out = np.zeros(n, dtype=bool)
    for m in masks:
        out |= m
    return out


def _per_node(
    reads: dict[str, NodeRead], views: dict[str, NodeView], b: Batches, ok: np.ndarray
) -> dict[str, dict[str, Any]]:
    out = {}
    for node, nr in reads.items():
        entry: dict[str, Any] = {"status": nr.status, "note": nr.note, "read_count": 0}
        entry.update(whole_count=None, partial_count=None, split_count=None, lost_count=None)
        v = views.get(node)
        if v is not None:
            whole = v.present == b.sizes
            entry.update(
                read_count=len(nr.values),
                whole_count=int(whole.sum()),
                partial_count=int(((v.present > 0) & ~whole).sum()),
                split_count=int((whole & ~v.contiguous).sum()),
                lost_count=int((ok & (v.present == 0)).sum()),
            )
        out[node] = entry
    return out


# ---- examples: the first batches of each anomaly, their op and where they are ----


def _op_text(b: Batches, i: int) -> str:
    text = f"p{b.process[i]} {b.type[i]}"
    if b.type[i] == "ok":
        text += f" seq {b.seq[i]}" + (f" count {b.count[i]}" if b.count[i] >= 0 else "")
    elif isinstance(b.error[i], str) and b.error[i]:
        text += f" ({b.error[i]})"
    return f"{text} @{b.time[i] / 1e9:.2f}s"


def _where(b: Batches, views: dict[str, NodeView], i: int) -> str:
    parts = []
    for node, v in views.items():
        have, size = int(v.present[i]), int(b.sizes[i])
        if not have:
            parts.append(f"{node}: none")
            continue
        span = f"{v.first[i]}–{v.last[i]}" if v.first[i] != v.last[i] else f"{v.first[i]}"
        shape = "" if have < size or v.contiguous[i] else ", not contiguous"
        parts.append(f"{node}: {have}/{size} at seq {span}{shape}")
    return "; ".join(parts) or "–"


def _examples(q: dict[str, Any], b: Batches, views: dict[str, NodeView]) -> list[dict[str, Any]]:
    index = pd.Series(np.arange(len(b.ids)), index=b.ids)
    tables = []
    for key, count, title, note in (
        ("partial_batches", "partial_count", "Partial batches", "partly stored on a node"),
        ("split_batches", "split_count", "Split batches", "whole, but not contiguous in order"),
        ("failed_visible_batches", "failed_visible_count", "Failed batches visible",
         "definitely failed, yet stored"),
        ("lost_batches", "lost_count", "Lost batches", "committed, and stored on no node"),
        ("bad_ack_batches", "bad_ack_count", "Bad acks", "the ack's count is not the size"),
    ):  # fmt: skip
        ids = q[key][:EXAMPLES]
        if ids:
            n = q[count]
            tables.append(
                {
                    "title": title,
                    "note": f"{n:,} batch{'es' if n != 1 else ''} {note}; the first by id.",
                    "head": ["batch id", "size", "op", "stored"],
                    "rows": [
                        [i, int(b.sizes[j]), _op_text(b, j), _where(b, views, j)]
                        for i, j in ((i, int(index[i])) for i in ids)
                    ],
                }
            )
    div = q["divergence"]
    if div["divergent_batches"]:
        rows = [
            [i, int(b.sizes[j]), _op_text(b, j), _where(b, views, j)]
            for i, j in ((i, int(index[i])) for i in div["divergent_batches"][:EXAMPLES])
        ]
        tables.append(
            {
                "title": "Divergent batches",
                "note": f"{div['batches']:,} whole on one node, absent on another.",
                "head": ["batch id", "size", "op", "stored"],
                "rows": rows,
            }
        )
    if q["unexpected"]:
        tables.append(
            {
                "title": "Unexpected messages",
                "note": f"{q['unexpected_count']:,} values never sent, or stored with batch "
                "headers other than those they were sent with; the first by value.",
                "head": ["value"],
                "rows": [[v] for v in q["unexpected"][:EXAMPLES]],
            }
        )
    return tables


# ---- the headline block (checkers.verdict reads it; see checkers.compose) ----

COUNTS = (
    ("batches", "batch_count", "batches invoked", False),
    ("messages", "message_count", "messages in those batches", False),
    ("committed", "committed_count", "batches whose commit was acknowledged", False),
    ("partial", "partial_count", "batches partly stored on a node", True),
    ("split", "split_count", "whole on a node, but not contiguous in batch order", True),
    ("failed but visible", "failed_visible_count", "definitely failed, yet stored", True),
    ("lost", "lost_count", "committed, but stored on no node", True),
    ("duplicated", "duplicated_count", "values at two stream sequences on one node", True),
    ("unexpected", "unexpected_count", "never sent, or with foreign batch headers", True),
    ("bad acks", "bad_ack_count", "commit acks with another batch size", True),
    ("failed", "failed_count", "definitely failed, not stored (allowed)", False),
    ("recovered", "recovered_count", "outcome unknown, stored whole (allowed)", False),
    ("unknown", "unknown_count", "outcome unknown, not stored (allowed)", False),
    ("moved", "moved_count", "committed, whole, not ending at the acked seq", False),
)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 'es' if word.endswith('h') else 's'}"


def _problems(q: dict[str, Any]) -> list[str]:
    committed = q.get("committed_count") or 0
    parts = []
    if q.get("partial_count"):
        parts.append(f"PARTIAL {_plural(q['partial_count'], 'batch')} visible")
    if q.get("split_count"):
        parts.append(f"{_plural(q['split_count'], 'split batch')}")
    if q.get("failed_visible_count"):
        parts.append(f"{_plural(q['failed_visible_count'], 'failed batch')} visible")
    if q.get("lost_count"):
        pct = 100.0 * q["lost_count"] / committed if committed else 0.0
        parts.append(f"LOST {q['lost_count']:,} of {committed:,} committed batches ({pct:.2f}%)")
    for key, label in (
        ("duplicated_count", "duplicated"),
        ("unexpected_count", "unexpected"),
    ):
        if q.get(key):
            parts.append(f"{q[key]:,} {label}")
    if q.get("bad_ack_count"):
        parts.append(_plural(q["bad_ack_count"], "bad ack"))
    named = replica_problems(q)
    div = (q.get("divergence") or {}).get("count") or 0
    if div and not named:  # a result without the replica analysis (older results.json)
        named = [f"{div:,} divergent between replicas"]
    return parts + named


def _node_rows(q: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for node, d in (q.get("per_node") or {}).items():
        counts = [
            _count("read", d.get("read_count"), "distinct values read from this node", False),
            _count("whole", d.get("whole_count"), "batches held whole", False),
            _count("partial", d.get("partial_count"), "batches held in part", True),
            _count("split", d.get("split_count"), "whole batches not contiguous", True),
            _count("lost", d.get("lost_count"), "committed batches this node lacks", True),
        ]
        note = str(d.get("note") or "")
        status = replica_status(q, str(node), str(d.get("status", "")))
        rows.append({"node": str(node), "status": status, "note": note, "counts": counts})
    return rows


def summarize(q: dict[str, Any]) -> dict[str, Any]:
    """The headline block of a batch result: ``1,234 committed batches (4,321 messages), each
    whole and contiguous on every replica``, ``PARTIAL 2 batches visible; …``, or unread nodes."""
    committed = q.get("committed_count") or 0
    unread = list(q.get("unread_nodes") or [])
    if q.get("valid") is True:
        headline = (
            f"{_plural(committed, 'committed batch')} ({q.get('committed_message_count') or 0:,} "
            "messages), each whole and contiguous on every replica"
        )
    elif q.get("valid") is False:
        headline = "; ".join(_problems(q)) or ", ".join(q.get("anomalies") or [])
    else:
        headline = f"unread nodes: {', '.join(unread)}" if unread else "no node was read"
    counts = [_count(n, q[k], m, bad) for n, k, m, bad in COUNTS if k in q]
    counts += replica_counts(q)
    broken = q.get("broken_count") or 0
    total = q.get("batch_count") or 0
    return {
        "headline": headline,
        "counts": counts,
        "row": {
            "committed": committed,
            "partial": q.get("partial_count") or 0,
            "lost": q.get("lost_count") or 0,
            "broken_pct": round(100.0 * broken / total, 2) if total else 0.0,
        },
        "rate": {
            "name": "broken_pct",
            "label": "batches partial, split, lost or failed-visible (%)",
        },
        "unread_nodes": unread,
        "nodes": _node_rows(q),
        "notes": replica_notes(q),
    }
