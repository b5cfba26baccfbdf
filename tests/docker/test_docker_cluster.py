"""DockerCluster directly: names, labels and subnet; grudges in container namespaces; faults.

One cluster per module (3 nodes, no lazyfs): isolating the stream leader's
node puts rules into its container's namespace (applied from the host with
nsenter), its routes drop, a restart of that container gets the rules again
(a fresh namespace), and healing removes them and the routes come back. Pause
and kill go through the engine. The CLI's ``image build`` and ``doctor``
report what the engine has.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import monitor
from harness.backends.docker import NODE_LABEL, RUN_LABEL, DockerCluster
from harness.runner import wait_ready
from harness.runstate import RunState, new_tag
from harness.scenario import scenario_from_dict

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster(dc, node_image, tmp_path_factory) -> Iterator[DockerCluster]:
    state_dir = tmp_path_factory.mktemp("state")
    mp = pytest.MonkeyPatch()
    mp.setenv("NATS_CHAOS_STATE", str(state_dir))
    sc = scenario_from_dict({"name": "dc", "backend": "docker"}, "test")
    state = RunState(new_tag())
    state.save()
    c = DockerCluster(sc, None, Path("/var/tmp/nats-chaos") / state.tag, state, dc)
    try:
        c.start()
        asyncio.run(wait_ready(c))
        yield c
    finally:
        c.stop()
        state.remove()
        mp.undo()


def until(pred: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def test_containers_and_network_are_named_and_labelled(cluster: DockerCluster, dc) -> None:
    tag = cluster.state.tag
    mine = dc.containers.list(filters={"label": f"{RUN_LABEL}={tag}"})
    assert sorted(c.name for c in mine) == [f"{tag}-n1", f"{tag}-n2", f"{tag}-n3"]
    assert {c.labels[NODE_LABEL] for c in mine} == {"n1", "n2", "n3"}
    net = dc.networks.get(f"{tag}-net")
    assert net.attrs["Labels"][RUN_LABEL] == tag
    [pool] = net.attrs["IPAM"]["Config"]
    assert pool["Subnet"] == str(cluster.subnet) and pool["Subnet"].startswith("10.214.")
    assert cluster.client_url("n2") == f"nats://{cluster.ip('n2')}:4222"
    assert sorted(cluster.state.containers) == sorted(c.name for c in mine)
    assert cluster.state.networks == [f"{tag}-net"]


def test_isolating_a_node_cuts_its_routes_survives_restart_and_heals(
    cluster: DockerCluster,
) -> None:
    others = frozenset({"n2", "n3"})
    grudge = {"n1": others, "n2": frozenset({"n1"}), "n3": frozenset({"n1"})}
    cluster.isolate(grudge)
    try:
        ip2 = cluster.ip("n2")
        assert any(ip2 in rule for rule in cluster.rules("n1"))
        assert until(lambda: monitor.route_count(cluster.monitor_url("n1")) == 0)
        cluster.kill("n1")
        assert not cluster.running("n1")
        cluster.start_node("n1")  # a fresh namespace: the grudge must be applied again
        assert any(ip2 in rule for rule in cluster.rules("n1"))
        assert until(lambda: monitor.route_count(cluster.monitor_url("n1")) is not None)
        time.sleep(3)  # long enough for a route to form if the rules were missing
        assert monitor.route_count(cluster.monitor_url("n1")) == 0
    finally:
        cluster.heal_network()
    assert cluster.rules("n1") == [] and cluster.rules("n2") == []
    assert until(lambda: (monitor.route_count(cluster.monitor_url("n1")) or 0) > 0)


def test_pause_resume_and_kill_through_the_engine(cluster: DockerCluster, dc) -> None:
    name = f"{cluster.state.tag}-n3"
    cluster.pause("n3")
    assert dc.containers.get(name).status == "paused" and cluster.running("n3")
    cluster.kill("n3")  # a paused node must die too
    assert dc.containers.get(name).status == "exited" and not cluster.running("n3")
    cluster.start_node("n3")
    assert cluster.running("n3")
    cluster.pause("n2")
    cluster.resume("n2")
    assert dc.containers.get(f"{cluster.state.tag}-n2").status == "running"
    asyncio.run(wait_ready(cluster))


def test_collect_writes_container_logs_and_the_store(
    cluster: DockerCluster, tmp_path: Path
) -> None:
    cluster.collect(tmp_path)
    for node in cluster.nodes:
        log = (tmp_path / node / "nats-server.log").read_text()
        assert "Starting nats-server" in log
        assert (tmp_path / node / "nats-server.conf").exists()
        with tarfile.open(tmp_path / node / "data.tar.gz") as tar:  # the store, via the Remote
            names = tar.getnames()
        assert "data" in names and any(n.startswith("data/jetstream") for n in names), names


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "harness.cli", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_image_build_and_list(node_image: str) -> None:
    built = cli("image", "build")
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip() == node_image
    listed = cli("image", "list")
    assert node_image in listed.stdout


def test_doctor_reports_the_engine_and_a_scenario_verdict() -> None:
    from harness.net.netem import probe

    host = cli("doctor", "scenarios/power-loss-coordinated.yaml", "--backend", "docker")
    assert host.returncode == 0, host.stdout + host.stderr
    assert "Docker engine" in host.stdout and "nats-chaos/nats-server:" in host.stdout
    assert "power-loss-coordinated: can run here" in host.stdout
    delay = cli("doctor", "scenarios/delay.yaml", "--backend", "docker")
    if probe() is None:
        assert delay.returncode == 0
    else:  # this kernel: no netem, so the delay scenario cannot run and doctor says why
        assert delay.returncode == 3
        assert "delay: cannot run here (netem" in delay.stdout
