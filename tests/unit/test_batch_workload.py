"""The batch workload's client logic through the real runner on the fake cluster.

The fake models ``allow_atomic`` streams (messages staged per batch id at the
stream leader and appended all at once on the commit, err_code 10176 for a
gap or a batch the leader does not hold), so these runs go through setup,
the main phase under a fault, recovery, the isolated per-node reads and the
batch checker exactly as a real run does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fakerun import assert_well_formed, history, run, scenario
from nats.js.errors import APIError

from harness import workloads
from harness.backends import fake
from harness.clients import Failed
from harness.errors import Unsupported
from harness.interpreter import Operation
from harness.workloads.batch import BatchWorkload

POWER_ALL = [{"kind": "power-loss", "targets": "all", "coordinated": True}]
ID, SEQ, COMMIT = "Nats-Batch-Id", "Nats-Batch-Sequence", "Nats-Batch-Commit"


def batch(**fields):
    return scenario(workload={"name": "batch", "max_batch": 4}, **fields)


def test_a_leader_kill_run_commits_whole_batches_and_reads_every_node(tmp_path: Path) -> None:
    out, made = run(tmp_path, batch(faults=[{"kind": "kill", "targets": "leader"}]))
    assert out.broken is None
    ops = history(out.run_dir)
    assert_well_formed(ops)
    done = [op for op in ops if op["f"] == "batch" and op["type"] != "invoke"]
    oks = [op for op in done if op["type"] == "ok"]
    assert len(oks) > 50 and any(op["type"] == "fail" for op in done)  # the kill: refusals
    assert all(2 <= len(op["value"][1]) <= 4 for op in done)
    ids = [op["value"][0] for op in done]
    assert len(ids) == len(set(ids))
    log = made[0].streams["chaos"].logs["n1"]
    by_seq = {m[0]: m for m in log}
    for op in oks:  # the batch ends at the acked seq, its messages just before it, in order
        bid, values = op["value"]
        assert op["count"] == len(values)
        first = op["seq"] - len(values) + 1
        for i, v in enumerate(values):
            _, subject, data = by_seq[first + i]
            assert (subject, data) == ("chaos.b", b"%d" % v)
            assert by_seq[first + i].headers[ID] == str(bid)
            assert by_seq[first + i].headers[SEQ] == str(i + 1)
        assert by_seq[op["seq"]].headers[COMMIT] == "1"
    want = [[m[0], int(m.headers[ID]), int(m.headers[SEQ]), int(m[2])] for m in log]
    reads = [op for op in ops if op["f"] == "read" and op["type"] == "ok"]
    assert sorted(op["node"] for op in reads) == ["n1", "n2", "n3"]
    assert all(op["value"] == want and op["routes"] == 0 for op in reads)
    b = out.result["checkers"]["batch"]
    assert out.result["valid"] is True and out.result["anomalies"] == []
    assert b["committed_count"] == len(oks)
    stored = {row[1] for row in want}
    unknown = [op["value"] for op in done if op["type"] == "info" and op["value"][0] in stored]
    assert len(want) == b["committed_message_count"] + sum(len(v) for _, v in unknown)
    assert b["recovered_count"] == len(unknown)
    assert out.result["isolated_for_reads"] is True


def test_batches_are_seeded_per_worker(tmp_path: Path) -> None:
    cluster = fake.FakeCluster(["n1", "n2", "n3"], tmp_path)
    ctx = workloads.WorkloadContext(batch(seed=7), cluster, cluster.connect, lambda f, v: None)
    first = BatchWorkload(ctx).operations(2, "n3")
    again = BatchWorkload(ctx).operations(2, "n3")
    ops = [next(first) for _ in range(20)]
    assert ops == [next(again) for _ in range(20)]
    assert {op.node for op in ops} == {"n3"} and {op.f for op in ops} == {"batch"}
    assert [op.value[0] for op in ops] == list(range(1, 21))
    values = [v for op in ops for v in op.value[1]]
    assert values == list(range(len(values)))  # unique within the run, in batch order
    assert {len(op.value[1]) for op in ops} <= {2, 3, 4}
    other = BatchWorkload(ctx).operations(1, "n3")
    assert [len(op.value[1]) for op in (next(other) for _ in range(20))] != [
        len(op.value[1]) for op in ops
    ]


def _cluster(tmp_path: Path, atomic: bool = True) -> fake.FakeCluster:
    c = fake.FakeCluster(["n1", "n2", "n3"], tmp_path)
    c.start()
    c.add_stream({"name": "s", "subjects": ["s.>"], "num_replicas": 3, "allow_atomic": atomic})
    return c


def _h(bid: str, seq: int, commit: bool = False) -> dict[str, str]:
    return {ID: bid, SEQ: str(seq), **({COMMIT: "1"} if commit else {})}


def test_the_fake_stores_a_batch_only_on_its_commit(tmp_path: Path) -> None:
    c = _cluster(tmp_path)
    c.stage("n2", "s.b", b"1", _h("a", 1), confirm=True)
    c.stage("n2", "s.b", b"2", _h("a", 2), confirm=False)
    assert c.streams["s"].logs["n1"] == []  # staged, not stored
    ack = c.publish("n2", "s.b", b"3", _h("a", 3, commit=True))
    assert (ack.seq, ack.batch, ack.count) == (3, "a", 3)
    assert [(m[0], m[2]) for m in c.streams["s"].logs["n3"]] == [(1, b"1"), (2, b"2"), (3, b"3")]
    ack = c.publish("n1", "s.b", b"4", _h("b", 1, commit=True))  # a batch of one
    assert (ack.seq, ack.count) == (4, 1)


@pytest.mark.parametrize("case", ["gap", "unknown", "leader-changed", "leader-killed"])
def test_the_fake_refuses_an_incomplete_batch_and_stores_none_of_it(
    tmp_path: Path, case: str
) -> None:
    c = _cluster(tmp_path)
    c.stage("n1", "s.b", b"1", _h("a", 1), confirm=True)
    if case == "gap":
        c.stage("n1", "s.b", b"3", _h("a", 3), confirm=False)  # 2 never came: dropped
        commit = _h("a", 4, commit=True)
    elif case == "unknown":
        commit = _h("z", 2, commit=True)
    else:
        if case == "leader-changed":
            c.streams["s"].leader = "n2"
        else:
            c.kill("n1")
        commit = _h("a", 2, commit=True)
    with pytest.raises(APIError) as e:
        c.publish("n3", "s.b", b"2", commit)
    assert (e.value.code, e.value.err_code) == (400, 10176)
    assert all(log == [] for log in c.streams["s"].logs.values())


def test_the_fake_refuses_batch_headers_on_a_stream_without_allow_atomic(tmp_path: Path) -> None:
    c = _cluster(tmp_path, atomic=False)
    with pytest.raises(APIError) as e:
        c.stage("n1", "s.b", b"1", _h("a", 1), confirm=True)
    assert e.value.err_code == 10174
    c.stage("n1", "s.b", b"1", _h("a", 1), confirm=False)  # unconfirmed: it just vanishes
    with pytest.raises(APIError, match="atomic publish is disabled"):
        c.publish("n1", "s.b", b"2", _h("a", 2, commit=True))


def test_a_batch_that_fails_before_its_commit_is_a_certain_fail(tmp_path: Path) -> None:
    c = _cluster(tmp_path)
    ctx = workloads.WorkloadContext(batch(), c, c.connect, lambda f, v: None)
    w = BatchWorkload(ctx)
    c.kill("n2")
    c.kill("n3")  # no quorum: no stream leader answers

    async def invoke() -> None:
        await w.invoke(await c.connect("n1", "t"), Operation("batch", [1, [0, 1, 2]], "n1"))

    with pytest.raises(Failed, match=r"^not committed \(message 1: no-responders\)$"):
        asyncio.run(invoke())
    c.start_node("n2")  # a leader again, but n3 never staged: the commit alone is refused

    async def commit() -> None:
        client = await c.connect("n1", "t")
        await client.publish("s.b", b"2", 1.0, _h("1", 3, commit=True))

    with pytest.raises(APIError, match="incomplete"):
        asyncio.run(commit())


def test_coordinated_power_loss_loses_batches_unless_synced(tmp_path: Path) -> None:
    out, _ = run(tmp_path / "default", batch(faults=POWER_ALL))
    b = out.result["checkers"]["batch"]
    assert out.result["valid"] is False and out.result["anomalies"] == ["lost-batch"]
    assert b["lost_count"] > 0 and b["partial_count"] == 0
    synced, _ = run(tmp_path / "always", batch(faults=POWER_ALL), sync_always=True)
    assert synced.result["valid"] is True
    assert synced.result["checkers"]["batch"]["lost_count"] == 0


def test_atomic_batches_need_nats_server_2_12() -> None:
    sc = batch()
    workloads.check_server(sc, "2.12.0")
    with pytest.raises(Unsupported) as e:
        workloads.check_server(sc, "2.11.11")
    assert str(e.value) == (
        "workload batch needs nats-server 2.12.0 or newer, and this run's is 2.11.11 "
        "(--set server.version=2.12.0, or newer)"
    )
    assert e.value.exit_code == 3
