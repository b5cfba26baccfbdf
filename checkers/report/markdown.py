"""``summary.md``: a result as markdown for a CI job summary.

In: a result dict (``results.json``) and the resolved scenario as plain
data (or None for a bare history check). Out: the markdown text — verdict,
settings, the headline checker's counts, notes and per-node rows, server
log findings and where the report is — from the same rows
(:mod:`checkers.report.summary`) as ``report.html`` and ``show``.
"""

from __future__ import annotations

from typing import Any

from checkers.report import summary


def summary_md(result: dict[str, Any], scenario: dict[str, Any] | None = None) -> str:
    """Markdown for a CI job summary: verdict, settings, key counts, nodes, where to look next."""
    v = summary.verdict(result)
    icon = {"valid": "✅", "invalid": "❌"}.get(v.status, "⚠️")
    if v.matched is not None:  # the scenario's expect: decides whether this is a surprise
        icon = "✅" if v.matched else "❌"
    name = result.get("scenario") or "history check"
    lines = [f"## {icon} {_md(v.banner)} · {_md(name)}", "", f"**{_md(v.headline)}**", ""]
    lines += ["| setting | value |", "|---|---|"]
    lines += [f"| {_md(k)} | {_md(val)} |" for k, val in summary.settings(result, scenario)]
    lines += [f"| {_md(k)} | {_md(val)} |" for k, val in summary.performance(result)]
    counts = summary.key_counts(result)
    if counts:
        lines += [
            "",
            "| " + " | ".join(_md(name) for name, _, _, _ in counts) + " |",
            "|" + "---:|" * len(counts),
            "| " + " | ".join(_count(c, bad) for _, c, _, bad in counts) + " |",
        ]
    lines += [line for note in summary.notes(result) for line in ("", _md(note))]
    nodes = summary.node_rows(result)
    if nodes:
        cols = summary.node_columns(nodes)
        read_by = any(r.read for r in nodes)
        extra = " read by |" if read_by else ""
        lines += [
            "",
            "| node | status | " + " | ".join(map(_md, cols)) + f" |{extra} note |",
            "|---|---|" + "---:|" * len(cols) + ("---|" if read_by else "") + "---|",
        ]
        for r in nodes:
            cells = [_md(r.node), _md(r.status), *(_n(c) for _, c, _ in r.counts)]
            cells += [_md(r.read)] if read_by else []
            lines.append("| " + " | ".join([*cells, _md(r.note)]) + " |")
    facts, faults = summary.availability(result)
    if facts or faults:
        lines += ["", "**Availability**", ""]
        lines += [f"- {_md(k)}: {_md(v)}" for k, v in facts]
        for row in faults:
            kind, nodes, window, stream, meta, acked, back, gap, failed = row
            after = summary.back_text(back)
            lines.append(
                f"- {_md(kind)} on {_md(nodes)} ({_md(window)} s; stream leader {_md(stream)}, "
                f"meta leader {_md(meta)}; {_n(acked)} acked during it): {_md(after)}, "
                f"longest gap {_md(gap)} s; failures {_md(failed)}"
            )
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


def _count(count: Any, bad: bool) -> str:
    text = _n(count)
    return f"**{text}**" if bad else text


def _n(v: Any) -> str:
    return "–" if v is None else f"{v:,}" if isinstance(v, int) else _md(v)
