"""Grudges as iptables rules inside node namespaces (never the host's own tables).

A grudge maps a node to the set of nodes it must not hear. For node ``a``
that must not hear ``b``, rules go into ``a``'s namespace: drop what comes
from ``b``'s address, and reset TCP towards it, so an established route
connection dies at its next packet instead of lingering until a ping timeout.
All rules live in one chain, ``NCHAOS``, hooked into INPUT and OUTPUT of the
node's namespace; healing flushes exactly that chain. The namespace belongs
to the run, so nothing else can be in it.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.net.netns import run

CHAIN = "NCHAOS"


def _ipt(prefix: list[str], *args: str, check: bool = True) -> None:
    run([*prefix, "iptables", "-w", "5", *args], check=check)


def ensure_chain(prefix: list[str]) -> None:
    """Create the run's chain in this namespace and hook it in, once."""
    probe = run([*prefix, "iptables", "-w", "5", "-n", "-L", CHAIN], check=False)
    if probe.returncode == 0:
        return
    _ipt(prefix, "-N", CHAIN)
    _ipt(prefix, "-I", "INPUT", "-j", CHAIN)
    _ipt(prefix, "-I", "OUTPUT", "-j", CHAIN)


def block(prefix: list[str], peer_ip: str) -> None:
    """In the namespace behind ``prefix``, stop hearing and talking to ``peer_ip``."""
    ensure_chain(prefix)
    _ipt(
        prefix,
        "-A",
        CHAIN,
        "-s",
        peer_ip,
        "-p",
        "tcp",
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    )
    _ipt(prefix, "-A", CHAIN, "-s", peer_ip, "-j", "DROP")
    _ipt(
        prefix,
        "-A",
        CHAIN,
        "-d",
        peer_ip,
        "-p",
        "tcp",
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    )
    _ipt(prefix, "-A", CHAIN, "-d", peer_ip, "-j", "DROP")


def kill_connections(prefix: list[str], peer_ip: str) -> None:
    """Close established sockets to ``peer_ip`` now (best effort: needs INET_DIAG_DESTROY)."""
    run([*prefix, "ss", "-K", "dst", peer_ip], check=False)


def flush(prefix: list[str]) -> None:
    """Remove every rule the run added in this namespace."""
    probe = run([*prefix, "iptables", "-w", "5", "-n", "-L", CHAIN], check=False)
    if probe.returncode == 0:
        _ipt(prefix, "-F", CHAIN)


def rules(prefix: list[str]) -> list[str]:
    """The rules currently in this namespace (``iptables -S``), for tests and reports."""
    out = run([*prefix, "iptables", "-w", "5", "-S"], check=False).stdout
    return [line for line in out.splitlines() if line.startswith("-A")]


def apply_grudge(
    grudge: dict[str, frozenset[str]],
    prefix_of: Callable[[str], list[str]],
    ip_of: Callable[[str], str],
) -> None:
    """Apply a grudge: each node stops hearing the nodes it names."""
    for node, enemies in grudge.items():
        for enemy in sorted(enemies):
            block(prefix_of(node), ip_of(enemy))
            kill_connections(prefix_of(node), ip_of(enemy))
