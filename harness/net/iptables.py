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


def drop_from(prefix: list[str], peer_ip: str) -> None:
    """In the namespace behind ``prefix``, drop what arrives from ``peer_ip`` (one way)."""
    ensure_chain(prefix)
    _ipt(prefix, "-A", CHAIN, "-s", peer_ip, "-j", "DROP")


def block(prefix: list[str], peer_ip: str) -> None:
    """In the namespace behind ``prefix``, stop hearing and talking to ``peer_ip``."""
    ensure_chain(prefix)
    for way in ("-s", "-d"):  # what comes from the peer, then what goes to it
        reset = ("-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset")
        _ipt(prefix, "-A", CHAIN, way, peer_ip, *reset)
        _ipt(prefix, "-A", CHAIN, way, peer_ip, "-j", "DROP")


def kill_connections(prefix: list[str], peer_ip: str) -> None:
    """Close established sockets to ``peer_ip`` now (best effort: needs INET_DIAG_DESTROY)."""
    run([*prefix, "ss", "-K", "dst", peer_ip], check=False)


def flush(prefix: list[str]) -> None:
    """Remove every rule the run added in this namespace: the chain, its hooks, its rules."""
    probe = run([*prefix, "iptables", "-w", "5", "-n", "-L", CHAIN], check=False)
    if probe.returncode != 0:
        return
    _ipt(prefix, "-F", CHAIN)
    for hook in ("INPUT", "OUTPUT"):
        while (
            run([*prefix, "iptables", "-w", "5", "-D", hook, "-j", CHAIN], check=False).returncode
            == 0
        ):
            pass
    _ipt(prefix, "-X", CHAIN)


def rules(prefix: list[str]) -> list[str]:
    """The rules currently in this namespace (``iptables -S``), for tests and reports."""
    out = run([*prefix, "iptables", "-w", "5", "-S"], check=False).stdout
    return [line for line in out.splitlines() if line.startswith("-A")]


def cut(prefix: list[str], peer_ip: str, both_ways: bool) -> None:
    """Stop hearing ``peer_ip``; ``both_ways`` also stops talking to it and kills its sockets."""
    if both_ways:
        block(prefix, peer_ip)
        kill_connections(prefix, peer_ip)
    else:
        drop_from(prefix, peer_ip)


def apply_grudge(
    grudge: dict[str, frozenset[str]],
    prefix_of: Callable[[str], list[str]],
    ip_of: Callable[[str], str],
) -> None:
    """Apply a grudge: each node stops hearing the nodes it names (see the module doc)."""
    for node, enemies in grudge.items():
        for enemy in sorted(enemies):
            mutual = node in grudge.get(enemy, frozenset())
            cut(prefix_of(node), ip_of(enemy), both_ways=mutual)
