"""Power loss on lazyfs-backed nodes: default sync loses acknowledged writes, always does not.

One ``compare`` over ``server.sync_interval={2m (the default), always}`` covers both
verdicts and checks the comparison files; a single-node run (leader, then a
random node) checks that one node losing power is run and reported.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import headless
import pytest
from chaosrun import assert_nothing_left, results_json, run_dir_of
from folders import the_folder

from harness.history import load_history

pytestmark = pytest.mark.integration

SHORT = ["--set", "time_limit=16", "--set", "schedule.quiet=6"]


def test_compare_sync_interval_2m_vs_always(nats_chaos, tmp_path: Path) -> None:
    proc = nats_chaos(
        "compare", "scenarios/power-loss-coordinated.yaml",
        "--vary", "server.sync_interval=2m,always", *SHORT,
        "--results-dir", str(tmp_path / "results"),
    )  # fmt: skip
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err
    cmp_dir = the_folder(tmp_path / "results" / "compare")
    assert f"comparison: {cmp_dir}" in out
    for name in ("compare.md", "compare.csv", "compare.png", "compare.html", "compare.json"):
        assert (cmp_dir / name).stat().st_size > 0
    page = headless.load((cmp_dir / "compare.html").as_uri())
    assert page.console == []
    reports = [r["report"] for r in json.loads((cmp_dir / "compare.json").read_text())["rows"]]
    assert len(reports) == 2 and all((cmp_dir / r).is_file() for r in reports)
    assert all(f'href="{r}"' in page.dom for r in reports)
    assert "publish latency p99 (ms)" in page.dom
    with open(cmp_dir / "compare.csv") as fh:
        rows = {r["variant"]: r for r in csv.DictReader(fh)}
    default = rows["server.sync_interval=2m"]
    always = rows["server.sync_interval=always"]
    assert int(default["acknowledged"]) > 0 and int(always["acknowledged"]) > 0
    assert int(default["lost"]) > 0 and default["verdict"] == "INVALID"
    assert "lost" in default["anomalies"]
    assert int(always["lost"]) == 0 and always["verdict"] == "valid"
    assert "| server.sync_interval=2m | 1 |" in out  # the table is printed

    lossy = Path(default["run_dir"])
    result = results_json(lossy)
    assert result["valid"] is False
    assert "Lost writes were acknowledged between" in (lossy / "summary.md").read_text()
    ops = load_history(lossy / "history.jsonl").ops
    starts = [v for v in ops.loc[ops["f"] == "power-loss", "value"] if "start" in v]
    assert starts and starts[0]["coordinated"] is True
    assert sorted(starts[0]["dropped_bytes"]) == ["n1", "n2", "n3"]
    assert sum(starts[0]["dropped_bytes"].values()) > 0
    for run in (lossy, Path(always["run_dir"])):
        assert_nothing_left(results_json(run)["tag"], tmp_path / "state")


def test_single_node_power_loss_runs_and_reports(nats_chaos, tmp_path: Path) -> None:
    proc = nats_chaos(
        "run", "scenarios/power-loss-single.yaml", "--set", "time_limit=22",
        "--set", "schedule.quiet=4", "--set", "schedule.interval=8",
    )  # fmt: skip
    out, err = proc.communicate(timeout=300)
    assert proc.returncode in (0, 1), err
    run_dir = run_dir_of(tmp_path, "power-loss-single")
    result = results_json(run_dir)
    q = result["checkers"]["queue"]
    assert q["acknowledged_count"] > 0
    assert out.splitlines()[0].split(":")[0] in ("VALID", "INVALID")
    ops = load_history(run_dir / "history.jsonl").ops
    starts = [v for v in ops.loc[ops["f"] == "power-loss", "value"] if "start" in v]
    assert len(starts) == 2 and [s["targets"] for s in starts] == ["leader", "follower"]
    assert all(len(s["nodes"]) == 1 and s["coordinated"] is False for s in starts)
    assert set(q["per_node"]) == {"n1", "n2", "n3"}
    # every replica is read, also one whose meta.inf the power loss corrupted (the
    # recovery wait hands it the leadership so that it serves direct gets)
    assert all(d["status"] == "read" for d in q["per_node"].values()), q["per_node"]
    assert result["recovery"]["converged"] is True
    lazyfs = json.loads((run_dir / "results.json").read_text())["lazyfs"]
    # counters survive the remount that follows every power loss, and each loss says how
    # many fsyncs its node had made by then
    hit = [s["nodes"][0] for s in starts]
    for node in ("n1", "n2", "n3"):
        assert lazyfs[node]["mounts"] == 1 + hit.count(node), lazyfs
    for s in starts:
        [node] = s["nodes"]
        assert set(s["fsyncs"]) == {node} and s["fsyncs"][node] > 0
        assert lazyfs[node]["fsyncs"] >= s["fsyncs"][node]
    assert_nothing_left(result["tag"], tmp_path / "state")
