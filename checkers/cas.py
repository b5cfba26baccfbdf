"""The cas checker: one winner per expected sequence, linearizable registers, and what
the direct reads and the final replicas show.

In: the ops DataFrame of a cas-workload history (ops in
``harness/workloads/cas.py``) and a context with ``nodes``. Out: a result
dict (docs/contracts.md §2) with:

- **linearizability** — the ``read`` and ``cas`` ops of every key against
  the ``cas-register`` model (:func:`checkers.linear.check_linear`, run here
  so that the headline carries its verdict; its whole result, without its
  summary, is ``linear``); a key with no valid order is ``non-linearizable``,
  a search out of budget leaves the verdict ``unknown``;
- **double-winner** — two or more ``ok`` CAS writes that expected the same
  sequence: the same ``expected_seq`` of one key, or the same
  ``expected_stream_seq`` (stream mode, any key). Counted once per such
  (key, sequence); ``double_winner_op_count`` counts the writes;
- **stale direct reads** (allowed, counted and shown: any replica may answer
  a direct get) — an ``ok`` ``read-direct`` whose sequence is below that of
  a CAS of its key acknowledged before the read was invoked;
- **phantom-read** — a direct or final read of a value no ``cas`` of that key
  ever tried to write (leader reads of one fail the linearizability check);
- **lost** — a node's final replica of a key (``read-node``) behind the last
  acknowledged CAS of the key (the one with the highest sequence): a lower
  sequence, or that sequence with another value; one per (node, key);
- **stream-lost**, **stalled** — as the queue checker's
  (:func:`checkers.replicas.lost_and_stalled`): a node whose read says the
  stream is gone there, a replica the recovery wait left behind at its bound;
- **divergence** — a key whose read replicas hold different (seq, value),
  among the replicas neither stalled (their values are their backlog) nor
  without the stream.

``valid`` is False for any anomaly, "unknown" when linearizability is
undecided or no node could be read, else True. ``finals`` gives per key the
last acknowledged write, the leader the replicas converged on, and what each
node holds. Work over ops is numpy/pandas plus one pass per op to unpack
values; loops run over keys and nodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from checkers.anomalies import CAS as ANOMALIES
from checkers.linear import check_linear
from checkers.queue import _count, node_reads
from checkers.queue_summary import replica_counts, replica_notes, replica_problems, replica_status
from checkers.replicas import lost_and_stalled
from checkers.schema import column, line_numbers
from checkers.stats import paired_ops
from checkers.windows import recovery_record

EXAMPLES = 10
ABSENT = -1  # a final read's value where the subject holds nothing
SEC = 1e9


def op_table(ops: pd.DataFrame, f: str, fields: tuple[str, ...] = ()) -> pd.DataFrame:
    """Completed ops of ``f``, one row each: ``key``, ``arg`` (the invoke's argument),
    ``result`` (the completion's), ``type``, ``process``, ``node``, ``invoke_time``,
    ``complete_time``, ``line`` (of the invoke), and ``fields`` of the completion (floats,
    NaN where absent)."""
    pairs = paired_ops(ops)
    pairs = pairs[(pairs["f"] == f).to_numpy()]
    inv, done = pairs["invoke_row"].to_numpy(), pairs["complete_row"].to_numpy()
    values = column(ops, "value")
    args = [v if isinstance(v, list | tuple) and len(v) == 2 else (None, None) for v in values[inv]]
    results = [v[1] if isinstance(v, list | tuple) and len(v) == 2 else None for v in values[done]]
    out = pd.DataFrame(
        {
            "key": _objects([a[0] for a in args]),
            "arg": _objects([a[1] for a in args]),
            "result": _objects(results),
            "type": pairs["type"].to_numpy(),
            "process": pairs["process"].to_numpy(),
            "node": pairs["node"].to_numpy(),
            "invoke_time": pairs["invoke_time"].to_numpy(),
            "complete_time": pairs["complete_time"].to_numpy(),
            "line": line_numbers(ops)[inv] if len(inv) else np.empty(0, dtype=np.int64),
        }
    )
    for name in fields:
        out[name] = pd.to_numeric(pd.Series(column(ops, name)[done]), errors="coerce").to_numpy()
    return out


def _objects(values: list[Any], index: Any = None) -> pd.Series:
    """``values`` as an object Series: None stays None, ints stay Python ints (JSON-able)."""
    return pd.Series(values, index=index, dtype=object)


def double_winners(wins: pd.DataFrame) -> list[pd.DataFrame]:
    """Groups of ok CAS writes that expected one sequence (of one key, or of the stream)."""
    groups = []
    for by, field in ((["key", "expected_seq"], "expected_seq"), (["expected_stream_seq"], None)):
        col = field or by[0]
        sub = wins[wins[col].notna()]
        sizes = sub.groupby(by)[col].transform("size")
        many = sub[sizes.to_numpy() > 1]
        groups += [g for _, g in many.groupby(by, sort=True)]
    return groups


def stale_reads(direct: pd.DataFrame, wins: pd.DataFrame) -> pd.DataFrame:
    """Ok direct reads behind a CAS of their key acknowledged before they were invoked,
    with that write's ``missed_value``, ``missed_seq`` and ``missed_at``."""
    out = []
    for key, reads in direct.groupby("key", sort=True):
        acks = wins[wins["key"] == key].sort_values("complete_time", kind="stable")
        if acks.empty:
            continue
        seq = acks["seq"].fillna(-1).to_numpy()
        top = np.maximum.accumulate(seq)
        at = np.maximum.accumulate(np.where(seq == top, np.arange(len(seq)), 0))
        before = np.searchsorted(acks["complete_time"].to_numpy(), reads["invoke_time"], "left")
        known = np.where(before > 0, top[np.maximum(before - 1, 0)], -1)
        bad = reads["seq"].fillna(0).to_numpy() < known
        hit = acks.iloc[at[np.maximum(before - 1, 0)][bad]]
        rows = reads[bad].copy()
        rows["missed_value"] = _objects([a[1] for a in hit["arg"]], rows.index)
        rows["missed_seq"] = hit["seq"].to_numpy()
        rows["missed_at"] = hit["complete_time"].to_numpy()
        out.append(rows)
    return pd.concat(out) if out else direct.iloc[:0].assign(missed_value=[], missed_seq=[])


def final_reads(ops: pd.DataFrame, nodes: list[str]) -> tuple[dict[str, Any], pd.DataFrame]:
    """(per node a :class:`checkers.queue.NodeRead`; every ok ``read-node`` row as
    ``node``, ``key``, ``seq``, ``value`` (the last read of each node wins), and the
    ``leader`` they recorded)."""
    mask = (column(ops, "f") == "read-node") & (column(ops, "type") != "invoke")
    sub = ops[mask].copy()
    rows = []
    for node, typ, value, leader in zip(
        column(sub, "node"),
        column(sub, "type"),
        column(sub, "value"),
        column(sub, "leader"),
        strict=True,
    ):
        if typ == "ok" and value is not None:
            rows += [(str(node), int(k), int(s), int(v), leader) for k, s, v in np.asarray(value)]
    sub["f"] = "read"
    sub["value"] = [
        [[k, x] for k, _, x in v] if isinstance(v, list) else None for v in sub["value"]
    ]
    reads = node_reads(sub, nodes)
    table = pd.DataFrame(rows, columns=["node", "key", "seq", "value", "leader"])
    return reads, table.drop_duplicates(["node", "key"], keep="last")


def _finals(
    finals: pd.DataFrame, wins: pd.DataFrame, apart: set[str]
) -> tuple[pd.DataFrame, list[int]]:
    """The final rows with the key's last acknowledged write (``acked_seq``, ``acked_value``;
    -1 / None without one) and ``lost``; the keys divergent between the nodes not ``apart``."""
    last = wins.sort_values(["key", "seq"], kind="stable").drop_duplicates("key", keep="last")
    news = [a[1] for a in last["arg"]]
    acked = {k: (s, v) for k, s, v in zip(last["key"], last["seq"], news, strict=True)}
    rows = finals.copy()
    got = [acked.get(k, (-1, None)) for k in rows["key"]]
    rows["acked_seq"] = [int(s) for s, _ in got]
    rows["acked_value"] = _objects([v for _, v in got], rows.index)
    seq, want = rows["seq"].to_numpy(), rows["acked_seq"].to_numpy()
    same = np.array([v == a for v, a in zip(rows["value"], rows["acked_value"], strict=True)])
    rows["lost"] = (seq < want) | ((seq == want) & ~same.astype(bool))
    judged = rows[~rows["node"].isin(apart)]
    distinct = judged.drop_duplicates(["key", "seq", "value"]).groupby("key").size()
    return rows, sorted(int(k) for k in distinct.index[distinct.to_numpy() > 1])


def _phantoms(reads: pd.DataFrame, attempted: set[tuple[Any, Any]]) -> pd.DataFrame:
    """Rows of ``reads`` (``key``, ``value``) whose value no cas of the key tried to write."""
    vals = reads["value"].tolist()
    bad = [
        v is not None and v != ABSENT and (k, v) not in attempted
        for k, v in zip(reads["key"], vals, strict=True)
    ]
    return reads[np.array(bad, dtype=bool)] if len(reads) else reads


def check_cas(ops: pd.DataFrame, context: dict[str, Any]) -> dict[str, Any]:
    """Check a cas-workload history; see the module docstring for the result's meaning."""
    linear = check_linear(ops, context, "cas-register")
    fields = ("seq", "expected_seq", "expected_stream_seq")
    cas = op_table(ops, "cas", fields)
    wins = cas[cas["type"] == "ok"]
    leader_reads = op_table(ops, "read", ("seq",))
    direct = op_table(ops, "read-direct", ("seq",))
    direct = direct[direct["type"] == "ok"].rename(columns={"result": "value"})
    reads, finals = final_reads(ops, list(context.get("nodes") or []))
    attempted = {
        (k, a[1])
        for k, a in zip(cas["key"], cas["arg"], strict=True)
        if isinstance(a, list | tuple)
    }
    groups = double_winners(wins)
    stale = stale_reads(direct, wins)
    absent = {n: nr.note for n, nr in reads.items() if nr.absent}
    read = {n for n, nr in reads.items() if nr.status != "unread"}
    rep = lost_and_stalled(absent, read, recovery_record(ops), context.get("nodes_dir"))
    finals, divergent = _finals(finals, wins, set(rep["stalled"]) | set(absent))
    phantom = pd.concat(
        [
            _phantoms(direct, attempted).assign(read="direct"),
            _phantoms(finals, attempted).assign(read="final"),
        ]
    )
    lost = finals[finals["lost"].to_numpy(dtype=bool)]
    counts = {
        "non-linearizable": linear["invalid_key_count"],
        "double-winner": len(groups),
        "lost": len(lost),
        "phantom-read": len(phantom),
        **rep["counts"],
        "divergence": len(divergent),
    }
    anomalies = [a for a in ANOMALIES if counts[a]]
    any_read = any(nr.status != "unread" for nr in reads.values())
    valid: bool | str = False if anomalies else "unknown"
    if not anomalies and linear["valid"] is True and any_read:
        valid = True
    keys = sorted({*cas["key"].tolist(), *leader_reads["key"].tolist(), *finals["key"].tolist()})
    invoked = int(((column(ops, "f") == "cas") & (column(ops, "type") == "invoke")).sum())
    leaders = finals["leader"].dropna().unique().tolist() if len(finals) else []
    result: dict[str, Any] = {
        "valid": valid,
        "anomalies": anomalies,
        "key_count": len(keys),
        "cas_count": invoked,
        "cas_ok_count": len(wins),
        "cas_fail_count": int((cas["type"] == "fail").sum()),
        "cas_info_count": invoked - len(wins) - int((cas["type"] == "fail").sum()),
        "read_count": int((leader_reads["type"] == "ok").sum()),
        "direct_read_count": len(direct),
        "stale_read_count": len(stale),
        "double_winner_count": len(groups),
        "double_winner_op_count": sum(len(g) for g in groups),
        "lost_count": len(lost),
        "phantom_read_count": len(phantom),
        "divergence_count": len(divergent),
        "linear_valid": linear["valid"],
        "invalid_key_count": linear["invalid_key_count"],
        "unknown_key_count": linear["unknown_key_count"],
        "leader": leaders[0] if len(leaders) == 1 else None,
        "finals": _finals_by_key(finals),
        "per_node": _per_node(reads, finals),
        "unread_nodes": sorted(n for n, nr in reads.items() if nr.status == "unread"),
        "stream_lost": rep["stream_lost"],
        "stalled": rep["stalled"],
        "linear": {k: v for k, v in linear.items() if k != "summary"},
    }
    result["summary"] = summarize(result, linear["summary"].get("headline", ""))
    tables = _examples(groups, stale, lost, phantom, finals, divergent)
    result["summary"]["examples"] = tables + list(linear["summary"].get("examples") or [])
    return result


def _finals_by_key(finals: pd.DataFrame) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, rows in finals.groupby("key", sort=True):
        first = rows.iloc[0]
        out[str(key)] = {
            "acked": [int(first["acked_seq"]), first["acked_value"]],
            "nodes": {n: [int(s), int(v)] for n, s, v in rows[["node", "seq", "value"]].values},
        }
    return out


def _per_node(reads: dict[str, Any], finals: pd.DataFrame) -> dict[str, dict[str, Any]]:
    out = {}
    for node, nr in reads.items():
        mine = finals[finals["node"] == node]
        out[node] = {
            "status": nr.status,
            "note": nr.note,
            "key_count": len(mine),
            "lost_count": int(mine["lost"].sum()) if len(mine) else 0,
        }
    return out


# ---- examples: the first cases of each anomaly, with the ops involved ----

CAS_HEAD = [
    "key",
    "expected seq",
    "expected value",
    "new value",
    "ack seq",
    "process",
    "line",
    "acked at (s)",
]


def _t(ns: Any) -> float | None:
    return None if ns is None or pd.isna(ns) else round(float(ns) / SEC, 3)


def _i(x: Any) -> int | None:
    return None if x is None or pd.isna(x) else int(x)


def _cas_row(r: Any) -> list[Any]:
    expected = r.expected_seq if pd.notna(r.expected_seq) else r.expected_stream_seq
    arg = r.arg if isinstance(r.arg, list | tuple) else (None, None)
    return [r.key, _i(expected), arg[0], arg[1], _i(r.seq), r.process, r.line, _t(r.complete_time)]


def _examples(
    groups: list[pd.DataFrame],
    stale: pd.DataFrame,
    lost: pd.DataFrame,
    phantom: pd.DataFrame,
    finals: pd.DataFrame,
    divergent: list[int],
) -> list[dict[str, Any]]:
    """``summary.examples``: a table per anomaly found (and the stale reads), the first cases."""
    out = []
    if groups:
        rows = [_cas_row(r) for g in groups for r in g.itertuples()][:EXAMPLES]
        note = (
            f"{len(groups):,} expected sequences with more than one winning CAS write "
            f"({sum(len(g) for g in groups):,} writes); each should have had one."
        )
        out.append({"title": "Double winners", "note": note, "head": CAS_HEAD, "rows": rows})
    if len(stale):
        head = [
            "key",
            "value read",
            "seq read",
            "node",
            "process",
            "line",
            "invoked (s)",
            "missed value",
            "missed seq",
            "acked at (s)",
        ]
        rows = [
            [
                r.key,
                r.value,
                _i(r.seq),
                r.node,
                r.process,
                r.line,
                _t(r.invoke_time),
                r.missed_value,
                _i(r.missed_seq),
                _t(r.missed_at),
            ]
            for r in stale.head(EXAMPLES).itertuples()
        ]
        note = (
            f"{len(stale):,} direct gets answered with an older value than a write "
            "acknowledged before they were sent (allowed: any replica may answer)."
        )
        out.append({"title": "Stale direct reads", "note": note, "head": head, "rows": rows})
    if len(lost):
        head = ["node", "key", "seq held", "value held", "last acked seq", "last acked value"]
        rows = [
            [r.node, r.key, r.seq, r.value, r.acked_seq, r.acked_value]
            for r in lost.head(EXAMPLES).itertuples()
        ]
        note = f"{len(lost):,} replicas of a key behind its last acknowledged CAS write."
        out.append({"title": "Lost writes", "note": note, "head": head, "rows": rows})
    if len(phantom):
        head = ["read", "key", "value", "seq", "node"]
        rows = [
            [r.read, r.key, r.value, _i(r.seq), r.node] for r in phantom.head(EXAMPLES).itertuples()
        ]
        note = f"{len(phantom):,} reads of a value no CAS of that key tried to write."
        out.append({"title": "Phantom reads", "note": note, "head": head, "rows": rows})
    if divergent:
        rows = []
        for key in divergent[:EXAMPLES]:
            mine = finals[finals["key"] == key]
            held = "; ".join(
                f"{n}: seq {s} = {v}" for n, s, v in mine[["node", "seq", "value"]].values
            )
            first = mine.iloc[0]
            rows.append([key, f"seq {first.acked_seq} = {first.acked_value}", first.leader, held])
        note = f"{len(divergent):,} keys whose replicas hold different final values."
        head = ["key", "last acknowledged", "leader", "replicas"]
        out.append({"title": "Divergent keys", "note": note, "head": head, "rows": rows})
    return out


# ---- the headline block (checkers.verdict reads it; see checkers.compose) ----

COUNTS = (
    ("CAS attempted", "cas_count", "CAS writes invoked", False),
    ("CAS won", "cas_ok_count", "CAS writes acknowledged", False),
    ("CAS refused", "cas_fail_count", "wrong last sequence or no leader (allowed)", False),
    ("CAS unknown", "cas_info_count", "CAS writes of unknown outcome (allowed)", False),
    ("leader reads", "read_count", "reads through the stream leader", False),
    ("direct reads", "direct_read_count", "reads through direct get", False),
    ("stale direct reads", "stale_read_count", "behind an acknowledged write (allowed)", False),
    ("not linearizable", "invalid_key_count", "keys with no valid order", True),
    ("undecided", "unknown_key_count", "keys whose search ran out of budget", True),
    ("double winners", "double_winner_count", "expected sequences won twice", True),
    ("lost", "lost_count", "replicas behind the last acknowledged write", True),
    ("phantom reads", "phantom_read_count", "values never written", True),
    ("divergent", "divergence_count", "keys whose replicas disagree", True),
)


def _problems(c: dict[str, Any], linear_headline: str) -> list[str]:
    parts = [linear_headline] if c.get("invalid_key_count") else []
    for key, label in (
        ("double_winner_count", "expected sequences with two winners"),
        ("lost_count", "replicas LOST an acknowledged write"),
        ("phantom_read_count", "reads of a value never written"),
        ("divergence_count", "keys divergent between replicas"),
    ):
        if c.get(key):
            parts.append(f"{c[key]:,} {label}")
    return parts + replica_problems(c)


def summarize(c: dict[str, Any], linear_headline: str = "") -> dict[str, Any]:
    """The headline block: ``1,234 CAS writes on 8 keys linearizable; 3 of 410 direct reads
    stale`` when valid, the problems joined when not, else why it is undecided."""
    stale = (
        f"{c.get('stale_read_count', 0):,} of {c.get('direct_read_count', 0):,} direct reads stale"
    )
    unread = list(c.get("unread_nodes") or [])
    if c.get("valid") is True:
        headline = (
            f"{c.get('cas_ok_count', 0):,} CAS writes on {c.get('key_count', 0):,} keys "
            f"linearizable; {stale}"
        )
    elif c.get("valid") is False:
        headline = "; ".join(_problems(c, linear_headline)) or ", ".join(c.get("anomalies") or [])
    elif c.get("linear_valid") != True:  # noqa: E712 (a verdict: True, False or "unknown")
        headline = linear_headline
    else:
        headline = f"unread nodes: {', '.join(unread)}" if unread else "no node was read"
    nodes = [
        {
            "node": node,
            "status": replica_status(c, node, str(d.get("status", ""))),
            "note": str(d.get("note") or ""),
            "counts": [
                _count("keys", d.get("key_count"), "keys read from this replica", False),
                _count("lost", d.get("lost_count"), "keys behind the last acked write", True),
            ],
        }
        for node, d in (c.get("per_node") or {}).items()
    ]
    notes = (
        [f"Stream leader when the replicas converged: {c['leader']}."] if c.get("leader") else []
    )
    notes += replica_notes(c)
    return {
        "headline": headline,
        "counts": [_count(n, c[k], m, bad) for n, k, m, bad in COUNTS if k in c]
        + replica_counts(c),
        "row": {
            "cas_ok": c.get("cas_ok_count") or 0,
            "keys_invalid": c.get("invalid_key_count") or 0,
            "double_winners": c.get("double_winner_count") or 0,
            "stale_reads": c.get("stale_read_count") or 0,
        },
        "rate": {"name": "keys_invalid", "label": "non-linearizable keys"},
        "unread_nodes": unread,
        "nodes": nodes,
        "notes": notes,
    }
