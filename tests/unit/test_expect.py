# ruff: noqa: E501  (the case table reads best one case per line)
"""``expect:``: the scenario field, the matching rules and the exit codes they give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checkers.queue import summarize
from harness.cli import main
from harness.errors import ScenarioError
from harness.expect import describe, match
from harness.results import exit_code_for
from harness.scenario import ExpectSpec, scenario_from_dict


def res(valid: Any, *anomalies: str) -> dict[str, Any]:
    return {"valid": valid, "anomalies": list(anomalies)}


VALID = ExpectSpec(valid=True)
LOST = ExpectSpec(anomalies=("lost",))
LOST_DIV = ExpectSpec(anomalies=("lost", "divergence"))
INVALID = ExpectSpec(valid=False)
EMPTY = ExpectSpec(anomalies=())


@pytest.mark.parametrize(
    ("expect", "result", "matched", "why"),
    [
        # no expectation: valid or nothing (the behaviour before expect:)
        (None, res(True), True, "valid, as expected"),
        (None, res(False, "lost"), False, "expected valid, got invalid (lost)"),
        (None, res("unknown"), False, "expected valid, but the verdict is unknown"),
        # valid: true and anomalies: [] mean the same
        (VALID, res(True), True, "valid, as expected"),
        (EMPTY, res(True), True, "valid, as expected"),
        (VALID, res(False, "lost", "panic"), False, "expected valid, got invalid (lost, panic)"),
        (VALID, res(False), False, "expected valid, got invalid (no anomaly named)"),
        (VALID, res(True, "lost"), False, "expected valid, got invalid (lost)"),
        (EMPTY, res(False, "lost"), False, "expected valid, got invalid (lost)"),
        # declared anomalies: all of them and no others
        (LOST, res(False, "lost"), True, "anomalies lost, as expected"),
        (LOST_DIV, res(False, "divergence", "lost"), True, "anomalies divergence, lost, as expected"),
        (LOST, res(True), False, "expected anomalies lost, but the run was valid (fixed?)"),
        (LOST, res(False, "lost", "duplicated"), False, "expected anomalies lost: unexpected duplicated"),
        (LOST_DIV, res(False, "lost"), False, "expected anomalies lost, divergence: divergence did not appear"),
        (LOST, res(False, "panic"), False, "expected anomalies lost: unexpected panic; lost did not appear"),
        (LOST, res(False), False, "expected anomalies lost: lost did not appear"),
        # valid: false alone: invalid with any anomalies
        (INVALID, res(False, "unexpected"), True, "invalid (unexpected), as expected"),
        (INVALID, res(True), False, "expected invalid (any anomalies), but the run was valid (fixed?)"),
        # unknown never matches
        (LOST, res("unknown", "lost"), False, "expected anomalies lost, but the verdict is unknown"),
        (VALID, res("unknown"), False, "expected valid, but the verdict is unknown"),
        (INVALID, res(None), False, "expected invalid (any anomalies), but the verdict is unknown"),
    ],
)  # fmt: skip
def test_match(expect: ExpectSpec | None, result: dict[str, Any], matched: bool, why: str) -> None:
    m = match(result, expect)
    assert (m.matched, m.why) == (matched, why)
    assert exit_code_for(result, expect) == (0 if matched else 1)


def test_exit_code_without_expect_is_unchanged() -> None:
    assert exit_code_for(res(True)) == 0
    assert exit_code_for(res(False, "lost")) == 1
    assert exit_code_for(res("unknown")) == 1


def test_describe() -> None:
    assert describe(None) == "valid"
    assert describe(VALID) == "valid"
    assert describe(EMPTY) == "valid"
    assert describe(LOST_DIV) == "anomalies lost, divergence"
    assert describe(INVALID) == "invalid (any anomalies)"


def test_scenario_field_parses() -> None:
    sc = scenario_from_dict({"name": "x", "expect": {"anomalies": ["lost"]}}, "x.yaml")
    assert sc.expect == LOST
    assert scenario_from_dict({"name": "x"}, "x.yaml").expect is None
    over = scenario_from_dict({"name": "x"}, "x.yaml", ["expect={valid: true}"])
    assert over.expect == VALID
    assert "expect:" in over.to_yaml()


def test_the_named_replica_and_log_anomalies_can_be_expected() -> None:
    names = ["lost", "stream-lost", "orphaned", "stalled", "replica-groups", "holes"]
    sc = scenario_from_dict({"name": "x", "expect": {"anomalies": names}}, "x.yaml")
    assert sc.expect == ExpectSpec(anomalies=tuple(names))
    result = res(False, "stalled")
    stalled = ExpectSpec(anomalies=("stalled",))
    assert match(result, stalled).why == "anomalies stalled, as expected"
    assert match(result, ExpectSpec(anomalies=("divergence",))).why == (
        "expected anomalies divergence: unexpected stalled; divergence did not appear"
    )
    with pytest.raises(ScenarioError, match=r"expect\.anomalies\.0: Input should be"):
        scenario_from_dict({"name": "x", "expect": {"anomalies": ["stuck"]}}, "x.yaml")


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ({}, "x.yaml: expect: give valid: true|false or anomalies: [...]"),
        ({"valid": True, "anomalies": ["lost"]}, "x.yaml: expect: valid: true cannot list anomalies"),
        ({"valid": False, "anomalies": []}, "x.yaml: expect: valid: false needs at least one"),
        ({"anomalies": ["lots"]}, "x.yaml: expect.anomalies.0: Input should be 'lost'"),
        ({"valid": True, "why": 1}, "x.yaml: expect.why: unknown field"),
    ],
)  # fmt: skip
def test_bad_expect_is_one_line(expect: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict({"name": "x", "expect": expect}, "x.yaml")
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("expect", "code", "line"),
    [
        ("", 1, None),
        ("expect: {anomalies: [lost]}\n", 0, "expected: anomalies lost — matched: anomalies lost, as expected"),
        ("expect: {valid: true}\n", 1, "expected: valid — NOT MATCHED: expected valid, got invalid (lost)"),
    ],
)  # fmt: skip
def test_run_prints_the_expectation_and_exits_by_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, expect: str, code: int, line: str | None
) -> None:
    from harness import runner

    def fake_execute(scenario: Any, options: Any) -> runner.RunOutcome:
        queue = {"valid": False, "acknowledged_count": 10, "lost_count": 3}
        result = {
            "valid": False,
            "anomalies": ["lost"],
            "checkers": {"queue": queue | {"summary": summarize(queue)}},
            "headline_checker": "queue",
        }
        return runner.RunOutcome(tmp_path / "run", result)

    monkeypatch.setattr(runner, "execute", fake_execute)
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\n" + expect)
    out = CliRunner().invoke(main, ["run", str(scenario)])
    assert out.exit_code == code, out.output
    lines = out.output.splitlines()
    assert lines[0] == "INVALID: LOST 3 of 10 acknowledged writes (30.00%)"
    assert lines[1] == (line or f"results: {tmp_path / 'run'}")
