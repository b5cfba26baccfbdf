"""Network namespaces for the local backend: one per node, a bridge, and a host link.

Layout for run tag ``T`` (every name carries the tag, so ``clean`` can find
a crashed run's leftovers without touching anything else)::

    host ns:  T-h  (10.213.X.1/24) ──veth──┐
    T-br:     bridge br0  ── v-n1, v-n2, … ┘   (the bridge lives in its own
    T-n1:     eth0 10.213.X.11/24 ──veth──┘      namespace: a host bridge would
    T-n2:     eth0 10.213.X.12/24               be filtered by Docker's FORWARD
                                                 rules and br_netfilter)

Clients in the host namespace reach every node through ``T-h``; nodes reach
each other over the bridge. Partitions are iptables rules inside node
namespaces (``harness.net.iptables``), never in the host's own tables.
Deleting the namespaces removes every interface of the run.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import zlib
from dataclasses import dataclass, field

from harness.errors import CannotRun, PrivilegeError

SUBNET_BASE = "10.213.0.0/16"
NETNS_DIR = "/run/netns"  # where `ip netns add` pins named namespaces


def run(
    cmd: list[str], check: bool = True, timeout: float = 30, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run a host command (``input`` on its stdin); a failure raises CannotRun with the
    command and its stderr."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    except FileNotFoundError:
        raise CannotRun(f"{cmd[0]} is not installed (needed for: {' '.join(cmd)})") from None
    except subprocess.TimeoutExpired:
        raise CannotRun(f"timed out after {timeout}s: {' '.join(cmd)}") from None
    if check and proc.returncode != 0:
        raise CannotRun(f"{' '.join(cmd)} failed: {proc.stderr.strip() or proc.returncode}")
    return proc


def require_root() -> None:
    """Network namespaces and iptables need root; say so in one line."""
    if os.geteuid() != 0:
        raise PrivilegeError(
            "the local backend needs root (network namespaces, veth, iptables); "
            "run nats-chaos as root"
        )


def list_namespaces() -> list[str]:
    """Names of every network namespace on the host."""
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _used_subnets() -> set[str]:
    out = run(["ip", "-4", "-o", "addr", "show"], check=False).stdout
    used = set()
    for line in out.split("\n"):
        parts = line.split()
        if "inet" in parts:
            used.add(str(ipaddress.ip_interface(parts[parts.index("inet") + 1]).network))
    return used


def pick_subnet(tag: str) -> ipaddress.IPv4Network:
    """A /24 under 10.213.0.0/16 that no host interface uses, chosen from the tag."""
    used = _used_subnets()
    subnets = list(ipaddress.IPv4Network(SUBNET_BASE).subnets(new_prefix=24))[1:-1]
    start = zlib.crc32(tag.encode()) % len(subnets)
    for i in range(len(subnets)):
        net = subnets[(start + i) % len(subnets)]
        if not any(ipaddress.IPv4Network(u).overlaps(net) for u in used):
            return net
    raise CannotRun(f"no free /24 left in {SUBNET_BASE} for the run's network")


@dataclass
class Topology:
    """The namespaces and addresses of one run's nodes."""

    tag: str
    nodes: list[str]
    subnet: ipaddress.IPv4Network
    created: list[str] = field(default_factory=list)

    @property
    def bridge_ns(self) -> str:
        return f"{self.tag}-br"

    @property
    def host_iface(self) -> str:
        return f"{self.tag}-h"

    def ns(self, node: str) -> str:
        """The namespace a node runs in."""
        return f"{self.tag}-{node}"

    def ip(self, node: str) -> str:
        """A node's address: .11 for n1, .12 for n2, …"""
        return str(self.subnet.network_address + 10 + self.nodes.index(node) + 1)

    @property
    def host_ip(self) -> str:
        return str(self.subnet.network_address + 1)

    def exec_prefix(self, node: str) -> list[str]:
        """Prefix a command with this to run it inside ``node``'s network namespace.

        ``nsenter --net`` rather than ``ip netns exec``: the latter also makes a
        private copy of the mount table for the process, and a long-lived copy
        would keep every lazyfs mount of the run alive after the harness
        unmounts it (the FUSE process then never sees its unmount).
        """
        return ["nsenter", f"--net={NETNS_DIR}/{self.ns(node)}", "--"]

    def _add_ns(self, name: str) -> None:
        run(["ip", "netns", "add", name])
        self.created.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])

    def create(self) -> None:
        """Build the namespaces, bridge and links. Partial state is recorded for destroy()."""
        require_root()
        prefix = self.subnet.prefixlen
        br = self.bridge_ns
        self._add_ns(br)
        run(["ip", "-n", br, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", br, "link", "set", "br0", "up"])
        for node in self.nodes:
            ns = self.ns(node)
            self._add_ns(ns)
            peer = f"v-{node}"
            run(
                [
                    "ip",
                    "link",
                    "add",
                    "eth0",
                    "netns",
                    ns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    peer,
                    "netns",
                    br,
                ]
            )
            run(["ip", "-n", br, "link", "set", peer, "master", "br0", "up"])
            run(["ip", "-n", ns, "addr", "add", f"{self.ip(node)}/{prefix}", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(
            [
                "ip",
                "link",
                "add",
                self.host_iface,
                "type",
                "veth",
                "peer",
                "name",
                "host",
                "netns",
                br,
            ]
        )
        run(["ip", "-n", br, "link", "set", "host", "master", "br0", "up"])
        run(["ip", "addr", "add", f"{self.host_ip}/{prefix}", "dev", self.host_iface])
        run(["ip", "link", "set", self.host_iface, "up"])


def namespaces_of(tag: str) -> list[str]:
    """Existing namespaces that belong to run ``tag``."""
    return [n for n in list_namespaces() if n.startswith(f"{tag}-")]


def destroy_tagged(tag: str, known: list[str] | None = None) -> list[str]:
    """Delete run ``tag``'s namespaces and its host link; return error lines (empty = clean)."""
    errors: list[str] = []
    names = sorted(set(known or []) | set(namespaces_of(tag)))
    for ns in names:
        proc = run(["ip", "netns", "del", ns], check=False)
        if proc.returncode != 0 and ns in list_namespaces():
            errors.append(f"ip netns del {ns}: {proc.stderr.strip()}")
    host_iface = f"{tag}-h"
    if run(["ip", "link", "show", host_iface], check=False).returncode == 0:
        run(["ip", "link", "del", host_iface], check=False)
    return errors
