"""Partition and corruption faults on real 3-node clusters.

1. Driving a LocalCluster directly: isolating the stream leader puts exactly
   the expected rules into each namespace (listed while the partition is on),
   publishes through the isolated leader fail or time out while the majority
   elects a new leader, every rule is gone after healing, publishes through
   the old leader succeed again, and every acknowledged value is still there.
2. ``scenarios/partition-leader.yaml`` through the CLI (sync_interval always):
   the same, judged from the history by the checkers: nothing acked is lost.
3. A corruption run whose target refuses to start (truncated Raft snapshots):
   the run completes and the results say what happened on every node.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest
import yaml
from chaosrun import assert_nothing_left, results_json, run_dir_of
from nats.js.api import StreamConfig
from nats.js.errors import ServiceUnavailableError

from harness import clients, monitor, servers
from harness.backends.local import LocalCluster
from harness.faults.base import FaultContext
from harness.faults.partition import PartitionFault
from harness.history import load_history
from harness.runner import WORK_ROOT, wait_ready
from harness.runstate import RunState, new_tag
from harness.scenario import PartitionSpec, scenario_from_dict
from harness.workloads.streams import wait_converged

pytestmark = pytest.mark.integration
STREAM = "chaos"


def stream_leader(cluster: LocalCluster) -> str | None:
    for node in cluster.nodes:
        view = monitor.stream_view(cluster.monitor_url(node), STREAM)
        if view and view.leader:
            return view.leader
    return None


async def publish(js, value: int, timeout: float = 1.5) -> tuple[str, int | None]:
    """``("ok", seq)`` or ``(fail|info, None)`` as the harness classifies the error."""
    try:
        ack = await js.publish(f"{STREAM}.q", str(value).encode(), timeout=timeout)
    except Exception as e:
        return clients.classify(e)[0], None
    return "ok", ack.seq


async def until_ok(js, value: int, within: float) -> int:
    """Publish ``value`` until it is acknowledged; its sequence."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        kind, seq = await publish(js, value)
        if kind == "ok" and seq is not None:
            return seq
        await asyncio.sleep(0.2)
    raise AssertionError(f"value {value} not acknowledged within {within}s")


async def get_msg(js, seq: int, within: float = 15.0):
    """A stream message by sequence, retrying while the leader settles (503 right after heal)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await js.get_msg(STREAM, seq)
        except ServiceUnavailableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


def test_stream_leader_partition_rules_publishes_and_heal(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NATS_CHAOS_STATE", str(tmp_path / "state"))
    sc = scenario_from_dict({"name": "rules", "server": {"sync_interval": "always"}}, "t")
    state = RunState(new_tag())
    state.save()
    binary = servers.resolve_binary(sc.server.version)
    cluster = LocalCluster(sc, binary, WORK_ROOT / state.tag, state)
    try:
        cluster.start()
        asyncio.run(wait_ready(cluster))
        asyncio.run(_partition_the_leader(cluster))
    finally:
        cluster.stop()  # also removes the cluster's work dir (asserted below)
        state.remove()
    assert_nothing_left(state.tag, tmp_path / "state")


async def _partition_the_leader(cluster: LocalCluster) -> None:
    conns = {n: await clients.connect(cluster.client_url(n), f"t-{n}") for n in cluster.nodes}
    js = {n: c.jetstream(timeout=5) for n, c in conns.items()}
    try:
        cfg = StreamConfig(name=STREAM, subjects=[f"{STREAM}.>"], num_replicas=3, allow_direct=True)
        await js["n1"].add_stream(cfg)
        acked: dict[int, int] = {}  # value -> seq
        for v in range(30):
            acked[v] = await until_ok(js[cluster.nodes[v % 3]], v, 10)
        leader = stream_leader(cluster)
        assert leader in cluster.nodes
        others = [n for n in cluster.nodes if n != leader]
        ip = cluster.ip

        fault = PartitionFault(PartitionSpec(kind="partition", shape="stream-leader"))
        ctx = FaultContext(cluster, random.Random(1), STREAM, lambda: stream_leader(cluster))
        value = await asyncio.to_thread(fault.start, ctx)
        assert value["leader"] == leader
        assert value["grudge"] == {leader: others, **{n: [leader] for n in others}}

        # the rules while the partition is on, listed in every namespace
        hooks = ["-A INPUT -j NCHAOS", "-A OUTPUT -j NCHAOS"]
        cut = [
            "-A NCHAOS -s {}/32 -p tcp -j REJECT --reject-with tcp-reset",
            "-A NCHAOS -s {}/32 -j DROP",
            "-A NCHAOS -d {}/32 -p tcp -j REJECT --reject-with tcp-reset",
            "-A NCHAOS -d {}/32 -j DROP",
        ]
        assert cluster.rules(leader) == hooks + [r.format(ip(o)) for o in others for r in cut]
        for o in others:
            assert cluster.rules(o) == hooks + [r.format(ip(leader)) for r in cut]

        # through the isolated leader nothing is acknowledged; the majority fails over
        during = [await publish(js[leader], 1000 + i) for i in range(4)]
        assert {kind for kind, _ in during} <= {"fail", "info"}, during
        acked[2000] = await until_ok(js[others[0]], 2000, 20)

        stopped = await asyncio.to_thread(fault.stop, ctx)
        assert stopped == {"healed": True}
        for node in cluster.nodes:
            assert cluster.rules(node) == [], node  # chain, hooks and rules all gone

        acked[3000] = await until_ok(js[leader], 3000, 20)  # the old leader's clients again
        agreed = await wait_converged(cluster, cluster.nodes, STREAM, 30)
        assert agreed["converged"], agreed
        for v, seq in acked.items():
            msg = await get_msg(js[others[1]], seq)
            assert int(msg.data) == v
    finally:
        for c in conns.values():
            await c.close()


def test_partition_leader_scenario_loses_nothing(nats_chaos, tmp_path: Path) -> None:
    proc = nats_chaos(
        # 9 s between a heal and the next cut: more than the 5 s publish timeout, so
        # the old leader's clients finish their stuck publishes and then succeed
        "run", "scenarios/partition-leader.yaml", "--set", "time_limit=30", "--set",
        "schedule.quiet=3", "--set", "schedule.interval=14", "--set", "schedule.duration=5",
    )  # fmt: skip
    out, err = proc.communicate(timeout=180)
    run_dir = run_dir_of(tmp_path, "partition-leader")
    result = results_json(run_dir)
    assert proc.returncode == 0, (out, err)
    q = result["checkers"]["queue"]
    assert q["acknowledged_count"] > 500
    assert q["lost_count"] == 0
    assert result["checkers"]["logs"]["valid"] is True
    assert result["scenario"] == "partition-leader"

    ops = load_history(run_dir / "history.jsonl").ops
    nemesis = ops[ops["process"] == "nemesis"]
    starts = [
        (t, v) for t, v in zip(nemesis["time"], nemesis["value"], strict=True) if "start" in v
    ]
    stops = [t for t, v in zip(nemesis["time"], nemesis["value"], strict=True) if "stop" in v]
    assert len(starts) == len(stops) == 2
    done = ops[(ops["f"] == "publish") & (ops["type"] != "invoke")]
    for (t_start, v), t_stop in zip(starts, stops, strict=True):
        leader = v["leader"]
        assert v["grudge"][leader] == sorted(n for n in ("n1", "n2", "n3") if n != leader)
        inside = done[(done["time"] >= t_start) & (done["time"] <= t_stop - 500_000_000)]
        on_leader = inside[inside["node"] == leader]
        assert (on_leader["type"] == "ok").sum() == 0, on_leader["type"].value_counts()
        # the partition made publishes fail or time out: a timeout lands up to 5 s (the
        # publish timeout) after its invoke, so possibly after the heal
        began = v["began"]  # the cut acted from here; the op is written once it is in place
        hit = done[(done["time"] >= began) & (done["time"] <= t_stop + 6_000_000_000)]
        assert (hit["type"] != "ok").sum() > 0, hit["type"].value_counts()
    first_stop, second_start = stops[0], starts[1][0]
    after = done[(done["time"] > first_stop) & (done["time"] < second_start)]
    assert (after[after["node"] == starts[0][1]["leader"]]["type"] == "ok").sum() > 0
    assert_nothing_left(result["tag"], tmp_path / "state")


def test_corruption_run_reports_a_node_that_refuses_to_start(nats_chaos, tmp_path: Path) -> None:
    scenario = {
        "name": "corrupt-snap",
        "nodes": 3,
        "seed": 3,
        "time_limit": 12,
        "workload": {"rate": 200},
        "faults": [
            {
                "kind": "corrupt",
                "mode": "truncate",
                "file_types": ["snap", "inf"],
                "targets": "one",
                "while_down": True,
                "files": 100,
            }
        ],
        "schedule": {"quiet": 4, "interval": 10, "duration": 4},
        "recovery": {"timeout": 6, "read_timeout": 15},
    }
    path = tmp_path / "corrupt-snap.yaml"
    path.write_text(yaml.safe_dump(scenario))
    proc = nats_chaos("run", str(path))
    out, err = proc.communicate(timeout=180)
    assert proc.returncode in (0, 1), (out, err)  # a verdict, not a crash or bad input
    run_dir = run_dir_of(tmp_path, "corrupt-snap")
    result = results_json(run_dir)
    assert result["error"] is None

    ops = load_history(run_dir / "history.jsonl").ops
    values = list(ops[ops["process"] == "nemesis"]["value"])
    start, stop = values[0], values[1]
    (target,) = start["nodes"]
    assert start["killed"] == [target]
    assert start["ops"], start
    for op in start["ops"]:
        assert op["node"] == target
        assert op["mode"] == "truncate"
        assert op["length"] > 0 and op["offset"] >= 0
        assert op["file"].endswith(".inf") or "snap" in op["file"]
    assert stop["restarted"] == [target]
    assert stop["not_running"] == [target]  # "raft: snapshot corrupt" is fatal at startup

    logs = result["checkers"]["logs"]
    counts = logs["nodes"][target]["counts"]
    assert counts["fatal"] >= 1
    assert counts["corrupt"] + counts["checksum"] >= 1
    assert any("snapshot corrupt" in line for line in logs["nodes"][target]["first"]["fatal"])
    per_node = result["checkers"]["queue"]["per_node"]
    assert set(per_node) == {"n1", "n2", "n3"}
    assert per_node[target]["status"] != "read"
    assert all(per_node[n]["status"] == "read" for n in per_node if n != target)
    assert result["recovery"]["nodes"][target] is None  # it never answered again
    # its stream's meta.inf was truncated too: no stream an offline server could load
    assert result["offline_reads"] == {target: "not read: RuntimeError: its store holds no stream"}
    assert_nothing_left(result["tag"], tmp_path / "state")
