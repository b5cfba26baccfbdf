"""The counter workload on a real 3-node cluster (nats-server 2.14.0): a kill run is valid.

Through the CLI: ``scenarios/counter.yaml`` for 12 s, the stream leader
SIGKILLed once and restarted. Every replica's final total of every counter
must equal the sum of the acknowledged increments plus some of the unknown
ones, and the totals the acks carried must fit one order (no anomaly at all).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chaosrun import assert_nothing_left, results_json, run_dir_of

from harness.history import load_history

pytestmark = pytest.mark.integration


def test_a_kill_run_keeps_every_acknowledged_increment(nats_chaos, tmp_path: Path) -> None:
    proc = nats_chaos(
        "run", "scenarios/counter.yaml", "--set", "time_limit=12",
        "--set", "faults=[{kind: kill, targets: leader}]",
        "--set", "schedule.quiet=3", "--set", "schedule.interval=30",
        "--set", "schedule.duration=3",
    )  # fmt: skip
    out, err = proc.communicate(timeout=240)
    run_dir = run_dir_of(tmp_path, "counter")
    result = results_json(run_dir)
    assert proc.returncode == 0, (out, err)
    c = result["checkers"]["counter"]
    assert out.splitlines()[0] == (
        f"VALID: {c['acknowledged_count']:,} acknowledged increments over 3 counters, "
        "every replica within bounds"
    )
    assert c["acknowledged_count"] > 500
    assert c["key_count"] == 3 and c["reading_count"] == 9
    assert c["lost_increment_count"] == c["phantom_increment_count"] == 0
    assert c["inconsistent_total_count"] == c["duplicate_total_count"] == 0
    assert c["divergence_count"] == 0 and c["unread_nodes"] == []
    for key in c["per_key"].values():  # every replica holds one total within the bounds
        (final,) = set(map(tuple, key["finals"].values()))
        assert key["low"] <= final[0] <= key["high"]
    ops = load_history(run_dir / "history.jsonl").ops
    kills = ops[(ops["process"] == "nemesis") & (ops["f"] == "kill")]
    assert len(kills) == 2  # one window: start and stop
    oks = ops[(ops["f"] == "incr") & (ops["type"] == "ok")]
    assert oks["total"].notna().all() and oks["seq"].notna().all()
    reads = ops[(ops["f"] == "read") & (ops["type"] == "ok")]
    assert sorted(reads["node"]) == ["n1", "n2", "n3"] and (reads["routes"] == 0).all()
    assert result["isolated_for_reads"] is True
    assert_nothing_left(result["tag"], tmp_path / "state")
