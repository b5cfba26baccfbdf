"""Partition apply and heal time: one iptables-restore per namespace, all at once, against
the single ``iptables`` calls one namespace after the other that the harness made before.

Creates ``--nodes`` empty network namespaces of its own (root needed; no
servers: only the rules are timed) and, in each round (the order alternates,
since the machine is shared), applies and heals the same grudges both ways:

- ``single``: what ``harness.net.iptables`` did before — per enemy, an
  ``iptables -L`` probe for the chain, then one ``iptables -A`` per rule
  (``-N`` and two ``-I`` hooks the first time), and ``ss -K`` per enemy,
  namespace after namespace; heal: ``-L``, ``-F``, a ``-D`` per hook until
  one fails, ``-X``, per namespace;
- ``restore``: :func:`harness.net.iptables.apply_grudge` /
  :func:`~harness.net.iptables.flush_all` as the run uses them.

Grudges: ``one`` (a node against the rest) and ``all`` (every node against
every other, the cut before the final reads). Prints the median seconds of
each, and the ratio.

    sudo .venv/bin/python benchmarks/bench_partition.py --nodes 5 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from harness.backends.host import HostRemote
from harness.net import grudges, iptables, netns

Grudge = dict[str, frozenset[str]]


def single_calls(grudge: Grudge, sh: dict[str, HostRemote], ip: dict[str, str]) -> None:
    """The grudge as the harness applied it before: one iptables call per rule, in order."""
    for node in grudge:
        for enemy in sorted(grudge[node]):
            s = sh[node]
            if s.run(["iptables", "-w", "5", "-n", "-L", iptables.CHAIN], check=False).returncode:
                for line in iptables._setup([]):
                    s.run(["iptables", "-w", "5", *line.split()])
            cut = iptables.peer_cut(ip[enemy], both_ways=node in grudge.get(enemy, frozenset()))
            for line in cut.lines:
                s.run(["iptables", "-w", "5", *line.split()])
            if cut.kill:
                s.run(["ss", "-K", "dst", ip[enemy]], check=False)


def single_heal(sh: dict[str, HostRemote]) -> None:
    chain = iptables.CHAIN
    for s in sh.values():
        if s.run(["iptables", "-w", "5", "-n", "-L", chain], check=False).returncode:
            continue
        s.run(["iptables", "-w", "5", "-F", chain])
        for hook in ("INPUT", "OUTPUT"):
            while not s.run(
                ["iptables", "-w", "5", "-D", hook, "-j", chain], check=False
            ).returncode:
                pass
        s.run(["iptables", "-w", "5", "-X", chain])


def timed(fn: object, *args: object) -> float:
    t = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    netns.require_root()
    nodes = [f"n{i + 1}" for i in range(args.nodes)]
    names = {n: f"ncbench{os.getpid()}-{n}" for n in nodes}
    ip = {n: f"10.213.250.{i + 11}" for i, n in enumerate(nodes)}
    sh = {n: HostRemote(lambda ns=names[n]: ["ip", "netns", "exec", ns]) for n in nodes}
    shapes: dict[str, Grudge] = {
        "one": grudges.isolate(nodes[0], nodes).grudge,
        "all": {n: frozenset(m for m in nodes if m != n) for n in nodes},
    }
    for ns in names.values():
        netns.run(["ip", "netns", "add", ns])
    times: dict[tuple[str, str, str], list[float]] = {}
    try:
        for r in range(args.rounds):
            for shape, grudge in shapes.items():
                ways = ("single", "restore") if r % 2 == 0 else ("restore", "single")
                for way in ways:
                    if way == "single":
                        apply = timed(single_calls, grudge, sh, ip)
                        heal = timed(single_heal, sh)
                    else:
                        apply = timed(iptables.apply_grudge, grudge, sh.__getitem__, ip.__getitem__)
                        heal = timed(iptables.flush_all, list(sh.values()))
                    assert all(iptables.rules(s) == [] for s in sh.values())
                    times.setdefault((shape, way, "apply"), []).append(apply)
                    times.setdefault((shape, way, "heal"), []).append(heal)
    finally:
        for ns in names.values():
            netns.run(["ip", "netns", "delete", ns], check=False)
    print(f"{args.nodes} namespaces, {args.rounds} rounds, median seconds [min-max]:")
    for shape, grudge in shapes.items():
        rules = sum(len(iptables.grudge_cut(grudge, n, ip.__getitem__).lines) for n in grudge)
        for step in ("apply", "heal"):
            old, new = times[(shape, "single", step)], times[(shape, "restore", step)]
            print(
                f"  {shape:3} ({rules:2} rules) {step:5}: single calls {statistics.median(old):.3f}"
                f" [{min(old):.3f}-{max(old):.3f}], restore {statistics.median(new):.3f}"
                f" [{min(new):.3f}-{max(new):.3f}], ratio "
                f"{statistics.median(old) / statistics.median(new):.1f}x"
            )


if __name__ == "__main__":
    main()
