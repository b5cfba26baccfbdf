"""Counter checker on hand-made histories with planted anomalies, counted exactly.

Each history is written as JSONL and read back with ``load_history`` (with
the workload's ``pairs_fs``, and without), so the checker is exercised
through the history contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from checkers.compose import check_history
from checkers.counter import check_counter
from checkers.verdict import headline
from checkers.wellformed import check_wellformed
from harness.history import load_history

NODES = ["n1", "n2", "n3"]
COUNTS = (
    "lost_increment_count",
    "phantom_increment_count",
    "inconsistent_total_count",
    "duplicate_total_count",
    "divergence_count",
)


class H:
    """Builds a counter history; ``incr`` applies to a model counter unless told otherwise."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []
        self.totals: dict[int, int] = {}
        self.seq = 0
        self.read_proc = 1000

    def op(self, type: str, process: Any, f: str, value: Any = None, **kw: Any) -> None:
        rec = {"index": len(self.ops), "time": len(self.ops) * 10, "type": type}
        self.ops.append(rec | {"process": process, "f": f, "value": value, **kw})

    def incr(
        self, process: int, key: int, n: int, outcome: str = "ok", total: int | None = None
    ) -> None:
        """An increment; ``ok`` and ``info`` ones are applied to the model, ``fail`` ones not;
        ``total`` overrides the total the ack reports (the model is not changed by it)."""
        self.op("invoke", process, "incr", [key, n], node="n1")
        if outcome == "fail":
            self.op("fail", process, "incr", [key, n], node="n1", error="no-responders")
            return
        self.totals[key] = self.totals.get(key, 0) + n
        self.seq += 1
        if outcome == "info":
            self.op("info", process, "incr", [key, n], node="n1", error="timeout")
            return
        told = self.totals[key] if total is None else total
        self.op("ok", process, "incr", [key, n], node="n1", total=told, seq=self.seq)

    def read(self, node: str, totals: dict[int, int] | None = None, outcome: str = "ok") -> None:
        """``node``'s final read: the model's totals, or ``totals`` (``info``: not read)."""
        self.read_proc += 1
        self.op("invoke", self.read_proc, "read", None, node=node)
        held = self.totals if totals is None else totals
        value = sorted([k, v] for k, v in held.items()) if outcome == "ok" else None
        self.op(outcome, self.read_proc, "read", value, node=node)

    def read_all(self, **override: dict[int, int]) -> None:
        for n in NODES:
            self.read(n, override.get(n))


def run(h: H, tmp_path: Path) -> dict[str, Any]:
    """The counter checker's result, the same with reads loaded as arrays or as lists."""
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in h.ops))
    ops = load_history(path, pairs_fs=frozenset({"read"})).ops
    assert check_wellformed(ops, {})["valid"] is True
    result = check_counter(ops, {"nodes": NODES})
    assert check_counter(load_history(path).ops, {"nodes": NODES}) == result
    return result


def counts(r: dict[str, Any]) -> tuple[int, ...]:
    return tuple(r[k] for k in COUNTS)


def test_clean_history_with_unknown_and_failed_increments_is_valid(tmp_path: Path) -> None:
    h = H()
    for i in range(12):
        h.incr(i % 3, key=i % 2, n=i + 1)
    h.incr(3, key=0, n=50, outcome="info")  # applied: the final total includes it
    h.incr(4, key=1, n=7, outcome="info")
    h.totals[1] -= 7  # ... this one was not applied after all
    h.incr(5, key=1, n=9, outcome="fail")
    h.incr(5, key=1, n=2)
    h.read_all()
    r = run(h, tmp_path)
    assert r["valid"] is True and r["anomalies"] == []
    assert counts(r) == (0, 0, 0, 0, 0)
    assert (r["attempt_count"], r["acknowledged_count"], r["failed_count"]) == (16, 13, 1)
    assert (r["unknown_count"], r["unknown_sum"], r["key_count"]) == (2, 57, 2)
    assert r["acknowledged_sum"] == sum(range(1, 13)) + 2
    assert r["per_key"]["0"]["low"] == 1 + 3 + 5 + 7 + 9 + 11
    assert r["per_key"]["0"]["high"] == r["per_key"]["0"]["low"] + 50
    assert r["per_key"]["1"]["finals"] == {"n1": [44], "n2": [44], "n3": [44]}
    assert r["summary"]["headline"] == (
        "13 acknowledged increments over 2 counters, every replica within bounds"
    )
    assert r["summary"]["examples"] == []


def test_a_replica_below_the_acknowledged_sum_is_lost_and_divergent(tmp_path: Path) -> None:
    h = H()
    for _ in range(5):
        h.incr(0, key=0, n=10)
        h.incr(1, key=1, n=3)
    h.read_all(n2={0: 30, 1: 15}, n3={0: 40, 1: 15})  # n2, n3 lost key 0's last ones
    r = run(h, tmp_path)
    assert r["valid"] is False
    assert r["anomalies"] == ["lost-increment", "divergence"]
    assert counts(r) == (2, 0, 0, 0, 1)
    assert r["lost_amount"] == 20  # the most any replica of key 0 is short
    assert r["per_node"]["n2"] == {
        "status": "read",
        "note": None,
        "lost_count": 1,
        "phantom_count": 0,
    }
    assert r["summary"]["row"] == {"acknowledged": 10, "lost": 2, "lost_pct": 30.77}
    assert r["summary"]["headline"] == (
        "LOST increments on 2 of 6 replica counters (20 of 65 acknowledged); "
        "1 counters divergent between replicas"
    )
    lost, divergent = r["summary"]["examples"]
    assert lost["title"] == "Lost increments"
    assert lost["rows"] == [["n2", 0, 30, 50, "50..50"], ["n3", 0, 40, 50, "50..50"]]
    assert divergent["rows"] == [[0, "n1: [50]; n2: [30]; n3: [40]"]]


def test_a_stream_gone_everywhere_loses_every_counter(tmp_path: Path) -> None:
    h = H()
    h.incr(0, key=0, n=4)
    h.incr(0, key=2, n=6)
    h.read_all(**{n: {0: 0, 1: 0, 2: 0} for n in NODES})  # what an absent stream reads as
    r = run(h, tmp_path)
    assert counts(r) == (6, 0, 0, 0, 0)
    assert r["key_count"] == 3 and r["lost_amount"] == 10
    assert r["summary"]["row"]["lost_pct"] == 100.0


def test_a_total_above_every_unknown_increment_is_phantom(tmp_path: Path) -> None:
    h = H()
    h.incr(0, key=0, n=5)
    h.incr(1, key=0, n=8, outcome="info")
    h.incr(2, key=0, n=1, outcome="fail")
    h.read_all(n1={0: 13}, n2={0: 14}, n3={0: 5})  # 13: the info applied; 14: the failed too
    r = run(h, tmp_path)
    assert r["anomalies"] == ["phantom-increment", "divergence"]
    assert counts(r) == (0, 1, 0, 0, 1)
    assert r["per_node"]["n2"]["phantom_count"] == 1
    assert r["summary"]["examples"][0]["rows"] == [["n2", 0, 14, 5, "5..13"]]


def test_a_missing_key_in_a_read_is_zero_and_a_key_never_incremented_is_bounded(
    tmp_path: Path,
) -> None:
    h = H()
    h.incr(0, key=0, n=5)
    h.read_all(n1={}, n2={0: 5, 7: 3}, n3={0: 5})
    r = run(h, tmp_path)
    assert counts(r) == (1, 1, 0, 0, 2)  # n1's key 0 reads 0; key 7 was never incremented
    assert r["per_node"]["n1"]["lost_count"] == 1 and r["per_node"]["n2"]["phantom_count"] == 1


def test_totals_that_forgot_an_acknowledged_increment_are_inconsistent(tmp_path: Path) -> None:
    h = H()
    h.incr(0, key=0, n=5)  # total 5
    h.incr(1, key=0, n=3, total=3)  # the server forgot the 5: 3 instead of 8
    h.incr(0, key=0, n=4, total=7)  # and counts on from there
    h.incr(0, key=1, n=2)
    h.read_all(**{n: {0: 7, 1: 2} for n in NODES})
    r = run(h, tmp_path)
    # by total: 3 (n=3), 5 (n=5), 7 (n=4): 5 - 5 < 3 and 7 - 4 < 5, each cannot follow the last
    assert counts(r) == (3, 0, 2, 0, 0)
    bad = r["summary"]["examples"][1]
    assert bad["title"] == "Inconsistent totals"
    assert bad["rows"] == [[0, 1, 5, 5, 0, 0, 0.0, 2, 3, 0], [0, 3, 4, 7, 0, 4, 0.0, 1, 5, 0]]


def test_a_gap_the_unknown_increments_cannot_fill_is_inconsistent(tmp_path: Path) -> None:
    h = H()
    h.incr(0, key=0, n=5)
    h.incr(1, key=0, n=3, outcome="info")  # applied: room for 3 before the next ack
    h.incr(2, key=0, n=5)  # 13: fine
    h.incr(2, key=0, n=5, total=25)  # 25 - 15 = 10 unaccounted, only 3 unknown: bad
    h.incr(2, key=0, n=5, total=30)  # follows 25 exactly: the same 10 unaccounted, not again
    h.read_all(n1={0: 30}, n2={0: 23}, n3={0: 23})
    r = run(h, tmp_path)
    assert counts(r) == (0, 1, 1, 0, 1)  # n1's 30 > 20 + 3 as well


def test_an_unknown_increment_invoked_after_the_ack_cannot_fill_its_gap(tmp_path: Path) -> None:
    h = H()
    h.incr(0, key=0, n=5)
    h.incr(0, key=0, n=5, total=20)  # 10 unaccounted before this ack came back ...
    h.incr(1, key=0, n=10, outcome="info")  # ... and the only unknown increment started later
    h.read_all(**{n: {0: 20} for n in NODES})
    r = run(h, tmp_path)
    assert counts(r) == (0, 0, 1, 0, 0)
    h2 = H()
    h2.incr(1, key=0, n=10, outcome="info")  # the same unknown increment invoked first: fine
    h2.incr(0, key=0, n=5, total=15)
    h2.incr(0, key=0, n=5, total=20)
    h2.read_all(**{n: {0: 20} for n in NODES})
    assert counts(run(h2, tmp_path)) == (0, 0, 0, 0, 0)


def test_a_total_returned_twice_is_a_duplicate(tmp_path: Path) -> None:
    h = H()
    h.incr(0, key=0, n=5)  # 5
    h.incr(1, key=0, n=5, total=5)  # 5 again
    h.incr(2, key=1, n=5)  # another key's 5 is no duplicate
    h.incr(0, key=0, n=4, total=14)  # 10 + 4: the second 5 was counted after all
    h.read_all(**{n: {0: 14, 1: 5} for n in NODES})
    r = run(h, tmp_path)
    assert r["anomalies"] == ["inconsistent-total", "duplicate-total"]
    assert counts(r) == (0, 0, 1, 1, 0)
    titles = [e["title"] for e in r["summary"]["examples"]]
    assert titles == ["Inconsistent totals", "Duplicate totals"]
    assert [row[1] for row in r["summary"]["examples"][1]["rows"]] == [1, 2]  # their seqs


def test_an_invoke_without_completion_is_unknown(tmp_path: Path) -> None:
    h = H()
    h.incr(0, key=0, n=5)
    h.op("invoke", 1, "incr", [0, 6], node="n2")  # the history ends before its completion
    h.read_all(**{n: {0: 11} for n in NODES})
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in h.ops))
    r = check_counter(load_history(path, frozenset({"read"})).ops, {"nodes": NODES})
    assert counts(r) == (0, 0, 0, 0, 0)
    assert (r["unknown_count"], r["per_key"]["0"]["high"]) == (1, 11)


def test_negative_increments_are_bounded_but_not_ordered(tmp_path: Path) -> None:
    h = H()
    h.incr(0, key=0, n=5)
    h.incr(0, key=0, n=-3)
    h.incr(1, key=0, n=-4, outcome="info")
    h.incr(2, key=1, n=6)
    h.read_all(n1={0: -2, 1: 6}, n2={0: 2, 1: 6}, n3={0: -3, 1: 6})
    r = run(h, tmp_path)
    assert r["per_key"]["0"]["low"] == -2 and r["per_key"]["0"]["high"] == 2
    assert counts(r) == (1, 0, 0, 0, 1)  # n3's -3 is below; the order check skips key 0
    assert r["order_checked_keys"] == 1


def test_no_node_read_is_unknown_and_unread_nodes_are_named(tmp_path: Path) -> None:
    h = H()
    h.incr(0, key=0, n=5)
    for n in NODES:
        h.read(n, outcome="info")
    r = run(h, tmp_path)
    assert r["valid"] == "unknown"
    assert r["unread_nodes"] == NODES
    assert r["summary"]["headline"] == "unread nodes: n1, n2, n3"


def test_composed_by_name_with_the_headline(tmp_path: Path) -> None:
    h = H()
    h.incr(0, key=0, n=5)
    h.read_all(n1={0: 4})
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in h.ops))
    ops = load_history(path, frozenset({"read"})).ops
    result = check_history(ops, {"nodes": NODES}, ["wellformed", "counter"], "counter")
    assert result["valid"] is False and result["anomalies"] == ["lost-increment", "divergence"]
    assert headline(result).line == (
        "INVALID: LOST increments on 1 of 3 replica counters (1 of 5 acknowledged); "
        "1 counters divergent between replicas"
    )


def test_a_gap_too_big_for_an_earlier_ack_counts_there_too(tmp_path: Path) -> None:
    h = H()
    h.incr(0, key=0, n=5, total=15)  # acked before any unknown increment was invoked
    h.incr(1, key=0, n=10, outcome="info")
    h.incr(2, key=0, n=5, total=10)  # acked after it
    h.read_all(**{n: {0: 20} for n in NODES})
    r = run(h, tmp_path)
    # by total: 10 (n=5: 5 unaccounted, the unknown 10 was invoked before its ack: fine), then
    # 15 (n=5: the same 5 unaccounted, but no unknown increment was invoked before its ack)
    assert counts(r) == (0, 0, 1, 0, 0)
    assert [row[3] for row in r["summary"]["examples"][0]["rows"]] == [15]
