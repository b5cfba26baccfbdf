"""Shipped scenarios by name, ``nats-chaos scenarios``, and the package data a wheel holds."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import images, shipped
from harness.cli import main
from harness.errors import BadInput
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_names_resolve_to_the_shipped_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # far from the checkout
    for name in ("quick", "quick.yaml", "scenarios/quick.yaml", "jepsen/part-kill"):
        path = shipped.scenario_path(name)
        assert path.resolve().parent.name in ("scenarios", "jepsen")
        assert load_scenario(path).name in ("quick", "jepsen-part-kill")
    assert shipped.scenario_path("nightly", suites=True) == shipped.SCENARIOS / "nightly"


def test_a_path_that_exists_wins_over_a_shipped_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quick").write_text("name: mine\n")
    assert shipped.scenario_path("quick") == Path("quick")


@pytest.mark.parametrize(
    ("name", "suites", "message"),
    [
        ("quik", False, "quik: no such scenario file, and no shipped scenario of that name; "
                        "did you mean 'quick'? (`nats-chaos scenarios` lists them)"),
        ("nightly", False, "nightly: a shipped suite; run it with `nats-chaos suite nightly`"),
        ("jepsen/versions", False, "run it with `nats-chaos suite jepsen/versions`"),
        ("../pyproject", False, "no shipped scenario of that name"),
        ("nightli", True, "nightli: no such scenario, suite file or directory, and no shipped"),
    ],
)  # fmt: skip
def test_unknown_names_and_suites_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, suites: bool, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    what = "scenario, suite file or directory" if suites else "scenario file"
    with pytest.raises(BadInput) as err:
        shipped.scenario_path(name, what, suites)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_catalogue_lists_every_yaml_with_its_description() -> None:
    rows = {r.name: r for r in shipped.catalogue()}
    files = list((ROOT / "scenarios").rglob("*.yaml"))
    assert len(rows) == len(files)
    assert rows["quick"].kind == "scenario"
    assert rows["quick"].description.startswith("3 nodes, R3 file stream")
    assert rows["nightly"].kind == "suite" and rows["jepsen"].kind == "suite"
    assert all(r.description for r in rows.values())


def test_scenarios_command_and_run_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["scenarios"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert any(line.split()[0] == "quick" and "SIGKILLed" in line for line in lines)
    assert any(line.split()[0] == "nightly" and line.endswith("(suite)") for line in lines)
    assert lines[-1] == f"files: {shipped.SCENARIOS.resolve()}"
    plan = CliRunner().invoke(main, ["run", "quick", "--plan"])
    assert plan.exit_code == 0 and plan.stdout.startswith("quick: 3 faults in 30s (seed 1)")
    bad = CliRunner().invoke(main, ["run", "quik", "--plan"])
    assert bad.exit_code == 2 and "did you mean 'quick'?" in bad.stderr


def test_the_dockerfile_is_the_packages_own_not_the_docker_sdks() -> None:
    assert images.DOCKERFILE == shipped.DOCKERFILE
    assert images.DOCKERFILE.is_file()
    assert images.DOCKERFILE.parent.parent == Path(shipped.__file__).resolve().parent
    assert images.DOCKERFILE.read_text().startswith("# The nats-chaos node image")


def test_package_data_covers_every_shipped_file() -> None:
    """What setuptools puts in the wheel (pyproject's package-data) matches every file a run
    may read from the package: every scenario, README and the node image."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = data["package-data"]["harness"]
    package = ROOT / "harness"
    shipped_files = [p for d in ("scenarios", "node-image") for p in (package / d).rglob("*")
                     if p.is_file()]  # fmt: skip
    assert shipped_files
    for path in shipped_files:
        rel = path.relative_to(package).as_posix()
        assert any(fnmatch(rel, pat) and rel.count("/") == pat.count("/") for pat in patterns), rel
    assert (package / "scenarios").is_symlink() and (package / "node-image").is_symlink()
