"""Availability checker on a hand-made history: gaps, recovery after each fault, failure reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from checkers.availability import check_availability
from checkers.compose import check_history
from harness.history import load_history
from harness.results import check_loaded
from harness.workloads import REGISTRY as WORKLOADS

MS = 1_000_000


class H:
    """Ops written in time order; ``write`` is one publish (invoke at ``t`` ms, done 1 ms later)."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []
        self.proc = 0
        self.value = 0

    def op(self, t_ms: float, **kw: Any) -> None:
        self.ops.append({"index": len(self.ops), "time": int(t_ms * MS), **kw})

    def write(
        self, t_ms: float, outcome: str = "ok", error: str | None = None, f: str = "publish"
    ) -> None:
        self.value += 1
        p, v = self.proc, self.value
        self.op(t_ms, type="invoke", process=p, f=f, value=v, node="n1")
        extra = {"seq": v} if outcome == "ok" else {"error": error}
        self.op(t_ms + 1, type=outcome, process=p, f=f, value=v, node="n1", **extra)
        if outcome == "info":
            self.proc += 1  # a process whose op ended info is never reused

    def nemesis(self, t_ms: float, f: str, value: dict[str, Any]) -> None:
        self.op(t_ms, type="info", process="nemesis", f=f, value=value)

    def check(self, tmp_path: Path, context: dict[str, Any] | None = None) -> dict[str, Any]:
        path = tmp_path / "history.jsonl"
        path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in self.ops))
        return check_availability(load_history(path).ops, context or {})


def planted() -> H:
    """Writes every 100 ms for 10 s; a partition of the leader n1 from 3.0 s to 5.0 s."""
    h = H()
    for t in range(0, 3000, 100):  # acked 0 ... 2,900 ms
        h.write(t)
    leaders = {"stream": "n1", "meta": "n2"}
    start = {"start": "partition", "nodes": ["n1"], "began": 3000 * MS, "leaders": leaders}
    h.nemesis(3000, "partition", start)
    for t in range(3000, 5000, 200):  # 10 certain refusals while the leader is cut off
        h.write(t, "fail", "no-responders")
    h.write(4500, "info", "timeout")
    h.nemesis(5000, "partition", {"stop": "partition", "nodes": ["n1"]})
    h.write(5100, "info", "timeout")  # after the heal, before the first ack: still the fault's
    h.write(5200, "fail", "no-responders")
    for t in range(5400, 10000, 100):  # acked again from 5,401 ms
        if t == 8000:
            h.write(t, "info", "timeout")  # a failure outside any fault
            continue
        h.write(t)
    step = {"settle": "step-down", "preferred": "n3", "reply": {"success": True}}
    h.nemesis(10100, "step-down", step)
    waited = {"converged": True, "seconds": 0.3, "nudges": 1, "bound": 30.0, "nodes": {}}
    h.nemesis(10200, "recovery", {"settle": "recovery", **waited, "began": 9900 * MS})
    return h


def test_gaps_recovery_and_failure_reasons_per_fault(tmp_path: Path) -> None:
    r = planted().check(tmp_path)
    assert r["valid"] is True
    assert r["acknowledged"] == 30 + 45  # 0-2,900 ms, and 5,400-9,900 ms without 8,000
    assert r["failed"] == 10 + 1 + 2 + 1
    assert r["longest_gap"] == {"seconds": 2.5, "from_s": 2.901, "to_s": 5.401}
    [fault] = r["faults"]
    assert (fault["kind"], fault["nodes"], fault["start_s"], fault["stop_s"]) == (
        "partition",
        ["n1"],
        3.0,
        5.0,
    )
    assert fault["leaders"] == {"stream": "n1", "meta": "n2"}
    assert fault["acked"] == 0
    assert fault["first_ack_after_s"] == 0.401
    assert fault["unavailable_s"] == 2.5
    assert fault["failures"] == {"no-responders": 11, "timeout": 2}
    assert r["failures_outside"] == {"timeout": 1}
    assert r["recovery"] == {"converged": True, "seconds": 0.3, "bound": 30.0, "nudges": 1}
    assert r["step_downs"] == [{"time_s": 10.1, "preferred": "n3", "success": True, "error": None}]


def test_a_fault_after_which_nothing_was_acknowledged(tmp_path: Path) -> None:
    h = H()
    h.write(0)
    h.nemesis(100, "kill", {"start": "kill", "nodes": ["n1", "n2", "n3"], "began": 100 * MS})
    h.write(200, "info", "timeout")
    h.nemesis(300, "kill", {"stop": "kill", "nodes": ["n1", "n2", "n3"]})
    h.write(400, "fail", "api-error 503: JetStream system temporarily unavailable")
    r = h.check(tmp_path)
    [fault] = r["faults"]
    assert fault["first_ack_after_s"] is None
    assert fault["leaders"] is None  # an older history: not recorded
    assert fault["failures"] == {
        "timeout": 1,
        "api-error 503: JetStream system temporarily unavailable": 1,
    }
    assert r["longest_gap"] == {"seconds": 0.4, "from_s": 0.001, "to_s": 0.401}
    assert r["recovery"] is None and r["step_downs"] == []


def test_no_writes_at_all(tmp_path: Path) -> None:
    h = H()
    h.nemesis(0, "kill", {"start": "kill", "nodes": ["n1"], "began": 0})
    r = h.check(tmp_path)
    assert r["valid"] is True
    assert (r["acknowledged"], r["longest_gap"], r["faults"]) == (0, None, [])


def test_composed_by_name(tmp_path: Path) -> None:
    h = planted()
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in h.ops))
    result = check_history(load_history(path).ops, {}, ["availability"])
    assert result["valid"] is True and result["anomalies"] == []
    assert result["checkers"]["availability"]["longest_gap"]["seconds"] == 2.5


def mixed(writes: tuple[str, ...], other: str) -> H:
    """Each of ``writes`` in turn every 100 ms (0-1,900 ms, every 5th refused), ``other`` ops
    (reads, not writes) between; a kill 2.0-3.0 s, during which only ``other`` ops succeed
    and writes time out; writes acknowledged again from 3,200 ms to 3,900 ms."""
    h = H()
    for i, t in enumerate(range(0, 2000, 100)):
        f = writes[i % len(writes)]
        h.write(t, "fail", "wrong last sequence", f) if i % 5 == 4 else h.write(t, f=f)
        h.write(t + 50, f=other)
    h.nemesis(2000, "kill", {"start": "kill", "nodes": ["n1"], "began": 2000 * MS})
    for t in range(2000, 3000, 250):
        h.write(t, "info", "timeout", writes[0])
        h.write(t + 100, f=other)  # a read answered meanwhile is no acknowledged write
    h.nemesis(3000, "kill", {"stop": "kill", "nodes": ["n1"]})
    for i, t in enumerate(range(3200, 4000, 100)):
        h.write(t, f=writes[i % len(writes)])
    return h


WRITES = {
    "queue": ("publish", "read"),
    "dedup": ("publish", "read"),
    "consumer": ("publish", "fetch"),
    "counter": ("incr", "read"),
    "batch": ("batch", "read"),
    "kv": ("put", "get"),
    "cas": ("cas", "read"),
}


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_every_workload_measures_its_own_acknowledged_writes(workload: str, tmp_path: Path) -> None:
    spec = WORKLOADS[workload]
    assert "availability" in spec.checkers
    writes = spec.writes
    assert writes[0] == WRITES[workload][0]
    r = mixed(writes, WRITES[workload][1]).check(tmp_path, {"writes": writes})
    assert r["writes"] == list(writes)
    assert r["acknowledged"] == 16 + 8  # the reads in between count for nothing
    assert r["failed"] == 4 + 4
    [fault] = r["faults"]
    assert (fault["acked"], fault["first_ack_after_s"]) == (0, 0.201)
    assert fault["failures"] == {"timeout": 4}
    assert r["failures_outside"] == {"wrong last sequence": 4}
    # the last write before the kill (1,900 ms) was refused: the gap starts at 1,801 ms
    assert r["longest_gap"] == {"seconds": 1.4, "from_s": 1.801, "to_s": 3.201}


def test_kv_writes_of_every_kind_are_acknowledged_writes(tmp_path: Path) -> None:
    kv = WORKLOADS["kv"].writes
    assert set(kv) == {"put", "create", "update", "delete"}
    r = mixed(kv, "get").check(tmp_path, {"writes": kv})
    assert r["acknowledged"] == 24
    queue = mixed(kv, "get").check(tmp_path)  # the default writes are publishes: none here
    assert (queue["acknowledged"], queue["longest_gap"]) == (0, None)


def test_composed_for_a_workload_with_its_writes(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    h = mixed(("incr",), "read")
    path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in h.ops))
    result = check_loaded(load_history(path), ["n1"], "counter")
    a = result["checkers"]["availability"]
    assert (a["writes"], a["acknowledged"]) == (["incr"], 24)
