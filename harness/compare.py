"""``nats-chaos compare``: the same scenario and seed under several settings, side by side.

``--vary KEY=V1,V2,…`` (repeatable; several give their product) turns one
scenario into variants, each run ``repeat`` times with the scenario's seed
(plus the repeat index, so repeats differ but variants match). Each run is a
normal run with its own result folder under ``results/compare/<stamp>/runs``.
The comparison folder gets ``compare.md`` and ``compare.csv`` (one row per
run: the headline checker's row figures — for the queue workload
acknowledged, lost, lost % — then acknowledged ops/s, p50/p99 publish
latency, the longest gap without an acknowledged write and the slowest
return to an acknowledged write after a fault (the availability checker's),
anomalies, verdict), ``compare.json`` (the same rows, the title and the
settings, for ``nats-chaos serve`` and tools), ``compare.png``, bar charts
per variant of the figure the headline checker names as its ``rate`` (lost
%), of throughput and of p50/p99 publish latency — means over repeats, with
min–max error bars when ``repeat`` > 1 — and ``compare.html``
(``checkers.report.comparison``: one self-contained page with the chart, a
table per variant and links to every run's report). Row figures and verdict
come from ``checkers.verdict.headline``. A comparison measures: invalid runs
are results, not failures (the exit codes are in docs/contracts.md §5).
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checkers import files
from checkers.verdict import headline
from harness.dirs import require_writable, stamped_dir
from harness.errors import BadInput
from harness.runner import REAL_BACKEND, Backend, RunOptions, execute
from harness.scenario import load_scenario, parse_override

HEAD = ["variant", "repeat"]  # then the headline checker's row figures, then TAIL
TAIL = [
    "acked_per_s",
    "p50_ms",
    "p99_ms",
    "longest_gap_s",
    "slowest_back_s",
    "anomalies",
    "verdict",
    "run_dir",
]
THROUGHPUT = ("acked_per_s", "acknowledged publishes / s")
LATENCY = (("p50_ms", "publish latency p50 (ms)"), ("p99_ms", "publish latency p99 (ms)"))


@dataclass(frozen=True)
class Variant:
    """One combination of varied settings, as ``--set`` overrides and a label."""

    overrides: tuple[str, ...]

    @property
    def label(self) -> str:
        return ", ".join(self.overrides)


def variants(vary: list[str]) -> list[Variant]:
    """``["a.b=1,2", "c=x,y"]`` -> the product of every value of every key."""
    axes: list[list[str]] = []
    for text in vary:
        key, _, raw = text.partition("=")
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if not values:
            raise BadInput(f"--vary {text!r}: expected KEY=V1,V2,…")
        path, _ = parse_override(f"{key}=x")  # the same key rules as --set
        axes.append([f"{'.'.join(path)}={v}" for v in values])
    if not axes:
        raise BadInput("compare needs at least one --vary KEY=V1,V2,…")
    return [Variant(tuple(combo)) for combo in itertools.product(*axes)]


def row(variant: Variant, repeat: int, result: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The comparison row of one finished run; ``_rate`` names the charted figure."""
    h = headline(result)
    stats = result.get("checkers", {}).get("stats", {})
    lat = (stats.get("latency_ms") or {}).get("publish") or {}
    figures = {k: v for k, v in h.row.items() if k not in HEAD and k not in TAIL}
    gap, back = availability_figures(result)
    return {
        "variant": variant.label,
        "repeat": repeat,
        **figures,
        "acked_per_s": round(float(stats.get("publish_rate") or 0.0), 1),
        "p50_ms": lat.get("p50"),
        "p99_ms": lat.get("p99"),
        "longest_gap_s": gap,
        "slowest_back_s": back,
        "anomalies": ",".join(result.get("anomalies") or []) or "-",
        "verdict": {"valid": "valid", "invalid": "INVALID"}.get(h.status, "unknown"),
        "run_dir": str(run_dir),
        "_rate": h.rate,
    }


def with_reports(rows: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """``rows`` with ``report``: each run's report.html relative to ``out`` (None when the
    run did not happen or wrote no report), so the comparison folder can move as a whole."""
    done = []
    for r in rows:
        page = Path(r["run_dir"]) / "report.html" if r.get("run_dir") else None
        rel = None
        if page is not None and page.is_file():
            try:
                rel = page.resolve().relative_to(out.resolve()).as_posix()
            except ValueError:
                rel = page.resolve().as_uri()
        done.append({**r, "report": rel})
    return done


def availability_figures(result: dict[str, Any]) -> tuple[float | None, float | str | None]:
    """(longest gap without an acknowledged write, the slowest return to an acknowledged
    write after a fault), in seconds, from the availability checker; None where it measured
    nothing, ``"never"`` when no write was acknowledged after some fault."""
    a = (result.get("checkers") or {}).get("availability") or {}
    gap = (a.get("longest_gap") or {}).get("seconds")
    backs = [f.get("first_ack_after_s") for f in a.get("faults") or []]
    if any(b is None for b in backs):
        return gap, "never"
    return gap, max(backs) if backs else None


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """The columns of ``rows``: HEAD, every row figure (in first-seen order), TAIL."""
    figures: dict[str, None] = {}
    for r in rows:
        figures |= {k: None for k in r if k not in HEAD and k not in TAIL and k[:1] != "_"}
    return [*HEAD, *figures, *TAIL]


def markdown(rows: list[dict[str, Any]], title: str) -> str:
    """The comparison as a markdown table."""
    head = [c for c in columns(rows) if c != "run_dir"]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [_cell(r.get(c)) for c in head]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _rate(rows: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(column, title) of the figure the headline checker charts, if every row has it."""
    rate = next((r["_rate"] for r in rows if isinstance(r.get("_rate"), dict)), None)
    if not rate or not all(isinstance(r.get(rate.get("name")), int | float) for r in rows):
        return None
    return str(rate["name"]), str(rate.get("label") or rate["name"])


def spread(rows: list[dict[str, Any]], key: str) -> list[tuple[str, float, float, float, int]]:
    """Per variant (in first-seen order): (label, mean, min, max, runs) of the number ``key``
    over its repeats; runs without the number are left out, a variant with none is 0."""
    out = []
    for v in dict.fromkeys(r["variant"] for r in rows):
        xs = [float(r[key]) for r in rows if r["variant"] == v and _is_number(r.get(key))]
        mean = sum(xs) / len(xs) if xs else 0.0
        out.append((v, mean, min(xs, default=0.0), max(xs, default=0.0), len(xs)))
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def panels(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(column, title, colour) of every chart: the headline's rate, throughput, latencies."""
    rate = _rate(rows)
    out = [(*rate, "#c0392b")] if rate else []
    out.append((*THROUGHPUT, "#2c7fb8"))
    out += [(k, t, c) for (k, t), c in zip(LATENCY, ("#7b6fb0", "#4b3f8a"), strict=True)]
    return out


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    """Bar charts per variant (means over repeats, min–max error bars when a variant ran
    more than once): the headline checker's charted figure (lost % for the queue workload),
    acknowledged ops/s and publish latency p50 and p99; variants that did not run are left
    out."""
    rows = [r for r in rows if r.get("run_dir")]
    if not rows:
        return
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    drawn = panels(rows)
    fig = Figure(figsize=(4.2 * len(drawn), 3.9), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(drawn), squeeze=False)
    repeated = max((n for *_, n in spread(rows, drawn[-1][0])), default=1) > 1
    for ax, (key, title, colour) in zip(axes[0], drawn, strict=True):
        per = spread(rows, key)
        labels = [v for v, *_ in per]
        mean = [m for _, m, _, _, _ in per]
        bars = ax.bar(range(len(labels)), mean, color=colour)
        if repeated:
            low = [m - lo for _, m, lo, _, _ in per]
            high = [hi - m for _, m, _, hi, _ in per]
            ax.errorbar(range(len(labels)), mean, yerr=[low, high], fmt="none", ecolor="#222",
                        capsize=4, linewidth=1)  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(labels)), labels, rotation=15, ha="right", fontsize=8)
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
    if repeated:
        fig.suptitle("means over repeats; error bars: min–max", fontsize=9)
    fig.tight_layout()
    files.write_with(path, lambda fh: fig.savefig(fh, format="png"), binary=True)


def compare(
    scenario_file: str,
    overrides: list[str],
    vary: list[str],
    repeat: int,
    results_dir: Path,
    echo: Callable[[str], Any] = print,
    nats_server: str | None = None,
    backend: Backend = REAL_BACKEND,
) -> tuple[Path, list[dict[str, Any]]]:
    """Run every variant ``repeat`` times; write the comparison folder and return it with rows.

    Every variant is validated, and its nats-server found or installed
    (``--vary server.version=…``), before any runs: a version that cannot be
    had stops the comparison at once (exit 3).
    """
    if repeat < 1:
        raise BadInput("--repeat must be at least 1")
    combos = variants(vary)
    base = load_scenario(scenario_file, overrides)
    for v in combos:  # validate every variant, and find its server, before running any
        backend.binary(load_scenario(scenario_file, [*overrides, *v.overrides]), nats_server)
    require_writable(results_dir, "the results dir")
    out = stamped_dir(results_dir / "compare")
    rows: list[dict[str, Any]] = []
    stopped: str | None = None
    for k in range(repeat):
        for v in combos:
            if stopped is not None:  # interrupted: what did not run is said, not left out
                rows.append(not_run(v, k + 1, stopped))
                continue
            seed = [f"seed={base.seed + k}"]
            sc = load_scenario(scenario_file, [*overrides, *v.overrides, *seed])
            echo(f"== {v.label} (repeat {k + 1}/{repeat}, seed {sc.seed})")
            opts = RunOptions(
                results_dir=out / "runs", nats_server=nats_server, echo=echo, backend=backend
            )
            outcome = execute(sc, opts)
            echo(headline(outcome.result).line)
            rows.append(row(v, k + 1, outcome.result, outcome.run_dir))
            if outcome.broken:
                rows[-1]["_broken"] = outcome.broken
            if outcome.interrupted:
                stopped = rows[-1]["_interrupted"] = outcome.interrupted
    write(out, rows, f"{base.name}: {' × '.join(vary)}", {"scenario": base.name,
          "vary": list(vary), "overrides": list(overrides), "repeat": repeat,
          "seed": base.seed})  # fmt: skip
    return out, rows


def not_run(variant: Variant, repeat: int, signal: str) -> dict[str, Any]:
    """The row of a variant the comparison did not run: it was interrupted by ``signal``."""
    return {
        "variant": variant.label,
        "repeat": repeat,
        "anomalies": "-",
        "verdict": f"not run (interrupted by {signal})",
        "run_dir": "",
        "_interrupted": signal,
    }


def interrupted(rows: list[dict[str, Any]]) -> str | None:
    """The signal that stopped the comparison, if one did."""
    return next((r["_interrupted"] for r in rows if r.get("_interrupted")), None)


def broken(rows: list[dict[str, Any]]) -> list[str]:
    """Why each run that broke after it started broke (its figures mean little)."""
    return [
        f"{r['variant']} (repeat {r['repeat']}): {r['_broken']}" for r in rows if r.get("_broken")
    ]


def write(
    out: Path, rows: list[dict[str, Any]], title: str, settings: dict[str, Any] | None = None
) -> None:
    """Write compare.md, compare.csv, compare.json, compare.png and compare.html into ``out``."""
    from checkers.report.comparison import page

    files.write_text(out / "compare.md", markdown(rows, title))
    with files.atomic_file(out / "compare.csv") as fh:
        w = csv.DictWriter(fh, fieldnames=columns(rows), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    linked = with_reports(rows, out)
    data = {"title": title, **(settings or {}), "columns": columns(rows), "rows": linked}
    files.write_json(out / "compare.json", data)
    if rows:
        chart(rows, out / "compare.png")
    png = (out / "compare.png").read_bytes() if (out / "compare.png").is_file() else None
    stats = {key: spread([r for r in rows if r.get("run_dir")], key) for key, *_ in panels(rows)}
    titles = {key: t for key, t, _ in panels(rows)}
    files.write_text(out / "compare.html", page(title, linked, columns(rows), stats, titles, png))
