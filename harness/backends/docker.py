"""Docker backend: each node a nats-server container on a network made for the run.

``DockerCluster`` is the local backend's twin behind the same protocol
(``harness.backends.base.Cluster``):

- one bridge network per run, ``<tag>-net`` (host interface ``<tag>-d``),
  with an explicit /24 under ``10.214.0.0/16`` that no host interface or
  Docker network uses; the host is the gateway ``.1``, node ``nK`` is
  ``.1K``, so clients and monitor requests go straight from the host to a
  node's own address;
- one container per node, ``<tag>-<node>``, labelled ``nats-chaos.run=<tag>``
  and ``nats-chaos.node=<node>``, from the node image
  (:func:`harness.images.for_scenario`), started as ``/nats-server -c
  /etc/nats-chaos/nats-server.conf`` with the config rendered on the host
  (``harness.config``) and ``<workdir>/<node>/data`` bind-mounted at
  ``/data`` — that directory is the node's lazyfs mount when power loss is
  planned, so :meth:`power_fail` works as on the local backend (the engine
  binds the source again at every container start, so a restarted node sees
  the remounted lazyfs, not the dead one);
- kill / pause / resume / terminate through the engine (``kill``,
  ``pause``/``unpause``, ``stop``), restart with ``start``;
- a node's Remote (:class:`~harness.backends.host.HostRemote`) runs commands
  in the container's network namespace from the host with ``nsenter -t
  <pid> -n`` and reaches its store through the host side of the bind mount;
  partitions and client cuts are ``harness.net.iptables`` rules through it;
  a container restart gets a fresh namespace, so the rules in force are
  applied again;
- ``collect`` (shared with the local backend, :mod:`harness.backends.host`)
  writes each container's log (``docker logs``) to ``nodes/<n>/nats-server.log``
  next to its config and the store's archive.

Abilities: as the local backend (the containers share the host's kernel,
so ``netem`` exactly when the host has it).

Names of containers and the network are written to the run state before
they are created, so ``nats-chaos clean`` can remove them (by name and by
label) after a harness crash; ``stop`` removes them after any run.
"""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Submodules, not ``docker.X``: the repository's own docker/ directory (the
# node image) would otherwise shadow the SDK for the type checker.
from docker.client import DockerClient
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container

from checkers import files
from harness import config, images, servers
from harness.backends.host import HostCluster, HostRemote, host_abilities
from harness.backends.lazystore import LazyStores
from harness.errors import CannotRun
from harness.net import netns
from harness.runstate import RunState

if TYPE_CHECKING:
    from harness.scenario import Scenario

RUN_LABEL = "nats-chaos.run"
NODE_LABEL = "nats-chaos.node"
SUBNET_BASE = "10.214.0.0/16"
CONF_IN_CONTAINER = "/etc/nats-chaos/nats-server.conf"
DATA_IN_CONTAINER = "/data"


def network_name(tag: str) -> str:
    return f"{tag}-net"


def container_name(tag: str, node: str) -> str:
    return f"{tag}-{node}"


def used_subnets(dc: DockerClient) -> list[ipaddress.IPv4Network]:
    """Subnets of host interfaces and of every Docker network (IPv4)."""
    used = []
    for line in netns.run(["ip", "-4", "-o", "addr", "show"], check=False).stdout.splitlines():
        parts = line.split()
        if "inet" in parts:
            used.append(ipaddress.ip_interface(parts[parts.index("inet") + 1]).network)
    for net in dc.networks.list():
        for pool in (net.attrs.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(KeyError, ValueError):
                used.append(ipaddress.ip_network(pool["Subnet"]))
    return [u for u in used if isinstance(u, ipaddress.IPv4Network)]


def free_subnets(tag: str, dc: DockerClient) -> list[ipaddress.IPv4Network]:
    """Free /24s under ``SUBNET_BASE``, starting at one chosen from the tag."""
    used = used_subnets(dc)
    subnets = list(ipaddress.IPv4Network(SUBNET_BASE).subnets(new_prefix=24))[1:-1]
    start = sum(tag.encode()) * 7919 % len(subnets)
    ordered = subnets[start:] + subnets[:start]
    return [s for s in ordered if not any(s.overlaps(u) for u in used)]


@dataclass
class _Node:
    name: str
    ip: str
    conf: Path
    data: Path
    container: Container | None = None


class DockerCluster(HostCluster):
    """A cluster of nats-server containers on a per-run Docker network."""

    def __init__(
        self,
        scenario: Scenario,
        binary: Path | None,
        workdir: Path,
        state: RunState,
        dc: DockerClient | None = None,
    ) -> None:
        super().__init__()
        self._of_run(scenario, workdir, state)
        self.binary = binary
        self.dc = dc or images.engine_client()
        self.network_name = network_name(state.tag)
        self.subnet: ipaddress.IPv4Network | None = None  # chosen when the network is created
        self.image: str | None = None
        self._nodes: dict[str, _Node] = {}
        self.stores = LazyStores(
            state,
            scenario.storage.writeback_after,
            scenario.storage.cache_bytes,
            scenario.server.sync_interval,
        )
        self.abilities = host_abilities()
        self._remotes = {n: HostRemote(partial(self._nsenter, n)) for n in self.nodes}

    # -- addressing, remotes ------------------------------------------------
    def _net(self) -> ipaddress.IPv4Network:
        if self.subnet is None:
            raise CannotRun("the run's Docker network does not exist (start() first)")
        return self.subnet

    def ip(self, node: str) -> str:
        return str(self._net().network_address + 10 + self.nodes.index(node) + 1)

    @property
    def host_ip(self) -> str:
        """The gateway: where clients and the harness reach the nodes from."""
        return str(self._net().network_address + 1)

    def remote(self, node: str) -> HostRemote:
        return self._remotes[node]

    def _nsenter(self, node: str) -> list[str]:
        """The prefix that runs a host command in ``node``'s network namespace."""
        pid = self.pid(node)
        if not pid:
            raise CannotRun(f"{node} is not running: its network namespace is gone")
        return ["nsenter", "-t", str(pid), "-n"]

    def has_netns(self, node: str) -> bool:
        return self.pid(node) is not None

    def server_info(self) -> dict[str, Any]:
        """Which image runs and the nats-server version in it (for results.json)."""
        if self.image is None:
            self.image = images.for_scenario(self.scenario, self.binary, self.dc)
        binary = self.binary if self.binary and not self.scenario.server.image else None
        return {
            "backend": "docker",
            "image": self.image,
            "binary": str(binary) if binary else None,
            "version": images.image_version(self.dc, self.image),
            "sha256": servers.sha256(binary) if binary else None,  # a named image: none
        }

    def server_binary(self, dest: Path) -> Path:
        """The nats-server the nodes run, copied out of the run's image to ``dest``."""
        if self.image is None:
            self.image = images.for_scenario(self.scenario, self.binary, self.dc)
        name = container_name(self.state.tag, "binary")
        self.state.add_container(name)  # `clean` removes it should the harness die meanwhile
        try:
            labels = {RUN_LABEL: self.state.tag}
            return images.extract_binary(self.dc, self.image, dest, name, labels)
        finally:
            self.state.drop_container(name)

    # -- lifecycle --------------------------------------------------------
    def start(self) -> None:
        netns.require_root()
        if self.image is None:
            self.image = images.for_scenario(self.scenario, self.binary, self.dc)
        self._create_network()
        peers = [self.address(n) for n in self.nodes]
        for node in self.nodes:
            d = self.node_dir(node)
            Path(self.store_dir(node)).mkdir(parents=True, exist_ok=True)
            conf = config.render(self.scenario, self.address(node), peers, Path(DATA_IN_CONTAINER))
            path = config.write_config(conf, d / "nats-server.conf")
            n = _Node(node, self.address(node).host, path, Path(self.store_dir(node)))
            self._nodes[node] = n
            if self.scenario.uses_lazyfs:
                self.stores.add(node, d)
        for node in self.nodes:
            self.state.add_container(container_name(self.state.tag, node))
        # The engine's API calls dominate start-up time: create and start nodes in parallel.
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            created = pool.map(self._create_container, self._nodes.values())
            for n, container in zip(self._nodes.values(), created, strict=True):
                n.container = container
            list(pool.map(self.start_node, self.nodes))

    def _create_network(self) -> None:
        from docker.types import IPAMConfig, IPAMPool

        self.state.add_network(self.network_name)
        last: Exception | None = None
        for subnet in free_subnets(self.state.tag, self.dc)[:8]:
            gateway = str(subnet.network_address + 1)
            ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet), gateway=gateway)])
            try:
                self.dc.networks.create(
                    self.network_name,
                    driver="bridge",
                    ipam=ipam,
                    labels={RUN_LABEL: self.state.tag},
                    options={"com.docker.network.bridge.name": f"{self.state.tag}-d"},
                    check_duplicate=True,
                )
            except APIError as e:  # another run took this subnet meanwhile: next one
                last = e
                continue
            self.subnet = subnet
            return
        raise CannotRun(f"cannot create the run's Docker network: {last or 'no free /24'}")

    def _create_container(self, n: _Node) -> Container:
        name = container_name(self.state.tag, n.name)
        endpoint = self.dc.api.create_endpoint_config(ipv4_address=n.ip)
        return self.dc.containers.create(
            self.image,
            ["-c", CONF_IN_CONTAINER],
            name=name,
            hostname=n.name,
            labels={RUN_LABEL: self.state.tag, NODE_LABEL: n.name},
            volumes={
                str(n.conf): {"bind": CONF_IN_CONTAINER, "mode": "ro"},
                str(n.data): {"bind": DATA_IN_CONTAINER, "mode": "rw"},
            },
            network=self.network_name,
            networking_config={self.network_name: endpoint},
            detach=True,
        )

    def _status(self, node: str) -> str:
        n = self._nodes.get(node)
        if n is None or n.container is None:
            return "absent"
        try:
            n.container.reload()
        except NotFound:
            return "absent"
        return str(n.container.status)

    def pid(self, node: str) -> int | None:
        """Host pid of ``node``'s nats-server (the container's init), or None."""
        if self._status(node) not in ("running", "paused"):
            return None
        c = self._nodes[node].container
        assert c is not None
        return int(c.attrs["State"]["Pid"]) or None

    def running(self, node: str) -> bool:
        return self._status(node) in ("running", "paused", "restarting")

    def start_node(self, node: str) -> None:
        if self.running(node):
            return
        c = self._nodes[node].container
        assert c is not None
        try:
            c.start()
        except NotFound:
            raise CannotRun(f"{node}: its container {c.name} is gone from the engine") from None
        self._reapply_rules(node)  # a fresh container start means a fresh namespace

    def kill(self, node: str) -> None:
        self._unpause(node)
        c = self._nodes[node].container
        if c is None or not self.running(node):
            return
        with contextlib.suppress(APIError):  # it may exit by itself meanwhile
            c.kill()
        c.wait(timeout=30)

    def terminate(self, node: str, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM), SIGKILL after ``timeout``."""
        self._unpause(node)
        c = self._nodes[node].container
        if c is not None and self.running(node):
            c.stop(timeout=int(timeout))

    def _unpause(self, node: str) -> None:
        if self._status(node) == "paused":
            c = self._nodes[node].container
            assert c is not None
            c.unpause()

    def pause(self, node: str) -> None:
        if self._status(node) == "running":
            c = self._nodes[node].container
            assert c is not None
            c.pause()

    def resume(self, node: str) -> None:
        self._unpause(node)

    # -- evidence and teardown --------------------------------------------
    def _copy_logs(self, node: str, out: Path) -> None:
        n = self._nodes.get(node)
        if n is not None and n.container is not None:
            with contextlib.suppress(DockerException):
                logs = n.container.logs(stdout=True, stderr=True)
                files.write_bytes(out / "nats-server.log", logs)

    def stop(self, keep_files: bool = False) -> None:
        """Remove every container, unmount, remove the network and work dir. Safe to repeat."""
        errors = remove_run_resources(self.dc, self.state)
        for n in self._nodes.values():
            n.container = None
        errors += self.stores.release()
        errors += remove_run_network(self.dc, self.state)
        if errors:  # keep the work dir: `clean` finds what is left through the state file
            raise RuntimeError("; ".join(errors) + " (run `nats-chaos clean`)")
        if not keep_files:
            shutil.rmtree(self.workdir, ignore_errors=True)  # configs, data: collected by now


def run_containers(dc: DockerClient, tag: str) -> list[Container]:
    """Every container of run ``tag`` (by label), running or not."""
    return dc.containers.list(all=True, filters={"label": f"{RUN_LABEL}={tag}"})


def remove_run_resources(dc: DockerClient, state: RunState) -> list[str]:
    """Force-remove run ``state.tag``'s containers (recorded or labelled); return errors."""
    errors = []
    names = set(state.containers) | {c.name for c in run_containers(dc, state.tag)}
    for name in sorted(names):
        try:
            dc.containers.get(name).remove(force=True)
        except NotFound:
            pass
        except DockerException as e:
            errors.append(f"remove container {name}: {e}")
            continue
        state.drop_container(name)
    return errors


def remove_run_network(dc: DockerClient, state: RunState) -> list[str]:
    """Remove run ``state.tag``'s networks (recorded or labelled); return errors."""
    errors = []
    labelled = dc.networks.list(filters={"label": f"{RUN_LABEL}={state.tag}"})
    for name in sorted(set(state.networks) | {n.name for n in labelled}):
        try:
            dc.networks.get(name).remove()
        except NotFound:
            pass
        except DockerException as e:
            errors.append(f"remove network {name}: {e}")
            continue
        state.drop_network(name)
    return errors
