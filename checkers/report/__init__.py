"""Reports a person reads: ``report.html`` with plots; the views behind ``summary.md``, ``show``.

In: a result dict (``results.json``), the ops of the history it came from
(or None), the resolved scenario as plain data, and the output folder. Out
(:func:`write_report`): ``plots/latency.png``, ``plots/throughput.png``,
``plots/lost.png`` and ``report.html`` in that folder — one self-contained
page with the plots embedded, which links to the raw files next to it.

What is a verdict comes only from the checker results: counts, node rows
and the lost-writes plot (the headline checker's ``summary.over_time``)
are drawn from the result and never re-derived from the history, so a plot
cannot disagree with the counts. The ops table only supplies what is no
verdict: fault windows, latency and throughput, and the publish ops behind
sample values.

Modules: :mod:`.timeline` (fault windows, publish pairs, sample ops from
the ops), :mod:`.plots` (matplotlib → PNG), :mod:`.findings` (example ops,
log findings), :mod:`.page` and :mod:`.html` (the page, escaped),
:mod:`.summary` (verdict, counts, node rows shared by every view),
:mod:`.markdown` (``summary.md``) and :mod:`.terminal` (``show``, rich);
:mod:`.comparison` (``compare.html``) and :mod:`.listing` (the results
folder's ``index.html`` and ``nats-chaos serve``).
Finding and reading result folders is the harness's
(``harness.resultfolder``).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from checkers import files
from checkers.report import findings, page, plots, timeline
from checkers.schema import shared_columns
from checkers.verdict import headline, headline_checker

log = logging.getLogger(__name__)
RAW_FILES = ("history.jsonl", "results.json", "summary.md", "scenario.yaml", "harness.log")


def _files(out_dir: Path, history: Path | None) -> list[tuple[str, int]]:
    """Relative links to the raw files of the folder (and to an outside history)."""
    found = [out_dir / name for name in RAW_FILES]
    found += sorted(p for p in (out_dir / "nodes").glob("*/*") if p.is_file())
    rows = [(p.relative_to(out_dir).as_posix(), p.stat().st_size) for p in found if p.is_file()]
    if history is not None and history.resolve().parent != out_dir.resolve() and history.is_file():
        try:
            rel = Path(history.resolve()).relative_to(out_dir.resolve()).as_posix()
        except ValueError:
            rel = history.resolve().as_uri()
        rows.insert(0, (rel, history.stat().st_size))
    return rows


def build_plots(result: dict[str, Any], ops: pd.DataFrame) -> tuple[dict, list]:
    """(plots by file name, fault windows): latency and throughput from the ops, the
    headline checker's ``over_time`` histograms (the lost writes) from the result."""
    windows = timeline.fault_windows(ops)
    pairs = timeline.publish_pairs(ops)
    span = timeline.plot_span(pairs, windows)
    n_pub = len(pairs)
    out = {
        "latency.png": (
            f"Publish latency by invoke time, coloured by outcome ({n_pub:,} publishes; "
            "overlapping points drawn once).",
            plots.latency(pairs, windows, span),
        ),
        "throughput.png": (
            "Publish completions per second by outcome.",
            plots.throughput(pairs, windows, span),
        ),
    }
    over = headline(result).over_time
    if over:
        name = f"{over.get('label') or 'over-time'}.png"
        out[name] = (str(over.get("caption") or ""), plots.over_time(over, windows, span))
    return out, windows


def _from_ops(
    result: dict[str, Any], ops: pd.DataFrame | None, notes: list[str]
) -> tuple[dict[str, tuple[str, bytes]], list[timeline.FaultWindow], list]:
    """(plots, fault windows, example ops) from the ops; what fails is a line in ``notes``."""
    drawn: dict[str, tuple[str, bytes]] = {}
    windows: list[timeline.FaultWindow] = []
    if ops is not None and len(ops):
        try:
            drawn, windows = build_plots(result, ops)
        except Exception as e:  # a history the checkers marked "unknown" may not plot either
            log.warning("report: plots failed: %s: %s", type(e).__name__, e)
            notes.append(f"The plots could not be drawn: {type(e).__name__}: {e}")
    try:
        examples = findings.examples(headline_checker(result)[1], ops)
    except Exception as e:
        log.warning("report: examples failed: %s: %s", type(e).__name__, e)
        notes.append(f"The examples could not be collected: {type(e).__name__}: {e}")
        examples = []
    return drawn, windows, examples


def write_report(
    out_dir: Path,
    result: dict[str, Any],
    ops: pd.DataFrame | None,
    scenario: dict[str, Any] | None = None,
    scenario_yaml: str | None = None,
    history: Path | None = None,
) -> Path:
    """Write ``plots/*.png`` and ``report.html`` into ``out_dir``; return the report's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    # the plots and the examples derive each view of the ops (pairs, masks) once
    with shared_columns(ops) if ops is not None else contextlib.nullcontext():
        drawn, windows, examples = _from_ops(result, ops, notes)
    if drawn:
        (out_dir / "plots").mkdir(exist_ok=True)
    for name, (_, png) in drawn.items():
        files.write_bytes(out_dir / "plots" / name, png)
    if scenario_yaml is None and (out_dir / "scenario.yaml").is_file():
        scenario_yaml = (out_dir / "scenario.yaml").read_text(errors="replace")
    created = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    p = page.Page(
        result=result,
        scenario=scenario,
        scenario_yaml=scenario_yaml,
        windows=windows,
        plots=drawn,
        examples=examples,
        logs=findings.logs_section(result, out_dir),
        files=_files(out_dir, history),
        created=f"report written {created}",
        notes=notes,
    )
    return files.write_text(out_dir / "report.html", page.render(p))
