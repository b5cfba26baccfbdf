"""Inventories, the ssh run state and the ssh options: bad input is one line, state is checked.

No host is contacted: these are the parts of the ssh backend that decide before any SSH.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness import backends, inventory
from harness.backends.base import NETEM, POWER
from harness.cli import _backend_args
from harness.errors import ScenarioError
from harness.runstate import WORK_ROOT, BadStateFile, RunState, load
from harness.scenario import load_scenario


def write(tmp_path: Path, doc: object, key: bool = True) -> Path:
    if key:
        (tmp_path / "id").write_text("not really a key")
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def host(address: str, **more: object) -> dict[str, object]:
    return {"address": address, "key": "id", **more}


def test_an_inventory_names_its_hosts_and_maps_nodes_in_order(tmp_path: Path) -> None:
    path = write(tmp_path, {"hosts": [host("10.0.0.11"), host("10.0.0.12", name="b", port=2222),
                                      host("10.0.0.13", user="ops")]})  # fmt: skip
    inv = inventory.load(path)
    assert [h.name for h in inv.hosts] == ["h1", "b", "h3"]
    placed = inv.for_nodes(["n1", "n2"])
    assert {n: (h.address, h.port, h.user) for n, h in placed.items()} == {
        "n1": ("10.0.0.11", 22, "root"),
        "n2": ("10.0.0.12", 2222, "root"),
    }
    assert inv.key_path(inv.hosts[0]) == tmp_path / "id"  # relative to the inventory
    assert inv.hosts[0].workdir == inventory.DEFAULT_WORKDIR


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ({"hosts": []}, "hosts: List should have at least 1 item"),
        ({"hosts": [host("10.0.0.300")]}, "is not an IPv4 address"),
        ({"hosts": [host("10.0.0.1"), host("10.0.0.1")]}, "two hosts share an address"),
        ({"hosts": [host("10.0.0.1", workdir="tmp")]}, "must be an absolute path"),
        ({"hosts": [host("10.0.0.1", workdir="/a/../b")]}, "must be an absolute path"),
        ({"hosts": [host("10.0.0.1", prot=22)]}, "hosts.0.prot: Extra inputs are not permitted"),
        ({"hosts": [host("10.0.0.1", name="x"), host("10.0.0.2", name="x")]}, "used twice"),
        (["10.0.0.1"], "an inventory is a mapping"),
    ],
)
def test_a_bad_inventory_is_one_line_naming_the_file(
    tmp_path: Path, doc: object, says: str
) -> None:
    path = write(tmp_path, doc)
    with pytest.raises(ScenarioError) as e:
        inventory.load(path)
    assert says in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, {"hosts": [host("10.0.0.1")]}, key=False)
    with pytest.raises(ScenarioError, match=r"hosts.h1.key: no such file .*/id"):
        inventory.load(path)


def test_too_few_hosts_for_the_nodes_is_refused(tmp_path: Path) -> None:
    inv = inventory.load(write(tmp_path, {"hosts": [host("10.0.0.1"), host("10.0.0.2")]}))
    with pytest.raises(ScenarioError, match="3 nodes need 3 hosts; the inventory has 2"):
        inv.for_nodes(["n1", "n2", "n3"])


def test_backend_ssh_and_an_inventory_go_together(tmp_path: Path) -> None:
    sc = tmp_path / "s.yaml"
    sc.write_text("name: s\n")
    with pytest.raises(ScenarioError, match="backend: ssh needs an inventory"):
        load_scenario(str(sc), ["backend=ssh"])
    with pytest.raises(ScenarioError, match="only it uses one"):
        load_scenario(str(sc), ["inventory=/x.yaml"])
    assert load_scenario(str(sc), _backend_args(None, "inv.yaml")).backend == "ssh"
    assert _backend_args(None, None) == []
    assert _backend_args("docker", None) == ["backend=docker"]


def test_the_ssh_backend_offers_power_but_not_netem() -> None:
    assert backends.lacks("ssh", POWER) is None
    assert backends.lacks("ssh", NETEM) == "which the ssh backend does not offer yet"


def _ssh_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **change: object) -> Path:
    monkeypatch.setenv("NATS_CHAOS_STATE", str(tmp_path))
    state = RunState("nc0123abcd", run_dir=str(tmp_path / "results" / "run"))
    inv = inventory.Host(address="10.0.0.11", key="k")
    key = tmp_path / "k"
    state.add_host("n1", inv, key, None, "/srv/nats-chaos/nc0123abcd/n1")
    state.add_remote_pid("n1", 4242, "/srv/nats-chaos/bin/nats-server-ab -c "
                         "/srv/nats-chaos/nc0123abcd/n1/nats-server.conf ")  # fmt: skip
    state.add_remote_mount("n1", "/srv/nats-chaos/nc0123abcd/n1/data")
    doc = json.loads(state.path.read_text())
    for field, value in change.items():
        doc[field] = value
    state.path.write_text(json.dumps(doc))
    return state.path


def test_an_ssh_run_state_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = load(_ssh_state(tmp_path, monkeypatch))
    assert state.hosts["n1"]["address"] == "10.0.0.11"
    assert state.hosts["n1"]["key"] == str(tmp_path / "k")
    assert list(state.remote_pids) == ["n1:4242"]
    assert state.remote_mounts == ["n1:/srv/nats-chaos/nc0123abcd/n1/data"]
    assert state.work_dir == WORK_ROOT / "nc0123abcd"


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        (
            "hosts",
            {
                "n1": {
                    "address": "10.0.0.11",
                    "port": 22,
                    "user": "root",
                    "key": "/k",
                    "dir": "/srv/nats-chaos/other/n1",
                }
            },
            "is not <workdir>/nc0123abcd/n1",
        ),
        (
            "hosts",
            {
                "n1": {
                    "address": "10.0.0.11",
                    "port": 22,
                    "user": "root",
                    "key": "k",
                    "dir": "/srv/nats-chaos/nc0123abcd/n1",
                }
            },
            "is not an absolute path",
        ),
        ("remote_pids", {"n1:4242": "/bin/sh -c rm -rf /"}, "is not a process of the run"),
        ("remote_pids", {"n2:4242": "/x /srv/nats-chaos/nc0123abcd/n1/y"}, "<node of a host>"),
        ("remote_pids", {"n1:1": "/x /srv/nats-chaos/nc0123abcd/n1/y"}, "<node of a host>"),
        ("remote_mounts", ["n1:/srv/nats-chaos/nc0123abcd/n1/../../x"], "not inside"),
        ("remote_mounts", ["n1:/home"], "not inside its node's run dir"),
    ],
)
def test_clean_refuses_an_ssh_state_that_names_what_is_not_the_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str, value: object, says: str
) -> None:
    path = _ssh_state(tmp_path, monkeypatch, **{field: value})
    with pytest.raises(BadStateFile, match=says.replace("<", ".").replace(">", ".")):
        load(path)


def test_a_client_cut_on_an_ssh_host_blocks_only_the_client_and_monitor_ports() -> None:
    from harness.net import iptables

    both = iptables.port_cut("10.9.0.1", (4222, 8222), both_ways=True)
    reset = "-j REJECT --reject-with tcp-reset"
    assert both.lines == (
        f"-A NCHAOS -s 10.9.0.1 -p tcp --dport 4222 {reset}",
        f"-A NCHAOS -s 10.9.0.1 -p tcp --dport 8222 {reset}",
        f"-A NCHAOS -d 10.9.0.1 -p tcp --sport 4222 {reset}",
        f"-A NCHAOS -d 10.9.0.1 -p tcp --sport 8222 {reset}",
    )
    assert both.kill == ("dst 10.9.0.1 and ( sport = :4222 or sport = :8222 )",)
    one = iptables.port_cut("10.9.0.1", (4222,), both_ways=False)
    assert one.lines == ("-A NCHAOS -s 10.9.0.1 -p tcp --dport 4222 -j DROP",) and one.kill == ()

    ran: list[list[str]] = []

    class Shell:
        def run(self, argv, check=True, timeout=30.0, input=None):  # type: ignore[no-untyped-def]
            ran.append(list(argv))

    iptables.kill_connections(Shell(), both.kill)  # ssh's own port 22 is not in the filter
    assert ran[0] == ["ss", "-K", "(", "dst", "10.9.0.1", "and", "(", "sport", "=", ":4222",
                          "or", "sport", "=", ":8222", ")", ")"]  # fmt: skip


def test_clean_keeps_an_unreachable_hosts_record_and_force_forgets_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from harness.cleanup import clean_state

    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    monkeypatch.setenv("NATS_CHAOS_STATE", str(tmp_path / "state"))
    state = RunState("nc0123abce")
    nowhere = inventory.Host(address="127.0.0.1", port=1, key=str(key))  # nothing listens
    state.add_host("n1", nowhere, key, None, "/srv/nats-chaos/nc0123abce/n1")
    state.add_remote_pid("n1", 4242, "/srv/nats-chaos/bin/nats-server-ab -c "
                         "/srv/nats-chaos/nc0123abce/n1/nats-server.conf ")  # fmt: skip
    lines = clean_state(state)
    assert any("host n1 (root@127.0.0.1:1): cannot connect" in line for line in lines)
    assert load(state.path).hosts  # kept: a later clean tries again
    lines = clean_state(load(state.path), force=True)
    assert any("forgot n1's host" in line for line in lines)
    assert not state.path.exists()  # nothing else was left: the run is forgotten
