"""The nemesis against the in-memory fake cluster: ops recorded, faults undone, heal_all
restores nodes, and a fault that raises is recorded with its error while the run goes on
(in the nemesis alone, and through the real runner)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Literal

import pytest
from fakerun import assert_well_formed, history, run, scenario

from harness import faults, results
from harness.backends.base import PROCESS
from harness.backends.fake import FakeCluster
from harness.faults import FaultContext, FaultKind
from harness.faults.base import NodeFaultSpec
from harness.faults.nemesis import Nemesis
from harness.faults.pause import PauseFault
from harness.faults.schedule import Window
from harness.history import HistoryWriter, load_history
from harness.scenario import KillSpec, PartitionSpec, PauseSpec

N3 = ["n1", "n2", "n3"]


def started(root: Path) -> FakeCluster:
    """The in-memory fake, every node up; its ``calls`` log starts empty."""
    cluster = FakeCluster(N3, root)
    cluster.start()
    return cluster


def did(cluster: FakeCluster, method: str) -> list[tuple[Any, ...]]:
    """The fake's ``calls`` of ``method``, in order."""
    return [c for c in cluster.calls if c[0] == method]


def window(i: int, start: float, stop: float, kind: str, targets: str = "one") -> Window:
    spec = {"kill": KillSpec, "pause": PauseSpec}[kind](kind=kind, targets=targets)
    return Window(start, stop, spec, i, seed=i)


def test_windows_run_in_order_and_are_recorded(tmp_path: Path) -> None:
    cluster = started(tmp_path)
    writer = HistoryWriter(tmp_path / "h.jsonl")
    nemesis = Nemesis(cluster, writer, "chaos")
    windows = [window(0, 0.0, 0.02, "kill", "all"), window(1, 0.03, 0.05, "pause", "majority")]

    asyncio.run(nemesis.run(windows, time.monotonic()))
    writer.close()
    ops = load_history(tmp_path / "h.jsonl").ops
    assert list(ops["f"]) == ["kill", "kill", "pause", "pause"]
    assert set(ops["type"]) == {"info"} and set(ops["process"]) == {"nemesis"}
    began = ops["value"][0].pop("began")
    assert 0 <= began <= ops["time"][0]  # when it started acting; the op is written after
    assert ops["value"][0].pop("leaders") == {"stream": None, "meta": "n1"}  # no stream here
    start = {"start": "kill", "window": "0", "targets": "all", "nodes": ["n1", "n2", "n3"]}
    assert ops["value"][0] == start
    assert ops["value"][1] == {"stop": "kill", "window": "0", "nodes": ["n1", "n2", "n3"]}
    assert len(ops["value"][2]["nodes"]) == 2
    assert all(cluster.up.values()) and not any(cluster.paused.values())
    paused = ops["value"][2]["nodes"]
    assert cluster.calls == (
        [("kill", n) for n in N3]
        + [("start_node", n) for n in N3]
        + [("pause", n) for n in paused]
        + [("resume", n) for n in paused]
    )
    assert nemesis.active == [] and nemesis.started == 2


def test_a_partition_records_when_its_cut_was_complete(tmp_path: Path) -> None:
    cluster = started(tmp_path)
    writer = HistoryWriter(tmp_path / "h.jsonl")
    nemesis = Nemesis(cluster, writer, "chaos")
    spec = PartitionSpec(kind="partition", shape="halves")
    asyncio.run(nemesis.run([Window(0.0, 0.02, spec, 0, seed=0)], time.monotonic()))
    writer.close()
    ops = load_history(tmp_path / "h.jsonl").ops
    start = ops["value"][0]
    assert start["began"] <= start["cut_at"] <= ops["time"][0]  # on the history's clock
    assert 0 <= start["cut_s"] <= (start["cut_at"] - start["began"]) / 1e9 + 1e-4
    assert ops["value"][1] == {"stop": "partition", "window": "0", "healed": True}


def test_heal_all_stops_active_faults_and_restarts_dead_nodes(tmp_path: Path) -> None:
    cluster = started(tmp_path)
    writer = HistoryWriter(tmp_path / "h.jsonl")
    nemesis = Nemesis(cluster, writer, "chaos")

    async def go() -> None:
        await nemesis.start(PauseFault(PauseSpec(kind="pause", targets="one")), nemesis.context(2))
        cluster.kill("n3")  # died outside any fault
        assert nemesis.active_kinds == ["pause"]
        await nemesis.heal_all()

    asyncio.run(go())
    writer.close()
    assert not any(cluster.paused.values()) and all(cluster.up.values())
    assert len(did(cluster, "pause")) == 1 and did(cluster, "start_node") == [("start_node", "n3")]
    assert nemesis.active == [] and did(cluster, "heal_network") == [("heal_network",)]
    ops = load_history(tmp_path / "h.jsonl").ops
    assert [v.get("stop") for v in ops["value"]] == [None, "pause"]


class BoomSpec(NodeFaultSpec):
    """A toy fault registered by this test module."""

    kind: Literal["boom"]
    fail_in: Literal["start", "stop"] = "start"


class BoomFault:
    """Kills its targets, then raises (in start or in stop, as its spec says)."""

    kind = "boom"

    def __init__(self, spec: BoomSpec) -> None:
        self.spec = spec
        self.nodes: list[str] = []
        self.stopped = 0

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        self.nodes = ["n1"]
        ctx.process().kill("n1")  # part of the fault happened before it raised
        if self.spec.fail_in == "start":
            raise RuntimeError("boom at start")
        return {"nodes": self.nodes}

    def stop(self, ctx: FaultContext) -> dict[str, Any]:
        if self.spec.fail_in == "stop":
            raise RuntimeError("boom at stop")
        for node in self.nodes:
            ctx.process().start_node(node)
        return {"nodes": self.nodes}


BOOM = FaultKind(BoomSpec, BoomFault, frozenset({PROCESS}))


@pytest.mark.parametrize("fail_in", ["start", "stop"])
def test_a_raising_fault_is_recorded_healed_and_later_windows_run(
    fail_in: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(faults.REGISTRY, "boom", BOOM)
    cluster = started(tmp_path)
    writer = HistoryWriter(tmp_path / "h.jsonl")
    nemesis = Nemesis(cluster, writer, "chaos")
    boom = BoomSpec(kind="boom", fail_in=fail_in)
    windows = [
        Window(0.0, 0.02, boom, 0, seed=0),
        window(1, 0.03, 0.05, "pause", "all"),
    ]

    async def go() -> None:
        await nemesis.run(windows, time.monotonic())
        await nemesis.heal_all()

    asyncio.run(go())
    writer.close()
    ops = load_history(tmp_path / "h.jsonl").ops
    assert list(ops["f"]) == ["boom", "boom", "pause", "pause"]
    assert set(ops["type"]) == {"info"} and set(ops["process"]) == {"nemesis"}
    failed = 0 if fail_in == "start" else 1
    assert ops["error"][failed] == f"RuntimeError: boom at {fail_in}"
    assert [i for i, e in enumerate(ops["error"]) if isinstance(e, str)] == [failed]
    value = ops["value"][failed]
    assert value.get(fail_in) == "boom" and "nodes" not in value
    # a fault whose start raised is still stopped at its window's end (it restarts n1);
    # one whose stop raised is repaired by heal_all (which starts every dead node)
    assert ops["value"][1].get("stop") == "boom"
    assert did(cluster, "kill") == [("kill", "n1")] and all(cluster.up.values())
    assert did(cluster, "start_node") == [("start_node", "n1")]
    assert ops["value"][2]["start"] == "pause" and ops["value"][2]["nodes"] == ["n1", "n2", "n3"]
    assert not any(cluster.paused.values()) and len(did(cluster, "heal_network")) == 1
    assert nemesis.active == [] and nemesis.started == 2


# The scenario's unions are built at import: dumping a spec added later warns (and still dumps it).
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_the_real_runner_survives_a_fault_that_kills_then_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(faults.REGISTRY, "boom", BOOM)
    sc = scenario().model_copy(update={"faults": (BoomSpec(kind="boom"),)})
    out, made = run(tmp_path, sc)
    assert out.broken is None, out.broken
    ops = history(out.run_dir)
    assert_well_formed(ops)
    booms = [op for op in ops if op["f"] == "boom"]
    starts = [op for op in booms if "start" in op["value"]]
    assert starts and all(op["error"] == "RuntimeError: boom at start" for op in starts)
    assert all(op["type"] == "info" and op["process"] == "nemesis" for op in booms)
    # healed: each window's end restarted n1, after its last kill and before the final reads
    calls = made[0].calls
    last_kill = max(i for i, c in enumerate(calls) if c == ("kill", "n1"))
    assert ("start_node", "n1") in calls[last_kill:]
    first_read = next(op["index"] for op in ops if op["f"] == "read")
    assert booms[-1]["value"].get("stop") == "boom" and booms[-1]["index"] < first_read
    reads = [op for op in ops if op["f"] == "read" and op["type"] == "ok"]
    assert sorted(r["node"] for r in reads) == ["n1", "n2", "n3"]  # the fake reads only live nodes
    assert out.result["valid"] is True, results.verdict_line(out.result)


def test_a_torn_power_loss_says_what_survived(tmp_path: Path) -> None:
    torn = [{"kind": "power-loss", "targets": "all", "coordinated": True, "keep": 0.5,
             "torn_write": True}]  # fmt: skip
    out, _ = run(tmp_path, scenario(faults=torn))
    ops = history(out.run_dir)
    starts = [op["value"] for op in ops if op["process"] == "nemesis" and "start" in op["value"]]
    assert starts, "no power loss ran"
    for v in starts:
        assert set(v["kept_bytes"]) == set(v["dropped_bytes"]) == set(v["nodes"])
        assert set(v["torn_bytes"]) == set(v["fsyncs"]) == set(v["nodes"])
    assert sum(sum(v["kept_bytes"].values()) for v in starts) > 0
    assert faults.label(scenario(faults=torn).faults[0]) == (
        "power-loss targets=all coordinated keep=0.5 torn"
    )
