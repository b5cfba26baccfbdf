"""Fault programs, relational and fixed targets, and fault packages.

Planned with no cluster (the windows, their times and tie order), then played
by the nemesis against the in-memory fake: the history must show exactly the
planned grudges and kills, on the nodes the relational sets name.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checkers.report.timeline import fault_windows
from harness.backends.fake import FakeCluster
from harness.cli import main
from harness.errors import ScenarioError
from harness.faults.nemesis import Nemesis
from harness.faults.schedule import describe, plan
from harness.faults.targets import OtherThan, SameAs, resolve
from harness.history import HistoryWriter, load_history
from harness.scenario import scenario_from_dict

N5 = ["n1", "n2", "n3", "n4", "n5"]
PART_KILL = {  # Jepsen's part-kill choreography, on 5 nodes
    "kind": "program",
    "steps": [
        {"name": "cut-a", "fault": {"kind": "partition", "targets": ["n1", "n2"]}, "wait": 3},
        {"name": "crash", "fault": {"kind": "kill", "targets": {"other_than": "cut-a",
                                                                  "count": 1}}, "wait": 1},
        {"stop": ["crash", "cut-a"], "wait": 1},
        {"name": "cut-b", "fault": {"kind": "partition", "targets": {"same_as": "crash"}},
         "wait": 2},
        {"stop": "all", "wait": 0.5},
    ],
}  # fmt: skip


def scenario(**kw: Any) -> Any:
    base: dict[str, Any] = {
        "name": "t", "nodes": 5, "time_limit": 20, "seed": 3,
        "faults": [PART_KILL], "schedule": {"quiet": 1, "interval": 30},
    }  # fmt: skip
    base.update(kw)
    return scenario_from_dict(base, "t")


def test_targets_by_name_and_relative_to_a_step() -> None:
    rng = random.Random(1)
    assert resolve(("n3", "n1"), N5, rng, lambda: None) == ["n1", "n3"]
    chosen = {"a": ["n1", "n2"]}
    assert resolve(SameAs(same_as="a"), N5, rng, lambda: None, chosen) == ["n1", "n2"]
    assert resolve(OtherThan(other_than="a"), N5, rng, lambda: None, chosen) == ["n3", "n4", "n5"]
    two = resolve(OtherThan(other_than="a", count=2), N5, rng, lambda: None, chosen)
    assert len(two) == 2 and set(two) <= {"n3", "n4", "n5"}
    with pytest.raises(ValueError, match="step 'b' has not hit any nodes yet"):
        resolve(SameAs(same_as="b"), N5, rng, lambda: None, chosen)


def test_a_program_becomes_one_window_per_fault_with_its_times_and_order() -> None:
    windows = plan(scenario())
    rows = [(w.id, w.fault.kind, w.start, w.stop) for w in windows]
    assert rows == [
        ("0.cut-a", "partition", 1.0, 5.0),
        ("0.crash", "kill", 4.0, 5.0),
        ("0.cut-b", "partition", 6.0, 8.0),
    ]
    crash, cut_a = windows[1], windows[0]
    assert crash.order[1] < cut_a.order[1]  # "stop: [crash, cut-a]": the kill ends first
    assert describe(windows)[1] == "    4.0s –     5.0s  crash: kill targets=other-than:cut-a×1"
    assert len(plan(scenario(time_limit=8.4))) == 0  # the program would not end in time


@pytest.mark.parametrize(
    ("steps", "why"),
    [
        ([{"stop": ["x"], "wait": 1}], "steps.0: stop 'x': no earlier step"),
        ([{"name": "a", "fault": {"kind": "kill"}, "wait": 1}, {"stop": ["a"]}, {"stop": ["a"]}],
         "steps.2: stop 'a': already stopped"),
        ([{"name": "a", "fault": {"kind": "kill"}}, {"name": "a", "fault": {"kind": "pause"},
                                                      "wait": 1}],
         "steps.1: the name 'a' is taken"),
        ([{"fault": {"kind": "kill", "targets": {"same_as": "later"}}, "wait": 1},
          {"name": "later", "fault": {"kind": "pause"}}],
         "steps.0: targets refer to 'later', no earlier step"),
        ([{"name": "a", "fault": {"kind": "kill"}}], "a program needs some wait"),
        ([{"fault": {"kind": "kill"}, "stop": "all", "wait": 1}], "either fault"),
        ([{"name": "a", "stop": "all", "wait": 1}], "only a step that starts a fault"),
        ([{"fault": {"kind": "program", "steps": []}, "wait": 1}], "kind"),
    ],
)  # fmt: skip
def test_a_program_that_makes_no_sense_is_refused(steps: list[Any], why: str) -> None:
    with pytest.raises(ScenarioError, match=why.replace("(", r"\(")):
        scenario(faults=[{"kind": "program", "steps": steps}])


def test_unknown_node_names_are_refused_with_their_path() -> None:
    with pytest.raises(ScenarioError, match=r"faults\.0\.steps\.0\.fault\.targets: no node n7 "):
        plan(scenario(faults=[{"kind": "program", "steps": [
            {"fault": {"kind": "kill", "targets": ["n1", "n7"]}, "wait": 1}]}]))  # fmt: skip


def test_packages_overlap_and_are_planned_on_their_own_schedules() -> None:
    sc = scenario(
        faults=[{"kind": "partition", "shape": "halves"}],
        schedule={"quiet": 2, "interval": 6, "duration": 4},
        packages=[{"faults": [{"kind": "kill", "targets": "one"}],
                   "schedule": {"quiet": 3, "interval": 6, "duration": 1}}],
    )  # fmt: skip
    windows = plan(sc)
    assert [(w.id, w.start, w.stop) for w in windows] == [
        ("0", 2.0, 6.0), ("p1.0", 3.0, 4.0), ("1", 8.0, 12.0), ("p1.1", 9.0, 10.0),
        ("2", 14.0, 18.0), ("p1.2", 15.0, 16.0),
    ]  # fmt: skip
    assert sc.fault_kinds == {"partition", "kill"}
    assert describe(windows)[1] == "    3.0s –     4.0s  package 1: kill targets=one"


def play(tmp_path: Path, sc: Any) -> tuple[FakeCluster, list[dict[str, Any]], Any]:
    cluster = FakeCluster(sc.node_names, tmp_path)
    cluster.start()
    writer = HistoryWriter(tmp_path / "h.jsonl")
    nemesis = Nemesis(cluster, writer, "chaos")
    windows = plan(sc)
    shrunk = [
        w.__class__(**{**w.__dict__, "start": w.start / 20, "stop": w.stop / 20}) for w in windows
    ]  # fmt: skip  -- the same plan, 20x faster
    asyncio.run(nemesis.run(shrunk, time.monotonic()))
    writer.close()
    ops = load_history(tmp_path / "h.jsonl").ops
    return cluster, [dict(v) for v in ops["value"]], ops


def test_the_nemesis_plays_the_program_on_the_nodes_it_names(tmp_path: Path) -> None:
    cluster, values, ops = play(tmp_path, scenario())
    said = [(v.get("start") or "stop " + v["stop"], v["window"]) for v in values]
    assert said == [
        ("partition", "0.cut-a"), ("kill", "0.crash"), ("stop kill", "0.crash"),
        ("stop partition", "0.cut-a"), ("partition", "0.cut-b"), ("stop partition", "0.cut-b"),
    ]  # fmt: skip
    cut_a, crash, _, _, cut_b, _ = values
    assert cut_a["nodes"] == ["n1", "n2"]
    assert cut_a["grudge"]["n1"] == ["n3", "n4", "n5"] and cut_a["grudge"]["n3"] == ["n1", "n2"]
    [killed] = crash["nodes"]
    assert killed in {"n3", "n4", "n5"}  # other than cut-a's
    assert cut_b["nodes"] == [killed]  # same as crash's
    assert sorted(cut_b["grudge"]) == N5 and cut_b["grudge"][killed] == sorted(set(N5) - {killed})
    kills = [c for c in cluster.calls if c[0] in ("kill", "start_node")]
    assert kills == [("kill", killed), ("start_node", killed)]
    windows = fault_windows(ops)  # the report pairs each stop with its own start
    assert [(w.kind, w.nodes) for w in windows] == [
        ("partition", ("n1", "n2")), ("kill", (killed,)), ("partition", (killed,)),
    ]  # fmt: skip


def test_fixed_targets_hit_the_first_windows_nodes_in_every_window(tmp_path: Path) -> None:
    sc = scenario(
        faults=[{"kind": "pause", "targets": "minority", "fixed": True}],
        schedule={"quiet": 1, "interval": 3, "duration": 1},
        time_limit=14,
    )
    _, values, _ = play(tmp_path, sc)
    hit = {tuple(v["nodes"]) for v in values if "start" in v}
    assert len([v for v in values if "start" in v]) == 4 and len(hit) == 1
    free = scenario(faults=[{"kind": "pause", "targets": "minority"}],
                    schedule={"quiet": 1, "interval": 3, "duration": 1}, time_limit=14)  # fmt: skip
    _, values, _ = play(tmp_path / "free", free)
    assert len({tuple(v["nodes"]) for v in values if "start" in v}) > 1  # drawn anew each time


def test_plan_prints_programs_and_packages(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    import yaml

    path.write_text(yaml.safe_dump(scenario().model_dump(mode="json")))
    res = CliRunner().invoke(main, ["run", str(path), "--plan"])
    assert res.exit_code == 0, res.output
    assert "cut-b: partition targets=same-as:crash" in res.output


def test_two_network_faults_at_once_are_refused() -> None:
    sc = scenario(
        faults=[{"kind": "partition", "shape": "halves"}],
        schedule={"quiet": 2, "interval": 6, "duration": 4},
        packages=[{"faults": [{"kind": "partition", "shape": "one"}],
                   "schedule": {"quiet": 3, "interval": 6, "duration": 1}}],
    )  # fmt: skip
    with pytest.raises(ScenarioError, match=r"windows 0 \(2–6s\) and p1.0 \(3–4s\) both cut"):
        plan(sc)
