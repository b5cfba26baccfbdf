"""``report.html``: one self-contained page (inline CSS, plots as base64 PNG, no scripts).

In: a :class:`Page` holding the result dict, the scenario as plain data,
fault windows, plots, sample ops, log findings and the folder's raw files.
Out: the HTML text. Sections, in reading order: verdict banner, run
settings, counts, fault timeline, availability, plots, nodes, examples,
node logs, raw files. Every value from a history, a log or a scenario goes through
:mod:`checkers.report.html`, which escapes it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from checkers.report import summary
from checkers.report.html import Markup, definitions, el, num, style, table
from checkers.report.timeline import FaultWindow
from checkers.verdict import headline, headline_checker

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;
 margin:0;background:#f6f6f7}
main{max-width:1060px;margin:0 auto;padding:0 20px 40px}
header.banner{padding:22px 20px;color:#fff}
header.banner>div{max-width:1060px;margin:0 auto}
.valid{background:#1f7a3d}.invalid{background:#b3261e}.unknown{background:#9a6700}
.banner h1{margin:4px 0 6px;font-size:26px;font-weight:650}
.banner .label{font-size:12px;letter-spacing:.12em;font-weight:700;opacity:.85}
.banner .sub{opacity:.9}
.banner .expect{padding:1px 8px;border-radius:9px;background:rgba(255,255,255,.22);
 letter-spacing:.04em}
nav{margin:14px 0 0;font-size:13px}nav a{margin-right:14px;color:#444}
section{background:#fff;border:1px solid #e3e3e6;border-radius:8px;padding:6px 18px 14px;
 margin:16px 0}
h2{font-size:17px;margin:12px 0 8px}h3{font-size:14px;margin:14px 0 6px}
table{border-collapse:collapse;margin:4px 0 8px;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
thead th{border-bottom:2px solid #ddd;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{font-weight:500;color:#555;white-space:nowrap}
tr.bad td{background:#fdecea}
td.bad{color:#b3261e;font-weight:650}
.muted{color:#666}.small{font-size:12px}
figure{margin:10px 0 18px}figure img{width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:12px;color:#555;margin-top:2px}
pre{background:#f4f4f5;padding:8px 10px;overflow-x:auto;font-size:12px;border-radius:4px;
 white-space:pre-wrap;word-break:break-all}
code{font-size:12px}
"""


@dataclass
class Page:
    """Everything the page shows; built by :func:`checkers.report.write_report`."""

    result: dict[str, Any]
    scenario: dict[str, Any] | None
    scenario_yaml: str | None
    windows: list[FaultWindow]
    plots: dict[str, tuple[str, bytes]]  # file name -> (caption, PNG)
    examples: list[tuple[str, str, list[tuple[Any, ...]], list[str]]]  # title, note, rows, head
    logs: Markup
    files: list[tuple[str, int]]  # relative link, size in bytes
    created: str = ""
    notes: list[str] = field(default_factory=list)


def _banner(p: Page) -> Markup:
    v = summary.verdict(p.result)
    sub = [f"scenario {p.result.get('scenario') or 'history check'}"]
    server = (p.result.get("versions") or {}).get("nats_server")
    if server:
        sub.append(f"nats-server {server}")
    if p.result.get("seed") is not None:
        sub.append(f"seed {p.result['seed']}")
    if p.created:
        sub.append(p.created)
    label: list[Any] = [v.label]
    if v.expectation:
        label += [" — ", el("span", v.expectation, class_="expect", id="expectation")]
    inner = el(
        "div",
        el("div", label, class_="label", data_matched=_matched(v.matched)),
        el("h1", v.headline, id="verdict"),
        el("div", " · ".join(sub), class_="sub"),
    )
    return el("header", inner, class_=f"banner {v.status}")


def _matched(m: bool | None) -> str | None:
    return None if m is None else "yes" if m else "no"


def _nav() -> Markup:
    parts = (
        "run",
        "counts",
        "faults",
        "availability",
        "plots",
        "nodes",
        "examples",
        "logs",
        "files",
    )
    return el("nav", [el("a", s, href=f"#{s}") for s in parts])


def _run(p: Page) -> Markup:
    rows = summary.settings(p.result, p.scenario) + summary.performance(p.result)
    body = [el("h2", "Run"), definitions(rows)]
    if p.scenario_yaml:
        body.append(el("details", el("summary", "scenario.yaml"), el("pre", p.scenario_yaml)))
    timings = p.result.get("timings") or {}
    if timings:
        trs = [(k, f"{float(v):.1f}s") for k, v in timings.items()]
        body.append(
            el("details", el("summary", "phase timings"), table(("phase", "took"), trs, (1,)))
        )
    return el("section", body, id="run")


def _counts(p: Page) -> Markup:
    rows = summary.key_counts(p.result)
    trs = [
        el(
            "tr",
            el("td", name),
            el("td", num(count), class_="num bad" if bad else "num"),
            el("td", meaning, class_="muted"),
        )
        for name, count, meaning, bad in rows
    ]
    body = [el("h2", "Counts")]
    if trs:
        body.append(el("table", el("tbody", trs)))
    else:
        body.append(el("p", "No checker reported counts.", class_="muted"))
    name, h = headline_checker(p.result)
    if h.get("error"):
        body.append(el("p", f"{name} checker error: ", el("code", h["error"])))
    body += [el("p", note) for note in summary.notes(p.result)]
    for w in p.result.get("history_warnings") or []:
        body.append(el("p", "history warning: ", w, class_="muted"))
    wf = (p.result.get("checkers") or {}).get("wellformed") or {}
    if wf.get("valid") == "unknown":
        said = wf.get("error") or (wf.get("summary") or {}).get("headline")
        body.append(el("p", "history check: ", said, class_="bad"))
    return el("section", body, id="counts")


def _faults(p: Page) -> Markup:
    body = [el("h2", "Fault timeline")]
    if not p.windows:
        body.append(
            el("p", "No nemesis ops in the history: no faults were injected.", class_="muted")
        )
        return el("section", body, id="faults")
    rows = summary.fault_rows(p.windows)
    body.append(table(summary.FAULT_HEAD, rows, numeric=(1, 2, 3)))
    body.append(el("p", summary.clock_note(p.result), class_="muted small", id="clock"))
    return el("section", body, id="faults")


def _availability(p: Page) -> Markup:
    facts, rows = summary.availability(p.result)
    body = [el("h2", "Availability")]
    if not facts and not rows:
        body.append(el("p", "No availability figures in the result.", class_="muted"))
        return el("section", body, id="availability")
    if facts:
        body.append(definitions(facts))
    if rows:
        body.append(table(summary.AVAILABILITY_HEAD, rows, numeric=(5, 6, 7)))
        body.append(
            el(
                "p",
                "Leaders as they were just before each fault; failures are the writes that "
                "failed or timed out from the fault's start until the first acknowledged write "
                "after its end.",
                class_="muted small",
            )
        )
    return el("section", body, id="availability")


def _plots(p: Page) -> Markup:
    body = [el("h2", "Plots")]
    body.append(
        el("p", "Shaded bands are fault windows (see the timeline above).", class_="muted small")
    )
    for name, (caption, png) in p.plots.items():
        src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        img = el("img", src=src, alt=caption)
        body.append(el("figure", el("a", img, href=f"plots/{name}"), el("figcaption", caption)))
    body += [el("p", note, class_="muted") for note in p.notes]
    if not p.plots and not p.notes:
        body.append(el("p", "No history to plot.", class_="muted"))
    return el("section", body, id="plots")


def _nodes(p: Page) -> Markup:
    rows = summary.node_rows(p.result)
    body = [el("h2", "Nodes")]
    if not rows:
        body.append(el("p", "No per-node reads in the result.", class_="muted"))
        return el("section", body, id="nodes")
    recovery = (p.result.get("recovery") or {}).get("nodes") or {}
    cols = summary.node_columns(rows)
    read_by = any(r.read for r in rows)
    head = ["node", "status", *cols]
    if recovery:
        head.append("stream msgs after recovery")
    if read_by:
        head.append("read by")
    head.append("note")
    trs = []
    for r in rows:
        cells = [el("td", r.node), el("td", r.status)]
        cells += [el("td", num(c), class_="num bad" if bad else "num") for _, c, bad in r.counts]
        if recovery:
            msgs = (recovery.get(r.node) or {}).get("messages")
            cells.append(el("td", num(msgs), class_="num"))
        if read_by:
            cells.append(el("td", r.read))
        cells.append(el("td", r.note))
        trs.append(el("tr", cells, class_="bad" if any(b for _, _, b in r.counts) else None))
    numeric = {*cols, "stream msgs after recovery"}
    th = el("tr", [el("th", h, class_="num" if h in numeric else None) for h in head])
    body.append(el("table", el("thead", th), el("tbody", trs)))
    meanings = {
        c["name"]: c.get("meaning") for n in headline(p.result).nodes for c in n.get("counts", [])
    }
    said = "; ".join(f"{k}: {m}" for k, m in meanings.items() if m)
    if said:
        body.append(el("p", said + ".", class_="muted small"))
    return el("section", body, id="nodes")


def _examples(p: Page) -> Markup:
    body = [el("h2", "Examples")]
    if not p.examples:
        body.append(el("p", "No lost, unexpected, duplicated or divergent values.", class_="muted"))
    for title, note, rows, head in p.examples:
        body += [el("h3", title), el("p", note, class_="muted small"), table(head, rows)]
    return el("section", body, id="examples")


def _files(p: Page) -> Markup:
    items = [
        el("li", el("a", rel, href=rel), " ", el("span", _size(size), class_="muted small"))
        for rel, size in p.files
    ]
    return el("section", el("h2", "Raw files"), el("ul", items), id="files")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return str(size)


def render(p: Page) -> str:
    """The whole page as an HTML string."""
    v = summary.verdict(p.result)
    title = f"{v.banner}: {p.result.get('scenario') or 'history check'} — {v.headline}"
    head = el(
        "head",
        Markup('<meta charset="utf-8">'),
        el("meta", name="viewport", content="width=device-width,initial-scale=1"),
        el("title", title),
        style(CSS),
    )
    main = el(
        "main",
        _nav(),
        _run(p),
        _counts(p),
        _faults(p),
        _availability(p),
        _plots(p),
        _nodes(p),
        _examples(p),
        el("section", el("h2", "Node logs"), p.logs, id="logs"),
        _files(p),
    )
    return "<!doctype html>\n" + el("html", head, el("body", _banner(p), main), lang="en") + "\n"
