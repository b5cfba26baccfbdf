"""The report's plots as PNG bytes: latency, throughput and lost writes over time.

In: publish pairs and fault windows from :mod:`checkers.report.timeline`,
a checker's histograms over time (the queue checker's lost writes by
acknowledgement time, ``summary.over_time``), and the time span to show.
Out: PNG bytes per plot. Fault windows are shaded on every plot, one colour
per fault kind.

Only what is drawn is thinned, never what is counted: the latency scatter
keeps one real point per (time pixel, latency pixel, outcome) cell, which
looks the same as drawing every point but stays a few tens of thousands of
markers for a million publishes; throughput is a histogram over every op,
and a checker's histograms are only summed into wider buckets. Figures are
built with matplotlib's object API on the Agg canvas, so nothing touches
pyplot's global state or needs a display, and its pixels are encoded as an
RGB PNG with pillow (:func:`_png`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter
from PIL import Image

from checkers.report.timeline import FaultWindow

WIDTH, HEIGHT, DPI = 10.0, 3.3, 144
X_CELLS, Y_CELLS = 700, 200  # a cell is ~2x2 px, smaller than a marker: thinning is invisible
OUTCOME_COLOURS = {"ok": "#4c72b0", "fail": "#dd8452", "info": "#c44e52"}
OUTCOME_LABELS = {"ok": "ok", "fail": "fail (definitely not written)", "info": "info (unknown)"}
FAULT_COLOURS = ("#8172b3", "#937860", "#da8bc3", "#55a868", "#ccb974", "#64b5cd")
NODE_COLOURS = ("#4c72b0", "#55a868", "#8172b3", "#937860", "#da8bc3", "#64b5cd", "#ccb974")
BUCKETS_S = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600)


def bucket_seconds(span: tuple[float, float], target: int = 120) -> float:
    """A round bucket width giving at most about ``target`` buckets over ``span``."""
    width = span[1] - span[0]
    return next((b for b in BUCKETS_S if width / b <= target), BUCKETS_S[-1])


def thin_scatter(x: np.ndarray, y: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    """Indices of one point per occupied (x, log y) cell, so overplotted points are drawn once."""
    if len(x) == 0:
        return np.empty(0, dtype=np.int64)
    lo, hi = span
    xi = np.clip(((x - lo) / max(hi - lo, 1e-9) * X_CELLS).astype(np.int64), 0, X_CELLS - 1)
    ly = np.log10(np.maximum(y, 1e-3))
    ylo, yhi = float(ly.min()), float(ly.max())
    yi = np.clip(((ly - ylo) / max(yhi - ylo, 1e-9) * Y_CELLS).astype(np.int64), 0, Y_CELLS - 1)
    # the first point of each cell: a scatter-min over the cells, not a sort of every point
    first = np.full(X_CELLS * Y_CELLS, len(x), dtype=np.int64)
    np.minimum.at(first, xi * Y_CELLS + yi, np.arange(len(x), dtype=np.int64))
    return np.sort(first[first < len(x)])  # drawn in history order


def _outcomes(pairs: pd.DataFrame) -> dict[str, np.ndarray]:
    """Which pairs ended with each outcome of :data:`OUTCOME_COLOURS` (one mask each)."""
    types = pairs["type"].to_numpy()
    return {outcome: types == outcome for outcome in OUTCOME_COLOURS}


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    # fixed margins rather than a layout engine, so the plots' time axes line up on the page
    fig.subplots_adjust(left=0.08, right=0.985, bottom=0.16, top=0.86)
    ax = fig.add_subplot()
    ax.grid(True, axis="y", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("seconds since the run started")
    return fig, ax


def _shade(ax: Axes, windows: Sequence[FaultWindow], span: tuple[float, float]) -> list[Patch]:
    """Shade fault windows inside ``span``; return one legend handle per fault kind."""
    colours: dict[str, str] = {}
    labelled_to = span[0] - 1.0  # where the last band label ends (data x), so none overlap
    room = (span[1] - span[0]) / 9  # about one label per ninth of the axis
    for w in windows:
        if w.stop < span[0] or w.start > span[1]:
            continue
        c = colours.setdefault(w.kind, FAULT_COLOURS[len(colours) % len(FAULT_COLOURS)])
        if w.start >= labelled_to:  # the band's nodes, just under its top strip
            ax.text(
                max(w.start, span[0]), 0.955, band_label(w), transform=ax.get_xaxis_transform(),
                fontsize=7, color="#333", va="top", ha="left", clip_on=True, zorder=5,
            )  # fmt: skip
            labelled_to = w.start + room
        if w.stop > w.start:
            ax.axvspan(w.start, w.stop, color=c, alpha=0.14, linewidth=0, zorder=0)
            # a solid strip along the top stays visible where points or bars cover the band
            ax.axvspan(w.start, w.stop, ymin=0.97, ymax=1.0, color=c, alpha=0.8, linewidth=0)
        else:
            ax.axvline(w.start, color=c, alpha=0.6, linewidth=1, zorder=0)
    return [Patch(color=c, alpha=0.3, label=f"{k} (fault)") for k, c in colours.items()]


def band_label(w: FaultWindow) -> str:
    """``power-loss n1,n2,n3``: a fault band's label (a settling action: its kind only)."""
    if "settle" in w.detail or not w.nodes:
        return w.kind
    return f"{w.kind} {','.join(w.nodes)}"


def _png(fig: Figure) -> bytes:
    """The figure's pixels as an RGB PNG.

    The face is opaque white, so the alpha channel ``savefig`` keeps says
    nothing: without it, and with zlib's fastest level, a million-point
    scatter encodes in about a third of the time and to a slightly smaller file.
    """
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    width, height = canvas.get_width_height(physical=True)
    rgba = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buf = io.BytesIO()
    rgba.convert("RGB").save(buf, format="png", compress_level=1, dpi=(DPI, DPI))
    return buf.getvalue()


def _legend(ax: Axes, handles: list[Any], **kw: Any) -> None:
    if handles:
        ax.legend(
            handles=handles,
            loc="lower left",
            bbox_to_anchor=(0, 1.0),
            ncol=min(len(handles), 6),
            frameon=False,
            fontsize=8,
            **kw,
        )


def _headroom(ax: Axes) -> float:
    """A y-axis top 12 % above the data, so the fault strip along the top hides nothing."""
    return max(ax.dataLim.y1, 1.0) * 1.12


def _ms(v: float, _pos: int) -> str:
    """Latency tick labels: 0.1 ms … 100 ms, then 1 s, 10 s."""
    return f"{v:g} ms" if v < 1000 else f"{v / 1000:g} s"


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#666")


def latency(
    pairs: pd.DataFrame, windows: Sequence[FaultWindow], span: tuple[float, float]
) -> bytes:
    """Publish latency (ms, log scale) by invoke time, one colour per outcome."""
    fig, ax = _figure()
    handles: list = []
    x, y = pairs["invoke_s"].to_numpy(), np.maximum(pairs["latency_ms"].to_numpy(), 1e-3)
    outcomes = _outcomes(pairs)
    for outcome, colour in OUTCOME_COLOURS.items():
        mine = np.flatnonzero(outcomes[outcome])
        if not len(mine):
            continue
        keep = mine[thin_scatter(x[mine], y[mine], span)]
        size = 3 if outcome == "ok" else 6  # the rarer outcomes must not vanish under ok
        ax.scatter(x[keep], y[keep], s=size, color=colour, linewidths=0, alpha=0.85, zorder=2)
        label = f"{OUTCOME_LABELS[outcome]}: {len(mine):,}"
        handles.append(Patch(color=colour, label=label))
    ok = outcomes["ok"]
    if ok.sum() >= 2:
        handles += _percentiles(ax, x[ok], y[ok], span)
    if len(x):
        ax.set_yscale("log")
        # at least ~1.5 decades, so there are labelled major ticks however flat the latency is
        top = float(y.max()) * 2  # headroom: the fault strip along the top must not hide points
        ax.set_ylim(min(float(y.min()) * 0.8, top / 30), top)
        ax.yaxis.set_major_formatter(FuncFormatter(_ms))
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        _empty(ax, "no publishes")
    ax.set_ylabel("publish latency")
    ax.set_xlim(*span)
    _legend(ax, handles + _shade(ax, windows, span))
    return _png(fig)


def _percentiles(ax: Axes, x: np.ndarray, y: np.ndarray, span: tuple[float, float]) -> list:
    """p50 and p99 of ok latency per time bucket, as lines over the scatter."""
    width = bucket_seconds(span)
    edges = np.arange(span[0], span[1] + width, width)
    bucket = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    by = pd.Series(y).groupby(bucket)
    enough = by.size() >= 5
    levels = by.quantile([0.5, 0.99]).unstack()  # one grouping for both quantiles
    handles = []
    for q, style in ((0.5, "-"), (0.99, "--")):
        level = levels[q][enough].reindex(range(len(edges) - 1))
        handles.append(
            ax.stairs(
                level.to_numpy(), edges, baseline=None, color="#222", linewidth=1.1,
                linestyle=style, zorder=4, label=f"ok p{q * 100:g} per {width:g}s",
            )
        )  # fmt: skip
    return handles


def _hist(t: np.ndarray, span: tuple[float, float], width: float) -> tuple[np.ndarray, np.ndarray]:
    edges = np.arange(span[0], span[1] + width, width)
    counts, _ = np.histogram(t, bins=edges)
    return edges, counts


def throughput(
    pairs: pd.DataFrame, windows: Sequence[FaultWindow], span: tuple[float, float]
) -> bytes:
    """Publish completions per second, one line per outcome, by completion time."""
    fig, ax = _figure()
    width = bucket_seconds(span)
    handles: list = []
    t, outcomes = pairs["complete_s"].to_numpy(), _outcomes(pairs)
    for outcome, colour in OUTCOME_COLOURS.items():
        mine = t[outcomes[outcome]]
        if not len(mine) and outcome != "ok":
            continue
        edges, counts = _hist(mine, span, width)
        handles.append(
            ax.stairs(
                counts / width,
                edges,
                color=colour,
                linewidth=1.2,
                zorder=2,
                label=OUTCOME_LABELS[outcome],
            )
        )
    ax.set_ylabel(f"publishes/s ({width:g}s buckets)")
    ax.set_xlim(*span)
    ax.set_ylim(0, _headroom(ax))
    _legend(ax, handles + _shade(ax, windows, span))
    return _png(fig)


def coarser_width(desired: float, data: float) -> float:
    """A plot bucket width of at least ``desired`` that is a whole multiple of ``data``.

    The first round width of :data:`BUCKETS_S` that is one, else the smallest multiple.
    """
    for b in BUCKETS_S:
        k = b / data
        if b >= desired and abs(k - round(k)) < 1e-9:
            return b
    return data * max(1, int(np.ceil(desired / data - 1e-9)))


def rebin(hist: dict[str, Any], width: float) -> tuple[np.ndarray, np.ndarray]:
    """(edges, counts) of a checker histogram (``bucket_s``, ``start_s``, ``counts``) summed
    into buckets of ``width``, a whole multiple of ``bucket_s``; nothing counted is dropped."""
    data = float(hist["bucket_s"])
    counts = np.asarray(hist.get("counts") or [], dtype=np.int64)
    if hist.get("start_s") is None or not len(counts):
        return np.array([0.0, width]), np.zeros(1, dtype=np.int64)
    factor = max(1, round(width / data))
    first = round(float(hist["start_s"]) / data)  # index of the first data bucket since zero
    coarse = (first + np.arange(len(counts))) // factor
    summed = np.bincount(coarse - coarse[0], weights=counts).astype(np.int64)
    edges = (coarse[0] + np.arange(len(summed) + 1)) * factor * data
    return edges, summed


def over_time(
    over: dict[str, Any], windows: Sequence[FaultWindow], span: tuple[float, float]
) -> bytes:
    """A checker's histograms over the run (e.g. lost writes by when they were acknowledged):
    ``overall`` as bars, and a line for each node whose own histogram holds more than that.

    ``over`` is the headline checker's ``summary.over_time``; it is drawn as it is,
    only summed into wider buckets.
    """
    fig, ax = _figure()
    label = str(over.get("label") or "count")
    overall = over.get("overall") or {"bucket_s": 1.0, "start_s": None, "counts": []}
    per_node: dict[str, dict[str, Any]] = over.get("per_node") or {}
    width = coarser_width(bucket_seconds(span), float(overall["bucket_s"]))
    handles: list[Any] = []
    edges, counts = rebin(overall, width)
    total = int(counts.sum())
    if total:
        ax.bar(edges[:-1], counts, width=width, align="edge", color="#c44e52", alpha=0.85, zorder=2)
        handles.append(Patch(color="#c44e52", label=f"{label} (on no node): {total:,}"))
    totals = {n: int(sum(h.get("counts") or [])) for n, h in per_node.items()}
    same = [n for n, t in sorted(totals.items()) if t and t == total]
    if same and len(same) < len(per_node):
        handles.append(Patch(color="none", label=f"{', '.join(same)}: lack only these"))
    for i, node in enumerate(sorted(per_node)):
        if totals[node] == total:  # each node lacks at least the overall ones: nothing more
            continue
        e, c = rebin(per_node[node], width)
        colour = NODE_COLOURS[i % len(NODE_COLOURS)]
        text = f"not on {node}: {totals[node]:,}"
        handles.append(ax.stairs(c, e, color=colour, linewidth=1.2, zorder=3, label=text))
    if not handles:
        _empty(ax, f"no {label} on any node")
        ax.set_yticks([])
    else:
        ax.set_ylim(0, _headroom(ax))
    ax.set_ylabel(f"{over.get('ylabel') or label} ({width:g}s buckets)")
    ax.set_xlim(*span)
    _legend(ax, handles + _shade(ax, windows, span))
    return _png(fig)
