"""The replica anomalies of the per-key workloads (counter, kv, cas), planted and counted.

Their final reads hold each key's last entry on a node, not whole streams, so
of the queue checker's replica anomalies they report the two that do not
depend on stream sequences (:func:`checkers.replicas.lost_and_stalled`):
``stream-lost`` (a read says the stream is gone there) and ``stalled`` (the
recovery wait left the replica behind at its bound). A stalled replica's
older entries are its backlog and a stream-lost node's empty ones are its
loss: neither is divergence. Each history: four nodes, n1 and n2 agree, n3
stalled one write behind, n4 without the stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from replica_cases import assert_stalled_and_stream_lost_shown, recovery_record

from checkers.cas import check_cas
from checkers.counter import check_counter
from checkers.kv import check_kv
from harness.history import load_history
from harness.workloads import REGISTRY as WORKLOADS

NODES = ["n1", "n2", "n3", "n4"]
MS = 1_000_000


class H:
    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []

    def op(self, type: str, process: Any, f: str, value: Any, **kw: Any) -> None:
        rec = {"index": len(self.ops), "time": len(self.ops) * MS, "type": type}
        self.ops.append(rec | {"process": process, "f": f, "value": value, "node": "n1", **kw})

    def pair(self, process: int, f: str, value: Any, done: Any = "same", **kw: Any) -> None:
        self.op("invoke", process, f, value)
        self.op("ok", process, f, value if done == "same" else done, **kw)

    def recovery(self) -> None:
        last = {"n1": 2, "n2": 2, "n3": 1, "n4": 2}
        self.op("info", "nemesis", "recovery", recovery_record(last, 2.0))

    def finals(self, f: str, agreed: Any, behind: Any, absent: Any) -> None:
        for i, (node, rows) in enumerate(zip(NODES, (agreed, agreed, behind, absent), strict=True)):
            extra = {"absent": True, "note": "stream chaos is absent on n4"} if node == "n4" else {}
            self.op("invoke", 100 + i, f, None, node=node)
            self.op("ok", 100 + i, f, rows, node=node, routes=0, **extra)

    def check(self, tmp_path: Path, checker: Any, pairs: frozenset[str]) -> dict[str, Any]:
        path = tmp_path / "history.jsonl"
        path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in self.ops))
        return checker(load_history(path, pairs_fs=pairs).ops, {"nodes": NODES})


def assert_named(r: dict[str, Any], workload: str) -> None:
    assert list(r["stream_lost"]) == ["n4"]
    assert r["stream_lost"]["n4"]["note"] == "stream chaos is absent on n4"
    [(node, st)] = r["stalled"].items()
    assert node == "n3" and st["read"] is True and st["bound_s"] == 2.0
    assert st["at_bound"] == {"answered": True, "last_seq": 1, "behind": 1, "top_seq": 2}
    assert r["divergence_count"] == 0  # n3's older entries and n4's empty ones are not
    assert {"stream-lost", "stalled"} <= set(WORKLOADS[workload].anomalies)
    assert_stalled_and_stream_lost_shown(r, 1, "2s")


def test_counter(tmp_path: Path) -> None:
    h = H()
    h.pair(1, "incr", [0, 1], total=1, seq=1)
    h.pair(2, "incr", [0, 2], total=3, seq=2)
    h.pair(3, "incr", [1, 5], total=5, seq=3)
    h.recovery()
    h.finals("read", [[0, 3], [1, 5]], [[0, 1], [1, 5]], [[0, 0], [1, 0]])
    r = h.check(tmp_path, check_counter, frozenset({"read"}))
    assert r["anomalies"] == ["lost-increment", "stream-lost", "stalled"]
    assert r["lost_increment_count"] == 3  # n3's key 0, n4's keys 0 and 1: below their sums
    assert_named(r, "counter")


def test_kv(tmp_path: Path) -> None:
    h = H()
    h.pair(1, "put", [0, 10], revision=1)
    h.pair(2, "put", [0, 11], revision=2)
    h.pair(3, "put", [1, 20], revision=3)
    h.recovery()
    h.finals(
        "read", [[0, 11, 2], [1, 20, 3]], [[0, 10, 1], [1, 20, 3]], [[0, None, 0], [1, None, 0]]
    )
    r = h.check(tmp_path, check_kv, frozenset())
    assert r["anomalies"] == ["lost-write", "stream-lost", "stalled"]
    assert r["lost_write_count"] == 3  # n3's key 0, n4's keys 0 and 1
    assert r["valid"] is False and r["linear"]["valid"] is True
    assert_named(r, "kv")


def test_cas(tmp_path: Path) -> None:
    h = H()
    h.pair(1, "read", [0, None], seq=0)
    h.pair(1, "cas", [0, [None, 100]], seq=1, expected_seq=0)
    h.pair(1, "read", [0, None], [0, 100], seq=1)
    h.pair(1, "cas", [0, [100, 101]], seq=2, expected_seq=1)
    h.recovery()
    h.finals("read-node", [[0, 2, 101]], [[0, 1, 100]], [[0, 0, -1]])
    r = h.check(tmp_path, check_cas, frozenset())
    assert r["anomalies"] == ["lost", "stream-lost", "stalled"]
    assert r["lost_count"] == 2  # n3 at seq 1, n4 at none: behind the last acked CAS
    assert r["linear_valid"] is True
    assert_named(r, "cas")
