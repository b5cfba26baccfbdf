"""The consumer checker: did one durable pull consumer deliver every acknowledged publish,
and keep the acks it confirmed?

In: the ops DataFrame of a consumer-workload history (the ops are documented
in ``harness/workloads/consumer.py``): ``publish`` (as the queue's),
``fetch`` (``ok`` value ``[stream_seq, value, num_delivered]`` triples,
with ``worker``), ``ack`` (value ``[stream_seq, value]``; ``ok`` = the
server confirmed it) and the final ``drain`` (``ok`` value
``[stream_seq, value, num_delivered, acked]``, with ``batches`` and the
consumer's ``state`` after it).

Out: a result dict (docs/contracts.md §2). With A = attempted, K =
acknowledged publishes and D = values delivered by any fetch or the drain:

- ``lost-to-consumer``: K − D, decided only when the drain completed ``ok``;
- ``redelivered-after-ack``: a delivery of a value whose ack was confirmed
  before the fetch that delivered it began (in the drain, which is
  sequential: a delivery in a later fetch than the confirmed ack);
- ``out-of-order``: per consumer worker (the drain is one more), a value
  delivered for the first time (by anyone, ``num_delivered`` 1) at a lower
  stream sequence than an earlier first delivery to that worker — the
  consumer skipped a message and came back to it; redeliveries are out of
  order by nature and not counted;
- ``consumer-state-mismatch``: the state after the drain against what was
  acked — the consumer is gone though acks were confirmed; its ack floor is
  below the highest contiguous confirmed ack (every stream sequence 1…k
  confirmed); it still reports messages pending (never delivered) after a
  drain that ran out of time asking for them (ack-pending messages are
  not judged: they come back only after ``ack_wait``, which may outlast
  the drain);
- ``unexpected``: D − A.

Redeliveries are counted, not judged: a histogram of ``num_delivered`` over
all deliveries, and values delivered again with ``num_delivered`` 1 (the
consumer forgot it had delivered them). ``valid`` is False for any anomaly,
"unknown" when there is no ``ok`` drain or the drain could not read the
consumer's state, else True. Set algebra over sorted numpy arrays; Python
loops only over fetch ops while flattening, and over examples.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from checkers.queue import (
    _publishes,
    ack_histogram,
    contains,
    hist_width_ms,
    repeated,
    uniq,
)
from checkers.schema import client_mask, column

EXAMPLES = 10
SAMPLE = 20


def _flat(values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Lists of ``width``-lists as one int64 array (n, width), and each list's length."""
    lens = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
    items = chain.from_iterable(chain.from_iterable(values))
    flat = np.fromiter(items, dtype=np.int64, count=int(lens.sum()) * width)
    return flat.reshape(-1, width), lens


def _invoke_rows(ops: pd.DataFrame) -> np.ndarray:
    """For each row, the row of its invoke (a client completion's; -1 for anything else)."""
    out = np.full(len(ops), -1, dtype=np.int64)
    rows = np.flatnonzero(client_mask(ops))
    if len(rows) == 0:
        return out
    procs = column(ops, "process")[rows].astype(np.int64)
    order = np.lexsort((rows, procs))  # each process's ops in order: invoke, completion, …
    s, same = rows[order], procs[order]
    after = same[1:] == same[:-1]  # the op before is the same process's: its invoke
    out[s[1:][after]] = s[:-1][after]
    return out


class _Deliveries:
    """Every delivery of the history, in one table of parallel arrays.

    ``key`` orders deliveries against confirmed acks: a main-phase delivery
    is keyed by its fetch's invoke time; the drain's deliveries of fetch
    ``b`` by the drain's invoke time + 2b + 1 (its acks of that fetch: + 2b + 2).
    """

    def __init__(self, ops: pd.DataFrame) -> None:
        f, types = column(ops, "f"), column(ops, "type")
        times = column(ops, "time").astype(np.int64)
        inv = _invoke_rows(ops)
        self.inv = inv
        fetch = np.flatnonzero((f == "fetch") & (types == "ok"))
        trip, lens = _flat(column(ops, "value")[fetch], 3)
        rows = np.repeat(fetch, lens)
        workers = column(ops, "worker")[fetch]
        self.drains = np.flatnonzero((f == "drain") & (types == "ok"))
        quad, dlens = _flat(column(ops, "value")[self.drains], 4)
        batch = np.concatenate(
            [np.empty(0, dtype=np.int64)]
            + [self._batch_of(ops, int(r), int(n)) for r, n in zip(self.drains, dlens, strict=True)]
        )
        drows = np.repeat(self.drains, dlens)
        dstart = times[np.maximum(inv[drows], 0)] if len(drows) else drows
        self.seq = np.concatenate([trip[:, 0], quad[:, 0]])
        self.value = np.concatenate([trip[:, 1], quad[:, 1]])
        self.nd = np.concatenate([trip[:, 2], quad[:, 2]])
        self.row = np.concatenate([rows, drows])  # the fetch (or drain) completion row
        w = np.repeat(np.asarray([_int(x) for x in workers], dtype=np.int64), lens)
        self.worker = np.concatenate([w, np.full(len(drows), -1, dtype=np.int64)])
        self.key = np.concatenate([times[np.maximum(inv[rows], 0)], dstart + 2 * batch + 1])
        self.pos = np.arange(len(self.seq))  # delivery order within each fetch
        self.drain_acked = quad[:, 3] == 1
        self.drain_ack = (quad[:, 1], dstart + 2 * batch + 2, drows, quad[:, 0])

    @staticmethod
    def _batch_of(ops: pd.DataFrame, row: int, n: int) -> np.ndarray:
        """Which fetch of the drain each of its ``n`` deliveries came from (0, 1, …)."""
        sizes = ops["batches"].iat[row] if "batches" in ops else None
        if not isinstance(sizes, list) or sum(sizes) != n:  # no boundaries: one fetch each
            return np.arange(n, dtype=np.int64)
        return np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)

    def __len__(self) -> int:
        return len(self.seq)


def _int(x: Any) -> int:
    try:
        return int(x)
    except (TypeError, ValueError):
        return -1


def _confirmed_acks(ops: pd.DataFrame, d: _Deliveries) -> pd.DataFrame:
    """Every confirmed ack: value, seq, key (when it was confirmed), row; ordered by key."""
    f, types = column(ops, "f"), column(ops, "type")
    rows = np.flatnonzero((f == "ack") & (types == "ok"))
    pairs = np.asarray(list(column(ops, "value")[rows]), dtype=np.int64).reshape(-1, 2)
    dv, dk, drow, dseq = d.drain_ack
    m = d.drain_acked
    frame = pd.DataFrame(
        {
            "value": np.concatenate([pairs[:, 1], dv[m]]),
            "seq": np.concatenate([pairs[:, 0], dseq[m]]),
            "key": np.concatenate([column(ops, "time")[rows].astype(np.int64), dk[m]]),
            "row": np.concatenate([rows, drow[m]]),
        }
    )
    return frame.sort_values(["key", "row"], kind="stable").reset_index(drop=True)


def _after_ack(d: _Deliveries, acks: pd.DataFrame) -> np.ndarray:
    """Indices of deliveries after the first confirmed ack of their value."""
    first = acks.drop_duplicates("value").sort_values("value")
    vals, keys = first["value"].to_numpy(), first["key"].to_numpy()
    hit = contains(vals, d.value)
    at = np.minimum(np.searchsorted(vals, d.value), max(len(vals) - 1, 0))
    late = hit & (d.key > (keys[at] if len(keys) else d.key))
    return np.flatnonzero(late)


def _out_of_order(d: _Deliveries) -> np.ndarray:
    """Indices of first deliveries below an earlier first delivery to the same worker."""
    order = np.lexsort((d.pos, d.row, d.key))
    v = d.value[order]
    _, first_at = np.unique(v, return_index=True)
    first = np.zeros(len(order), dtype=bool)
    first[first_at] = True
    first &= d.nd[order] == 1
    idx = order[first]
    out = []
    for w in np.unique(d.worker[idx]):
        mine = idx[d.worker[idx] == w]
        s = d.seq[mine]
        before = np.maximum.accumulate(s)
        late = np.zeros(len(s), dtype=bool)
        late[1:] = s[1:] < before[:-1]
        out.append(mine[late])
    return np.sort(np.concatenate(out)) if out else idx[:0]


def _contiguous(seqs: np.ndarray) -> int:
    """The largest k such that every stream sequence 1 … k is in ``seqs``."""
    s = uniq(seqs[seqs >= 1])
    gaps = np.flatnonzero(s != np.arange(1, len(s) + 1))
    return int(gaps[0]) if len(gaps) else len(s)


def _state_mismatches(
    state: dict[str, Any] | None, drain_row: dict[str, Any], acks: pd.DataFrame
) -> list[dict[str, Any]]:
    """How the consumer's state after the drain disagrees with what was acked."""
    if not isinstance(state, dict):
        return []
    floor = _contiguous(acks["seq"].to_numpy())
    if not state.get("present"):
        if len(acks):
            return [_mismatch("present", "yes", "no such consumer", f"{len(acks):,} acks")]
        return []
    out = []
    if int(state.get("ack_floor_stream") or 0) < floor:
        got = int(state.get("ack_floor_stream") or 0)
        out.append(_mismatch("ack floor", f">= {floor:,}", f"{got:,}", "contiguous confirmed"))
    if not drain_row.get("drained") and int(state.get("num_pending") or 0) > 0:
        n = int(state["num_pending"])
        out.append(_mismatch("num_pending", "0", f"{n:,}", "never delivered to the drain"))
    return out


def _mismatch(check: str, expected: str, found: str, note: str) -> dict[str, Any]:
    return {"check": check, "expected": expected, "found": found, "note": note}


def _drain_facts(ops: pd.DataFrame, d: _Deliveries) -> dict[str, Any]:
    """The last ``ok`` drain's fields (empty when there is none)."""
    if not len(d.drains):
        return {}
    row = int(d.drains[-1])
    get = lambda k: ops[k].iat[row] if k in ops else None  # noqa: E731
    return {
        "row": row,
        "drained": bool(get("drained") is True),
        "state": get("state") if isinstance(get("state"), dict) else None,
        "error_seen": get("error_seen") if isinstance(get("error_seen"), str) else None,
    }


def check_consumer(ops: pd.DataFrame, context: dict[str, Any]) -> dict[str, Any]:
    """Check a consumer-workload history; see the module docstring for the result's meaning."""
    invokes, acked_pubs, _failed = _publishes(ops)
    attempted = invokes["value"].to_numpy()
    acked = acked_pubs["value"].to_numpy()
    d = _Deliveries(ops)
    acks = _confirmed_acks(ops, d)
    delivered = uniq(d.value)
    drain = _drain_facts(ops, d)
    lost = acked[~contains(delivered, acked)]
    unexpected = delivered[~contains(attempted, delivered)]
    late = _after_ack(d, acks)
    disorder = _out_of_order(d)
    mismatches = _state_mismatches(drain.get("state"), drain, acks)
    decided = bool(drain) and drain.get("state") is not None
    counts = {
        "lost-to-consumer": len(lost) if drain else 0,
        "redelivered-after-ack": len(late),
        "out-of-order": len(disorder),
        "consumer-state-mismatch": len(mismatches),
        "unexpected": len(unexpected),
    }
    anomalies = [name for name, c in counts.items() if c > 0]
    valid: bool | str = False if anomalies else (True if decided else "unknown")
    nd_values, nd_counts = np.unique(d.nd, return_counts=True)
    first_again = repeated(d.value[d.nd == 1])
    per_worker = {
        ("drain" if w < 0 else str(w)): int((d.worker[disorder] == w).sum())
        for w in np.unique(d.worker)
    }
    result: dict[str, Any] = {
        "valid": valid,
        "anomalies": anomalies,
        "attempt_count": len(attempted),
        "acknowledged_count": len(acked),
        "delivered_count": len(delivered),
        "delivery_count": len(d),
        "redelivery_count": int((d.nd > 1).sum()),
        "acks_confirmed_count": len(acks),
        "drained": drain.get("drained"),
        "lost_to_consumer_count": len(lost) if drain else None,
        "lost_to_consumer": np.sort(lost)[:SAMPLE].tolist() if drain else [],
        "redelivered_after_ack_count": len(late),
        "redelivered_after_ack_values": len(uniq(d.value[late])),
        "out_of_order_count": len(disorder),
        "out_of_order_per_worker": per_worker,
        "unexpected_count": len(unexpected),
        "unexpected": unexpected[:SAMPLE].tolist(),
        "redelivered_as_new_count": len(first_again),
        "num_delivered_histogram": {
            str(k): int(c) for k, c in zip(nd_values, nd_counts, strict=True)
        },
        "consumer_state": drain.get("state"),
        "consumer_state_mismatches": mismatches,
        "highest_contiguous_ack": _contiguous(acks["seq"].to_numpy()),
    }
    result["summary"] = _summary(result, drain)
    result["summary"]["examples"] = _examples(ops, d, acks, acked_pubs, lost, late, disorder)
    result["summary"]["examples"] += _other_examples(ops, d, unexpected, mismatches)
    result["summary"]["nodes"] = _node_rows(ops)
    result["summary"]["over_time"] = _over_time(acked_pubs, lost)
    return result


# ---- the headline block and the example tables (checkers.compose documents the shape) ----


def _count(name: str, value: Any, meaning: str, bad: bool) -> dict[str, Any]:
    return {"name": name, "value": value, "bad": bool(bad and value), "meaning": meaning}


COUNTS = (
    ("attempted", "attempt_count", "publishes invoked", False),
    ("acknowledged", "acknowledged_count", "publishes the server acknowledged", False),
    ("delivered", "delivered_count", "distinct values any fetch or the drain delivered", False),
    ("deliveries", "delivery_count", "messages delivered, redeliveries included", False),
    ("redeliveries", "redelivery_count", "deliveries with num_delivered > 1 (allowed)", False),
    ("acks confirmed", "acks_confirmed_count", "ack_sync returned", False),
    ("lost to consumer", "lost_to_consumer_count", "acknowledged, never delivered", True),
    (
        "redelivered after ack",
        "redelivered_after_ack_count",
        "delivered after a confirmed ack",
        True,
    ),
    ("out of order", "out_of_order_count", "first delivered below an earlier first delivery", True),
    ("state mismatches", "consumer_state_mismatch_count", "consumer state vs the acks", True),
    ("unexpected", "unexpected_count", "delivered, but never published", True),
    ("redelivered as new", "redelivered_as_new_count", "delivered twice with count 1", False),
)


def _problems(r: dict[str, Any]) -> list[str]:
    acked = r["acknowledged_count"]
    parts = []
    lost = r.get("lost_to_consumer_count") or 0
    if lost:
        pct = 100.0 * lost / acked if acked else 0.0
        parts.append(f"{lost:,} of {acked:,} acknowledged publishes never delivered ({pct:.2f}%)")
    if r["redelivered_after_ack_count"]:
        parts.append(f"{r['redelivered_after_ack_count']:,} redelivered after a confirmed ack")
    if r["out_of_order_count"]:
        parts.append(f"{r['out_of_order_count']:,} delivered out of order")
    for m in r["consumer_state_mismatches"][:2]:
        if m["check"] == "present":
            parts.append(f"the consumer is gone ({m['note']} were confirmed)")
        else:
            parts.append(f"consumer {m['check']} {m['found']} (expected {m['expected']})")
    if r["unexpected_count"]:
        parts.append(f"{r['unexpected_count']:,} unexpected")
    return parts


def _summary(r: dict[str, Any], drain: dict[str, Any]) -> dict[str, Any]:
    r["consumer_state_mismatch_count"] = len(r["consumer_state_mismatches"])
    acked = r["acknowledged_count"]
    lost = r.get("lost_to_consumer_count") or 0
    if r["valid"] is True:
        headline = (
            f"{acked:,} acknowledged publishes, all delivered; "
            f"{r['redelivered_after_ack_count']:,} redelivered after ack"
        )
    elif r["valid"] is False:
        headline = "; ".join(_problems(r))
    elif not drain:
        headline = "no final drain completed: deliveries cannot be decided"
    else:
        headline = "the drain could not read the consumer's state"
    notes = []
    if drain and not drain.get("drained"):
        notes.append("The final drain ran out of time before the consumer was empty.")
    if drain.get("error_seen"):
        notes.append(f"The drain retried after: {drain['error_seen']}.")
    hist = r["num_delivered_histogram"]
    if hist:
        shown = ", ".join(f"{k}×: {v:,}" for k, v in hist.items())
        notes.append(f"Deliveries by num_delivered: {shown}.")
    state = r.get("consumer_state") or {}
    if state.get("present"):
        notes.append(
            f"Consumer after the drain: ack floor {state.get('ack_floor_stream', 0):,} "
            f"(highest contiguous confirmed ack {r['highest_contiguous_ack']:,}), "
            f"{state.get('num_pending', 0):,} pending, {state.get('num_ack_pending', 0):,} "
            f"ack-pending, {state.get('num_redelivered', 0):,} redelivered."
        )
    return {
        "headline": headline,
        "counts": [_count(n, r.get(k), m, bad) for n, k, m, bad in COUNTS],
        "row": {
            "acknowledged": acked,
            "lost_to_consumer": lost,
            "lost_pct": round(100.0 * lost / acked, 2) if acked else 0.0,
            "redelivered_after_ack": r["redelivered_after_ack_count"],
        },
        "rate": {"name": "lost_pct", "label": "acknowledged publishes never delivered (%)"},
        "notes": notes,
    }


def _op(ops: pd.DataFrame, row: int) -> str:
    """``#412 p7 n2 3.21s``: an op by its index, process, node and time."""
    if row < 0:
        return "-"
    index, proc, node = (ops[k].iat[row] if k in ops else "?" for k in ("index", "process", "node"))
    return f"#{index} p{proc} {node} {int(ops['time'].iat[row]) / 1e9:.2f}s"


def _examples(
    ops: pd.DataFrame,
    d: _Deliveries,
    acks: pd.DataFrame,
    pubs: pd.DataFrame,
    lost: np.ndarray,
    late: np.ndarray,
    disorder: np.ndarray,
) -> list[dict[str, Any]]:
    out = []
    if len(lost):
        rows = []
        f, types, values = column(ops, "f"), column(ops, "type"), column(ops, "value")
        ok_rows = np.flatnonzero((f == "publish") & (types == "ok"))
        ok_vals = values[ok_rows].astype(np.int64)
        for v in np.sort(lost)[:EXAMPLES].tolist():
            row = int(ok_rows[np.flatnonzero(ok_vals == v)[0]])
            seq = ops["seq"].iat[row] if "seq" in ops else None
            rows.append([v, _int(seq), _op(ops, row)])
        out.append(
            {
                "title": "Lost to the consumer",
                "note": "acknowledged publishes that no fetch and not the final drain delivered",
                "head": ["value", "seq", "publish ok"],
                "rows": rows,
            }
        )
    if len(late):
        first = acks.drop_duplicates("value").set_index("value")
        rows = []
        for i in late[:EXAMPLES].tolist():
            v = int(d.value[i])
            ack_row = int(first.at[v, "row"])
            rows.append(
                [v, int(d.seq[i]), _op(ops, ack_row), _op(ops, int(d.row[i])), int(d.nd[i])]
            )
        out.append(
            {
                "title": "Redelivered after a confirmed ack",
                "note": "ack_sync returned, then a fetch begun afterwards delivered it again",
                "head": ["value", "seq", "ack ok", "delivered again by", "num_delivered"],
                "rows": rows,
            }
        )
    if len(disorder):
        rows = [
            [
                "drain" if d.worker[i] < 0 else int(d.worker[i]),
                int(d.seq[i]),
                int(d.value[i]),
                _op(ops, int(d.row[i])),
            ]
            for i in disorder[:EXAMPLES].tolist()
        ]
        out.append(
            {
                "title": "Out-of-order deliveries",
                "note": "first deliveries below a stream sequence this worker was delivered before",
                "head": ["worker", "seq", "value", "fetch ok"],
                "rows": rows,
            }
        )
    return out


def _other_examples(
    ops: pd.DataFrame, d: _Deliveries, unexpected: np.ndarray, mismatches: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    out = []
    if mismatches:
        out.append(
            {
                "title": "Consumer state mismatches",
                "note": "the consumer's state after the drain, against the confirmed acks",
                "head": ["check", "expected", "consumer says", "why"],
                "rows": [[m["check"], m["expected"], m["found"], m["note"]] for m in mismatches],
            }
        )
    if len(unexpected):
        rows = []
        for v in unexpected[:EXAMPLES].tolist():
            i = int(np.flatnonzero(d.value == v)[0])
            rows.append([v, int(d.seq[i]), _op(ops, int(d.row[i]))])
        out.append(
            {
                "title": "Unexpected deliveries",
                "note": "values delivered that no publish sent",
                "head": ["value", "seq", "delivered by"],
                "rows": rows,
            }
        )
    return out


def _node_rows(ops: pd.DataFrame) -> list[dict[str, Any]]:
    """Per node the consumer workers were bound to: their fetches' deliveries and their acks."""
    f, types, nodes = column(ops, "f"), column(ops, "type"), column(ops, "node")
    done = types != "invoke"
    rows = []
    for node in sorted({str(n) for n in nodes[(f == "fetch") & done]}):
        mine = done & (nodes == node)
        fetched = column(ops, "value")[mine & (f == "fetch") & (types == "ok")]
        counts = [
            _count("delivered", sum(len(v) for v in fetched), "messages its fetches got", False),
            _count("acked", int((mine & (f == "ack") & (types == "ok")).sum()), "confirmed", False),
            _count(
                "ack unknown", int((mine & (f == "ack") & (types == "info")).sum()), "info", False
            ),
        ]
        rows.append({"node": node, "status": "consumed", "note": "", "counts": counts})
    return rows


def _over_time(pubs: pd.DataFrame, lost: np.ndarray) -> dict[str, Any]:
    times = pubs["time"].to_numpy()
    width = hist_width_ms(times)
    return {
        "label": "lost to consumer",
        "ylabel": "never delivered",
        "caption": "Acknowledged publishes never delivered, by when they were acknowledged.",
        "overall": ack_histogram(times[contains(np.sort(lost), pubs["value"].to_numpy())], width),
        "per_node": {},
    }
