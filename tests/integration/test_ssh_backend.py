"""The ssh backend on stand-in hosts: `hosts up`, real runs over SSH, clean, `hosts down`.

Three stand-in hosts (one sshd per network, mount and pid namespace, made by
``nats-chaos hosts up``) serve every test of the module. Each run checks the
same as a local run does, plus that nothing of it remains on any host: no
process, no run directory, no iptables chain. What is on a host is asked
with the OpenSSH client, not with the harness's own SSH code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from chaosrun import ROOT, assert_nothing_left, results_json, run_dir_of, wait_for_log
from folders import the_folder

from harness.history import load_history
from harness.net import netns
from harness.runstate import pid_is

pytestmark = pytest.mark.integration


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=ROOT, env=env, text=True, capture_output=True, timeout=timeout,
    )  # fmt: skip


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("hosts") / "inventory.yaml"
    up = cli("hosts", "up", "3", "--inventory", str(path))
    try:
        assert up.returncode == 0, up.stderr
        doc = yaml.safe_load(path.read_text())
        standin = doc["standin"]
        assert [h["name"] for h in doc["hosts"]] == ["h1", "h2", "h3"]
        for host in doc["hosts"]:  # each its own machine: its own pid 1, an empty work dir
            ps = on_host(path, host, "ps -o pid= -p 1 -o comm=").stdout.split()
            assert ps == ["1", "sshd"]
            assert on_host(path, host, "ls -A /srv/nats-chaos").stdout == ""
        assert not Path("/srv/nats-chaos").exists()  # only inside the hosts' mount namespaces
        yield path
    finally:  # the stand-ins go whatever failed
        down = cli("hosts", "down", "--inventory", str(path)) if path.exists() else up
    assert down.returncode == 0, down.stderr
    assert not path.exists() and not (path.parent / standin["keys"]).exists()
    assert netns.namespaces_of(standin["tag"]) == []
    assert not any(pid_is(pid, "unshare") for pid in standin["pids"].values())


def on_host(inventory: Path, host: dict, command: str) -> subprocess.CompletedProcess[str]:
    keys = inventory.parent
    argv = ["ssh", "-q", "-i", str(keys / host["key"]), "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={keys / host['known_hosts']}",
            f"{host['user']}@{host['address']}", command]  # fmt: skip
    return subprocess.run(argv, text=True, capture_output=True, timeout=30)


def assert_nothing_on_hosts(inventory: Path, tag: str) -> None:
    """No process, directory or chain of run ``tag`` on any host (the binary cache may stay)."""
    for host in yaml.safe_load(inventory.read_text())["hosts"]:
        seen = on_host(inventory, host, "ls -A /srv/nats-chaos; pgrep -a nats-server; iptables -S")
        assert seen.returncode == 0, seen.stderr
        assert tag not in seen.stdout, (host["name"], seen.stdout)
        assert "/nats-server-" not in seen.stdout and "NCHAOS" not in seen.stdout


def scenario(tmp_path: Path, name: str, **fields: object) -> Path:
    doc = {"name": name, "nodes": 3, "seed": 3, "time_limit": 12,
           "workload": {"rate": 300, "timeout": 1}, **fields}  # fmt: skip
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def env_for(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "NATS_CHAOS_STATE": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"}


def run(tmp_path: Path, path: Path, inventory: Path) -> subprocess.CompletedProcess[str]:
    results = str(tmp_path / "results")
    return cli("run", str(path), "--inventory", str(inventory), "--results-dir", results,
               env=env_for(tmp_path))  # fmt: skip


def test_the_nightly_fault_kinds_on_ssh_hosts_match_their_local_verdicts(
    tmp_path: Path, inventory: Path
) -> None:
    # scenarios/ssh: kill, pause, a leader partition that also cuts its clients (its heal
    # goes through SSH, so a valid run proves the cut spared the SSH port), coordinated
    # power loss with lazyfs on the hosts; each with the nightly suite's expectation.
    results = str(tmp_path / "results")
    suite = str(ROOT / "scenarios" / "ssh")
    args = ("suite", suite, "--inventory", str(inventory), "--results-dir", results)
    proc = cli(*args, env=env_for(tmp_path), timeout=600)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    folder = the_folder(tmp_path / "results" / "suites")
    rows = json.loads((folder / "summary.json").read_text())["rows"]
    assert [r["matched"] for r in rows] == [True] * 4
    runs = {r["case"].split("#")[0]: (folder / r["report"]).parent for r in rows}
    assert sorted(runs) == ["kill", "partition-leader", "pause", "power-loss-coordinated"]
    for run_dir in runs.values():
        result = results_json(run_dir)
        assert result["server"]["backend"] == "ssh"
        assert sorted(result["server"]["hosts"]) == ["n1", "n2", "n3"]
        for node in ("n1", "n2", "n3"):  # collected over SFTP
            assert "Server is ready" in (run_dir / "nodes" / node / "nats-server.log").read_text()
            assert (run_dir / "nodes" / node / "data.tar.gz").stat().st_size > 100
        assert_nothing_left(result["tag"], tmp_path / "state")
        assert_nothing_on_hosts(inventory, result["tag"])
    ops = load_history(runs["partition-leader"] / "history.jsonl").ops
    nemesis = [v for v in ops[ops["process"] == "nemesis"]["value"] if isinstance(v, dict)]
    start = next(v for v in nemesis if v.get("start") == "partition")
    assert start["clients_cut"] == [start["leader"]] and start["grudge"][start["leader"]]
    ops = load_history(runs["power-loss-coordinated"] / "history.jsonl").ops
    nemesis = [v for v in ops[ops["process"] == "nemesis"]["value"] if isinstance(v, dict)]
    power = next(v for v in nemesis if v.get("start") == "power-loss")
    assert all(power["dropped_bytes"][n] > 0 for n in ("n1", "n2", "n3"))  # lazyfs on hosts
    for host in yaml.safe_load(inventory.read_text())["hosts"]:  # no lazyfs mount or process
        seen = on_host(inventory, host, "grep -c /srv/nats-chaos/ /proc/mounts; pgrep -af lazyfs-")
        assert seen.stdout.split()[:1] == ["0"] and ".pyz" not in seen.stdout


def test_sigkilled_harness_then_clean_undoes_the_run_on_every_host(
    tmp_path: Path, inventory: Path
) -> None:
    path = scenario(tmp_path, "ssh-sigkill", time_limit=60)
    results = str(tmp_path / "results")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(path), "--inventory", str(inventory),
         "--results-dir", results],
        cwd=ROOT, env=env_for(tmp_path), text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not list((tmp_path / "results").glob("*/*")):
            time.sleep(0.2)
        run_dir = run_dir_of(tmp_path, "ssh-sigkill")
        wait_for_log(run_dir, "main phase")
        time.sleep(2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    (state,) = (tmp_path / "state").glob("nc*.json")
    tag = state.stem
    hosts = yaml.safe_load(inventory.read_text())["hosts"]
    running = on_host(inventory, hosts[0], "pgrep -a nats-server").stdout
    assert f"/srv/nats-chaos/{tag}/n1/nats-server.conf" in running  # left behind, for now
    cleaned = cli("clean", env=env_for(tmp_path))
    assert cleaned.returncode == 0, cleaned.stderr
    assert cleaned.stdout.count(f"{tag}: kill pid") == 3  # one server on each host
    for node in ("n1", "n2", "n3"):
        log = run_dir / "nodes" / node / "nats-server.log"
        assert log.is_file(), cleaned.stdout
        assert "Server is ready" in log.read_text()
        assert (run_dir / "nodes" / node / "data.tar.gz").is_file()
    assert_nothing_left(tag, tmp_path / "state")
    assert_nothing_on_hosts(inventory, tag)


def test_netem_is_refused_on_ssh_in_one_line(tmp_path: Path, inventory: Path) -> None:
    fault = {"kind": "delay", "targets": "one", "delay": "100ms"}
    proc = run(tmp_path, scenario(tmp_path, "ssh-delay", faults=[fault]), inventory)
    assert proc.returncode == 3
    (line,) = proc.stderr.strip().splitlines()
    assert "delay" in line and "ssh backend does not offer" in line


def test_doctor_shows_each_host_and_a_host_that_refuses_ssh_is_one_line(
    tmp_path: Path, inventory: Path
) -> None:
    doc = cli("doctor", "kill", "--inventory", str(inventory), env=env_for(tmp_path))
    assert doc.returncode == 0, doc.stdout
    assert doc.stdout.count("reachable, has what a node needs") == 3
    assert "kill: can run here" in doc.stdout
    bad = yaml.safe_load(inventory.read_text())
    keys = inventory.parent
    for h in bad["hosts"]:
        h["key"], h["known_hosts"] = str(keys / h["key"]), str(keys / h["known_hosts"])
    bad["hosts"][1]["port"] = 2222  # nothing listens there
    del bad["standin"]
    bad_path = tmp_path / "bad.yaml"
    bad_path.write_text(yaml.safe_dump(bad))
    proc = run(tmp_path, scenario(tmp_path, "ssh-refused"), bad_path)
    assert proc.returncode == 3
    (line,) = proc.stderr.strip().splitlines()
    assert f"host h2 (root@{bad['hosts'][1]['address']}:2222): cannot connect" in line
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("*.jsonl"))


def test_the_link_survives_a_dropped_connection_and_works_without_python3(
    inventory: Path,
) -> None:
    from harness import inventory as inv_mod
    from harness.errors import CannotRun
    from harness.ssh import SshLink

    inv = inv_mod.load(inventory)
    host = inv.hosts[0]
    link = SshLink(host, inv.key_path(host), inv.known_hosts_path(host))
    try:
        assert link.run(["echo", "one"]).stdout == "one\n" and link._agent is not None
        link._conn.abort()  # the connection drops (a host reboot, a network blip)
        time.sleep(0.5)
        assert link.run(["echo", "two"]).stdout == "two\n"  # reconnected, a new agent
        assert link._agent is not None
    finally:
        link.close()
    bare = SshLink(host, inv.key_path(host), inv.known_hosts_path(host))
    bare.python = "python3-not-on-this-host"  # as on a host without python3
    try:
        assert bare.run(["sh", "-c", "echo $0"]).stdout == "sh\n" and bare._no_agent
    finally:
        bare.close()
    wrong = SshLink(host, inv.known_hosts_path(host) or Path("/"), None)  # not a key
    with pytest.raises(CannotRun, match=r"host h1 .*: cannot use key .*known_hosts"):
        wrong.connect()
