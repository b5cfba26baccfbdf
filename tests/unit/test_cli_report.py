"""``report``, ``show`` and ``check --report`` on a fake run folder (CliRunner); run progress."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console
from test_report import LOST, SCRIPT, make_run

from harness.cli import main
from harness.progress import Progress, Status


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("cli") / "results" / "quick" / "20260101T000000")


@pytest.fixture
def run(fake: Path, tmp_path: Path) -> Path:
    """A private copy of the fake run under tmp_path/results/quick/, with its latest link."""
    d = tmp_path / "results" / "quick" / fake.name
    shutil.copytree(fake, d)
    (d.parent / "latest").symlink_to(d.name)
    return d


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def test_report_regenerates_html_and_summary(cli: CliRunner, run: Path) -> None:
    for name in ("report.html", "summary.md"):
        (run / name).unlink()
    shutil.rmtree(run / "plots")
    res = cli.invoke(main, ["report", str(run)])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0].startswith("INVALID: LOST 3 of ")
    assert res.stdout.splitlines()[1] == f"report: {run / 'report.html'}"
    html = (run / "report.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and SCRIPT not in html
    assert (run / "summary.md").read_text().startswith("## ❌ INVALID · quick")
    assert len(list((run / "plots").glob("*.png"))) == 3


def test_report_of_a_crashed_run_checks_its_history(cli: CliRunner, run: Path) -> None:
    (run / "results.json").unlink()
    res = cli.invoke(main, ["report", str(run)])
    assert res.exit_code == 0, res.output
    result = json.loads((run / "results.json").read_text())
    assert result["checkers"]["queue"]["lost"] == LOST
    assert result["scenario"] == "quick" and result["seed"] == 1
    assert res.stderr.splitlines() == [
        f"warning: {run / 'results.json'}: missing; checking history.jsonl again"
    ]


def test_report_of_a_scenario_folder_uses_latest(cli: CliRunner, run: Path) -> None:
    (run / "report.html").unlink()
    res = cli.invoke(main, ["report", str(run.parent)])
    assert res.exit_code == 0, res.output
    assert (run / "report.html").is_file()


@pytest.mark.parametrize("what", ["missing", "empty", "file"])
def test_report_bad_folder_is_exit_2_one_line(cli: CliRunner, tmp_path: Path, what: str) -> None:
    target = tmp_path / "x"
    if what == "empty":
        target.mkdir()
    elif what == "file":
        target.write_text("hi")
    res = cli.invoke(main, ["report", str(target)])
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and "not a result folder" in res.stderr


@pytest.mark.parametrize(("content", "why"), [("{oops", "not readable JSON"), ("", "empty")])
def test_report_with_broken_results_json_checks_the_history_again(
    cli: CliRunner, run: Path, content: str, why: str
) -> None:
    before = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(content)
    res = cli.invoke(main, ["report", str(run)])
    assert res.exit_code == 0, res.output
    [warning] = res.stderr.splitlines()
    assert warning.startswith("warning: ") and f"results.json: {why}" in warning
    again = json.loads((run / "results.json").read_text())
    assert again["valid"] == before["valid"] and again["anomalies"] == before["anomalies"]
    assert "LOST 3 of 369" in res.stdout


def test_report_with_broken_results_json_and_no_history_is_one_line_exit_2(
    cli: CliRunner, run: Path
) -> None:
    (run / "results.json").write_text("")
    (run / "history.jsonl").unlink()
    res = cli.invoke(main, ["report", str(run)])
    assert res.exit_code == 2
    [line] = res.stderr.splitlines()
    assert "results.json: empty; and no history.jsonl to check again" in line
    assert (run / "results.json").read_text() == ""  # nothing invented


def test_show_prints_verdict_counts_and_nodes(cli: CliRunner, run: Path) -> None:
    res = cli.invoke(main, ["show", str(run)])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "INVALID" in out and "LOST 3 of 369 acknowledged writes" in out
    assert "sync_interval" in out and "2.14.0" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()[:2] == "n2"}
    assert rows["n2"][:5] == ["n2", "│", "holes", "│", "356"]  # n2 lacks seqs 90-99
    assert "faults: kill ×1 (10.0s – 15.0s)" in out
    assert "longest gap without an acknowledged write: 0.20 s (from 0.60 s to 0.80 s)" in out
    assert "kill on n1 (10.00–15.00 s): first ack 0.10 s after it; 4 × no responders <b>" in out
    assert f"report: {run / 'report.html'}" in out


def test_show_latest_picks_the_newest_latest_link(cli: CliRunner, run: Path) -> None:
    results = run.parent.parent
    other = results / "kill" / "20250101T000000"
    shutil.copytree(run, other)
    result = json.loads((other / "results.json").read_text())
    result["scenario"] = "kill-older"
    (other / "results.json").write_text(json.dumps(result))
    (other.parent / "latest").symlink_to(other.name)
    os.utime(other.parent / "latest", (1, 1), follow_symlinks=False)
    res = cli.invoke(main, ["show", "latest", "--results-dir", str(results)])
    assert res.exit_code == 0, res.output
    assert "kill-older" not in res.stdout and "quick" in res.stdout
    os.utime(other.parent / "latest", None, follow_symlinks=False)
    os.utime(run.parent / "latest", (1, 1), follow_symlinks=False)
    res = cli.invoke(main, ["show", "--results-dir", str(results)])
    assert "kill-older" in res.stdout


def test_show_scenario_folder(cli: CliRunner, run: Path) -> None:
    res = cli.invoke(main, ["show", str(run.parent)])
    assert res.exit_code == 0 and "LOST 3 of" in res.stdout


def test_show_without_runs_is_exit_2(cli: CliRunner, tmp_path: Path) -> None:
    res = cli.invoke(main, ["show", "--results-dir", str(tmp_path)])
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and "no runs found" in res.stderr


def test_show_without_results_json_says_how_to_get_one(cli: CliRunner, run: Path) -> None:
    (run / "results.json").unlink()
    res = cli.invoke(main, ["show", str(run)])
    assert res.exit_code == 2
    assert f"nats-chaos report {run}" in res.stderr and res.stderr.count("\n") == 1


def test_check_report_writes_a_report_for_any_history(
    cli: CliRunner, fake: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    res = cli.invoke(main, ["check", str(fake / "history.jsonl"), "--report", str(out)])
    assert res.exit_code == 1  # the history loses writes
    assert res.stdout.startswith("INVALID: LOST 3 of ")
    assert f"report: {out / 'report.html'}" in res.stdout
    for name in ("results.json", "summary.md", "report.html", "plots/latency.png"):
        assert (out / name).is_file(), name
    html = (out / "report.html").read_text()
    assert (fake / "history.jsonl").resolve().as_uri() in html  # the history lives elsewhere
    assert "history check" in html


def test_check_report_into_a_file_is_exit_2(cli: CliRunner, fake: Path, tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("")
    res = cli.invoke(main, ["check", str(fake / "history.jsonl"), "--report", str(f)])
    assert res.exit_code == 2 and "--report needs a directory" in res.stderr


# ---- progress during `run` -------------------------------------------------------


def test_progress_off_a_terminal_prints_plain_lines() -> None:
    lines: list[str] = []
    p = Progress(lines.append, live=False)
    assert p.interval == 5.0
    with p.phase("main phase (12s, 1 faults planned)", 1.25):
        p.update(Status(5.2, 12, 1200, 199, 0, ["kill"]))
    assert lines == [
        "[   1.2s] main phase (12s, 1 faults planned)",
        "             5/12s  ok=1,200 fail=199 info=0  active faults: kill",
    ]


def test_progress_on_a_terminal_draws_a_live_line() -> None:
    lines: list[str] = []
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    p = Progress(lines.append, live=True, console=console)
    assert p.interval < 1
    with p.phase("main phase (12s, 1 faults planned)", 0.0):
        p.update(Status(7.5, 12, 2048, 3, 1, ["pause"]))
        time.sleep(0.3)  # the live display refreshes 8 times a second
    assert lines == ["[   0.0s] main phase (12s, 1 faults planned)"]  # no plain status line
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert "main phase" in drawn and "7.5/12s" in drawn
    assert "acknowledged 2,048" in drawn and "3 fail · 1 info" in drawn and "faults: pause" in drawn


def test_check_composes_wellformed_and_a_broken_history_is_unknown(
    cli: CliRunner, fake: Path, tmp_path: Path
) -> None:
    lines = (fake / "history.jsonl").read_bytes().splitlines(keepends=True)
    last_publish_ok = max(
        i for i, line in enumerate(lines) if b'"ok"' in line and b"publish" in line
    )
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"".join(lines[:last_publish_ok] + lines[last_publish_ok + 1 :]))
    res = cli.invoke(main, ["check", str(history), "--json"])
    result = json.loads(res.stdout)
    names = ["wellformed", "stats", "queue", "availability"]
    assert list(result["checkers"]) == names  # no --nodes-dir: no logs
    assert result["checkers"]["wellformed"]["counts"]["missing-completion"] == 1
    assert result["valid"] is False  # the queue checker's losses stand; unknown never hides False
    cut = cli.invoke(main, ["check", str(history), "--json", "--cut-off"])
    assert json.loads(cut.stdout)["checkers"]["wellformed"]["valid"] is True

    res = cli.invoke(
        main, ["check", str(fake / "history.jsonl"), "--nodes-dir", str(fake / "nodes")]
    )
    assert res.exit_code == 1 and res.stdout.startswith("INVALID: LOST 3 of ")
    res = cli.invoke(main, ["check", str(fake / "history.jsonl"), "--json", "--nodes-dir",
                            str(fake / "nodes")])  # fmt: skip
    assert json.loads(res.stdout)["checkers"]["logs"]["counts"]["corrupt"] == 1


def test_check_workload_choices_come_from_the_registry(cli: CliRunner, fake: Path) -> None:
    from harness.workloads import REGISTRY

    res = cli.invoke(main, ["check", str(fake / "history.jsonl"), "--workload", "nope"])
    assert res.exit_code == 2
    assert all(name in res.output for name in REGISTRY)


def test_check_of_a_malformed_but_lossless_history_is_unknown(
    cli: CliRunner, tmp_path: Path
) -> None:
    ops = [
        {"index": 0, "time": 0, "type": "invoke", "process": 0, "f": "publish", "value": 1},
        {"index": 1, "time": 1, "type": "ok", "process": 0, "f": "publish", "value": 1},
        {"index": 2, "time": 2, "type": "ok", "process": 0, "f": "publish", "value": 1},
        {"index": 3, "time": 3, "type": "invoke", "process": 9, "f": "read", "node": "n1"},
        {"index": 4, "time": 4, "type": "ok", "process": 9, "f": "read", "node": "n1",
         "value": [[1, 1]]},
    ]  # fmt: skip
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps(o) + "\n" for o in ops))
    res = cli.invoke(main, ["check", str(history)])
    assert res.exit_code == 1
    assert res.stdout.strip() == (
        "UNKNOWN: the history is not well-formed: "
        "completion without an invoke in flight ×1 (line 3)"
    )
