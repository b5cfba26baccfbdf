"""The kv checker: is each key linearizable, do the replicas hold each key's last
acknowledged write, and how stale were the direct reads?

In: the ops DataFrame of a kv-workload history (ops in
``harness/workloads/kv.py``: ``get``, ``get-direct``, ``put``, ``create``,
``update``, ``delete`` with ``value`` ``[key, argument]`` and ``revision``
on ``ok``; final ``read`` completions whose ``value`` is ``[[key, value,
revision], …]`` per node) and a context with ``nodes``. An invoke without a
completion counts as ``info``. Four findings:

- **linearizability** — the ``linear-kv`` checker's verdict
  (:func:`checkers.linear.check_linear` with the ``kv`` model; ``get-direct``
  is not one of its ops), its counts, and each non-linearizable key's
  window (the ops around the point where the search failed, their times,
  the states tried) as an example table (``non-linearizable``);
- **lost-write** — a replica whose final entry of a key is older than the
  newest revision any ``ok`` op of that key wrote or read (a revision a
  client saw was committed), or at that revision holds another value;
  counted once per (node, key);
- **stream-lost**, **stalled** — as the queue checker's
  (:func:`checkers.replicas.lost_and_stalled`): a node whose read says the
  stream is gone there, a replica the recovery wait left behind at its bound;
- **divergence** — a key whose read replicas hold different final entries
  (counted once per key), among the replicas neither stalled (their entries
  are their backlog) nor without the stream;
- **stale direct reads** — an ``ok`` ``get-direct`` that returned a
  revision older than the newest one an ``ok`` op of the key (a write's
  ack, or a read) had returned before the direct get was invoked. Direct
  gets may be answered by any replica, so these are reported (count,
  examples), not violations: they change no verdict.

Out: a result dict (docs/contracts.md §2): ``valid`` (the worst of the
linear verdict and the final reads' — False for ``lost-write`` or
``divergence``, "unknown" when no node could be read), ``anomalies``,
``by_f`` (per ``f``: ``ok``, ``fail``, ``info``), ``key_count``,
``op_count``, ``write_ok_count``, ``refused_update_count``,
``refused_create_count`` (fails for a wrong revision, a key that exists),
``failed_count`` (other fails), ``info_count``, ``linear`` (``valid``, ``key_count``,
``invalid_key_count``, ``unknown_key_count``, ``invalid_keys``,
``unknown_keys``), ``direct_read_count``, ``stale_read_count``,
``stale_reads`` (sample), ``lost_write_count``, ``divergence_count``,
``reading_count``, ``per_node``, ``unread_nodes`` and the ``summary``
headline block with ``examples`` (shape in :mod:`checkers.compose`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from checkers.anomalies import KV as ANOMALIES
from checkers.linear import check_linear, window_example
from checkers.linear_models import freeze
from checkers.queue_summary import replica_counts, replica_notes, replica_problems, replica_status
from checkers.replicas import lost_and_stalled
from checkers.schema import client_mask, column, line_numbers
from checkers.windows import recovery_record

FS = ("get", "get-direct", "put", "create", "update", "delete")
WRITES = ("put", "create", "update", "delete")
REFUSALS = ("wrong revision", "key exists")  # how the workload's refused update and create begin
EXAMPLES = 10
SAMPLE = 20
SEC = 1e9
_RANK = {True: 0, "unknown": 1, False: 2}


def kv_ops(ops: pd.DataFrame) -> pd.DataFrame:
    """One row per kv invoke: ``f``, ``key``, ``arg``, ``type`` (no completion: ``info``),
    ``result`` (the ok value's argument), ``error`` ("" where none), ``revision`` (-1
    where none), ``process``,
    ``node``, ``invoked``, ``done`` (-1 where none) and ``line`` (of the invoke)."""
    f, types = column(ops, "f"), column(ops, "type")
    rows = np.flatnonzero(client_mask(ops) & np.isin(f, FS))
    proc = column(ops, "process")[rows].astype(np.int64)
    order = np.lexsort((rows, proc))
    rows, proc = rows[order], proc[order]
    t = types[rows]
    inv = np.flatnonzero(t == "invoke")
    nxt = np.minimum(inv + 1, max(len(rows) - 1, 0))
    done = (inv + 1 < len(rows)) & (proc[nxt] == proc[inv]) & (t[nxt] != "invoke")
    comp = np.where(done, rows[nxt], -1)
    values, revs, errors = column(ops, "value"), column(ops, "revision"), column(ops, "error")
    times, lines = column(ops, "time").astype(np.int64), line_numbers(ops)
    keyarg = [_pair(v) for v in values[rows[inv]]]
    result = [_pair(values[c])[1] if c >= 0 else None for c in comp.tolist()]
    rev = pd.to_numeric(pd.Series(revs[np.maximum(comp, 0)]), errors="coerce")
    rev = rev.where(comp >= 0).fillna(-1).to_numpy(dtype=np.int64)
    table = pd.DataFrame(
        {
            "f": f[rows[inv]],
            "key": _objects([k for k, _ in keyarg]),
            "arg": _objects([a for _, a in keyarg]),
            "type": np.where(done, t[nxt], "info"),
            "result": _objects(result),
            "error": _objects([str(errors[c] or "") if c >= 0 else "" for c in comp.tolist()]),
            "revision": rev,
            "process": proc[inv],
            "node": column(ops, "node")[rows[inv]],
            "invoked": times[rows[inv]],
            "done": np.where(done, times[np.maximum(comp, 0)], -1),
            "line": lines[rows[inv]],
        }
    )
    table.loc[table["type"] != "ok", "revision"] = -1
    return table.sort_values("line", kind="stable").reset_index(drop=True)


def _objects(items: list[Any]) -> np.ndarray:
    """``items`` as an object array (a list with None and ints would become floats)."""
    out = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):  # one by one: a slice assignment would unpack tuples
        out[i] = x
    return out


def _pair(v: Any) -> tuple[Any, Any]:
    v = freeze(v)
    return (v[0], v[1]) if isinstance(v, tuple) and len(v) == 2 else (None, v)


def written(t: pd.DataFrame) -> list[Any]:
    """The value each op leaves (writes) or saw (gets): a put's or create's argument, an
    update's new value, None for a delete, a get's result."""
    out: list[Any] = []
    for f, arg, res in zip(t["f"], t["arg"], t["result"], strict=True):
        if f in ("get", "get-direct"):
            out.append(res)
        elif f == "update":
            out.append(arg[0] if isinstance(arg, tuple) else None)
        else:
            out.append(None if f == "delete" else arg)
    return out


def stale_reads(t: pd.DataFrame) -> pd.DataFrame:
    """The ``ok`` direct gets older than a revision returned before they were invoked, each
    with ``known`` (that revision) and ``known_line`` (the op that returned it)."""
    seen = t[(t["type"] == "ok") & (t["revision"] >= 0)]
    direct = t[(t["f"] == "get-direct") & (t["type"] == "ok")]
    found = []
    for key, mine in direct.groupby("key", sort=False):
        acks = seen[seen["key"] == key].sort_values("done", kind="stable")
        rev = acks["revision"].to_numpy()
        if not len(rev):
            continue
        top = np.maximum.accumulate(rev)
        at = np.maximum.accumulate(np.where(rev == top, np.arange(len(rev)), 0))
        before = np.searchsorted(acks["done"].to_numpy(), mine["invoked"].to_numpy(), "left")
        has = before > 0
        known = np.where(has, top[np.maximum(before - 1, 0)], -1)
        stale = has & (mine["revision"].to_numpy() < known)
        rows = mine[stale].copy()
        rows["known"] = known[stale]
        rows["known_line"] = acks["line"].to_numpy()[at[np.maximum(before - 1, 0)]][stale]
        found.append(rows)
    if not found:
        return direct.iloc[:0].assign(known=[], known_line=[])
    return pd.concat(found).sort_values("line", kind="stable")


def final_reads(ops: pd.DataFrame, nodes: list[str]) -> dict[str, dict[str, Any]]:
    """Per node: ``status`` (read | unread), ``note``, ``entries`` {key: (value, revision)}
    from its last ``ok`` read, and ``absent`` (that read said the stream is not there)."""
    f, types = column(ops, "f"), column(ops, "type")
    rows = np.flatnonzero((f == "read") & (types != "invoke") & client_mask(ops))
    out: dict[str, dict[str, Any]] = {
        n: {"status": "unread", "note": "no read recorded", "entries": {}} for n in nodes
    }
    cols = [column(ops, k)[rows] for k in ("node", "type", "value", "error", "note", "absent")]
    for node, typ, value, error, note, absent in zip(*cols, strict=True):
        nr = out.setdefault(str(node), {"status": "unread", "note": None, "entries": {}})
        if typ != "ok":
            if nr["status"] == "unread":
                nr["note"] = f"read {typ}: {error or 'no error given'}"
            continue
        entries = {}
        for row in freeze(value) or ():
            key, val, rev = row
            entries[key] = (val, int(rev))
        note = note if isinstance(note, str) else None
        nr.update(status="read", note=note, entries=entries, absent=absent is True)
    return out


def check_kv(ops: pd.DataFrame, context: dict[str, Any]) -> dict[str, Any]:
    """Check a kv-workload history; see the module docstring for the result's meaning."""
    lin = check_linear(ops, context, "kv")
    t = kv_ops(ops)
    t["left"] = _objects(written(t))
    by_f = {
        f: {k: int(((t["f"] == f) & (t["type"] == k)).sum()) for k in ("ok", "fail", "info")}
        for f in FS
        if (t["f"] == f).any()
    }
    reads = final_reads(ops, list(context.get("nodes") or []))
    read_nodes = {n: r for n, r in reads.items() if r["status"] == "read"}
    newest = _newest(t)
    keys = sorted(set(t["key"]) | {k for r in read_nodes.values() for k in r["entries"]}, key=str)
    lost = []
    for node, r in read_nodes.items():
        for key in keys:
            val, rev = r["entries"].get(key, (None, 0))
            want = newest.get(key)
            if want is not None and (
                rev < want["revision"] or (rev == want["revision"] and val != want["left"])
            ):
                lost.append((node, key, val, rev, want))
    absent = {n: r["note"] for n, r in read_nodes.items() if r.get("absent")}
    rep = lost_and_stalled(absent, set(read_nodes), recovery_record(ops), context.get("nodes_dir"))
    apart = rep["stalled"].keys() | absent.keys()  # behind, or without the stream: no verdict
    judged = [r for n, r in read_nodes.items() if n not in apart]
    divergent = [k for k in keys if len({r["entries"].get(k, (None, 0)) for r in judged}) > 1]
    stale = stale_reads(t)
    counts = {
        "non-linearizable": lin["invalid_key_count"],
        "lost-write": len(lost),
        **rep["counts"],
        "divergence": len(divergent),
    }
    anomalies = [a for a in ANOMALIES if counts[a]]
    mine = any(n for a, n in counts.items() if a != "non-linearizable")
    own: bool | str = not mine if read_nodes else "unknown"
    ok = t["type"] == "ok"
    failed = t["type"] == "fail"
    refused = failed & t["error"].str.startswith(REFUSALS)
    result: dict[str, Any] = {
        "valid": max((lin["valid"], own), key=lambda v: _RANK[v]),
        "anomalies": anomalies,
        "by_f": by_f,
        "key_count": len(keys),
        "op_count": len(t),
        "write_ok_count": int((ok & t["f"].isin(WRITES)).sum()),
        "refused_update_count": int((refused & (t["f"] == "update")).sum()),
        "refused_create_count": int((refused & (t["f"] == "create")).sum()),
        "failed_count": int((failed & ~refused).sum()),
        "info_count": int((t["type"] == "info").sum()),
        "linear": {
            "valid": lin["valid"],
            "key_count": lin["key_count"],
            "invalid_key_count": lin["invalid_key_count"],
            "unknown_key_count": lin["unknown_key_count"],
            "invalid_keys": [w["key"] for w in lin["windows"]],
            "unknown_keys": [k["key"] for k in lin["keys"] if k["valid"] == "unknown"],
        },
        "direct_read_count": int((ok & (t["f"] == "get-direct")).sum()),
        "stale_read_count": len(stale),
        "stale_reads": [_stale_dict(r) for r in stale.head(SAMPLE).itertuples()],
        "lost_write_count": len(lost),
        "divergence_count": len(divergent),
        "divergent_keys": divergent[:SAMPLE],
        "reading_count": len(keys) * len(read_nodes),
        "per_node": {
            n: {
                "status": r["status"],
                "note": r["note"],
                "lost_write_count": sum(1 for x in lost if x[0] == n),
            }
            for n, r in reads.items()
        },
        "unread_nodes": sorted(n for n, r in reads.items() if r["status"] != "read"),
        "stream_lost": rep["stream_lost"],
        "stalled": rep["stalled"],
    }
    result["summary"] = summarize(result, lin)
    examples = [window_example(w) for w in lin["windows"]]
    result["summary"]["examples"] = examples + _examples(lost, divergent, read_nodes, stale)
    return result


def _newest(t: pd.DataFrame) -> dict[Any, dict[str, Any]]:
    """Per key, the ok op with the highest revision (the last to complete among equals)."""
    seen = t[(t["type"] == "ok") & (t["revision"] >= 0)]
    seen = seen.sort_values(["revision", "done"], kind="stable")
    out = {}
    for row in seen.drop_duplicates("key", keep="last").itertuples():
        out[row.key] = {
            "revision": int(row.revision),
            "left": row.left,
            "f": row.f,
            "line": int(row.line),
        }
    return out


def _stale_dict(r: Any) -> dict[str, Any]:
    return {
        "key": r.key,
        "value": r.result,
        "revision": int(r.revision),
        "known_revision": int(r.known),
        "known_line": int(r.known_line),
        "process": r.process,
        "node": r.node,
        "line": int(r.line),
    }


def _s(t: int) -> Any:
    return round(t / SEC, 3) if t >= 0 else None


def _examples(
    lost: list[tuple[Any, ...]],
    divergent: list[Any],
    read_nodes: dict[str, dict[str, Any]],
    stale: pd.DataFrame,
) -> list[dict[str, Any]]:
    """The tables after the windows: lost writes, divergent keys, stale direct reads."""
    out = []
    if lost:
        head = ["node", "key", "final value", "final revision", "newest value", "revision",
                "newest by", "line"]  # fmt: skip
        rows = [
            [n, k, v, r, w["left"], w["revision"], w["f"], w["line"]]
            for n, k, v, r, w in lost[:EXAMPLES]
        ]
        note = (
            f"{len(lost):,} replica keys whose last entry is older than (or at the same "
            "revision differs from) the newest revision a client was told of."
        )
        out.append({"title": "Lost writes", "note": note, "head": head, "rows": rows})
    if divergent:
        rows = []
        for k in divergent[:EXAMPLES]:
            held = {n: r["entries"].get(k, (None, 0)) for n, r in sorted(read_nodes.items())}
            rows.append([k, "; ".join(f"{n}: {v!r} @ {rev}" for n, (v, rev) in held.items())])
        note = f"{len(divergent):,} keys whose replicas hold different last entries."
        out.append(
            {"title": "Divergent keys", "note": note, "head": ["key", "entries"], "rows": rows}
        )
    if len(stale):
        head = ["key", "process", "node", "value read", "revision read", "newer revision",
                "returned by line", "line", "invoked (s)"]  # fmt: skip
        rows = [
            [
                r.key,
                r.process,
                r.node,
                r.result,
                int(r.revision),
                int(r.known),
                int(r.known_line),
                int(r.line),
                _s(int(r.invoked)),
            ]
            for r in stale.head(EXAMPLES).itertuples()
        ]
        note = (
            f"{len(stale):,} direct gets returned a revision older than one returned before "
            "they began: a replica behind the leader answered (allowed for direct gets)."
        )
        out.append({"title": "Stale direct reads", "note": note, "head": head, "rows": rows})
    return out


# ---- the headline block (checkers.verdict reads it; see checkers.compose) ----

COUNTS = (
    ("keys", "key_count", "keys read and written", False),
    ("ops", "op_count", "kv ops invoked", False),
    (
        "writes acknowledged",
        "write_ok_count",
        "puts, creates, updates and deletes that took effect",
        False,
    ),
    (
        "updates refused",
        "refused_update_count",
        "updates whose revision was no longer the key's",
        False,
    ),
    ("creates refused", "refused_create_count", "creates of a key that existed", False),
    ("failed", "failed_count", "other ops that certainly did not happen (no leader)", False),
    ("unknown", "info_count", "ops of unknown outcome (allowed)", False),
    ("lost writes", "lost_write_count", "replica keys older than an acknowledged revision", True),
    ("divergent", "divergence_count", "keys whose replicas disagree", True),
    ("direct reads", "direct_read_count", "direct gets that returned", False),
    (
        "stale direct reads",
        "stale_read_count",
        "direct gets behind an earlier revision (allowed)",
        False,
    ),
)


def _count(name: str, value: Any, meaning: str, bad: bool) -> dict[str, Any]:
    return {"name": name, "value": value, "bad": bool(bad and value), "meaning": meaning}


def summarize(c: dict[str, Any], lin: dict[str, Any]) -> dict[str, Any]:
    """The headline block of a kv result (see ``checkers.compose``).

    ``headline`` by ``valid``: True ``5 keys linearizable (1,234 ops, 456 writes
    acknowledged); every replica holds each key's last write``; False the
    problems, e.g. ``2 of 5 keys NOT linearizable (first: key 3); LOST writes on
    3 of 15 replica keys``; "unknown" the linear checker's reason or the unread nodes.
    """
    unread = list(c.get("unread_nodes") or [])
    stale = c["stale_read_count"]
    if c["valid"] is True:
        headline = (
            f"{c['key_count']:,} keys linearizable ({c['op_count']:,} ops, "
            f"{c['write_ok_count']:,} writes acknowledged); every replica holds each key's "
            "last write"
        )
    elif c["valid"] is False:
        parts = []
        bad = lin["invalid_key_count"]
        if bad:
            first = lin["windows"][0]["key"]
            parts.append(
                f"{bad:,} of {lin['key_count']:,} keys NOT linearizable (first: key {first!r})"
            )
        if c["lost_write_count"]:
            parts.append(
                f"LOST writes on {c['lost_write_count']:,} of {c['reading_count']:,} replica keys"
            )
        if c["divergence_count"]:
            parts.append(f"{c['divergence_count']:,} keys divergent between replicas")
        headline = "; ".join(parts + replica_problems(c))
    elif lin["valid"] == "unknown":
        headline = lin["summary"]["headline"]
    else:
        headline = f"unread nodes: {', '.join(unread)}" if unread else "no node was read"
    if stale:
        headline += f"; {stale:,} stale direct reads (allowed)"
    linear_counts = [
        x for x in lin["summary"]["counts"] if x["name"] in ("not linearizable", "undecided")
    ]
    notes = replica_notes(c)
    if c["direct_read_count"]:
        notes.append(
            f"{c['direct_read_count']:,} gets were direct (any replica may answer): they are not "
            f"part of the linearizability check; {stale:,} returned a revision older than one "
            "returned before they began."
        )
    nodes = [
        {
            "node": n,
            "status": replica_status(c, n, str(d["status"])),
            "note": str(d["note"] or ""),
            "counts": [
                _count(
                    "lost writes", d["lost_write_count"], "keys behind the newest revision", True
                )
            ],
        }
        for n, d in c["per_node"].items()
    ]
    return {
        "headline": headline,
        "counts": [_count(n, c[k], m, bad) for n, k, m, bad in COUNTS[:2]]
        + linear_counts
        + [_count(n, c[k], m, bad) for n, k, m, bad in COUNTS[2:]]
        + replica_counts(c),
        "row": {
            "keys": c["key_count"],
            "keys_invalid": lin["invalid_key_count"],
            "writes": c["write_ok_count"],
            "lost_writes": c["lost_write_count"],
            "stale_reads": stale,
        },
        "rate": {"name": "keys_invalid", "label": "non-linearizable keys"},
        "unread_nodes": unread,
        "nodes": nodes,
        "notes": notes,
    }
