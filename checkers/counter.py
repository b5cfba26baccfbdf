"""The counter checker: do the replicas' counters hold what was acknowledged, and do
the totals the server returned fit one order of increments?

In: the ops DataFrame of a counter-workload history (ops in
``harness/workloads/counter.py``): ``incr`` invokes with ``value`` ``[key,
n]`` (integers) whose ``ok`` completion carries ``total`` and ``seq``, and
final ``read`` completions whose ``value`` is ``[[key, total], …]`` per node
(a list, or an int64 array of shape (n, 2)); and a context with ``nodes``.
Each invoke is paired with the next op of its process (a process has one op
in flight); an invoke without a completion counts as unknown. Per key k,
with A = the acknowledged increments, U = the unknown (``info``) ones and
failed ones not applied:

- **bounds** — every replica's final total V of k lies in
  ``[ΣA + Σ min(u, 0), ΣA + Σ max(u, 0)]`` over u in U (for the workload's
  positive increments: between the acknowledged sum and that sum plus every
  unknown increment). Below is ``lost-increment``, above
  ``phantom-increment``, one count per (node, key) reading. A key missing
  from a node's read is 0 there; a stream absent on a node reads all 0.
- **one order** (keys whose increments are all positive, as the workload's
  are) — in any order of the applied increments the totals rise strictly,
  so the acknowledged ones can only be ordered by their totals (not by
  stream sequence: a stream that lost its tail reuses sequences). Sorted so,
  let ``C_i = total_i − (n_1 + … + n_i)``: what was applied before increment
  i but not acknowledged, which only unknown increments (``info``, or
  acknowledged without a ``total``) can be. An acknowledged increment is
  ``inconsistent-total`` when ``C_i < C_{i−1}`` (``C_0 = 0``; that is
  ``total_i − n_i < total_{i−1}``: the counter it was added to was below
  the previous acknowledged total, so an increment acknowledged before it
  was not counted, or a total was returned twice), or when ``C_i > C_{i−1}``
  and ``C_i > U_i``, the sum of the unknown increments of the key invoked
  before increment i's ack came back (nothing invoked later can precede it):
  more was applied before it than every unknown increment could explain
  (counted where it starts or grows, not again at each later increment).
  These are necessary conditions (exact subset sums of the unknown
  increments are not searched). After a stream lost increments, the totals
  counted again from lower values interleave with the old ones, and each
  one that cannot follow its predecessor counts.
- **duplicate-total** — a total returned by two acknowledged increments of
  one key (counted once per repeated (key, total)).
- **stream-lost**, **stalled** — as the queue checker's
  (:func:`checkers.replicas.lost_and_stalled`): a node whose read says the
  stream is gone there, a replica the recovery wait left behind at its bound;
- **divergence** — a key whose read replicas hold different totals
  (counted once per key), among the replicas that are neither stalled (their
  totals are their backlog) nor without the stream.

Out: a result dict (docs/contracts.md §2) with ``valid`` (False for any
anomaly, "unknown" when no node could be read), the counts, ``per_key``,
``per_node`` and the ``summary`` headline block with ``examples`` (shape in
:mod:`checkers.compose`). Everything is numpy over sorted arrays; Python loops
run over keys and nodes, never over increments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from checkers.anomalies import COUNTER as ANOMALIES
from checkers.queue import NodeRead, contains, node_reads, repeated, uniq
from checkers.queue_summary import replica_counts, replica_notes, replica_problems, replica_status
from checkers.replicas import lost_and_stalled
from checkers.schema import client_mask, column
from checkers.windows import recovery_record

EXAMPLES = 10


@dataclass
class Increments:
    """One entry per ``incr`` invoke: its key, increment, outcome and times."""

    key: np.ndarray  # int64
    n: np.ndarray  # int64
    kind: np.ndarray  # "ok" | "fail" | "info" (no completion: "info")
    total: np.ndarray  # float64, NaN unless ok with a total
    seq: np.ndarray  # int64, -1 unless ok
    invoked: np.ndarray  # int64 ns
    done: np.ndarray  # int64 ns, -1 without completion
    process: np.ndarray  # int64
    index: np.ndarray  # int64: the invoke's history index


def increments(ops: pd.DataFrame) -> Increments:
    """Every ``incr`` invoke with its completion (the next op of the same process)."""
    rows = np.flatnonzero((column(ops, "f") == "incr") & client_mask(ops))
    proc = column(ops, "process")[rows].astype(np.int64)
    order = np.lexsort((rows, proc))
    rows, proc = rows[order], proc[order]
    types = column(ops, "type")[rows]
    inv = np.flatnonzero(types == "invoke")
    nxt = np.minimum(inv + 1, max(len(rows) - 1, 0))
    done = (inv + 1 < len(rows)) & (proc[nxt] == proc[inv]) & (types[nxt] != "invoke")
    kind = np.where(done, types[nxt], "info").astype(object)
    kv = column(ops, "value")[rows[inv]]
    kn = np.array(kv.tolist(), dtype=np.int64).reshape(-1, 2) if len(kv) else np.empty((0, 2))
    comp = rows[nxt]
    ok = kind == "ok"
    total = np.full(len(inv), np.nan)
    seq = np.full(len(inv), -1, dtype=np.int64)
    if ok.any():
        total[ok] = pd.to_numeric(pd.Series(column(ops, "total")[comp[ok]]), errors="coerce")
        seqs = pd.to_numeric(pd.Series(column(ops, "seq")[comp[ok]]), errors="coerce")
        seq[ok] = seqs.fillna(-1).to_numpy(dtype=np.int64)
    times = column(ops, "time").astype(np.int64)
    index = column(ops, "index").astype(np.int64) if "index" in ops else np.arange(len(ops))
    return Increments(
        key=kn[:, 0].astype(np.int64),
        n=kn[:, 1].astype(np.int64),
        kind=kind,
        total=total,
        seq=seq,
        invoked=times[rows[inv]],
        done=np.where(done, times[comp], -1),
        process=proc[inv],
        index=index[rows[inv]],
    )


def _sums(idx: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """Per key index in ``0..k-1``: the sum of ``w`` (int64)."""
    out = np.zeros(k, dtype=np.int64)
    np.add.at(out, idx, w)
    return out


def _readings(reads: dict[str, NodeRead], keys: np.ndarray) -> dict[str, np.ndarray]:
    """Per read node: (key index, total) rows, a key the read lacks at 0."""
    out = {}
    for node, nr in reads.items():
        if nr.status == "unread":
            continue
        pairs = nr.pairs
        kidx = np.searchsorted(keys, pairs[:, 0])
        lacks = np.flatnonzero(~contains(uniq(pairs[:, 0]), keys))
        out[node] = np.concatenate(
            [np.stack([kidx, pairs[:, 1]], axis=1), np.stack([lacks, lacks * 0], axis=1)]
        ).astype(np.int64)
    return out


def _order(inc: Increments, mine: np.ndarray) -> dict[str, Any]:
    """One key's acknowledged totals against one order (module docstring); ``mine`` are
    the indexes of its increments. Sorted by total, as positive increments must be."""
    kind = inc.kind[mine]
    placed = ~np.isnan(inc.total[mine]) & (kind == "ok")
    ok = mine[placed]
    ok = ok[np.lexsort((inc.seq[ok], inc.total[ok]))]
    # acknowledged without a total: applied somewhere, like an unknown one that was
    unk = mine[(kind == "info") | ((kind == "ok") & ~placed)]
    unk = unk[np.argsort(inc.invoked[unk], kind="stable")]
    c = inc.total[ok] - np.cumsum(inc.n[ok])
    prev = np.concatenate([[0.0], c[:-1]])
    room = np.concatenate([[0], np.cumsum(inc.n[unk])])
    before = np.searchsorted(inc.invoked[unk], inc.done[ok], side="left")
    over = c > room[before]
    was_over = np.concatenate([[False], over[:-1]])
    bad = (c < prev) | (over & ~(was_over & (c <= prev)))  # a drop, or newly beyond the room
    totals = inc.total[ok].astype(np.int64)
    dups = repeated(totals)
    return {
        "bad": ok[bad],
        "prev": np.concatenate([[-1], ok[:-1]])[bad],
        "room": room[before][bad],
        "dups": dups,
        "dup_rows": ok[contains(dups, totals)],
    }


def check_counter(ops: pd.DataFrame, context: dict[str, Any]) -> dict[str, Any]:
    """Check a counter-workload history; see the module docstring for the result's meaning."""
    inc = increments(ops)
    reads = node_reads(ops, list(context.get("nodes") or []))
    read_keys = [nr.pairs[:, 0] for nr in reads.values()]
    keys = uniq(np.concatenate([inc.key, *read_keys]))
    kidx = np.searchsorted(keys, inc.key)
    nk = len(keys)
    ok, info = inc.kind == "ok", inc.kind == "info"
    acked_sum = _sums(kidx[ok], inc.n[ok], nk)
    low = acked_sum + _sums(kidx[info], np.minimum(inc.n[info], 0), nk)
    high = acked_sum + _sums(kidx[info], np.maximum(inc.n[info], 0), nk)
    readings = _readings(reads, keys)
    per_node: dict[str, dict[str, Any]] = {}
    lost_rows, phantom_rows = [], []
    short = np.zeros(nk, dtype=np.int64)
    for node, nr in reads.items():
        entry: dict[str, Any] = {"status": nr.status, "note": nr.note}
        r = readings.get(node)
        if r is not None:
            below, above = r[:, 1] < low[r[:, 0]], r[:, 1] > high[r[:, 0]]
            np.maximum.at(short, r[below, 0], low[r[below, 0]] - r[below, 1])
            lost_rows += [(node, *row) for row in r[below].tolist()]
            phantom_rows += [(node, *row) for row in r[above].tolist()]
            entry.update(lost_count=int(below.sum()), phantom_count=int(above.sum()))
        per_node[node] = entry
    by_key = np.argsort(kidx, kind="stable")
    cuts = np.searchsorted(kidx[by_key], np.arange(nk + 1))
    positive = np.ones(nk, dtype=bool)
    np.logical_and.at(positive, kidx, inc.n > 0)
    orders = [_order(inc, by_key[cuts[k] : cuts[k + 1]]) for k in np.flatnonzero(positive)]
    bad = np.concatenate([o["bad"] for o in orders]).astype(np.int64)
    absent = {n: nr.note for n, nr in reads.items() if nr.absent}
    rep = lost_and_stalled(absent, set(readings), recovery_record(ops), context.get("nodes_dir"))
    apart = rep["stalled"].keys() | absent.keys()  # behind, or without the stream: no verdict
    divergent = _divergent({n: r for n, r in readings.items() if n not in apart}, nk)
    counts = {
        "lost-increment": len(lost_rows),
        "phantom-increment": len(phantom_rows),
        "inconsistent-total": len(bad),
        "duplicate-total": sum(len(o["dups"]) for o in orders),
        **rep["counts"],
        "divergence": len(divergent),
    }
    anomalies = [a for a in ANOMALIES if counts[a]]
    valid: bool | str = not anomalies if readings else "unknown"
    result: dict[str, Any] = {
        "valid": valid,
        "anomalies": anomalies,
        "key_count": nk,
        "attempt_count": len(inc.key),
        "acknowledged_count": int(ok.sum()),
        "acknowledged_sum": int(acked_sum.sum()),
        "failed_count": int((inc.kind == "fail").sum()),
        "unknown_count": int(info.sum()),
        "unknown_sum": int(inc.n[info].sum()),
        "reading_count": sum(len(r) for r in readings.values()),
        "order_checked_keys": int(positive.sum()),
        "lost_increment_count": counts["lost-increment"],
        "lost_amount": int(short.sum()),
        "phantom_increment_count": counts["phantom-increment"],
        "inconsistent_total_count": counts["inconsistent-total"],
        "duplicate_total_count": counts["duplicate-total"],
        "divergence_count": counts["divergence"],
        "per_key": _per_key(keys, inc, kidx, acked_sum, low, high, readings),
        "per_node": per_node,
        "unread_nodes": sorted(n for n, nr in reads.items() if nr.status == "unread"),
        "stream_lost": rep["stream_lost"],
        "stalled": rep["stalled"],
    }
    tables = _examples(
        keys, inc, (acked_sum, low, high), (lost_rows, phantom_rows), orders, readings, divergent
    )
    result["summary"] = summarize(result)
    result["summary"]["examples"] = tables
    return result


def _divergent(readings: dict[str, np.ndarray], nk: int) -> np.ndarray:
    """Key indexes whose read replicas hold more than one distinct total."""
    if not readings:
        return np.empty(0, dtype=np.int64)
    every = np.concatenate(list(readings.values()))
    distinct = np.unique(every, axis=0)
    return np.flatnonzero(np.bincount(distinct[:, 0], minlength=nk) > 1)


def _per_key(
    keys: np.ndarray,
    inc: Increments,
    kidx: np.ndarray,
    acked_sum: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    readings: dict[str, np.ndarray],
) -> dict[str, dict[str, Any]]:
    acked = np.bincount(kidx[inc.kind == "ok"], minlength=len(keys))
    unknown = np.bincount(kidx[inc.kind == "info"], minlength=len(keys))
    out: dict[str, dict[str, Any]] = {}
    for i, key in enumerate(keys.tolist()):
        finals = {n: sorted(set(r[r[:, 0] == i, 1].tolist())) for n, r in readings.items()}
        out[str(key)] = {
            "acknowledged": int(acked[i]),
            "acknowledged_sum": int(acked_sum[i]),
            "unknown": int(unknown[i]),
            "low": int(low[i]),
            "high": int(high[i]),
            "finals": finals,
        }
    return out


# ---- examples: the first cases of each anomaly, with the ops involved ----

BOUND_HEAD = ["node", "key", "final total", "acknowledged sum", "allowed range"]
INCR_HEAD = ["key", "seq", "increment", "total", "process", "index", "acked at (s)"]


BAD_KEYS = ("bad", "prev", "room")


def _incr_row(inc: Increments, i: int) -> list[Any]:
    """Increment ``i`` as a row of :data:`INCR_HEAD`."""
    return [
        int(inc.key[i]),
        int(inc.seq[i]),
        int(inc.n[i]),
        None if np.isnan(inc.total[i]) else int(inc.total[i]),
        int(inc.process[i]),
        int(inc.index[i]),
        round(inc.done[i] / 1e9, 3),
    ]


def _examples(
    keys: np.ndarray,
    inc: Increments,
    bounds: tuple[np.ndarray, np.ndarray, np.ndarray],
    found: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]],
    orders: list[dict[str, Any]],
    readings: dict[str, np.ndarray],
    divergent: np.ndarray,
) -> list[dict[str, Any]]:
    """``summary.examples``: a table per anomaly found, its first :data:`EXAMPLES` cases."""
    acked_sum, low, high = bounds
    out = []
    for title, cases, what in (
        ("Lost increments", found[0], "below the sum of its acknowledged increments"),
        ("Phantom increments", found[1], "above what every unknown increment could add"),
    ):
        if cases:
            rows = [
                [n, int(keys[k]), v, int(acked_sum[k]), f"{low[k]}..{high[k]}"]
                for n, k, v in cases[:EXAMPLES]
            ]
            note = f"{len(cases):,} replica counters hold a final total {what}."
            out.append({"title": title, "note": note, "head": BOUND_HEAD, "rows": rows})
    bad = [
        (int(b), int(p), int(r))
        for o in orders
        for b, p, r in zip(*(o[x] for x in BAD_KEYS), strict=True)
    ]
    if bad:
        rows = []
        for b, p, room in bad[:EXAMPLES]:
            prev = [int(inc.seq[p]), int(inc.total[p])] if p >= 0 else [None, 0]
            rows.append([*_incr_row(inc, b), *prev, room])
        head = [*INCR_HEAD, "previous seq", "previous total", "unknown sum before its ack"]
        note = (
            f"{len(bad):,} acknowledged increments whose total fits no single order of the "
            "increments (stream order, with the unknown ones invoked before its ack)."
        )
        out.append({"title": "Inconsistent totals", "note": note, "head": head, "rows": rows})
    dup_rows = [int(i) for o in orders for i in o["dup_rows"]]
    if dup_rows:
        rows = [_incr_row(inc, i) for i in dup_rows[:EXAMPLES]]
        n = sum(len(o["dups"]) for o in orders)
        note = f"{n:,} totals returned to more than one acknowledged increment of the same key."
        out.append({"title": "Duplicate totals", "note": note, "head": INCR_HEAD, "rows": rows})
    if len(divergent):
        rows = []
        for k in divergent[:EXAMPLES].tolist():
            held = {n: sorted(set(r[r[:, 0] == k, 1].tolist())) for n, r in readings.items()}
            rows.append([int(keys[k]), "; ".join(f"{n}: {v}" for n, v in sorted(held.items()))])
        note = f"{len(divergent):,} counters whose replicas hold different final totals."
        out.append(
            {"title": "Divergent counters", "note": note, "head": ["key", "totals"], "rows": rows}
        )
    return out


# ---- the headline block (checkers.verdict reads it; see checkers.compose) ----

COUNTS = (
    ("attempted", "attempt_count", "increments invoked", False),
    ("acknowledged", "acknowledged_count", "increments the server acknowledged", False),
    ("acknowledged sum", "acknowledged_sum", "the sum of the acknowledged increments", False),
    ("lost", "lost_increment_count", "replica counters below the acknowledged sum", True),
    ("phantom", "phantom_increment_count", "replica counters above every possible sum", True),
    ("inconsistent totals", "inconsistent_total_count", "totals that fit no one order", True),
    ("duplicate totals", "duplicate_total_count", "a total returned to two increments", True),
    ("divergent", "divergence_count", "counters whose replicas disagree", True),
    ("failed", "failed_count", "increments that definitely failed (allowed)", False),
    ("unknown", "unknown_count", "increments of unknown outcome (allowed)", False),
)


def _count(name: str, value: Any, meaning: str, bad: bool) -> dict[str, Any]:
    return {"name": name, "value": value, "bad": bool(bad and value), "meaning": meaning}


def _problems(c: dict[str, Any]) -> list[str]:
    parts = []
    if c.get("lost_increment_count"):
        total = c.get("acknowledged_sum") or 0
        parts.append(
            f"LOST increments on {c['lost_increment_count']:,} of {c.get('reading_count', 0):,} "
            f"replica counters ({c.get('lost_amount', 0):,} of {total:,} acknowledged)"
        )
    for key, label in (
        ("phantom_increment_count", "phantom (above every possible sum)"),
        ("inconsistent_total_count", "inconsistent totals"),
        ("duplicate_total_count", "duplicate totals"),
        ("divergence_count", "counters divergent between replicas"),
    ):
        if c.get(key):
            parts.append(f"{c[key]:,} {label}")
    return parts + replica_problems(c)


def summarize(c: dict[str, Any]) -> dict[str, Any]:
    """The headline block of a counter result (see ``checkers.compose``).

    ``headline`` by ``valid``: True ``4,321 acknowledged increments over 3
    counters, every replica within bounds``; False ``LOST increments on 3 of
    9 replica counters (1,234 of 216,050 acknowledged); 2 inconsistent
    totals``; "unknown" ``unread nodes: n1, n2``.
    """
    acked, keys = c.get("acknowledged_count") or 0, c.get("key_count") or 0
    unread = list(c.get("unread_nodes") or [])
    if c.get("valid") is True:
        headline = (
            f"{acked:,} acknowledged increments over {keys:,} counters, every replica within bounds"
        )
    elif c.get("valid") is False:
        headline = "; ".join(_problems(c)) or ", ".join(c.get("anomalies") or [])
    else:
        headline = f"unread nodes: {', '.join(unread)}" if unread else "no node was read"
    total = c.get("acknowledged_sum") or 0
    lost = c.get("lost_amount") or 0
    nodes = [
        {
            "node": node,
            "status": replica_status(c, node, str(d.get("status", ""))),
            "note": str(d.get("note") or ""),
            "counts": [
                _count("lost", d.get("lost_count"), "counters below the acknowledged sum", True),
                _count("phantom", d.get("phantom_count"), "counters above every sum", True),
            ],
        }
        for node, d in (c.get("per_node") or {}).items()
    ]
    return {
        "headline": headline,
        "counts": [_count(n, c[k], m, bad) for n, k, m, bad in COUNTS if k in c]
        + replica_counts(c),
        "row": {
            "acknowledged": acked,
            "lost": c.get("lost_increment_count") or 0,
            "lost_pct": round(100.0 * lost / total, 2) if total else 0.0,
        },
        "rate": {"name": "lost_pct", "label": "acknowledged increment sum lost (%)"},
        "unread_nodes": unread,
        "nodes": nodes,
        "notes": replica_notes(c),
    }
