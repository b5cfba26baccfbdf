"""The typed-column path of the loader (harness.history_columns) builds the very table the
line-by-line loader builds, and hands back every file it cannot vouch for."""

from __future__ import annotations

import mmap
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

import harness.history as history
from harness.history_columns import load_columns

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from synth_history import write_history

PAIRS = frozenset({"read"})


def both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(typed-column table, line-by-line table) of ``path``."""
    with monkeypatch.context() as m:
        m.setattr(history, "COLUMNAR_FROM", 1 << 62)
        slow = history.load_history(path, pairs_fs=PAIRS).ops
    with monkeypatch.context() as m:
        m.setattr(history, "COLUMNAR_FROM", 0)
        fast = history.load_history(path, pairs_fs=PAIRS).ops
    return fast, slow


def assert_same(fast: pd.DataFrame, slow: pd.DataFrame) -> None:
    assert sorted(fast.columns) == sorted(slow.columns)
    for c in slow.columns:
        if c != "value":
            pd.testing.assert_series_equal(fast[c], slow[c], check_names=True)
    for a, b in zip(fast["value"].tolist(), slow["value"].tolist(), strict=True):
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
        else:
            assert type(a) is type(b) and a == b, (a, b)


def columnar(path: Path) -> pd.DataFrame | None:
    """What the typed-column path alone makes of ``path`` (None: it handed it back)."""
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        return history._load_columnar(path, buf, len(buf), PAIRS)


def test_a_synthetic_queue_history_loads_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "history.jsonl"
    write_history(path, 3000, procs=7, lost=4, faults=3)
    monkeypatch.setattr(history, "COLUMNAR_FROM", 0)
    assert columnar(path) is not None  # the typed-column path took it
    assert_same(*both(path, monkeypatch))


def _ops() -> list[dict[str, Any]]:
    recs: list[dict[str, Any]] = []
    for i in range(40):
        recs.append({"index": 2 * i, "time": 20 * i, "type": "invoke", "process": i % 3,
                     "f": "publish", "value": i, "node": f"n{i % 3 + 1}"})  # fmt: skip
        kind = ("ok", "fail", "info")[i % 3]
        done = {"index": 2 * i + 1, "time": 20 * i + 5, "type": kind, "process": i % 3,
                "f": "publish", "value": i, "node": None if i % 5 else "n1"}  # fmt: skip
        if i % 3:
            done["error"] = 'nats: "timeout": null reply' if i % 2 else "no responders"
        else:
            done["seq"] = i + 1
        if i % 7 == 0:
            done["duplicate"] = i % 2 == 0
        recs.append(done)
    recs.append({"index": 80, "time": 900, "type": "info", "process": "nemesis", "f": "kill",
                 "value": {"start": "kill", "nodes": ["n1"], "leaders": {"stream": None},
                           "note": "ünïcode: «x»"}, "node": None})  # fmt: skip
    recs.append({"index": 81, "time": 901, "type": "invoke", "process": 9, "f": "read",
                 "value": None, "node": "n2"})  # fmt: skip
    recs.append({"index": 82, "time": 902, "type": "ok", "process": 9, "f": "read",
                 "value": [[1, 5], [2, 7]], "node": "n2", "routes": 0, "note": None})  # fmt: skip
    recs.append({"index": 83, "time": 903, "type": "ok", "process": 10, "f": "read",
                 "value": [], "node": "n3", "absent": True, "note": "no stream"})  # fmt: skip
    recs.append({"index": 84, "time": 904, "type": "ok", "process": 11, "f": "cas",
                 "value": [1, [2.5, -3]], "node": "n3", "seq": 10**18})  # fmt: skip
    return recs


@pytest.mark.parametrize("spaced", [False, True], ids=["orjson", "json.dumps"])
def test_every_field_type_loads_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spaced: bool
) -> None:
    import json

    dump = (lambda r: json.dumps(r).encode()) if spaced else orjson.dumps
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(dump(r) + b"\n" for r in _ops()))
    monkeypatch.setattr(history, "COLUMNAR_FROM", 0)
    assert columnar(path) is not None
    fast, slow = both(path, monkeypatch)
    assert {"seq", "duplicate", "routes", "absent", "note", "error"} <= set(fast.columns)
    assert_same(fast, slow)


def test_a_field_the_sampled_lines_do_not_show_is_handed_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recs = _ops()
    recs[40]["rare"] = "only here"  # neither in the first piece nor among the last lines
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs))
    monkeypatch.setattr(history, "COLUMNAR_FROM", 0)
    monkeypatch.setattr(history, "_CHUNK_BYTES", 200)
    monkeypatch.setattr(history, "_TAIL_LINES", 3)
    assert columnar(path) is None
    ops = history.load_history(path, pairs_fs=PAIRS).ops
    assert ops["rare"].tolist()[40] == "only here"


@pytest.mark.parametrize(
    ("field", "bad"),
    [("f", 5), ("index", 1.5), ("time", True), ("process", "5"), ("value", [[1, "a"]]),
     ("node", 3), ("type", "done"), ("process", 2**70)],
)  # fmt: skip
def test_what_the_contract_refuses_is_handed_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str, bad: object
) -> None:
    recs = _ops()
    recs[82][field] = bad
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(_dump(r) for r in recs))  # json: orjson refuses 2**70
    monkeypatch.setattr(history, "COLUMNAR_FROM", 0)
    assert columnar(path) is None
    with pytest.raises(history.HistoryError, match=":83: "):
        history.load_history(path, pairs_fs=PAIRS)


def _dump(rec: dict[str, Any]) -> bytes:
    import json

    return json.dumps(rec, separators=(",", ":")).encode() + b"\n"


def test_direct_call_refuses_a_cut_off_file(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in _ops())[:-5])
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        assert load_columns(path, buf, len(buf), [], PAIRS) is None


def test_a_line_longer_than_the_reader_allows_is_handed_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recs = _ops()
    recs[40]["value"] = {"blob": "x" * (40 << 20)}  # 40 MiB, not among the last lines
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs))
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        extras = ["absent", "duplicate", "note", "routes", "seq"]
        assert load_columns(path, buf, len(buf), extras, PAIRS, max_line=16 << 20) is None
        assert load_columns(path, buf, len(buf), extras, PAIRS) is not None
