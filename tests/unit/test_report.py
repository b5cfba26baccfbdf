"""report.html, plots and summary.md on a fake run folder with planted anomalies.

The folder is what a run leaves (history.jsonl, scenario.yaml, nodes/<n>/
logs) and ``harness.results.write`` checks it and writes the report, exactly
as after a real run. Planted: lost values, a node missing values the others
have, an unexpected value, a kill window, and a node log line holding
``<script>alert(1)</script>``.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from checkers.report import findings, plots, timeline, write_report
from checkers.report.html import el, esc, table
from checkers.report.markdown import summary_md
from harness import results
from harness.history import load_history
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SEC = 1_000_000_000
SCRIPT = "<script>alert(1)</script>"
LOST = [5, 17, 42]
MISSING_ON_N2 = list(range(100, 110))
UNEXPECTED = 99_999
FAILED_BUT_READ = 7  # its publish failed definitely (every 13th from 7 fails)
PUBLISHES = 400
SHA256 = "5e1f" * 16  # the binary the nodes ran, as server_info records it
HOW_READ = {  # how each node's final read was made, as the workloads and offline reads say
    "n1": {"via": "live", "direct": "batched"},
    "n2": {"via": "live", "direct": "single"},
    "n3": {"via": "offline", "direct": "batched"},
}


def write_history(path: Path) -> dict[str, Any]:
    """Four processes publish 0..399 over 40 s (every 13th fails); n1 is killed 10–15 s."""
    ops: list[dict[str, Any]] = []

    def op(**kw: Any) -> None:
        ops.append({"index": len(ops), **kw})

    acked: list[int] = []
    seq = 0
    for v in range(PUBLISHES):
        t = int(v * 0.1 * SEC)
        node = f"n{v % 3 + 1}"
        op(time=t, type="invoke", process=v % 4, f="publish", value=v, node=node)
        if v in (100, 150):
            what = {"start": "kill", "targets": "one"} if v == 100 else {"stop": "kill"}
            op(time=t + 1, type="info", process="nemesis", f="kill",
               value={**what, "nodes": ["n1"]}, node=None)  # fmt: skip
        if v % 13 == 7:
            op(time=t + 5_000_000, type="fail", process=v % 4, f="publish", value=v, node=node,
               error="no responders <b>")  # fmt: skip
            continue
        seq += 1
        acked.append(v)
        op(time=t + 2_000_000, type="ok", process=v % 4, f="publish", value=v, node=node, seq=seq)
    stream = [[s + 1, v] for s, v in enumerate(v for v in acked if v not in LOST)]
    for i, node in enumerate(("n1", "n2", "n3")):
        pairs = [p for p in stream if not (node == "n2" and p[1] in MISSING_ON_N2)]
        if node == "n3":
            pairs.append([len(stream) + 1, UNEXPECTED])
        if node == "n1":
            pairs.append([len(stream) + 2, FAILED_BUT_READ])
        t = (45 + i) * SEC
        op(time=t, type="invoke", process=1000 + i, f="read", value=None, node=node)
        note = {"note": "read <b>in two batches</b>"} if node == "n3" else {}
        how = HOW_READ[node]
        op(time=t + SEC, type="ok", process=1000 + i, f="read", value=pairs, node=node, **note,
           **how)  # fmt: skip
    path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in ops))
    return {"acked": len(acked)}


def make_run(d: Path) -> Path:
    """Fill ``d`` as a run leaves it, then check and report it with ``results.write``."""
    d.mkdir(parents=True)
    scenario = load_scenario(ROOT / "scenarios" / "quick.yaml", ["time_limit=40"])
    (d / "scenario.yaml").write_text(scenario.to_yaml())
    write_history(d / "history.jsonl")
    for n in ("n1", "n2", "n3"):
        (d / "nodes" / n).mkdir(parents=True)
        (d / "nodes" / n / "nats-server.conf").write_text("port: 4222\n")
        log = "[1] 2026/01/01 00:00:00.000000 [INF] Starting nats-server\n"
        if n == "n2":
            log += f"[1] 2026/01/01 00:00:01.000000 [ERR] corrupt block {SCRIPT}\n"
        (d / "nodes" / n / "nats-server.log").write_text(log)
    (d / "harness.log").write_text("log\n")
    server = {"version": "2.14.0", "sha256": SHA256}
    extra = {"nats_server": server, "replica_nodes": ["n1", "n2", "n3"]}
    results.write(d, scenario, extra, {"main phase": 40.0})
    results.link_latest(d)
    return d


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake run, shared by this module's tests: a test that changes it works on a copy."""
    return make_run(tmp_path_factory.mktemp("fake") / "results" / "quick" / "20260101T000000")


def test_write_produces_report_plots_and_summary(run_dir: Path) -> None:
    for name in ("results.json", "summary.md", "report.html"):
        assert (run_dir / name).is_file(), name
    for name in ("latency.png", "throughput.png", "lost.png"):
        png = (run_dir / "plots" / name).read_bytes()
        assert png.startswith(b"\x89PNG"), name
    html = (run_dir / "report.html").read_text()
    acked = PUBLISHES - len([v for v in range(PUBLISHES) if v % 13 == 7])
    banner = f"LOST 3 of {acked:,} acknowledged writes ({100 * 3 / acked:.2f}%)"
    assert re.search(r'<h1 id="verdict">' + re.escape(banner), html)
    assert 'class="banner invalid"' in html


def test_the_server_version_is_shown_with_the_binarys_sha256(run_dir: Path) -> None:
    result = json.loads((run_dir / "results.json").read_text())
    assert result["versions"]["nats_server_sha256"] == SHA256
    md = (run_dir / "summary.md").read_text()
    assert f"| nats-server | 2.14.0 (sha256 {SHA256}) |" in md
    html = (run_dir / "report.html").read_text()
    assert re.search(r"<th>nats-server</th><td>2\.14\.0 \(sha256 " + SHA256 + r"\)</td>", html)


def test_node_log_line_is_escaped(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert SCRIPT not in html
    assert "<script" not in html.lower()  # the page itself needs no script either
    assert "read &lt;b&gt;in two batches&lt;/b&gt;" in html  # a read's note from the history


def test_log_fallback_without_log_checker_is_escaped(run_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(run_dir, tmp_path / "run")
    result = json.loads((copy / "results.json").read_text())
    result["checkers"].pop("logs", None)
    out = write_report(copy, result, None)
    html = out.read_text()
    assert "No log checker result" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and SCRIPT not in html


def _node_rows(html: str) -> dict[str, list[str]]:
    section = html[html.index('<section id="nodes">') :]
    section = section[: section.index("</section>")]
    rows = {}
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", section):
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)]
        if cells:
            rows[cells[0]] = cells
    return rows


def test_per_node_table(run_dir: Path) -> None:
    rows = _node_rows((run_dir / "report.html").read_text())
    assert set(rows) == {"n1", "n2", "n3"}
    # node, status, read, lost, missing, stream msgs, note
    assert rows["n1"][3] == "3" and rows["n1"][4] == "0"
    assert rows["n2"][3] == str(3 + len(MISSING_ON_N2)) and rows["n2"][4] == "10"
    assert rows["n3"][3] == "3"
    by = {n: r[-2] for n, r in rows.items()}  # the column before the note
    assert by == {"n1": "live: batched direct gets", "n2": "live: single direct gets",
                  "n3": "offline: batched direct gets"}  # fmt: skip
    result = json.loads((run_dir / "results.json").read_text())
    assert result["final_reads"] == {
        n: {"type": "ok", "tries": 1, **how} for n, how in HOW_READ.items()
    }


def test_examples_show_the_publish_ops_of_lost_values(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    section = html[html.index('<section id="examples">') :]
    section = section[: section.index("</section>")]
    assert "Lost writes" in section and "Unexpected values" in section
    assert "Missing on n2" in section
    for v in LOST:  # value, process, node, invoked at, ok, completed at
        t = v * 0.1
        row = f"<td>{v}</td><td>{v % 4}</td><td>n{v % 3 + 1}</td><td>{t:.3f}</td><td>ok</td>"
        assert row in section, v
    assert f"<td>{UNEXPECTED}</td><td>n3 at seq" in section
    failed = section[section.index("Failed publishes read back") :]
    row = "<td>7</td><td>3</td><td>n2</td><td>0.700</td><td>fail</td><td>0.705</td><td>–</td>"
    assert row + "<td>no responders &lt;b&gt;</td><td>n1 at seq 368</td>" in failed


def test_fault_timeline_and_links(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    faults = re.sub(r' class="[^"]*"', "", html[html.index('<section id="faults">') :])
    assert "<td>kill</td><td>10.00</td><td>15.00</td><td>5.00</td><td>n1</td>" in faults
    assert "<td>targets: one</td>" in faults
    links = set(re.findall(r'href="([^"#]+)"', html))
    raw = ("history.jsonl", "results.json", "scenario.yaml", "summary.md", "harness.log")
    for rel in (*raw, "nodes/n2/nats-server.log", "nodes/n1/nats-server.conf", "plots/lost.png"):
        assert rel in links, rel
        assert (run_dir / rel).is_file(), rel
    assert not [x for x in links if x.startswith(("/", "http"))]  # relative: the folder moves


def test_plots_are_embedded_and_match_the_files(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    files = sorted((run_dir / "plots").glob("*.png"))
    assert len(embedded) == len(files) == 3
    assert {base64.b64decode(e) for e in embedded} == {f.read_bytes() for f in files}


def test_summary_md_has_verdict_and_tables(run_dir: Path) -> None:
    md = (run_dir / "summary.md").read_text()
    lines = md.splitlines()
    assert lines[0] == "## ❌ INVALID · quick"
    assert lines[2].startswith("**LOST 3 of ") and "; 1 unexpected" in lines[2]
    assert "| node | status | read | lost | missing | holes | read by | note |" in md
    assert re.search(
        r"^\| n2 \| holes \| [\d,]+ \| 13 \| 10 \| 10 \| live: single direct gets \|", md, re.M
    )
    assert "| n3 | read | " in md and "| offline: batched direct gets |" in md
    assert "| **3** |" in md  # lost is bold in the counts row
    assert "| sync_interval | default |" in md


def test_summary_md_escapes_table_breakers() -> None:
    result = {
        "valid": "unknown",
        "scenario": "a|b",
        "error": "boom <img src=x>\nsecond line",
        "checkers": {},
    }
    md = summary_md(result)
    assert "a\\|b" in md
    assert "<img" not in md and "&lt;img src=x&gt;" in md
    assert "boom &lt;img src=x&gt; second line" in md  # one line in the table cell


def test_report_without_history_still_renders(tmp_path: Path) -> None:
    result = {"valid": "unknown", "anomalies": [], "checkers": {}, "error": "cluster did not form"}
    html = write_report(tmp_path, result, None).read_text()
    assert "UNKNOWN" in html and "cluster did not form" in html
    assert "No history to plot." in html
    assert not (tmp_path / "plots").exists()


def test_report_failure_keeps_results_json(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import checkers.report

    def broken(*args: Any, **kw: Any) -> None:
        raise RuntimeError("plotting exploded")

    monkeypatch.setattr(checkers.report, "write_report", broken)
    copy = shutil.copytree(run_dir, tmp_path / "run")
    for name in ("results.json", "report.html", "summary.md"):
        (copy / name).unlink()
    scenario = load_scenario(copy / "scenario.yaml")
    result = results.write(copy, scenario, {"replica_nodes": ["n1", "n2", "n3"]}, {})
    assert (copy / "results.json").is_file() and (copy / "summary.md").is_file()
    assert not (copy / "report.html").exists()
    assert result["checkers"]["queue"]["lost_count"] == 3


# ---- building blocks ----------------------------------------------------------


def test_el_escapes_text_and_attributes_but_not_markup() -> None:
    inner = el("b", "<i>")
    out = el("a", inner, " & ", SCRIPT, href='x" onclick="y')
    assert out == (
        '<a href="x&quot; onclick=&quot;y"><b>&lt;i&gt;</b> &amp; '
        "&lt;script&gt;alert(1)&lt;/script&gt;</a>"
    )
    assert esc(None) == "" and table(["<h>"], [["<c>"]]).count("&lt;") == 2


def test_fault_windows_pair_starts_with_stops() -> None:
    ops = pd.DataFrame(
        {
            "time": [1 * SEC, 2 * SEC, 3 * SEC, 4 * SEC, 6 * SEC],
            "process": ["nemesis"] * 5,
            "f": ["kill", "partition", "kill", "partition", "pause"],
            "type": ["info"] * 5,
            "value": [
                {"start": "kill", "nodes": ["n1"]},
                {"start": "partition", "grudge": {"n1": ["n2"]}},
                {"stop": "kill", "nodes": ["n1"]},
                {"stop": "partition"},
                {"start": "pause", "nodes": ["n3"]},
            ],
        }
    )
    ws = timeline.fault_windows(ops)
    got = [(w.kind, w.start, w.stop, w.stopped, w.nodes) for w in ws]
    assert got == [
        ("kill", 1.0, 3.0, True, ("n1",)),
        ("partition", 2.0, 4.0, True, ()),
        ("pause", 6.0, 6.0, False, ("n3",)),
    ]
    assert ws[1].detail == {"grudge": {"n1": ["n2"]}}


def test_a_fault_window_starts_when_the_fault_began_acting() -> None:
    ops = pd.DataFrame(
        {
            "time": [3 * SEC, 5 * SEC],  # the start op is written once the power loss is done
            "process": ["nemesis"] * 2,
            "f": ["power-loss"] * 2,
            "type": ["info"] * 2,
            "value": [
                {"start": "power-loss", "nodes": ["n1"], "began": int(1.5 * SEC)},
                {"stop": "power-loss", "nodes": ["n1"]},
            ],
        }
    )
    [w] = timeline.fault_windows(ops)
    assert (w.start, w.stop) == (1.5, 5.0)
    assert "began" not in w.detail


def test_thinning_keeps_every_occupied_cell_and_counts_nothing_away() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 100, 1_000_000)
    y = np.exp(rng.normal(1, 1, 1_000_000))
    y[123] = 50_000.0  # one outlier must survive
    keep = plots.thin_scatter(x, y, (0, 100))
    assert 123 in keep
    # the contract: exactly one kept point per occupied (x, log y) cell of the grid
    ly = np.log10(y)
    xi = np.minimum((x / 100 * plots.X_CELLS).astype(int), plots.X_CELLS - 1)
    yi = np.minimum(
        ((ly - ly.min()) / (ly.max() - ly.min()) * plots.Y_CELLS).astype(int), plots.Y_CELLS - 1
    )
    cell = xi * plots.Y_CELLS + yi
    assert set(cell[keep]) == set(cell) and len(keep) == len(set(cell))
    assert len(keep) <= plots.X_CELLS * plots.Y_CELLS < len(x) // 4
    assert len(plots.thin_scatter(x[:0], y[:0], (0, 1))) == 0


def test_the_lost_plot_draws_the_checkers_histograms(run_dir: Path) -> None:
    result = json.loads((run_dir / "results.json").read_text())
    over = result["checkers"]["queue"]["summary"]["over_time"]
    overall = over["overall"]
    assert sum(overall["counts"]) == len(LOST) == result["checkers"]["queue"]["lost_count"]
    width = overall["bucket_s"]
    at = [round(overall["start_s"] / width) + i for i, c in enumerate(overall["counts"]) if c]
    assert at == [int((v * 0.1 + 0.002) / width) for v in LOST]  # acked at v * 0.1 s + 2 ms
    lacking = {n: sum(h["counts"]) for n, h in over["per_node"].items()}
    assert lacking == {"n1": 3, "n2": 13, "n3": 3}
    lost_on = {n: d["lost_count"] for n, d in result["checkers"]["queue"]["per_node"].items()}
    assert lacking == lost_on  # the plot and the counts are the same numbers
    for name, hist in [("overall", overall), *over["per_node"].items()]:
        edges, counts = plots.rebin(hist, plots.coarser_width(5.0, hist["bucket_s"]))
        assert counts.sum() == sum(hist["counts"]), name  # summing drops nothing
        assert len(edges) == len(counts) + 1 and np.allclose(np.diff(edges), 5.0)


def test_coarser_width_is_a_whole_multiple() -> None:
    assert plots.coarser_width(0.3, 0.1) == 0.5
    assert plots.coarser_width(12, 10) == 30  # 15 is no multiple of 10
    assert plots.coarser_width(0.05, 1) == 1
    assert plots.coarser_width(700, 600) == 1200  # past the round widths: a multiple


def test_examples_of_replicas_that_disagree() -> None:
    q = {
        "divergence": {
            "count": 1,
            "same_seq_different_value": {
                "count": 1,
                "examples": [{"seq": 7, "values": {"n2": 9, "n1": 8}}],
            },
            "missing_on_node": {},
        }
    }
    ((title, note, rows, head),) = findings.examples(q, None)
    assert title == "Replicas disagree" and note.startswith("1 stream sequence holds different")
    assert rows == [("7", "n1: 8; n2: 9")] and head == ["stream seq", "value per node"]


# ---- in a real browser --------------------------------------------------------

CHROMIUM = shutil.which("chromium")


def open_in_chromium(page: Path, profile: Path) -> tuple[str, list[str]]:
    """(DOM after load, console messages) of ``page`` in headless Chromium."""
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        "--dump-dom", page.resolve().as_uri(),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make test installs it)")
def test_report_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    dom, console = open_in_chromium(run_dir / "report.html", tmp_path / "profile")
    assert console == []
    assert re.search(r'<h1 id="verdict">LOST 3 of 369 acknowledged writes', dom)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # parsed as text, not as an element
    assert "<script" not in dom.lower()
    assert dom.count('src="data:image/png;base64,') == 3


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make test installs it)")
def test_chromium_check_sees_console_errors(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<p>x</p><script>console.error('boom')</script>")
    _, console = open_in_chromium(page, tmp_path / "profile")
    assert any('"boom"' in line for line in console)


def test_history_that_cannot_be_checked_still_gets_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checker that raises (a bug in it) is UNKNOWN with its error; the report is written.

    (A value that breaks the contract, such as a publish value "a", is bad input
    instead: ``check`` refuses it with exit 2, see tests/unit/test_inputs.py.)
    """
    from checkers import compose

    def broken(ops: Any, context: Any) -> dict[str, Any]:
        raise ValueError("the checker broke")

    monkeypatch.setitem(compose.REGISTRY, "queue", broken)
    ops = [
        {"index": 0, "time": 5, "type": "invoke", "process": 0, "f": "publish", "value": 1},
        {"index": 1, "time": 9, "type": "ok", "process": 0, "f": "publish", "value": 1},
    ]
    (tmp_path / "history.jsonl").write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in ops))
    loaded = load_history(tmp_path / "history.jsonl")
    result = results.check_loaded(loaded, None)
    html = write_report(tmp_path, result, loaded.ops).read_text()
    assert '<h1 id="verdict">' in html and "UNKNOWN" in html
    assert "queue checker error: " in html and "ValueError" in html
    assert html.count('src="data:image/png;base64,') == 2  # latency, throughput: no lost plot


def test_plots_that_fail_still_leave_a_report(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> bytes:
        raise ValueError("no axis")

    monkeypatch.setattr(plots, "latency", broken)
    copy = shutil.copytree(run_dir, tmp_path / "run")
    result = json.loads((copy / "results.json").read_text())
    html = write_report(copy, result, load_history(copy / "history.jsonl").ops).read_text()
    assert "The plots could not be drawn: ValueError: no axis" in html
    assert re.search(r'<h1 id="verdict">LOST 3 of ', html)


def test_a_single_instant_still_has_a_time_axis() -> None:
    w = timeline.FaultWindow("kill", 3.0, 3.0, False, ("n1",))
    lo, hi = timeline.plot_span(pd.DataFrame({"invoke_s": [], "complete_s": []}), [w])
    assert lo < 3.0 < hi


def test_a_checker_hands_the_report_its_own_example_tables() -> None:
    from checkers.report import findings

    q = {
        "summary": {
            "headline": "1 double winner",
            "examples": [
                {
                    "title": "Double winners",
                    "note": "two writes won the same expected sequence",
                    "head": ["key", "expected", "winners"],
                    "rows": [["k1", 4, "p3, p7"]] * 12,
                }
            ],
        }
    }
    [(title, note, rows, head)] = findings.examples(q, None)
    assert (title, note, head) == (
        "Double winners",
        "two writes won the same expected sequence",
        ["key", "expected", "winners"],
    )
    assert rows == [("k1", 4, "p3, p7")] * findings.PER_KIND


def test_availability_is_shown_in_the_report_and_summary(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    section = html[html.index('id="availability"') :]
    section = section[: section.index("</section>")]
    assert "longest gap without an acknowledged write" in section
    assert "0.20 s (from 0.60 s to 0.80 s)" in section
    assert "<td>kill</td><td>n1</td><td>10.00–15.00</td>" in section
    assert "4 × no responders &lt;b&gt;" in section  # escaped like every value
    md = (run_dir / "summary.md").read_text()
    assert "- failed writes outside faults: 27 × no responders &lt;b&gt;" in md
    assert "- kill on n1 (10.00–15.00 s; stream leader –, meta leader –; 47 acked during it)" in md


def test_an_unknown_verdict_shows_no_count_as_a_known_anomaly() -> None:
    from checkers.compose import merge
    from checkers.report import summary

    counts = [
        {"name": "acknowledged", "value": 9, "bad": False, "meaning": "acked"},
        {"name": "lost", "value": 5, "bad": True, "meaning": "lost"},
    ]
    block = {"headline": "unread nodes: n1", "counts": counts}
    unknown = merge({"w": {"valid": "unknown", "summary": block}}, headline="w")
    assert summary.key_counts(unknown) == [
        ("acknowledged", 9, "acked", False),
        ("lost", "unknown", "lost", False),
    ]
    known = merge({"w": {"valid": False, "anomalies": ["lost"], "summary": block}}, headline="w")
    assert summary.key_counts(known)[1] == ("lost", 5, "lost", True)
