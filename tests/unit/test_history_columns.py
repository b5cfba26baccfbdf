"""The typed-column path of the loader (harness.history_columns) builds the very table the
line-by-line loader builds, and hands back every file it cannot vouch for.

The files here are small: pieces of ``CHUNK`` bytes and a tail of ``TAIL`` lines make
DuckDB read all but the last lines, as it reads all but the final reads of a real run."""

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
from harness.history_columns import load_prefix

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from synth_history import write_history

PAIRS = frozenset({"read"})
CHUNK, TAIL = 2048, 3


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "_CHUNK_BYTES", CHUNK)
    monkeypatch.setattr(history, "_TAIL_LINES", TAIL)


def both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(typed-column table, line-by-line table) of ``path``."""
    with monkeypatch.context() as m:
        m.setattr(history, "COLUMNAR_FROM", 1 << 62)
        slow = history.load_history(path, pairs_fs=PAIRS).ops
    with monkeypatch.context() as m:
        m.setattr(history, "COLUMNAR_FROM", 0)
        fast = history.load_history(path, pairs_fs=PAIRS).ops
    return fast, slow


def prefix_of(path: Path) -> Any:
    """What DuckDB alone makes of all but the tail of ``path`` (None: it handed it back)."""
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        split = history._tail_start(buf, len(buf))
        extras = history._head_extras(path, buf, len(buf), PAIRS)
    assert split > 0 and extras is not None
    return load_prefix(path, split, extras, PAIRS)


def assert_same(fast: pd.DataFrame, slow: pd.DataFrame) -> None:
    assert list(fast.columns) == list(slow.columns)
    pd.testing.assert_frame_equal(fast.drop(columns="value"), slow.drop(columns="value"))
    assert fast["value"].dtype == slow["value"].dtype == object
    for a, b in zip(fast["value"].tolist(), slow["value"].tolist(), strict=True):
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
        else:
            assert type(a) is type(b) and a == b, (a, b)


@pytest.mark.parametrize("faults", [0, 5])
def test_a_synthetic_queue_history_loads_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faults: int
) -> None:
    path = tmp_path / "history.jsonl"
    write_history(path, 3000, procs=7, lost=4, faults=faults)
    assert prefix_of(path) is not None  # the typed-column path took all but the tail
    fast, slow = both(path, monkeypatch)
    assert_same(fast, slow)
    reads = slow["value"][(slow["type"] == "ok") & (slow["f"] == "read")].tolist()
    assert reads and all(v.dtype == np.int64 and v.shape[1] == 2 for v in reads)


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
@pytest.mark.parametrize("early", [False, True], ids=["in-order", "odd-ops-first"])
def test_every_field_type_loads_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spaced: bool, early: bool
) -> None:
    import json

    dump = (lambda r: json.dumps(r).encode()) if spaced else orjson.dumps
    recs = _ops()
    if early:  # the nemesis op, the reads, a float, nested nulls: all read by DuckDB
        recs = recs[80:] + recs[:80]
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(dump(r) + b"\n" for r in recs))
    monkeypatch.setattr(history, "COLUMNAR_FROM", 0)
    piece = prefix_of(path)
    assert piece is not None
    if early:
        assert piece.n > 5 and piece.process[0] == "nemesis"
        assert piece.value[2].tolist() == [[1, 5], [2, 7]] and piece.value[4] == [1, [2.5, -3]]
    fast, slow = both(path, monkeypatch)
    assert {"seq", "duplicate", "routes", "absent", "note", "error"} <= set(fast.columns)
    assert_same(fast, slow)


@pytest.mark.parametrize("rare", ["only here", None, [1, None]], ids=["str", "null", "list"])
def test_a_field_the_first_piece_does_not_show_is_handed_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rare: object
) -> None:
    recs = _ops()
    recs[40]["rare"] = rare  # neither in the first piece nor among the last lines
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs))
    assert prefix_of(path) is None
    fast, slow = both(path, monkeypatch)
    assert fast["rare"].tolist()[40] == rare
    assert_same(fast, slow)


def test_null_keys_are_counted_by_name() -> None:
    from collections import Counter

    from harness.history_columns import null_keys

    found: Counter[bytes] = Counter()
    null_keys(b'{"a":null,"b" : null,"c":"x:null","d":[null],"e":{"f":null},"g":"nullx"}', found)
    assert found == Counter({b"a": 1, b"b": 1, b"f": 1})


@pytest.mark.parametrize(
    "line",
    [b'{"index":40,"time":1,"type":"ok","process":1,"f":"publish","value":1,}',  # DuckDB takes it
     b'{"index":40,"time":1,"type":"ok","process":1,"f":"publish","value":NaN}',
     b'{"index":40,"time":1,"type":"ok","process":1,"f":"publish","value":[1,]}',
     b'{"index":40,"time":1,"type":"ok","process":1,"f":"publish","value":1} x',
     b"\xff"],
)  # fmt: skip
def test_what_orjson_refuses_in_the_prefix_is_an_error_naming_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: bytes
) -> None:
    lines = [orjson.dumps(r) for r in _ops()]
    lines[40] = line
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert prefix_of(path) is None
    monkeypatch.setattr(history, "COLUMNAR_FROM", 0)
    with pytest.raises(history.HistoryError, match=":41: not valid JSON"):
        history.load_history(path, pairs_fs=PAIRS)


def test_a_blank_line_in_the_prefix_is_handed_back_and_line_numbers_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [orjson.dumps(r) for r in _ops()]
    lines[40:40] = [b"", b"   "]
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert prefix_of(path) is None
    fast, slow = both(path, monkeypatch)
    assert_same(fast, slow)
    assert fast["_line"].tolist()[40] == 43


def test_a_duplicate_key_is_handed_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [orjson.dumps(r) for r in _ops()]
    lines[40] = lines[40][:-1] + b',"value":"again"}'  # orjson keeps the last one
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert prefix_of(path) is None
    fast, slow = both(path, monkeypatch)
    assert slow["value"].tolist()[40] == "again"
    assert_same(fast, slow)


@pytest.mark.parametrize(
    ("field", "bad"),
    [("f", 5), ("index", 1.5), ("time", True), ("process", "5"), ("value", [[1, "a"]]),
     ("node", 3), ("type", "done"), ("type", 1), ("process", 2**70)],
)  # fmt: skip
def test_what_the_contract_refuses_is_handed_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str, bad: object
) -> None:
    recs = _ops()
    recs[82][field] = bad
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(_dump(r) for r in recs))  # json: orjson refuses 2**70
    monkeypatch.setattr(history, "_CHUNK_BYTES", 64)  # a piece a line: line 83 in the prefix
    monkeypatch.setattr(history, "_TAIL_LINES", 1)
    assert prefix_of(path) is None
    monkeypatch.setattr(history, "COLUMNAR_FROM", 0)
    with pytest.raises(history.HistoryError, match=":83: "):
        history.load_history(path, pairs_fs=PAIRS)


def _dump(rec: dict[str, Any]) -> bytes:
    import json

    return json.dumps(rec, separators=(",", ":")).encode() + b"\n"


def test_a_line_longer_than_the_read_buffer_loads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.history_columns import MAX_LINE

    recs = _ops()
    recs[40]["value"] = {"blob": "x" * 2 * MAX_LINE}  # not among the last lines
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs))
    assert prefix_of(path) is not None
    fast, slow = both(path, monkeypatch)
    assert_same(fast, slow)
    assert fast["value"].tolist()[40] == recs[40]["value"]


def test_the_tail_starts_where_a_line_by_line_piece_starts(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    write_history(path, 3000, procs=7, lost=4)
    data = path.read_bytes()
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        split = history._tail_start(buf, len(buf))
        starts = list(history._block_starts(buf, len(buf)))
    assert split in starts and split < len(data) and data[split - 1 : split] == b"\n"
    assert data[split:].count(b"\n") >= TAIL > data[starts[starts.index(split) + 1] :].count(b"\n")


def test_a_line_duckdb_refuses_early_in_a_long_prefix_stops_the_feed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.history_columns import _PIPE_BYTES

    path = tmp_path / "history.jsonl"
    write_history(path, 20_000, procs=7, lost=4)
    lines = path.read_bytes().split(b"\n")
    lines[1999] = lines[1999] + b" x"  # DuckDB stops here; the feeding thread must not wait on
    path.write_bytes(b"\n".join(lines))
    assert path.stat().st_size > 4 * _PIPE_BYTES
    monkeypatch.setattr(history, "_CHUNK_BYTES", 64 << 10)  # the first piece is clean
    monkeypatch.setattr(history, "_TAIL_LINES", 64)
    assert prefix_of(path) is None
    monkeypatch.setattr(history, "COLUMNAR_FROM", 0)
    with pytest.raises(history.HistoryError, match=":2000: not valid JSON"):
        history.load_history(path, pairs_fs=PAIRS)


def test_an_escaped_comma_is_handed_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [orjson.dumps(r) for r in _ops()]
    # DuckDB renders the escape as a comma: with the unread key, the commas would balance
    lines[40] = lines[40][:-1] + b',"error":"a\\u002cb","rare":1}'
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert prefix_of(path) is None
    fast, slow = both(path, monkeypatch)
    assert slow["error"].tolist()[40] == "a,b" and slow["rare"].tolist()[40] == 1
    assert_same(fast, slow)


@pytest.mark.parametrize(
    "raw", [b"1E2", b"100.0", b"1.5e0", b"-0", b"0.0", b"-1e-2", b"true", b"false", b'"5"']
)
def test_a_number_duckdb_would_cast_to_an_integer_keeps_its_json_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw: bytes
) -> None:
    """``value`` as written (a float stays a float, ``-0`` is the integer 0), not DuckDB's cast
    (which reads each as an integer): its text is not an integer's, so it is decoded from its
    text (a float's row is exact: DuckDB renders floats with other marks)."""
    lines = [orjson.dumps(r) + b"\n" for r in _ops()]
    lines[10] = lines[10].replace(b'"value":5,', b'"value":' + raw + b",")
    assert raw in lines[10]
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(lines))
    assert prefix_of(path) is not None
    fast, slow = both(path, monkeypatch)
    assert_same(fast, slow)
    assert fast["value"][10] == orjson.loads(raw) and type(fast["value"][10]) is type(
        orjson.loads(raw)
    )


@pytest.mark.parametrize("last", [7, None, "x", 2**64, 1.5, True, "absent"])
@pytest.mark.parametrize("everywhere", [False, True], ids=["some-null", "no-null"])
def test_an_integer_extra_field_is_the_column_pandas_infers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, last: object, everywhere: bool
) -> None:
    """An extra field DuckDB read as integers (and nulls) is built from the numbers, with
    the dtype pandas infers from the objects whatever the tail adds: int64, float64, object."""
    recs = [{"index": i, "time": 10 * i, "type": "invoke", "process": i % 4, "f": "publish",
             "value": i, "node": "n1"} for i in range(300)]  # fmt: skip
    for i, rec in enumerate(recs):
        if everywhere or i % 3:
            rec["seq"] = i - 150  # negative ones too
    if last == "absent":
        recs[-1].pop("seq", None)
    else:
        recs[-1]["seq"] = last
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(_dump(r) for r in recs))  # json: orjson refuses 2**64
    piece = prefix_of(path)
    assert piece is not None and isinstance(piece.extras["seq"], history.IntsOrNull)
    fast, slow = both(path, monkeypatch)
    assert_same(fast, slow)
    if last == 7:
        assert fast["seq"].dtype == (np.int64 if everywhere else np.float64)


@pytest.mark.parametrize(
    ("old", "new"),
    [(b'"time":400,', b'"time":"400",'), (b'"index":40,', b'"index":40.0,'),
     (b'"time":400,', b'"time":4e2,'), (b'"process":2,', b'"process":"2",'),
     (b'"value":20,', b'"value":20,"rare":7,'), (b'"value":20,', b'"value":20,"value":20,')],
    ids=["str", "float", "exponent", "str-process", "unread-key", "twice"],
)  # fmt: skip
def test_what_duckdb_would_read_as_an_integer_or_drop_is_handed_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: bytes, new: bytes
) -> None:
    """DuckDB's BIGINT reads each of these values as the integer beside it (and drops a key no
    column holds): the mark count hands the file back, and the load is line by line's."""
    lines = [orjson.dumps(r) + b"\n" for r in _ops()]
    assert old in lines[40]  # beyond the first piece
    lines[40] = lines[40].replace(old, new)
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(lines))
    assert prefix_of(path) is None
    if not old.startswith(b'"value"'):  # the contract refuses it: both loaders name the line
        for columnar in (0, 1 << 62):
            monkeypatch.setattr(history, "COLUMNAR_FROM", columnar)
            with pytest.raises(history.HistoryError, match=r":41: (index|time|process) "):
                history.load_history(path, pairs_fs=PAIRS)
        return
    fast, slow = both(path, monkeypatch)
    assert_same(fast, slow)


@pytest.mark.parametrize("odd", ["61", True, 61.0])
def test_an_integer_extra_that_turns_out_otherwise_is_handed_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, odd: object
) -> None:
    recs = _ops()
    assert recs[1]["seq"] == 1 and "seq" in recs[61]  # integers on the first piece
    recs[61]["seq"] = odd  # DuckDB's BIGINT reads each as 61 (True as 1)
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs))
    assert prefix_of(path) is None
    fast, slow = both(path, monkeypatch)
    assert slow["seq"].tolist()[61] == odd and type(slow["seq"].tolist()[61]) is type(odd)
    assert_same(fast, slow)


def test_exact_rows_are_found_across_newline_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A nemesis op, a null value and a \\u escape: rows DuckDB does not type are read back
    from the file, found by newline counts per block (small blocks here: many of them)."""
    import harness.history_columns as columns

    monkeypatch.setattr(columns, "_BLOCK", 512)
    path = tmp_path / "history.jsonl"
    write_history(path, 3000, procs=7, lost=4, faults=5)
    lines = path.read_bytes().split(b"\n")
    lines[700] = lines[700].replace(b'"node":"n', b'"node":"\\u006e')  # the same text
    assert b"\\u006e" in lines[700]
    path.write_bytes(b"\n".join(lines))
    piece = prefix_of(path)
    assert piece is not None
    nemesis = sum(b'"process":"nemesis"' in line for line in lines[: piece.n])
    assert nemesis and (piece.process == "nemesis").sum() == nemesis
    fast, slow = both(path, monkeypatch)
    assert_same(fast, slow)


_PAIRS_LINE = (b'{"index":84,"time":904,"type":"%s","process":1,"f":"read","value":'
               + orjson.dumps([[s, 2 * s] for s in range(1, 400)]) + b"}")  # fmt: skip


@pytest.mark.parametrize(
    ("bad", "error"),
    [(b'{"index":84,"time":904,"type":"ok"', ":85: not valid JSON"),
     (b'{"index":84,"time":904,"type":"done","process":1,"f":"publish","value":1}',
      ":85: type 'done' is not one of"),
     (_PAIRS_LINE % b"ok" + b" x", ":85: not valid JSON"),
     (_PAIRS_LINE % b"done", ":85: type 'done' is not one of")],
    ids=["json", "contract", "huge-json", "huge-contract"],
)  # fmt: skip
def test_the_tail_parsed_beside_duckdb_names_its_own_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: bytes, error: str
) -> None:
    """The tail's huge lines (the final reads) are parsed while DuckDB reads the prefix,
    before the prefix's line count is known, its other lines after: what is wrong in either
    is still named by its line in the file."""
    monkeypatch.setattr(history, "_LONG_LINE", 64)  # the pairs line is huge (past CHUNK too)
    lines = [orjson.dumps(r) for r in _ops()]
    lines[84] = bad  # the last line, in the tail
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert prefix_of(path) is not None
    monkeypatch.setattr(history, "COLUMNAR_FROM", 0)
    with pytest.raises(history.HistoryError, match=error):
        history.load_history(path, pairs_fs=PAIRS)


# Values, keys and bytes a mutated line may get: each loader must make of the file what the
# other makes of it, the same table or the same error (a differential test, seeded).
_TOKENS = [b"0", b"-0", b"5", b"9223372036854775807", b"9223372036854775808", b"1" + b"0" * 30,
           b"1.5", b"2.0", b"1e5", b"1E2", b"-0.0", b'"5"', b'"x"', b'""', b'"a\\u002cb"',
           b'"\\"q\\""', b'"n\\u0075ll"', '"é"'.encode(), b'"a,b"', b'": null"', b"true", b"false",
           b"null", b"[]", b"[1]", b"[[1,2]]", b"{}", b'{"a":null}', b"NaN", b"1e999", b"[1,]",
           b'"nemesis"', b'"ok"', b'"read"', b'"\\/"', b'"\\ud83d\\ude00"', b"01",
           b"0x10"]  # fmt: skip
_KEYS = ["index", "time", "type", "process", "f", "value", "node", "error", "seq", "duplicate",
         "note", "rare", "valu\\u0065", "x,y"]  # fmt: skip


def _mutated(line: bytes, rng: Any) -> bytes:
    try:
        pairs = [(k.encode(), orjson.dumps(v)) for k, v in orjson.loads(line).items()]
    except orjson.JSONDecodeError:
        return line + rng.choice([b"", b" ", b","])
    what = rng.random()
    if what < 0.6:
        key, token = rng.choice(_KEYS).encode(), rng.choice(_TOKENS)
        at = next((i for i, (k, _) in enumerate(pairs) if k == key), None)
        if at is None:
            pairs.insert(rng.randrange(len(pairs) + 1), (key, token))
        else:
            pairs[at] = (key, token)
    elif what < 0.7:
        pairs.pop(rng.randrange(len(pairs)))
    elif what < 0.8:
        pairs.append(rng.choice(pairs))  # a key twice
    colon, comma = (
        (rng.choice([b":", b" : "]), rng.choice([b",", b", "])) if what < 0.9 else (b":", b",")
    )
    raw = b"{" + comma.join(b'"' + k + b'"' + colon + v for k, v in pairs) + b"}"
    if what >= 0.9:
        at = rng.randrange(len(raw))
        raw = raw[:at] + rng.choice([b" ", b",", b"\\", b'"', b"}", b"\t", b"\xff"]) + raw[at:]
    return raw


def test_mutated_histories_load_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    rng = random.Random(14)
    base = [orjson.dumps(r) for r in _ops()]
    path, taken = tmp_path / "history.jsonl", 0
    for _ in range(60):
        lines = list(base)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(22, 82)  # past the first piece, before the tail
            lines[at] = _mutated(lines[at], rng)
        path.write_bytes(b"\n".join(lines) + b"\n")
        taken += prefix_of(path) is not None
        outcome = []
        for columnar in (0, 1 << 62):
            monkeypatch.setattr(history, "COLUMNAR_FROM", columnar)
            try:
                outcome.append(history.load_history(path, pairs_fs=PAIRS).ops)
            except history.HistoryError as e:
                outcome.append(str(e))
        fast, slow = outcome
        if isinstance(fast, str) or isinstance(slow, str):
            assert fast == slow
        else:
            assert_same(fast, slow)
    assert 10 < taken < 50, taken  # the typed-column path took some, and handed some back


@pytest.mark.parametrize("when", ["tail", "join"])
def test_an_interrupt_while_duckdb_reads_leaves_no_thread_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """Ctrl-C (or a run's second signal) while DuckDB reads the prefix in its thread: the
    read is interrupted and its thread waited for before the exception goes on (a process
    that exits with a thread inside DuckDB aborts)."""
    import threading

    import harness.history_columns as columns

    path = tmp_path / "history.jsonl"
    write_history(path, 20_000, procs=7, lost=4)
    monkeypatch.setattr(history, "COLUMNAR_FROM", 0)
    monkeypatch.setattr(history, "_CHUNK_BYTES", 64 << 10)
    monkeypatch.setattr(history, "_TAIL_LINES", 64)
    monkeypatch.setattr(history, "_LONG_LINE", 16 << 10)  # the final reads: parsed beside
    reading = threading.Event()
    real_read = columns._Load._read

    def slow_read(self: Any) -> Any:  # DuckDB is still reading when the interrupt comes
        reading.set()
        return real_read(self)

    monkeypatch.setattr(columns._Load, "_read", slow_read)
    target = "_parse_piece" if when == "tail" else "_forget"
    real = getattr(history, target)

    before = set(threading.enumerate())

    def interrupted(*args: Any) -> Any:
        if not set(threading.enumerate()) - before:  # the first piece, before the read
            return real(*args)
        assert reading.wait(10)
        if when == "join":  # in the main thread's wait for the read
            real(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(history, target, interrupted)
    with pytest.raises(KeyboardInterrupt):
        history.load_history(path, pairs_fs=PAIRS)
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []


def test_a_float_duckdb_renders_with_another_mark_cannot_hide_a_lenient_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB renders ``123456789012345678901234567890.0`` as ``1.2345678901234568e29``, a
    mark more, which would balance the ``.`` of an index written ``40.0``: a float's row is
    exact, so the count still shows it."""
    big = b"123456789012345678901234567890.0"
    lines = [orjson.dumps(r) + b"\n" for r in _ops()]
    lines[40] = lines[40].replace(b'"index":40,', b'"index":40.0,')
    lines[40] = lines[40].replace(b'"value":20,', b'"value":[' + big + b"],")
    assert b"40.0" in lines[40] and big in lines[40]
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(lines))
    assert prefix_of(path) is None
    monkeypatch.setattr(history, "COLUMNAR_FROM", 0)
    with pytest.raises(history.HistoryError, match=r":41: index 40\.0 is not a 64-bit integer"):
        history.load_history(path, pairs_fs=PAIRS)
