"""``index.html``: every run, comparison and suite of a results folder on one page.

In: :class:`Entry` rows (built by ``harness.browse`` from the folder's
``results.json``, ``compare.json`` and ``summary.json`` files), newest first,
and a title. Out: the HTML text — a table (kind, name, time, nats-server,
verdict, expectation and whether it matched, acknowledged, lost, duration, a
link to each report, relative to the page so the folder works as a CI
artifact) and filters (text, kind, verdict, matched) that run in the page.

Every value is escaped by :mod:`checkers.report.html`; the filters read
``data-*`` attributes, never markup built from values. The one inline script
is a constant of this module, and the page's Content-Security-Policy allows
only it (by its hash), so even a value that escaped its escaping could not
run. The filter state lives in the URL's fragment (``#kind=run&status=invalid``):
a filtered view can be linked, and a test can open one.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from checkers.report.html import Markup, el, num, style
from checkers.report.page import CSS


@dataclass(frozen=True)
class Entry:
    """One row: a run, a comparison or a suite (``part_of``: the one a run belongs to)."""

    kind: str  # run | compare | suite
    name: str
    time: str  # "2026-12-01 15:40:36", sortable
    link: str | None  # the report, relative to the page
    server: str = "–"
    status: str = "unknown"  # valid | invalid | unknown
    verdict: str = ""
    expected: str = "–"
    matched: bool | None = None
    acknowledged: int | None = None
    lost: int | None = None
    duration_s: float | None = None
    part_of: str | None = None
    part_link: str | None = None


SCRIPT = """
(function () {
  var keys = ["q", "kind", "status", "matched"];
  var rows = Array.prototype.slice.call(document.querySelectorAll("#entries tbody tr"));
  function control(k) { return document.getElementById("f-" + k); }
  function apply() {
    var want = {}, shown = 0, parts = [];
    keys.forEach(function (k) { want[k] = control(k).value.trim().toLowerCase(); });
    rows.forEach(function (tr) {
      var ok = (!want.q || tr.dataset.text.indexOf(want.q) >= 0) &&
        (!want.kind || tr.dataset.kind === want.kind) &&
        (!want.status || tr.dataset.status === want.status) &&
        (!want.matched || tr.dataset.matched === want.matched);
      tr.hidden = !ok;
      if (ok) { shown += 1; }
    });
    document.getElementById("shown").textContent = String(shown);
    keys.forEach(function (k) {
      if (want[k]) { parts.push(k + "=" + encodeURIComponent(want[k])); }
    });
    try { history.replaceState(null, "", parts.length ? "#" + parts.join("&") : "#"); }
    catch (e) { /* a file:// page in some browsers: the filters still work */ }
  }
  location.hash.replace(/^#/, "").split("&").forEach(function (pair) {
    var kv = pair.split("="), k = kv[0];
    if (keys.indexOf(k) >= 0 && kv.length > 1) { control(k).value = decodeURIComponent(kv[1]); }
  });
  keys.forEach(function (k) {
    control(k).addEventListener("input", apply);
    control(k).addEventListener("change", apply);
  });
  apply();
})();
"""
EXTRA_CSS = """
.filters{display:flex;gap:12px;flex-wrap:wrap;align-items:center;margin:12px 0}
.filters input,.filters select{font:inherit;padding:3px 6px}
table.entries td.st-valid{color:#1f7a3d;font-weight:600}
table.entries td.st-invalid{color:#b3261e;font-weight:600}
table.entries td.st-unknown{color:#9a6700;font-weight:600}
.wide{overflow-x:auto}.listing{background:#2b4c7e}
main,header.banner>div{max-width:1400px}
table.entries td:nth-child(3){white-space:nowrap}
"""


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    return (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        "img-src 'self' data:"
    )


def _matched(m: bool | None) -> str:
    return "–" if m is None else "yes" if m else "no"


def _duration(s: float | None) -> str:
    if s is None:
        return "–"
    return f"{s:,.0f} s" if s < 120 else f"{s / 60:,.1f} min"


def _row(e: Entry) -> Markup:
    name: list[Any] = [el("a", e.name, href=e.link) if e.link else e.name]
    if e.part_of:
        part = el("a", e.part_of, href=e.part_link) if e.part_link else e.part_of
        name += [el("br"), el("span", "in ", part, class_="muted small")]
    text = " ".join([e.kind, e.name, e.part_of or "", e.server, e.verdict, e.expected]).lower()
    cells = [
        el("td", e.kind),
        el("td", name),
        el("td", e.time),
        el("td", e.server),
        el("td", e.verdict, class_=f"st-{e.status}"),
        el("td", e.expected),
        el("td", _matched(e.matched)),
        el("td", num(e.acknowledged), class_="num"),
        el("td", num(e.lost), class_="num bad" if e.lost else "num"),
        el("td", _duration(e.duration_s), class_="num"),
    ]
    data = {"data_kind": e.kind, "data_status": e.status, "data_matched": _matched(e.matched)}
    return el("tr", cells, data_text=text, **data)


def _select(key: str, label: str, options: list[tuple[str, str]]) -> Markup:
    opts = [el("option", "any", value="")] + [el("option", t, value=v) for v, t in options]
    return el("label", label, " ", el("select", opts, id=f"f-{key}"))


HEAD = ("kind", "name", "time", "nats-server", "verdict", "expected", "matched",
        "acknowledged", "lost", "duration")  # fmt: skip


def page(entries: list[Entry], title: str) -> str:
    """The listing as an HTML string (``entries`` in the order given)."""
    filters = el(
        "div",
        el("label", "search ", el("input", type="search", id="f-q", placeholder="name, verdict…")),
        _select("kind", "kind", [("run", "run"), ("compare", "compare"), ("suite", "suite")]),
        _select(
            "status",
            "verdict",
            [("valid", "valid"), ("invalid", "invalid"), ("unknown", "unknown")],
        ),
        _select("matched", "matched", [("yes", "yes"), ("no", "no")]),
        el(
            "span",
            el("span", str(len(entries)), id="shown"),
            f" of {len(entries)} shown",
            class_="muted",
        ),
        class_="filters",
    )
    th = el("tr", [el("th", h, class_="num" if h in HEAD[7:] else None) for h in HEAD])
    body = [_row(e) for e in entries]
    table = el("table", el("thead", th), el("tbody", body), id="entries", class_="entries")
    empty = [] if entries else [el("p", "No runs here yet.", class_="muted", id="empty")]
    main = el("main", el("section", filters, el("div", table, class_="wide"), empty, id="list"))
    banner = el(
        "header",
        el("div", el("div", "NATS-CHAOS RESULTS", class_="label"), el("h1", title)),
        class_="banner listing",
    )
    head = el(
        "head",
        Markup('<meta charset="utf-8">'),
        el("meta", http_equiv="Content-Security-Policy", content=_csp()),
        el("meta", name="viewport", content="width=device-width,initial-scale=1"),
        el("title", f"nats-chaos results: {title}"),
        style(CSS + EXTRA_CSS),
    )
    script = Markup(f"<script>{SCRIPT}</script>")
    return (
        "<!doctype html>\n" + el("html", head, el("body", banner, main, script), lang="en") + "\n"
    )
