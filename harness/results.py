"""The result folder's verdict files: ``results.json``, ``summary.md`` and the ``latest`` link.

``write`` loads the run's ``history.jsonl``, runs the checkers (pure
functions, ``checkers.compose``) and writes ``results.json`` (DESIGN §3.3:
``valid``, ``anomalies``, ``checkers``, ``stats``, timings, versions), a
``summary.md`` for CI job summaries and, through ``checkers.report``,
``report.html`` with ``plots/``. ``verdict_line`` is the one line ``run`` and ``check``
print. Nothing here talks to a cluster, so a crashed run's history can be
re-checked the same way with ``nats-chaos check``.
"""

from __future__ import annotations

import json
import logging
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.history import LoadedHistory, load_history
from harness.scenario import ExpectSpec, Scenario

log = logging.getLogger(__name__)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, Any]:
    """Versions of everything that shaped the result."""
    return {
        "nats_chaos": _version("nats-chaos"),
        "nats_py": _version("nats-py"),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def check_file(history: Path, nodes: list[str] | None, workload: str = "queue") -> dict[str, Any]:
    """Load and check one history file; ``nodes`` defaults to every node the history names."""
    return check_loaded(load_history(history), nodes, workload)


def check_loaded(
    loaded: LoadedHistory, nodes: list[str] | None, workload: str = "queue"
) -> dict[str, Any]:
    """Check an already loaded history (see :func:`check_file`)."""
    from checkers.compose import check_history  # checkers import numpy/pandas: load on use

    ops = loaded.ops
    if nodes is None:  # the nodes that were read: a node without a replica is never read
        reads = ops.loc[ops["f"] == "read", "node"].dropna()
        nodes = sorted(set(reads.unique()), key=_node_key)
    result = check_history(ops, {"nodes": nodes}, workload=workload)
    result["history_warnings"] = loaded.warnings
    return result


def _node_key(n: str) -> tuple[int, str]:
    digits = "".join(c for c in n if c.isdigit())
    return (int(digits) if digits else 0, n)


def write(
    run_dir: Path,
    scenario: Scenario,
    extra: dict[str, Any],
    timings: dict[str, float],
    interrupted: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """Check the run's history; write results.json, summary.md, report.html; return the result."""
    history = run_dir / "history.jsonl"
    ops = None
    if history.exists():
        nodes = extra.get("replica_nodes") or scenario.node_names
        loaded = load_history(history)  # once: the checkers and the report's plots share it
        ops = loaded.ops
        result = check_loaded(loaded, nodes, scenario.workload.name)
    else:
        result = {"valid": "unknown", "anomalies": [], "checkers": {}}
    _add_logs_checker(result, run_dir / "nodes")
    if interrupted or error:
        result["valid"] = False if result["valid"] is False else "unknown"
    result.update(
        scenario=scenario.name,
        seed=scenario.seed,
        run_dir=str(run_dir),
        interrupted=interrupted,
        error=error,
        timings=timings,
        versions={**versions(), "nats_server": (extra.get("nats_server") or {}).get("version")},
        **{k: v for k, v in extra.items() if k != "nats_server"},
    )
    result["stats"] = result.get("checkers", {}).get("stats", {})
    (run_dir / "results.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (run_dir / "summary.md").write_text(summary_md(result, scenario))
    _write_report(run_dir, result, ops, scenario)
    return result


def _write_report(
    run_dir: Path, result: dict[str, Any], ops: Any, scenario: Scenario | None
) -> None:
    """``report.html`` and ``plots/``; a failure is logged and never costs ``results.json``."""
    try:
        from checkers.report import write_report

        data = scenario.model_dump(mode="json") if scenario is not None else None
        write_report(run_dir, result, ops, data)
    except Exception:
        log.exception("report.html could not be written (results.json and summary.md are)")


def _add_logs_checker(result: dict[str, Any], nodes_dir: Path) -> None:
    """Add ``checkers.logs`` (server logs: a panic is invalid) and merge its verdict."""
    from checkers.compose import merge_valid
    from checkers.logs import check_logs

    logs = check_logs(nodes_dir)
    result.setdefault("checkers", {})["logs"] = logs
    result["valid"] = merge_valid(result["valid"], logs["valid"])
    anomalies = result.setdefault("anomalies", [])
    anomalies += [a for a in logs["anomalies"] if a not in anomalies]


def verdict_line(result: dict[str, Any]) -> str:
    """``VALID: …`` / ``INVALID: LOST 12 of 5,432 …`` / ``UNKNOWN: …`` in one line."""
    q = result.get("checkers", {}).get("queue", {})
    acked = q.get("acknowledged_count", 0)
    valid = result.get("valid")
    why = (result.get("interrupted") and f" (interrupted by {result['interrupted']})") or ""
    if result.get("error"):
        why += f" (run failed: {result['error']})"
    if valid is True:
        unread = q.get("unread_nodes") or []
        if unread:
            why = f" (not read: {', '.join(unread)})" + why
        return f"VALID: no anomalies in {acked:,} acknowledged writes{why}"
    if valid is False:
        parts = []
        lost = q.get("lost_count", 0)
        if lost:
            pct = 100.0 * lost / acked if acked else 0.0
            parts.append(f"LOST {lost:,} of {acked:,} acknowledged writes ({pct:.2f}%)")
        for key, label in (
            ("unexpected_count", "unexpected"),
            ("duplicated_count", "duplicated"),
            ("failed_but_read_count", "failed publishes read back"),
        ):
            if q.get(key):
                parts.append(f"{q[key]:,} {label}")
        div = (q.get("divergence") or {}).get("count", 0)
        if div:
            parts.append(f"{div:,} divergent between replicas")
        return "INVALID: " + ("; ".join(parts) or ", ".join(result.get("anomalies", []))) + why
    reason = q.get("error") or result.get("error") or "the history does not decide"
    if not result.get("error") and q.get("unread_nodes"):
        reason = f"unread nodes: {', '.join(q['unread_nodes'])}"
    return f"UNKNOWN: {reason}{why}"


def summary_md(result: dict[str, Any], scenario: Scenario | None = None) -> str:
    """Markdown for a CI job summary: verdict, settings, key counts, nodes, where to look next."""
    from checkers.report import summary  # the same rows as report.html and `show`

    v = summary.verdict(result)
    icon = {"valid": "✅", "invalid": "❌"}.get(v.status, "⚠️")
    name = result.get("scenario") or "history check"
    lines = [f"## {icon} {v.label} · {_md(name)}", "", f"**{_md(v.headline)}**", ""]
    data = scenario.model_dump(mode="json") if scenario is not None else None
    lines += ["| setting | value |", "|---|---|"]
    lines += [f"| {_md(k)} | {_md(val)} |" for k, val in summary.settings(result, data)]
    lines += [f"| {_md(k)} | {_md(val)} |" for k, val in summary.performance(result)]
    counts = summary.key_counts(result)
    if counts:
        lines += [
            "",
            "| " + " | ".join(name for name, _, _ in counts) + " |",
            "|" + "---:|" * len(counts),
            "| " + " | ".join(_md_count(n, c) for n, c, _ in counts) + " |",
        ]
    when = summary.lost_when(result)
    if when:
        lines += ["", when]
    nodes = summary.node_rows(result)
    if nodes:
        lines += [
            "",
            "| node | status | read | lost | missing | note |",
            "|---|---|---:|---:|---:|---|",
        ]
        for node, status, read, lost, missing, note in nodes:
            cells = (_md(node), _md(status), _n(read), _n(lost), _n(missing), _md(note))
            lines.append("| " + " | ".join(cells) + " |")
    logs = (result.get("checkers") or {}).get("logs") or {}
    found = {k: n for k, n in (logs.get("counts") or {}).items() if n}
    if found:
        listed = ", ".join(f"{k} ×{n:,}" for k, n in found.items())
        lines += ["", f"Server logs: {_md(listed)}."]
    if result.get("run_dir"):
        lines += ["", f"Details: `report.html` in `{_md(result['run_dir'])}`."]
    return "\n".join(lines) + "\n"


def _md(v: Any) -> str:
    """A value for a markdown table cell: one line, no table pipes, no raw HTML."""
    text = " ".join(str(v).split())
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _md_count(name: str, count: Any) -> str:
    from checkers.report.summary import BAD

    text = _n(count)
    return f"**{text}**" if name in BAD and count else text


def _n(v: Any) -> str:
    return "–" if v is None else f"{v:,}"


def link_latest(run_dir: Path) -> None:
    """Point ``<scenario>/latest`` at ``run_dir`` (replacing an older link)."""
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, link)


def exit_code_for(result: dict[str, Any], expect: ExpectSpec | None = None) -> int:
    """0 when the outcome matches ``expect`` (None: the run is valid), else 1 (DESIGN §3.4)."""
    from harness.expect import match

    return 0 if match(result, expect).matched else 1
