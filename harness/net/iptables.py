"""Grudges as iptables rules inside node namespaces (never the host's own tables).

A grudge maps a node to the set of nodes it must not hear. An entry
``a -> {b}`` puts rules into ``a``'s namespace only:

- one-way (``b`` is not also told to ignore ``a``): drop what ``a`` receives
  from ``b``'s address. Nothing else: ``b`` still hears ``a``'s packets.
  Over TCP that stalls any connection between them (handshakes and acks
  need both ways), but it is a one-way fault on the wire, as in Jepsen.
- symmetric (``b -> {a}`` is in the grudge as well): the union of both
  directions, cut at both ends, with TCP resets towards the peer and ``ss
  -K`` of established sockets, so a route connection dies at once instead
  of lingering until a ping timeout.

All rules live in one chain, ``NCHAOS``, hooked into INPUT and OUTPUT of the
node's namespace. Healing (``flush``) empties the chain, unhooks it and
deletes it, so ``iptables -S`` in the namespace is back to the empty
policy lines. The namespace belongs to the run, so nothing else is in it.

Every function takes the node's :class:`Shell` — anything that runs an argv
inside that node's network namespace, in practice its
:class:`harness.backends.base.Remote` — so the same rules work for a
namespace on this host, a container, or a node on another machine.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

CHAIN = "NCHAOS"


class Shell(Protocol):
    """Runs an argv in one node's network namespace (a Remote's ``run``)."""

    def run(
        self, argv: Sequence[str], check: bool = True, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]: ...


def _ipt(sh: Shell, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh.run(["iptables", "-w", "5", *args], check=check)


def ensure_chain(sh: Shell) -> None:
    """Create the run's chain in this namespace and hook it in, once."""
    if _ipt(sh, "-n", "-L", CHAIN, check=False).returncode == 0:
        return
    _ipt(sh, "-N", CHAIN)
    _ipt(sh, "-I", "INPUT", "-j", CHAIN)
    _ipt(sh, "-I", "OUTPUT", "-j", CHAIN)


def drop_from(sh: Shell, peer_ip: str) -> None:
    """In the namespace behind ``sh``, drop what arrives from ``peer_ip`` (one way)."""
    ensure_chain(sh)
    _ipt(sh, "-A", CHAIN, "-s", peer_ip, "-j", "DROP")


def block(sh: Shell, peer_ip: str) -> None:
    """In the namespace behind ``sh``, stop hearing and talking to ``peer_ip``."""
    ensure_chain(sh)
    for way in ("-s", "-d"):  # what comes from the peer, then what goes to it
        reset = ("-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset")
        _ipt(sh, "-A", CHAIN, way, peer_ip, *reset)
        _ipt(sh, "-A", CHAIN, way, peer_ip, "-j", "DROP")


def kill_connections(sh: Shell, peer_ip: str) -> None:
    """Close established sockets to ``peer_ip`` now (best effort: needs INET_DIAG_DESTROY)."""
    sh.run(["ss", "-K", "dst", peer_ip], check=False)


def flush(sh: Shell) -> None:
    """Remove every rule the run added in this namespace: the chain, its hooks, its rules."""
    if _ipt(sh, "-n", "-L", CHAIN, check=False).returncode != 0:
        return
    _ipt(sh, "-F", CHAIN)
    for hook in ("INPUT", "OUTPUT"):
        while _ipt(sh, "-D", hook, "-j", CHAIN, check=False).returncode == 0:
            pass
    _ipt(sh, "-X", CHAIN)


def rules(sh: Shell) -> list[str]:
    """The rules currently in this namespace (``iptables -S``), for tests and reports."""
    out = _ipt(sh, "-S", check=False).stdout
    return [line for line in out.splitlines() if line.startswith("-A")]


def cut(sh: Shell, peer_ip: str, both_ways: bool) -> None:
    """Stop hearing ``peer_ip``; ``both_ways`` also stops talking to it and kills its sockets."""
    if both_ways:
        block(sh, peer_ip)
        kill_connections(sh, peer_ip)
    else:
        drop_from(sh, peer_ip)


def cut_ports(sh: Shell, peer_ip: str, ports: Sequence[int], both_ways: bool) -> None:
    """Stop ``peer_ip`` reaching these TCP ``ports`` (and, ``both_ways``, their answers going
    back, with resets and ``ss -K`` of its sockets); every other port stays open, so a
    control connection (SSH) from the same peer survives."""
    ensure_chain(sh)
    for port in ports:
        if both_ways:
            reset = ("-j", "REJECT", "--reject-with", "tcp-reset")
            _ipt(sh, "-A", CHAIN, "-s", peer_ip, "-p", "tcp", "--dport", str(port), *reset)
            _ipt(sh, "-A", CHAIN, "-d", peer_ip, "-p", "tcp", "--sport", str(port), *reset)
        else:
            _ipt(sh, "-A", CHAIN, "-s", peer_ip, "-p", "tcp", "--dport", str(port), "-j", "DROP")
    if both_ways:
        for port in ports:
            sh.run(["ss", "-K", "dst", peer_ip, "sport", "=", f":{port}"], check=False)


def apply_grudge(
    grudge: dict[str, frozenset[str]],
    shell_of: Callable[[str], Shell],
    ip_of: Callable[[str], str],
    nodes: Iterable[str] | None = None,
) -> None:
    """Apply a grudge: each node stops hearing the nodes it names (see the module doc).

    ``nodes`` limits which entries are applied (default: all); whether a pair
    is mutual is still judged on the whole grudge, so re-applying one node's
    entry after its restart keeps a symmetric cut symmetric.
    """
    for node in grudge if nodes is None else nodes:
        for enemy in sorted(grudge.get(node, frozenset())):
            mutual = node in grudge.get(enemy, frozenset())
            cut(shell_of(node), ip_of(enemy), both_ways=mutual)
