"""Log checker: what the servers themselves said went wrong.

In (:func:`check_logs`, composed by name as ``logs``): the ops of a history
(unused) and a context whose ``nodes_dir`` is a run's ``nodes/`` folder
(``nodes/<n>/nats-server.log``, stdout and stderr of every start of that
node); without ``nodes_dir`` it raises ValueError (composed, that is an
"unknown" result that says so). Out: ``{"valid", "anomalies",
"counts": {category: total}, "nodes": {node: {"lines", "counts", "first":
{category: [first lines]}}}, "missing": [nodes without a log]}``, and a
``summary`` with a ``headline`` when the logs make the run invalid.

Each line is matched (case-insensitively) against every category in
:data:`PATTERNS`; a line counts once per category it matches. ``panic``
(a Go panic or a runtime ``fatal error:``) makes the run invalid — the
server crashed, whatever the history says — and so does
``orphaned_stream`` (anomaly ``orphaned``: ``Detected orphaned stream …
will cleanup``, the server deleting a stream it held because the meta
layer no longer knew it; Jepsen's snapshot-corruption finding). The other categories are
evidence for a person (corruption runs are expected to produce them) and
do not change the verdict. No log at all yields ``"unknown"``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

LOG_NAME = "nats-server.log"
FIRST = 3  # lines kept per node and category
MAX_LINE = 300

PATTERNS: dict[str, re.Pattern[str]] = {
    "panic": re.compile(r"^(panic:|fatal error:)|\bgoroutine \d+ \[running\]", re.I),
    "data_race": re.compile(r"WARNING: DATA RACE", re.I),
    "fatal": re.compile(r"\[FTL\]"),
    "orphaned": re.compile(r"orphan", re.I),
    "orphaned_stream": re.compile(r"Detected orphaned stream", re.I),
    "corrupt": re.compile(r"corrupt", re.I),
    "checksum": re.compile(r"checksum", re.I),
    "mismatch": re.compile(r"mismatch", re.I),
    "inconsistent": re.compile(r"inconsisten", re.I),
    "truncated": re.compile(r"truncat", re.I),
    "lost_data": re.compile(r"\blost\b.*\b(data|messages?|bytes?)\b", re.I),
}
INVALID = {"panic": "panic", "orphaned_stream": "orphaned"}  # category -> anomaly name
SAID = {  # category -> what the verdict line says of it
    "panic": "server panic",
    "orphaned_stream": "ORPHANED: the server deleted the stream as orphaned",
}
EXPLAIN = 5  # distinct messages :func:`explain` returns
_PREFIX = re.compile(r"^\[\d+\]\s+\S+\s+\S+\s+")  # "[pid] date time " before the level


def scan_log(path: Path) -> dict[str, Any]:
    """Counts and first lines per category in one log file."""
    counts = dict.fromkeys(PATTERNS, 0)
    first: dict[str, list[str]] = {}
    lines = 0
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            lines += 1
            for name, pattern in PATTERNS.items():
                if pattern.search(line):
                    counts[name] += 1
                    kept = first.setdefault(name, [])
                    if len(kept) < FIRST:
                        kept.append(line.rstrip("\n")[:MAX_LINE])
    return {"lines": lines, "counts": counts, "first": first}


def check_logs(ops: Any, context: dict[str, Any]) -> dict[str, Any]:
    """The logs checker: :func:`scan_nodes` of ``context["nodes_dir"]``."""
    nodes_dir = context.get("nodes_dir")
    if nodes_dir is None:
        raise ValueError("no nodes_dir in the context: no server logs to read")
    return scan_nodes(Path(nodes_dir))


def scan_nodes(nodes_dir: Path) -> dict[str, Any]:
    """Scan every ``<node>/nats-server.log`` under ``nodes_dir``."""
    node_dirs = sorted(p for p in nodes_dir.iterdir() if p.is_dir()) if nodes_dir.is_dir() else []
    per_node: dict[str, Any] = {}
    missing: list[str] = []
    for d in node_dirs:
        log = d / LOG_NAME
        if log.is_file():
            per_node[d.name] = scan_log(log)
        else:
            missing.append(d.name)
    totals = dict.fromkeys(PATTERNS, 0)
    for r in per_node.values():
        for name, n in r["counts"].items():
            totals[name] += n
    anomalies = [name for cat, name in INVALID.items() if totals[cat]]
    valid: bool | str = "unknown" if not per_node else not anomalies
    result: dict[str, Any] = {
        "valid": valid,
        "anomalies": anomalies,
        "counts": totals,
        "nodes": per_node,
        "missing": missing,
    }
    said = [
        f"{what} on {', '.join(n for n, r in per_node.items() if r['counts'][cat])}"
        for cat, what in SAID.items()
        if totals[cat]
    ]
    if said:
        result["summary"] = {"headline": "; ".join(said)}
    return result


def explain(path: Path, pattern: re.Pattern[str], limit: int = EXPLAIN) -> list[dict[str, Any]]:
    """The distinct messages of one log that match ``pattern``, most frequent first.

    A message is a line without its ``[pid] date time`` prefix, so a line the
    server repeats every second is one entry: ``{"line": first such line,
    "count": how many}``, at most ``limit`` of them (ties: first seen first).
    """
    seen: dict[str, dict[str, Any]] = {}
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not pattern.search(line):
                continue
            key = _PREFIX.sub("", line.rstrip("\n"))[:MAX_LINE]
            entry = seen.setdefault(key, {"line": line.rstrip("\n")[:MAX_LINE], "count": 0})
            entry["count"] += 1
    return sorted(seen.values(), key=lambda e: -e["count"])[:limit]
