"""The typed views checkers share during one check (checkers.schema.shared_columns).

Each helper is held against the plain numpy/pandas expression it replaces, on
columns with what the codes must get right (missing values, NaN, mixed
types, unhashable values); the memo lives exactly as long as its block and
only for its frame; what it hands out is read-only; and every workload's
checkers give the same result inside check_history as called one by one
without the memo.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fakerun import run, scenario

from checkers import schema
from checkers.compose import REGISTRY, check_history
from checkers.schema import (
    by_process,
    client_mask,
    column,
    equals,
    factorized,
    one_of,
    same_as_previous,
    shared_columns,
)
from checkers.sets import contains, stable_order, union, uniq
from checkers.stats import latency_ms, op_latency_ms, paired_ops
from harness import workloads
from harness.results import checker_names, load

NAN = float("nan")
COLUMNS = {  # name -> values: every case the codes must compare exactly like the objects
    "plain": ["invoke", "ok", "invoke", "fail", "info", "ok"],
    "missing": ["read", None, "read", NAN, None, "publish"],
    "mixed": ["1", 1, 1.0, True, "x", "1"],
    "unhashable": ["ok", ["ok"], "ok", {"a": 1}, "ok", "fail"],
}


def frame(values: list[Any], dtype: Any = object) -> pd.DataFrame:
    return pd.DataFrame({"f": pd.Series(values, dtype=dtype)})


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_equals_one_of_and_neighbours_compare_like_the_objects(name: str) -> None:
    ops = frame(COLUMNS[name])
    obj = ops["f"].to_numpy(dtype=object)
    rows = np.array([5, 0, 2, 1, 3, 4])
    for shared in (False, True):
        with shared_columns(ops) if shared else _nothing():
            for v in ("ok", "read", "1", "x", "absent"):
                assert equals(ops, "f", v).tolist() == (obj == v).tolist()
            writes = ("ok", "read", "1")
            assert one_of(ops, "f", writes).tolist() == np.isin(obj, writes).tolist()
            at = obj[rows]
            assert same_as_previous(ops, "f", rows).tolist() == (at[1:] == at[:-1]).tolist()


def test_a_string_column_factorizes_like_its_objects() -> None:
    values = ["publish", "read", "publish", "kill", "read"] * 3
    for dtype in ("str", object):
        codes, uniques = factorized(frame(values, dtype), "f")
        want_codes, want = pd.factorize(np.array(values, dtype=object), use_na_sentinel=False)
        assert codes.tolist() == want_codes.tolist()
        assert uniques.tolist() == list(want) and uniques.dtype == object
    with_na = frame(["a", None, "b"], "str")  # a missing string: the objects' own factorize
    codes, uniques = factorized(with_na, "f")
    want_codes, want = pd.factorize(column(with_na, "f"), use_na_sentinel=False)
    assert codes.tolist() == want_codes.tolist() and len(uniques) == len(want) == 3


@pytest.mark.parametrize(
    "values",
    [
        [3, 1, 2, 1, 3, 0, 2],  # a small range: radix on the values
        [5, 1_000_000, 5, 12, 1_000_000, 12, 7],  # wide but dense enough to rank
        [2**40, -(2**40), 0, 2**40, 7],  # sparse: numpy's own sort
        [0, 1, 1, 2, 5],  # already in order
        [-3, -1, -3, -2],
    ],
)
def test_stable_order_is_the_stable_argsort(values: list[int]) -> None:
    for dtype in (np.int64, np.uint64) if min(values) >= 0 else (np.int64,):
        a = np.array(values * 50, dtype=dtype)
        assert stable_order(a).tolist() == np.argsort(a, kind="stable").tolist()
    rng = np.random.default_rng(3)
    many = rng.integers(0, 3_000_000, 100_000)  # ~97k distinct: more than 16 bits of ranks
    assert np.array_equal(stable_order(many), np.argsort(many, kind="stable"))


def test_contains_and_union_are_the_set_operations() -> None:
    rng = np.random.default_rng(5)
    for lo, hi in ((0, 500), (-200, 200), (0, 10**12)):  # dense (a lookup table) and sparse
        b = uniq(rng.integers(lo, hi, 300))
        a = rng.integers(lo - 50, hi + 50, 1000)
        assert contains(b, a).tolist() == [x in set(b.tolist()) for x in a.tolist()]
    assert contains(np.array([4, 9]), np.array([9, 4, 5])).tolist() == [True, True, False]
    same = uniq(rng.integers(0, 100, 50))
    assert union([same, same.copy(), same.copy()]).tolist() == same.tolist()
    parts = [np.array([1, 3, 5]), np.array([2, 3]), np.array([], dtype=np.int64)]
    assert union(parts).tolist() == [1, 2, 3, 5]
    assert uniq(np.array([1, 2, 5])).tolist() == [1, 2, 5]
    assert uniq(np.array([5, 1, 5, 2])).tolist() == [1, 2, 5]


def history_frame() -> pd.DataFrame:
    """Two processes and a nemesis; process 1 is retired by an info and comes back as 11."""
    rows = [
        (0, "invoke", 0, "publish"), (1, "invoke", 1, "read"), (2, "ok", 0, "publish"),
        (3, "info", "nemesis", "kill"), (4, "info", 1, "read"), (5, "invoke", 0, "cas"),
        (6, "invoke", 11, "publish"), (7, "fail", 0, "cas"), (8, "ok", 11, "publish"),
        (9, "invoke", 0, "publish"),
    ]  # fmt: skip
    ops = pd.DataFrame(rows, columns=["index", "type", "process", "f"])
    return ops.assign(time=ops["index"] * 1_000_000 + 5, node="n1", value=ops["index"])


def test_by_process_and_latency_are_the_plain_computations() -> None:
    ops = history_frame()
    rows, procs = by_process(ops)
    client = np.flatnonzero(ops["process"].to_numpy(dtype=object) != "nemesis")
    p = ops["process"].to_numpy(dtype=object)[client].astype(np.int64)
    order = np.argsort(p, kind="stable")
    assert rows.tolist() == client[order].tolist() and procs.tolist() == p[order].tolist()
    pairs = paired_ops(ops)
    assert pairs["invoke_row"].tolist() == [0, 5, 1, 6]  # by process, then history order
    assert pairs["complete_row"].tolist() == [2, 7, 4, 8]  # row 9 is still in flight
    assert op_latency_ms(ops) == latency_ms(pairs)
    assert list(op_latency_ms(ops)) == ["cas", "publish", "read"]


@pytest.mark.parametrize("fs", [["b", None, "a"], [f"f{i}" for i in range(70)]])
def test_latency_by_f_codes_is_latency_of_the_pairs(fs: list[Any]) -> None:
    """A missing f is no group (as in groupby); more fs than GROUPS go through groupby."""
    rows = []
    for i in range(300):
        rows += [(2 * i, "invoke", i % 7), (2 * i + 1, "ok" if i % 5 else "fail", i % 7)]
    ops = pd.DataFrame(rows, columns=["index", "type", "process"])
    f = [fs[(i // 2) % len(fs)] for i in range(len(ops))]
    ops = ops.assign(f=f, time=ops["index"] ** 2, node="n1", value=0)
    want = latency_ms(paired_ops(ops))
    assert op_latency_ms(ops) == want and len(want) == len({x for x in fs if x is not None})


def test_the_memo_lives_for_its_block_and_its_frame_only() -> None:
    ops, other = history_frame(), history_frame()
    with shared_columns(ops):
        first = client_mask(ops)
        assert client_mask(ops) is first and column(ops, "type") is column(ops, "type")
        assert client_mask(other) is not client_mask(other)  # another frame: computed afresh
        for shared in (first, column(ops, "type"), by_process(ops)[0], factorized(ops, "f")[0]):
            assert not shared.flags.writeable
            with pytest.raises(ValueError, match="read-only"):
                shared[0] = shared[1]
    assert client_mask(ops) is not first and client_mask(ops).flags.writeable
    ops.loc[3, "process"] = 7  # the frame changes between two checks: the next one sees it
    with shared_columns(ops):
        assert client_mask(ops).all()
        assert schema.shared(ops, "k", lambda: 1) == 1 and schema.shared(ops, "k", lambda: 2) == 1


@pytest.mark.parametrize("name", sorted(workloads.REGISTRY))
def test_check_history_gives_each_checker_its_own_result(name: str, tmp_path) -> None:
    """Inside check_history (the memo) and called alone (none): the same result, to the byte."""
    fields = {"stream": {"name": "KV_chaos"}} if name == "kv" else {}
    sc = scenario(workload={"name": name}, faults=[{"kind": "kill", "targets": "leader"}], **fields)
    outcome, _ = run(tmp_path, sc)
    ops = load(outcome.run_dir / "history.jsonl", name).ops
    nodes = sorted(ops.loc[ops["f"] == "read", "node"].dropna().unique())
    context = {"nodes": nodes, "cut_off": False, "writes": workloads.REGISTRY[name].writes}
    names = checker_names(name, logs=False)
    together = check_history(ops, context, names)["checkers"]
    for n in names:
        alone = REGISTRY[n](ops, context)
        assert "error" not in together[n], together[n]
        assert _json(together[n]) == _json(alone), n


def _json(result: dict[str, Any]) -> str:
    return json.dumps(result, sort_keys=True, default=str)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
