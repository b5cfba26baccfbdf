"""Example rows and log findings for the report: sample values with the ops behind them.

In: the headline checker's result (its ``summary.examples`` tables, and the
queue checker's samples of lost, unexpected, duplicated and divergent
values with ``sample_reads``: where the final reads held each sample), the
ops of the history (for the publish ops behind a value), and the result
folder (for node logs). Out: example tables as ``(title, note, rows,
header)`` and the node-log section as HTML. The log
checker's findings (``checkers.logs`` in the result) are shown as it reports
them; without them, each node log's level counts and first error lines are
shown so a report of any run still points at the logs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from checkers.report import timeline
from checkers.report.html import Markup, definitions, el, num, table

PER_KIND = 10
Example = tuple[str, str, list[tuple[Any, ...]], list[str]]
PUBLISH_HEAD = [
    "value",
    "process",
    "node",
    "invoked (s)",
    "outcome",
    "completed (s)",
    "seq",
    "error",
]


def _values(n: int, noun: str = "value") -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _s(t: Any) -> str:
    return "–" if t is None else f"{t:.3f}"


def _publish_row(value: int, ops: list[dict[str, Any]]) -> tuple[Any, ...]:
    inv = next((o for o in ops if o.get("type") == "invoke"), {})
    done = next((o for o in ops if o.get("type") != "invoke"), {})
    return (
        value,
        inv.get("process", "–"),
        inv.get("node") or "–",
        _s(inv.get("time_s")),
        done.get("type") or "no completion",
        _s(done.get("time_s")),
        num(done.get("seq")) if done.get("seq") is not None else "–",
        done.get("error") or "",
    )


def _where(found: dict[str, list[int]]) -> str:
    return (
        "; ".join(f"{n} at seq {', '.join(map(str, s))}" for n, s in sorted(found.items())) or "–"
    )


def _read_at(q: dict[str, Any], values: list[int]) -> dict[int, dict[str, list[int]]]:
    """``{value: {node: [stream seqs]}}`` of ``values``, from the checker's ``sample_reads``."""
    found = q.get("sample_reads") or {}
    return {v: found.get(str(v)) or {} for v in values}


def checker_examples(q: dict[str, Any]) -> list[Example]:
    """The example tables a checker hands over in its ``summary.examples`` (any workload)."""
    out: list[Example] = []
    for e in (q.get("summary") or {}).get("examples") or []:
        rows = [tuple(r) for r in (e.get("rows") or [])[:PER_KIND]]
        out.append(
            (str(e.get("title", "")), str(e.get("note", "")), rows, list(e.get("head") or []))
        )
    return out


def examples(q: dict[str, Any], ops: pd.DataFrame | None) -> list[Example]:
    """Tables of sample anomalous values, each with the ops or reads that show it.

    The queue checker's samples are looked up in the ops here; any checker
    may instead hand over finished tables in ``summary.examples``.
    """
    out: list[Example] = checker_examples(q)
    lost = [int(v) for v in (q.get("lost") or [])[:PER_KIND]]
    missing = {
        n: [int(v) for v in (m.get("sample") or [])[:PER_KIND]]
        for n, m in ((q.get("divergence") or {}).get("missing_on_node") or {}).items()
        if m.get("count")
    }
    failed_read = [int(v) for v in (q.get("failed_but_read") or [])[:PER_KIND]]
    wanted = lost + failed_read + [v for vs in missing.values() for v in vs]
    pubs = timeline.publish_ops(ops, wanted) if ops is not None else {}
    if lost:
        rows = [_publish_row(v, pubs.get(v, [])) for v in lost]
        note = (
            f"{_values(q.get('lost_count', len(lost)), 'acknowledged value')} no node returned; "
            f"the first {len(lost)} by value, with their publish ops."
        )
        out.append(("Lost writes", note, rows, PUBLISH_HEAD))
    if failed_read:
        where = _read_at(q, failed_read)
        rows = [(*_publish_row(v, pubs.get(v, [])), _where(where.get(v, {}))) for v in failed_read]
        n = q.get("failed_but_read_count", len(failed_read))
        note = f"{n:,} publish{'es' if n != 1 else ''} failed definitely, yet were read back."
        out.append(("Failed publishes read back", note, rows, [*PUBLISH_HEAD, "read on"]))
    unexpected = [int(v) for v in (q.get("unexpected") or [])[:PER_KIND]]
    if unexpected:
        where = _read_at(q, unexpected)
        rows = [(v, _where(where.get(v, {}))) for v in unexpected]
        note = f"{_values(q.get('unexpected_count', 0))} read back that no client ever published."
        out.append(("Unexpected values", note, rows, ["value", "read on"]))
    dups = [int(v) for v in (q.get("duplicated") or [])[:PER_KIND]]
    if dups:
        where = _read_at(q, dups)
        rows = [(v, _where(where.get(v, {}))) for v in dups]
        note = (
            f"{q.get('duplicated_count', 0):,} values stored at two stream sequences on one node."
        )
        out.append(("Duplicated values", note, rows, ["value", "read on"]))
    conflicts = ((q.get("divergence") or {}).get("same_seq_different_value")) or {}
    if conflicts.get("examples"):
        rows = [
            (num(e.get("seq")), "; ".join(f"{n}: {v}" for n, v in sorted(e["values"].items())))
            for e in conflicts["examples"]
        ]
        n = conflicts.get("count", 0)
        verb = "s hold" if n != 1 else " holds"
        note = f"{n:,} stream sequence{verb} different values on two nodes."
        out.append(("Replicas disagree", note, rows, ["stream seq", "value per node"]))
    for node, values in missing.items():
        where = _read_at(q, values)
        rows = [(*_publish_row(v, pubs.get(v, [])), _where(where.get(v, {}))) for v in values]
        count = q["divergence"]["missing_on_node"][node]["count"]
        note = f"{_values(count, 'acknowledged value')} other nodes hold but {node} does not."
        out.append((f"Missing on {node}", note, rows, [*PUBLISH_HEAD, "held by"]))
    return out


# ---- node logs -------------------------------------------------------------

LEVEL = re.compile(rb"\[(INF|WRN|ERR|FTL|DBG|TRC)\]")
FIRST_LINES = 3
MAX_LOG_BYTES = 64 << 20


def _generic(value: Any) -> Markup:
    """Any JSON-ish value as HTML: dicts as tables, lists of lines as a block."""
    if isinstance(value, dict):
        return definitions((k, _generic(v)) for k, v in value.items())
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            keys = list(dict.fromkeys(k for v in value for k in v))
            return table(keys, [[_generic(v.get(k)) for k in keys] for v in value])
        if any(isinstance(v, str) and len(v) > 40 for v in value):
            return el("pre", "\n".join(str(v) for v in value))
        return el("span", ", ".join(num(v) for v in value))
    return el("span", num(value))


def scan_log(path: Path) -> dict[str, Any]:
    """Level counts and the first error/fatal lines of one nats-server log."""
    counts: dict[str, int] = {}
    first: list[str] = []
    with path.open("rb") as fh:
        data = fh.read(MAX_LOG_BYTES)
    for line in data.splitlines():
        m = LEVEL.search(line)
        if not m:
            continue
        level = m.group(1).decode()
        counts[level] = counts.get(level, 0) + 1
        if level in ("ERR", "FTL") and len(first) < FIRST_LINES:
            first.append(line.decode("utf-8", "replace"))
    return {
        "counts": counts,
        "first_errors": first,
        "truncated": path.stat().st_size > MAX_LOG_BYTES,
    }


def _log_link(run_dir: Path, node: str) -> Markup:
    rel = f"nodes/{node}/nats-server.log"
    return el("a", node, href=rel) if (run_dir / rel).is_file() else el("span", node)


def _log_checker(found: dict[str, Any], run_dir: Path) -> Markup:
    """The log checker's result (counts, nodes, missing) as tables."""
    nodes = found.get("nodes")
    if not isinstance(nodes, dict):
        return Markup(el("p", "Log checker result:") + _generic(found))
    verdict: dict[Any, str] = {
        True: "no finding that invalidates the run",
        False: "the run is invalid",
    }
    anomalies = ", ".join(found.get("anomalies") or []) or "none"
    head = el(
        "p",
        f"Log checker: {verdict.get(found.get('valid'), 'undecided')} (anomalies: {anomalies}).",
    )
    cats = [c for c, n in (found.get("counts") or {}).items() if n]
    rows = [
        (_log_link(run_dir, n), num(d.get("lines")), *(num(d["counts"].get(c, 0)) for c in cats))
        for n, d in nodes.items()
        if isinstance(d, dict) and isinstance(d.get("counts"), dict)
    ]
    out = head + table(("node", "lines", *cats), rows, numeric=range(1, 2 + len(cats)))
    if not cats:
        out += el("p", "No line matched any finding pattern.", class_="muted small")
    for n, d in nodes.items():
        first = d.get("first") if isinstance(d, dict) else None
        if first:
            text = "\n".join(f"{c}: {line}" for c, lines in first.items() for line in lines)
            out += el("h3", f"{n}: first lines per finding") + el("pre", text)
    if found.get("missing"):
        out += el("p", "No log for: ", ", ".join(map(str, found["missing"])), class_="muted")
    return Markup(out)


def logs_section(result: dict[str, Any], run_dir: Path) -> Markup:
    """The log checker's findings if it ran, else a scan of ``nodes/*/nats-server.log``."""
    found = (result.get("checkers") or {}).get("logs")
    if isinstance(found, dict):
        return _log_checker(found, run_dir)
    rows = []
    for log in sorted((run_dir / "nodes").glob("*/nats-server.log")):
        s = scan_log(log)
        c = s["counts"]
        lines = el("pre", "\n".join(s["first_errors"])) if s["first_errors"] else "–"
        counts = (num(c.get(k, 0)) for k in ("WRN", "ERR", "FTL"))
        rows.append((_log_link(run_dir, log.parent.name), *counts, lines))
    if not rows:
        return Markup(el("p", "No node logs in this folder.", class_="muted"))
    note = el(
        "p",
        "No log checker result; warnings, errors and the first error lines of each node log:",
        class_="muted small",
    )
    return Markup(note + table(("node", "WRN", "ERR", "FTL", "first errors"), rows, (1, 2, 3)))
