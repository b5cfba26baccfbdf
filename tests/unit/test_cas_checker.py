"""The cas checker on hand-made histories with planted anomalies, counted exactly.

Histories are written as JSONL and read back with ``load_history``, so the
checker sees what a run leaves. :class:`H` keeps a model of the registers
(per key the last sequence and value, and the stream's last sequence), so a
history is consistent unless a test plants something.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from checkers.compose import check_history
from checkers.verdict import headline
from checkers.wellformed import check_wellformed
from harness.history import load_history

NODES = ["n1", "n2", "n3"]
COUNTS = (
    "invalid_key_count",
    "double_winner_count",
    "stale_read_count",
    "lost_count",
    "phantom_read_count",
    "divergence_count",
)


class H:
    """Builds a cas history; ops are sequential unless a test interleaves them by hand."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []
        self.regs: dict[int, tuple[int, int | None]] = {}  # key -> (seq, value)
        self.seq = 0
        self.value = 100
        self.procs = 2000

    def op(self, type: str, process: Any, f: str, value: Any = None, **kw: Any) -> None:
        rec = {"index": len(self.ops), "time": len(self.ops) * 10_000_000, "type": type}  # 10 ms
        self.ops.append(rec | {"process": process, "f": f, "value": value, "node": "n1", **kw})

    def read(self, p: int, key: int, f: str = "read") -> tuple[int, int | None]:
        """A leader (or direct) read of the model's register; what it returned."""
        seq, value = self.regs.get(key, (0, None))
        self.op("invoke", p, f, [key, None])
        self.op("ok", p, f, [key, value], seq=seq)
        return seq, value

    def cas_invoke(self, p: int, key: int, seen: tuple[int, int | None]) -> list[Any]:
        self.value += 1
        value = [key, [seen[1], self.value]]
        self.op("invoke", p, "cas", value)
        return value

    def cas_ok(self, p: int, value: list[Any], expected_seq: int, field: str = "expected_seq"):
        """The CAS won: applied to the model at the next stream sequence."""
        self.seq += 1
        self.regs[value[0]] = (self.seq, value[1][1])
        self.op("ok", p, "cas", value, seq=self.seq, **{field: expected_seq})

    def cas(self, p: int, key: int, outcome: str = "ok") -> None:
        """Read then CAS expecting what was read; ``fail``/``info`` ones are not applied."""
        seen = self.read(p, key)
        value = self.cas_invoke(p, key, seen)
        if outcome == "ok":
            self.cas_ok(p, value, seen[0])
        elif outcome == "fail":
            self.op("fail", p, "cas", value, error="wrong last sequence (expected 0)")
        else:
            self.op("info", p, "cas", value, error="timeout")

    def finals(self, **override: dict[int, tuple[int, int]]) -> None:
        """Every node's final read: the model's registers, or ``override[node]`` over them."""
        for node in NODES:
            self.procs += 1
            regs = {**self.regs, **override.get(node, {})}
            rows = [[k, s, -1 if v is None else v] for k, (s, v) in sorted(regs.items())]
            self.op("invoke", self.procs, "read-node", None, node=node)
            self.op("ok", self.procs, "read-node", rows, node=node, routes=0, leader="n1")


def run(h: H, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in h.ops))
    ops = load_history(path).ops
    assert check_wellformed(ops, {})["valid"] is True
    composed = check_history(ops, {"nodes": NODES}, ["cas"], "cas")
    json.dumps(composed)  # results.json takes it as it is: plain Python values only
    composed["line"] = headline(composed).line
    return composed


def counts(r: dict[str, Any]) -> tuple[int, ...]:
    return tuple(r[k] for k in COUNTS)


def clean() -> H:
    """Three keys: won, refused and unknown CAS writes, fresh direct reads."""
    h = H()
    for i in range(9):
        h.cas(i % 3, key=i % 3)
    h.cas(3, key=0, outcome="fail")
    h.cas(4, key=1, outcome="info")  # not applied: the model does not move
    h.read(5, key=2, f="read-direct")
    h.read(5, key=0, f="read-direct")
    return h


def test_a_clean_history_is_valid_with_every_count(tmp_path: Path) -> None:
    h = clean()
    h.finals()
    composed = run(h, tmp_path)
    r = composed["checkers"]["cas"]
    assert composed["valid"] is True and r["anomalies"] == []
    assert counts(r) == (0, 0, 0, 0, 0, 0)
    assert (r["cas_count"], r["cas_ok_count"], r["cas_fail_count"], r["cas_info_count"]) == (
        11,
        9,
        1,
        1,
    )
    assert (r["key_count"], r["read_count"], r["direct_read_count"]) == (3, 11, 2)
    assert r["linear"]["op_count"] == 21  # 11 reads, 9 won and 1 unknown CAS writes
    assert r["linear"]["fail_count"] == 1 and r["linear"]["ignored_count"] == 5
    assert r["summary"]["headline"] == (
        "9 CAS writes on 3 keys linearizable; 0 of 2 direct reads stale"
    )
    assert composed["line"] == (
        "VALID: 9 CAS writes on 3 keys linearizable; 0 of 2 direct reads stale"
    )
    assert r["finals"]["2"] == {"acked": [9, 109], "nodes": {n: [9, 109] for n in NODES}}
    assert r["leader"] == "n1" and r["unread_nodes"] == []
    assert r["summary"]["examples"] == []


def test_a_planted_double_winner(tmp_path: Path) -> None:
    h = H()
    h.cas(0, key=0)
    a, b = h.read(1, key=0), h.read(2, key=0)  # both read seq 1
    va, vb = h.cas_invoke(1, 0, a), h.cas_invoke(2, 0, b)
    h.cas_ok(1, va, expected_seq=1)
    h.cas_ok(2, vb, expected_seq=1)  # the server let both win
    h.cas(3, key=1)
    h.finals()
    composed = run(h, tmp_path)
    r = composed["checkers"]["cas"]
    assert composed["valid"] is False
    assert r["anomalies"] == ["non-linearizable", "double-winner"]
    assert counts(r) == (1, 1, 0, 0, 0, 0)
    assert r["double_winner_op_count"] == 2
    assert r["linear"]["windows"][0]["key"] == 0
    assert r["summary"]["headline"] == (
        "1 of 2 keys not linearizable (cas-register; first: key 0); "
        "1 expected sequences with two winners"
    )
    first = r["summary"]["examples"][0]
    assert first["title"] == "Double winners"
    # key, expected seq, expected value, new value, ack seq, process, line, acked at (s)
    assert first["rows"] == [[0, 1, 101, 102, 2, 1, 9, 0.1], [0, 1, 101, 103, 3, 2, 10, 0.11]]
    assert r["summary"]["examples"][1]["title"] == "Key 0: not linearizable"


def test_a_double_winner_of_one_stream_sequence_over_two_keys(tmp_path: Path) -> None:
    h = H()
    a, b = h.read(1, key=0), h.read(2, key=1)
    va, vb = h.cas_invoke(1, 0, a), h.cas_invoke(2, 1, b)
    h.cas_ok(1, va, 0, field="expected_stream_seq")
    h.cas_ok(2, vb, 0, field="expected_stream_seq")  # both expected an empty stream
    h.finals()
    r = run(h, tmp_path)["checkers"]["cas"]
    assert r["anomalies"] == ["double-winner"]  # each key alone is linearizable
    assert counts(r) == (0, 1, 0, 0, 0, 0) and r["double_winner_op_count"] == 2


def test_a_planted_stale_direct_read_is_counted_not_a_violation(tmp_path: Path) -> None:
    h = clean()
    h.procs += 1
    h.op("invoke", 50, "read-direct", [1, None], node="n3")
    h.op("ok", 50, "read-direct", [1, 102], seq=2, node="n3")  # key 1 is at seq 8 = 108
    # invoked while the write it misses is in flight: not stale
    seen = h.read(6, key=1)
    h.op("invoke", 51, "read-direct", [1, None], node="n2")
    value = h.cas_invoke(6, 1, seen)
    h.cas_ok(6, value, seen[0])
    h.op("ok", 51, "read-direct", [1, 108], seq=8, node="n2")
    h.finals()
    composed = run(h, tmp_path)
    r = composed["checkers"]["cas"]
    assert composed["valid"] is True and r["anomalies"] == []
    assert counts(r) == (0, 0, 1, 0, 0, 0)
    assert r["direct_read_count"] == 4
    assert composed["line"] == (
        "VALID: 10 CAS writes on 3 keys linearizable; 1 of 4 direct reads stale"
    )
    (stale,) = r["summary"]["examples"]
    assert stale["title"] == "Stale direct reads"
    # key, value read, seq read, node, process, line, invoked (s), missed value/seq, acked at
    assert stale["rows"] == [[1, 102, 2, "n3", 50, 49, 0.48, 108, 8, 0.31]]
    counted = {c["name"]: (c["value"], c["bad"]) for c in r["summary"]["counts"]}
    assert counted["stale direct reads"] == (1, False)


def test_lost_divergent_and_phantom_finals(tmp_path: Path) -> None:
    h = clean()
    h.op("invoke", 60, "read-direct", [2, None])
    h.op("ok", 60, "read-direct", [2, 999], seq=9)  # never written
    h.finals(n2={0: (4, 104)}, n3={0: (7, 555)})  # n2 behind on key 0; n3: another value
    composed = run(h, tmp_path)
    r = composed["checkers"]["cas"]
    assert composed["valid"] is False
    assert r["anomalies"] == ["lost", "phantom-read", "divergence"]
    assert counts(r) == (0, 0, 0, 2, 2, 1)
    assert r["per_node"]["n2"] == {"status": "read", "note": None, "key_count": 3, "lost_count": 1}
    assert r["per_node"]["n3"]["lost_count"] == 1  # the last acked seq with another value
    assert r["summary"]["headline"] == (
        "2 replicas LOST an acknowledged write; 2 reads of a value never written; "
        "1 keys divergent between replicas"
    )
    lost, phantom, divergent = r["summary"]["examples"]
    assert lost["rows"] == [["n2", 0, 4, 104, 7, 107], ["n3", 0, 7, 555, 7, 107]]
    assert phantom["rows"] == [["direct", 2, 999, 9, "n1"], ["final", 0, 555, 7, "n3"]]
    assert divergent["rows"] == [
        [0, "seq 7 = 107", "n1", "n1: seq 7 = 107; n2: seq 4 = 104; n3: seq 7 = 555"]
    ]


def test_a_replica_at_the_acked_seq_with_another_value_is_lost(tmp_path: Path) -> None:
    h = clean()
    h.finals(n2={1: (8, 104)})  # 104 was written to key 0: a value of another key
    r = run(h, tmp_path)["checkers"]["cas"]
    assert r["anomalies"] == ["lost", "phantom-read", "divergence"]
    assert counts(r) == (0, 0, 0, 1, 1, 1)


def test_no_node_read_is_unknown(tmp_path: Path) -> None:
    h = clean()
    for i, n in enumerate(NODES):
        h.op("invoke", 70 + i, "read-node", None, node=n)
        h.op("info", 70 + i, "read-node", None, node=n, error="timeout")
    composed = run(h, tmp_path)
    r = composed["checkers"]["cas"]
    assert r["valid"] == "unknown" and r["anomalies"] == []
    assert r["unread_nodes"] == NODES
    assert r["summary"]["headline"] == "unread nodes: n1, n2, n3"
