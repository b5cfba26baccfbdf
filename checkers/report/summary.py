"""The facts every view of a result shows, as plain rows: HTML, markdown and terminal alike.

In: a result dict (``results.json``, docs/contracts.md §2/§3.3) and the resolved
scenario as plain data (``Scenario.model_dump(mode="json")``, or None when a
bare history was checked). Out: the verdict (status, label, headline), the
key counts, one row per node, notes and the run's settings, as plain values
that each view formats its own way. Verdict, counts, nodes and notes come
from :func:`checkers.verdict.headline`, i.e. from the headline checker's
``summary`` block; nothing here knows a workload. Keeping them here means
the banner in ``report.html``, the CI ``summary.md`` and ``nats-chaos show``
can never disagree. :func:`availability` does the same for the availability
checker's figures (gaps, recovery after each fault, failure reasons).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from checkers.reads import describe
from checkers.verdict import headline


@dataclass(frozen=True)
class Verdict:
    """``status`` is valid/invalid/unknown; ``headline`` reads as a sentence."""

    status: str
    label: str
    headline: str


def verdict(result: dict[str, Any]) -> Verdict:
    """The verdict of ``result``, e.g. ``LOST 12 of 5,432 acknowledged writes (0.22%)``."""
    h = headline(result)
    return Verdict(h.status, h.label, h.text[:1].upper() + h.text[1:])


def key_counts(result: dict[str, Any]) -> list[tuple[str, Any, str, bool]]:
    """``(name, count, meaning, bad)`` rows of the headline checker's counts.

    Under an ``unknown`` verdict (an interrupted run, nodes unread) nothing is
    proven: a count the checker marks bad is shown as ``unknown``, never as a
    known anomaly (the queue checker already says so itself, every workload's
    views get it here).
    """
    h = headline(result)
    rows = []
    for c in h.counts:
        value, bad = c.get("value"), bool(c.get("bad"))
        if h.status == "unknown" and bad:
            value, bad = "unknown", False
        rows.append((str(c.get("name")), value, str(c.get("meaning") or ""), bad))
    return rows


@dataclass(frozen=True)
class NodeRow:
    """One node: its status, a note, and ``(name, count, bad)`` per count column."""

    node: str
    status: str
    note: str
    counts: tuple[tuple[str, Any, bool], ...]
    read: str = ""  # how its final read was made (results.json ``final_reads``), "" if unknown


def node_rows(result: dict[str, Any]) -> list[NodeRow]:
    """The headline checker's per-node rows (every row has the same count columns)."""
    reads = result.get("final_reads") or {}
    return [
        NodeRow(
            str(n.get("node")),
            str(n.get("status") or ""),
            str(n.get("note") or ""),
            tuple(
                (str(c["name"]), c.get("value"), bool(c.get("bad"))) for c in n.get("counts", [])
            ),
            describe(reads[n.get("node")]) if n.get("node") in reads else "",
        )
        for n in headline(result).nodes
    ]


def node_columns(rows: list[NodeRow]) -> list[str]:
    """The count columns of ``rows`` (those of the first row)."""
    return [name for name, _, _ in rows[0].counts] if rows else []


def notes(result: dict[str, Any]) -> list[str]:
    """Sentences the headline checker adds (e.g. when the lost writes were acknowledged)."""
    return headline(result).notes


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


def _server(result: dict[str, Any], server: dict[str, Any]) -> str:
    """The nats-server version, and the sha256 of the binary the nodes ran when recorded."""
    versions = result.get("versions") or {}
    version = str(versions.get("nats_server") or server.get("version") or "–")
    digest = versions.get("nats_server_sha256") or (result.get("server") or {}).get("sha256")
    return f"{version} (sha256 {digest})" if digest else version


def settings(result: dict[str, Any], scenario: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The run's identity and settings as ``(name, value)`` rows."""
    sc = scenario or {}
    server = sc.get("server") or {}
    stream = sc.get("stream") or {}
    workload = sc.get("workload") or {}
    rows = [("scenario", str(result.get("scenario") or sc.get("name") or "history check"))]
    if sc.get("description"):
        rows.append(("description", str(sc["description"])))
    rows.append(("nats-server", _server(result, server)))
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
    overdue = result.get("deadlines_passed") or []
    if overdue:
        listed = ", ".join(f"{d.get('phase')} (deadline {d.get('deadline')}s)" for d in overdue)
        rows.append(("deadlines passed", listed))
    return rows


AVAILABILITY_HEAD = (
    "fault",
    "nodes",
    "window (s)",
    "stream leader",
    "meta leader",
    "acked during",
    "first ack after (s)",
    "longest gap (s)",
    "failures until then",
)


def _secs(v: Any) -> str:
    return "–" if v is None else f"{float(v):,.2f}"


def failures_text(failures: dict[str, int]) -> str:
    """``6,384 × no-responders; 12 × timeout`` (``none`` when there were none)."""
    return "; ".join(f"{n:,} × {reason}" for reason, n in failures.items()) or "none"


def availability(result: dict[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
    """The availability checker's figures: ``(facts as (name, value), one row per fault)``.

    Rows follow :data:`AVAILABILITY_HEAD`; both are empty when the run has no
    availability result.
    """
    a = (result.get("checkers") or {}).get("availability") or {}
    if not isinstance(a, dict) or "longest_gap" not in a:
        return [], []
    facts = []
    gap = a.get("longest_gap")
    if gap:
        facts.append(
            (
                "longest gap without an acknowledged write",
                f"{_secs(gap['seconds'])} s (from {_secs(gap['from_s'])} s to "
                f"{_secs(gap['to_s'])} s)",
            )
        )
    rec = a.get("recovery")
    if rec:
        done = "converged" if rec.get("converged") else "did NOT converge"
        facts.append(
            (
                "recovery wait",
                f"{done} after {_secs(rec.get('seconds'))} s (bound {_secs(rec.get('bound'))} s)",
            )
        )
    downs = a.get("step_downs") or []
    if downs:
        listed = ", ".join(
            f"at {_secs(d.get('time_s'))} s to {d.get('preferred')} "
            f"({'done' if d.get('success') else d.get('error') or 'refused'})"
            for d in downs
        )
        facts.append((f"step-downs to recover ({len(downs)})", listed))
    outside = a.get("failures_outside") or {}
    if outside:
        facts.append(("failed writes outside faults", failures_text(outside)))
    rows = [
        (
            f.get("kind"),
            ", ".join(f.get("nodes") or []) or "–",
            f"{_secs(f.get('start_s'))}–{_secs(f.get('stop_s'))}",
            (f.get("leaders") or {}).get("stream") or "–",
            (f.get("leaders") or {}).get("meta") or "–",
            f.get("acked"),
            _secs(f.get("first_ack_after_s"))
            if f.get("first_ack_after_s") is not None
            else "never",
            _secs(f.get("unavailable_s")),
            failures_text(f.get("failures") or {}),
        )
        for f in a.get("faults") or []
    ]
    return facts, rows
