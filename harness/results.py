"""The result folder's verdict files: ``results.json``, ``summary.md`` and the ``latest`` link.

``write`` loads the run's ``history.jsonl``, runs the checkers (pure
functions, ``checkers.compose``) and writes ``results.json`` (DESIGN §3.3:
``valid``, ``anomalies``, ``checkers``, ``stats``, timings, versions) and a
short ``summary.md``. ``verdict_line`` is the one line ``run`` and ``check``
print. Nothing here talks to a cluster, so a crashed run's history can be
re-checked the same way with ``nats-chaos check``.
"""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.history import load_history
from harness.scenario import Scenario


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
    loaded = load_history(history)
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
    """Check the run's history and write ``results.json`` and ``summary.md``; return the result."""
    history = run_dir / "history.jsonl"
    if history.exists():
        nodes = extra.get("replica_nodes") or scenario.node_names
        result = check_file(history, nodes, scenario.workload.name)
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
    return result


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
    """A short markdown summary: verdict, key counts and one row per node."""
    q = result.get("checkers", {}).get("queue", {})
    lines = [f"# {result.get('scenario', 'history check')}", "", f"**{verdict_line(result)}**", ""]
    if scenario is not None:
        lines += [
            f"- nodes: {scenario.nodes}, stream replicas: {scenario.stream.replicas}, "
            f"storage: {scenario.stream.storage}",
            f"- nats-server: {(result.get('versions') or {}).get('nats_server')}, "
            f"sync_interval: {scenario.server.sync_interval}",
            f"- seed: {scenario.seed}, time limit: {scenario.time_limit:.0f}s, "
            f"faults started: {result.get('faults_started', 0)}",
            "",
        ]
    lines += ["| count | value |", "|---|---|"]
    for key in (
        "attempt_count",
        "acknowledged_count",
        "read_count",
        "ok_count",
        "lost_count",
        "unexpected_count",
        "recovered_count",
        "duplicated_count",
        "unknown_count",
    ):
        if key in q:
            lines.append(f"| {key.removesuffix('_count')} | {q[key]:,} |")
    per_node = q.get("per_node") or {}
    if per_node:
        lines += ["", "| node | status | read | lost |", "|---|---|---|---|"]
        for node, d in per_node.items():
            lines.append(
                f"| {node} | {d.get('status')} | {_n(d.get('read_count'))} | "
                f"{_n(d.get('lost_count'))} |"
            )
    when = q.get("lost_ack_time") or {}
    if when.get("first") is not None:
        lines += [
            "",
            f"Lost writes were acknowledged between {when['first']:.1f}s and "
            f"{when['last']:.1f}s after the run started.",
        ]
    return "\n".join(lines) + "\n"


def _n(v: Any) -> str:
    return "–" if v is None else f"{v:,}"


def link_latest(run_dir: Path) -> None:
    """Point ``<scenario>/latest`` at ``run_dir`` (replacing an older link)."""
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, link)


def exit_code_for(result: dict[str, Any]) -> int:
    """0 valid, 1 otherwise (DESIGN §3.4; ``expect:`` arrives with the suite work)."""
    return 0 if result.get("valid") is True else 1
