"""Overrides merge mappings, durations are Go durations, unknown names get "did you mean"."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import suite as st
from harness.errors import BadInput, ScenarioError
from harness.scenario import apply_overrides, load_scenario
from harness.spec import parse_seconds

BASE = """\
name: base
time_limit: 30
server:
  version: "2.12.1"
  sync_interval: 2m
  config: {max_payload: 2097152, jetstream: {max_memory_store: 1073741824}}
expect: {valid: true}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_set_of_a_mapping_merges_into_the_scenarios_mapping(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path / "s.yaml", BASE), ["server={sync_interval: always}"])
    assert sc.server.sync_interval == "always"
    assert sc.server.version == "2.12.1"
    assert sc.server.config == {
        "max_payload": 2097152,
        "jetstream": {"max_memory_store": 1073741824},
    }


def test_merging_goes_down_every_level_and_lists_replace() -> None:
    raw = {"server": {"config": {"jetstream": {"a": 1, "b": 2}}}, "faults": [{"kind": "kill"}]}
    out = apply_overrides(raw, ["server={config: {jetstream: {b: 3}}}", "faults=[{kind: pause}]"])
    assert out == {
        "server": {"config": {"jetstream": {"a": 1, "b": 3}}},
        "faults": [{"kind": "pause"}],
    }
    assert raw["server"]["config"]["jetstream"] == {"a": 1, "b": 2}  # the input is not changed


def test_a_new_expect_replaces_the_old_one(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path / "s.yaml", BASE), ["expect={anomalies: [lost]}"])
    assert sc.expect is not None
    assert sc.expect.valid is None
    assert sc.expect.anomalies == ("lost",)


def test_a_suite_set_keeps_what_it_does_not_name(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", BASE)
    suite = write(
        tmp_path / "suite.yaml",
        "scenarios:\n  - file: base.yaml\n    set: {server: {sync_interval: always}}\n",
    )
    _, cases = st.load_cases([str(suite)], [])
    server = cases[0].scenario.server
    assert (server.version, server.sync_interval) == ("2.12.1", "always")
    assert server.config["jetstream"] == {"max_memory_store": 1073741824}
    assert cases[0].for_repeat(1).server.version == "2.12.1"  # repeats load the same way


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1m30s", 90.0),
        ("250ms", 0.25),
        ("1h", 3600.0),
        ("1.5h", 5400.0),
        ("2h45m30.5s", 9930.5),
        ("1m 30s", 90.0),
        ("300us", 0.0003),
        ("1ms500us", 0.0015),
        ("90", 90.0),
        (".5s", 0.5),
        (12, 12.0),
    ],
)
def test_go_durations_are_seconds(text: str | int, seconds: float) -> None:
    assert parse_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["1m30", "1x", "m", "-1s", "1e3s", "", "1h-30m"])
def test_what_is_no_go_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_seconds(text)


def test_go_durations_are_accepted_wherever_a_duration_is(tmp_path: Path) -> None:
    text = (
        "time_limit: 1m30s\nschedule: {quiet: 250ms, interval: 1m, duration: 1m10s}\n"
        "recovery: {timeout: 1h, grace: 1m30s}\n"
        "faults: [{kind: kill, duration: 2m5s}]\n"
        "workload: {timeout: 1500ms}\n"
    )
    sc = load_scenario(write(tmp_path / "s.yaml", text), ["server.sync_interval=1m30s"])
    assert sc.time_limit == 90.0
    assert (sc.schedule.quiet, sc.schedule.interval, sc.schedule.duration) == (0.25, 60.0, 70.0)
    assert (sc.recovery.timeout, sc.recovery.grace) == (3600.0, 90.0)
    assert sc.faults[0].duration == 125.0
    assert sc.workload.timeout == 1.5
    assert sc.server.sync_interval == "1m30s"  # passed to nats-server as written


def test_suite_time_limit_takes_a_duration(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", BASE)
    _, cases = st.load_cases([str(tmp_path / "base.yaml")], ["time_limit=1m30s"])
    assert cases[0].scenario.time_limit == 90.0


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        ("servr: {}\n", [], "s.yaml: servr: unknown field; did you mean 'server'?"),
        (
            "server: {sync_intervl: always}\n",
            [],
            "s.yaml: server.sync_intervl: unknown field; did you mean 'sync_interval'?",
        ),
        (
            "faults: [{kind: kill, targts: one}]\n",
            [],
            "s.yaml: faults.0.kill.targts: unknown field; did you mean 'targets'?",
        ),
        (
            "faults: [{kind: program, steps: [{name: a, fault: {kind: kill, duratin: 1}},"
            " {name: b, stop: all}]}]\n",
            [],
            "faults.0.program.steps.0.fault.kill.duratin: unknown field; did you mean 'duration'?",
        ),
        (
            "workload: {rat: 3}\n",
            [],
            "s.yaml: workload.queue.rat: unknown field; did you mean 'rate'?",
        ),
        (
            "nodes: 3\n",
            ["recovery.timout=3"],
            "recovery.timout: unknown field; did you mean 'timeout'?",
        ),
        ("zzzzzz: 1\n", [], "s.yaml: zzzzzz: unknown field"),
    ],
)
def test_unknown_fields_name_the_nearest_valid_one(
    tmp_path: Path, text: str, overrides: list[str], expected: str
) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path / "s.yaml", text), overrides)
    msg = str(err.value)
    assert expected in msg, msg
    if "zzzz" in text:
        assert "did you mean" not in msg


def test_an_unknown_suite_entry_field_names_the_nearest(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", BASE)
    suite = write(tmp_path / "suite.yaml", "scenarios:\n  - file: base.yaml\n    sett: {}\n")
    with pytest.raises(BadInput, match=r"scenarios\.0\.sett: unknown field; did you mean 'set'\?$"):
        st.load_cases([str(suite)], [])
