"""Seeded views (``checkers.schema.seed_views``): what a loader hands the checkers equals
what they would compute, and is dropped when the column it was made from is not there.

Every loader that seeds is held to it — line by line, the typed-column path (DuckDB)
and the columnar sidecar — on one history with every kind of value a column can hold:
ints, a bool, an integer beyond 64 bits, floats, strings, null, dicts, pairs, nemesis
processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

import harness.history as history
from checkers import schema
from checkers.compose import check_history
from harness import sidecar
from harness.history import LoadedHistory, load_history

PAIRS = frozenset({"read"})
NAMES = ("wellformed", "stats", "queue", "availability")
CONTEXT = {"nodes": ["n1", "n2", "n3"]}


def _write(path: Path) -> Path:
    recs: list[dict[str, Any]] = [
        {"type": "info", "process": "nemesis", "f": "kill", "value": {"start": "kill"}}
    ]
    for v in range(300):
        node = f"n{v % 3 + 1}"
        recs.append({"type": "invoke", "process": v % 5, "f": "publish", "value": v, "node": node})
        if v % 40 == 39:
            recs.append({"type": "info", "process": v % 5, "f": "publish", "value": v,
                         "node": node, "error": "timeout"})  # fmt: skip
        else:
            recs.append({"type": "ok", "process": v % 5, "f": "publish", "value": v,
                         "node": node, "seq": v + 1})  # fmt: skip
    odd = [True, 10**19, 2.5, "x", None, [1, 2], {"a": None}, -(2**63)]
    for k, value in enumerate(odd):  # values a probe op may carry: seeds must say "not an int"
        recs.append({"type": "invoke", "process": 7, "f": "probe", "value": value, "node": "n1"})
        recs.append({"type": "ok", "process": 7, "f": "probe", "value": k, "node": "n1"})
    recs.append({"type": "info", "process": "nemesis", "f": "kill", "value": {"stop": "kill"}})
    pairs = [[s + 1, v] for s, v in enumerate(range(0, 300, 2))]
    for k, node in enumerate(("n1", "n2", "n3")):
        recs.append(
            {"type": "invoke", "process": 100 + k, "f": "read", "value": None, "node": node}
        )
        recs.append({"type": "ok", "process": 100 + k, "f": "read", "value": pairs, "node": node})
    lines = [orjson.dumps({"index": i, "time": 1000 * i} | r) + b"\n" for i, r in enumerate(recs)]
    path.write_bytes(b"".join(lines))
    return path


def _load(path: Path, how: str, monkeypatch: pytest.MonkeyPatch) -> LoadedHistory:
    if how == "sidecar":
        monkeypatch.setattr(sidecar, "MIN_BYTES", 0)
        sidecar.write(load_history(path, PAIRS), path, PAIRS)
        loaded = sidecar.read(path, PAIRS)
        assert loaded is not None
        return loaded
    if how == "columnar":
        pytest.importorskip("duckdb")
        monkeypatch.setattr(history, "_CHUNK_BYTES", 2048)
        monkeypatch.setattr(history, "_TAIL_LINES", 7)
    monkeypatch.setattr(history, "COLUMNAR_FROM", 0 if how == "columnar" else 1 << 62)
    return load_history(path, PAIRS)


def _is_int64(v: Any) -> bool:
    return type(v) is int and schema.INT64.min <= v <= schema.INT64.max


@pytest.mark.parametrize("how", ["lines", "columnar", "sidecar"])
def test_every_seed_a_loader_gives_equals_the_view_the_checkers_compute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    loaded = _load(_write(tmp_path / "history.jsonl"), how, monkeypatch)
    ops = loaded.ops
    seeds = schema.usable_seeds(ops, loaded.views)
    expected = {("factorized", "type"), ("factorized", "f")}
    if how != "lines":  # the line-by-line loader has no int views to give
        expected |= {("int64", "process"), ("int64", "value"), "client"}
    assert expected <= set(seeds)
    for key, view in seeds.items():
        if key == "client":
            assert np.array_equal(view, schema._client_mask(ops))
        elif key[0] == "factorized":
            codes, uniques = schema._factorized(ops, key[1])
            assert np.array_equal(view[0], codes) and list(view[1]) == list(uniques)
        else:
            values, ok = view  # True: a 64-bit int, that one; False: the checkers look
            column = np.array([*ops[key[1]].tolist(), None], dtype=object)[:-1]
            is_int = np.array([_is_int64(v) for v in column], dtype=bool)
            assert not (ok & ~is_int).any()
            assert values[ok].tolist() == column[ok].tolist()
            if how == "columnar":  # DuckDB's plain-integer status: every one of them
                assert np.array_equal(ok, is_int)
    if how == "columnar":
        probes = seeds[("int64", "value")][1][ops["f"] == "probe"][::2]
        assert probes.tolist() == [False] * 7 + [True]  # only -2**63 is a 64-bit int


@pytest.mark.parametrize("how", ["lines", "columnar", "sidecar"])
def test_a_seeded_check_gives_the_verdict_of_an_unseeded_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    loaded = _load(_write(tmp_path / "history.jsonl"), how, monkeypatch)
    plain = check_history(loaded.ops, CONTEXT, NAMES, "queue")
    seeded = check_history(loaded.ops, CONTEXT, NAMES, "queue", loaded.views)
    assert orjson.dumps(seeded, default=str) == orjson.dumps(plain, default=str)
    assert (
        plain["checkers"]["queue"]["lost_count"] == 143
    )  # the 150 odd values less the 7 unacked: never read


def test_a_seed_of_a_column_replaced_after_loading_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = _load(_write(tmp_path / "history.jsonl"), "columnar", monkeypatch)
    ops = loaded.ops
    assert ("int64", "value") in schema.usable_seeds(ops, loaded.views)
    values = ops["value"].to_numpy(dtype=object).copy()
    values[1] = 12345  # the first publish invoke now says another value
    ops["value"] = values
    seeds = schema.usable_seeds(ops, loaded.views)
    assert ("int64", "value") not in seeds and ("factorized", "type") in seeds
    with schema.shared_columns(ops, loaded.views):
        rows = np.flatnonzero((ops["f"] == "publish") & (ops["type"] == "invoke"))
        assert schema.int64_at(ops, rows, "value")[0] == 12345


def test_a_seeded_int_view_still_names_the_line_of_a_value_that_is_not_an_int(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = _load(_write(tmp_path / "history.jsonl"), "columnar", monkeypatch)
    ops = loaded.ops
    rows = np.flatnonzero(ops["f"] == "probe")
    with schema.shared_columns(ops, loaded.views):
        assert schema.seeded(ops, ("int64", "value")) is not None
        with pytest.raises(schema.MalformedHistory) as e:
            schema.int64_at(ops, rows, "value")
    assert e.value.line == int(ops["_line"][rows[0]]) and "True" in e.value.why


def test_seeds_for_another_frame_or_of_a_bad_shape_are_ignored() -> None:
    ops = pd.DataFrame({"type": ["invoke", "ok"], "f": ["a", "a"], "process": [1, 2]})
    other = ops.copy()
    views = schema.seed_views(
        ops,
        {"type": (np.array([0, 1]), ["invoke", "ok"]), "f": (np.array([0]), ["a"])},
        {"process": (np.array([1, 2]), np.array([True, True]))},
    )
    assert ("factorized", "f") not in views  # one code for two rows
    assert set(schema.usable_seeds(ops, views)) == {
        ("factorized", "type"),
        ("int64", "process"),
        "client",
    }
    assert schema.usable_seeds(other, views) == {}  # a copy holds other arrays
