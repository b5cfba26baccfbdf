"""A real dedup run: kills on a local 3-node cluster, every acknowledged id stored once."""

from __future__ import annotations

from pathlib import Path

import pytest
from chaosrun import assert_nothing_left, results_json, run_dir_of

from harness.history import load_history

pytestmark = pytest.mark.integration


def test_dedup_kill_run_stores_each_acknowledged_id_once(nats_chaos, tmp_path: Path) -> None:
    proc = nats_chaos(
        "run", "scenarios/dedup.yaml", "--set", "time_limit=15",
        "--set", "schedule.quiet=3", "--set", "schedule.interval=6", "--set", "schedule.duration=3",
    )  # fmt: skip
    out, err = proc.communicate(timeout=240)
    run_dir = run_dir_of(tmp_path, "dedup")
    result = results_json(run_dir)
    assert proc.returncode == 0, (out, err)
    d = result["checkers"]["dedup"]
    acked = d["acknowledged_count"]
    assert acked > 1000
    assert out.splitlines()[0] == f"VALID: {acked:,} ids acknowledged, each stored once"
    assert result["anomalies"] == []
    for key in ("duplicated", "lost", "phantom_duplicate", "unexpected", "failed_but_read"):
        assert d[f"{key}_count"] == 0, key
    assert (d["reaccepted_count"], d["moved_count"], d["divergence"]["count"]) == (0, 0, 0)
    assert d["duplicate_window_s"] == 120.0
    assert result["isolated_for_reads"] is True

    ops = load_history(run_dir / "history.jsonl").ops
    pubs = ops[(ops["f"] == "publish") & (ops["type"] == "ok")]
    first = pubs[~pubs["duplicate"].astype(bool)].groupby("value")["seq"].first()
    dups = pubs[pubs["duplicate"].astype(bool)]
    assert len(dups) == d["duplicate_ack_count"] > 0  # the resends, at least
    # a duplicate ack names the sequence the first copy was stored at (when that one was acked)
    known = dups[dups["value"].isin(first.index)]
    assert (known["seq"].to_numpy() == first.reindex(known["value"]).to_numpy()).all()
    reads = ops[(ops["f"] == "read") & (ops["type"] == "ok")]
    assert sorted(reads["node"]) == ["n1", "n2", "n3"]
    for triples in reads["value"]:
        ids = [msg_id for _, msg_id, _ in triples]
        assert len(ids) == len(set(ids)) == d["read_count"]
        assert all(msg_id == value for _, msg_id, value in triples)
    assert_nothing_left(result["tag"], tmp_path / "state")
