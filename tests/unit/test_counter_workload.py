"""The counter workload's client logic through the real runner on the fake cluster.

The fake models ``allow_msg_counter`` streams (``Nats-Incr`` publishes, the
total in the ack and in the stored body), so these runs go through setup,
the main phase under a fault, recovery, the isolated per-node reads and the
counter checker exactly as a real run does.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from fakerun import assert_well_formed, history, run, scenario

from harness import workloads
from harness.backends import fake
from harness.errors import Unsupported
from harness.runner import RunOptions, execute
from harness.workloads.counter import CounterWorkload

POWER_ALL = [{"kind": "power-loss", "targets": "all", "coordinated": True}]


def counter(**fields):
    return scenario(workload={"name": "counter", "keys": 2, "max_increment": 9}, **fields)


def test_a_kill_run_records_totals_and_reads_every_node(tmp_path: Path) -> None:
    out, made = run(tmp_path, counter(faults=[{"kind": "kill", "targets": "one"}]))
    assert out.broken is None
    ops = history(out.run_dir)
    assert_well_formed(ops)
    oks = [op for op in ops if op["f"] == "incr" and op["type"] == "ok"]
    assert len(oks) > 50
    assert all(k in (0, 1) and 1 <= n <= 9 for k, n in (op["value"] for op in oks))
    running: dict[int, int] = {}
    for op in sorted(oks, key=lambda op: op["seq"]):  # no loss: one stream order, no gaps
        key, n = op["value"]
        running[key] = running.get(key, 0) + n
        assert op["total"] == running[key]
    st = made[0].streams["chaos"]
    assert st.counter
    last = {subj: json.loads(data)["val"] for _, subj, data in st.logs["n1"]}
    want = [[k, int(last.get(f"chaos.c.{k}", 0))] for k in (0, 1)]
    reads = [op for op in ops if op["f"] == "read" and op["type"] == "ok"]
    assert sorted(op["node"] for op in reads) == ["n1", "n2", "n3"]
    assert all(op["value"] == want and op["routes"] == 0 for op in reads)
    c = out.result["checkers"]["counter"]
    assert out.result["valid"] is True
    assert c["acknowledged_count"] == len(oks)
    assert c["acknowledged_sum"] == sum(v for _, v in want)  # killed publishes time out, unapplied
    assert out.result["isolated_for_reads"] is True


def test_increments_are_seeded_per_worker(tmp_path: Path) -> None:
    cluster = fake.FakeCluster(["n1", "n2", "n3"], tmp_path)
    ctx = workloads.WorkloadContext(counter(seed=7), cluster, cluster.connect, lambda f, v: None)
    first = CounterWorkload(ctx).operations(2, "n3")
    again = CounterWorkload(ctx).operations(2, "n3")
    ops = [next(first) for _ in range(20)]
    assert ops == [next(again) for _ in range(20)]
    assert {op.node for op in ops} == {"n3"} and {op.f for op in ops} == {"incr"}
    other = CounterWorkload(ctx).operations(1, "n3")
    assert [next(other) for _ in range(20)] != ops


def test_coordinated_power_loss_loses_increments_unless_synced(tmp_path: Path) -> None:
    out, _ = run(tmp_path / "default", counter(faults=POWER_ALL))
    c = out.result["checkers"]["counter"]
    assert out.result["valid"] is False
    assert "lost-increment" in out.result["anomalies"]
    assert c["lost_increment_count"] == 6  # both keys on all three nodes
    assert c["lost_amount"] > 0
    synced, _ = run(tmp_path / "always", counter(faults=POWER_ALL), sync_always=True)
    assert synced.result["valid"] is True
    assert synced.result["checkers"]["counter"]["lost_increment_count"] == 0


def test_a_stream_that_refuses_a_plain_publish() -> None:
    cluster = fake.FakeCluster(["n1"], Path("/nonexistent"))
    cluster.up["n1"] = True
    cluster.add_stream({"name": "s", "subjects": ["s.>"], "allow_msg_counter": True})
    with pytest.raises(Exception, match="increment is missing"):
        cluster.publish("n1", "s.c.0", b"x")
    assert cluster.publish("n1", "s.c.0", b"", {"Nats-Incr": "4"}).val == "4"
    assert cluster.publish("n1", "s.c.0", b"", {"Nats-Incr": "3"}).val == "7"
    assert cluster.publish("n1", "s.c.1", b"", {"Nats-Incr": "2"}).val == "2"


def test_counters_need_nats_server_2_12(tmp_path: Path) -> None:
    sc = counter()
    workloads.check_server(sc, "2.12.0")
    workloads.check_server(sc, "2.14.0")
    with pytest.raises(Unsupported) as e:
        workloads.check_server(sc, "2.11.11")
    assert str(e.value) == (
        "workload counter needs nats-server 2.12.0 or newer, and this run's is 2.11.11 "
        "(--set server.version=2.12.0, or newer)"
    )
    assert e.value.exit_code == 3
    # through the runner: refused before anything of the run exists
    old = tmp_path / "nats-server"
    old.write_text("#!/bin/sh\necho 'nats-server: v2.11.11'\n")
    old.chmod(0o755)
    backend, made = fake.backend()
    backend = dataclasses.replace(backend, binary=lambda scenario, explicit: old)
    opts = RunOptions(results_dir=tmp_path / "results", echo=lambda _m: None, backend=backend,
                      work_root=tmp_path / "work")  # fmt: skip
    with pytest.raises(Unsupported, match=r"workload counter needs nats-server 2\.12\.0"):
        execute(sc, opts)
    assert made == [] and not (tmp_path / "results").exists()


def test_a_declared_old_server_is_refused_before_it_is_installed(tmp_path: Path) -> None:
    backend, made = fake.backend()
    asked: list[str] = []
    backend = dataclasses.replace(backend, binary=lambda sc, explicit: asked.append("binary"))
    opts = RunOptions(results_dir=tmp_path / "results", echo=lambda _m: None, backend=backend,
                      work_root=tmp_path / "work")  # fmt: skip
    sc = counter(server={"version": "2.11.11"})
    with pytest.raises(Unsupported, match=r"and this run's is 2\.11\.11 \(--set server\.version"):
        execute(sc, opts)
    assert asked == [] and made == []
