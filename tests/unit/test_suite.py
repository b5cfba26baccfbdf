"""Suites with a fake runner: case expansion (matrices, expect_by), summaries, JUnit XML, CLI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from checkers.queue import summarize
from harness import suite as st
from harness.cli import main
from harness.errors import BadInput, CannotRun, ScenarioError
from harness.runner import RunOutcome
from harness.scenario import Scenario

SCENARIO = """
name: {name}
time_limit: 30
seed: 5
server: {{sync_interval: default}}
faults: [{{kind: kill}}]
"""

SUITE = """
name: night
scenarios:
  - a.yaml
  - file: b.yaml
    set: {time_limit: 12, workload: {rate: 50}, server.sync_interval: always}
    expect: {valid: true}
  - file: b.yaml
    matrix:
      server.sync_interval: [default, always]
      faults:
        kill: [{kind: kill}]
        pause: [{kind: pause}]
    expect: {valid: false}
    expect_by:
      "server.sync_interval=default, faults=kill": {anomalies: [lost]}
      server.sync_interval=always: {valid: true}
"""


def layout(root: Path, suite: str = SUITE) -> Path:
    """``root/scenarios/{a,b}.yaml`` and ``root/scenarios/nightly/suite.yaml`` (paths ../x)."""
    sc = root / "scenarios"
    (sc / "nightly").mkdir(parents=True)
    for name in ("a", "b"):
        (sc / f"{name}.yaml").write_text(SCENARIO.format(name=name))
    (sc / "nightly" / "suite.yaml").write_text(suite.replace("file: ", "file: ../").replace(
        "  - a.yaml", "  - ../a.yaml"))  # fmt: skip
    return sc / "nightly"


class FakeRunner:
    """Pretends to run: default sync + kill loses writes, anything else is valid."""

    def __init__(
        self, fail_with: Exception | None = None, interrupt_at: int = 0, broken: str | None = None
    ) -> None:
        self.seen: list[Scenario] = []
        self.fail_with = fail_with
        self.interrupt_at = interrupt_at
        self.broken = broken

    def __call__(self, scenario: Scenario, runs_dir: Path) -> RunOutcome:
        self.seen.append(scenario)
        if self.fail_with is not None:
            raise self.fail_with
        run_dir = runs_dir / scenario.name / f"run{len(self.seen)}"
        run_dir.mkdir(parents=True)
        lossy = scenario.server.sync_interval == "default" and scenario.faults[0].kind == "kill"
        queue = {"valid": not lossy, "acknowledged_count": 1000, "lost_count": 7 if lossy else 0}
        result: dict[str, Any] = {
            "valid": not lossy,
            "anomalies": ["lost"] if lossy else [],
            "checkers": {"queue": queue | {"summary": summarize(queue)}},
            "headline_checker": "queue",
        }
        interrupted = "SIGINT" if len(self.seen) == self.interrupt_at else None
        return RunOutcome(run_dir, result, interrupted, broken=self.broken)


def test_cases_of_a_suite_directory(tmp_path: Path) -> None:
    name, cases = st.load_cases([str(layout(tmp_path))], ["time_limit=8"])
    assert name == "night"
    assert [c.label(1) for c in cases] == [
        "a#1",
        "b#1",
        "b[server.sync_interval=default, faults=kill]#1",
        "b[server.sync_interval=default, faults=pause]#1",
        "b[server.sync_interval=always, faults=kill]#1",
        "b[server.sync_interval=always, faults=pause]#1",
    ]
    expects = [c.scenario.expect for c in cases]
    assert expects[0] is None  # the scenario file declares none
    assert expects[1] is not None and expects[1].valid is True
    assert expects[2] is not None and expects[2].anomalies == ("lost",)
    assert expects[3] is not None and (expects[3].valid, expects[3].anomalies) == (False, None)
    assert all(e is not None and e.valid is True for e in expects[4:])
    syncs = [c.scenario.server.sync_interval for c in cases]
    assert syncs == ["default", "always"] + ["default"] * 2 + ["always"] * 2
    assert [c.scenario.faults[0].kind for c in cases[2:]] == ["kill", "pause"] * 2
    assert all(c.scenario.time_limit == 8 for c in cases)  # the command line wins over set:
    assert cases[1].scenario.workload.rate == 50


def test_a_directory_without_suite_file_runs_every_yaml(tmp_path: Path) -> None:
    layout(tmp_path)
    name, cases = st.load_cases([str(tmp_path / "scenarios")], [])
    assert name == "scenarios"
    assert [c.label(1) for c in cases] == ["a#1", "b#1"]
    name, cases = st.load_cases([str(tmp_path / "scenarios" / "b.yaml")], ["backend=docker"])
    assert (name, [c.scenario.backend for c in cases]) == ("b", ["docker"])


def test_list_values_of_an_axis_are_numbered(tmp_path: Path) -> None:
    suite = """
scenarios:
  - file: b.yaml
    matrix: {faults: [[{kind: kill}], [{kind: pause}]], seed: [1, 2]}
    expect_by: {"faults=#2, seed=2": {valid: false}}
"""
    _, cases = st.load_cases([str(layout(tmp_path, suite))], [])
    assert [c.variant for c in cases] == [
        "faults=#1, seed=1", "faults=#1, seed=2", "faults=#2, seed=1", "faults=#2, seed=2",
    ]  # fmt: skip
    assert [c.scenario.expect is not None for c in cases] == [False, False, False, True]


@pytest.mark.parametrize(
    ("suite", "error", "message"),
    [
        ("scenarios: [{file: b.yaml, expect_by: {seed=1: {valid: true}}}]", BadInput,
         "expect_by needs a matrix"),
        ("scenarios: [{file: b.yaml, matrix: {seed: [1]}, expect_by: {seed=2: {valid: true}}}]",
         BadInput, "expect_by 'seed=2': 'seed=2' is no matrix value (seed: 1)"),
        ("scenarios: [{file: b.yaml, matrix: {nodes: [3, zero]}}]", ScenarioError,
         "b.yaml: nodes: Input should be a valid integer"),
        ("scenarios: [{file: b.yaml, matrix: {seed: []}}]", BadInput,
         "matrix.seed: needs at least"),
        ("scenarios: [{file: b.yaml, sets: {}}]", BadInput, "scenarios.0.sets: unknown field"),
        ("scenarios: [{file: nope.yaml}]", ScenarioError, "nope.yaml: cannot read scenario"),
        ("scenarios: [{file: b.yaml, expect: {anomalies: [lots]}}]", ScenarioError,
         "expect.anomalies.0"),
        ("scenarios: []", BadInput, "scenarios: List should have at least 1 item"),
        ("scenarios: [b.yaml\n", BadInput, "not valid YAML"),
    ],
)  # fmt: skip
def test_bad_suites_fail_before_any_run(
    tmp_path: Path, suite: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as err:
        st.load_cases([str(layout(tmp_path, suite))], [])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_path_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such scenario, suite file or directory"):
        st.load_cases([str(tmp_path / "nothing")], [])


def run(tmp_path: Path, fake: FakeRunner, repeat: int = 1) -> st.SuiteOutcome:
    name, cases = st.load_cases([str(layout(tmp_path))], [])
    return st.run_suite(name, cases, repeat, tmp_path / "results", fake, echo=lambda _: None)


def junit(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def test_run_suite_writes_summary_and_junit(tmp_path: Path) -> None:
    fake = FakeRunner()
    out = run(tmp_path, fake, repeat=2)
    assert out.out.parent == tmp_path / "results" / "suites"
    assert len(fake.seen) == 12
    assert [s.seed for s in fake.seen] == [5] * 6 + [6] * 6  # repeat k: seed + k
    assert [r["matched"] for r in out.rows] == [False, True, True, False, True, True] * 2
    assert out.exit_code == 1

    data = json.loads((out.out / "summary.json").read_text())
    assert (data["suite"], data["runs"], data["matched"], data["all_matched"]) == (
        "night", 12, 8, False,
    )  # fmt: skip
    first = data["rows"][0]
    assert first["case"] == "a#1"
    assert first["verdict"] == "INVALID: LOST 7 of 1,000 acknowledged writes (0.70%)"
    assert first["expected"] == "valid"
    assert first["why"] == "expected valid, got invalid (lost)"
    assert first["counts"] == {"acknowledged": 1000, "lost": 7, "lost_pct": 0.7}
    assert first["report"] == "runs/a/run1/report.html"  # relative to the suite folder
    assert data["rows"][6]["case"] == "a#2"

    md = (out.out / "summary.md").read_text()
    assert md.startswith("## ❌ suite night: 8/12 matched their expectation")
    assert "| a | – | 1 | INVALID: LOST 7 of 1,000" in md
    assert "**NO** — expected valid, got invalid (lost)" in md
    assert "[report](runs/a/run1/report.html)" in md
    assert md.count("\n| ") == 13  # header + one row per run

    root = junit(out.out / "junit.xml")
    ts = root.find("testsuite")
    assert ts is not None
    assert (ts.get("name"), ts.get("tests"), ts.get("failures"), ts.get("errors")) == (
        "night", "12", "4", "0",
    )  # fmt: skip
    cases = ts.findall("testcase")
    assert [c.get("name") for c in cases[:3]] == [
        "a#1", "b#1", "b[server.sync_interval=default, faults=kill]#1",
    ]  # fmt: skip
    assert {c.get("classname") for c in cases} == {"night"}
    assert all(float(c.get("time", "x")) >= 0 for c in cases)
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert sorted(failed) == ["a#1", "a#2", "b[server.sync_interval=default, faults=pause]#1",
                              "b[server.sync_interval=default, faults=pause]#2"]  # fmt: skip
    msg = failed["a#1"].get("message")  # type: ignore[union-attr]
    assert msg == (
        "INVALID: LOST 7 of 1,000 acknowledged writes (0.70%) — expected valid, got invalid (lost)"
    )
    pause = failed["b[server.sync_interval=default, faults=pause]#1"]
    assert pause.get("message") == (  # type: ignore[union-attr]
        "VALID: no anomalies in 1,000 acknowledged writes — "
        "expected invalid (any anomalies), but the run was valid (fixed?)"
    )


def test_all_matched_exits_0(tmp_path: Path) -> None:
    suite = """
scenarios:
  - {file: b.yaml, set: {server.sync_interval: always}, expect: {valid: true}}
  - {file: a.yaml, expect: {anomalies: [lost]}}
"""
    name, cases = st.load_cases([str(layout(tmp_path, suite))], [])
    out = st.run_suite(name, cases, 1, tmp_path / "r", FakeRunner(), echo=lambda _: None)
    assert out.exit_code == 0
    ts = junit(out.out / "junit.xml").find("testsuite")
    assert ts is not None and (ts.get("tests"), ts.get("failures")) == ("2", "0")
    assert (out.out / "summary.md").read_text().startswith("## ✅ suite nightly: 2/2 matched")


def test_a_run_that_cannot_happen_is_an_error(tmp_path: Path) -> None:
    out = run(tmp_path, FakeRunner(fail_with=CannotRun("no nats-server binary")))
    assert out.exit_code == 3
    ts = junit(out.out / "junit.xml").find("testsuite")
    assert ts is not None and (ts.get("tests"), ts.get("errors"), ts.get("failures")) == (
        "6", "6", "0",
    )  # fmt: skip
    err = ts.find("testcase/error")
    assert err is not None and err.get("message") == "ERROR: no nats-server binary"


def test_a_run_that_broke_makes_the_suite_exit_4(tmp_path: Path) -> None:
    out = run(tmp_path, FakeRunner(broken="phase 'reads' passed its deadline of 75s"))
    assert out.exit_code == 4
    rows = json.loads((out.out / "summary.json").read_text())["rows"]
    assert {r["why"] for r in rows} == {"the run broke: phase 'reads' passed its deadline of 75s"}
    assert not any(r["matched"] for r in rows)


def test_interrupted_suite_stops_and_keeps_its_table(tmp_path: Path) -> None:
    fake = FakeRunner(interrupt_at=2)
    out = run(tmp_path, fake)
    assert out.interrupted == "SIGINT"
    assert len(fake.seen) == 2
    summary = json.loads((out.out / "summary.json").read_text())
    assert summary["runs"] == 6 and summary["matched"] == 1  # the 4 not run are listed as such
    verdicts = [r["verdict"] for r in out.rows]
    assert verdicts[2:] == ["not run (interrupted by SIGINT)"] * 4
    assert "not run (interrupted by SIGINT)" in (out.out / "summary.md").read_text()


def test_a_run_stopped_by_a_second_signal_stops_the_suite(tmp_path: Path) -> None:
    from harness.errors import Stopped

    fake = FakeRunner(fail_with=Stopped("stopped by a second SIGTERM; …", "SIGTERM"))
    out = run(tmp_path, fake)
    assert out.interrupted == "SIGTERM"  # the CLI exits 143
    assert len(fake.seen) == 1  # no further run started
    summary = json.loads((out.out / "summary.json").read_text())
    assert summary["runs"] == 6 and summary["matched"] == 0  # every run listed as not run
    assert {r["verdict"] for r in out.rows} == {"not run (interrupted by SIGTERM)"}


def test_repeat_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="--repeat"):
        run(tmp_path, FakeRunner(), repeat=0)


def test_cli_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRunner()
    monkeypatch.setattr(st, "real_runner", lambda nats_server, echo: fake)
    suite_dir = layout(tmp_path)
    junit_file = tmp_path / "ci" / "nightly.xml"
    args = ["suite", str(suite_dir), "--junit", str(junit_file), "--time-limit", "9",
            "--results-dir", str(tmp_path / "res")]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "## ❌ suite night: 4/6 matched" in result.output
    assert "suite: " in result.output
    assert all(s.time_limit == 9 for s in fake.seen)
    ts = junit(junit_file).find("testsuite")
    assert ts is not None and (ts.get("tests"), ts.get("failures")) == ("6", "2")

    bad = CliRunner().invoke(main, ["suite", str(tmp_path / "missing")])
    assert bad.exit_code == 2
    assert "no such scenario, suite file or directory" in bad.output


def test_two_cases_with_one_name_are_refused(tmp_path: Path) -> None:
    suite = "scenarios: [{file: b.yaml}, {file: b.yaml, set: {seed: 9}}]"
    with pytest.raises(BadInput, match=r"b#1: more than one case with this name"):
        st.load_cases([str(layout(tmp_path, suite))], [])
    renamed = "scenarios: [{file: b.yaml}, {file: b.yaml, set: {name: b2}}]"
    _, cases = st.load_cases([str(layout(tmp_path / "x", renamed))], [])
    assert [c.label(1) for c in cases] == ["b#1", "b2#1"]


ROOT = Path(__file__).resolve().parents[2]


def test_nightly_suite_covers_every_fault_family_with_expectations() -> None:
    name, cases = st.load_cases([str(ROOT / "scenarios" / "nightly")], [])
    assert name == "nightly"
    assert all(c.scenario.expect is not None for c in cases)
    assert all(20 <= c.scenario.time_limit <= 30 for c in cases)
    kinds = set().union(*(c.scenario.fault_kinds for c in cases))
    assert {"kill", "pause", "partition", "power-loss", "corrupt"} <= kinds
    for workload, lossy in (("queue", ("lost", "stream-lost")), ("consumer", None)):
        coordinated = {
            c.scenario.server.sync_interval: c.scenario.expect
            for c in cases
            if c.scenario.workload.name == workload
            and any(getattr(f, "coordinated", False) for f in c.scenario.faults)
        }
        assert set(coordinated) == {"default", "always"}
        assert coordinated["default"] is not None and coordinated["default"].valid is not True
        assert coordinated["default"].anomalies == lossy
        assert coordinated["always"] is not None and coordinated["always"].valid is True
    counter = [
        c.scenario.expect
        for c in cases
        if c.scenario.workload.name == "counter"
        and c.scenario.server.sync_interval == "default"
        and any(getattr(f, "coordinated", False) for f in c.scenario.faults)
    ]
    assert counter and all(e is not None and e.anomalies == ("lost-increment",) for e in counter)


def test_nightly_workflow_steps() -> None:
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "nightly.yml").read_text())
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    (job,) = wf["jobs"].values()
    steps = job["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert uses[0].startswith("actions/checkout@")
    py = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert str(py["with"]["python-version"]) == "3.11"
    runs = [s.get("run", "") for s in steps]
    pkgs = next(r for r in runs if "system-" in r or "apt-get" in r)
    assert "sudo make system-RUN_PKGS" in pkgs  # the Makefile's package list, installed as root
    install = next(r for r in runs if "pip install" in r)
    assert "-e ." in install and "nats-chaos server install" in install
    suite = next(s for s in steps if "nats-chaos suite" in s.get("run", ""))
    assert suite["run"].startswith("sudo ")
    assert "scenarios/nightly" in suite["run"] and "--junit" in suite["run"]
    assert "--results-dir results" in suite["run"]
    after = steps[steps.index(suite) + 1 :]
    assert all(s.get("if") == "always()" for s in after)
    summary = next(s for s in after if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert "summary.md" in summary["run"]
    upload = next(s for s in after if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"].rstrip("/") == "results"


def test_the_results_index_follows_the_suite_run_by_run(tmp_path: Path) -> None:
    from harness.browse import entries, write_index

    name, cases = st.load_cases([str(layout(tmp_path))], [])
    root = tmp_path / "results"
    said: list[str] = []

    def after_each() -> None:
        write_index(root)
        said.append(next(e.verdict for e in entries(root) if e.kind == "suite"))

    st.run_suite(name, cases, 1, root, FakeRunner(), echo=lambda _: None, after_each=after_each)
    matched = [0, 1, 2, 2, 3, 4]  # the rows match as in test_run_suite_writes_summary_and_junit
    assert said == [f"{m}/{i} matched their expectation" for i, m in enumerate(matched, 1)]
    assert 'data-kind="suite"' in (root / "index.html").read_text()
