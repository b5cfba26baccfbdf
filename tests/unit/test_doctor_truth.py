"""``doctor`` names the real cause (not root, socket permission, kernel, engine state), and every
fix it prints is a command that works as printed.

Non-root is given to the checks as their ``euid`` input; the probes themselves are real
(a real missing socket, a real socket nobody listens on, the real netem probe as root).
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import doctor, engine, selfcmd, shipped
from harness.cli import main
from harness.scenario import load_scenario

NOT_ROOT = 1000


def test_not_root_is_said_as_such_and_never_blamed_on_the_kernel() -> None:
    root = doctor.check_root(NOT_ROOT)
    assert (root.ok, root.detail) == (False, "euid 1000")
    netns = doctor.check_netns(NOT_ROOT)
    netem = doctor.check_netem(NOT_ROOT)
    for check, what in ((netns, "creating a network namespace"), (netem, "adding a qdisc")):
        assert check.ok is False
        assert check.detail == f"not root (euid 1000): {what} needs root, so it was not probed"
        assert "kernel" not in check.detail
        assert check.fix.startswith("run nats-chaos as root")


@pytest.mark.skipif(os.geteuid() != 0, reason="the root side of the probe needs root")
def test_as_root_the_kernel_is_probed() -> None:
    netns = doctor.check_netns(0)
    assert netns.ok is True and netns.detail == "unshare --net works"
    netem = doctor.check_netem(0)
    assert "not root" not in netem.detail
    if netem.ok is False:  # this kernel lacks sch_netem: said as the kernel's
        assert netem.detail.startswith("unsupported on this kernel (tc: ")


def test_a_scenarios_netem_row_keeps_the_not_root_reason() -> None:
    checks = [doctor.check_root(NOT_ROOT), doctor.check_netem(NOT_ROOT)]
    sc = load_scenario(shipped.scenario_path("delay"))
    (row,) = [r for r in doctor.fault_checks(sc, {c.key: c for c in checks}) if r.key == "netem"]
    assert row.name == "netem (for delay, loss)"
    assert row.ok is False and row.detail.startswith("not root (euid 1000)")


def test_engine_states_are_told_apart(tmp_path: Path) -> None:
    missing = engine.probe(str(tmp_path / "docker.sock"))
    assert missing is not None and missing.errno == errno.ENOENT
    assert engine.status(missing, installed=True) == engine.NOT_RUNNING
    assert engine.status(missing, installed=False) == engine.NOT_INSTALLED
    deaf = tmp_path / "deaf.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(deaf))  # bound, never listening: the connection is refused
        refused = engine.probe(str(deaf))
    assert refused is not None and refused.errno == errno.ECONNREFUSED
    assert engine.status(refused, installed=True) == engine.NOT_RUNNING
    denied = OSError(errno.EACCES, "Permission denied", "/var/run/docker.sock")
    assert engine.status(denied, installed=True) == engine.PERMISSION
    fix = engine.how_to_start(engine.PERMISSION)
    assert "usermod -aG docker" in fix and "engine start" not in fix


def test_docker_row_for_an_engine_that_is_not_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = tmp_path / "docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    row = doctor.check_docker(NOT_ROOT)
    assert row.ok is False
    if shutil.which("dockerd"):
        assert row.detail == f"dockerd installed, not running (nothing answers on {sock})"
        start = selfcmd.command("engine start")
        assert row.fix == f"start one: as root: {start} (or `systemctl start docker`)"
    else:
        assert row.detail == "not installed (no dockerd)"
        assert f"as root: {selfcmd.command('engine install')}" in row.fix
    as_root = doctor.check_docker(0)
    assert "as root:" not in as_root.fix  # a root caller runs it as it is


def test_the_shipped_files_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert doctor.check_files().ok is True
    monkeypatch.setattr(shipped, "DOCKERFILE", tmp_path / "Dockerfile")
    row = doctor.check_files()
    assert row.ok is False and row.detail == f"missing: {tmp_path / 'Dockerfile'}"
    sc = load_scenario(shipped.scenario_path("quick"), ["backend=docker"])
    needs = doctor.scenario_checks(sc, [*doctor.host_checks()[:-1], row])
    assert not doctor.can_run(needs)  # doctor never says a run can go on without its files


def _nats_chaos_commands(text: str) -> list[list[str]]:
    """Every nats-chaos command line a fix names (this install's spelling)."""
    prog = re.escape(selfcmd.program())
    found = re.findall(rf"{prog}((?: [a-z][\w.-]*)+)", text)
    return [shlex.split(args) for args in found]


def test_every_nats_chaos_fix_is_a_command_that_exists() -> None:
    checks = [doctor.check_root(NOT_ROOT), doctor.check_netns(NOT_ROOT), doctor.check_servers()]
    checks += [doctor.check_netem(NOT_ROOT), doctor.check_files()]
    fixes = " ".join(c.fix + " " + c.detail for c in checks)
    fixes += (
        " " + engine.how_to_start(engine.NOT_RUNNING) + engine.how_to_start(engine.NOT_INSTALLED)
    )
    commands = _nats_chaos_commands(fixes)
    assert ["engine", "start"] in commands and ["engine", "install"] in commands
    for args in commands:  # this code's CLI knows each one
        res = CliRunner().invoke(main, [*args, "--help"])
        assert res.exit_code == 0, (args, res.output)
    # and the program itself is spelled so that a shell runs it
    p = subprocess.run([*shlex.split(selfcmd.program()), "--version"], capture_output=True)
    assert p.returncode == 0, p.stderr
