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
    index = (tmp_path / "cli" / "index.html").read_text()  # rewritten after the command
    assert 'data-kind="compare"' in index and "quick: server.sync_interval=" in index


def test_spread_gives_mean_and_range_per_variant() -> None:
    rows = [
        {"variant": "a", "p99_ms": 10.0}, {"variant": "b", "p99_ms": 60.0},
        {"variant": "a", "p99_ms": 14.0}, {"variant": "b", "p99_ms": None},
    ]  # fmt: skip
    assert cmp.spread(rows, "p99_ms") == [("a", 12.0, 10.0, 14.0, 2), ("b", 60.0, 60.0, 60.0, 1)]


def test_a_repeated_comparison_on_the_fake_cluster_makes_a_page(tmp_path: Path) -> None:
    import json

    import headless
    import yaml
    from fakerun import FAST

    scenario = tmp_path / "fake.yaml"
    scenario.write_text(yaml.safe_dump({"name": "fake", "seed": 40, **FAST}))
    vary = ["server.sync_interval=default,always"]
    out, rows = cmp.compare(str(scenario), ["seed=7"], vary, 2, tmp_path / "res",
                            echo=lambda _m: None, backend=fake.backend()[0])  # fmt: skip
    assert [(r["variant"], r["repeat"]) for r in rows] == [
        ("server.sync_interval=default", 1), ("server.sync_interval=always", 1),
        ("server.sync_interval=default", 2), ("server.sync_interval=always", 2),
    ]  # fmt: skip
    data = json.loads((out / "compare.json").read_text())
    assert data["seed"] == 7 and data["repeat"] == 2 and data["vary"] == vary
    seeds = sorted({json.loads((Path(r["run_dir"]) / "results.json").read_text())["seed"]
                    for r in rows})  # fmt: skip
    assert seeds == [7, 8]  # --seed is the first repeat's, repeat k adds k-1
    links = [r["report"] for r in data["rows"]]
    assert all(link and (out / link).is_file() for link in links), links
    page = headless.load((out / "compare.html").as_uri(), screenshot=tmp_path / "compare-shot.png")
    assert page.console == []
    for link in links:  # every run's report is linked, relative to the page
        assert f'href="{link}"' in page.dom
    assert 'src="data:image/png;base64,' in page.dom  # the chart is inside the page
    assert page.dom.count("<tr") == 1 + 2 + 1 + 4  # head + 2 variants, head + 4 runs
    for title in ("publish latency p50 (ms)", "publish latency p99 (ms)", "acknowledged publishes"):
        assert title in page.dom
    png = (out / "compare.png").read_bytes()
    assert png[:4] == b"\x89PNG"


def test_compare_cli_documents_its_exit_codes_and_takes_backend_and_seed() -> None:
    res = CliRunner().invoke(main, ["compare", "--help"])
    assert res.exit_code == 0
    for text in ("--backend", "--seed", "Exit codes:", "4    a run broke", "compare.html"):
        assert text in res.output, text
