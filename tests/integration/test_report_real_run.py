"""A real short run's report: report.html, plots, summary.md, `report` and `show` on it.

One 10-second run of ``scenarios/quick.yaml`` (3 nodes, R3, one node
killed), started like a user would in CI (stderr is a pipe, so progress is
plain lines). Then the folder's report is checked for what the history
says, regenerated with ``nats-chaos report``, shown with ``show``, and
opened in headless Chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html import escape
from pathlib import Path

import headless
import pytest
from chaosrun import ROOT, results_json, run_dir_of

from checkers.report.summary import verdict
from harness.history import load_history

pytestmark = pytest.mark.integration
ANSI = re.compile(r"\x1b\[")


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(run folder, stderr) of one short real run."""
    tmp = tmp_path_factory.mktemp("real")
    env = {**os.environ, "NATS_CHAOS_STATE": str(tmp / "state"), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "harness.cli", "run", "scenarios/quick.yaml",
           "--set", "time_limit=10", "--set", "schedule.quiet=2", "--set", "schedule.interval=4",
           "--results-dir", str(tmp / "results")]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode in (0, 1), done.stderr
    return run_dir_of(tmp, "quick"), done.stderr


def test_run_writes_a_report_that_matches_its_history(real_run: tuple[Path, str]) -> None:
    run_dir, _ = real_run
    result = results_json(run_dir)
    q = result["checkers"]["queue"]
    wellformed = result["checkers"]["wellformed"]  # a real history keeps its own contract
    assert wellformed["valid"] is True and wellformed["warnings"] == {}, wellformed["summary"]
    assert list(result["checkers"]) == ["wellformed", "stats", "queue", "availability", "logs"]
    html = (run_dir / "report.html").read_text()
    headline = verdict(result).headline
    assert f'<h1 id="verdict">{escape(headline)}</h1>' in html
    if result["valid"] is True:
        assert headline == f"No anomalies in {q['acknowledged_count']:,} acknowledged writes"
    for name in ("latency.png", "throughput.png", "lost.png"):
        assert (run_dir / "plots" / name).read_bytes()[:4] == b"\x89PNG"
    ops = load_history(run_dir / "history.jsonl").ops
    starts = [v for v in ops.loc[ops["process"] == "nemesis", "value"] if "start" in v]
    assert starts, "the scenario kills a node"
    faults = html[html.index('<section id="faults">') :]
    faults = faults[: faults.index("</section>")]
    assert faults.count("<td>kill</td>") == len(starts)
    availability = html[html.index('<section id="availability">') :]
    availability = availability[: availability.index("</section>")]
    assert availability.count("<td>kill</td>") == len(starts)  # one row per fault
    nodes = html[html.index('<section id="nodes">') :]
    for n in ("n1", "n2", "n3"):
        assert f"<td>{n}</td><td>read</td>" in nodes
    assert f"nats-server {result['versions']['nats_server']}" in html
    for rel in ("history.jsonl", "nodes/n1/nats-server.log", "nodes/n3/data.tar.gz"):
        assert f'href="{rel}"' in html and (run_dir / rel).is_file()
    assert "## " in (run_dir / "summary.md").read_text().splitlines()[0]


def test_progress_is_plain_when_stderr_is_not_a_terminal(real_run: tuple[Path, str]) -> None:
    _, stderr = real_run
    assert not ANSI.search(stderr)
    assert re.search(r"^\[\s*[\d.]+s\] main phase \(10s", stderr, re.M)
    assert re.search(r"^\s+5/10s  ok=[\d,]+ fail=[\d,]+ info=[\d,]+  active faults: ", stderr, re.M)


def test_report_and_show_on_the_real_folder(real_run: tuple[Path, str], tmp_path: Path) -> None:
    run_dir, _ = real_run
    copy = shutil.copytree(run_dir, tmp_path / "run")
    (copy / "report.html").unlink()
    cli = [sys.executable, "-m", "harness.cli"]
    done = subprocess.run([*cli, "report", str(copy)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (copy / "report.html").is_file()
    shown = subprocess.run([*cli, "show", str(copy)], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    verdict = json.loads((copy / "results.json").read_text())["valid"]
    assert ("VALID" if verdict is True else "INVALID") in shown.stdout


def test_real_report_in_headless_chromium(real_run: tuple[Path, str]) -> None:
    run_dir, _ = real_run
    page = headless.load((run_dir / "report.html").as_uri())
    assert page.console == []
    headline = verdict(results_json(run_dir)).headline
    assert f'<h1 id="verdict">{escape(headline)}</h1>' in page.dom
