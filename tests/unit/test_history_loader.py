"""History loader: the §3.1 contract, line-numbered errors, and its fast paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

import harness.history as history
from harness.errors import HistoryError
from harness.history import HistoryWriter, load_history


def op(i: int, **kw: object) -> dict:
    base = {"index": i, "time": i * 10, "type": "invoke", "process": 0, "f": "publish"}
    return base | {"value": i, "node": "n1"} | kw


def write(tmp_path: Path, text: bytes) -> Path:
    path = tmp_path / "history.jsonl"
    path.write_bytes(text)
    return path


def jsonl(*recs: dict) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in recs)


@pytest.fixture(params=[1 << 22, 64, 0], ids=["one-chunk", "tiny-chunks", "columnar"])
def chunk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run each test with the normal chunk size, with one so small every line is a piece,
    and through the typed-column path first (``harness.history_columns``, which hands
    whatever it does not vouch for back to the line-by-line loader)."""
    if request.param:
        monkeypatch.setattr(history, "_CHUNK_BYTES", request.param)
    else:  # every line but the last in DuckDB, the last one parsed line by line after it
        monkeypatch.setattr(history, "COLUMNAR_FROM", 0)
        monkeypatch.setattr(history, "_CHUNK_BYTES", 16)
        monkeypatch.setattr(history, "_TAIL_LINES", 1)
    return request.param


def test_roundtrip_with_writer(tmp_path: Path, chunk: int) -> None:
    path = tmp_path / "h.jsonl"
    with HistoryWriter(path, clock=iter(range(0, 1000, 5)).__next__) as w:
        w.append("invoke", 0, "publish", 7, node="n1")
        w.append("ok", 0, "publish", 7, node="n1", seq=1)
        w.append("info", "nemesis", "kill", {"start": "kill"})
    ops = load_history(path).ops
    assert ops["type"].tolist() == ["invoke", "ok", "info"]
    assert ops["process"].tolist() == [0, 0, "nemesis"]
    assert ops["process"].dtype == object
    assert ops["time"].tolist() == [5, 10, 15]
    assert ops["_line"].tolist() == [1, 2, 3]
    assert ops["seq"].isna().tolist() == [True, False, True]
    assert ops["value"].tolist()[2] == {"start": "kill"}


def test_process_is_int64_without_nemesis(tmp_path: Path, chunk: int) -> None:
    ops = load_history(write(tmp_path, jsonl(op(0), op(1, process=3)))).ops
    assert ops["process"].dtype == np.int64
    assert ops["index"].dtype == ops["time"].dtype == np.int64


def test_truncated_last_line_warns_and_keeps_earlier_ops(tmp_path: Path, chunk: int) -> None:
    text = jsonl(op(0), op(1)) + b'{"index": 2, "time": 20, "ty'
    loaded = load_history(write(tmp_path, text))
    assert len(loaded.ops) == 2
    assert len(loaded.warnings) == 1
    assert ":3: last line is cut off" in loaded.warnings[0]
    assert loaded.cut_off


def test_complete_last_line_without_newline_is_kept(tmp_path: Path, chunk: int) -> None:
    loaded = load_history(write(tmp_path, jsonl(op(0)) + orjson.dumps(op(1))))
    assert len(loaded.ops) == 2
    assert loaded.warnings == []
    assert not loaded.cut_off


def test_malformed_middle_line_names_its_number(tmp_path: Path, chunk: int) -> None:
    text = jsonl(op(0), op(1)) + b"{not json\n" + jsonl(op(3))
    with pytest.raises(HistoryError, match=r"history\.jsonl:3: not valid JSON"):
        load_history(write(tmp_path, text))


def test_blank_lines_are_skipped_and_line_numbers_kept(tmp_path: Path, chunk: int) -> None:
    text = jsonl(op(0)) + b"\n  \n" + jsonl(op(1))
    ops = load_history(write(tmp_path, text)).ops
    assert ops["_line"].tolist() == [1, 4]


def test_two_objects_on_one_line_is_an_error(tmp_path: Path, chunk: int) -> None:
    text = jsonl(op(0)) + orjson.dumps(op(1)) + b"," + jsonl(op(2))
    with pytest.raises(HistoryError, match=":2: not valid JSON"):
        load_history(write(tmp_path, text))


def test_non_object_line(tmp_path: Path, chunk: int) -> None:
    with pytest.raises(HistoryError, match=":2: expected a JSON object, got list"):
        load_history(write(tmp_path, jsonl(op(0)) + b"[1, 2]\n"))


@pytest.mark.parametrize("bad", ["started", None, 3])
def test_bad_type(tmp_path: Path, chunk: int, bad: object) -> None:
    with pytest.raises(HistoryError, match=rf":2: type {bad!r} is not one of invoke, ok"):
        load_history(write(tmp_path, jsonl(op(0), op(1, type=bad))))


@pytest.mark.parametrize("bad", ["client-1", True, 1.5, None])
def test_bad_process(tmp_path: Path, chunk: int, bad: object) -> None:
    with pytest.raises(
        HistoryError, match=rf':2: process {bad!r} is neither an integer nor "nemesis"'
    ):
        load_history(write(tmp_path, jsonl(op(0), op(1, process=bad))))


def test_missing_required_field(tmp_path: Path, chunk: int) -> None:
    rec = op(1)
    del rec["f"], rec["process"]
    with pytest.raises(HistoryError, match=r":2: missing field\(s\) process, f"):
        load_history(write(tmp_path, jsonl(op(0), rec)))


def test_empty_file(tmp_path: Path) -> None:
    loaded = load_history(write(tmp_path, b""))
    assert len(loaded.ops) == 0
    assert loaded.warnings == []
    assert {"index", "time", "type", "process", "f", "value", "_line"} <= set(loaded.ops.columns)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="cannot read history"):
        load_history(tmp_path / "nope.jsonl")


def test_hand_written_history_without_index_and_time(tmp_path: Path, chunk: int) -> None:
    recs = [{"type": "invoke", "process": 0, "f": "publish", "value": 1}] * 2
    ops = load_history(write(tmp_path, jsonl(*recs))).ops
    assert ops["index"].tolist() == [0, 1]
    assert ops["time"].tolist() == [0, 0]
    assert ops["node"].isna().all()


def test_ok_pairs_of_the_named_ops_become_int_array(tmp_path: Path, chunk: int) -> None:
    pairs = [[1, 10], [2, 11]]
    text = jsonl(
        op(0, type="ok", f="read", value=pairs),
        op(1, type="ok", f="read", value=[]),
        op(2, type="ok", f="kv-read", value=pairs),
        op(3, type="ok", f="read", value=None),
        op(4, type="info", f="read", value=pairs),
    )
    values = load_history(write(tmp_path, text), pairs_fs=frozenset({"read"})).ops["value"]
    values = values.tolist()
    assert isinstance(values[0], np.ndarray)
    assert values[0].dtype == np.int64
    assert values[0].tolist() == pairs
    assert values[1] == []
    assert values[2] == pairs  # kv-read is not named: left as parsed
    assert values[3] is None
    assert values[4] == pairs  # only ok completions are converted


def test_without_pairs_fs_no_value_is_converted(tmp_path: Path, chunk: int) -> None:
    """The bug: a hand-written KV history came back half ndarray, half list."""
    pairs = [[1, 10], [2, 11]]
    text = jsonl(
        op(0, type="ok", f="read", value=pairs),
        op(1, type="ok", f="kv-read", value=[[1, 2]]),
        op(2, type="ok", f="kv-read", value=[[1, "x"]]),
    )
    values = load_history(write(tmp_path, text)).ops["value"].tolist()
    assert values == [pairs, [[1, 2]], [[1, "x"]]]
    assert not any(isinstance(v, np.ndarray) for v in values)
    named = text.replace(b'[[1,"x"]]', b"[[1,3]]")
    values = load_history(write(tmp_path, named), pairs_fs=frozenset({"kv-read"})).ops["value"]
    assert [type(v).__name__ for v in values] == ["list", "ndarray", "ndarray"]
    with pytest.raises(HistoryError, match=r":3: the value of an ok kv-read must be a list of"):
        load_history(write(tmp_path, text), pairs_fs=frozenset({"kv-read"}))


def test_huge_read_line_fast_path_matches_json(tmp_path: Path, chunk: int) -> None:
    rng = np.random.default_rng(3)
    pairs = np.column_stack([np.arange(1, 150_001), rng.integers(0, 10**15, 150_000)])
    read = op(1, type="ok", f="read", value=pairs.tolist(), note="x")
    text = jsonl(op(0)) + jsonl(read) + jsonl(op(2))
    assert len(text) > history._LONG_LINE
    ops = load_history(write(tmp_path, text), pairs_fs=frozenset({"read"})).ops
    assert ops["_line"].tolist() == [1, 2, 3]
    assert np.array_equal(ops["value"][1], pairs)
    assert ops["note"].tolist()[1] == "x"
    plain = load_history(write(tmp_path, text)).ops  # not named: plain JSON, same content
    assert plain["value"][1] == pairs.tolist()


def test_pairs_text_parser_refuses_what_it_cannot_parse() -> None:
    assert history._pairs_from_text(b"[[1,2],[3,4]]").tolist() == [[1, 2], [3, 4]]
    assert history._pairs_from_text(b"[[1,-2]]") is None
    assert history._pairs_from_text(b"[[1,2,3]]") is None
    assert history._pairs_from_text(b"[[1,2],[3]]") is None
    assert history._pairs_from_text(b"[[1,99999999999999999999]]") is None
    assert history._pairs_from_text(b"[[1,9999999999999999999]]") is None  # 19 digits: > int64
    assert history._pairs_from_text(b"[[999999999999999999,1]]").tolist() == [[10**18 - 1, 1]]
    assert history._pairs_from_text(b"[[1, 2]]") is None
