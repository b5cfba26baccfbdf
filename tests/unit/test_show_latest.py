"""``show latest`` follows the newest run, comparison or suite; a refused run is never latest.

Real runs on the fake cluster (``fakerun``), driven through the CLI.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from fakerun import FAST

from harness import compare as cmp
from harness import suite as st
from harness.backends import fake
from harness.cli import main
from harness.runner import RunOptions, RunOutcome, execute
from harness.scenario import Scenario


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "fake.yaml"
    path.write_text(yaml.safe_dump({"name": "fake", **FAST}))
    return path


@pytest.fixture
def on_fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run the CLI makes (run, compare, suite) goes to a fresh fake cluster."""

    def fake_execute(sc: Scenario, opts: RunOptions) -> RunOutcome:
        opts = dataclasses.replace(opts, backend=fake.backend()[0], work_root=tmp_path / "work")
        return execute(sc, opts)

    def runner(nats_server: str | None, echo: Any) -> st.RunOne:
        return lambda sc, runs_dir: fake_execute(sc, RunOptions(results_dir=runs_dir, echo=echo))

    monkeypatch.setattr(cmp, "execute", fake_execute)
    monkeypatch.setattr(cmp, "compare", functools.partial(cmp.compare, backend=fake.backend()[0]))
    monkeypatch.setattr(st, "real_runner", runner)


def first_run(results: Path, scenario_file: Path) -> Path:
    """One plain run under ``results``, its ``latest`` link made older than anything after."""
    sc = Scenario.model_validate(yaml.safe_load(scenario_file.read_text()))
    opts = RunOptions(results_dir=results, echo=lambda _m: None, backend=fake.backend()[0],
                      work_root=results.parent / "w")  # fmt: skip
    out = execute(sc, opts)
    os.utime(out.run_dir.parent / "latest", (1, 1), follow_symlinks=False)
    return out.run_dir


@pytest.mark.usefixtures("on_fake")
def test_show_latest_after_a_suite_shows_the_suite(tmp_path: Path, scenario_file: Path) -> None:
    results = tmp_path / "results"
    first_run(results, scenario_file)
    cli = CliRunner()
    res = cli.invoke(main, ["suite", str(scenario_file), "--results-dir", str(results)])
    assert res.exit_code == 0, res.output
    (suite_dir,) = (results / "suites").glob("2*")
    assert (results / "suites" / "latest").resolve() == suite_dir.resolve()
    shown = cli.invoke(main, ["show", "latest", "--results-dir", str(results)])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith("## ✅ suite fake: 1/1 matched their expectation")
    assert f"suite: {suite_dir}" in shown.stdout and f"runs: {suite_dir / 'runs'}" in shown.stdout
    again = cli.invoke(main, ["show", str(suite_dir)])  # a suite folder, named
    assert again.exit_code == 0 and again.stdout == shown.stdout
    report = cli.invoke(main, ["report", str(suite_dir)])
    assert report.exit_code == 2
    assert "a suite folder, not one run's; report takes a run folder" in report.stderr


@pytest.mark.usefixtures("on_fake")
def test_show_latest_after_a_compare_shows_the_comparison(
    tmp_path: Path, scenario_file: Path
) -> None:
    results = tmp_path / "results"
    first_run(results, scenario_file)
    cli = CliRunner()
    args = ["compare", str(scenario_file), "--vary", "server.sync_interval=default,always",
            "--results-dir", str(results)]  # fmt: skip
    res = cli.invoke(main, args)
    assert res.exit_code == 0, res.output
    (compare_dir,) = (results / "compare").glob("2*")
    shown = cli.invoke(main, ["show", "--results-dir", str(results)])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == (compare_dir / "compare.md").read_text().rstrip("\n") + (
        f"\n\ncompare: {compare_dir}\nruns: {compare_dir / 'runs'}\n"
    )
    assert "server.sync_interval=always" in shown.stdout
    named = cli.invoke(main, ["show", str(results / "compare")])  # the folder with the link
    assert named.exit_code == 0 and named.stdout == shown.stdout


@pytest.mark.usefixtures("on_fake")
def test_a_refused_run_is_never_latest(tmp_path: Path, scenario_file: Path) -> None:
    results = tmp_path / "results"
    good = first_run(results, scenario_file)
    sc = Scenario.model_validate(yaml.safe_load(scenario_file.read_text()))
    backend, _ = fake.backend(misbehave=("refuse_stream",))  # a stream config the server refuses
    opts = RunOptions(results_dir=results, echo=lambda _m: None, backend=backend,
                      work_root=tmp_path / "w2")  # fmt: skip
    with pytest.raises(Exception, match="cannot create stream chaos") as err:
        execute(sc.model_copy(update={"recovery": sc.recovery.model_copy(
            update={"setup": 0.2, "grace": 0.5})}), opts)  # fmt: skip
    assert getattr(err.value, "exit_code", None) == 2
    refused = sorted((results / "fake").glob("2*"))[-1]
    assert refused != good and (refused / "results.json").is_file()  # its folder is kept
    assert (results / "fake" / "latest").resolve() == good.resolve()
    shown = CliRunner().invoke(main, ["show", "latest", "--results-dir", str(results)])
    assert shown.exit_code == 0 and f"report: {good / 'report.html'}" in shown.stdout


def test_a_bad_scenario_from_the_cli_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nnodez: 3\n")
    res = CliRunner().invoke(main, ["run", str(bad), "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert res.stderr.endswith("nodez: unknown field; did you mean 'nodes'?\n")
    assert not (tmp_path / "r").exists()
