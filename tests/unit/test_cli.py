"""CLI contract without a cluster: one-line errors, exit codes 2 and 3, --plan (server
install and list: test_servers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def test_invalid_scenario_is_exit_2_with_one_line(cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: 3\nstream: {replicas: 7}\n")
    res = cli.invoke(main, ["run", str(bad), "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1
    assert "bad.yaml" in res.stderr and "replicas" in res.stderr
    assert not (tmp_path / "r").exists()


def test_bad_override_is_exit_2(cli: CliRunner, tmp_path: Path) -> None:
    res = cli.invoke(main, ["run", str(SCENARIOS / "quick.yaml"), "--set", "nodes=many"])
    assert res.exit_code == 2
    assert "nodes: Input should be a valid integer" in res.stderr


def test_missing_binary_is_exit_3_and_writes_nothing(cli: CliRunner, tmp_path: Path) -> None:
    res = cli.invoke(
        main,
        ["run", str(SCENARIOS / "quick.yaml"), "--nats-server", str(tmp_path / "nope"),
         "--results-dir", str(tmp_path / "r")],
    )  # fmt: skip
    assert res.exit_code == 3
    assert "nats-chaos server install" in res.stderr
    assert res.stderr.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_plan_prints_the_timeline_without_running(cli: CliRunner) -> None:
    res = cli.invoke(main, ["run", str(SCENARIOS / "kill.yaml"), "--plan", "--seed", "5"])
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert lines[0].startswith("kill: 5 faults in 60s (seed 5)")
    assert all("kill" in line for line in lines[1:]) and len(lines) == 6
    again = cli.invoke(main, ["run", str(SCENARIOS / "kill.yaml"), "--plan", "--seed", "5"])
    assert again.stdout == res.stdout


def test_check_malformed_history_names_the_line(cli: CliRunner, tmp_path: Path) -> None:
    h = tmp_path / "h.jsonl"
    h.write_text(
        '{"index":0,"time":0,"type":"invoke","process":0,"f":"publish","value":1}\n'
        "{not json\n"
        '{"index":2,"time":1,"type":"ok","process":0,"f":"publish","value":1}\n'
    )
    res = cli.invoke(main, ["check", str(h)])
    assert res.exit_code == 2
    assert f"{h}:2: not valid JSON" in res.stderr


def test_ctrl_c_in_a_check_is_exit_130_with_one_line(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness import results

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(results, "load", interrupted)
    h = tmp_path / "h.jsonl"
    h.write_text('{"index":0,"time":0,"type":"invoke","process":0,"f":"publish","value":1}\n')
    res = cli.invoke(main, ["check", str(h)])
    assert res.exit_code == 130
    assert res.stderr == "nats-chaos: interrupted (SIGINT)\n"


def test_check_missing_file_is_exit_2(cli: CliRunner, tmp_path: Path) -> None:
    res = cli.invoke(main, ["check", str(tmp_path / "none.jsonl")])
    assert res.exit_code == 2
    assert "cannot read history" in res.stderr


def test_missing_host_tool_is_exit_3_naming_the_package(
    cli: CliRunner, tmp_path: Path, monkeypatch
) -> None:
    import shutil

    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda t: None if t == "iptables" else real(t))
    res = cli.invoke(
        main, ["run", str(SCENARIOS / "quick.yaml"), "--results-dir", str(tmp_path / "r")]
    )
    assert res.exit_code == 3
    assert res.stderr.strip() == "nats-chaos: missing iptables: apt-get install iptables"
    assert not (tmp_path / "r").exists()
