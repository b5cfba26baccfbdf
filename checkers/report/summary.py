"""The facts every view of a result shows, as plain rows: HTML, markdown and terminal alike.

In: a result dict (``results.json``, DESIGN §3.2/§3.3) and the resolved
scenario as plain data (``Scenario.model_dump(mode="json")``, or None when a
bare history was checked). Out: the verdict (status, label, headline), the
key counts, one row per node and the run's settings, as tuples of plain
values that each view formats its own way. Keeping them here means the
banner in ``report.html``, the CI ``summary.md`` and ``nats-chaos show`` can
never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.results import verdict_line


@dataclass(frozen=True)
class Verdict:
    """``status`` is valid/invalid/unknown; ``headline`` reads as a sentence."""

    status: str
    label: str
    headline: str


def verdict(result: dict[str, Any]) -> Verdict:
    """The verdict of ``result``, e.g. ``LOST 12 of 5,432 acknowledged writes (0.22%)``."""
    line = verdict_line(result)
    label, _, rest = line.partition(": ")
    headline = rest[:1].upper() + rest[1:]
    status = {"VALID": "valid", "INVALID": "invalid"}.get(label, "unknown")
    return Verdict(status, label, headline)


def queue(result: dict[str, Any]) -> dict[str, Any]:
    """The queue checker's result (empty when there is none)."""
    return (result.get("checkers") or {}).get("queue") or {}


COUNTS = (
    ("attempted", "attempt_count", "publishes invoked"),
    ("acknowledged", "acknowledged_count", "publishes the server acknowledged"),
    ("read", "read_count", "distinct values read back from any node"),
    ("lost", "lost_count", "acknowledged, but read back from no node"),
    ("unexpected", "unexpected_count", "read back, but never published"),
    ("duplicated", "duplicated_count", "at two stream sequences on one node"),
    ("failed but read", "failed_but_read_count", "publish definitely failed, yet read back"),
    ("failed", "failed_count", "publish definitely failed and was not read (allowed)"),
    ("recovered", "recovered_count", "not acknowledged, yet read back (allowed)"),
    ("unknown", "unknown_count", "not acknowledged and not read (allowed)"),
)
BAD = frozenset({"lost", "unexpected", "duplicated", "failed but read", "divergent"})


def key_counts(result: dict[str, Any]) -> list[tuple[str, int | None, str]]:
    """``(name, count, meaning)`` rows; divergence after the queue counts."""
    q = queue(result)
    rows = [(name, q.get(key), meaning) for name, key, meaning in COUNTS if key in q]
    div = q.get("divergence")
    if isinstance(div, dict):
        rows.append(("divergent", div.get("count"), "replicas disagree on a value"))
    return rows


def node_rows(result: dict[str, Any]) -> list[tuple[str, str, Any, Any, Any, str]]:
    """``(node, status, read, lost, missing-but-on-another-node, note)`` per node."""
    q = queue(result)
    missing = ((q.get("divergence") or {}).get("missing_on_node")) or {}
    rows = []
    for node, d in (q.get("per_node") or {}).items():
        miss = (missing.get(node) or {}).get("count")
        rows.append(
            (
                str(node),
                str(d.get("status", "")),
                d.get("read_count"),
                d.get("lost_count"),
                miss,
                str(d.get("note") or ""),
            )
        )
    return rows


def performance(result: dict[str, Any]) -> list[tuple[str, str]]:
    """Publish rate and latency percentiles, formatted."""
    stats = (result.get("checkers") or {}).get("stats") or {}
    out = []
    if stats.get("publish_rate") is not None:
        out.append(("acknowledged publishes/s", f"{stats['publish_rate']:,.0f}"))
    lat = (stats.get("latency_ms") or {}).get("publish")
    if lat:
        out.append(
            (
                "publish latency",
                f"p50 {lat['p50']:,.1f} ms · p99 {lat['p99']:,.1f} ms · max {lat['max']:,.0f} ms",
            )
        )
    return out


def _faults(scenario: dict[str, Any]) -> str:
    specs = scenario.get("faults") or []
    parts = []
    for f in specs:
        if isinstance(f, dict):
            extra = ", ".join(f"{k}={v}" for k, v in f.items() if k != "kind" and v is not None)
            parts.append(f"{f.get('kind')} ({extra})" if extra else str(f.get("kind")))
    return "; ".join(parts) or "none"


def settings(result: dict[str, Any], scenario: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The run's identity and settings as ``(name, value)`` rows."""
    sc = scenario or {}
    server = sc.get("server") or {}
    stream = sc.get("stream") or {}
    workload = sc.get("workload") or {}
    versions = result.get("versions") or {}
    rows = [("scenario", str(result.get("scenario") or sc.get("name") or "history check"))]
    if sc.get("description"):
        rows.append(("description", str(sc["description"])))
    rows.append(("nats-server", str(versions.get("nats_server") or server.get("version") or "–")))
    if sc:
        rows += [
            ("cluster", f"{sc.get('nodes')} nodes, {sc.get('backend', 'local')} backend"),
            ("stream", f"R{stream.get('replicas')} {stream.get('storage')} storage"),
            ("sync_interval", str(server.get("sync_interval"))),
        ]
        if server.get("config"):
            rows.append(
                ("server config", ", ".join(f"{k}={v}" for k, v in server["config"].items()))
            )
        rate = workload.get("rate")
        rows.append(
            ("workload", f"{workload.get('name')}" + (f", {rate:g} publishes/s" if rate else ""))
        )
        rows.append(("faults", _faults(sc)))
        if sc.get("time_limit") is not None:
            rows.append(("time limit", f"{float(sc['time_limit']):g}s"))
    seed = result.get("seed", sc.get("seed"))
    if seed is not None:
        rows.append(("seed", str(seed)))
    if result.get("faults_started") is not None:
        rows.append(("faults started", str(result["faults_started"])))
    for key in ("interrupted", "error"):
        if result.get(key):
            rows.append((key, str(result[key])))
    return rows


def lost_when(result: dict[str, Any]) -> str | None:
    """ "Lost writes were acknowledged between 3.1s and 9.8s …", or None when none were lost."""
    when = queue(result).get("lost_ack_time") or {}
    if when.get("first") is None:
        return None
    return (
        f"Lost writes were acknowledged between {when['first']:.1f}s and "
        f"{when['last']:.1f}s after the run started."
    )
