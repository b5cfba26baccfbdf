"""The columnar sidecar (``harness.sidecar``): the same table as the JSONL, or not used at all.

A run writes ``history.columns`` beside its history; ``check`` and
``report`` load from it only while it matches the history byte for byte
(size and SHA-256), was written for the same ``pairs_fs`` and in this
format. Every other case — an edited history, a broken sidecar, another
workload's ``pairs_fs`` — parses the JSONL, and says so in
``history_source``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from click.testing import CliRunner
from fakerun import run, scenario

from harness import sidecar, workloads
from harness.cli import main
from harness.history import load_history
from harness.results import load

PAIRS = frozenset({"read"})
FIELDS: dict[str, dict[str, Any]] = {"kv": {"stream": {"name": "KV_chaos"}}}


@pytest.fixture(autouse=True)
def every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sidecars for histories of any size (a run writes them from 4 MiB)."""
    monkeypatch.setattr(sidecar, "MIN_BYTES", 0)


def _line(i: int, t: int, typ: str, proc: Any, f: str, value: Any, **extra: Any) -> bytes:
    rec = {"index": i, "time": t, "type": typ, "process": proc, "f": f, "value": value} | extra
    return orjson.dumps(rec) + b"\n"


def history(path: Path, publishes: int = 200, lost: tuple[int, ...] = ()) -> Path:
    """A queue history with every kind of value: ints, nemesis dicts, errors, extras, pairs."""
    lines, i, t = [], 0, 0

    def add(*args: Any, **extra: Any) -> None:
        nonlocal i, t
        lines.append(_line(i, t, *args, **extra))
        i, t = i + 1, t + 1000

    add("info", "nemesis", "kill", {"start": "kill", "nodes": ["n1"], "window": "1"})
    acked = []
    for v in range(publishes):
        proc = v % 7
        add("invoke", proc, "publish", v, node=f"n{proc % 3 + 1}")
        if v % 50 == 49:
            add("fail", proc, "publish", v, node=f"n{proc % 3 + 1}", error="no responders")
        else:
            add("ok", proc, "publish", v, node=f"n{proc % 3 + 1}", seq=len(acked) + 1)
            acked.append(v)
    add("info", "nemesis", "kill", {"stop": "kill", "window": "1"})
    kept = [v for v in acked if v not in lost]
    for k, node in enumerate(("n1", "n2", "n3")):
        add("invoke", 1000 + k, "read", None, node=node)
        add("ok", 1000 + k, "read", [[s + 1, v] for s, v in enumerate(kept)], node=node, note="x")
    path.write_bytes(b"".join(lines))
    return path


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal tables: columns, dtypes and every value (numpy pairs compared as arrays)."""
    pd.testing.assert_frame_equal(
        a.drop(columns="value"), b.drop(columns="value"), check_exact=True
    )
    for x, y in zip(a["value"].tolist(), b["value"].tolist(), strict=True):
        if isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray) and y.dtype == x.dtype and np.array_equal(x, y)
        else:
            assert type(x) is type(y) and x == y


def test_a_sidecar_gives_back_the_very_table_the_jsonl_gives(tmp_path: Path) -> None:
    h = history(tmp_path / "history.jsonl")
    parsed = load_history(h, pairs_fs=PAIRS)
    assert sidecar.write(parsed, h, PAIRS) == tmp_path / "history.columns"
    cached = sidecar.read(h, PAIRS)
    assert cached is not None and cached.source == "sidecar" and parsed.source == "jsonl"
    same(parsed.ops, cached.ops)
    assert isinstance(cached.ops["value"].iloc[-1], np.ndarray)  # the final reads: pairs
    assert (cached.warnings, cached.cut_off, cached.path) == ([], False, h)


def test_a_cut_off_history_keeps_its_warning(tmp_path: Path) -> None:
    h = history(tmp_path / "history.jsonl", publishes=20)
    h.write_bytes(h.read_bytes() + b'{"index": 99, "ti')
    parsed = load_history(h, pairs_fs=PAIRS)
    sidecar.write(parsed, h, PAIRS)
    cached = sidecar.read(h, PAIRS)
    assert cached is not None and cached.cut_off and cached.warnings == parsed.warnings
    assert len(cached.warnings) == 1


def _check(h: Path, *args: str) -> dict[str, Any]:
    res = CliRunner().invoke(main, ["check", str(h), "--json", *args])
    assert res.exit_code in (0, 1), res.output
    return json.loads(res.stdout)


def test_check_ignores_a_sidecar_that_no_longer_matches_its_history(tmp_path: Path) -> None:
    h = history(tmp_path / "history.jsonl")
    load(h, keep=True)  # what a run does: parse once, keep the sidecar
    assert sidecar.path_for(h).is_file()
    first = _check(h)
    assert first["history_source"] == "sidecar" and first["valid"] is True
    # the history edited in place, same size: n3's read holds 920 instead of 120
    data = h.read_bytes()
    tail = data.rindex(b",120]")
    h.write_bytes(data[:tail] + b",920]" + data[tail + 5 :])
    assert h.stat().st_size == len(data)
    edited = _check(h)
    assert edited["history_source"] == "jsonl"
    assert edited["valid"] is False
    assert edited["checkers"]["queue"]["lost_count"] == 0  # 120 is on the other two nodes
    assert edited["checkers"]["queue"]["unexpected_count"] == 1  # 920 was never attempted
    # a different history in its place (longer): its own lost value, not the cached verdict
    history(h, publishes=300, lost=(5,))
    assert _check(h)["checkers"]["queue"]["lost_count"] == 1


def test_the_sidecar_is_rewritten_when_a_kept_load_finds_it_stale(tmp_path: Path) -> None:
    h = history(tmp_path / "history.jsonl")
    load(h, keep=True)
    history(h, publishes=120, lost=(3, 4))
    assert load(h).source == "jsonl"
    assert load(h, keep=True).source == "jsonl"  # parsed, and kept again
    again = load(h)
    assert again.source == "sidecar"
    same(again.ops, load_history(h, pairs_fs=PAIRS).ops)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-100],  # cut short
        lambda b: b"garbage" + b[7:],  # not a columns file
        lambda b: b[:40] + bytes(len(b) - 40),  # a zeroed header
        lambda b: b"",  # empty
        lambda b: b.replace(b'"int64"', b'"object"', 1),  # a dtype that could hold code
        lambda b: b[:15] + (3).to_bytes(8, "little") + b"[1]",  # a header that is no object
    ],
    ids=["truncated", "magic", "zeroed", "empty", "object-dtype", "list-header"],
)
def test_a_broken_sidecar_is_ignored_without_a_traceback(tmp_path: Path, damage: Any) -> None:
    h = history(tmp_path / "history.jsonl")
    load(h, keep=True)
    side = sidecar.path_for(h)
    side.write_bytes(damage(side.read_bytes()))
    assert sidecar.read(h, PAIRS) is None
    result = _check(h)
    assert result["history_source"] == "jsonl" and result["valid"] is True


def test_another_workloads_pairs_or_format_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = history(tmp_path / "history.jsonl")
    sidecar.write(load_history(h, pairs_fs=PAIRS), h, PAIRS)
    assert sidecar.read(h, frozenset()) is None  # loaded without pairs: other value types
    monkeypatch.setattr(sidecar, "FORMAT", sidecar.FORMAT + 1)
    assert sidecar.read(h, PAIRS) is None


def test_small_histories_and_unencodable_values_get_no_sidecar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = history(tmp_path / "history.jsonl", publishes=10)
    monkeypatch.setattr(sidecar, "MIN_BYTES", h.stat().st_size + 1)
    assert sidecar.write(load_history(h, pairs_fs=PAIRS), h, PAIRS) is None
    monkeypatch.setattr(sidecar, "MIN_BYTES", 0)
    loaded = load_history(h, pairs_fs=PAIRS)
    loaded.ops.at[0, "value"] = {"n": 10**30}  # beyond 64 bits: no JSON can hold it exactly
    assert sidecar.write(loaded, h, PAIRS) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.jsonl"]  # no temp file


@pytest.mark.parametrize("name", sorted(workloads.REGISTRY))
def test_every_workloads_run_checks_the_same_from_its_sidecar(name: str, tmp_path: Path) -> None:
    sc = scenario(
        workload={"name": name},
        faults=[{"kind": "kill", "targets": "leader"}],
        **FIELDS.get(name, {}),
    )
    outcome, _ = run(tmp_path, sc)
    h = outcome.run_dir / "history.jsonl"
    assert sidecar.path_for(h).is_file()  # the run kept it
    cached = _check(h, "--workload", name)
    sidecar.path_for(h).unlink()
    parsed = _check(h, "--workload", name)
    assert (cached.pop("history_source"), parsed.pop("history_source")) == ("sidecar", "jsonl")
    assert cached == parsed
