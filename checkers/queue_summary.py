"""The queue checker's headline block: its verdict phrase, counts, node rows, notes, examples.

In: a queue checker result (:func:`checkers.queue.check_queue`; any subset
of its keys). Out (:func:`summarize`): the ``summary`` block every view
reads through :func:`checkers.verdict.headline` (shape in
:mod:`checkers.compose`). The replica anomalies (:mod:`checkers.replicas`)
are named in the headline — ``STREAM LOST on n1``, ``STALLED n3 (809
stream sequences behind at the 30s recovery bound)``, ``2 replica groups disagree on 1,234
stream sequences ({n1, n2} | {n3})``, ``holes on n2: 4,653 stream
sequences`` — and explained in the notes and example tables.
"""

from __future__ import annotations

from typing import Any

COUNTS = (
    ("attempted", "attempt_count", "publishes invoked", False),
    ("acknowledged", "acknowledged_count", "publishes the server acknowledged", False),
    ("read", "read_count", "distinct values read back from any node", False),
    ("lost", "lost_count", "acknowledged, but read back from no node", True),
    ("unexpected", "unexpected_count", "read back, but never published", True),
    ("duplicated", "duplicated_count", "at two stream sequences on one node", True),
    ("failed but read", "failed_but_read_count", "publish definitely failed, yet read back", True),
    ("failed", "failed_count", "publish definitely failed and was not read (allowed)", False),
    ("recovered", "recovered_count", "not acknowledged, yet read back (allowed)", False),
    ("unknown", "unknown_count", "not acknowledged and not read (allowed)", False),
)
# what a read must show: unknown while nothing was read
READ_DEPENDENT = frozenset(c[1] for c in COUNTS) - {"attempt_count", "acknowledged_count"}
REPLICA_COUNTS = (
    ("stream lost", "stream_lost", "nodes whose read says the stream does not exist"),
    ("stalled", "stalled", "replicas behind when the recovery wait reached its bound"),
    ("with holes", "holes", "replicas missing a range below their last stream sequence"),
)
PROBLEMS = (
    ("unexpected_count", "unexpected"),
    ("duplicated_count", "duplicated"),
    ("failed_but_read_count", "failed publishes read back"),
)


def _count(name: str, value: Any, meaning: str, bad: bool) -> dict[str, Any]:
    known = value != "unknown"
    return {"name": name, "value": value, "bad": bool(bad and known and value), "meaning": meaning}


def _many(n: int, noun: str) -> str:
    """``1 stream sequence``, ``4,653 stream sequences``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _nodes(names: Any) -> str:
    return "{" + ", ".join(map(str, names)) + "}"


def _stalled_phrase(st: dict[str, Any]) -> str:
    at = st.get("at_bound") or {}
    bound = st.get("bound_s")
    where = (
        f"at the {bound:g}s recovery bound" if isinstance(bound, int | float) else "at the bound"
    )
    if at.get("behind") is None:
        return f"did not answer {where}"
    return f"{_many(at['behind'], 'stream sequence')} behind {where}"


def replica_problems(q: dict[str, Any]) -> list[str]:
    """The replica anomalies as phrases: stream lost, stalled, replica groups, holes, divergence."""
    parts = []
    lost_on = list(q.get("stream_lost") or {})
    if lost_on:
        parts.append(f"STREAM LOST on {', '.join(lost_on)}")
    parts += [f"STALLED {n} ({_stalled_phrase(st)})" for n, st in (q.get("stalled") or {}).items()]
    div = q.get("divergence") or {}
    conflicts = (div.get("conflict_seqs") or {}).get("count") or 0
    groups = div.get("groups") or []
    if conflicts:
        split = " | ".join(_nodes(g["nodes"]) for g in groups)
        parts.append(
            f"{len(groups)} replica groups disagree on {_many(conflicts, 'stream sequence')} "
            f"({split})"
        )
    for node, h in (q.get("holes") or {}).items():
        ranges = h.get("range_count") or 0
        parts.append(
            f"holes on {node}: {_many(h['count'], 'stream sequence')} missing in "
            f"{_many(ranges, 'range')}"
        )
    for node, short in (div.get("short_nodes") or {}).items():
        lacks = _many(short["count"], "stream sequence")
        parts.append(f"replica {node} lacks {lacks} other replicas end with")
    return parts


def _problems(q: dict[str, Any]) -> list[str]:
    """``LOST 12 of 5,432 acknowledged writes (0.22%)``, ``3 unexpected``, … (none: [])."""
    acked = q.get("acknowledged_count") or 0
    parts = []
    lost = q.get("lost_count") or 0
    if lost:
        pct = 100.0 * lost / acked if acked else 0.0
        parts.append(f"LOST {lost:,} of {acked:,} acknowledged writes ({pct:.2f}%)")
    parts += [f"{q[key]:,} {label}" for key, label in PROBLEMS if q.get(key)]
    named = replica_problems(q)
    div = (q.get("divergence") or {}).get("count") or 0
    if div and not named:  # a result without the replica analysis (older results.json)
        named = [f"{div:,} divergent between replicas"]
    return parts + named


def replica_status(q: dict[str, Any], node: str, status: str) -> str:
    """A node row's status: ``stream lost``, ``stalled`` or ``holes`` where the replica
    analysis found one, else ``status``."""
    if node in (q.get("stream_lost") or {}):
        return "stream lost"
    if node in (q.get("stalled") or {}):
        return "stalled"
    if node in (q.get("holes") or {}):
        return "holes"
    return status


def _node_rows(q: dict[str, Any]) -> list[dict[str, Any]]:
    missing = (q.get("divergence") or {}).get("missing_on_node") or {}
    holes = q.get("holes") or {}
    rows = []
    for node, d in (q.get("per_node") or {}).items():
        miss = (missing.get(node) or {}).get("count")
        gap = (holes.get(node) or {}).get("count", 0) if d.get("status") != "unread" else None
        counts = [
            _count("read", d.get("read_count"), "distinct values read from this node", False),
            _count(
                "lost", d.get("lost_count"), "acknowledged values this node does not hold", True
            ),
            _count(
                "missing", miss, "values this node lacks that another node has (divergence)", True
            ),
            _count("holes", gap, "stream sequences missing below this node's last one", True),
        ]
        status = replica_status(q, str(node), str(d.get("status", "")))
        note = str(d.get("note") or "")
        rows.append({"node": str(node), "status": status, "note": note, "counts": counts})
    return rows


def _windows(lost: dict[str, Any]) -> str:
    shown = ", ".join(
        f"{w['from_s']:.1f}–{w['to_s']:.1f}s ({w['count']:,})" for w in lost.get("windows") or []
    )
    more = (lost.get("window_count") or 0) - len(lost.get("windows") or [])
    return shown + (f" and {more:,} more" if more > 0 else "")


def _seq_ranges(r: dict[str, Any]) -> str:
    shown = ", ".join(f"{a:,}–{b:,}" if a != b else f"{a:,}" for a, b in r.get("ranges") or [])
    more = (r.get("range_count") or 0) - len(r.get("ranges") or [])
    return (shown or "none") + (f" and {more:,} more" if more > 0 else "")


def _log_said(lines: list[dict[str, Any]]) -> str:
    return "; ".join(f"“{e['line']}” ×{e['count']:,}" for e in lines[:2])


def replica_notes(q: dict[str, Any]) -> list[str]:
    """One sentence per replica group, stalled replica, hole and lost stream."""
    notes = []
    div = q.get("divergence") or {}
    for g in div.get("groups") or []:
        lost = g.get("lost") or {}
        text = (
            f"Replica group {_nodes(g['nodes'])}: {g['messages']:,} messages at stream "
            f"sequences {_seq_ranges(g['seqs'])}"
        )
        if lost.get("count"):
            text += (
                f"; lacks {_many(lost['count'], 'acknowledged write')} another group holds, "
                f"acknowledged in {_many(lost['window_count'], 'window')}: {_windows(lost)}"
            )
        notes.append(text + ".")
    for node, st in (q.get("stalled") or {}).items():
        at = st.get("at_bound") or {}
        text = f"{node} was stalled ({_stalled_phrase(st)})"
        if at.get("last_seq") is not None:
            text += f": last stream sequence {at['last_seq']:,} of {at['top_seq']:,}"
        if st.get("read_last_seq") is not None:  # a read of whole streams
            shape = "a prefix of the others" if st.get("prefix_consistent") else "inconsistent"
            text += (
                f"; its read ended at {st['read_last_seq']:,}, {st['read_behind']:,} behind, "
                f"{shape}"
            )
        elif not st.get("read"):
            text += "; it could not be read"
        if st.get("log"):
            text += f". Its log: {_log_said(st['log'])}"
        notes.append(text + ".")
    for node, h in (q.get("holes") or {}).items():
        lost = h.get("lost") or {}
        text = (
            f"{node} served reads while missing stream sequences {_seq_ranges(h)} "
            f"({h['count']:,}) that other replicas hold"
        )
        if lost.get("count"):
            text += f"; {lost['count']:,} of them acknowledged writes, from {_windows(lost)}"
        notes.append(text + ".")
    for node, sl in (q.get("stream_lost") or {}).items():
        text = f"{node}: {sl.get('note') or 'the stream is absent'}"
        if sl.get("log"):
            text += f"; its log: {_log_said(sl['log'])}"
        notes.append(text + ".")
    return notes


def _notes(q: dict[str, Any]) -> list[str]:
    notes = []
    br = q.get("lost_breakdown") or {}
    if q.get("lost_count"):
        notes.append(
            f"Lost writes relative to each process's reads: {br.get('prefix', 0):,} prefix, "
            f"{br.get('middle', 0):,} middle, {br.get('postfix', 0):,} postfix."
        )
    when = q.get("lost_ack_time") or {}
    if when.get("first") is not None:
        notes.append(
            f"Lost writes were acknowledged between {when['first']:.1f}s and "
            f"{when['last']:.1f}s after the run started."
        )
    return notes + replica_notes(q)


def replica_examples(q: dict[str, Any]) -> list[dict[str, Any]]:
    """Tables of replica groups and stalled replicas for the report."""
    out = []
    groups = (q.get("divergence") or {}).get("groups") or []
    if groups:
        rows = [
            [
                _nodes(g["nodes"]),
                g["messages"],
                _seq_ranges(g["seqs"]),
                (g.get("lost") or {}).get("count", 0),
                _windows(g.get("lost") or {}) or "–",
                g.get("only_here", 0),
            ]
            for g in groups
        ]
        head = [
            "nodes",
            "messages",
            "stream seqs",
            "acked lacking",
            "lacking acked in",
            "only here",
        ]
        note = "Read nodes grouped by identical contents; different groups lose different windows."
        out.append({"title": "Replica groups", "note": note, "head": head, "rows": rows})
    stalled = q.get("stalled") or {}
    if stalled:
        rows = [
            [
                n,
                (st.get("at_bound") or {}).get("last_seq"),
                (st.get("at_bound") or {}).get("behind"),
                st.get("read_last_seq", "unread"),
                "\n".join(f"{e['line']} ×{e['count']:,}" for e in st.get("log") or []) or "–",
            ]
            for n, st in stalled.items()
        ]
        head = ["node", "last seq at bound", "behind", "read up to", "log lines"]
        note = "Replicas still behind when the recovery wait reached its bound."
        out.append({"title": "Stalled replicas", "note": note, "head": head, "rows": rows})
    return out


def replica_counts(
    q: dict[str, Any],
    known: bool = True,
    meaning: str = "stream sequences the replicas disagree on (each counted once)",
) -> list[dict[str, Any]]:
    """The ``divergent``, ``stream lost``, ``stalled`` and ``with holes`` counts (``unknown``
    unless ``known``); ``meaning`` says what a divergent count counts."""
    counts = []
    div = q.get("divergence")
    if isinstance(div, dict):
        counts.append(_count("divergent", div.get("count") if known else "unknown", meaning, True))
    for name, key, said in REPLICA_COUNTS:
        if isinstance(q.get(key), dict):
            counts.append(_count(name, len(q[key]) if known else "unknown", said, True))
    return counts


def summarize(q: dict[str, Any]) -> dict[str, Any]:
    """The headline block of a queue result (any subset of its keys; see ``checkers.compose``).

    ``headline`` reads, by the result's ``valid``: True ``no anomalies in
    7,195 acknowledged writes``; False ``LOST 12 of 5,432 acknowledged writes
    (0.22%); 3 unexpected``; "unknown" ``unread nodes: n1, n2`` — and then
    every count a read must show (read, lost, unexpected …) is ``"unknown"``,
    the row's ``lost`` None and no note speaks of lost writes.
    """
    acked = q.get("acknowledged_count") or 0
    lost = q.get("lost_count") or 0
    unread = list(q.get("unread_nodes") or [])
    valid = q.get("valid")
    known = valid is True or valid is False  # "unknown": no node was read, no loss is known
    if valid is True:
        headline = f"no anomalies in {acked:,} acknowledged writes"
    elif valid is False:
        headline = "; ".join(_problems(q)) or ", ".join(q.get("anomalies") or [])
    else:
        headline = f"unread nodes: {', '.join(unread)}" if unread else "no node was read"
    if valid is True or valid is False:
        counts = [_count(n, q[k], m, bad) for n, k, m, bad in COUNTS if k in q]
    else:  # nothing was read (an interrupted run, or every node unread): no loss is known
        counts = [
            _count(n, q[k], m, bad)
            if k not in READ_DEPENDENT
            else _count(n, "unknown", f"{m} — unknown: no node was read", False)
            for n, k, m, bad in COUNTS
            if k in q
        ]
    counts += replica_counts(q, known)
    return {
        "headline": headline,
        "counts": counts,
        "row": {
            "acknowledged": acked,
            "lost": lost if known else None,
            "lost_pct": (round(100.0 * lost / acked, 2) if acked else 0.0) if known else None,
        },
        "rate": {"name": "lost_pct", "label": "lost acknowledged writes (%)"},
        "unread_nodes": unread,
        "nodes": _node_rows(q),
        "notes": _notes(q) if known else [],
        "examples": replica_examples(q),
    }
