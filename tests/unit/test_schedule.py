"""Fault plans and targets: deterministic for a seed, inside the time limit."""

from __future__ import annotations

import random

import pytest

from harness.faults.schedule import describe, plan
from harness.faults.targets import resolve
from harness.scenario import scenario_from_dict

NODES5 = ["n1", "n2", "n3", "n4", "n5"]


def scenario(**kw: object):
    base = {
        "name": "t",
        "time_limit": 60,
        "faults": [{"kind": "kill"}, {"kind": "pause", "duration": 2}],
        "schedule": {"quiet": 5, "interval": 10, "duration": 4},
    }
    base.update(kw)
    return scenario_from_dict(base, "t")


def test_same_seed_same_plan_and_other_seed_differs() -> None:
    a, b = plan(scenario(seed=1)), plan(scenario(seed=1))
    assert a == b
    kinds = {tuple(w.fault.kind for w in plan(scenario(seed=s))) for s in range(10)}
    assert len(kinds) > 1


def test_windows_respect_quiet_interval_and_limit() -> None:
    windows = plan(scenario(seed=3))
    assert windows[0].start == 5
    starts = [w.start for w in windows]
    assert starts == [5, 15, 25, 35, 45, 55]  # 55 + 4 = 59 still heals before 60
    for w in windows:
        assert w.stop == w.start + (2 if w.fault.kind == "pause" else 4)
        assert w.stop < 60
    assert len(describe(windows)) == len(windows)


def test_a_window_that_would_not_heal_in_time_is_left_out() -> None:
    windows = plan(scenario(faults=[{"kind": "kill", "duration": 6}], time_limit=61))
    assert [w.start for w in windows] == [5, 15, 25, 35, 45]  # 55 + 6 = 61 is not < 61


def test_long_faults_push_the_next_start() -> None:
    windows = plan(scenario(faults=[{"kind": "kill", "duration": 12}], time_limit=50))
    assert [(w.start, w.stop) for w in windows] == [(5, 17), (17.5, 29.5), (30.0, 42.0)]


def test_no_faults_no_plan() -> None:
    assert plan(scenario(faults=[])) == []


@pytest.mark.parametrize(
    ("spec", "count"), [("one", 1), ("minority", 2), ("majority", 3), ("all", 5)]
)
def test_target_sizes(spec: str, count: int) -> None:
    got = resolve(spec, NODES5, random.Random(1), lambda: None)
    assert len(got) == count
    assert set(got) <= set(NODES5)
    assert got == resolve(spec, NODES5, random.Random(1), lambda: None)


def test_leader_target_uses_the_reported_leader_or_one_node() -> None:
    assert resolve("leader", NODES5, random.Random(1), lambda: "n4") == ["n4"]
    assert len(resolve("leader", NODES5, random.Random(1), lambda: None)) == 1
    assert resolve("minority", ["n1", "n2", "n3"], random.Random(0), lambda: None).__len__() == 1
