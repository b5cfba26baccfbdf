"""Queue checker on hand-made histories with planted anomalies, counted exactly.

Each history is written as JSONL to a temporary file and read back with
``load_history``, so the checker is exercised through the history contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from checkers.compose import REGISTRY, check_history, check_safe, merge_valid
from checkers.queue import check_queue
from checkers.schema import MalformedHistory
from checkers.verdict import headline
from checkers.wellformed import check_wellformed
from harness.history import load_history

NODES = ["n1", "n2", "n3"]
SEC = 1_000_000_000


class H:
    """Builds a queue history op by op; ``publish`` writes an invoke and its completion."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []
        self.seq = 0
        self.read_proc = 1000

    def op(self, type: str, process: Any, f: str, value: Any = None, **kw: Any) -> None:
        time = kw.pop("time", None)
        time = self.now() if time is None else time
        rec = {"index": len(self.ops), "time": time, "type": type}
        self.ops.append(rec | {"process": process, "f": f, "value": value, **kw})

    def now(self) -> int:
        """A time after the last op's: histories built here are monotonic unless told otherwise."""
        return self.ops[-1]["time"] + 1 if self.ops else 0

    def publish(
        self, process: int, value: int, outcome: str = "ok", time: int | None = None
    ) -> None:
        time = self.now() if time is None else time
        self.op("invoke", process, "publish", value, node="n1", time=time)
        extra: dict[str, Any] = {"time": time + 1}
        if outcome == "ok":
            self.seq += 1
            extra["seq"] = self.seq
        else:
            extra["error"] = "timeout"
        self.op(outcome, process, "publish", value, node="n1", **extra)

    def read(self, node: str, pairs: Any, outcome: str = "ok", **kw: Any) -> None:
        self.read_proc += 1
        self.op("invoke", self.read_proc, "read", None, node=node)
        value = pairs if outcome == "ok" else None
        self.op(outcome, self.read_proc, "read", value, node=node, **kw)

    def write(self, tmp_path: Path) -> Path:
        path = tmp_path / "history.jsonl"
        path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in self.ops))
        return path


def run(h: H, tmp_path: Path) -> dict[str, Any]:
    """The queue checker's result; every history built here is well-formed, too."""
    ops = load_history(h.write(tmp_path), pairs_fs=frozenset({"read"})).ops
    wellformed = check_wellformed(ops, {})
    assert wellformed["valid"] is True, wellformed["summary"]
    result = check_queue(ops, {"nodes": NODES})
    as_lists = check_queue(load_history(h.write(tmp_path)).ops, {"nodes": NODES})
    assert as_lists == result  # pair values as lists or as arrays: the same result
    return result


def stream(values: list[int], start: int = 1) -> list[list[int]]:
    return [[start + i, v] for i, v in enumerate(values)]


def test_clean_history_is_valid(tmp_path: Path) -> None:
    h = H()
    for v in range(6):
        h.publish(v % 2, v)
    h.op("info", "nemesis", "kill", {"start": "kill", "nodes": ["n2"]})
    for n in NODES:
        h.read(n, stream(list(range(6))))
    r = run(h, tmp_path)
    assert r["valid"] is True
    assert r["anomalies"] == []
    assert (r["attempt_count"], r["acknowledged_count"], r["read_count"], r["ok_count"]) == (
        6,
        6,
        6,
        6,
    )
    assert r["lost_count"] == r["unexpected_count"] == r["duplicated_count"] == 0
    assert r["lost_ack_time"] == {"first": None, "last": None}
    assert r["per_node"]["n2"] == {
        "status": "read",
        "note": None,
        "read_count": 6,
        "lost_count": 0,
        "lost": [],
    }
    assert r["unread_nodes"] == []


def test_lost_split_into_prefix_middle_postfix(tmp_path: Path) -> None:
    h = H()
    # process 0 writes 0..9; read back 3..6 minus 5 -> prefix {0,1,2}, middle {5}, postfix {7,8,9}
    for v in range(10):
        h.publish(0, v, time=v * SEC)
    # process 1 writes 20..22, none read -> all postfix
    for v in (20, 21, 22):
        h.publish(1, v, time=(v - 10) * SEC)
    kept = [3, 4, 6]
    for n in NODES:
        h.read(n, stream(kept))
    r = run(h, tmp_path)
    assert r["valid"] is False
    assert r["anomalies"] == ["lost"]
    assert r["lost_count"] == 10
    assert r["lost"] == [0, 1, 2, 5, 7, 8, 9, 20, 21, 22]
    assert r["lost_breakdown"] == {"prefix": 3, "middle": 1, "postfix": 6}
    # acks at v*SEC + 1 ns: lost 0 acked at ~0 s, lost 22 at ~12 s
    assert r["lost_ack_time"]["first"] == pytest.approx(1e-9)
    assert r["lost_ack_time"]["last"] == pytest.approx(12 + 1e-9)
    hist = r["summary"]["over_time"]["overall"]
    assert hist["bucket_s"] == 0.01  # 12 s of acks in at most 2,000 buckets
    assert hist["start_s"] == 0
    lost_at = [0, 1, 2, 5, 7, 8, 9, 10, 11, 12]  # seconds: v for process 0, v - 10 for 1
    assert len(hist["counts"]) == 1201 and sum(hist["counts"]) == 10
    assert [i for i, c in enumerate(hist["counts"]) if c] == [100 * t for t in lost_at]
    per_node = r["summary"]["over_time"]["per_node"]
    assert {n: sum(h["counts"]) for n, h in per_node.items()} == dict.fromkeys(NODES, 10)
    assert r["per_node"]["n1"]["lost_count"] == 10
    assert r["divergence"]["count"] == 0


def test_unexpected_recovered_unknown(tmp_path: Path) -> None:
    h = H()
    h.publish(0, 1)
    h.publish(0, 2, "fail")
    h.publish(0, 3, "info")  # read back: recovered
    h.publish(1, 4, "info")  # never read: unknown
    h.publish(2, 5, "fail")  # never read: failed, as the client was told
    for n in NODES:
        h.read(n, stream([1, 3, 99, 100]))  # 99 and 100 were never attempted
    r = run(h, tmp_path)
    assert r["attempt_count"] == 5
    assert r["acknowledged_count"] == 1
    assert r["read_count"] == 4
    assert r["ok_count"] == 2
    assert (r["unexpected_count"], r["unexpected"]) == (2, [99, 100])
    assert (r["recovered_count"], r["recovered"]) == (1, [3])
    assert r["failed_count"] == 2
    assert r["unknown_count"] == 1
    assert r["failed_but_read_count"] == 0
    assert r["lost_count"] == 0
    assert r["valid"] is False
    assert r["anomalies"] == ["unexpected"]


def test_a_definitely_failed_publish_that_was_read_is_an_anomaly(tmp_path: Path) -> None:
    h = H()
    h.publish(0, 1)
    h.publish(0, 2, "fail")  # the client was told "not written"...
    h.publish(0, 3, "fail")
    h.publish(1, 4, "info")
    for n in NODES:
        h.read(n, stream([1, 2, 4]))  # ...yet 2 is in the stream
    r = run(h, tmp_path)
    assert (r["failed_but_read_count"], r["failed_but_read"]) == (1, [2])
    assert r["failed_count"] == 1
    assert r["recovered_count"] == 2  # 2 and 4: not acknowledged, read
    assert r["unknown_count"] == 0
    assert r["valid"] is False
    assert r["anomalies"] == ["failed-but-read"]


def test_duplicated_counted_once_per_value(tmp_path: Path) -> None:
    h = H()
    for v in range(4):
        h.publish(0, v)
    dup = [[1, 0], [2, 1], [3, 1], [4, 2], [5, 3], [6, 1], [7, 3]]  # 1 three times, 3 twice
    for n in NODES:
        h.read(n, dup)
    r = run(h, tmp_path)
    assert (r["duplicated_count"], r["duplicated"]) == (2, [1, 3])
    assert r["lost_count"] == 0
    assert r["anomalies"] == ["duplicated"]
    assert r["valid"] is False


def test_same_pair_read_twice_on_a_node_is_not_a_duplicate(tmp_path: Path) -> None:
    h = H()
    for v in range(3):
        h.publish(0, v)
    for n in NODES:
        h.read(n, stream([0, 1, 2]))
    h.read("n1", stream([0, 1, 2]))  # a second, identical read of n1
    r = run(h, tmp_path)
    assert r["duplicated_count"] == 0
    assert r["valid"] is True


def test_value_missing_on_one_node(tmp_path: Path) -> None:
    h = H()
    for v in range(5):
        h.publish(0, v)
    h.read("n1", stream([0, 1, 2, 3, 4]))
    h.read("n2", stream([0, 1, 2, 3, 4]))
    h.read("n3", [[1, 0], [2, 1], [4, 3]])  # lacks 2 and 4
    r = run(h, tmp_path)
    assert r["lost_count"] == 0
    assert r["per_node"]["n3"]["lost_count"] == 2
    assert r["per_node"]["n3"]["lost"] == [2, 4]
    missing = r["divergence"]["missing_on_node"]
    assert missing["n3"] == {"count": 2, "sample": [2, 4]}
    assert missing["n1"]["count"] == missing["n2"]["count"] == 0
    assert r["divergence"]["same_seq_different_value"]["count"] == 0
    assert r["divergence"]["count"] == 2
    assert r["anomalies"] == ["divergence"]
    assert r["valid"] is False


def test_same_seq_different_value_on_two_nodes(tmp_path: Path) -> None:
    h = H()
    for v in range(4):
        h.publish(0, v)
    h.read("n1", [[1, 0], [2, 1], [3, 2], [4, 3]])
    h.read("n2", [[1, 0], [2, 1], [3, 2], [4, 3]])
    h.read("n3", [[1, 0], [2, 1], [3, 3], [4, 2]])  # seqs 3 and 4 swapped
    r = run(h, tmp_path)
    same = r["divergence"]["same_seq_different_value"]
    assert same["count"] == 2
    assert same["examples"][0] == {"seq": 3, "values": {"n1": 2, "n2": 2, "n3": 3}}
    assert same["examples"][1]["seq"] == 4
    assert r["divergence"]["count"] == 2
    assert r["lost_count"] == r["duplicated_count"] == 0
    assert r["valid"] is False
    assert r["anomalies"] == ["divergence"]


def test_unread_node_is_not_evidence(tmp_path: Path) -> None:
    h = H()
    for v in range(3):
        h.publish(0, v)
    h.read("n1", stream([0, 1, 2]))
    h.read("n2", stream([0, 1, 2]))
    h.read("n3", None, "info", error="timeout")
    r = run(h, tmp_path)
    assert r["unread_nodes"] == ["n3"]
    n3 = r["per_node"]["n3"]
    assert n3["status"] == "unread"
    assert n3["lost_count"] is None
    assert "timeout" in n3["note"]
    assert r["divergence"]["missing_on_node"].keys() == {"n1", "n2"}
    assert r["valid"] is True


def test_empty_read_with_note_counts_losses_on_that_node(tmp_path: Path) -> None:
    h = H()
    for v in range(4):
        h.publish(0, v)
    h.read("n1", stream([0, 1, 2, 3]))
    h.read("n2", stream([0, 1, 2, 3]))
    h.read("n3", [], note="stream not found")
    r = run(h, tmp_path)
    n3 = r["per_node"]["n3"]
    assert n3["status"] == "empty"
    assert n3["note"] == "stream not found"
    assert (n3["read_count"], n3["lost_count"], n3["lost"]) == (0, 4, [0, 1, 2, 3])
    assert r["unread_nodes"] == []
    assert r["lost_count"] == 0  # the other nodes hold everything
    assert r["divergence"]["missing_on_node"]["n3"]["count"] == 4
    assert r["valid"] is False


def test_node_without_any_read_is_unread(tmp_path: Path) -> None:
    h = H()
    h.publish(0, 1)
    h.read("n1", stream([1]))
    r = run(h, tmp_path)
    assert r["unread_nodes"] == ["n2", "n3"]
    assert r["valid"] is True


def test_no_reads_is_unknown(tmp_path: Path) -> None:
    h = H()
    h.publish(0, 1)
    h.publish(0, 2)
    r = run(h, tmp_path)
    assert r["valid"] == "unknown"
    assert r["unread_nodes"] == NODES


def test_every_read_failed_is_unknown(tmp_path: Path) -> None:
    h = H()
    h.publish(0, 1)
    for n in NODES:
        h.read(n, None, "fail", error="no responders")
    r = run(h, tmp_path)
    assert r["valid"] == "unknown"
    assert r["lost_count"] == 1  # reported, but without a readable node it proves nothing


def test_check_history_composes_and_merges(tmp_path: Path) -> None:
    h = H()
    h.publish(0, 1)
    h.publish(0, 2)
    for n in NODES:
        h.read(n, stream([1]))
    ops = load_history(h.write(tmp_path)).ops
    names = ["wellformed", "stats", "queue", "logs"]
    result = check_history(ops, {"nodes": NODES}, names, headline="queue")
    assert list(result["checkers"]) == names
    assert result["checkers"]["stats"]["valid"] is True
    assert result["checkers"]["wellformed"]["valid"] is True
    assert result["checkers"]["logs"] == {  # composed without a nodes/ folder: says so
        "valid": "unknown",
        "error": "checker logs raised ValueError: no nodes_dir in the context: "
        "no server logs to read",
    }
    assert result["valid"] is False
    assert result["anomalies"] == ["lost"]
    assert result["headline_checker"] == "queue"
    assert headline(result).line == "INVALID: LOST 1 of 2 acknowledged writes (50.00%)"


def test_check_history_refuses_unknown_names() -> None:
    with pytest.raises(ValueError, match="no checker named nope"):
        check_history(pd.DataFrame(), {}, ["stats", "nope"])
    with pytest.raises(ValueError, match="headline checker 'queue' is not among stats"):
        check_history(pd.DataFrame(), {}, ["stats"], headline="queue")
    linear = {"linear-register", "linear-cas-register", "linear-kv"}
    assert {"wellformed", "stats", "queue", "logs", *linear} <= set(REGISTRY)  # + workloads'


def test_check_safe_turns_a_raise_into_unknown(tmp_path: Path) -> None:
    def broken(ops: Any, context: dict) -> dict:
        raise KeyError("nodes")

    r = check_safe("broken", broken, None, {})
    assert r["valid"] == "unknown"
    assert "broken" in r["error"] and "KeyError" in r["error"]


def test_queue_checker_on_garbage_values_is_malformed_history_not_a_crash(
    tmp_path: Path,
) -> None:
    """A publish value that is not an integer breaks the contract: bad input, naming the line."""
    h = H()
    h.op("invoke", 0, "publish", 1)
    h.op("ok", 0, "publish", 1)
    h.op("invoke", 1, "publish", "not-a-number")
    h.op("ok", 1, "publish", "not-a-number")
    ops = load_history(h.write(tmp_path)).ops
    with pytest.raises(MalformedHistory) as err:
        check_safe("queue", check_queue, ops, {"nodes": NODES})
    assert err.value.line == 3
    assert str(err.value) == "line 3: publish value 'not-a-number' is not a 64-bit integer"


@pytest.mark.parametrize(
    ("vs", "expected"),
    [
        ((True, True), True),
        ((True, "unknown"), "unknown"),
        (("unknown", False, True), False),
        ((), True),
    ],
)
def test_merge_valid_worst_wins(vs: tuple, expected: Any) -> None:
    assert merge_valid(*vs) == expected


def test_merge_valid_rejects_other_values() -> None:
    with pytest.raises(ValueError):
        merge_valid(True, "maybe")
