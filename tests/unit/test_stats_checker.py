"""Stats checker: counts, publish rate, invoke/completion pairing and latency."""

from __future__ import annotations

from pathlib import Path

import orjson
import pandas as pd
import pytest

from checkers.stats import check_stats, paired_ops
from harness.history import load_history

MS = 1_000_000


def load(tmp_path: Path, ops: list[tuple]) -> pd.DataFrame:
    """ops: (time_ns, type, process, f, value)."""
    lines = [
        orjson.dumps(
            {"index": i, "time": t, "type": ty, "process": p, "f": f, "value": v, "node": "n1"}
        )
        for i, (t, ty, p, f, v) in enumerate(ops)
    ]
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return load_history(path).ops


@pytest.fixture
def ops(tmp_path: Path) -> pd.DataFrame:
    # two processes interleaved; p0: 10 ms ok, 30 ms fail; p1: 20 ms ok, then info (process retired)
    return load(
        tmp_path,
        [
            (0, "invoke", 0, "publish", 1),
            (1 * MS, "invoke", 1, "publish", 2),
            (10 * MS, "ok", 0, "publish", 1),
            (11 * MS, "invoke", 0, "publish", 3),
            (15 * MS, "info", "nemesis", "kill", {"start": "kill"}),
            (21 * MS, "ok", 1, "publish", 2),
            (22 * MS, "invoke", 1, "publish", 4),
            (41 * MS, "fail", 0, "publish", 3),
            (1000 * MS, "info", 1, "publish", 4),
            (1001 * MS, "invoke", 2, "read", None),
            (1051 * MS, "ok", 2, "read", [[1, 1], [2, 2]]),
        ],
    )


def test_pairs_each_invoke_with_its_completion(ops: pd.DataFrame) -> None:
    pairs = paired_ops(ops).sort_values("invoke_time").reset_index(drop=True)
    assert list(pairs.columns) == [
        "invoke_time",
        "complete_time",
        "type",
        "f",
        "process",
        "node",
        "value",
        "invoke_row",
        "complete_row",
    ]
    assert pairs["value"].tolist()[:4] == [1, 2, 3, 4]
    assert set(ops["type"].to_numpy()[pairs["invoke_row"]]) == {"invoke"}
    assert (ops["type"].to_numpy()[pairs["complete_row"]] == pairs["type"]).all()
    assert (ops["time"].to_numpy()[pairs["complete_row"]] == pairs["complete_time"]).all()
    assert pairs["type"].tolist() == ["ok", "ok", "fail", "info", "ok"]
    assert ((pairs["complete_time"] - pairs["invoke_time"]) // MS).tolist() == [10, 20, 30, 978, 50]


def test_counts_rate_and_latency(ops: pd.DataFrame) -> None:
    r = check_stats(ops, {})
    assert r["valid"] is True
    assert r["by_f"]["publish"] == {"invoke": 4, "ok": 2, "fail": 1, "info": 1}
    assert r["by_f"]["kill"] == {"invoke": 0, "ok": 0, "fail": 0, "info": 1}
    assert r["nemesis_count"] == 1
    assert r["client_op_count"] == 10
    # 2 acknowledged publishes between the first (0 ms) and last (22 ms) publish invoke
    assert r["publish_rate"] == pytest.approx(2 / 0.022)
    pub = r["latency_ms"]["publish"]
    assert pub["count"] == 4
    assert pub["max"] == pytest.approx(978)
    assert pub["p50"] == pytest.approx(25)
    assert r["latency_ms"]["read"]["count"] == 1


def test_no_ok_client_op_is_unknown(tmp_path: Path) -> None:
    ops = load(tmp_path, [(0, "invoke", 0, "publish", 1), (5, "fail", 0, "publish", 1)])
    r = check_stats(ops, {})
    assert r["valid"] == "unknown"
    assert r["publish_rate"] is None


def test_unfinished_invoke_is_left_out(tmp_path: Path) -> None:
    ops = load(
        tmp_path,
        [
            (0, "invoke", 0, "publish", 1),
            (5, "ok", 0, "publish", 1),
            (6, "invoke", 0, "publish", 2),
        ],
    )
    assert paired_ops(ops)["value"].tolist() == [1]
