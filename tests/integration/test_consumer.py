"""The consumer workload on a real 3-node cluster: kills while consumers drain one durable
pull consumer, then the final drain; valid, every count consistent, nothing left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from chaosrun import assert_nothing_left, results_json, run_dir_of

from harness.history import load_history

pytestmark = pytest.mark.integration


def test_kills_while_consuming_lose_nothing_and_keep_the_acks(nats_chaos, tmp_path: Path) -> None:
    proc = nats_chaos(
        "run", "scenarios/consumer.yaml", "--set", "time_limit=14",
        "--set", "schedule.quiet=3", "--set", "schedule.interval=5", "--set", "schedule.duration=3",
    )  # fmt: skip
    out, err = proc.communicate(timeout=300)
    run_dir = run_dir_of(tmp_path, "consumer")
    result = results_json(run_dir)
    assert proc.returncode == 0, (out, err)
    c = result["checkers"]["consumer"]
    acked = c["acknowledged_count"]
    assert acked > 0
    assert out.splitlines()[0] == (
        f"VALID: {acked:,} acknowledged publishes, all delivered; 0 redelivered after ack"
    )
    assert result["anomalies"] == []
    assert c["lost_to_consumer_count"] == 0
    assert c["redelivered_after_ack_count"] == 0
    assert c["out_of_order_count"] == 0
    assert c["unexpected_count"] == 0
    assert c["consumer_state_mismatches"] == []
    assert c["delivered_count"] >= acked  # unknown publishes may have been stored too
    assert c["drained"] is True
    state = c["consumer_state"]
    assert state["present"] is True
    assert state["num_pending"] == 0 and state["num_ack_pending"] == 0
    assert state["ack_floor_stream"] >= c["highest_contiguous_ack"] > 0

    ops = load_history(run_dir / "history.jsonl").ops
    kills = [v for v in ops.loc[ops["f"] == "kill", "value"] if "start" in v]
    assert len(kills) >= 2
    fetches = ops[(ops["f"] == "fetch") & (ops["type"] == "invoke")]
    workers = {v["worker"] for v in fetches["value"]}
    assert workers == set(range(3, 9))  # 9 workers, 3 of them producers
    assert sorted(set(fetches["node"])) == ["n1", "n2", "n3"]
    drains = ops[(ops["f"] == "drain") & (ops["type"] == "ok")]
    assert len(drains) == 1
    assert_nothing_left(result["tag"], tmp_path / "state")
