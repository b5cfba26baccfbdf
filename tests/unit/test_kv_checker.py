"""The kv checker on hand-made histories with planted anomalies, every count asserted exactly.

Each history is written as JSONL and read back with ``load_history``, so the
checker sees what a run's would be (``revision`` a float column with NaN
where absent, ``null`` values, final reads of ``[key, value, revision]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from checkers.compose import REGISTRY, check_history
from checkers.kv import check_kv
from checkers.verdict import headline
from harness.history import load_history
from harness.workloads.kv import KvWorkload

NODES = ["n1", "n2", "n3"]
CONTEXT = {"nodes": NODES}


class H:
    """A kv history: ``op`` adds an invoke at ``start`` and its completion at ``end``."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int, dict[str, Any]]] = []

    def op(
        self,
        process: int,
        f: str,
        key: int,
        arg: Any,
        start: int,
        end: int | None,
        type: str = "ok",
        result: Any = "same",
        **extra: Any,
    ) -> None:
        node = extra.pop("node", "n1")
        inv = {"type": "invoke", "process": process, "f": f, "value": [key, arg], "node": node}
        self.events.append((start, len(self.events), inv))
        if end is not None:
            done = [key, arg if result == "same" else result]
            rec = {"type": type, "process": process, "f": f, "value": done, "node": node, **extra}
            self.events.append((end, len(self.events), rec))

    def read(self, process: int, node: str, entries: list[list[Any]] | None, at: int) -> None:
        """A final read of ``node``: ``entries`` ``[[key, value, revision], …]``, None: info."""
        self.events.append(
            (
                at,
                len(self.events),
                {"type": "invoke", "process": process, "f": "read", "value": None, "node": node},
            )
        )
        done: dict[str, Any] = {"process": process, "f": "read", "node": node}
        if entries is None:
            done |= {"type": "info", "value": None, "error": "timeout"}
        else:
            done |= {"type": "ok", "value": entries, "routes": 0}
        self.events.append((at + 1, len(self.events), done))

    def reads(self, entries: list[list[Any]], at: int = 1000) -> None:
        for i, node in enumerate(NODES):
            self.read(100 + i, node, entries, at)

    def ops(self, tmp_path: Path) -> pd.DataFrame:
        records = [
            {"index": i, "time": t, **rec}
            for i, (t, _, rec) in enumerate(sorted(self.events, key=lambda e: e[:2]))
        ]
        path = tmp_path / "history.jsonl"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        return load_history(path).ops


def base() -> H:
    """Key 0: create 1 (rev 1), get, update to 2 (rev 3), a refused update and create, a
    blind put on key 1 (rev 2), a delete of key 1 (rev 4), a put that failed for want of a
    leader and one of unknown outcome on key 1 that never took effect."""
    h = H()
    h.op(0, "create", 0, 1, 0, 10, revision=1)
    h.op(1, "put", 1, 7, 5, 15, revision=2)
    h.op(0, "get", 0, None, 20, 30, result=1, revision=1)
    h.op(0, "update", 0, [2, 1], 40, 50, revision=3)
    h.op(
        1,
        "update",
        0,
        [9, 1],
        45,
        55,
        type="fail",
        error="wrong revision (err_code 10071: wrong last sequence: 3)",
    )
    h.op(
        1,
        "create",
        0,
        8,
        60,
        70,
        type="fail",
        error="key exists (err_code 10071: wrong last sequence: 3)",
    )
    h.op(0, "delete", 1, None, 80, 90, revision=4)
    h.op(1, "put", 1, 11, 100, 110, type="fail", error="no-responders")
    h.op(1, "put", 1, 12, 120, 130, type="info", error="timeout")
    h.op(2, "get", 1, None, 140, 150, result=None, revision=4)
    return h


FINAL = [[0, 2, 3], [1, None, 4]]


def test_a_linearizable_history_is_valid_with_exact_counts(tmp_path: Path) -> None:
    h = base()
    h.reads(FINAL)
    r = check_kv(h.ops(tmp_path), CONTEXT)
    assert r["valid"] is True and r["anomalies"] == []
    assert r["by_f"] == {
        "get": {"ok": 2, "fail": 0, "info": 0},
        "put": {"ok": 1, "fail": 1, "info": 1},
        "create": {"ok": 1, "fail": 1, "info": 0},
        "update": {"ok": 1, "fail": 1, "info": 0},
        "delete": {"ok": 1, "fail": 0, "info": 0},
    }
    assert (r["key_count"], r["op_count"], r["write_ok_count"]) == (2, 10, 4)
    assert (r["refused_update_count"], r["refused_create_count"], r["failed_count"]) == (1, 1, 1)
    assert r["info_count"] == 1
    assert r["linear"] == {
        "valid": True,
        "key_count": 2,
        "invalid_key_count": 0,
        "unknown_key_count": 0,
        "invalid_keys": [],
        "unknown_keys": [],
    }
    assert (r["lost_write_count"], r["divergence_count"], r["stale_read_count"]) == (0, 0, 0)
    assert r["reading_count"] == 6 and r["unread_nodes"] == []
    assert r["summary"]["headline"] == (
        "2 keys linearizable (10 ops, 4 writes acknowledged); every replica holds each key's "
        "last write"
    )
    assert r["summary"]["examples"] == []
    assert r["summary"]["row"] == {
        "keys": 2,
        "keys_invalid": 0,
        "writes": 4,
        "lost_writes": 0,
        "stale_reads": 0,
    }


def test_a_lost_update_is_not_linearizable_and_its_window_is_shown(tmp_path: Path) -> None:
    h = base()
    # the update to 2 at revision 3 was acknowledged, yet a later get sees 1 at revision 1
    h.op(3, "get", 0, None, 200, 210, result=1, revision=1)
    h.reads(FINAL)
    ops = h.ops(tmp_path)
    r = check_kv(ops, CONTEXT)
    assert r["valid"] is False and r["anomalies"] == ["non-linearizable"]
    assert r["linear"]["invalid_key_count"] == 1 and r["linear"]["invalid_keys"] == [0]
    assert r["lost_write_count"] == 0
    assert r["summary"]["headline"] == "1 of 2 keys NOT linearizable (first: key 0)"
    (table,) = r["summary"]["examples"]
    assert table["title"] == "Key 0: not linearizable"
    failed = [row for row in table["rows"] if row[0] == "failed"]
    assert [row[1:6] for row in failed] == [[3, "get", "[0, None]", "[0, 1]", "ok"]]
    assert "could not be placed: it was tried in 2 (revision 3)" in table["note"]
    composed = check_history(ops, CONTEXT, ("kv", "linear-kv"), "kv")
    assert composed["valid"] is False and composed["anomalies"] == ["non-linearizable"]
    assert headline(composed).line == "INVALID: 1 of 2 keys NOT linearizable (first: key 0)"


def test_replicas_behind_the_newest_revision_lose_writes_and_diverge(tmp_path: Path) -> None:
    h = base()
    h.read(100, "n1", FINAL, 1000)
    h.read(101, "n2", [[0, 1, 1], [1, None, 4]], 1000)  # key 0 back at revision 1
    h.read(102, "n3", [[0, 5, 3], [1, None, 4]], 1000)  # revision 3 holds another value
    r = check_kv(h.ops(tmp_path), CONTEXT)
    assert r["valid"] is False and r["anomalies"] == ["lost-write", "divergence"]
    assert (r["lost_write_count"], r["divergence_count"], r["divergent_keys"]) == (2, 1, [0])
    assert {n: d["lost_write_count"] for n, d in r["per_node"].items()} == {
        "n1": 0,
        "n2": 1,
        "n3": 1,
    }
    assert r["summary"]["headline"] == (
        "LOST writes on 2 of 6 replica keys; 1 keys divergent between replicas"
    )
    lost, divergent = r["summary"]["examples"]
    assert lost["rows"] == [["n2", 0, 1, 1, 2, 3, "update", 7], ["n3", 0, 5, 3, 2, 3, "update", 7]]
    assert divergent["rows"] == [[0, "n1: 2 @ 3; n2: 1 @ 1; n3: 5 @ 3"]]


def test_a_stream_gone_everywhere_loses_every_acknowledged_key(tmp_path: Path) -> None:
    h = base()
    h.reads([[0, None, 0], [1, None, 0]])  # what read_alone records for an absent stream
    r = check_kv(h.ops(tmp_path), CONTEXT)
    assert r["anomalies"] == ["lost-write"]
    assert (r["lost_write_count"], r["divergence_count"]) == (6, 0)


def test_a_stale_direct_get_is_counted_not_a_violation(tmp_path: Path) -> None:
    h = base()
    # invoked after the update's ack (revision 3) came back, it returns revision 1: stale
    h.op(4, "get-direct", 0, None, 60, 65, result=1, revision=1, node="n3")
    # invoked before that ack: concurrent with the update, so revision 1 is not stale
    h.op(5, "get-direct", 0, None, 45, 62, result=1, revision=1, node="n2")
    # of key 1, after its delete (revision 4) was acked: current
    h.op(5, "get-direct", 1, None, 95, 99, result=None, revision=4, node="n2")
    h.op(5, "get-direct", 1, None, 160, 170, type="info", error="timeout", node="n2")
    h.reads(FINAL)
    ops = h.ops(tmp_path)
    r = check_kv(ops, CONTEXT)
    assert r["valid"] is True and r["anomalies"] == []
    assert r["by_f"]["get-direct"] == {"ok": 3, "fail": 0, "info": 1}
    assert (r["direct_read_count"], r["stale_read_count"]) == (3, 1)
    assert r["stale_reads"] == [
        {
            "key": 0,
            "value": 1,
            "revision": 1,
            "known_revision": 3,
            "known_line": 7,
            "process": 4,
            "node": "n3",
            "line": 13,
        }
    ]
    assert r["summary"]["headline"].endswith("last write; 1 stale direct reads (allowed)")
    (table,) = r["summary"]["examples"]
    assert table["title"] == "Stale direct reads"
    assert table["rows"] == [[0, 4, "n3", 1, 1, 3, 7, 13, 0.0]]
    assert r["summary"]["notes"] == [
        "3 gets were direct (any replica may answer): they are not part of the "
        "linearizability check; 1 returned a revision older than one returned before they began."
    ]
    linear = check_history(ops, CONTEXT, ("linear-kv",))["checkers"]["linear-kv"]
    assert linear["valid"] is True and linear["ignored_count"] == 4 + 3  # direct gets, reads


def test_no_node_read_is_unknown(tmp_path: Path) -> None:
    h = base()
    for i, node in enumerate(NODES):
        h.read(100 + i, node, None, 1000)
    r = check_kv(h.ops(tmp_path), CONTEXT)
    assert r["valid"] == "unknown" and r["anomalies"] == []
    assert r["unread_nodes"] == NODES and r["reading_count"] == 0
    assert r["summary"]["headline"] == "unread nodes: n1, n2, n3"
    assert r["per_node"]["n1"]["note"] == "read info: timeout"


def test_the_workload_names_the_checker_and_its_anomalies() -> None:
    assert KvWorkload.checkers == ("stats", "kv", "linear-kv", "availability")
    assert KvWorkload.headline_checker == "kv"
    assert REGISTRY["kv"] is check_kv
    assert set(KvWorkload.anomalies) == {
        "non-linearizable", "lost-write", "stream-lost", "stalled", "divergence",
    }  # fmt: skip
