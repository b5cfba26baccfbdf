"""``nats-chaos show``: a result folder's summary as rich tables in the terminal.

In: a result dict (``results.json``), the scenario as plain data, the fault
windows of its history (or None when the history is not read) and the
folder. Out: renderables printed on a :class:`rich.console.Console` — the
verdict panel, settings, counts, per-node table, faults, and where the
report is. Strings from results and histories are rendered as plain
``Text``, so ``[`` or ``<`` in them is never taken as markup.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from checkers.report import summary
from checkers.report.timeline import FaultWindow

STYLES = {"valid": "bold green", "invalid": "bold red", "unknown": "bold yellow"}


def _n(v: Any) -> str:
    return "–" if v is None else f"{v:,}" if isinstance(v, int) else str(v)


def _settings(result: dict[str, Any], scenario: dict[str, Any] | None) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="dim")
    t.add_column()
    for k, v in summary.settings(result, scenario) + summary.performance(result):
        t.add_row(Text(k), Text(v))
    return t


def _counts(result: dict[str, Any]) -> Table:
    t = Table(title="Counts", title_justify="left", show_edge=False)
    t.add_column("")
    t.add_column("count", justify="right")
    t.add_column("meaning", style="dim")
    for name, count, meaning, bad in summary.key_counts(result):
        t.add_row(Text(name), Text(_n(count), style="bold red" if bad else ""), Text(meaning))
    return t


def _nodes(result: dict[str, Any]) -> Table | None:
    rows = summary.node_rows(result)
    if not rows:
        return None
    t = Table(title="Nodes", title_justify="left", show_edge=False)
    t.add_column("node")
    t.add_column("status")
    for col in summary.node_columns(rows):
        t.add_column(col, justify="right")
    t.add_column("note", style="dim")
    for r in rows:
        cells = (r.node, r.status, *(_n(c) for _, c, _ in r.counts), r.note)
        bad = any(b for _, _, b in r.counts)
        t.add_row(*(Text(x) for x in cells), style="red" if bad else None)
    return t


def _faults(windows: list[FaultWindow]) -> Text:
    if not windows:
        return Text("faults: none injected", style="dim")
    kinds = Counter(w.kind for w in windows)
    span = f"{windows[0].start:.1f}s – {max(w.stop for w in windows):.1f}s"
    parts = ", ".join(f"{k} ×{n}" for k, n in kinds.items())
    return Text(f"faults: {parts} ({span})")


def render(
    result: dict[str, Any], scenario: dict[str, Any] | None, windows: list[FaultWindow] | None
) -> Group:
    """Everything ``show`` prints but the folder line, as one renderable."""
    v = summary.verdict(result)
    parts: list[Any] = [
        Panel(Text(v.headline), title=Text(v.banner), title_align="left", style=STYLES[v.status]),
        _settings(result, scenario),
        Text(""),
        _counts(result),
    ]
    parts += [Text(note) for note in summary.notes(result)]
    nodes = _nodes(result)
    if nodes is not None:
        parts += [Text(""), nodes]
    if windows is not None:
        parts += [Text(""), _faults(windows)]
    facts, faults = summary.availability(result)
    if facts or faults:
        parts.append(Text(""))
        parts += [Text(f"{name}: {value}") for name, value in facts]
        for kind, nodes, window, _stream, _meta, _acked, back, _gap, failed in faults:
            parts.append(
                Text(f"{kind} on {nodes} ({window} s): {summary.back_text(back)}; {failed}")
            )
    return Group(*parts)


def show(
    result: dict[str, Any],
    scenario: dict[str, Any] | None,
    windows: list[FaultWindow] | None,
    folder: Path | None,
    console: Console | None = None,
) -> None:
    """Print the summary on ``console`` (stdout by default), then where the report is."""
    console = console or Console()
    console.print(render(result, scenario, windows))
    if folder is not None:
        report = folder / "report.html"
        where = f"report: {report}" if report.is_file() else f"folder: {folder}"
        # one unwrapped line, so the path can be copied even from a narrow terminal
        console.print(Text(where, style="dim"), no_wrap=True, overflow="ignore", crop=False)
