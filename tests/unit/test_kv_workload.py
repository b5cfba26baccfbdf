"""The kv workload's client logic through the real runner on the fake cluster.

The fake models a KV bucket as its stream ``KV_<bucket>`` (publishes with
``Nats-Expected-Last-Subject-Sequence`` refused with err_code 10071 when the
subject's last sequence is another, delete markers as ``KV-Operation: DEL``
headers, leader gets and per-replica direct gets), so these runs go through
setup, the main phase under a fault, recovery, the isolated per-node reads
and the kv and linear-kv checkers exactly as a real run does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fakerun import assert_well_formed, history, run, scenario

from harness import workloads
from harness.backends import fake
from harness.clients import Failed
from harness.errors import BadInput
from harness.interpreter import Operation
from harness.workloads.kv import KvWorkload, entry

POWER_ALL = [{"kind": "power-loss", "targets": "all", "coordinated": True}]


def kv(**fields: Any) -> Any:
    workload = {"name": "kv", "keys": 3, **fields.pop("workload", {})}
    return scenario(stream={"name": "KV_chaos"}, workload=workload, **fields)


def test_a_kill_run_is_linearizable_and_reads_every_node(tmp_path: Path) -> None:
    out, made = run(tmp_path, kv(faults=[{"kind": "kill", "targets": "leader"}]))
    assert out.broken is None
    ops = history(out.run_dir)
    assert_well_formed(ops)
    assert out.result["valid"] is True and out.result["bucket"] == "chaos"
    done = [op for op in ops if op["type"] != "invoke" and op["process"] != "nemesis"]
    assert {op["f"] for op in done} == {"get", "put", "create", "update", "delete", "read"}
    last_get: dict[int, dict[str, Any]] = {}
    for op in done:  # every update expects the revision its worker's get just returned
        if op["f"] == "get" and op["type"] == "ok":
            last_get[op["process"]] = op
        if op["f"] == "update":
            got = last_get.pop(op["process"])
            assert op["value"][0] == got["value"][0] and op["value"][1][1] == got["revision"]
    oks = [op for op in done if op["type"] == "ok" and op["f"] != "read"]
    assert oks and all(isinstance(op["revision"], int) for op in oks)
    refused = [op for op in done if op["type"] == "fail" and op["f"] in ("update", "create")]
    assert refused and all("(err_code 10071: wrong last sequence:" in op["error"] for op in refused)
    st = made[0].streams["KV_chaos"]
    assert st.subjects == ["$KV.chaos.>"] and st.replicas == ["n1", "n2", "n3"]
    log = st.logs["n1"]  # every replica holds the same after the recovery wait
    want = []
    for key in range(3):
        last = next((m for m in reversed(log) if m[1] == f"$KV.chaos.{key}"), None)
        value, revision = entry(None if last is None else _stored(last))
        want.append([key, value, revision])
    reads = [op for op in done if op["f"] == "read"]
    assert sorted(op["node"] for op in reads) == ["n1", "n2", "n3"]
    assert all(op["type"] == "ok" and op["value"] == want and op["routes"] == 0 for op in reads)
    c = out.result["checkers"]["kv"]
    assert c["write_ok_count"] == sum(1 for op in oks if op["f"] not in ("get", "get-direct"))
    assert c["linear"]["key_count"] == 3 and c["lost_write_count"] == c["divergence_count"] == 0
    assert out.result["checkers"]["linear-kv"]["valid"] is True


def _stored(m: Any) -> Any:
    from harness.clients import StoredMsg

    return StoredMsg(m[0], m[2], m[1], getattr(m, "headers", None))


def test_ops_are_seeded_per_worker_and_updates_follow_gets(tmp_path: Path) -> None:
    cluster = fake.FakeCluster(["n1", "n2", "n3"], tmp_path)
    ctx = workloads.WorkloadContext(kv(seed=7), cluster, cluster.connect, lambda f, v: None)
    first, again = KvWorkload(ctx).operations(2, "n3"), KvWorkload(ctx).operations(2, "n3")
    ops = [next(first) for _ in range(30)]  # no get was performed: no update follows one
    assert ops == [next(again) for _ in range(30)]
    assert {op.f for op in ops} == {"get", "put", "create", "delete"}
    assert all(op.node == "n3" and 0 <= op.value[0] < 3 for op in ops)
    other = KvWorkload(ctx).operations(1, "n3")
    assert [next(other) for _ in range(30)] != ops
    direct = KvWorkload(
        workloads.WorkloadContext(
            kv(seed=7, workload={"reads": "direct"}), cluster, cluster.connect, lambda f, v: None
        )
    ).operations(2, "n3")
    assert [op.f for op in (next(direct) for _ in range(30))] == [
        "get-direct" if op.f == "get" else op.f for op in ops
    ]


def test_create_update_and_delete_against_the_fake_bucket(tmp_path: Path) -> None:
    cluster = fake.FakeCluster(["n1", "n2", "n3"], tmp_path)
    cluster.start()
    connect = lambda node: cluster.connect(node, "t")  # noqa: E731
    w = KvWorkload(workloads.WorkloadContext(kv(), cluster, connect, lambda f, v: None))

    async def go() -> list[Any]:
        await w.setup()
        client = await cluster.connect("n1", "t")
        out: list[Any] = []

        async def do(f: str, value: Any) -> Any:
            try:
                done = await w.invoke(client, Operation(f, value, "n1"))
            except Failed as e:
                return ("fail", str(e))
            return (done.value if f.startswith("get") else f, done.extra.get("revision"))

        out.append(await do("create", [0, 10]))
        out.append(await do("create", [0, 11]))
        out.append(await do("update", [0, [12, 5]]))
        out.append(await do("update", [0, [12, 1]]))
        out.append(await do("delete", [0, None]))
        out.append(await do("get", [0, None]))
        out.append(await do("create", [0, 13]))  # a deleted key can be created again
        out.append(await do("get-direct", [0, None]))
        out.append(await do("get", [1, None]))
        return out

    assert asyncio.run(go()) == [
        ("create", 1),
        ("fail", "key exists (err_code 10071: wrong last sequence: 1)"),
        ("fail", "wrong revision (err_code 10071: wrong last sequence: 1)"),
        ("update", 2),
        ("delete", 3),
        ([0, None], 3),
        ("create", 4),
        ([0, 13], 4),
        ([1, None], 0),
    ]


def test_coordinated_power_loss_loses_writes_unless_synced(tmp_path: Path) -> None:
    sc = kv(faults=POWER_ALL, workload={"rate": 100})  # fewer ops: a cheaper linear search
    out, _ = run(tmp_path / "default", sc)
    c = out.result["checkers"]["kv"]
    assert out.result["valid"] is False and "lost-write" in out.result["anomalies"]
    assert c["lost_write_count"] > 0
    synced, _ = run(tmp_path / "always", sc, sync_always=True)
    c = synced.result["checkers"]["kv"]
    assert "lost-write" not in synced.result["anomalies"]
    assert c["lost_write_count"] == c["divergence_count"] == 0 and c["reading_count"] == 9
    # (the fake times a downed node's publishes out at once, so each key gets dozens of info
    # writes, which can spend the linear search's budget: linearizability may be "unknown")


def test_direct_gets_from_a_cut_off_replica_are_stale_not_invalid(tmp_path: Path) -> None:
    sc = kv(workload={"reads": "direct"}, faults=[{"kind": "partition", "shape": "one"}])
    out, _ = run(tmp_path, sc)
    c = out.result["checkers"]["kv"]
    assert out.result["valid"] is True and out.result["anomalies"] == []
    assert c["direct_read_count"] > 0 and c["stale_read_count"] > 0
    assert "get" not in c["by_f"] and out.result["checkers"]["linear-kv"]["key_count"] == 3
    assert [e["title"] for e in c["summary"]["examples"]] == ["Stale direct reads"]
    assert all(s["node"] in ("n1", "n2", "n3") for s in c["stale_reads"])


def test_a_stream_not_named_for_a_bucket_is_refused_at_setup(tmp_path: Path) -> None:
    sc = scenario(workload={"name": "kv"})
    with pytest.raises(BadInput, match=r"stream.name 'chaos' must be KV_<bucket>"):
        run(tmp_path, sc)
