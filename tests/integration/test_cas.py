"""The cas workload on a real 3-node cluster (nats-server 2.14.0): a leader kill run is valid.

Through the CLI: ``scenarios/cas.yaml`` for 12 s, the stream leader
SIGKILLed once and restarted. Every key's CAS writes and leader reads must
be linearizable, no expected sequence may have two winners, and every
replica must end holding each key's last write (no anomaly at all). Stale
direct reads are allowed and only counted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chaosrun import assert_nothing_left, results_json, run_dir_of

from harness.history import load_history

pytestmark = pytest.mark.integration


def test_a_leader_kill_run_is_linearizable_with_one_winner_per_sequence(
    nats_chaos, tmp_path: Path
) -> None:
    proc = nats_chaos(
        "run", "scenarios/cas.yaml", "--set", "time_limit=12",
        "--set", "faults=[{kind: kill, targets: leader}]",
        "--set", "schedule.quiet=3", "--set", "schedule.interval=30",
        "--set", "schedule.duration=3",
    )  # fmt: skip
    out, err = proc.communicate(timeout=240)
    run_dir = run_dir_of(tmp_path, "cas")
    result = results_json(run_dir)
    assert proc.returncode == 0, (out, err)
    c = result["checkers"]["cas"]
    assert out.splitlines()[0] == (
        f"VALID: {c['cas_ok_count']:,} CAS writes on 8 keys linearizable; "
        f"{c['stale_read_count']:,} of {c['direct_read_count']:,} direct reads stale"
    )
    assert result["anomalies"] == []
    assert c["cas_ok_count"] > 100 and c["cas_fail_count"] > 0  # the writers contend
    assert c["direct_read_count"] > 20
    assert c["key_count"] == 8 and c["linear"]["key_count"] == 8
    assert c["linear"]["invalid_key_count"] == c["linear"]["unknown_key_count"] == 0
    assert c["double_winner_count"] == c["lost_count"] == 0
    assert c["phantom_read_count"] == c["divergence_count"] == 0
    assert c["unread_nodes"] == []
    ops = load_history(run_dir / "history.jsonl").ops
    unknown = ops[(ops["f"] == "cas") & (ops["type"] == "info")]
    maybe = {v[1][1] for v in unknown["value"]}  # values of CAS writes of unknown outcome
    for key in c["finals"].values():  # the replicas agree on the last acknowledged write or
        (held,) = set(map(tuple, key["nodes"].values()))  # on a later one that timed out
        assert held == tuple(key["acked"]) or (held[0] > key["acked"][0] and held[1] in maybe)
    kills = ops[(ops["process"] == "nemesis") & (ops["f"] == "kill")]
    assert len(kills) == 2  # one window: start and stop
    wins = ops[(ops["f"] == "cas") & (ops["type"] == "ok")]
    assert len(wins) == c["cas_ok_count"]
    assert wins["seq"].notna().all() and wins["expected_seq"].notna().all()
    assert wins["seq"].is_unique  # one stored message per winner
    reads = ops[(ops["f"] == "read-node") & (ops["type"] == "ok")]
    assert sorted(reads["node"]) == ["n1", "n2", "n3"] and (reads["routes"] == 0).all()
    assert result["isolated_for_reads"] is True
    assert_nothing_left(result["tag"], tmp_path / "state")
