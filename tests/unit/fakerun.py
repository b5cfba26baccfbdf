"""Helpers for unit tests that run the real runner on the fake cluster."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.backends import fake
from harness.runner import RunOptions, RunOutcome, execute
from harness.scenario import scenario_from_dict

FAST = {
    "time_limit": 1.5,
    "workload": {"rate": 300},
    "schedule": {"quiet": 0.2, "interval": 0.5, "duration": 0.3},
    "recovery": {"timeout": 2, "read_timeout": 2, "grace": 1},
}


def scenario(**fields: Any) -> Any:
    """A fast scenario for the fake cluster; ``fields`` override (shallowly merged) ``FAST``."""
    raw: dict[str, Any] = {"name": "fake", **{k: v for k, v in FAST.items()}}
    for k, v in fields.items():
        raw[k] = {**raw[k], **v} if isinstance(v, dict) and isinstance(raw.get(k), dict) else v
    return scenario_from_dict(raw, "test")


def run(tmp: Path, sc: Any, **knobs: Any) -> tuple[RunOutcome, list[fake.FakeCluster]]:
    """Execute ``sc`` on a fake cluster; the outcome and the clusters the run made."""
    backend, made = fake.backend(**knobs)
    opts = RunOptions(results_dir=tmp / "results", echo=lambda _m: None, backend=backend,
                      work_root=tmp / "work")  # fmt: skip
    return execute(sc, opts), made


def history(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def assert_well_formed(ops: list[dict[str, Any]]) -> None:
    """Each client invoke has exactly one completion with the same process and f; no reuse."""
    open_: dict[int, str] = {}
    retired: set[int] = set()
    counts: dict[str, int] = defaultdict(int)
    for i, op in enumerate(ops):
        assert op["index"] == i
        if op["process"] == "nemesis":
            assert op["type"] == "info"
            continue
        p = op["process"]
        assert p not in retired, f"process {p} reused after info: {op}"
        if op["type"] == "invoke":
            assert p not in open_, f"process {p} has two ops in flight: {op}"
            open_[p] = op["f"]
        else:
            assert open_.pop(p) == op["f"]
            counts[op["type"]] += 1
            if op["type"] == "info":
                retired.add(p)
    assert not open_, f"invokes without completion: {open_}"
