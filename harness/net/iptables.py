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
policy lines. The namespace belongs to the run, so nothing else is in it,
and nothing but that chain and its two hooks is ever touched.

How rules go in: everything one call adds to a namespace is one
``iptables-restore --noflush`` transaction (a :class:`Cut`: its rule lines,
and the peers whose sockets ``ss -K`` closes afterwards), after one
``iptables -S`` that says whether the chain and its hooks exist yet. The
transaction commits as a whole: the namespace is cut, or not (one restore
takes ~5–40 ms where 40 single ``iptables`` calls took ~0.25–0.5 s). Across
namespaces (:func:`apply_cuts`, :func:`flush_all`) every probe runs in
parallel, then every restore, so a grudge lands in all of them within
milliseconds instead of over a second.

Every function takes the node's :class:`Shell` — anything that runs an argv
inside that node's network namespace, in practice its
:class:`harness.backends.base.Remote` — so the same rules work for a
namespace on this host, a container, or a node on another machine.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

CHAIN = "NCHAOS"
HOOKS = (f"-A INPUT -j {CHAIN}", f"-A OUTPUT -j {CHAIN}")  # as ``iptables -S`` lists them


class Shell(Protocol):
    """Runs an argv in one node's network namespace (a Remote's ``run``)."""

    def run(
        self,
        argv: Sequence[str],
        check: bool = True,
        timeout: float = 30.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]: ...


@dataclass(frozen=True)
class Cut:
    """What one namespace gets in one transaction: rule lines (``-A NCHAOS …``), and the
    ``ss`` filters of the established sockets closed once they are in."""

    lines: tuple[str, ...]
    kill: tuple[str, ...] = ()

    def __add__(self, other: Cut) -> Cut:
        return Cut(self.lines + other.lines, self.kill + other.kill)


def peer_cut(peer_ip: str, both_ways: bool) -> Cut:
    """Stop hearing ``peer_ip``; ``both_ways`` also stops talking to it (TCP resets both
    ways, then drops) and kills its sockets. One way: only drop what arrives from it."""
    if not both_ways:
        return Cut((f"-A {CHAIN} -s {peer_ip} -j DROP",))
    reset = "-p tcp -j REJECT --reject-with tcp-reset"
    lines = [
        f"-A {CHAIN} {way} {peer_ip} {rule}" for way in ("-s", "-d") for rule in (reset, "-j DROP")
    ]
    return Cut(tuple(lines), (f"dst {peer_ip}",))


def port_cut(peer_ip: str, ports: Sequence[int], both_ways: bool) -> Cut:
    """Stop ``peer_ip`` reaching these TCP ``ports`` (``both_ways``: their answers back
    too, with resets, and its sockets on them closed); every other port stays open, so a
    control connection from the same peer (SSH) survives the cut."""
    if not both_ways:
        return Cut(tuple(f"-A {CHAIN} -s {peer_ip} -p tcp --dport {p} -j DROP" for p in ports))
    reset = "-j REJECT --reject-with tcp-reset"
    lines = [f"-A {CHAIN} -s {peer_ip} -p tcp --dport {p} {reset}" for p in ports]
    lines += [f"-A {CHAIN} -d {peer_ip} -p tcp --sport {p} {reset}" for p in ports]
    on_ports = " or ".join(f"sport = :{p}" for p in ports)
    return Cut(tuple(lines), (f"dst {peer_ip} and ( {on_ports} )",))


def grudge_cut(grudge: dict[str, frozenset[str]], node: str, ip_of: Callable[[str], str]) -> Cut:
    """``node``'s entry of ``grudge`` as one :class:`Cut`: each enemy both ways when the
    enemy's entry names ``node`` too (a symmetric cut), else one way."""
    out = Cut(())
    for enemy in sorted(grudge.get(node, frozenset())):
        out += peer_cut(ip_of(enemy), both_ways=node in grudge.get(enemy, frozenset()))
    return out


def listed(sh: Shell) -> list[str]:
    """``iptables -S`` in this namespace (the filter table), one rule per line."""
    return sh.run(["iptables", "-w", "5", "-S"], check=False).stdout.splitlines()


def _setup(present: list[str]) -> list[str]:
    """The chain and its hooks, unless ``present`` (``iptables -S``) has them already."""
    if f"-N {CHAIN}" in present:
        return []
    return [f"-N {CHAIN}", f"-I INPUT -j {CHAIN}", f"-I OUTPUT -j {CHAIN}"]


def _teardown(present: list[str]) -> list[str]:
    """Unhook, empty and delete the chain, if ``present`` has it."""
    if f"-N {CHAIN}" not in present:
        return []
    unhook = [line.replace("-A ", "-D ", 1) for line in present if line in HOOKS]
    return [*unhook, f"-F {CHAIN}", f"-X {CHAIN}"]


def restore(sh: Shell, lines: Sequence[str]) -> None:
    """``lines`` as one ``iptables-restore --noflush`` transaction of the filter table."""
    if lines:
        text = "*filter\n" + "\n".join(lines) + "\nCOMMIT\n"
        sh.run(["iptables-restore", "-w", "5", "--noflush"], input=text)


def kill_connections(sh: Shell, filters: Sequence[str]) -> None:
    """Close the established sockets that ``filters`` (``ss`` filter expressions, e.g.
    ``dst 10.0.0.12``) name, now (best effort: needs INET_DIAG_DESTROY)."""
    if filters:
        match = " or ".join(filters).split()
        sh.run(["ss", "-K", "(", *match, ")"], check=False)


T = TypeVar("T")
R = TypeVar("R")


def each(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``fn`` over ``items`` in parallel threads (one each); the first exception raises."""
    if len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(fn, items))


def apply_cuts(cuts: Sequence[tuple[Shell, Cut]]) -> None:
    """Put each :class:`Cut` into its namespace: every probe, then every restore, then every
    ``ss -K``, each step in all namespaces at once (see the module docstring)."""
    cuts = [(sh, c) for sh, c in cuts if c.lines]
    present = each(lambda sc: listed(sc[0]), cuts)
    each(
        lambda i: restore(cuts[i][0], _setup(present[i]) + list(cuts[i][1].lines)), range(len(cuts))
    )
    each(lambda sc: kill_connections(sc[0], sc[1].kill), cuts)


def cut(sh: Shell, peer_ip: str, both_ways: bool) -> None:
    """Stop hearing ``peer_ip`` in one namespace (:func:`peer_cut`)."""
    apply_cuts([(sh, peer_cut(peer_ip, both_ways))])


def flush(sh: Shell) -> None:
    """Remove every rule the run added in this namespace: the chain, its hooks, its rules."""
    flush_all([sh])


def flush_all(shells: Sequence[Shell]) -> None:
    """:func:`flush` in every namespace at once (probes in parallel, then restores)."""
    present = each(listed, shells)
    each(lambda i: restore(shells[i], _teardown(present[i])), range(len(shells)))


def rules(sh: Shell) -> list[str]:
    """The rules currently in this namespace (``iptables -S``), for tests and reports."""
    return [line for line in listed(sh) if line.startswith("-A")]


def apply_grudge(
    grudge: dict[str, frozenset[str]],
    shell_of: Callable[[str], Shell],
    ip_of: Callable[[str], str],
    nodes: Iterable[str] | None = None,
) -> None:
    """Apply a grudge: each node stops hearing the nodes it names (see the module doc), in
    every namespace at once.

    ``nodes`` limits which entries are applied (default: all); whether a pair
    is mutual is still judged on the whole grudge, so re-applying one node's
    entry after its restart keeps a symmetric cut symmetric.
    """
    chosen = list(grudge if nodes is None else nodes)
    apply_cuts([(shell_of(n), grudge_cut(grudge, n, ip_of)) for n in chosen])
