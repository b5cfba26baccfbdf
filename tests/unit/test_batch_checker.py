"""Batch checker on hand-made histories with planted anomalies, counted exactly.

Each history is written as JSONL and read back with ``load_history``, so the
checker is exercised through the history contract (a ``batch`` op's value is
``[batch_id, [values]]``; reads are lists of ``[seq, batch_id, batch_seq,
value]`` rows, as the batch workload writes them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from replica_cases import assert_stalled_and_stream_lost_shown, recovery_record

from checkers.batch import batches, check_batch
from checkers.compose import check_history
from checkers.verdict import headline
from checkers.wellformed import check_wellformed
from harness.history import load_history

NODES = ["n1", "n2", "n3"]


class H:
    """Builds a batch history; ``batch`` writes one batch op: an invoke and its completion."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []
        self.proc = 0
        self.read_proc = 1000

    def op(self, type: str, process: Any, f: str, value: Any = None, **kw: Any) -> None:
        time = self.ops[-1]["time"] + 1_000_000 if self.ops else 0
        rec = {"index": len(self.ops), "time": time, "type": type, "process": process}
        self.ops.append(rec | {"f": f, "value": value, **kw})

    def batch(
        self,
        bid: int,
        values: list[int],
        outcome: str = "ok",
        seq: int | None = None,
        count: int | None = None,
    ) -> None:
        """One batch under a fresh process; an ok one acked at ``seq`` with ``count``."""
        self.proc += 1
        self.op("invoke", self.proc, "batch", [bid, values], node="n1")
        extra: dict[str, Any] = {}
        if outcome == "ok":
            extra = {"seq": seq, "count": len(values) if count is None else count}
        else:
            extra = {"error": "timeout" if outcome == "info" else "api-error 10176: incomplete"}
        self.op(outcome, self.proc, "batch", [bid, values], node="n1", **extra)

    def read(self, node: str, rows: Any, outcome: str = "ok", **kw: Any) -> None:
        self.read_proc += 1
        self.op("invoke", self.read_proc, "read", None, node=node)
        if outcome == "ok":
            self.op("ok", self.read_proc, "read", rows, node=node, routes=0, **kw)
        else:
            self.op(outcome, self.read_proc, "read", None, node=node, error="timeout")

    def write(self, tmp_path: Path) -> Path:
        path = tmp_path / "history.jsonl"
        path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in self.ops))
        return path


def run(h: H, tmp_path: Path) -> dict[str, Any]:
    ops = load_history(h.write(tmp_path)).ops
    assert check_wellformed(ops, {})["valid"] is True
    return check_batch(ops, {"nodes": NODES})


def at(seq: int, bid: int, values: list[int], positions: list[int] | None = None) -> list[list]:
    """Rows of a batch's ``values`` stored from ``seq`` on (positions default 1, 2, …)."""
    pos = positions or list(range(1, len(values) + 1))
    return [[seq + i, bid, p, v] for i, (p, v) in enumerate(zip(pos, values, strict=True))]


def test_whole_batches_failed_absent_and_unknown_either_way_are_valid(tmp_path: Path) -> None:
    h = H()
    h.batch(1, [10, 11], seq=2)
    h.batch(2, [20, 21, 22], seq=5)
    h.batch(3, [30, 31], "fail")
    h.batch(4, [40, 41, 42], "info")  # stored whole
    h.batch(5, [50, 51], "info")  # not stored
    h.batch(6, [60, 61], seq=10)
    rows = at(1, 1, [10, 11]) + at(3, 2, [20, 21, 22]) + at(6, 4, [40, 41, 42]) + at(9, 6, [60, 61])
    for n in NODES:
        h.read(n, rows)
    r = run(h, tmp_path)
    assert r["valid"] is True and r["anomalies"] == []
    assert (r["batch_count"], r["message_count"]) == (6, 14)
    assert (r["committed_count"], r["committed_message_count"]) == (3, 7)
    assert (r["failed_count"], r["recovered_count"], r["unknown_count"]) == (1, 1, 1)
    assert r["moved_count"] == 0 and r["unread_nodes"] == []
    assert r["per_node"]["n2"] == {
        "status": "read", "note": None, "read_count": 10, "whole_count": 4,
        "partial_count": 0, "split_count": 0, "lost_count": 0,
    }  # fmt: skip
    assert r["summary"]["headline"] == (
        "3 committed batches (7 messages), each whole and contiguous on every replica"
    )
    assert r["summary"]["examples"] == []


def planted() -> H:
    """Every anomaly once or more, with stream sequences that agree between nodes."""
    h = H()
    h.batch(1, [10, 11], seq=2)
    h.batch(2, [20, 21, 22], seq=5)  # partial on n1
    h.batch(3, [30, 31], seq=7)  # split everywhere: stored in reverse
    h.batch(4, [40, 41], "fail")  # n3 holds one of it: failed-visible and partial
    h.batch(5, [50, 51, 52], seq=11)  # lost
    h.batch(6, [60, 61], "info")  # partial on n1
    h.batch(7, [70, 71, 72], seq=15, count=2)  # bad ack
    h.batch(8, [80, 81], seq=18)  # n1 stores 81 with a foreign position: unexpected
    h.batch(9, [90, 91], seq=20)  # absent on n3: a divergent batch (n3's holes)
    h.batch(10, [100, 101], "fail")  # failed, absent (allowed)
    h.batch(11, [110, 111], "info")  # recovered whole (allowed)
    h.batch(12, [120, 121], "info")  # unknown (allowed)
    h.batch(13, [130, 131], seq=30)  # whole, but not at the acked seq: moved (allowed)
    common = at(1, 1, [10, 11])
    whole2 = at(3, 2, [20, 21, 22])
    split3 = at(6, 3, [31, 30], [2, 1])
    tail = at(13, 7, [70, 71, 72])
    late = at(22, 11, [110, 111]) + at(24, 13, [130, 131])
    n1 = common + at(3, 2, [20, 21]) + split3 + [[12, 6, 1, 60]] + tail
    n1 += [[17, 8, 1, 80], [18, 8, 1, 81], *at(19, 9, [90, 91]), [21, 1, 1, 10], *late]
    n2 = common + whole2 + split3 + tail + [[16, 99, 1, 999]] + at(17, 8, [80, 81])
    n2 += at(19, 9, [90, 91]) + late
    n3 = common + whole2 + split3 + [[8, 4, 1, 40]] + tail + at(17, 8, [80, 81]) + late
    for node, rows in zip(NODES, (n1, n2, n3), strict=True):
        h.read(node, rows)
    return h


def test_planted_anomalies_are_each_counted(tmp_path: Path) -> None:
    r = run(planted(), tmp_path)
    assert r["valid"] is False
    assert r["anomalies"] == [
        "partial-batch", "split-batch", "failed-batch-visible", "lost-batch",
        "duplicated", "unexpected", "bad-ack", "holes",
    ]  # fmt: skip
    assert (r["partial_count"], r["partial_batches"]) == (3, [2, 4, 6])
    assert (r["split_count"], r["split_batches"]) == (1, [3])
    assert (r["failed_visible_count"], r["failed_visible_batches"]) == (1, [4])
    assert (r["lost_count"], r["lost_batches"]) == (1, [5])
    assert (r["duplicated_count"], r["duplicated"]) == (1, [10])
    assert (r["unexpected_count"], r["unexpected"]) == (2, [81, 999])
    assert (r["bad_ack_count"], r["bad_ack_batches"]) == (1, [7])
    div = r["divergence"]
    # every node ends at seq 25 and no seq holds two values: what one lacks is a hole
    assert (div["count"], div["batches"], div["divergent_batches"]) == (0, 1, [9])
    assert div["same_seq_different_value"]["count"] == 0
    holes = {n: h["ranges"] for n, h in r["holes"].items()}
    assert holes == {"n1": [[5, 5], [8, 8], [16, 16]], "n2": [[8, 8], [12, 12], [21, 21]],
                     "n3": [[12, 12], [16, 16], [19, 21]]}  # fmt: skip
    # acknowledged values other nodes hold at those seqs: 90, 91 (batch 9), 10 (n1's copy)
    assert r["holes"]["n3"]["lost"]["count"] == 3
    assert (r["failed_count"], r["recovered_count"], r["unknown_count"]) == (1, 1, 1)
    assert (r["moved_count"], r["broken_count"]) == (1, 5)  # batch 4 is partial and failed
    n1, n3 = r["per_node"]["n1"], r["per_node"]["n3"]
    assert (n1["whole_count"], n1["partial_count"], n1["split_count"], n1["lost_count"]) == (
        7, 2, 1, 1,
    )  # fmt: skip
    assert (n3["whole_count"], n3["partial_count"], n3["split_count"], n3["lost_count"]) == (
        7, 1, 1, 2,
    )  # fmt: skip
    assert r["summary"]["headline"] == (
        "PARTIAL 3 batches visible; 1 split batch; 1 failed batch visible; "
        "LOST 1 of 8 committed batches (12.50%); 1 duplicated; 2 unexpected; 1 bad ack; "
        "holes on n1: 3 stream sequences missing in 3 ranges; "
        "holes on n2: 3 stream sequences missing in 3 ranges; "
        "holes on n3: 5 stream sequences missing in 3 ranges"
    )
    assert r["summary"]["row"] == {"committed": 8, "partial": 3, "lost": 1, "broken_pct": 38.46}


def test_examples_show_each_batch_op_and_where_every_node_holds_it(tmp_path: Path) -> None:
    r = run(planted(), tmp_path)
    tables = {t["title"]: t for t in r["summary"]["examples"]}
    assert list(tables) == [
        "Partial batches", "Split batches", "Failed batches visible", "Lost batches",
        "Bad acks", "Divergent batches", "Unexpected messages", "Replica groups",
    ]  # fmt: skip
    partial = tables["Partial batches"]
    assert partial["note"] == "3 batches partly stored on a node; the first by id."
    assert partial["head"] == ["batch id", "size", "op", "stored"]
    assert partial["rows"][0] == [
        2, 3, "p2 ok seq 5 count 3 @0.00s",
        "n1: 2/3 at seq 3–4; n2: 3/3 at seq 3–5; n3: 3/3 at seq 3–5",
    ]  # fmt: skip
    assert partial["rows"][1] == [
        4, 2, "p4 fail (api-error 10176: incomplete) @0.01s",
        "n1: none; n2: none; n3: 1/2 at seq 8",
    ]  # fmt: skip
    assert tables["Split batches"]["rows"] == [
        [3, 2, "p3 ok seq 7 count 2 @0.00s",
         "n1: 2/2 at seq 6–7, not contiguous; n2: 2/2 at seq 6–7, not contiguous; "
         "n3: 2/2 at seq 6–7, not contiguous"],
    ]  # fmt: skip
    assert tables["Lost batches"]["rows"][0][3] == "n1: none; n2: none; n3: none"
    assert tables["Divergent batches"]["rows"][0][3] == (
        "n1: 2/2 at seq 19–20; n2: 2/2 at seq 19–20; n3: none"
    )
    assert tables["Unexpected messages"]["rows"] == [[81], [999]]


def test_unread_nodes_make_the_verdict_unknown_and_judge_nothing(tmp_path: Path) -> None:
    h = H()
    h.batch(1, [10, 11], seq=2)
    h.batch(2, [20, 21], "fail")
    for n in NODES:
        h.read(n, None, outcome="info")
    r = run(h, tmp_path)
    assert r["valid"] == "unknown" and r["anomalies"] == []
    assert r["lost_count"] == r["failed_visible_count"] == r["failed_count"] == 0
    assert r["unread_nodes"] == NODES
    assert r["summary"]["headline"] == "unread nodes: n1, n2, n3"


def test_a_stream_absent_everywhere_loses_every_committed_batch(tmp_path: Path) -> None:
    h = H()
    h.batch(1, [10, 11], seq=2)
    h.batch(2, [20, 21, 22], seq=5)
    h.batch(3, [30, 31], "info")
    for n in NODES:
        h.read(n, [], note=f"stream chaos is absent on {n}")
    r = run(h, tmp_path)
    assert r["anomalies"] == ["lost-batch"]
    assert (r["lost_count"], r["lost_batches"], r["unknown_count"]) == (2, [1, 2], 1)
    assert r["per_node"]["n1"]["status"] == "empty"
    assert r["per_node"]["n1"]["note"] == "stream chaos is absent on n1"
    assert r["summary"]["headline"] == "LOST 2 of 2 committed batches (100.00%)"


def test_one_node_with_part_of_an_unknown_batch_is_partial(tmp_path: Path) -> None:
    h = H()
    h.batch(1, [10, 11, 12], "info")
    h.read("n1", at(1, 1, [10, 11, 12]))
    h.read("n2", at(1, 1, [10, 11, 12]))
    h.read("n3", at(1, 1, [10, 11]))  # the commit's message is missing here
    r = run(h, tmp_path)
    assert r["anomalies"] == ["partial-batch", "divergence"]  # n3 also ends short of the others
    assert (r["partial_count"], r["recovered_count"], r["unknown_count"]) == (1, 0, 0)
    div = r["divergence"]
    assert (div["count"], div["short_nodes"]["n3"]["ranges"]) == (1, [[3, 3]])
    assert div["batches"] == 0  # partial, so not a batch whole on one node, absent on another


def test_batches_pair_each_invoke_with_its_completion_across_interleaving(
    tmp_path: Path,
) -> None:
    h = H()
    h.op("invoke", 1, "batch", [1, [10, 11]], node="n1")
    h.op("invoke", 2, "batch", [2, [20, 21, 22]], node="n2")
    h.op("fail", 2, "batch", [2, [20, 21, 22]], node="n2", error="no-responders")
    h.op("invoke", 3, "batch", [3, [30, 31]], node="n3")  # never completes: unknown
    h.op("ok", 1, "batch", [1, [10, 11]], node="n1", seq=2, count=2)
    ops = load_history(h.write(tmp_path)).ops
    b = batches(ops)
    assert b.ids.tolist() == [1, 2, 3] and b.sizes.tolist() == [2, 3, 2]
    assert b.type.tolist() == ["ok", "fail", "info"]
    assert b.seq.tolist() == [2, -1, -1] and b.count.tolist() == [2, -1, -1]
    assert b.values.tolist() == [10, 11, 20, 21, 22, 30, 31]
    assert b.batch_of.tolist() == [0, 0, 1, 1, 1, 2, 2]
    assert b.pos.tolist() == [1, 2, 1, 2, 3, 1, 2]


def test_composed_verdict_line(tmp_path: Path) -> None:
    h = H()
    h.batch(1, [10, 11], seq=2)
    for n in NODES:
        h.read(n, at(1, 1, [10, 11]))
    ops = load_history(h.write(tmp_path)).ops
    result = check_history(ops, {"nodes": NODES}, ["wellformed", "batch"], "batch")
    assert headline(result).line == (
        "VALID: 1 committed batch (2 messages), each whole and contiguous on every replica"
    )
    h.read("n3", [*at(1, 1, [10]), [2, -1, -1, 11]])  # a second read of n3 adds a bad row
    ops = load_history(h.write(tmp_path)).ops
    result = check_history(ops, {"nodes": NODES}, ["wellformed", "batch"], "batch")
    assert headline(result).line == "INVALID: 1 unexpected"


def test_values_far_apart_are_looked_up_by_search_as_well(tmp_path: Path) -> None:
    big = 10**15
    h = H()
    h.batch(1, [7, big], seq=2)
    h.batch(2, [3 * big, 2 * big], seq=4)
    for n in NODES[:2]:
        h.read(n, at(1, 1, [7, big]) + at(3, 2, [3 * big, 2 * big]))
    h.read("n3", at(1, 1, [7, big]) + at(3, 2, [2 * big, 3 * big], [2, 1]) + [[5, 3, 1, -1]])
    r = run(h, tmp_path)
    assert r["anomalies"] == ["split-batch", "unexpected", "replica-groups", "divergence"]
    assert (r["split_batches"], r["unexpected"]) == ([2], [-1])
    assert r["divergence"]["same_seq_different_value"]["count"] == 2  # seqs 3 and 4 differ
    assert r["divergence"]["short_nodes"] == {  # n3 alone holds seq 5
        n: {"count": 1, "range_count": 1, "ranges": [[5, 5]]} for n in ("n1", "n2")
    }


def test_replica_anomalies_are_named_as_the_queue_checkers(tmp_path: Path) -> None:
    """Batches 1-3 committed at seqs 1-6, batch 4 unknown. n1 holds 1-3; n2 holds batch 4
    where n1 holds batch 3 (two groups); n3 stopped after batch 1 and the recovery wait left
    it there (stalled); n4's read says the stream is gone there (stream lost)."""
    h = H()
    h.batch(1, [10, 11], seq=2)
    h.batch(2, [20, 21], seq=4)
    h.batch(3, [30, 31], seq=6)  # committed at 5 ms
    h.batch(4, [40, 41], "info")
    last = {"n1": 6, "n2": 6, "n3": 2, "n4": 6}
    h.op("info", "nemesis", "recovery", recovery_record(last, 1.0))
    first = at(1, 1, [10, 11]) + at(3, 2, [20, 21])
    h.read("n1", first + at(5, 3, [30, 31]))
    h.read("n2", first + at(5, 4, [40, 41]))
    h.read("n3", at(1, 1, [10, 11]))
    h.read("n4", [], absent=True, note="stream chaos is absent on n4")
    ops = load_history(h.write(tmp_path)).ops
    r = check_batch(ops, {"nodes": ["n1", "n2", "n3", "n4"]})
    assert r["anomalies"] == ["stream-lost", "stalled", "replica-groups"]
    assert (r["lost_count"], r["partial_count"], r["recovered_count"]) == (0, 0, 0)
    assert list(r["stream_lost"]) == ["n4"]
    st = r["stalled"]["n3"]
    assert st["at_bound"] == {"answered": True, "last_seq": 2, "behind": 4, "top_seq": 6}
    assert (st["read_behind"], st["prefix_consistent"]) == (4, True)
    div = r["divergence"]
    assert (div["count"], div["conflict_seqs"]["ranges"], div["short_nodes"]) == (2, [[5, 6]], {})
    # whole on one node, absent on another that is not stalled and has the stream: 3 and 4
    assert (div["batches"], div["divergent_batches"]) == (2, [3, 4])
    groups = {tuple(g["nodes"]): g for g in div["groups"]}
    assert groups[("n2",)]["lost"] == {
        "count": 2, "window_count": 1, "windows": [{"from_s": 0.005, "to_s": 0.005, "count": 2}],
    }  # fmt: skip
    assert groups[("n3",)]["lost"]["count"] == 4  # batches 2 and 3: its backlog
    assert r["summary"]["headline"].endswith(
        "; 3 replica groups disagree on 2 stream sequences ({n1} | {n2} | {n3})"
    )
    assert_stalled_and_stream_lost_shown(r, 4, "1s")
    assert {c["name"]: c["value"] for c in r["summary"]["counts"]}["divergent"] == 2
    assert r["summary"]["notes"][0].startswith("Replica group {n1}: 6 messages")
