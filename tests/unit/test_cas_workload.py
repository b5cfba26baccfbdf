"""The cas workload's client logic through the real runner on the fake cluster.

The fake refuses a publish whose expected last (subject) sequence does not
match its leader's log (400, err_code 10071) and answers message gets from
the leader, so these runs go through setup, read-then-CAS under faults,
recovery, the isolated per-node reads and the cas checker as a real run does.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from fakerun import assert_well_formed, history, run, scenario
from nats.js.errors import APIError

from harness import workloads
from harness.backends import fake
from harness.workloads.cas import CasWorkload

POWER_ALL = [{"kind": "power-loss", "targets": "all", "coordinated": True}]


def cas(**fields):
    spec = {"name": "cas", "keys": 3, **fields.pop("spec", {})}
    return scenario(workload=spec, **fields)


def by_process(ops):
    out: dict[int, list] = {}
    for op in ops:
        if op["process"] != "nemesis" and op["type"] != "invoke":
            out.setdefault(op["process"], []).append(op)
    return out


def test_a_kill_run_is_valid_and_each_cas_expects_what_its_read_saw(tmp_path: Path) -> None:
    out, made = run(tmp_path, cas(faults=[{"kind": "kill", "targets": "leader"}]))
    assert out.broken is None
    ops = history(out.run_dir)
    assert_well_formed(ops)
    oks = [op for op in ops if op["f"] == "cas" and op["type"] == "ok"]
    assert len(oks) > 20
    for done in by_process(ops).values():  # a CAS follows its process's read, expecting it
        for before, op in itertools.pairwise(done):
            if op["f"] == "cas":
                assert before["f"] == "read" and before["type"] == "ok"
                key, (expected, _) = op["value"]
                assert before["value"] == [key, expected]
                if op["type"] == "ok":
                    assert op["expected_seq"] == before["seq"] and op["seq"] > before["seq"]
    assert len({op["value"][1][1] for op in ops if op["f"] == "cas"}) == sum(
        op["f"] == "cas" and op["type"] == "invoke" for op in ops
    )  # every CAS writes a value of its own
    log = made[0].streams["chaos"].logs["n1"]
    last = {subj: (seq, int(data)) for seq, subj, data in log}
    want = [[k, *last.get(f"chaos.k.{k}", (0, -1))] for k in range(3)]
    reads = [op for op in ops if op["f"] == "read-node" and op["type"] == "ok"]
    assert sorted(op["node"] for op in reads) == ["n1", "n2", "n3"]
    assert all(op["value"] == want and op["routes"] == 0 for op in reads)
    c = out.result["checkers"]["cas"]
    assert out.result["valid"] is True and out.result["anomalies"] == []
    assert c["cas_ok_count"] == len(oks) == len(log)  # only winners are stored
    assert c["cas_fail_count"] == sum(
        op["f"] == "cas" and op["type"] == "fail" and "wrong last sequence" in op["error"]
        for op in ops
    )
    assert c["linear"]["invalid_key_count"] == 0 and c["double_winner_count"] == 0
    assert c["summary"]["headline"].startswith(f"{len(oks):,} CAS writes on 3 keys linearizable")
    assert out.result["isolated_for_reads"] is True


def test_stream_mode_expects_the_stream_sequence(tmp_path: Path) -> None:
    out, _ = run(tmp_path, cas(spec={"expect": "stream", "direct_reads": 0.5}))
    ops = history(out.run_dir)
    oks = [op for op in ops if op["f"] == "cas" and op["type"] == "ok"]
    assert oks and all("expected_seq" not in op for op in oks)
    expected = [op["expected_stream_seq"] for op in oks]
    assert sorted(expected) == [op["seq"] - 1 for op in sorted(oks, key=lambda op: op["seq"])]
    assert out.result["valid"] is True
    c = out.result["checkers"]["cas"]
    assert c["direct_read_count"] > 0 and c["stale_read_count"] == 0  # no fault: all fresh


def test_coordinated_power_loss_loses_writes_unless_synced(tmp_path: Path) -> None:
    out, _ = run(tmp_path / "default", cas(faults=POWER_ALL))
    c = out.result["checkers"]["cas"]
    assert out.result["valid"] is False
    # the registers went back to empty: reads of nothing after acked writes, CAS from 0 again
    assert "non-linearizable" in out.result["anomalies"]
    assert c["linear"]["invalid_key_count"] == c["key_count"] == 3
    synced, _ = run(tmp_path / "always", cas(faults=POWER_ALL), sync_always=True)
    assert synced.result["valid"] is True
    assert synced.result["checkers"]["cas"]["lost_count"] == 0


def test_a_partitioned_leader_leaves_it_valid(tmp_path: Path) -> None:
    faults = [{"kind": "partition", "shape": "stream-leader"}]
    out, _ = run(tmp_path, cas(faults=faults, spec={"direct_reads": 0.5}))
    assert out.result["valid"] is True  # stale direct reads, if any, are not violations


def test_operations_are_seeded_per_worker(tmp_path: Path) -> None:
    cluster = fake.FakeCluster(["n1", "n2", "n3"], tmp_path)
    ctx = workloads.WorkloadContext(cas(seed=7), cluster, cluster.connect, lambda f, v: None)
    first, again = CasWorkload(ctx).operations(2, "n3"), CasWorkload(ctx).operations(2, "n3")
    ops = [next(first) for _ in range(30)]  # never invoked: no read is ok, so no CAS
    assert ops == [next(again) for _ in range(30)]
    assert {op.f for op in ops} == {"read", "read-direct"} and {op.node for op in ops} == {"n3"}
    other = CasWorkload(ctx).operations(1, "n3")
    assert [next(other) for _ in range(30)] != ops


def test_the_fake_checks_expected_sequences() -> None:
    cluster = fake.FakeCluster(["n1"], Path("/nonexistent"))
    cluster.up["n1"] = True
    cluster.add_stream({"name": "s", "subjects": ["s.>"]})
    subj, stream = "Nats-Expected-Last-Subject-Sequence", "Nats-Expected-Last-Sequence"
    assert cluster.publish("n1", "s.k.0", b"1", {subj: "0"}).seq == 1
    assert cluster.publish("n1", "s.k.1", b"2", {subj: "0"}).seq == 2
    for headers in ({subj: "0"}, {subj: "2"}, {stream: "1"}):
        with pytest.raises(APIError) as e:
            cluster.publish("n1", "s.k.0", b"3", headers)
        assert (e.value.code, e.value.err_code) == (400, 10071)
    assert cluster.publish("n1", "s.k.0", b"3", {subj: "1", stream: "2"}).seq == 3
    got = cluster.last_on_leader("n1", "s", "s.k.1")
    assert got is not None and (got.seq, got.data, got.subject) == (2, b"2", "s.k.1")
    wild = cluster.last_on_leader("n1", "s", "s.>")
    assert wild is not None and wild.seq == 3
    assert cluster.last_on_leader("n1", "s", "s.k.9") is None
    assert cluster.last_on_leader("n1", "s", "s.*") is None  # one token only: no s.k.N
