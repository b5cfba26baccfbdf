"""The batch workload on a real 3-node cluster (nats-server 2.14.0): a kill run is valid.

Through the CLI: ``scenarios/batch.yaml`` for 12 s, the stream leader
SIGKILLed twice (staged batches die with it) and restarted. On every
replica each committed batch must be whole, in batch order at consecutive
stream sequences ending at the acknowledged one, each failed batch absent
and each unknown one all or nothing: no anomaly at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chaosrun import assert_nothing_left, results_json, run_dir_of

from harness.history import load_history

pytestmark = pytest.mark.integration


def test_a_leader_kill_run_keeps_every_batch_whole(nats_chaos, tmp_path: Path) -> None:
    proc = nats_chaos(
        "run", "scenarios/batch.yaml", "--set", "time_limit=12",
        "--set", "faults=[{kind: kill, targets: leader}]",
        "--set", "schedule.quiet=2", "--set", "schedule.interval=5",
        "--set", "schedule.duration=2",
    )  # fmt: skip
    out, err = proc.communicate(timeout=240)
    run_dir = run_dir_of(tmp_path, "batch")
    result = results_json(run_dir)
    assert proc.returncode == 0, (out, err)
    b = result["checkers"]["batch"]
    committed, messages = b["committed_count"], b["committed_message_count"]
    assert out.splitlines()[0] == (
        f"VALID: {committed:,} committed batches ({messages:,} messages), "
        "each whole and contiguous on every replica"
    )
    assert committed > 300 and result["anomalies"] == []
    for key in ("partial", "split", "failed_visible", "lost", "duplicated", "unexpected"):
        assert b[f"{key}_count"] == 0, key
    assert (b["bad_ack_count"], b["moved_count"], b["divergence"]["count"]) == (0, 0, 0)
    assert b["unread_nodes"] == [] and result["isolated_for_reads"] is True
    assert (b["stream_lost"], b["stalled"], b["holes"]) == ({}, {}, {})  # the replica analysis
    how = {"type": "ok", "via": "live", "direct": "batched", "tries": 1}
    assert result["final_reads"] == dict.fromkeys(["n1", "n2", "n3"], how)
    a = result["checkers"]["availability"]  # over the batch commits
    assert a["writes"] == ["batch"] and a["acknowledged"] == committed
    assert [f["kind"] for f in a["faults"]] == ["kill", "kill"]

    ops = load_history(run_dir / "history.jsonl").ops
    kills = ops[(ops["process"] == "nemesis") & (ops["f"] == "kill")]
    assert len(kills) == 4  # two windows: start and stop each
    done = ops[(ops["f"] == "batch") & (ops["type"] != "invoke")]
    oks = done[done["type"] == "ok"]
    assert len(oks) == committed
    assert (oks["count"] == oks["value"].map(lambda v: len(v[1]))).all()  # the ack's size
    sent = {bid: values for bid, values in done["value"]}
    stored_whole = {bid for bid, _ in oks["value"]}
    reads = ops[(ops["f"] == "read") & (ops["type"] == "ok")]
    assert sorted(reads["node"]) == ["n1", "n2", "n3"] and (reads["routes"] == 0).all()
    first, *others = list(reads["value"])
    assert all(rows == first for rows in others)  # every replica holds the same messages
    for seq, bid, pos, value in first:  # each message under the headers it was sent with
        assert sent[bid][pos - 1] == value, (seq, bid, pos, value)
    held = {bid for _, bid, _, _ in first}
    assert stored_whole <= held
    assert len(first) == messages + sum(len(sent[i]) for i in held - stored_whole)
    assert_nothing_left(result["tag"], tmp_path / "state")
