"""Availability checker on a hand-made history: gaps, recovery after each fault, failure reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from checkers.availability import check_availability
from checkers.compose import check_history
from harness.history import load_history

MS = 1_000_000


class H:
    """Ops written in time order; ``write`` is one publish (invoke at ``t`` ms, done 1 ms later)."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []
        self.proc = 0
        self.value = 0

    def op(self, t_ms: float, **kw: Any) -> None:
        self.ops.append({"index": len(self.ops), "time": int(t_ms * MS), **kw})

    def write(self, t_ms: float, outcome: str = "ok", error: str | None = None) -> None:
        self.value += 1
        p, v = self.proc, self.value
        self.op(t_ms, type="invoke", process=p, f="publish", value=v, node="n1")
        extra = {"seq": v} if outcome == "ok" else {"error": error}
        self.op(t_ms + 1, type=outcome, process=p, f="publish", value=v, node="n1", **extra)
        if outcome == "info":
            self.proc += 1  # a process whose op ended info is never reused

    def nemesis(self, t_ms: float, f: str, value: dict[str, Any]) -> None:
        self.op(t_ms, type="info", process="nemesis", f=f, value=value)

    def check(self, tmp_path: Path) -> dict[str, Any]:
        path = tmp_path / "history.jsonl"
        path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in self.ops))
        return check_availability(load_history(path).ops, {})


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
