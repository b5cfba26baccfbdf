"""Queue checker on hand-made histories with planted anomalies, counted exactly.

Each history is written as JSONL to a temporary file and read back with
``load_history``, so the checker is exercised through the history contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
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
    h.read("n3", [[1, 0], [2, 1], [4, 3]])  # lacks 2 (seq 3, a hole) and 4 (seq 5, its end)
    r = run(h, tmp_path)
    assert r["lost_count"] == 0
    assert r["per_node"]["n3"]["lost_count"] == 2
    assert r["per_node"]["n3"]["lost"] == [2, 4]
    missing = r["divergence"]["missing_on_node"]
    assert missing["n3"] == {"count": 2, "sample": [2, 4]}
    assert missing["n1"]["count"] == missing["n2"]["count"] == 0
    assert r["divergence"]["same_seq_different_value"]["count"] == 0
    assert r["divergence"]["count"] == 1  # seq 5: n3 is not stalled, so it ended short
    assert r["divergence"]["short_nodes"] == {
        "n3": {"count": 1, "range_count": 1, "ranges": [[5, 5]]}
    }
    assert list(r["holes"]) == ["n3"]
    assert (r["holes"]["n3"]["count"], r["holes"]["n3"]["ranges"]) == (1, [[3, 3]])
    assert r["anomalies"] == ["holes", "divergence"]
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
    assert r["anomalies"] == ["replica-groups"]
    assert [g["nodes"] for g in r["divergence"]["groups"]] == [["n1", "n2"], ["n3"]]


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


# ---- replica anomalies: stream-lost, stalled, replica-groups, holes ---------------------

RETRY = "Expected first catchup entry to be a snapshot and peerstate, will retry"


def check(h: H, tmp_path: Path, nodes: list[str], nodes_dir: Path | None = None) -> dict:
    """The queue checker over ``nodes``, with the run's ``nodes/`` folder when given."""
    ops = load_history(h.write(tmp_path), pairs_fs=frozenset({"read"})).ops
    assert check_wellformed(ops, {})["valid"] is True
    return check_queue(ops, {"nodes": nodes, "nodes_dir": nodes_dir})


def recovery(h: H, last: dict[str, int | None], bound: float = 1.0) -> None:
    """The runner's record of a recovery wait that reached ``bound`` with these last seqs."""
    views = {
        n: None if s is None else {"present": True, "messages": s, "first_seq": 1, "last_seq": s}
        for n, s in last.items()
    }
    value = {"settle": "recovery", "converged": False, "seconds": bound, "nudges": 0}
    h.op("info", "nemesis", "recovery", value | {"nodes": views, "bound": bound})


def test_two_group_divergence_is_two_groups_with_their_ranges_and_lost_windows(
    tmp_path: Path,
) -> None:
    h = H()
    for v in range(22):  # value v acknowledged at v s (+1 ns)
        h.publish(0, v, time=v * SEC)
    both = stream(list(range(10)))  # seqs 1-10 agree
    a = both + stream(list(range(10, 15)), start=11)  # {n1, n2}: seqs 11-15 hold 10-14
    b = both + stream([15, 16, 17, 18, 19, 20, 21], start=11)  # {n3}: 15-21 at seqs 11-17
    h.read("n1", a)
    h.read("n2", a)
    h.read("n3", b)
    r = run(h, tmp_path)
    div = r["divergence"]
    assert div["count"] == 7  # seqs 11-15 conflict, 16-17 {n1, n2} lack: each seq once
    assert div["conflict_seqs"] == {"count": 5, "range_count": 1, "ranges": [[11, 15]]}
    assert div["short_nodes"] == {
        n: {"count": 2, "range_count": 1, "ranges": [[16, 17]]} for n in ("n1", "n2")
    }
    g1, g2 = div["groups"]
    assert (g1["nodes"], g1["messages"], g1["seqs"]["ranges"]) == (["n1", "n2"], 15, [[1, 15]])
    assert (g2["nodes"], g2["messages"], g2["seqs"]["ranges"]) == (["n3"], 17, [[1, 17]])
    assert g1["lost"] == {
        "count": 7,
        "window_count": 1,
        "windows": [{"from_s": 15.0, "to_s": 21.0, "count": 7}],
    }
    assert g2["lost"] == {
        "count": 5,
        "window_count": 1,
        "windows": [{"from_s": 10.0, "to_s": 14.0, "count": 5}],
    }
    assert (g1["only_here"], g2["only_here"]) == (5, 7)
    assert r["lost_count"] == 0
    assert r["anomalies"] == ["replica-groups", "divergence"]
    assert r["summary"]["headline"] == (
        "2 replica groups disagree on 5 stream sequences ({n1, n2} | {n3}); "
        "replica n1 lacks 2 stream sequences other replicas end with; "
        "replica n2 lacks 2 stream sequences other replicas end with"
    )
    assert r["summary"]["notes"][0] == (
        "Replica group {n1, n2}: 15 messages at stream sequences 1–15; lacks 7 acknowledged "
        "writes another group holds, acknowledged in 1 window: 15.0–21.0s (7)."
    )
    [table] = [e for e in r["summary"]["examples"] if e["title"] == "Replica groups"]
    assert [row[0] for row in table["rows"]] == ["{n1, n2}", "{n3}"]


def test_lost_windows_break_where_a_group_holds_a_write_acknowledged_between() -> None:
    from checkers.replicas import lost_windows

    times = np.arange(10) * SEC
    lacking = np.array([1, 1, 0, 1, 0, 0, 1, 1, 1, 0], dtype=bool)
    w = lost_windows(times, lacking)
    assert (w["count"], w["window_count"]) == (6, 3)
    assert [(x["from_s"], x["to_s"], x["count"]) for x in w["windows"]] == [
        (0.0, 1.0, 2),
        (3.0, 3.0, 1),
        (6.0, 8.0, 3),
    ]


def test_a_replica_behind_a_prefix_at_the_recovery_bound_is_stalled_not_divergent(
    tmp_path: Path,
) -> None:
    h = H()
    for v in range(10):
        h.publish(0, v)
    recovery(h, {"n1": 10, "n2": 10, "n3": 6}, bound=2.0)
    h.read("n1", stream(list(range(10))))
    h.read("n2", stream(list(range(10))))
    h.read("n3", stream(list(range(7))))  # caught up to 7 by the read: still a prefix
    logs = tmp_path / "nodes"
    (logs / "n3").mkdir(parents=True)
    line = f"[9] 2026/12/01 12:00:00.000000 [WRN] RAFT [abc - S-R3F] {RETRY}"
    (logs / "n3" / "nats-server.log").write_text("\n".join([line] * 3) + "\n")
    r = check(h, tmp_path, NODES, logs)
    assert r["anomalies"] == ["stalled"]
    assert r["valid"] is False
    assert r["divergence"]["count"] == 0
    assert r["divergence"]["short_nodes"] == {} and r["holes"] == {}
    st = r["stalled"]["n3"]
    assert st["at_bound"] == {"answered": True, "last_seq": 6, "behind": 4, "top_seq": 10}
    assert (st["read"], st["read_last_seq"], st["read_behind"]) == (True, 7, 3)
    assert st["prefix_consistent"] is True
    assert st["log"] == [{"line": line, "count": 3}]
    assert r["summary"]["headline"] == (
        "STALLED n3 (4 stream sequences behind at the 2s recovery bound)"
    )
    rows = {row["node"]: row["status"] for row in r["summary"]["nodes"]}
    assert rows == {"n1": "read", "n2": "read", "n3": "stalled"}
    # the same reads without the recovery record: nothing says n3 was still catching up
    h2 = H()
    h2.ops = [o for o in h.ops if o["f"] != "recovery"]
    assert check(h2, tmp_path, NODES)["anomalies"] == ["divergence"]


def test_a_stalled_replica_that_could_not_be_read_is_still_stalled(tmp_path: Path) -> None:
    h = H()
    for v in range(5):
        h.publish(0, v)
    recovery(h, {"n1": 5, "n2": 5, "n3": None})  # n3 did not even answer /jsz
    h.read("n1", stream(list(range(5))))
    h.read("n2", stream(list(range(5))))
    h.read("n3", None, "info", error="n3 holds the stream but does not serve direct gets")
    r = check(h, tmp_path, NODES)
    assert r["anomalies"] == ["stalled"]
    assert r["unread_nodes"] == ["n3"]
    assert r["stalled"]["n3"]["at_bound"]["behind"] is None
    assert r["stalled"]["n3"]["read"] is False
    assert r["summary"]["headline"] == "STALLED n3 (did not answer at the 1s recovery bound)"


def test_a_middle_range_missing_while_serving_reads_is_a_hole(tmp_path: Path) -> None:
    h = H()
    for v in range(10):
        h.publish(0, v, time=v * SEC)
    full = stream(list(range(10)))
    h.read("n1", full)
    h.read("n2", full[:3] + full[7:])  # seqs 4-7 (values 3-6) missing, 8-10 held
    h.read("n3", full)
    r = run(h, tmp_path)
    assert r["anomalies"] == ["holes"]
    hole = r["holes"]["n2"]
    assert (hole["count"], hole["range_count"], hole["ranges"]) == (4, 1, [[4, 7]])
    assert hole["lost"]["windows"] == [{"from_s": 3.0, "to_s": 6.0, "count": 4}]
    assert r["divergence"]["count"] == 0
    assert r["lost_count"] == 0
    assert r["summary"]["headline"] == "holes on n2: 4 stream sequences missing in 1 range"
    n2 = next(row for row in r["summary"]["nodes"] if row["node"] == "n2")
    assert n2["status"] == "holes"
    assert {c["name"]: c["value"] for c in n2["counts"]}["holes"] == 4


def test_a_stream_absent_on_a_node_that_had_it_is_stream_lost(tmp_path: Path) -> None:
    h = H()
    for v in range(4):
        h.publish(0, v)
    h.read("n1", stream(list(range(4))))
    h.read("n2", [], note="stream chaos is absent on n2", absent=True)
    h.read("n3", None, "info", error="timeout")  # unread: not evidence either way
    logs = tmp_path / "nodes"
    (logs / "n2").mkdir(parents=True)
    orphan = "[3] 2026/12/01 12:00:00.000000 [WRN] Detected orphaned stream '$G > chaos'"
    (logs / "n2" / "nats-server.log").write_text(orphan + "\n")
    r = check(h, tmp_path, NODES, logs)
    assert r["anomalies"] == ["stream-lost"]
    assert r["stream_lost"] == {
        "n2": {"note": "stream chaos is absent on n2", "log": [{"line": orphan, "count": 1}]}
    }
    assert r["per_node"]["n2"]["lost_count"] == 4
    assert r["divergence"]["count"] == 0
    assert r["unread_nodes"] == ["n3"]
    assert r["summary"]["headline"] == "STREAM LOST on n2"
    # composed with the logs checker, the verdict line names both
    ops = load_history(h.write(tmp_path), pairs_fs=frozenset({"read"})).ops
    context = {"nodes": NODES, "nodes_dir": logs}
    result = check_history(ops, context, ["queue", "logs"], headline="queue")
    assert result["anomalies"] == ["stream-lost", "orphaned"]
    assert headline(result).line == (
        "INVALID: STREAM LOST on n2; ORPHANED: the server deleted the stream as orphaned on n2"
    )


def test_a_stalled_replica_that_disagrees_is_stalled_and_in_its_own_group(tmp_path: Path) -> None:
    h = H()
    for v in range(8):
        h.publish(0, v)
    recovery(h, {"n1": 8, "n2": 8, "n3": 5})
    h.read("n1", stream(list(range(8))))
    h.read("n2", stream(list(range(8))))
    h.read("n3", stream([0, 1, 2, 3, 99]))  # behind, and seq 5 holds a value nobody published
    r = check(h, tmp_path, NODES)
    assert r["anomalies"] == ["unexpected", "stalled", "replica-groups"]
    assert r["stalled"]["n3"]["prefix_consistent"] is False
    assert r["stalled"]["n3"]["read_behind"] == 3  # seqs 6-8: its backlog, not divergence
    assert r["divergence"]["count"] == 1  # seq 5 only
    assert [g["nodes"] for g in r["divergence"]["groups"]] == [["n1", "n2"], ["n3"]]


def test_nothing_read_means_no_loss_is_known(tmp_path: Path) -> None:
    """An interrupted run (no final reads) or one whose nodes all went unread: the checker's
    own lost count is every acknowledged write, but no view may show it as known."""
    from checkers.compose import merge
    from checkers.report.markdown import summary_md

    h = H()
    for v in range(40):
        h.publish(v % 3, v)
    h.read("n1", None, outcome="info", error="timeout")
    r = run(h, tmp_path)
    assert (r["valid"], r["lost_count"], r["unread_nodes"]) == ("unknown", 40, NODES)
    s = r["summary"]
    counts = {c["name"]: (c["value"], c["bad"]) for c in s["counts"]}
    assert counts["acknowledged"] == (40, False) and counts["attempted"] == (40, False)
    for name in ("read", "lost", "unexpected", "duplicated", "failed", "recovered", "unknown"):
        assert counts[name] == ("unknown", False), name
    assert (s["row"]["lost"], s["row"]["lost_pct"]) == (None, None)
    assert s["notes"] == []
    md = summary_md(merge({"queue": r}, headline="queue"))
    assert "Lost writes" not in md and "**40**" not in md
    assert "Unread nodes: n1, n2, n3" in md
    assert "| 40 | 40 |" + " unknown |" * 12 in md  # the replica counts too
