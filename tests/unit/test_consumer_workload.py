"""The consumer workload's client logic through the real runner on the fake cluster.

The fake (``harness.backends.fake``) models a durable pull consumer with
explicit acks and redelivery after ``ack_wait``; these runs check what the
workload records (fetch triples, acks, the drain and the consumer's state)
and that its checker agrees with the fake's own state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakerun import assert_well_formed, history, run, scenario

from harness import results
from harness.errors import BadInput

FAST = {"name": "consumer", "fetch_timeout": 0.1, "ack_wait": 0.4}


def ops_of(ops: list[dict[str, Any]], f: str, type: str = "ok") -> list[dict[str, Any]]:
    return [op for op in ops if op["f"] == f and op["type"] == type]


def test_a_run_without_faults_delivers_and_acks_every_publish(tmp_path: Path) -> None:
    out, made = run(tmp_path, scenario(workload=FAST))
    assert out.broken is None
    ops = history(out.run_dir)
    assert_well_formed(ops)
    acked = {op["value"]: op["seq"] for op in ops_of(ops, "publish")}
    delivered = [t for op in ops_of(ops, "fetch") for t in op["value"]]
    assert acked and {v: s for s, v, _ in delivered} == acked  # each at its stream sequence
    # every worker above the producers consumes, from the node it is bound to
    fetches = [op for op in ops if op["f"] == "fetch" and op["type"] == "invoke"]
    workers = {op["value"]["worker"] for op in fetches}
    assert workers == set(range(3, 9))
    assert all(op["node"] == f"n{op['value']['worker'] % 3 + 1}" for op in fetches)
    assert not any(op["f"] == "publish" and op["node"] is None for op in ops)
    # an ack names a message a fetch delivered
    triples = {(s, v) for s, v, _ in delivered}
    assert all(tuple(op["value"]) in triples for op in ops_of(ops, "ack"))
    [drain] = ops_of(ops, "drain")
    assert drain["drained"] is True
    [con] = made[0].consumers.values()
    state = drain["state"]
    assert state == {
        "present": True,
        "delivered_stream": len(acked),
        "ack_floor_stream": con.ack_floor,
        "num_pending": 0,
        "num_ack_pending": 0,
        "num_redelivered": 0,
        "num_waiting": 0,
    }
    assert con.ack_floor == len(acked)
    c = out.result["checkers"]["consumer"]
    assert out.result["valid"] is True, c["summary"]["headline"]
    assert c["acknowledged_count"] == c["delivered_count"] == len(acked)
    assert results.verdict_line(out.result) == (
        f"VALID: {len(acked):,} acknowledged publishes, all delivered; 0 redelivered after ack"
    )


def test_an_unacked_delivery_comes_back_after_ack_wait_in_the_drain(tmp_path: Path) -> None:
    """Workers stop mid-batch at the deadline: what they fetched but never acked is
    redelivered (num_delivered 2) to the drain, which acks it. Six producers and three
    consumers: the consumers lag, every fetch is a full batch, and a worker is between
    two batches at the deadline only if it happens to be at that one instant."""
    sc = scenario(workload=FAST | {"batch": 50, "rate": 600, "producers": 6})
    out, _ = run(tmp_path, sc)
    ops = history(out.run_dir)
    [drain] = ops_of(ops, "drain")
    acked_in_main = {op["value"][1] for op in ops_of(ops, "ack")}
    fetched_in_main = {d[1] for op in ops_of(ops, "fetch") for d in op["value"]}
    again = [q for q in drain["value"] if q[1] in fetched_in_main - acked_in_main]
    assert again and all(q[2] >= 2 and q[3] == 1 for q in again)
    assert out.result["valid"] is True
    assert out.result["checkers"]["consumer"]["redelivery_count"] >= len(again)


def test_kills_keep_every_acknowledged_publish_deliverable(tmp_path: Path) -> None:
    sc = scenario(workload=FAST, faults=[{"kind": "kill", "targets": "minority"}])
    out, _ = run(tmp_path, sc)
    ops = history(out.run_dir)
    assert_well_formed(ops)
    assert [op["value"].get("start") for op in ops if op["f"] == "kill"][:1] == ["kill"]
    assert out.result["valid"] is True, out.result["checkers"]["consumer"]["summary"]
    assert out.result["anomalies"] == []


def test_coordinated_power_loss_shows_the_consumer_losing_acknowledged_publishes(
    tmp_path: Path,
) -> None:
    """The fake keeps nothing un-synced: the stream restarts at sequence 1 while the
    consumer's delivered pointer stays ahead, so later publishes are never delivered."""
    faults = [{"kind": "power-loss", "targets": "all", "coordinated": True}]
    sc = scenario(workload=FAST, faults=faults)
    out, _ = run(tmp_path, sc)
    c = out.result["checkers"]["consumer"]
    assert "lost-to-consumer" in out.result["anomalies"]
    assert c["lost_to_consumer_count"] > 0
    assert results.verdict_line(out.result).startswith(
        f"INVALID: {c['lost_to_consumer_count']:,} of {c['acknowledged_count']:,} acknowledged"
    )
    out, _ = run(tmp_path / "always", sc, sync_always=True)
    assert out.result["valid"] is True


def test_producers_must_leave_a_worker_to_consume(tmp_path: Path) -> None:
    sc = scenario(workload=FAST | {"producers": 9})
    with pytest.raises(BadInput, match=r"workload.producers \(9\) leaves none of the 9 workers"):
        run(tmp_path, sc)
