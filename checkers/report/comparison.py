"""``compare.html``: a comparison as one self-contained page (inline CSS, the chart inline).

In: the comparison's title, its rows (``harness.compare.row`` with ``report``, each
run's report.html relative to the page), the table's columns, per charted figure the
per-variant spread ``(variant, mean, min, max, runs)`` and its title, and the chart's
PNG bytes (or None). Out: the HTML text: the chart, one row per variant with every
charted figure as mean and min–max over its repeats, and every run with a link to its
report. Every value goes through :mod:`checkers.report.html`, which escapes it; the
page has no scripts.
"""

from __future__ import annotations

import base64
from typing import Any

from checkers.report.html import Markup, el, join, num, style, table
from checkers.report.page import CSS

Spread = list[tuple[str, float, float, float, int]]


def _figure(mean: float, lo: float, hi: float, runs: int) -> str:
    if runs == 0:
        return "–"
    text = num(round(mean, 2))
    return text if runs == 1 or lo == hi else f"{text} ({num(round(lo, 2))}–{num(round(hi, 2))})"


def _variants(stats: dict[str, Spread], titles: dict[str, str]) -> Markup:
    keys = list(stats)
    if not keys:
        return el("p", "No run finished.", class_="muted")
    labels = [v for v, *_ in stats[keys[0]]]
    runs = {v: n for v, _, _, _, n in stats[keys[-1]]}
    rows = [
        (v, runs.get(v, 0), *(_figure(*stats[k][i][1:]) for k in keys))
        for i, v in enumerate(labels)
    ]
    head = ("variant", "runs", *(titles.get(k, k) for k in keys))
    return table(head, rows, numeric=range(1, 2 + len(keys)), class_="variants")


def _cell(v: Any) -> Markup:
    return el("td", num(v), class_="num" if isinstance(v, int | float) else None)


def _runs(rows: list[dict[str, Any]], columns: list[str]) -> Markup:
    cols = [c for c in columns if c != "run_dir"]
    body = []
    for r in rows:
        cells = [_cell(r.get(c)) for c in cols]
        link = el("a", "report", href=r["report"]) if r.get("report") else "–"
        bad = r.get("verdict") not in ("valid", None)
        body.append(el("tr", el("td", link), cells, class_="bad" if bad else None))
    head = el("tr", el("th", "report"), [el("th", c) for c in cols])
    table_ = el("table", el("thead", head), el("tbody", body), class_="runs")
    return el("div", table_, class_="wide")


def page(
    title: str,
    rows: list[dict[str, Any]],
    columns: list[str],
    stats: dict[str, Spread],
    titles: dict[str, str],
    png: bytes | None,
) -> str:
    """The comparison page as an HTML string."""
    banner = el(
        "header",
        el("div", el("div", "COMPARISON", class_="label"), el("h1", title, id="title")),
        class_="banner compare",
    )
    chart: list[Any] = [el("h2", "Per variant")]
    if png:
        src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        chart.append(el("figure", el("a", el("img", src=src, alt=title), href="compare.png")))
    chart.append(_variants(stats, titles))
    chart.append(
        el(
            "p",
            "Means over each variant's repeats, with the lowest and highest in brackets; the "
            "chart's error bars span the same range. Files: ",
            join([el("a", n, href=n) for n in ("compare.csv", "compare.json", "compare.md")], ", "),
            class_="muted small",
        )
    )
    main = el(
        "main",
        el("section", chart, id="variants"),
        el("section", el("h2", "Runs"), _runs(rows, columns), id="runs"),
    )
    head = el(
        "head",
        Markup('<meta charset="utf-8">'),
        el("meta", name="viewport", content="width=device-width,initial-scale=1"),
        el("title", f"comparison: {title}"),
        style(CSS + ".compare{background:#2b4c7e}.wide{overflow-x:auto}"),
    )
    return "<!doctype html>\n" + el("html", head, el("body", banner, main), lang="en") + "\n"
