"""Consumer checker on hand-made histories with planted anomalies, counted exactly.

Each history is written as JSONL and read back with ``load_history``, so the
checker is exercised through the history contract (docs/contracts.md §1 and
``harness/workloads/consumer.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from checkers.compose import check_history
from checkers.consumer import check_consumer
from checkers.verdict import headline
from checkers.wellformed import check_wellformed
from harness.history import load_history

STATE = {"present": True, "delivered_stream": 0, "num_pending": 0, "num_ack_pending": 0,
         "num_redelivered": 0, "num_waiting": 0}  # fmt: skip


class C:
    """Builds a consumer history op by op (each op one nanosecond after the last)."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []
        self.seq = 0
        self.proc = 100

    def op(self, type: str, process: Any, f: str, value: Any = None, **kw: Any) -> int:
        t = self.ops[-1]["time"] + 1 if self.ops else 0
        rec = {"index": len(self.ops), "time": t, "type": type, "process": process, "f": f}
        self.ops.append(rec | {"value": value, "node": kw.pop("node", "n1"), **kw})
        return len(self.ops) - 1

    def publish(self, value: int, outcome: str = "ok") -> None:
        self.op("invoke", 0, "publish", value)
        if outcome == "ok":
            self.seq += 1
            self.op("ok", 0, "publish", value, seq=self.seq)
        else:
            self.op(outcome, 0, "publish", value, error="timeout")

    def publishes(self, n: int) -> None:
        for v in range(n):
            self.publish(v)

    def fetch(self, worker: int, triples: list[list[int]], node: str = "n1") -> None:
        self.op("invoke", worker, "fetch", {"worker": worker, "batch": 10}, node=node)
        self.op("ok", worker, "fetch", triples, node=node, worker=worker)

    def ack(self, worker: int, seq: int, value: int, outcome: str = "ok") -> None:
        self.op("invoke", worker, "ack", [seq, value])
        err = {} if outcome == "ok" else {"error": "timeout"}
        self.op(outcome, worker, "ack", [seq, value], **err)
        if outcome == "info":
            raise AssertionError("a process is retired after info: use ack_info")

    def ack_info(self, seq: int, value: int) -> None:
        self.proc += 1
        self.op("invoke", self.proc, "ack", [seq, value])
        self.op("info", self.proc, "ack", [seq, value], error="timeout")

    def consume(self, worker: int, triples: list[list[int]]) -> None:
        """A fetch, then a confirmed ack of each message."""
        self.fetch(worker, triples)
        for seq, value, _ in triples:
            self.ack(worker, seq, value)

    def drain(
        self,
        quads: list[list[int]] | None = None,
        batches: list[int] | None = None,
        state: dict[str, Any] | None = None,
        drained: bool = True,
        floor: int = 0,
    ) -> None:
        quads = quads or []
        st = STATE | {"ack_floor_stream": floor} if state is None else state
        self.op("invoke", 99, "drain", None)
        self.op("ok", 99, "drain", quads, batches=batches or ([len(quads)] if quads else []),
                drained=drained, ack_errors=[], state=st, error_seen=None)  # fmt: skip

    def write(self, tmp_path: Path) -> Path:
        path = tmp_path / "history.jsonl"
        path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in self.ops))
        return path


def run(c: C, tmp_path: Path) -> dict[str, Any]:
    """The consumer checker's result; every history built here is well-formed, too."""
    ops = load_history(c.write(tmp_path)).ops
    wellformed = check_wellformed(ops, {})
    assert wellformed["valid"] is True, wellformed["summary"]
    return check_consumer(ops, {})


def line(c: C, tmp_path: Path) -> str:
    ops = load_history(c.write(tmp_path)).ops
    return headline(check_history(ops, {}, ["consumer"], headline="consumer")).line


def clean() -> C:
    c = C()
    c.publishes(6)
    c.consume(3, [[1, 0, 1], [2, 1, 1], [3, 2, 1]])
    c.consume(4, [[4, 3, 1], [5, 4, 1], [6, 5, 1]])
    return c


def test_a_clean_history_is_valid(tmp_path: Path) -> None:
    c = clean()
    c.drain(floor=6)
    r = run(c, tmp_path)
    assert r["valid"] is True and r["anomalies"] == []
    assert (r["attempt_count"], r["acknowledged_count"], r["delivered_count"]) == (6, 6, 6)
    assert (r["delivery_count"], r["redelivery_count"], r["acks_confirmed_count"]) == (6, 0, 6)
    assert r["lost_to_consumer_count"] == r["redelivered_after_ack_count"] == 0
    assert r["out_of_order_count"] == r["unexpected_count"] == 0
    assert r["consumer_state_mismatches"] == [] and r["highest_contiguous_ack"] == 6
    assert r["num_delivered_histogram"] == {"1": 6}
    assert r["summary"]["examples"] == []
    assert r["summary"]["row"] == {
        "acknowledged": 6,
        "lost_to_consumer": 0,
        "lost_pct": 0.0,
        "redelivered_after_ack": 0,
    }
    assert (
        line(c, tmp_path)
        == "VALID: 6 acknowledged publishes, all delivered; 0 redelivered after ack"
    )


def test_acknowledged_publishes_never_delivered_are_lost_to_the_consumer(tmp_path: Path) -> None:
    c = C()
    c.publishes(6)
    c.publish(6, outcome="info")  # unknown and never delivered: allowed
    c.consume(3, [[1, 0, 1], [2, 1, 1]])
    c.drain([[3, 2, 1, 1], [4, 3, 1, 1]], floor=4)  # the drain delivers two more; 4, 5 never
    r = run(c, tmp_path)
    assert r["valid"] is False and r["anomalies"] == ["lost-to-consumer"]
    assert r["lost_to_consumer_count"] == 2 and r["lost_to_consumer"] == [4, 5]
    assert (r["attempt_count"], r["acknowledged_count"], r["delivered_count"]) == (7, 6, 4)
    assert r["summary"]["row"]["lost_pct"] == 33.33
    [table] = r["summary"]["examples"]
    assert table["title"] == "Lost to the consumer"
    assert [row[:2] for row in table["rows"]] == [[4, 5], [5, 6]]  # value, seq
    assert table["rows"][0][2].startswith("#9 p0 n1 ")  # the publish ok op
    assert line(c, tmp_path) == ("INVALID: 2 of 6 acknowledged publishes never delivered (33.33%)")


def test_a_delivery_after_a_confirmed_ack_is_counted_and_shown(tmp_path: Path) -> None:
    c = C()
    c.publishes(4)
    c.consume(3, [[1, 0, 1], [2, 1, 1]])  # 0 and 1 acked, confirmed
    # worker 4's fetch began before worker 3's ack of 2 was confirmed: a redelivery, allowed
    c.op("invoke", 4, "fetch", {"worker": 4, "batch": 10})
    c.fetch(3, [[3, 2, 1]])
    c.ack(3, 3, 2)
    c.op("ok", 4, "fetch", [[3, 2, 2]], worker=4)
    c.fetch(5, [[2, 1, 2]])  # after the confirmed ack of 1: counted
    c.ack_info(2, 1)
    c.fetch(5, [[4, 3, 1]])  # 3 delivered, its ack unknown
    c.ack_info(4, 3)
    # the drain: 0 again (acked in the main phase), 3 twice (acked in its first fetch)
    c.drain([[1, 0, 2, 1], [4, 3, 2, 1], [4, 3, 3, 1]], batches=[2, 1], floor=4)
    r = run(c, tmp_path)
    assert r["anomalies"] == ["redelivered-after-ack"]
    assert r["redelivered_after_ack_count"] == 3
    assert r["redelivered_after_ack_values"] == 3  # values 1, 0, 3
    assert r["redelivery_count"] == 5
    assert r["num_delivered_histogram"] == {"1": 4, "2": 4, "3": 1}
    [table] = r["summary"]["examples"]
    assert table["title"] == "Redelivered after a confirmed ack"
    assert [row[:2] + row[4:] for row in table["rows"]] == [[1, 2, 2], [0, 1, 2], [3, 4, 3]]
    assert line(c, tmp_path) == "INVALID: 3 redelivered after a confirmed ack"


def test_out_of_order_first_deliveries_per_worker(tmp_path: Path) -> None:
    c = C()
    c.publishes(6)
    c.consume(3, [[1, 0, 1], [3, 2, 1]])  # skipped seq 2 …
    c.consume(3, [[2, 1, 1]])  # … and came back to it: out of order
    c.fetch(4, [[4, 3, 1], [6, 5, 1]])
    c.ack(4, 6, 5)
    c.ack_info(4, 3)
    c.fetch(4, [[4, 3, 2]])  # a redelivery below: out of order by nature, not counted
    c.ack_info(4, 3)
    c.fetch(5, [[5, 4, 1], [4, 3, 1]])  # 4 is first, then 3 again with count 1: forgotten
    c.ack_info(5, 4)
    c.drain(floor=6)
    r = run(c, tmp_path)
    assert r["anomalies"] == ["out-of-order"]
    assert r["out_of_order_count"] == 1
    assert r["out_of_order_per_worker"] == {"3": 1, "4": 0, "5": 0}
    assert r["redelivered_as_new_count"] == 1
    [table] = r["summary"]["examples"]
    assert table["rows"][0][:3] == [3, 2, 1]  # worker, seq, value
    assert line(c, tmp_path) == "INVALID: 1 delivered out of order"


@pytest.mark.parametrize(
    ("state", "drained", "checks"),
    [
        (STATE | {"ack_floor_stream": 3}, True, []),
        (STATE | {"ack_floor_stream": 2}, True, ["ack floor"]),  # 3 contiguous acks confirmed
        ({"present": False}, False, ["present"]),
        (STATE | {"ack_floor_stream": 1, "num_pending": 7}, False, ["ack floor", "num_pending"]),
        (STATE | {"ack_floor_stream": 3, "num_pending": 7}, True, []),  # a drained drain
        (STATE | {"ack_floor_stream": 3, "num_ack_pending": 2}, False, []),  # ack_wait: allowed
    ],
)
def test_the_consumer_state_after_the_drain_against_the_acks(
    tmp_path: Path, state: dict[str, Any], drained: bool, checks: list[str]
) -> None:
    c = C()
    c.publishes(5)
    c.consume(3, [[1, 0, 1], [2, 1, 1]])
    c.fetch(3, [[3, 2, 1], [4, 3, 1], [5, 4, 1]])
    c.ack(3, 3, 2)
    c.ack(3, 5, 4)  # 4 is never confirmed: contiguous confirmed acks end at 3
    c.ack_info(4, 3)
    c.drain(state=state, drained=drained)
    r = run(c, tmp_path)
    assert r["highest_contiguous_ack"] == 3
    assert [m["check"] for m in r["consumer_state_mismatches"]] == checks
    assert r["anomalies"] == (["consumer-state-mismatch"] if checks else [])
    assert r["valid"] is (not checks)
    if checks:
        tables = {t["title"]: t for t in r["summary"]["examples"]}
        assert len(tables["Consumer state mismatches"]["rows"]) == len(checks)


def test_the_consumer_gone_is_a_mismatch_and_its_headline_says_so(tmp_path: Path) -> None:
    c = clean()
    c.drain(state={"present": False}, drained=False)
    assert line(c, tmp_path) == "INVALID: the consumer is gone (6 acks were confirmed)"


def test_values_never_published_are_unexpected(tmp_path: Path) -> None:
    c = clean()
    c.consume(4, [[7, 99, 1], [8, -1, 1]])  # -1: a payload that was not an integer
    c.drain(floor=8)
    r = run(c, tmp_path)
    assert r["anomalies"] == ["unexpected"]
    assert r["unexpected_count"] == 2 and r["unexpected"] == [-1, 99]


def test_without_a_drain_nothing_is_lost_and_the_verdict_is_unknown(tmp_path: Path) -> None:
    c = C()
    c.publishes(3)
    c.consume(3, [[1, 0, 1]])
    c.op("invoke", 99, "drain", None)
    c.op("info", 99, "drain", None, error="timeout")
    r = run(c, tmp_path)
    assert r["valid"] == "unknown" and r["anomalies"] == []
    assert r["lost_to_consumer_count"] is None
    assert line(c, tmp_path) == ("UNKNOWN: no final drain completed: deliveries cannot be decided")


def test_a_drain_that_could_not_read_the_state_is_unknown(tmp_path: Path) -> None:
    c = clean()
    c.op("invoke", 99, "drain", None)
    c.op("ok", 99, "drain", [], batches=[], drained=False, ack_errors=[], state=None)
    r = run(c, tmp_path)
    assert r["valid"] == "unknown" and r["anomalies"] == []
    assert r["lost_to_consumer_count"] == 0
    assert line(c, tmp_path) == "UNKNOWN: the drain could not read the consumer's state"
