"""The nemesis against a fake cluster: ops recorded, faults undone, heal_all restores nodes,
and a fault that raises is recorded with its error while the run goes on."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Literal

import pytest

from harness import faults
from harness.faults import FaultContext, FaultKind
from harness.faults.base import NodeFaultSpec
from harness.faults.nemesis import Nemesis
from harness.faults.pause import PauseFault
from harness.faults.schedule import Window
from harness.history import HistoryWriter, load_history
from harness.monitor import HttpMonitor, NodeMonitor
from harness.scenario import KillSpec, PauseSpec


class FakeCluster:
    """Records what faults do to it; nodes are just flags."""

    def __init__(self, nodes: list[str]) -> None:
        self.nodes = nodes
        self.up = dict.fromkeys(nodes, True)
        self.paused = dict.fromkeys(nodes, False)
        self.calls: list[tuple[str, str]] = []
        self.healed = 0

    def kill(self, node: str) -> None:
        self.calls.append(("kill", node))
        self.up[node] = False

    def start_node(self, node: str) -> None:
        self.calls.append(("start", node))
        self.up[node] = True

    def pause(self, node: str) -> None:
        self.calls.append(("pause", node))
        self.paused[node] = True

    def resume(self, node: str) -> None:
        self.paused[node] = False

    def running(self, node: str) -> bool:
        return self.up[node]

    def terminate(self, node: str, timeout: float = 10.0) -> None:
        self.up[node] = False

    def monitor(self, node: str) -> NodeMonitor:
        return HttpMonitor("http://127.0.0.1:9")  # nothing listens: leader lookup finds none

    def isolate(self, grudge: dict[str, frozenset[str]]) -> None:
        self.calls.append(("isolate", ",".join(sorted(grudge))))

    def cut_clients(self, nodes: list[str], both_ways: bool) -> None:
        self.calls.append(("cut_clients", ",".join(nodes)))

    def heal_network(self) -> None:
        self.healed += 1


def window(i: int, start: float, stop: float, kind: str, targets: str = "one") -> Window:
    spec = {"kill": KillSpec, "pause": PauseSpec}[kind](kind=kind, targets=targets)
    return Window(start, stop, spec, i, seed=i)


def test_windows_run_in_order_and_are_recorded(tmp_path: Path) -> None:
    cluster = FakeCluster(["n1", "n2", "n3"])
    history = HistoryWriter(tmp_path / "h.jsonl")
    nemesis = Nemesis(cluster, history, "chaos")
    windows = [window(0, 0.0, 0.02, "kill", "all"), window(1, 0.03, 0.05, "pause", "majority")]

    asyncio.run(nemesis.run(windows, time.monotonic()))
    history.close()
    ops = load_history(tmp_path / "h.jsonl").ops
    assert list(ops["f"]) == ["kill", "kill", "pause", "pause"]
    assert set(ops["type"]) == {"info"} and set(ops["process"]) == {"nemesis"}
    began = ops["value"][0].pop("began")
    assert 0 <= began <= ops["time"][0]  # when it started acting; the op is written after
    assert ops["value"][0] == {"start": "kill", "targets": "all", "nodes": ["n1", "n2", "n3"]}
    assert ops["value"][1] == {"stop": "kill", "nodes": ["n1", "n2", "n3"]}
    assert len(ops["value"][2]["nodes"]) == 2
    assert all(cluster.up.values())
    assert [c for c, _ in cluster.calls] == ["kill"] * 3 + ["start"] * 3 + ["pause"] * 2
    assert nemesis.active == [] and nemesis.started == 2


def test_heal_all_stops_active_faults_and_restarts_dead_nodes(tmp_path: Path) -> None:
    cluster = FakeCluster(["n1", "n2", "n3"])
    history = HistoryWriter(tmp_path / "h.jsonl")
    nemesis = Nemesis(cluster, history, "chaos")

    async def go() -> None:
        await nemesis.start(PauseFault(PauseSpec(kind="pause", targets="one")), nemesis.context(2))
        cluster.kill("n3")  # died outside any fault
        assert nemesis.active_kinds == ["pause"]
        await nemesis.heal_all()

    asyncio.run(go())
    history.close()
    assert not any(cluster.paused.values()) and all(cluster.up.values())
    assert len([c for c in cluster.calls if c[0] == "pause"]) == 1
    assert nemesis.active == [] and cluster.healed == 1
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


@pytest.mark.parametrize("fail_in", ["start", "stop"])
def test_a_raising_fault_is_recorded_healed_and_later_windows_run(
    fail_in: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(faults.REGISTRY, "boom", FaultKind(BoomSpec, BoomFault))
    cluster = FakeCluster(["n1", "n2", "n3"])
    history = HistoryWriter(tmp_path / "h.jsonl")
    nemesis = Nemesis(cluster, history, "chaos")
    boom = BoomSpec(kind="boom", fail_in=fail_in)
    windows = [
        Window(0.0, 0.02, boom, 0, seed=0),
        window(1, 0.03, 0.05, "pause", "all"),
    ]

    async def go() -> None:
        await nemesis.run(windows, time.monotonic())
        await nemesis.heal_all()

    asyncio.run(go())
    history.close()
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
    assert ("start", "n1") in cluster.calls and all(cluster.up.values())
    assert ops["value"][2]["start"] == "pause" and ops["value"][2]["nodes"] == ["n1", "n2", "n3"]
    assert not any(cluster.paused.values()) and cluster.healed == 1
    assert nemesis.active == [] and nemesis.started == 2
