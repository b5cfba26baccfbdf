"""The dedup checker: is every message id stored once, and do the acks tell the truth?

In: the ops DataFrame of a dedup-workload history (``harness.workloads.dedup``;
:mod:`checkers.schema`) and a context with ``nodes``. A message id's
*attempts* are its ``publish`` invokes (``value`` = the id), each with one
completion; an ``ok`` completion carries the ack's ``seq`` and
``duplicate``. Final ``read`` completions carry, per node, the stream as
``[stream_seq, msg_id, value]`` triples and the stream's
``duplicate_window`` (seconds; without it every repeat counts).

Out: a result dict (docs/contracts.md §2). With A = ids attempted, K = ids
acknowledged (any ``ok``) and R = ids read on any node:

- ``duplicated-id``: an id stored at two stream sequences on one node, its
  attempts all invoked within the duplicate window (first to last invoke);
  copies further apart are counted as allowed (``duplicated_outside_window``);
- ``lost``: K − R;
- ``phantom-duplicate``: an ack with ``duplicate: true`` for an id that no
  earlier attempt could have stored (there was none, or each one
  definitely failed), or that no node stores and no ack ever gave as newly
  stored (``duplicate: false``): the server vouched for a copy there is no
  evidence of (such an id is lost as well);
- ``unexpected``: an id read that was never attempted, or stored with a
  payload other than its id (a missing or foreign ``Nats-Msg-Id`` reads as -1);
- ``failed-but-read``: an id every attempt of which definitely failed, yet read;
- the replica anomalies, as the queue checker's (:func:`checkers.queue.replica_findings`,
  :mod:`checkers.replicas`) over (seq, id) with each id's first acknowledgement time:
  ``stream-lost``, ``stalled``, ``replica-groups``, ``holes`` and ``divergence``
  (a replica, not stalled, ending short of another), with the same result keys.

Allowed, and counted: ``recovered`` (R ∩ (A − K)), ``failed``, ``unknown``,
``reaccepted`` (an id acked as newly stored twice, at two sequences: with
one copy left, the first was lost and the server forgot it, which ``lost``
does not see), ``moved`` (acked at a sequence that holds another id on
every node, while the id is stored elsewhere). ``valid`` is False for any
anomaly, "unknown" when no node could be read, else True.

The ``summary`` block (:mod:`checkers.compose`) reads e.g. ``5,432 ids
acknowledged, each stored once``; its ``examples`` show the first ids of
each anomaly with every attempt (process, outcome, seq, duplicate flag).
Per-id work is numpy/pandas; Python loops run over nodes and examples only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from checkers.anomalies import DEDUP as ANOMALIES
from checkers.queue import (
    NodeRead,
    _count,
    contains,
    duplicated_values,
    node_reads,
    repeated,
    replica_findings,
    sample_reads,
    union,
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

SAMPLE = 20
EXAMPLES = 10


def _ids(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.int64)


def attempts(ops: pd.DataFrame) -> pd.DataFrame:
    """One row per publish attempt, by id then invoke order: ``id``, ``index`` (of the
    invoke), ``process``, ``node``, ``time`` (invoke, ns), ``type`` (its completion's, or
    ``open``), ``done`` (its completion's time, -1 if none), ``seq`` and ``duplicate`` (ok
    only; else -1 / False), ``error``."""
    mask = (column(ops, "f") == "publish") & client_mask(ops)
    pub = pd.DataFrame(
        {k: column(ops, k)[mask] for k in ("type", "process", "node", "value", "time", "error")}
    )
    pub["seq"] = column(ops, "seq")[mask]
    pub["duplicate"] = column(ops, "duplicate")[mask]
    pub["order"] = np.arange(len(pub))
    # a process has one op in flight: sorted stably by process, a completion follows its invoke
    pub = pub.sort_values(["process", "order"], kind="stable").reset_index(drop=True)
    types = pub["type"].to_numpy(dtype=object)
    procs = pub["process"].to_numpy(dtype=object)
    rows = np.flatnonzero(types == "invoke")
    done = np.minimum(rows + 1, max(len(pub) - 1, 0))
    paired = (rows + 1 < len(pub)) & (types[done] != "invoke") & (procs[done] == procs[rows])

    def from_done(col: str, default: Any) -> np.ndarray:
        return np.where(paired, pub[col].to_numpy(dtype=object)[done], default)

    out = pd.DataFrame(
        {
            "id": pub["value"].to_numpy()[rows].astype(np.int64),
            "index": pub["order"].to_numpy()[rows],
            "process": procs[rows],
            "node": pub["node"].to_numpy(dtype=object)[rows],
            "time": pub["time"].to_numpy()[rows].astype(np.int64),
            "type": from_done("type", "open"),
            "done": from_done("time", -1).astype(np.int64),
        }
    )
    ok = out["type"].to_numpy() == "ok"
    seq = pd.to_numeric(pd.Series(from_done("seq", None)), errors="coerce")
    out["seq"] = np.where(ok, seq.fillna(-1).to_numpy(), -1).astype(np.int64)
    out["duplicate"] = ok & (from_done("duplicate", False) == True)  # noqa: E712 (objects)
    out["error"] = from_done("error", None)
    return out.sort_values(["id", "index"], kind="stable").reset_index(drop=True)


def _triples(value: Any) -> np.ndarray:
    if value is None:
        return np.empty((0, 3), dtype=np.int64)
    return np.asarray(value, dtype=np.int64).reshape(-1, 3)


def read_rows(ops: pd.DataFrame, nodes: list[str]) -> tuple[dict[str, NodeRead], np.ndarray, float]:
    """(per node: its (seq, id) pairs as a :class:`NodeRead`; every stored
    ``[seq, id, value]`` triple of ok reads with its node's position in the
    reads as a 4th column; the duplicate window in ns, inf if no read gives it)."""
    mask = (column(ops, "f") == "read") & client_mask(ops)
    sub = ops[mask].copy()
    values = sub["value"].to_numpy(dtype=object) if "value" in sub else np.empty(0, object)
    ok = sub["type"].to_numpy(dtype=object) == "ok" if len(sub) else np.empty(0, bool)
    triples = [_triples(v) if k else None for v, k in zip(values, ok, strict=True)]
    sub["value"] = [None if t is None else t[:, :2] for t in triples]
    reads = node_reads(sub, nodes)
    names = list(reads)
    node_col = sub["node"].to_numpy(dtype=object) if len(sub) else np.empty(0, object)
    stored = [
        np.column_stack([t, np.full(len(t), names.index(str(n)), dtype=np.int64)])
        for t, n in zip(triples, node_col, strict=True)
        if t is not None and len(t)
    ]
    rows = np.concatenate(stored) if stored else np.empty((0, 4), dtype=np.int64)
    windows = pd.to_numeric(pd.Series(column(sub, "duplicate_window")), errors="coerce").dropna()
    window = float(windows.max()) * 1e9 if len(windows) else float("inf")
    return reads, rows, window


def check_dedup(ops: pd.DataFrame, context: dict[str, Any]) -> dict[str, Any]:
    """Check a dedup-workload history; see the module docstring for the result's meaning."""
    att = attempts(ops)
    reads, stored, window = read_rows(ops, list(context.get("nodes") or []))
    names = list(reads)
    ids = att["id"].to_numpy()
    types = att["type"].to_numpy()
    attempted = uniq(ids)
    ok = types == "ok"
    acked = uniq(ids[ok])
    read_parts = [nr.values for nr in reads.values()]
    read = union(read_parts) if read_parts else attempted[:0]

    # duplicated: stored twice on one node, attempts within the window
    times = att.groupby("id")["time"].agg(["min", "max"])
    span = times["max"] - times["min"]
    twice = duplicated_values(reads)
    within = span.reindex(twice).fillna(0).to_numpy() <= window
    duplicated, outside = twice[within], twice[~within]

    lost = acked[~contains(read, acked)]
    all_failed = pd.Series(types == "fail").groupby(ids).all()
    failed = _ids(all_failed.index[all_failed.to_numpy(dtype=bool)])
    failed_read = failed[contains(read, failed)]
    bad_payload = stored[stored[:, 1] != stored[:, 2]][:, 1] if len(stored) else stored[:0, 0]
    unexpected = uniq(np.concatenate([read[~contains(attempted, read)], bad_payload]))
    not_acked = attempted[~contains(acked, attempted)]
    recovered = not_acked[contains(read, not_acked)]

    phantom = _phantoms(att, read)
    new = att[ok & ~att["duplicate"].to_numpy()]
    reaccepted = uniq(repeated(new.drop_duplicates(["id", "seq"])["id"].to_numpy()))
    moved = _moved(att[ok], stored, read)

    first_acks = att[ok].drop_duplicates("id")  # by id, then invoke order: the first ack
    acks = pd.DataFrame({"value": first_acks["id"].to_numpy(), "time": first_acks["done"]})
    replicas = replica_findings(reads, acks, ops, context.get("nodes_dir"))
    has, missing = replicas.has, replicas.fields["divergence"]["missing_on_node"]
    counts = {
        "duplicated-id": len(duplicated),
        "lost": len(lost),
        "phantom-duplicate": len(phantom),
        "unexpected": len(unexpected),
        "failed-but-read": len(failed_read),
        **replicas.counts,
    }
    anomalies = [a for a in ANOMALIES if counts[a]]
    any_read = any(nr.status != "unread" for nr in reads.values())
    valid: bool | str = (not anomalies) if any_read else "unknown"
    result: dict[str, Any] = {
        "valid": valid,
        "anomalies": anomalies,
        "attempt_count": len(att),
        "id_count": len(attempted),
        "acknowledged_count": len(acked),
        "retried_count": int((att.groupby("id").size() > 1).sum()),
        "duplicate_ack_count": int(att["duplicate"].sum()),
        "read_count": len(read),
        "duplicate_window_s": None if window == float("inf") else window / 1e9,
        "duplicated_count": len(duplicated),
        "duplicated_ids": _sample(duplicated),
        "duplicated_outside_window_count": len(outside),
        "lost_count": len(lost),
        "lost_ids": _sample(lost),
        "phantom_duplicate_count": len(phantom),
        "phantom_duplicate_ids": _sample(phantom),
        "unexpected_count": len(unexpected),
        "unexpected_ids": _sample(unexpected),
        "failed_but_read_count": len(failed_read),
        "failed_but_read_ids": _sample(failed_read),
        "failed_count": len(failed) - len(failed_read),
        "recovered_count": len(recovered),
        "unknown_count": len(not_acked) - len(recovered) - (len(failed) - len(failed_read)),
        "reaccepted_count": len(reaccepted),
        "moved_count": len(moved),
        "per_node": _per_node(reads, has, acked, stored, names, duplicated),
        "unread_nodes": sorted(n for n, nr in reads.items() if nr.status == "unread"),
        **replicas.fields,
    }
    result["sample_reads"] = sample_reads(
        reads, _ids([v for m in missing.values() for v in m["sample"]])
    )
    result["summary"] = summarize(result)
    examples = _examples(result, att, stored, names) + replica_examples(result)
    result["summary"]["examples"] = examples
    return result


def _sample(a: np.ndarray) -> list[int]:
    return np.sort(a)[:SAMPLE].tolist()


def _phantoms(att: pd.DataFrame, read: np.ndarray) -> np.ndarray:
    """Ids with a duplicate ack that nothing before it could have stored, or that no
    node stores and no ack gave as newly stored."""
    ids = att["id"].to_numpy()
    could_store = (att["type"].to_numpy() != "fail").astype(np.int64)
    # per id, how many attempts before this one could have stored it (rows are by id, invoke)
    before = att.assign(c=could_store).groupby("id")["c"].cumsum().to_numpy() - could_store
    dup = att["duplicate"].to_numpy()
    nothing_before = ids[dup & (before == 0)]
    new_acked = uniq(ids[(att["type"].to_numpy() == "ok") & ~dup])
    dup_ids = uniq(ids[dup])
    unvouched = dup_ids[~contains(read, dup_ids) & ~contains(new_acked, dup_ids)]
    return uniq(np.concatenate([nothing_before, unvouched]))


def _moved(acks: pd.DataFrame, stored: np.ndarray, read: np.ndarray) -> np.ndarray:
    """Ids stored somewhere, acked at a seq that holds another id on every node."""
    if not len(acks) or not len(stored):
        return np.empty(0, dtype=np.int64)
    key = lambda i, s: i * (1 << 32) + s  # noqa: E731 (id, seq) as one sortable int
    have = uniq(key(stored[:, 1], stored[:, 0]))
    ids, seqs = acks["id"].to_numpy(), acks["seq"].to_numpy()
    elsewhere = contains(read, ids) & ~contains(have, key(ids, seqs))
    return uniq(ids[elsewhere])


def _per_node(
    reads: dict[str, NodeRead],
    has: dict[str, np.ndarray],
    acked: np.ndarray,
    stored: np.ndarray,
    names: list[str],
    duplicated: np.ndarray,
) -> dict[str, dict[str, Any]]:
    out = {}
    for i, (n, nr) in enumerate(reads.items()):
        entry: dict[str, Any] = {"status": nr.status, "note": nr.note, "read_count": 0}
        entry.update(lost_count=None, duplicated_count=None)
        if n in has:
            mine = stored[stored[:, 3] == i][:, 1]
            dups = repeated(mine)
            entry.update(
                read_count=len(nr.values),
                lost_count=int((~has[n]).sum()),
                duplicated_count=int(contains(duplicated, dups).sum()),
            )
        out[n] = entry
    return out


# ---- examples: the first ids of each anomaly with every attempt -----------------


def _attempt_text(a: Any) -> str:
    text = f"p{a.process} {a.type}"
    if a.type == "ok":
        text += f" seq {a.seq}" + (" duplicate" if a.duplicate else "")
    elif isinstance(a.error, str) and a.error:
        text += f" ({a.error})"
    return f"{text} @{a.time / 1e9:.2f}s"


def _examples(
    q: dict[str, Any], att: pd.DataFrame, stored: np.ndarray, names: list[str]
) -> list[dict[str, Any]]:
    keys = ("duplicated_ids", "lost_ids", "phantom_duplicate_ids", "failed_but_read_ids")
    wanted = _ids([v for k in keys for v in q[k][:EXAMPLES]])
    pick = att[contains(uniq(wanted), att["id"].to_numpy())]
    tries = {int(i): "; ".join(map(_attempt_text, g.itertuples())) for i, g in pick.groupby("id")}

    def where(i: int) -> str:
        rows = stored[stored[:, 1] == i]
        per: dict[str, list[int]] = {}
        for seq, _id, _v, n in rows.tolist():
            per.setdefault(names[n], []).append(seq)
        return "; ".join(f"{n} at seq {', '.join(map(str, s))}" for n, s in sorted(per.items()))

    tables = []
    for key, title, note in (
        ("duplicated_ids", "Duplicated ids", "stored at two stream sequences on one node"),
        ("lost_ids", "Lost ids", "acknowledged, and stored on no node"),
        (
            "phantom_duplicate_ids",
            "Phantom duplicates",
            "acked as a duplicate of a copy never seen",
        ),
        ("failed_but_read_ids", "Failed ids read back", "every attempt failed, yet stored"),
    ):
        sample = q[key][:EXAMPLES]
        if sample:
            n = q[key.replace("_ids", "_count")]
            tables.append(
                {
                    "title": title,
                    "note": f"{n:,} id{'s' if n != 1 else ''} {note}; the first by id.",
                    "head": ["msg id", "stored", "attempts"],
                    "rows": [[i, where(i) or "–", tries.get(i, "–")] for i in sample],
                }
            )
    unexpected = stored[contains(uniq(_ids(q["unexpected_ids"])), stored[:, 1])][:EXAMPLES]
    if len(unexpected):
        tables.append(
            {
                "title": "Unexpected messages",
                "note": f"{q['unexpected_count']:,} ids never published, or stored with "
                "another payload (-1: no Msg-Id header or not an integer).",
                "head": ["node", "stream seq", "msg id", "payload"],
                "rows": [[names[n], s, i, v] for s, i, v, n in unexpected.tolist()],
            }
        )
    return tables


# ---- the headline block (checkers.verdict reads it; see checkers.compose) ----

COUNTS = (
    ("attempts", "attempt_count", "publish attempts (retries included)", False),
    ("ids", "id_count", "distinct message ids published", False),
    ("acknowledged", "acknowledged_count", "ids the server acknowledged at least once", False),
    ("retried", "retried_count", "ids published more than once (same Msg-Id)", False),
    ("duplicate acks", "duplicate_ack_count", "acks that said duplicate", False),
    ("read", "read_count", "distinct ids read back from any node", False),
    ("duplicated", "duplicated_count", "ids stored twice on a node within the window", True),
    ("lost", "lost_count", "acknowledged, but stored on no node", True),
    ("phantom duplicates", "phantom_duplicate_count", "acked as a duplicate of nothing", True),
    ("unexpected", "unexpected_count", "never published, or payload and id differ", True),
    ("failed but read", "failed_but_read_count", "every attempt failed, yet stored", True),
    ("twice, outside window", "duplicated_outside_window_count", "allowed", False),
    ("reaccepted", "reaccepted_count", "acked as new at two seqs, one copy left", False),
    ("moved", "moved_count", "stored, but not at the acknowledged seq", False),
    ("failed", "failed_count", "every attempt failed, not stored (allowed)", False),
    ("recovered", "recovered_count", "never acknowledged, yet stored (allowed)", False),
    ("unknown", "unknown_count", "never acknowledged and not stored (allowed)", False),
)


def _ids_text(n: int) -> str:
    return f"{n:,} id{'' if n == 1 else 's'}"


def _problems(q: dict[str, Any]) -> list[str]:
    acked = q.get("acknowledged_count") or 0
    parts = []
    if q.get("duplicated_count"):
        parts.append(f"DUPLICATED {_ids_text(q['duplicated_count'])} within the duplicate window")
    if q.get("lost_count"):
        pct = 100.0 * q["lost_count"] / acked if acked else 0.0
        parts.append(f"LOST {q['lost_count']:,} of {acked:,} acknowledged ids ({pct:.2f}%)")
    for key, label in (
        ("phantom_duplicate_count", "phantom duplicate{s}"),
        ("unexpected_count", "unexpected"),
        ("failed_but_read_count", "failed id{s} read back"),
    ):
        if q.get(key):
            parts.append(f"{q[key]:,} " + label.format(s="" if q[key] == 1 else "s"))
    named = replica_problems(q)
    div = (q.get("divergence") or {}).get("count") or 0
    if div and not named:  # a result without the replica analysis (older results.json)
        named = [f"{div:,} divergent between replicas"]
    return parts + named


def _node_rows(q: dict[str, Any]) -> list[dict[str, Any]]:
    missing = (q.get("divergence") or {}).get("missing_on_node") or {}
    rows = []
    for node, d in (q.get("per_node") or {}).items():
        counts = [
            _count("read", d.get("read_count"), "distinct ids read from this node", False),
            _count("lost", d.get("lost_count"), "acknowledged ids this node lacks", True),
            _count("duplicated", d.get("duplicated_count"), "ids stored twice here", True),
            _count(
                "missing",
                (missing.get(node) or {}).get("count"),
                "ids this node lacks that another node has (divergence)",
                True,
            ),
        ]
        note = str(d.get("note") or "")
        status = replica_status(q, str(node), str(d.get("status", "")))
        rows.append({"node": str(node), "status": status, "note": note, "counts": counts})
    return rows


def summarize(q: dict[str, Any]) -> dict[str, Any]:
    """The headline block of a dedup result: ``5,432 ids acknowledged, each stored once``,
    ``DUPLICATED 3 ids within the duplicate window; LOST 2 of 5,432 …``, or the unread nodes."""
    acked = q.get("acknowledged_count") or 0
    unread = list(q.get("unread_nodes") or [])
    if q.get("valid") is True:
        headline = f"{acked:,} ids acknowledged, each stored once"
    elif q.get("valid") is False:
        headline = "; ".join(_problems(q)) or ", ".join(q.get("anomalies") or [])
    else:
        headline = f"unread nodes: {', '.join(unread)}" if unread else "no node was read"
    counts = [_count(n, q[k], m, bad) for n, k, m, bad in COUNTS if k in q]
    counts += replica_counts(q)
    dup = q.get("duplicated_count") or 0
    lost = q.get("lost_count") or 0
    notes = []
    if q.get("duplicate_window_s") is not None:
        notes.append(f"Duplicate window: {q['duplicate_window_s']:g}s.")
    notes += replica_notes(q)
    return {
        "headline": headline,
        "counts": counts,
        "row": {
            "acknowledged": acked,
            "duplicated": dup,
            "lost": lost,
            "duplicated_pct": round(100.0 * dup / acked, 2) if acked else 0.0,
        },
        "rate": {"name": "duplicated_pct", "label": "ids stored twice (% of acknowledged)"},
        "unread_nodes": unread,
        "nodes": _node_rows(q),
        "notes": notes,
    }
