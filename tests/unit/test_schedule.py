"""Fault plans and targets: deterministic for a seed, inside the time limit."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import backends, faults
from harness.cli import main
from harness.errors import ScenarioError, Unsupported
from harness.faults.schedule import describe, plan
from harness.faults.targets import resolve
from harness.net import netem, netns
from harness.scenario import scenario_from_dict

NODES5 = ["n1", "n2", "n3", "n4", "n5"]
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


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


# -- stable periods, composed faults, new fault kinds, --plan, netem preflight ---------


def mixed(**kw: object):
    base = {
        "name": "mixed",
        "nodes": 5,
        "time_limit": 120,
        "faults": [
            {"kind": "partition", "shape": "ring"},
            {"kind": "step-down", "leader": "meta", "duration": 2},
            {"kind": "corrupt", "mode": "truncate", "file_types": ["idx", "snap"]},
            {
                "kind": "compose",
                "gap": 1,
                "duration": 8,
                "steps": [{"kind": "partition", "shape": "halves"}, {"kind": "kill"}],
            },
        ],
        "schedule": {
            "quiet": 5,
            "interval": 10,
            "duration": 4,
            "stable_every": 2,
            "stable_for": 20,
        },
    }
    base.update(kw)
    return scenario_from_dict(base, "t")


def test_same_seed_same_plan_with_compose_and_stable_periods() -> None:
    a, b = plan(mixed(seed=7)), plan(mixed(seed=7))
    assert a == b
    assert describe(a) == describe(b)
    kinds = {tuple(w.fault.kind for w in plan(mixed(seed=s))) for s in range(10)}
    assert len(kinds) > 1
    assert any("compose" in k for k in kinds)


def test_stable_period_after_every_n_windows() -> None:
    windows = plan(mixed(faults=[{"kind": "kill"}], time_limit=100))
    # 5-9, 15-19, then 20 s stable from 19: 39-43, 49-53, stable: 73-77, 83-87, stable: none fits
    assert [(w.start, w.stop) for w in windows] == [
        (5, 9), (15, 19), (39, 43), (49, 53), (73, 77), (83, 87),
    ]  # fmt: skip
    assert [w.stable_before for w in windows] == [0, 0, 20, 0, 20, 0]
    lines = describe(windows)
    assert lines[2] == "   19.0s –    39.0s  stable (no faults)"
    assert len(lines) == len(windows) + 2


def test_compose_window_uses_its_own_duration_and_is_described_step_by_step() -> None:
    sc = mixed(faults=[mixed().faults[3]], seed=1)
    windows = plan(sc)
    assert windows[0].stop - windows[0].start == 8
    assert describe(windows)[0] == (
        "    5.0s –    13.0s  compose(partition shape=halves -> kill targets=one, gap=1s)"
    )


def test_ring_partition_needs_four_nodes() -> None:
    with pytest.raises(ScenarioError, match=r"faults\.0: a ring partition needs at least 4 nodes"):
        plan(mixed(nodes=3))


def test_ring_has_no_one_way_variant() -> None:
    with pytest.raises(ScenarioError, match="ring has no one-way variant"):
        scenario_from_dict(
            {"name": "x", "faults": [{"kind": "partition", "shape": "ring", "one_way": True}]}, "x"
        )


def test_compose_may_not_nest() -> None:
    where = r"faults\.0\.compose\.steps\.1\.kind: unknown kind"
    with pytest.raises(ScenarioError, match=where):
        steps = [{"kind": "kill"}, {"kind": "compose", "steps": []}]
        scenario_from_dict({"name": "x", "faults": [{"kind": "compose", "steps": steps}]}, "x")


def test_power_loss_inside_compose_puts_nodes_on_lazyfs() -> None:
    steps = [{"kind": "partition"}, {"kind": "power-loss", "targets": "all"}]
    sc = scenario_from_dict({"name": "x", "faults": [{"kind": "compose", "steps": steps}]}, "x")
    assert sc.fault_kinds == {"compose", "partition", "power-loss"}
    assert sc.uses_lazyfs


def test_plan_cli_prints_the_timeline(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        main, ["run", str(SCENARIOS / "part-kill.yaml"), "--plan", "--set", "time_limit=40"]
    )
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [
        "part-kill: 2 faults in 40s (seed 8); seconds from the main phase start",
        "    5.0s –    13.0s  compose(partition shape=stream-leader -> kill targets=one, gap=2s)",
        "   19.0s –    27.0s  compose(pause targets=one -> kill targets=one, gap=1s)",
    ]


def test_plan_cli_shows_stable_periods_and_shapes() -> None:
    res = CliRunner().invoke(main, ["run", str(SCENARIOS / "partition.yaml"), "--plan"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == "partition: 6 faults in 90s (seed 1); seconds from the main phase start"
    assert "   36.0s –    46.0s  stable (no faults)" in lines
    shapes = {line.split("shape=")[1].split()[0] for line in lines if "shape=" in line}
    assert shapes == {"random-halves", "meta-leader", "halves", "ring", "bridge"}


def test_netem_scenario_exits_3_before_anything_exists(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(netem, "probe", lambda: "tc: Specified qdisc kind is unknown; kernel k")
    monkeypatch.setattr(netns, "require_root", lambda: None)
    res = CliRunner().invoke(
        main, ["run", str(SCENARIOS / "delay.yaml"), "--results-dir", str(tmp_path / "r")]
    )
    assert res.exit_code == 3
    assert res.stderr == (
        "nats-chaos: the local backend cannot do faults delay, loss: they need netem, "
        "which this kernel lacks (tc: Specified qdisc kind is unknown; kernel k)\n"
    )
    assert res.stdout == ""
    assert not (tmp_path / "r").exists()


def test_fault_preflight_finds_composed_steps_and_asks_only_for_what_is_needed() -> None:
    asked: list[str] = []

    def lacks(ability: str) -> str | None:
        asked.append(ability)
        return "which this kernel lacks (no netem)" if ability == "netem" else None

    composed = scenario(faults=[{"kind": "compose", "steps": [{"kind": "kill"}, {"kind": "loss"}]}])
    with pytest.raises(Unsupported, match=r"^the local backend cannot do fault loss: it needs "
                       r"netem, which this kernel lacks \(no netem\)$"):  # fmt: skip
        faults.preflight(composed, lacks)
    asked.clear()
    faults.preflight(scenario(), lacks)  # kill/pause: never asks about netem
    assert asked == ["process"]
    faults.preflight(composed, lambda ability: None)  # everything offered: the run may go ahead


def test_a_fault_label_needs_no_targets_and_every_kind_has_one() -> None:
    sc = scenario(
        faults=[
            {"kind": "step-down", "leader": "meta"},
            {"kind": "power-loss", "targets": "all", "coordinated": True},
            {"kind": "partition", "shape": "ring", "one_way": False},
            {"kind": "loss", "percent": 5},
        ],
        nodes=5,
    )
    assert [faults.label(f) for f in sc.faults] == [
        "step-down leader=meta",
        "power-loss targets=all coordinated",
        "partition shape=ring",
        "loss 5% targets=one",
    ]
    assert set(faults.REGISTRY) == {
        "kill", "pause", "power-loss", "partition", "step-down", "corrupt", "delay", "loss",
        "compose", "program",
    }  # fmt: skip


def test_needs_and_lacks_on_this_host(monkeypatch) -> None:
    sc = scenario(
        faults=[{"kind": "compose", "steps": [{"kind": "power-loss"}, {"kind": "delay"}]}]
    )
    assert faults.needs(sc.faults) == {"process", "power", "files", "netem"}
    assert sc.uses_lazyfs
    monkeypatch.setattr(netem, "probe", lambda: None)
    assert backends.lacks("docker", "netem") is None
    monkeypatch.setattr(netem, "probe", lambda: "tc: nope")
    assert backends.lacks("local", "netem") == "which this kernel lacks (tc: nope)"
    assert backends.lacks("local", "files") is None


def test_cycle_order_takes_faults_in_listed_order() -> None:
    sc = scenario(seed=5, schedule={"quiet": 5, "interval": 10, "duration": 2, "order": "cycle"})
    assert [w.fault.kind for w in plan(sc)] == ["kill", "pause"] * 3


def test_follower_is_never_the_leader() -> None:
    for seed in range(20):
        got = resolve("follower", NODES5, random.Random(seed), lambda: "n3")
        assert len(got) == 1 and got != ["n3"]
    assert resolve("follower", ["n1"], random.Random(0), lambda: "n1") == ["n1"]
