"""The kv workload on a real 3-node cluster (nats-server 2.14.0): a kill run is valid.

Through the CLI: ``scenarios/kv.yaml`` (an R3 bucket over 5 keys, gets through
the stream leader) for 12 s, the bucket's stream leader SIGKILLed once and
restarted. Every key must be linearizable, and every replica must hold each
key's last acknowledged write (no anomaly at all).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chaosrun import assert_nothing_left, results_json, run_dir_of

from harness.history import load_history

pytestmark = pytest.mark.integration


def test_a_kill_run_keeps_every_key_linearizable(nats_chaos, tmp_path: Path) -> None:
    proc = nats_chaos(
        "run", "scenarios/kv.yaml", "--set", "time_limit=12",
        "--set", "faults=[{kind: kill, targets: leader}]",
        "--set", "schedule.quiet=3", "--set", "schedule.interval=30",
        "--set", "schedule.duration=3",
    )  # fmt: skip
    out, err = proc.communicate(timeout=240)
    run_dir = run_dir_of(tmp_path, "kv")
    result = results_json(run_dir)
    assert proc.returncode == 0, (out, err)
    c = result["checkers"]["kv"]
    assert out.splitlines()[0] == (
        f"VALID: 5 keys linearizable ({c['op_count']:,} ops, {c['write_ok_count']:,} writes "
        "acknowledged); every replica holds each key's last write"
    )
    assert c["write_ok_count"] > 200 and c["refused_update_count"] > 0
    assert c["key_count"] == 5 and c["reading_count"] == 15 and c["unread_nodes"] == []
    assert c["linear"] == {
        "valid": True,
        "key_count": 5,
        "invalid_key_count": 0,
        "unknown_key_count": 0,
        "invalid_keys": [],
        "unknown_keys": [],
    }
    assert c["lost_write_count"] == c["divergence_count"] == 0
    assert c["direct_read_count"] == c["stale_read_count"] == 0  # reads: leader
    assert result["checkers"]["linear-kv"]["valid"] is True
    assert result["bucket"] == "chaos" and result["isolated_for_reads"] is True
    ops = load_history(run_dir / "history.jsonl").ops
    kills = ops[(ops["process"] == "nemesis") & (ops["f"] == "kill")]
    assert len(kills) == 2  # one window: start and stop
    fs = set(ops.loc[ops["process"] != "nemesis", "f"])
    assert fs == {"get", "put", "create", "update", "delete", "read"}
    oks = ops[(ops["type"] == "ok") & (ops["f"] != "read")]
    assert oks["revision"].notna().all()
    assert sum(c["by_f"][f]["ok"] for f in c["by_f"]) == len(oks)
    refused = ops[(ops["type"] == "fail") & ops["f"].isin(["update", "create"])]
    assert refused["error"].str.contains(r"\(err_code 10(?:071|164): ").any()
    reads = ops[(ops["f"] == "read") & (ops["type"] == "ok")]
    assert sorted(reads["node"]) == ["n1", "n2", "n3"] and (reads["routes"] == 0).all()
    assert len({repr(v) for v in reads["value"]}) == 1  # the replicas agree, entry for entry
    assert_nothing_left(result["tag"], tmp_path / "state")
