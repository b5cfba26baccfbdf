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
from checkers.windows import FaultWindow


@dataclass(frozen=True)
class Verdict:
    """``status`` is valid/invalid/unknown; ``headline`` reads as a sentence."""

    status: str
    label: str
    headline: str
    expectation: str | None = None  # "as expected: lost", "NOT as expected: …", or None
    matched: bool | None = None  # None: the scenario declared no ``expect:``

    @property
    def banner(self) -> str:
        """``INVALID — as expected: lost``, or the bare label without an expectation."""
        return f"{self.label} — {self.expectation}" if self.expectation else self.label


def verdict(result: dict[str, Any]) -> Verdict:
    """The verdict of ``result``, e.g. ``LOST 12 of 5,432 acknowledged writes (0.22%)``,
    with the outcome of the scenario's ``expect:`` when it declared one."""
    h = headline(result)
    said, matched = expectation(result)
    return Verdict(h.status, h.label, h.text[:1].upper() + h.text[1:], said, matched)


def expectation(result: dict[str, Any]) -> tuple[str | None, bool | None]:
    """(``as expected: lost`` / ``NOT as expected: <why>``, matched) from the result's
    ``expectation`` (written by the harness when the scenario has an ``expect:``);
    (None, None) when there is none to tell."""
    e = result.get("expectation")
    if not isinstance(e, dict) or not e.get("declared"):
        return None, None
    if e.get("matched"):
        found = ", ".join(result.get("anomalies") or [])
        return (f"as expected: {found}" if found else "as expected"), True
    return f"NOT as expected: {e.get('why') or 'expected ' + str(e.get('expected'))}", False


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
            extra = pairs_text({k: v for k, v in f.items() if k != "kind" and v is not None})
            parts.append(f"{f.get('kind')} ({extra})" if extra else str(f.get("kind")))
    return "; ".join(parts) or "none"


def _server(result: dict[str, Any], server: dict[str, Any]) -> str:
    """The nats-server version, and the sha256 of the binary the nodes ran when recorded."""
    versions = result.get("versions") or {}
    version = str(versions.get("nats_server") or server.get("version") or "–")
    digest = versions.get("nats_server_sha256") or (result.get("server") or {}).get("sha256")
    return f"{version} (sha256 {digest})" if digest else version


def plain(value: Any) -> str:
    """A JSON value as a person reads it, never as a Python repr: ``yes``/``no`` for
    booleans, ``n1 502.9 KiB, n2 …`` style pairs for mappings, lists comma-separated."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {plain(v)}" for k, v in value.items()) or "–"
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value) or "–"
    return str(value)


def pairs_text(values: dict[str, Any]) -> str:
    """``duration 3, targets all, coordinated yes``: settings as ``name value`` pairs."""
    return "; ".join(f"{k.replace('_', ' ')} {plain(v)}" for k, v in values.items())


def _bytes(n: Any) -> str:
    if not isinstance(n, int | float) or isinstance(n, bool):
        return plain(n)
    size, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            break
        size /= 1024
    return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"


# nemesis op fields shown elsewhere (nodes, roles, window id) or as their own columns
_FAULT_HIDDEN = frozenset({"window", "leaders", "settle", "began", "nodes"})


def fault_detail(detail: dict[str, Any]) -> str:
    """What a nemesis op says about its fault, in words: byte counts as sizes, per-node
    mappings as ``n1 502.9 KiB, n2 …``, never a Python repr."""
    parts = []
    for k, v in detail.items():
        if k in _FAULT_HIDDEN or v is None:
            continue
        if "bytes" in k and isinstance(v, dict):
            text = ", ".join(f"{n} {_bytes(b)}" for n, b in v.items())
        elif isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            text = "; ".join(f"{n}: {pairs_text(x)}" for n, x in v.items())
        else:
            text = _bytes(v) if "bytes" in k else plain(v)
        parts.append(f"{k.replace('_', ' ')}: {text}")
    return "; ".join(parts)


def roles(nodes: tuple[str, ...] | list[str], leaders: dict[str, Any] | None) -> str:
    """``n3 (stream + meta leader), n1 (follower)``: each node a fault hit and its role just
    before it, from the nemesis op's ``leaders``; the bare names when it recorded none."""
    if not nodes:
        return "–"
    if not isinstance(leaders, dict) or not any(leaders.values()):
        return ", ".join(nodes)
    out = []
    for n in nodes:
        led = [k for k in ("stream", "meta") if leaders.get(k) == n]
        role = " + ".join(led) + " leader" if led else "follower"
        out.append(f"{n} ({role})")
    return ", ".join(out)


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
            rows.append(("server config", pairs_text(server["config"])))
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
    hint = result.get("hint") or sc.get("hint")
    if hint:
        rows.append(("try next", str(hint)))
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
    "nodes (role)",
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


def recovery_text(rec: dict[str, Any]) -> str:
    """``converged after 4.21 s (bound 30.00 s), 1 nudge``: the recovery wait in words."""
    done = "converged" if rec.get("converged") else "did NOT converge"
    text = f"{done} after {_secs(rec.get('seconds'))} s (bound {_secs(rec.get('bound'))} s)"
    nudges = rec.get("nudges")
    if nudges == 0:
        text += ", no nudges"
    elif isinstance(nudges, int):
        text += (
            f", {nudges:,} nudge{'' if nudges == 1 else 's'} (a step-down so a replica "
            "serves direct gets again)"
        )
    return text


def back_text(back: Any) -> str:
    """``first ack 1.20 s after it``, or that no write was acknowledged after the fault."""
    if back == "never":
        return "no write acknowledged after it"
    return f"first ack {back} s after it"


def _node_state(v: Any) -> str:
    if not isinstance(v, dict):
        return "no answer"
    if not v.get("present"):
        return "stream absent"
    led = f", leader {v['leader']}" if v.get("leader") else ", no leader"
    return f"{plain(v.get('messages'))} msgs, seq {plain(v.get('first_seq'))}–" + (
        f"{plain(v.get('last_seq'))}{led}"
    )


def clock_note(result: dict[str, Any]) -> str:
    """Which clock the report's times are on, and how to read ``--plan`` times against it."""
    text = (
        "Times are seconds since the run started (the history's clock, as in the plots and "
        "the availability figures)."
    )
    began = result.get("main_began_s")
    if isinstance(began, int | float):
        text += (
            f" The main phase began at {began:.2f} s; `nats-chaos run --plan` and the "
            f"scenario's schedule count from there, so a fault planned at t s starts near "
            f"{began:.2f} + t s here."
        )
    return text


FAULT_HEAD = ("fault", "start (s)", "stop (s)", "lasted (s)", "nodes (role)", "detail")


def fault_rows(windows: list[FaultWindow]) -> list[tuple[str, str, str, str, str, str]]:
    """One row per fault window (:data:`FAULT_HEAD`): times on the run's clock, each node
    with its role when the fault began, and what the nemesis op said, in words."""
    rows = []
    for w in windows:
        if w.detail.get("settle") == "recovery":
            given = w.detail.get("nodes")
            states: dict[str, Any] = given if isinstance(given, dict) else {}
            detail = "; ".join([recovery_text(w.detail), *(
                f"{n}: {_node_state(v)}" for n, v in states.items()
            )])  # fmt: skip
            nodes = ", ".join(w.nodes) or "–"
        else:
            detail = fault_detail(w.detail)
            nodes = roles(w.nodes, w.detail.get("leaders"))
        rows.append(
            (
                w.kind,
                f"{w.start:.2f}",
                f"{w.stop:.2f}" if w.stopped else "never stopped",
                f"{w.stop - w.start:.2f}",
                nodes,
                detail,
            )
        )
    return rows


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
        facts.append(("recovery wait", recovery_text(rec)))
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
            roles(list(f.get("nodes") or []), f.get("leaders")),
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
