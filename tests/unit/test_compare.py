"""compare rows, markdown, CSV and chart from results (no runs): figures come from the headline."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checkers.compose import merge
from checkers.queue import summarize
from harness import compare as cmp
from harness.backends import fake
from harness.cli import main


def result(acked: int, lost: int, backs: tuple[float | None, ...] = ()) -> dict[str, Any]:
    q = {"valid": not lost, "acknowledged_count": acked, "lost_count": lost}
    q["anomalies"] = ["lost"] if lost else []
    stats = {
        "valid": True,
        "publish_rate": 812.34,
        "latency_ms": {"publish": {"p50": 1.5, "p99": 9.0}},
    }
    faults = [{"first_ack_after_s": b} for b in backs]
    avail = {"valid": True, "longest_gap": {"seconds": 4.2}, "faults": faults}
    checkers = {"stats": stats, "queue": q | {"summary": summarize(q)}, "availability": avail}
    return merge(checkers, headline="queue")


def test_rows_markdown_csv_and_chart(tmp_path: Path) -> None:
    rows = [
        cmp.row(
            cmp.Variant(("server.sync_interval=default",)),
            1,
            result(1000, 250, (1.5, None)),
            tmp_path / "a",
        ),
        cmp.row(
            cmp.Variant(("server.sync_interval=always",)),
            1,
            result(800, 0, (0.5, 2.5)),
            tmp_path / "b",
        ),
    ]
    assert rows[0] | {"_rate": None} == {
        "variant": "server.sync_interval=default", "repeat": 1,
        "acknowledged": 1000, "lost": 250, "lost_pct": 25.0,
        "acked_per_s": 812.3, "p50_ms": 1.5, "p99_ms": 9.0,
        "longest_gap_s": 4.2, "slowest_back_s": "never",
        "anomalies": "lost", "verdict": "INVALID", "run_dir": str(tmp_path / "a"), "_rate": None,
    }  # fmt: skip
    assert rows[1]["verdict"] == "valid"
    assert (rows[1]["longest_gap_s"], rows[1]["slowest_back_s"]) == (4.2, 2.5)
    assert cmp.columns(rows) == [
        "variant", "repeat", "acknowledged", "lost", "lost_pct", "acked_per_s", "p50_ms",
        "p99_ms", "longest_gap_s", "slowest_back_s", "anomalies", "verdict", "run_dir",
    ]  # fmt: skip
    cmp.write(tmp_path, rows, "power loss")
    md = (tmp_path / "compare.md").read_text()
    assert "| variant | repeat | acknowledged | lost | lost_pct | acked_per_s |" in md
    assert "| server.sync_interval=default | 1 | 1,000 | 250 | 25.0 | 812.3 |" in md
    with open(tmp_path / "compare.csv") as fh:
        got = list(csv.DictReader(fh))
    assert [(r["lost"], r["lost_pct"]) for r in got] == [("250", "25.0"), ("0", "0.0")]
    assert "_rate" not in got[0]
    assert (tmp_path / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert cmp._rate(rows) == ("lost_pct", "lost acknowledged writes (%)")


def test_a_result_without_a_headline_still_makes_a_row(tmp_path: Path) -> None:
    broken = merge({"queue": {"valid": "unknown", "error": "checker queue raised KeyError"}})
    r = cmp.row(cmp.Variant(("x=1",)), 1, broken, tmp_path)
    assert r["verdict"] == "unknown" and "acknowledged" not in r
    assert cmp._rate([r]) is None
    cmp.write(tmp_path, [r], "t")  # throughput alone is charted
    assert (tmp_path / "compare.png").is_file()


def test_an_interrupted_comparison_lists_what_it_did_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.runner import RunOutcome

    calls: list[Any] = []

    def execute(sc: Any, opts: Any) -> RunOutcome:
        calls.append(sc)
        return RunOutcome(tmp_path / "run", result(100, 0), "SIGINT")

    monkeypatch.setattr(cmp, "execute", execute)
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "quick.yaml"
    vary = ["server.sync_interval=default,always,10s"]
    out, rows = cmp.compare(str(scenario), [], vary, 1, tmp_path / "res", echo=lambda _m: None,
                            backend=fake.backend()[0])  # fmt: skip
    assert len(calls) == 1
    assert [r["verdict"] for r in rows] == [
        "valid", "not run (interrupted by SIGINT)", "not run (interrupted by SIGINT)",
    ]  # fmt: skip
    assert cmp.interrupted(rows) == "SIGINT"
    md = (out / "compare.md").read_text()
    assert md.count("not run (interrupted by SIGINT)") == 2 and "_interrupted" not in md
    monkeypatch.setattr("harness.compare.execute", execute)
    res = CliRunner().invoke(main, ["compare", str(scenario), "--vary", vary[0],
                                    "--results-dir", str(tmp_path / "cli")])  # fmt: skip
    assert res.exit_code == 130, res.output
