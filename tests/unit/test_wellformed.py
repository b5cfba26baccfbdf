"""The well-formedness checker: planted violations counted exactly; real histories pass."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from checkers.wellformed import RULES, check_wellformed
from harness.history import HistoryWriter, load_history

ROOT = Path(__file__).resolve().parents[2]


def load(tmp_path: Path, recs: list[dict[str, Any]]) -> Any:
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs))
    return load_history(path).ops


def rec(index: int, time: int, type: str, process: Any, f: str = "publish", **kw: Any) -> dict:
    return {"index": index, "time": time, "type": type, "process": process, "f": f} | kw


# One planted violation per rule (two ops after an info, two open invokes); lines are 1-based.
PLANTED = [
    rec(0, 10, "invoke", 0, value=0),  # 1
    rec(1, 20, "ok", 0, value=0),  # 2
    rec(2, 30, "invoke", 1, value=1),  # 3
    rec(3, 40, "info", "nemesis", "kill", value={"start": "kill"}),  # 4
    rec(4, 50, "info", 1, value=1),  # 5: process 1 is retired
    rec(5, 60, "invoke", 1, value=2),  # 6: reused after info
    rec(6, 70, "ok", 1, value=2),  # 7: reused after info
    rec(7, 80, "ok", 0, value=9),  # 8: completion without an invoke
    rec(8, 75, "invoke", 2, value=3),  # 9: time goes backwards
    rec(9, 90, "invoke", 2, value=4),  # 10: invoke while 3 is in flight
    rec(10, 100, "fail", 2, "read", value=4),  # 11: f differs from the invoke's
    rec(10, 105, "ok", "nemesis", "kill", value={"stop": "kill"}),  # 12: index repeats; not info
    rec(12, 110, "invoke", 3, value=5),  # 13: never completed
    rec(13, 120, "invoke", 4, "read"),  # 14: never completed
]
EXPECTED = {
    "completion-without-invoke": [8],
    "invoke-in-flight": [10],
    "f-mismatch": [11],
    "missing-completion": [13, 14],
    "process-reused-after-info": [6, 7],
    "time-decreasing": [9],
    "index-not-increasing": [12],
    "nemesis-not-info": [12],
}


def test_planted_violations_are_counted_exactly(tmp_path: Path) -> None:
    r = check_wellformed(load(tmp_path, PLANTED), {})
    assert set(EXPECTED) == set(RULES)
    assert r["valid"] == "unknown"
    assert r["anomalies"] == []
    assert r["counts"] == {k: len(v) for k, v in EXPECTED.items()}
    assert r["lines"] == EXPECTED
    assert r["warnings"] == {}
    assert r["op_count"] == len(PLANTED)
    headline = r["summary"]["headline"]
    assert headline.startswith(
        "the history is not well-formed: completion without an invoke in flight ×1 (line 8); "
    )
    assert "; invoke without a completion ×2 (lines 13, 14); " in headline


def test_a_cut_off_history_may_end_with_invokes_in_flight(tmp_path: Path) -> None:
    r = check_wellformed(load(tmp_path, PLANTED), {"cut_off": True})
    assert r["counts"]["missing-completion"] == 0
    assert "missing-completion" not in r["lines"]
    assert r["warnings"] == {"missing-completion": {"count": 2, "lines": [13, 14]}}
    assert r["valid"] == "unknown"  # the other violations remain

    only_open = [rec(0, 1, "invoke", 0), rec(1, 2, "ok", 0), rec(2, 3, "invoke", 0)]
    assert check_wellformed(load(tmp_path, only_open), {})["valid"] == "unknown"
    cut = check_wellformed(load(tmp_path, only_open), {"cut_off": True})
    assert cut["valid"] is True and cut["warnings"]["missing-completion"]["count"] == 1


def test_only_the_first_lines_are_kept(tmp_path: Path) -> None:
    recs = [rec(i, i, "ok", 0) for i in range(12)]  # twelve completions, no invoke
    r = check_wellformed(load(tmp_path, recs), {})
    assert r["counts"]["completion-without-invoke"] == 12
    assert r["lines"] == {"completion-without-invoke": [1, 2, 3, 4, 5]}
    assert "(lines 1, 2, 3, 4, 5, …)" in r["summary"]["headline"]


def test_an_empty_history_is_well_formed(tmp_path: Path) -> None:
    r = check_wellformed(load(tmp_path, []), {})
    assert r["valid"] is True and set(r["counts"].values()) == {0}


def test_a_history_of_the_writer_is_well_formed(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    with HistoryWriter(path) as w:
        for p in range(3):
            w.append("invoke", p, "publish", p)
        w.append("info", "nemesis", "kill", {"start": "kill", "nodes": ["n1"]})
        w.append("ok", 1, "publish", 1, seq=1)
        w.append("info", 0, "publish", 0, error="timeout")
        w.append("fail", 2, "publish", 2, error="no responders")
        w.append("invoke", 3, "publish", 3)  # process 0 ended info: 3 goes on in its place
        w.append("ok", 3, "publish", 3, seq=2)
    r = check_wellformed(load_history(path).ops, {})
    assert r["valid"] is True, r["summary"]
    assert r["summary"]["headline"] == "the history is well-formed (9 ops)"


def synth(tmp_path: Path, publishes: int, faults: int = 0) -> Any:
    """The ops of a ``benchmarks/synth_history.py`` history (what the benchmarks check)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from synth_history import write_history
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    path = tmp_path / "synth.jsonl"
    write_history(path, publishes, faults=faults)
    return load_history(path, pairs_fs=frozenset({"read"})).ops


def test_a_synthetic_million_op_style_history_is_well_formed(tmp_path: Path) -> None:
    r = check_wellformed(synth(tmp_path, 20_000), {})
    assert r["valid"] is True, r["summary"]


@pytest.mark.parametrize("rule", ["time", "index"])
def test_equal_times_are_fine_equal_indexes_are_not(tmp_path: Path, rule: str) -> None:
    recs = [rec(0, 5, "invoke", 0), rec(1, 5, "ok", 0)]
    if rule == "index":
        recs[1]["index"] = 0
    r = check_wellformed(load(tmp_path, recs), {})
    assert r["valid"] is (True if rule == "time" else "unknown")


def test_a_synthetic_history_with_kill_windows_is_well_formed(tmp_path: Path) -> None:
    ops = synth(tmp_path, 5_000, faults=3)
    assert (ops["process"] == "nemesis").sum() == 3 * 2 + 2  # the windows and one kill/restart
    assert check_wellformed(ops, {})["valid"] is True
