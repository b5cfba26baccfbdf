"""Replica anomalies on a real cluster: a replica left behind at the recovery bound is
``stalled``, not ``divergent``; the availability figures of the same run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from chaosrun import assert_nothing_left, results_json, run_dir_of

from harness.history import load_history

pytestmark = pytest.mark.integration

# One follower SIGSTOPped from 1 s until 0.01 s before the main phase ends; with a recovery
# bound of 0 s the wait looks once, right after the heal: the follower is still thousands
# of stream sequences behind (seen: 950 of 8,168), and stays behind through its read.
STALLED = {
    "name": "pause-stalled",
    "description": "A follower paused for most of the run; no time to catch up before reads.",
    "nodes": 3,
    "seed": 7,
    "time_limit": 12,
    "workload": {"rate": 1000, "timeout": 1},
    "faults": [{"kind": "pause", "targets": "follower"}],
    "schedule": {"quiet": 1, "interval": 20, "duration": 10.99},
    "recovery": {"timeout": 0, "read_timeout": 15},
    "expect": {"anomalies": ["stalled"]},
}


def test_a_follower_paused_past_the_recovery_bound_is_stalled_not_divergent(
    nats_chaos, tmp_path: Path
) -> None:
    path = tmp_path / "pause-stalled.yaml"
    path.write_text(yaml.safe_dump(STALLED))
    proc = nats_chaos("run", str(path))
    out, err = proc.communicate(timeout=180)
    run_dir = run_dir_of(tmp_path, "pause-stalled")
    result = results_json(run_dir)
    assert proc.returncode == 0, (out, err)  # the expected anomaly, nothing else
    assert result["anomalies"] == ["stalled"]

    ops = load_history(run_dir / "history.jsonl").ops
    nemesis = ops[ops["process"] == "nemesis"]
    start = next(v for v in nemesis["value"] if v.get("start") == "pause")
    (paused,) = start["nodes"]
    assert f"INVALID: STALLED {paused} (" in out and "divergent" not in out
    assert start["leaders"]["stream"] not in (None, paused)  # a follower, as planned
    assert start["leaders"]["meta"] is not None
    recovery = next(v for v in nemesis["value"] if v.get("settle") == "recovery")
    assert recovery["converged"] is False and recovery["bound"] == 0

    q = result["checkers"]["queue"]
    assert list(q["stalled"]) == [paused]
    st = q["stalled"][paused]
    views = result["recovery"]["nodes"]
    top = max(v["last_seq"] for v in views.values())
    assert st["at_bound"]["last_seq"] == views[paused]["last_seq"] < top
    assert st["at_bound"]["behind"] == top - views[paused]["last_seq"] > 0
    if st["read"]:  # it served its (stale) replica: a prefix of the others, not a split
        assert st["prefix_consistent"] is True
        assert q["per_node"][paused]["status"] == "read"
    assert q["divergence"]["count"] == 0
    assert q["holes"] == {} and q["stream_lost"] == {}
    assert q["lost_count"] == 0
    row = next(r for r in q["summary"]["nodes"] if r["node"] == paused)
    assert row["status"] == "stalled"

    a = result["checkers"]["availability"]
    (fault,) = a["faults"]
    assert fault["kind"] == "pause" and fault["nodes"] == [paused]
    assert fault["acked"] > 1000  # the other two nodes kept the stream available
    assert a["recovery"]["converged"] is False
    assert a["longest_gap"]["seconds"] < 6  # at most a publish timeout, never the pause
    html = (run_dir / "report.html").read_text()
    assert 'id="availability"' in html and "Stalled replicas" in html
    assert_nothing_left(result["tag"], tmp_path / "state")
