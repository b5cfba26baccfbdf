"""The linearizability checker: known answers, random linearizable histories, a brute force.

Planted violations (stale read, lost update, double winner, a read of a
value never written) must be flagged with the window asserted op by op;
histories from a simulated concurrent store (``benchmarks/synth_linear.py``)
must never be; on small random histories, some with corrupted results, the
search must agree with trying every order; a spent budget is ``unknown``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import sys
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from checkers import linear
from checkers.compose import REGISTRY, check_history
from checkers.linear import check_linear, history_ops, search
from checkers.linear_models import MODELS, Model, Op
from checkers.report.findings import checker_examples
from checkers.verdict import headline
from harness.history import load_history

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
try:
    from synth_linear import simulate
finally:
    sys.path.remove(str(ROOT / "benchmarks"))


class H:
    """A history built op by op: ``op`` adds an invoke at ``start``, its completion at ``end``."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int, dict[str, Any]]] = []

    def op(
        self,
        process: int,
        f: str,
        key: Any,
        arg: Any,
        start: int,
        end: int | None,
        type: str = "ok",
        result: Any = "same",
        **extra: Any,
    ) -> None:
        inv = {"type": "invoke", "process": process, "f": f, "value": [key, arg]}
        self.events.append((start, len(self.events), inv))
        if end is not None:
            done = [key, arg if result == "same" else result]
            rec = {"type": type, "process": process, "f": f, "value": done, **extra}
            self.events.append((end, len(self.events), rec))

    def records(self) -> list[dict[str, Any]]:
        return [
            {"index": i, "time": t, **rec, "node": "n1"}
            for i, (t, _, rec) in enumerate(sorted(self.events, key=lambda e: e[:2]))
        ]

    def ops(self, tmp_path: Path) -> pd.DataFrame:
        """Through the history contract: written as JSONL, read back with ``load_history``."""
        path = tmp_path / "history.jsonl"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in self.records()))
        return load_history(path).ops


def window(r: dict[str, Any], i: int = 0) -> list[tuple[str, int, str, Any, Any]]:
    """(role, process, f, value, result) of each op in the ``i``-th window."""
    return [
        (o["role"], o["process"], o["f"], o["value"], o["result"]) for o in r["windows"][i]["ops"]
    ]


def test_stale_read(tmp_path: Path) -> None:
    h = H()
    h.op(0, "write", "x", 1, 0, 10)
    h.op(0, "write", "x", 2, 20, 30)
    h.op(1, "read", "x", None, 40, 50, result=1)
    h.op(2, "read", "y", None, 0, 5, result=None)  # another key, fine on its own
    r = check_linear(h.ops(tmp_path), {}, "register")
    assert (r["valid"], r["anomalies"]) == (False, ["non-linearizable"])
    assert (r["key_count"], r["invalid_key_count"], r["unknown_key_count"]) == (2, 1, 0)
    assert (r["op_count"], r["info_count"], r["fail_count"]) == (4, 0, 0)
    assert window(r) == [
        ("linearized", 0, "write", ["x", 2], ["x", 2]),
        ("failed", 1, "read", ["x", None], ["x", 1]),
    ]
    w = r["windows"][0]
    assert (w["key"], w["prefix_length"], w["op_count"]) == ("x", 2, 3)
    assert (w["start_state"], w["final_state"], w["tried_states"]) == ("1", "2", ["2"])
    assert [o["state_after"] for o in w["ops"]] == ["2", None]
    assert (w["failed"]["invoke_time"], w["failed"]["complete_time"]) == (40, 50)
    assert [k["valid"] for k in r["keys"]] == [False, True]
    ex = r["summary"]["examples"]
    assert [e["title"] for e in ex] == ["Key 'x': not linearizable"]
    assert [row[0] for row in ex[0]["rows"]] == ["linearized", "failed"]
    assert "could not be placed: it was tried in 2." in ex[0]["note"]
    assert json.loads(json.dumps(r))["windows"][0]["ops"][1]["result"] == ["x", 1]


def test_lost_update_in_kv(tmp_path: Path) -> None:
    h = H()
    h.op(0, "put", "x", "a", 0, 10, revision=1)
    h.op(1, "update", "x", ["b", 1], 20, 30, revision=2)
    h.op(2, "get", "x", None, 40, 50, result="a", revision=1)
    h.op(3, "create", "y", "c", 5, 15, revision=3)
    h.op(3, "create", "y", "d", 16, 18, type="fail")  # y existed: refused, dropped
    r = check_linear(h.ops(tmp_path), {}, "kv")
    assert (r["valid"], r["key_count"], r["invalid_key_count"], r["fail_count"]) == (False, 2, 1, 1)
    assert window(r) == [
        ("linearized", 1, "update", ["x", ["b", 1]], ["x", ["b", 1]]),
        ("failed", 2, "get", ["x", None], ["x", "a"]),
    ]
    w = r["windows"][0]
    assert (w["start_state"], w["tried_states"]) == ("'a' (revision 1)", ["'b' (revision 2)"])


def test_double_winner(tmp_path: Path) -> None:
    h = H()
    h.op(0, "write", "x", 0, 0, 5)
    h.op(1, "cas", "x", [0, 1], 10, 20)
    h.op(2, "cas", "x", [0, 2], 12, 22)
    r = check_linear(h.ops(tmp_path), {}, "cas-register")
    assert (r["valid"], r["invalid_key_count"]) == (False, 1)
    assert window(r) == [
        ("linearized", 0, "write", ["x", 0], ["x", 0]),
        ("linearized", 1, "cas", ["x", [0, 1]], ["x", [0, 1]]),
        ("failed", 2, "cas", ["x", [0, 2]], ["x", [0, 2]]),
    ]
    w = r["windows"][0]
    assert (w["start_state"], w["final_state"], w["tried_states"]) == ("unwritten", "1", ["0", "1"])


def test_double_winner_is_fine_when_one_cas_failed(tmp_path: Path) -> None:
    h = H()
    h.op(0, "write", "x", 0, 0, 5)
    h.op(1, "cas", "x", [0, 1], 10, 20)
    h.op(2, "cas", "x", [0, 2], 12, 22, type="fail")
    h.op(3, "read", "x", None, 30, 40, result=1)
    r = check_linear(h.ops(tmp_path), {}, "cas-register")
    assert (r["valid"], r["op_count"], r["fail_count"], r["windows"]) == (True, 3, 1, [])


def test_read_of_a_value_never_written(tmp_path: Path) -> None:
    h = H()
    h.op(0, "write", "x", 1, 0, 10)
    h.op(2, "write", "x", 3, 20, 60)
    h.op(1, "read", "x", None, 30, 50, result=7)
    h.op(1, "read", "x", None, 70, 80, result=3)
    r = check_linear(h.ops(tmp_path), {}, "register")
    assert r["valid"] is False
    assert window(r) == [
        ("linearized", 0, "write", ["x", 1], ["x", 1]),
        ("linearized", 2, "write", ["x", 3], ["x", 3]),
        ("failed", 1, "read", ["x", None], ["x", 7]),
    ]
    assert r["windows"][0]["tried_states"] == ["1", "3"]


def test_concurrent_ops_not_yet_placed_are_in_the_window(tmp_path: Path) -> None:
    h = H()
    h.op(0, "write", "x", 1, 0, 10)
    h.op(1, "read", "x", None, 20, 30, result=5)
    h.op(2, "cas", "x", [7, 5], 25, 40)  # could explain the read, if x had been 7
    h.op(3, "write", "x", 6, 35, 45)  # invoked after the read completed: not in the window
    r = check_linear(h.ops(tmp_path), {}, "cas-register")
    assert window(r) == [
        ("linearized", 0, "write", ["x", 1], ["x", 1]),
        ("concurrent", 2, "cas", ["x", [7, 5]], ["x", [7, 5]]),
        ("failed", 1, "read", ["x", None], ["x", 5]),
    ]


def test_info_ops_may_take_effect_late_or_never(tmp_path: Path) -> None:
    h = H()
    h.op(0, "write", "x", 1, 0, 10)
    h.op(1, "write", "x", 2, 20, 30, type="info", error="timeout")
    h.op(2, "read", "x", None, 40, 50, result=1)  # the info write had not happened yet…
    h.op(2, "read", "x", None, 60, 70, result=2)  # …and now it has, after its timeout
    h.op(3, "write", "x", 9, 80, None)  # never completed (a cut-off history): unknown too
    h.op(4, "write", "y", 5, 0, 10, type="info", error="timeout")  # never took effect
    h.op(4, "read", "y", None, 20, 30, result=None)
    h.op(5, "read", "y", None, 40, 50, type="info")  # an unknown read: dropped
    r = check_linear(h.ops(tmp_path), {}, "register")
    assert (r["valid"], r["op_count"], r["info_count"], r["info_dropped_count"]) == (True, 7, 3, 1)


def test_an_info_write_cannot_take_effect_before_its_invoke(tmp_path: Path) -> None:
    h = H()
    h.op(2, "read", "x", None, 0, 10, result=2)
    h.op(1, "write", "x", 2, 20, 30, type="info", error="timeout")
    r = check_linear(h.ops(tmp_path), {}, "register")
    assert r["valid"] is False
    assert window(r) == [("failed", 2, "read", ["x", None], ["x", 2])]
    assert r["windows"][0]["start_state"] == "unwritten"


def test_a_failed_write_did_not_happen(tmp_path: Path) -> None:
    h = H()
    h.op(1, "write", "x", 2, 0, 10, type="fail", error="refused")
    h.op(2, "read", "x", None, 20, 30, result=2)
    r = check_linear(h.ops(tmp_path), {}, "register")
    assert (r["valid"], r["fail_count"]) == (False, 1)
    assert window(r) == [("failed", 2, "read", ["x", None], ["x", 2])]


def test_kv_revisions_must_grow_and_match(tmp_path: Path) -> None:
    h = H()
    h.op(0, "create", "x", "a", 0, 10, revision=5)
    h.op(0, "put", "x", "b", 20, 30, revision=3)  # a lower revision after a higher one
    r = check_linear(h.ops(tmp_path), {}, "kv")
    assert window(r) == [
        ("linearized", 0, "create", ["x", "a"], ["x", "a"]),
        ("failed", 0, "put", ["x", "b"], ["x", "b"]),
    ]
    h = H()
    h.op(0, "put", "x", "a", 0, 10, type="info")  # revision unknown…
    h.op(1, "get", "x", None, 20, 30, result="a", revision=4)  # …learnt here
    h.op(1, "update", "x", ["b", 4], 40, 50, revision=6)
    h.op(1, "delete", "x", None, 60, 70, revision=7)
    h.op(1, "get", "x", None, 80, 90, result=None)
    h.op(1, "update", "x", ["c", 0], 100, 110, revision=8)  # last=0: the key has a marker
    r = check_linear(h.ops(tmp_path), {}, "kv")
    assert r["valid"] is False
    assert window(r)[-1] == ("failed", 1, "update", ["x", ["c", 0]], ["x", ["c", 0]])
    assert r["windows"][0]["tried_states"] == ["absent (revision 7)"]


def test_other_fs_are_ignored_and_counted(tmp_path: Path) -> None:
    h = H()
    h.op(0, "write", "x", 1, 0, 10)
    h.op(1, "direct-read", "x", None, 20, 30, result=0)  # checked elsewhere, not here
    r = check_linear(h.ops(tmp_path), {}, "register")
    assert (r["valid"], r["op_count"], r["ignored_count"]) == (True, 1, 1)


def test_a_value_that_is_not_key_and_argument_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    recs = [
        {"type": "invoke", "process": 0, "f": "write", "value": 3},
        {"type": "ok", "process": 0, "f": "write", "value": 3},
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs))
    with pytest.raises(ValueError, match=r"line 1: value must be \[key, argument\], not 3"):
        check_linear(load_history(path).ops, {}, "register")


def test_registered_per_model_and_composed(tmp_path: Path) -> None:
    h = H()
    h.op(0, "write", "x", 1, 0, 10)
    h.op(1, "read", "x", None, 20, 30, result=0)
    ops = h.ops(tmp_path)
    for name in ("linear-register", "linear-cas-register"):
        result = check_history(ops, {}, ["wellformed", name], headline=name)
        assert (result["valid"], result["anomalies"]) == (False, ["non-linearizable"])
        line = headline(result).line
        assert line == f"INVALID: 1 of 1 keys not linearizable ({name[7:]}; first: key 'x')"
        (title, _, rows, head), *more = checker_examples(result["checkers"][name])
        assert (title, len(rows), len(head), more) == ("Key 'x': not linearizable", 2, 9, [])
    assert REGISTRY["linear-kv"](ops, {})["op_count"] == 0  # kv knows no read/write


UNPRUNED = dataclasses.replace(MODELS["register"], prune=None)


def _exploding(n: int) -> H:
    """``n`` concurrent unknown writes, then a read no order explains: 2^n configurations.

    The budget tests search it with :data:`UNPRUNED`: the register model's own
    ``prune`` leaves these writes out (nothing observed their values).
    """
    h = H()
    for p in range(n):
        h.op(p, "write", "x", p, p, 1000, type="info")
    h.op(99, "read", "x", None, 2000, 2010, result=-1)
    return h


def test_a_spent_step_budget_is_unknown_never_valid(tmp_path: Path) -> None:
    ops = _exploding(14).ops(tmp_path)
    r = check_linear(ops, {}, UNPRUNED, max_steps=10_000)
    assert (r["valid"], r["anomalies"], r["unknown_key_count"], r["windows"]) == (
        "unknown",
        [],
        1,
        [],
    )
    assert (r["keys"][0]["steps"], r["keys"][0]["reason"]) == (10_001, "10,000 steps")
    assert r["summary"]["headline"] == (
        "linearizability undecided on 1 of 1 keys (search budget spent: 10,000 steps)"
    )
    h = H()  # a linearizable history is unknown too when the budget is too small to show it
    for t in range(20):
        h.op(0, "write", "x", t, 10 * t, 10 * t + 5)
    assert check_linear(h.ops(tmp_path), {}, "register", max_steps=10)["valid"] == "unknown"
    assert check_linear(h.ops(tmp_path), {}, "register")["valid"] is True


def test_a_spent_time_budget_is_unknown(tmp_path: Path) -> None:
    r = check_linear(_exploding(16).ops(tmp_path), {}, UNPRUNED, max_seconds=0.05)
    assert r["valid"] == "unknown"
    assert r["summary"]["headline"].endswith("(search budget spent: 0.05 s)")


def test_a_spent_memo_budget_is_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linear, "MAX_MEMO_BYTES", 100_000)
    r = check_linear(_exploding(14).ops(tmp_path), {}, UNPRUNED)
    assert (r["valid"], r["keys"][0]["reason"]) == ("unknown", "100,000 bytes of memo")


def test_exhausting_a_small_search_is_false(tmp_path: Path) -> None:
    r = check_linear(_exploding(6).ops(tmp_path), {}, UNPRUNED)
    assert (r["valid"], r["windows"][0]["prefix_length"]) == (False, 6)
    assert window(r)[-1] == ("failed", 99, "read", ["x", None], ["x", -1])


def test_unknown_writes_nothing_observed_are_left_out_of_the_search(tmp_path: Path) -> None:
    r = check_linear(_exploding(40).ops(tmp_path), {}, "register")  # 2^40 without pruning
    assert (r["valid"], r["pruned_count"], r["info_count"], r["steps"]) == (False, 40, 40, 2)
    h = H()  # an observed value keeps its writes; a cas expecting a value observes it too
    for p in range(30):
        h.op(p, "write", "x", p, 0, 1000, type="info")
    h.op(98, "cas", "x", [7, 100], 1100, 1105, type="info")
    h.op(99, "read", "x", None, 2000, 2010, result=3)
    r = check_linear(h.ops(tmp_path), {}, "cas-register")
    assert (r["valid"], r["pruned_count"], r["op_count"]) == (True, 29, 32)
    found = history_ops(h.ops(tmp_path), MODELS["cas-register"])[0]
    kept = MODELS["cas-register"].prune(found)  # type: ignore[misc]
    assert sorted(str(op.input) for op in kept) == [  # the cas's own 100 nobody saw
        "('read', None)",
        "('write', 3)",
        "('write', 7)",
    ]
    assert MODELS["kv"].prune is None  # a kv write moves the revision: never left out


@pytest.mark.parametrize("model", ["register", "cas-register", "kv"])
def test_simulated_linearizable_histories_are_never_flagged(model: str) -> None:
    flagged, ops, infos = [], 0, 0
    for seed in range(150):
        recs = simulate(model, 60, keys=2, workers=5, info=0.1, seed=seed)
        r = check_linear(pd.DataFrame(recs), {}, model)
        ops, infos = ops + r["op_count"], infos + r["info_count"]
        if r["valid"] is not True:
            flagged.append((seed, r["valid"]))
    assert flagged == []
    assert infos > 0.05 * ops  # the histories did have unknown outcomes


def test_a_simulated_kv_history_through_the_loader(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    recs = simulate("kv", 3000, keys=5, workers=8, info=0.03, seed=7)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs))
    r = check_linear(load_history(path).ops, {}, "kv")
    assert (r["valid"], r["key_count"]) == (True, 5)
    assert r["fail_count"] > 100  # refused creates and updates


def _brute(model: Model, ops: list[Op]) -> bool:
    """Is there an order of the ok ops and some info ops that respects real time and the model?"""
    required = [o for o in ops if o.type == "ok"]
    infos = [o for o in ops if o.type == "info"]
    for k in range(len(infos) + 1):
        for extra in itertools.combinations(infos, k):
            for order in itertools.permutations(required + list(extra)):
                if any(
                    b.complete_pos is not None and b.complete_pos < a.invoke_pos
                    for i, a in enumerate(order)
                    for b in order[i + 1 :]
                ):
                    continue
                state, ok = model.init(), True
                for o in order:
                    ok, state = model.step(state, o.input, o.output)
                    if not ok:
                        break
                if ok:
                    return True
    return False


def _corrupt(recs: list[dict[str, Any]], rng: random.Random) -> None:
    """Change one ok read's result to another value (written or not)."""
    reads = [r for r in recs if r["type"] == "ok" and r["f"] in ("read", "get")]
    if reads:
        r = rng.choice(reads)
        r["value"] = [r["value"][0], rng.choice([None, 1, 2, 3, 4, 5, 6, 99])]
        if "revision" in r and rng.random() < 0.5:
            r["revision"] += rng.choice([-1, 1])


@pytest.mark.parametrize("model", ["register", "cas-register", "kv"])
def test_the_search_agrees_with_trying_every_order(model: str) -> None:
    rng = random.Random(11)
    verdicts, pruned = [], 0
    for seed in range(120):
        recs = simulate(model, 6, keys=1, workers=3, info=0.2, seed=seed)
        if seed % 3:
            _corrupt(recs, rng)
        ops, _ = history_ops(pd.DataFrame(recs), MODELS[model])
        got = search(MODELS[model], ops).valid if ops else True
        want = _brute(MODELS[model], ops)
        assert got == want, (seed, recs)
        prune = MODELS[model].prune
        if prune and ops:  # leaving unobserved unknown writes out changes no verdict
            pruned += len(ops) - len(kept := prune(ops))
            assert (search(MODELS[model], kept).valid if kept else True) == want, (seed, recs)
        verdicts.append(got)
    assert 10 < verdicts.count(False) < 110  # both answers were exercised
    assert pruned > 0 if MODELS[model].prune else pruned == 0
