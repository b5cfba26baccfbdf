"""Scenario loading: defaults, overrides, and one-line errors that name file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenario import load_scenario, parse_seconds, scenario_from_dict

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scenarios_are_valid(path: Path) -> None:
    sc = load_scenario(path)
    assert sc.name == path.stem
    assert sc.stream.replicas <= sc.nodes


def test_defaults_and_derived_values(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, "time_limit: 2m\n"))
    assert sc.name == "s"
    assert sc.nodes == 3
    assert sc.concurrency == 9
    assert sc.time_limit == 120.0
    assert sc.node_names == ["n1", "n2", "n3"]
    assert sc.server.sync_interval == "default"


def test_overrides_are_parsed_as_yaml(tmp_path: Path) -> None:
    sc = load_scenario(
        write(tmp_path, "nodes: 3\n"),
        ["nodes=5", "server.sync_interval=always", "stream.replicas=5", "workload.rate=0"],
    )
    assert sc.nodes == 5
    assert sc.concurrency == 15
    assert sc.server.sync_interval == "always"
    assert sc.stream.replicas == 5
    assert sc.workload.rate == 0


def test_resolved_yaml_round_trips(tmp_path: Path) -> None:
    sc = load_scenario(SCENARIOS / "kill.yaml", ["seed=99"])
    again = load_scenario(write(tmp_path, sc.to_yaml()))
    assert again == sc


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        ("nodes: 0\n", [], "s.yaml: nodes: Input should be greater than or equal to 1"),
        (
            "stream: {replicas: 5}\n",
            [],
            "s.yaml: (top level): stream.replicas (5) exceeds nodes (3)",
        ),
        ("stream: {storage: disk}\n", [], "s.yaml: stream.storage: Input should be 'file' or"),
        (
            "faults: [{kind: explode}]\n",
            [],
            "s.yaml: faults.0.kind: unknown kind 'explode' (one of",
        ),
        ("faults: [{targets: one}]\n", [], "s.yaml: faults.0.kind: missing (one of"),
        (
            "faults: [{kind: power-loss}]\nstorage: {lazyfs: false}\n",
            [],
            "power-loss faults need storage.lazyfs",
        ),
        ("nodez: 3\n", [], "s.yaml: nodez: unknown field"),
        ("server: {sync_interval: soon}\n", [], "s.yaml: server.sync_interval: 'soon' is not a"),
        (
            "time_limit: -3\n",
            [],
            "s.yaml: time_limit: -3s is negative; give a duration from 0 to 24h",
        ),
        ("nodes: 3\n", ["server.version"], "--set 'server.version': expected dotted.key=value"),
        ("nodes: 3\n", ["nodes.x=1"], "--set 'nodes.x=1': nodes is not a mapping"),
        ("- a\n- b\n", [], "s.yaml: a scenario must be a mapping"),
        ("nodes: [\n", [], "s.yaml: line 2 not valid YAML"),
    ],
)
def test_errors_are_one_line_naming_the_field(
    tmp_path: Path, text: str, overrides: list[str], expected: str
) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, text), overrides)
    msg = str(err.value)
    assert "\n" not in msg
    assert expected in msg, msg
    assert err.value.exit_code == 2


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(tmp_path / "nope.yaml")


def test_several_problems_are_counted() -> None:
    with pytest.raises(ScenarioError, match=r"\(\+1 more problem\)"):
        scenario_from_dict({"name": "x", "nodes": 0, "seed": "abc"}, "x.yaml")


@pytest.mark.parametrize(
    ("value", "seconds"), [(5, 5.0), ("5", 5.0), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0)]
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_seconds(value) == seconds
