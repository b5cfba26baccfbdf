"""Dedup checker on hand-made histories with planted anomalies, counted exactly.

Each history is written as JSONL and read back with ``load_history``, so the
checker is exercised through the history contract (reads are lists of
``[seq, msg_id, value]`` triples, as the dedup workload writes them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from replica_cases import assert_stalled_and_stream_lost_shown, recovery_record

from checkers.compose import check_history
from checkers.dedup import attempts, check_dedup
from checkers.verdict import headline
from checkers.wellformed import check_wellformed
from harness.history import load_history

NODES = ["n1", "n2", "n3"]
SEC = 1_000_000_000


class H:
    """Builds a dedup history; ``publish`` writes one attempt: an invoke and its completion."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []
        self.proc = 0
        self.read_proc = 1000

    def op(self, type: str, process: Any, f: str, value: Any = None, **kw: Any) -> None:
        time = kw.pop("time", None)
        time = (self.ops[-1]["time"] + 1 if self.ops else 0) if time is None else time
        rec = {"index": len(self.ops), "time": time, "type": type, "process": process}
        self.ops.append(rec | {"f": f, "value": value, **kw})

    def publish(
        self,
        msg_id: int,
        outcome: str = "ok",
        seq: int | None = None,
        dup: bool = False,
        time: int | None = None,
    ) -> None:
        """One attempt under a fresh process (an info retires its process anyway)."""
        self.proc += 1
        self.op("invoke", self.proc, "publish", msg_id, node="n1", time=time)
        extra: dict[str, Any] = {}
        if outcome == "ok":
            extra = {"seq": seq, "duplicate": dup}
        else:
            extra = {"error": "timeout" if outcome == "info" else "no-responders"}
        self.op(outcome, self.proc, "publish", msg_id, node="n1", **extra)

    def read(self, node: str, triples: Any, outcome: str = "ok", window: float = 120.0) -> None:
        self.read_proc += 1
        self.op("invoke", self.read_proc, "read", None, node=node)
        if outcome == "ok":
            self.op("ok", self.read_proc, "read", triples, node=node, duplicate_window=window)
        else:
            self.op(outcome, self.read_proc, "read", None, node=node, error="timeout")

    def write(self, tmp_path: Path) -> Path:
        path = tmp_path / "history.jsonl"
        path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in self.ops))
        return path


def run(h: H, tmp_path: Path) -> dict[str, Any]:
    ops = load_history(h.write(tmp_path)).ops
    assert check_wellformed(ops, {})["valid"] is True
    return check_dedup(ops, {"nodes": NODES})


def stored(*ids: int, start: int = 1) -> list[list[int]]:
    """Triples of messages stored in order, each with its id as payload."""
    return [[start + i, m, m] for i, m in enumerate(ids)]


def test_retries_and_resends_acked_as_duplicates_are_valid(tmp_path: Path) -> None:
    h = H()
    h.publish(0, seq=1)
    h.publish(1, "info")  # timed out, but stored at seq 2
    h.publish(1, seq=2, dup=True)  # the retry: the server says it has it
    h.publish(2, seq=3)
    h.publish(2, seq=3, dup=True)  # a resend after the ack
    h.publish(3, "fail")  # certainly not stored, never retried
    for n in NODES:
        h.read(n, stored(0, 1, 2))
    r = run(h, tmp_path)
    assert r["valid"] is True and r["anomalies"] == []
    assert (r["attempt_count"], r["id_count"], r["acknowledged_count"], r["read_count"]) == (
        6,
        4,
        3,
        3,
    )
    assert (r["retried_count"], r["duplicate_ack_count"], r["failed_count"]) == (2, 2, 1)
    for key in ("duplicated", "lost", "phantom_duplicate", "unexpected", "failed_but_read"):
        assert r[f"{key}_count"] == 0, key
    assert (r["recovered_count"], r["unknown_count"]) == (0, 0)
    assert (r["reaccepted_count"], r["moved_count"], r["divergence"]["count"]) == (0, 0, 0)
    assert r["duplicate_window_s"] == 120.0
    assert r["per_node"]["n2"] == {
        "status": "read",
        "note": None,
        "read_count": 3,
        "lost_count": 0,
        "duplicated_count": 0,
    }
    assert r["summary"]["headline"] == "3 ids acknowledged, each stored once"
    assert r["summary"]["examples"] == []
    assert r["summary"]["row"] == {
        "acknowledged": 3,
        "duplicated": 0,
        "lost": 0,
        "duplicated_pct": 0.0,
    }


def planted() -> H:
    """One id per anomaly, plus allowed cases, on three nodes."""
    h = H()
    h.publish(1, "info", time=1 * SEC)  # id 1: stored twice on every node
    h.publish(1, seq=2, time=2 * SEC)  # acked as new: dedup failed
    h.publish(2, seq=3)  # id 2: acked, stored nowhere: lost
    h.publish(3, seq=4, dup=True)  # id 3: a duplicate of nothing earlier: phantom
    h.publish(4, "info")  # id 4: ...then a duplicate ack, yet stored nowhere: phantom + lost
    h.publish(4, seq=5, dup=True)
    h.publish(5, seq=6)  # id 5: stored with another payload: unexpected
    h.publish(6, "fail")  # id 6: every attempt failed, yet stored: failed-but-read
    h.publish(6, "fail")
    h.publish(7, seq=8)  # id 7: n3 lacks it: divergence
    h.publish(8, "info", time=10 * SEC)  # id 8: stored twice, 200 s apart: outside the window
    h.publish(8, seq=10, time=210 * SEC)
    h.publish(9, "info")  # id 9: never acked, stored: recovered (allowed)
    h.publish(10, "info")  # id 10: never acked, not stored: unknown (allowed)
    common = [[1, 1, 1], [2, 1, 1], [4, 3, 3], [6, 5, 55], [7, 6, 6]]
    tail = [[9, 8, 8], [10, 8, 8], [11, 9, 9], [12, 99, 99]]  # 99: never published
    h.read("n1", [*common, [8, 7, 7], *tail])
    h.read("n2", [*common, [8, 7, 7], *tail])
    h.read("n3", [*common, *tail])
    return h


def test_planted_anomalies_are_each_counted(tmp_path: Path) -> None:
    r = run(planted(), tmp_path)
    assert r["valid"] is False
    assert r["anomalies"] == [
        "duplicated-id",
        "lost",
        "phantom-duplicate",
        "unexpected",
        "failed-but-read",
        "holes",
    ]
    assert (r["attempt_count"], r["id_count"], r["acknowledged_count"], r["read_count"]) == (
        14,
        10,
        7,
        8,
    )
    assert (r["duplicated_count"], r["duplicated_ids"]) == (1, [1])
    assert r["duplicated_outside_window_count"] == 1
    assert (r["lost_count"], r["lost_ids"]) == (2, [2, 4])
    assert (r["phantom_duplicate_count"], r["phantom_duplicate_ids"]) == (2, [3, 4])
    assert (r["unexpected_count"], r["unexpected_ids"]) == (2, [5, 99])
    assert (r["failed_but_read_count"], r["failed_but_read_ids"]) == (1, [6])
    # recovered counts every id stored yet never acked, 6 (failed-but-read) too, as the queue's
    assert (r["recovered_count"], r["unknown_count"], r["failed_count"]) == (2, 1, 0)
    # n3 lacks seq 8 (id 7) below its last: a hole, not a replica ending short
    assert r["divergence"]["count"] == 0
    assert r["holes"]["n3"]["ranges"] == [[8, 8]] and r["holes"]["n3"]["lost"]["count"] == 1
    assert r["divergence"]["missing_on_node"]["n3"] == {"count": 1, "sample": [7]}
    assert r["divergence"]["same_seq_different_value"]["count"] == 0
    assert r["sample_reads"] == {"7": {"n1": [8], "n2": [8]}}
    assert r["per_node"]["n3"]["lost_count"] == 3  # 2, 4 and 7
    assert r["per_node"]["n1"]["duplicated_count"] == 1
    assert r["summary"]["headline"] == (
        "DUPLICATED 1 id within the duplicate window; LOST 2 of 7 acknowledged ids (28.57%); "
        "2 phantom duplicates; 2 unexpected; 1 failed id read back; "
        "holes on n3: 1 stream sequence missing in 1 range"
    )
    assert r["summary"]["row"]["duplicated_pct"] == 14.29


def test_examples_show_where_each_id_is_stored_and_every_attempt(tmp_path: Path) -> None:
    r = run(planted(), tmp_path)
    tables = {t["title"]: t for t in r["summary"]["examples"]}
    assert list(tables) == [
        "Duplicated ids",
        "Lost ids",
        "Phantom duplicates",
        "Failed ids read back",
        "Unexpected messages",
        "Replica groups",
    ]
    dup = tables["Duplicated ids"]
    assert dup["head"] == ["msg id", "stored", "attempts"]
    assert dup["rows"] == [
        [
            1,
            "n1 at seq 1, 2; n2 at seq 1, 2; n3 at seq 1, 2",
            "p1 info (timeout) @1.00s; p2 ok seq 2 @2.00s",
        ]
    ]
    assert dup["note"] == "1 id stored at two stream sequences on one node; the first by id."
    assert [row[0] for row in tables["Lost ids"]["rows"]] == [2, 4]
    assert tables["Phantom duplicates"]["rows"][1][1:] == [
        "–",
        "p5 info (timeout) @2.00s; p6 ok seq 5 duplicate @2.00s",
    ]
    assert tables["Unexpected messages"]["rows"] == [
        ["n1", 6, 5, 55],
        ["n1", 12, 99, 99],
        ["n2", 6, 5, 55],
        ["n2", 12, 99, 99],
        ["n3", 6, 5, 55],
        ["n3", 12, 99, 99],
    ]


def test_an_id_acked_as_new_twice_with_one_copy_left_is_reaccepted_and_moved(
    tmp_path: Path,
) -> None:
    h = H()
    h.publish(1, seq=1)
    h.publish(1, seq=2)  # the resend stored anew: the first copy is gone (power loss)
    h.publish(2, seq=2, dup=True)  # no earlier attempt, and acked at the seq id 1 holds now
    h.publish(2, "info")
    for n in NODES:
        h.read(n, [[2, 1, 1]])
    r = run(h, tmp_path)
    assert r["reaccepted_count"] == 1
    assert r["moved_count"] == 1  # id 1's first ack said seq 1, it is at seq 2
    assert r["duplicated_count"] == 0
    assert (r["lost_count"], r["lost_ids"]) == (1, [2])
    assert (r["phantom_duplicate_count"], r["phantom_duplicate_ids"]) == (1, [2])
    assert r["anomalies"] == ["lost", "phantom-duplicate"]


def test_a_duplicate_ack_after_failed_attempts_only_is_a_phantom(tmp_path: Path) -> None:
    h = H()
    h.publish(1, "fail")
    h.publish(1, seq=1, dup=True)
    for n in NODES:
        h.read(n, stored(1))
    r = run(h, tmp_path)
    assert (r["phantom_duplicate_count"], r["lost_count"]) == (1, 0)
    assert r["anomalies"] == ["phantom-duplicate"]


def test_without_a_window_in_the_reads_every_second_copy_counts(tmp_path: Path) -> None:
    h = H()
    h.publish(1, "info", time=0)
    h.publish(1, seq=2, time=10_000 * SEC)
    h.read("n1", stored(1, 1))
    h.ops[-1].pop("duplicate_window")
    r = run(h, tmp_path)
    assert r["duplicate_window_s"] is None
    assert (r["duplicated_count"], r["duplicated_outside_window_count"]) == (1, 0)


def test_unread_nodes_make_the_verdict_unknown(tmp_path: Path) -> None:
    h = H()
    h.publish(1, seq=1)
    for n in NODES:
        h.read(n, None, outcome="info")
    r = run(h, tmp_path)
    assert r["valid"] == "unknown"
    assert r["unread_nodes"] == NODES
    assert r["summary"]["headline"] == "unread nodes: n1, n2, n3"


def test_an_absent_stream_reads_empty_and_loses_everything(tmp_path: Path) -> None:
    h = H()
    h.publish(1, seq=1)
    h.publish(2, seq=2)
    for n in NODES:
        h.read(n, [])
    r = run(h, tmp_path)
    assert (r["lost_count"], r["anomalies"]) == (2, ["lost"])
    assert r["per_node"]["n1"]["status"] == "empty"


def test_attempts_pair_each_invoke_with_its_completion_across_interleaving(
    tmp_path: Path,
) -> None:
    h = H()
    h.op("invoke", 1, "publish", 5, node="n1")
    h.op("invoke", 2, "publish", 6, node="n2")
    h.op("ok", 2, "publish", 6, node="n2", seq=1, duplicate=False)
    h.op("info", 1, "publish", 5, node="n1", error="timeout")
    h.op("invoke", 3, "publish", 5, node="n1")  # cut off: no completion
    att = attempts(load_history(h.write(tmp_path)).ops)
    assert att[["id", "process", "type", "seq"]].values.tolist() == [
        [5, 1, "info", -1],
        [5, 3, "open", -1],
        [6, 2, "ok", 1],
    ]
    assert att["duplicate"].tolist() == [False, False, False]


def test_composed_verdict_line(tmp_path: Path) -> None:
    h = H()
    for i in range(3):
        h.publish(i, seq=i + 1)
    for n in NODES:
        h.read(n, stored(0, 1, 2))
    ops = load_history(h.write(tmp_path)).ops
    result = check_history(ops, {"nodes": NODES}, ["wellformed", "dedup"], "dedup")
    assert headline(result).line == "VALID: 3 ids acknowledged, each stored once"
    for n in NODES:  # a duplicate every replica holds: no replica differs
        h.read(n, stored(0, 1, 2, 2))
    ops = load_history(h.write(tmp_path)).ops
    result = check_history(ops, {"nodes": NODES}, ["wellformed", "dedup"], "dedup")
    assert headline(result).line == "INVALID: DUPLICATED 1 id within the duplicate window"


def test_replica_anomalies_are_named_as_the_queue_checkers(tmp_path: Path) -> None:
    """ids 0-9 acked at seqs 1-10 (at 0-9 s); ids 10, 11 timed out. n1 holds all ten; n2
    holds 10, 11 at seqs 9, 10 instead (two groups); n3 stopped at seq 6 and the recovery wait
    left it there (stalled); n4's read says the stream is gone there (stream lost)."""
    h = H()
    for i in range(10):
        h.publish(i, seq=i + 1, time=i * SEC)
    h.publish(10, "info", time=10 * SEC)
    h.publish(11, "info")
    last = {"n1": 10, "n2": 10, "n3": 6, "n4": 10}
    h.op("info", "nemesis", "recovery", recovery_record(last, 1.0))
    h.read("n1", stored(*range(10)))
    h.read("n2", stored(*range(8), 10, 11))
    h.read("n3", stored(*range(6)))
    h.read_proc += 1
    h.op("invoke", h.read_proc, "read", None, node="n4")
    h.op("ok", h.read_proc, "read", [], node="n4", absent=True, note="stream chaos is absent")
    ops = load_history(h.write(tmp_path)).ops
    r = check_dedup(ops, {"nodes": ["n1", "n2", "n3", "n4"]})
    assert r["valid"] is False
    assert r["anomalies"] == ["stream-lost", "stalled", "replica-groups"]
    assert (r["lost_count"], r["recovered_count"], r["unexpected_count"]) == (0, 2, 0)
    assert list(r["stream_lost"]) == ["n4"]
    st = r["stalled"]["n3"]
    assert st["at_bound"] == {"answered": True, "last_seq": 6, "behind": 4, "top_seq": 10}
    assert (st["read_last_seq"], st["read_behind"], st["prefix_consistent"]) == (6, 4, True)
    div = r["divergence"]
    assert div["count"] == 2  # seqs 9, 10; n3's backlog (7-10) is not divergence
    assert div["conflict_seqs"]["ranges"] == [[9, 10]] and div["short_nodes"] == {}
    groups = {tuple(g["nodes"]): g for g in div["groups"]}
    assert set(groups) == {("n1",), ("n2",), ("n3",)}
    assert groups[("n2",)]["lost"] == {
        "count": 2, "window_count": 1, "windows": [{"from_s": 8.0, "to_s": 9.0, "count": 2}],
    }  # fmt: skip
    assert r["holes"] == {}
    assert r["summary"]["headline"].endswith(
        "; 3 replica groups disagree on 2 stream sequences ({n1} | {n2} | {n3})"
    )
    assert_stalled_and_stream_lost_shown(r, 4, "1s")
    assert {c["name"]: c["value"] for c in r["summary"]["counts"]}["divergent"] == 2
    assert [e["title"] for e in r["summary"]["examples"]][-2:] == [
        "Replica groups",
        "Stalled replicas",
    ]
