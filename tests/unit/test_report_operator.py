"""What report.html, summary.md and ``show`` tell an operator, on a planted lossy run.

The folder holds a hand-made history: 60 publishes, three of them acknowledged but
read back from no node, and a coordinated power loss of n1–n3 while n3 led the stream
and the meta group; the scenario expects ``anomalies: [lost]`` and names what to try
next. ``harness.results.write`` checks it and writes the views, as after a real run.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from checkers.report import terminal
from checkers.report.timeline import fault_windows
from harness import results
from harness.history import load_history
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SEC = 1_000_000_000
LOST = {11, 12, 13}
HINT = "try --set server.sync_interval=always, and the loss should disappear"


def _history(path: Path) -> None:
    ops: list[dict[str, Any]] = []

    def op(**kw: Any) -> None:
        ops.append({"index": len(ops), "node": None, **kw})

    for v in range(60):
        t = int((2 + v * 0.1) * SEC)
        op(time=t, type="invoke", process=v % 3, f="publish", value=v, node="n1")
        op(time=t + 1_000_000, type="ok", process=v % 3, f="publish", value=v, node="n1", seq=v)
        if v == 20:
            start = {
                "start": "power-loss", "window": "0", "targets": "all",
                "nodes": ["n1", "n2", "n3"], "coordinated": True,
                "dropped_bytes": {"n1": 514932, "n2": 1200, "n3": 0},
                "began": t + 2, "leaders": {"stream": "n3", "meta": "n3"},
            }  # fmt: skip
            op(time=t + 3, type="info", process="nemesis", f="power-loss", value=start)
        if v == 30:
            stop = {"stop": "power-loss", "window": "0", "nodes": ["n1", "n2", "n3"]}
            op(time=t + 3, type="info", process="nemesis", f="power-loss", value=stop)
    state = {"present": True, "messages": 57, "first_seq": 1, "last_seq": 57, "leader": "n2"}
    settle = {"settle": "recovery", "converged": True, "seconds": 4.2, "nudges": 1,
              "nodes": {n: state for n in ("n1", "n2", "n3")}, "bound": 30.0,
              "began": 9 * SEC}  # fmt: skip
    op(time=13 * SEC, type="info", process="nemesis", f="recovery", value=settle)
    pairs = [[v, v] for v in range(60) if v not in LOST]
    for i, n in enumerate(("n1", "n2", "n3")):
        op(time=(14 + i) * SEC, type="invoke", process=100 + i, f="read", value=None, node=n)
        op(time=(14 + i) * SEC + 5, type="ok", process=100 + i, f="read", value=pairs, node=n)
    path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in ops))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("op") / "results" / "lossy" / "20260101T000000"
    d.mkdir(parents=True)
    sc = load_scenario(
        ROOT / "scenarios" / "quick.yaml",
        ["name=lossy", "time_limit=10", "expect={anomalies: [lost]}", f"hint={HINT}"],
    )
    (d / "scenario.yaml").write_text(sc.to_yaml())
    _history(d / "history.jsonl")
    extra = {"nats_server": {"version": "2.14.0"}, "replica_nodes": ["n1", "n2", "n3"],
             "main_began_s": 1.5}  # fmt: skip
    result = results.write(d, sc, extra, {"main phase": 10.0})
    assert result["anomalies"] == ["lost"] and results.exit_code_for(result, sc.expect) == 0
    return d


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def test_the_banner_says_the_loss_was_expected(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    banner = html[html.index("<header") : html.index("</header>")]
    assert "INVALID — as expected: lost" in _text(banner)
    assert 'data-matched="yes"' in banner
    md = (run_dir / "summary.md").read_text()
    assert md.splitlines()[0] == "## ✅ INVALID — as expected: lost · lossy"


def test_an_unmatched_expectation_says_why(run_dir: Path, tmp_path: Path) -> None:
    sc = load_scenario(run_dir / "scenario.yaml", ["expect={valid: true}"])
    result = orjson.loads((run_dir / "results.json").read_bytes())
    results.record_expectation(result, sc)
    out = io.StringIO()
    terminal.show(result, None, None, None, Console(file=out, width=200))
    assert "INVALID — NOT as expected: expected valid, got invalid (lost)" in out.getvalue()


def test_faults_show_nodes_roles_and_words_not_reprs(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    faults = _text(html[html.index('<section id="faults">') :].split("</section>")[0])
    assert "n1 (follower), n2 (follower), n3 (stream + meta leader)" in faults
    assert "coordinated: yes" in faults
    assert "dropped bytes: n1 502.9 KiB, n2 1.2 KiB, n3 0 B" in faults
    assert "converged after 4.20 s (bound 30.00 s), 1 nudge" in faults
    assert "The main phase began at 1.50 s" in faults and "--plan" in faults
    body = _text(html[html.index("<main>") :])
    for repr_bit in ("{'", "': ", "True", "False", "None"):
        assert repr_bit not in body, repr_bit


def test_the_hint_is_in_every_view(run_dir: Path) -> None:
    assert HINT in _text((run_dir / "report.html").read_text())
    assert HINT in (run_dir / "summary.md").read_text()
    result = orjson.loads((run_dir / "results.json").read_bytes())
    out = io.StringIO()
    terminal.show(result, None, None, None, Console(file=out, width=300))
    assert HINT in out.getvalue()


def test_fault_bands_are_labelled_with_their_nodes(run_dir: Path) -> None:
    from checkers.report.plots import band_label

    windows = fault_windows(load_history(run_dir / "history.jsonl").ops)
    assert [band_label(w) for w in windows] == ["power-loss n1,n2,n3", "recovery"]


def test_a_broken_run_never_reads_as_expected(run_dir: Path) -> None:
    sc = load_scenario(run_dir / "scenario.yaml")
    result = orjson.loads((run_dir / "results.json").read_bytes())
    result["error"] = "stream never got a leader"
    results.record_expectation(result, sc)
    assert result["expectation"]["matched"] is False
    assert "the run broke: stream never got a leader" in result["expectation"]["why"]
